#pragma once
// Persistent sessions whose records something other than this node's store
// keeps: in a cluster, their replicated logs (cluster/replication/). The
// journal hands such a session's changes to the keeper instead of writing
// them to the store, and what waits for durability (acknowledgements, a QoS 2
// PUBLISH or PUBREL) waits for the keeper to say the change is committed.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/store.hpp"

namespace ringmq::core {

// Whose change it is: a session's client id, and the serial of the session
// object that made it (0: no particular one; see session_keeper::append).
struct session_key {
  session_key(const std::string& c, std::uint64_t w = 0) noexcept : client(c), writer(w) {}
  operator const std::string&() const noexcept { return client; }
  const std::string& client;
  std::uint64_t writer;
};

class session_keeper {
 public:
  virtual ~session_keeper() = default;

  // True when `client`'s changes go to this keeper. Asked for every journal
  // write of a persistent session: cheap and thread-safe.
  virtual bool keeps(const std::string& client) const = 0;

  // Appends one change of `client` (store operations on its own keys), in
  // the order of the calls for that client. Calls `done(true)` once it is
  // durable as the keeper promises, `done(false)` when it never will be (the
  // session is served elsewhere now, or `writer`, the serial of the session
  // object that made the change, is older than the copy the keeper last
  // loaded into the broker: see broker::adopt_session). From any thread;
  // `done` may run inline or on another thread.
  virtual void append(const std::string& client, std::uint64_t writer,
                      storage::write_batch&& change, std::function<void(bool committed)> done) = 0;
};

// Waits for changes handed to a keeper: done once every one added is
// committed, failed when any is not. Thread-safe.
class keeper_wait {
 public:
  void add();
  void finish(bool committed);
  // Calls `then(all committed)` once nothing added is pending: at once when
  // nothing is. Each continuation given is called once; one wait may have
  // many (a resumed session's resends all wait for the same sync point).
  void on_done(std::function<void(bool)> then);

 private:
  std::mutex mutex_;
  std::size_t pending_ = 0;
  bool failed_ = false;
  std::vector<std::function<void(bool)>> then_;
};

// Where a write stands: its position in the store, and the keeper's wait when
// a keeper has it instead. Nothing to wait for when both are empty.
struct written {
  storage::commit_seq seq = 0;
  std::shared_ptr<keeper_wait> kept;

  bool pending() const noexcept { return seq != 0 || kept != nullptr; }
};

}  // namespace ringmq::core
