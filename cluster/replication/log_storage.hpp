#pragma once
// Keeps the replicated logs of the sessions this node is a replica of in its
// store (the `replication` column; key layout in docs/storage.md), and reads
// them back at start. A log changes by appends, by compaction and, rarely, by
// being replaced whole (an install): each persist writes only what changed
// since the previous one of that session, in one batch.
//
// Not thread-safe: one thread (the replication driver's) calls it.

#include <map>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "cluster/replication/session_log.hpp"
#include "storage/store.hpp"

namespace ringmq::cluster::replication {

// One session's log as kept: its replica set (fixed when the log was
// created) and the log itself.
struct stored_log {
  std::vector<member> replicas;
  std::size_t write_quorum = 0;
  session_log::durable_state state;
};

class log_storage {
 public:
  explicit log_storage(storage::store& s) : store_(s) {}

  // Appends the batch that makes `state` the stored log of `client`; returns
  // its store position (wait for it with store().when_durable).
  storage::commit_seq persist(const std::string& client, const session_log::config& placement,
                              const session_log::durable_state& state);
  // Removes the log of `client` (the session ended everywhere).
  storage::commit_seq erase(const std::string& client);
  // Every stored log, at start (before any persist).
  std::error_code load(std::map<std::string, stored_log>& out);

  storage::store& store() noexcept { return store_; }

 private:
  // What the store holds of one log, to write only the difference.
  struct stored {
    ballot log_gen;
    std::uint64_t base_seq = 0;
    std::uint64_t last_seq = 0;  // base_seq when no entries
  };

  storage::store& store_;
  std::unordered_map<std::string, stored> stored_;
};

}  // namespace ringmq::cluster::replication
