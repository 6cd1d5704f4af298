#pragma once
// The node's durable store, as the rest of the broker sees it: a few named
// columns of ordered byte keys and byte values, written in batches that are
// applied in the order they were appended, and a way to learn when a batch is
// durable under the configured durability mode. Implementations: RocksDB
// (rocksdb_store.hpp) and an in-memory one for nodes without a data dir and tests.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "storage/errc.hpp"

namespace ringmq::storage {

// One column family per kind of record (docs/storage.md has the key layout).
enum class column : std::uint8_t {
  meta,
  sessions,
  subscriptions,
  queue,
  inflight,
  inbound_qos2,
  wills,
  retained,
  replication,  // replicated sessions' logs (cluster/replication/log_storage.hpp)
  dedup,        // numbered QoS 2 messages a session already took, per publisher
  count_
};
inline constexpr std::size_t column_count = static_cast<std::size_t>(column::count_);
const char* column_name(column c) noexcept;

enum class durability {
  sync,   // fsync every commit before it counts as durable
  batch,  // group commit: commits arriving within a short window share one fsync
  none,   // written to the OS (survives a process crash), never fsynced
};

// One logical change: applied entirely or not at all.
class write_batch {
 public:
  struct operation {
    enum class kind : std::uint8_t { put, erase, erase_prefix } what;
    column col;
    std::string key;
    std::string value;
  };

  void put(column c, std::string key, std::string value) {
    ops_.push_back({operation::kind::put, c, std::move(key), std::move(value)});
  }
  void erase(column c, std::string key) {
    ops_.push_back({operation::kind::erase, c, std::move(key), {}});
  }
  // Erases every key starting with `prefix` (e.g. all records of one session).
  void erase_prefix(column c, std::string prefix) {
    ops_.push_back({operation::kind::erase_prefix, c, std::move(prefix), {}});
  }
  bool empty() const noexcept { return ops_.empty(); }
  std::size_t size() const noexcept { return ops_.size(); }
  const std::vector<operation>& operations() const noexcept { return ops_; }
  void append(write_batch&& other) {
    for (auto& op : other.ops_) ops_.push_back(std::move(op));
    other.ops_.clear();
  }
  void clear() noexcept { ops_.clear(); }

 private:
  std::vector<operation> ops_;
};

// Position of a batch in the store's order; 0 = nothing.
using commit_seq = std::uint64_t;

struct store_stats {
  std::uint64_t commits = 0;        // group commits (one write + fsync each)
  std::uint64_t batches = 0;        // batches appended
  std::uint64_t failed_commits = 0;
  std::uint64_t bytes_on_disk = 0;  // live data, as the engine estimates it
  bool writable = true;             // false while the disk is full or the size limit is hit
};

class store {
 public:
  virtual ~store() = default;

  // Queues a batch; batches are applied in the order of append() calls.
  // Thread-safe and non-blocking (never waits for the disk).
  virtual commit_seq append(write_batch&& batch) = 0;

  // Calls `done` once every batch up to `seq` is durable, or with the error
  // that kept it from being so. It runs on the store's own thread, or inline
  // when `seq` is already durable: post from it, do not work in it.
  virtual void when_durable(commit_seq seq, std::function<void(std::error_code)> done) = 0;

  // The last appended sequence number.
  virtual commit_seq last_appended() const = 0;

  // Blocks until everything appended so far is durable (shutdown, tests).
  virtual std::error_code flush() = 0;

  // False while new durable writes would fail (disk full, size limit): callers
  // refuse new QoS 1/2 work instead of accepting what they cannot keep.
  virtual bool writable() const = 0;

  // Reads (recovery at start, admin views). Visits keys starting with
  // `prefix` in key order until `visit` returns false.
  virtual std::error_code scan(
      column c, std::string_view prefix,
      const std::function<bool(std::string_view key, std::string_view value)>& visit) = 0;
  virtual std::optional<std::string> get(column c, std::string_view key) = 0;

  virtual store_stats stats() const = 0;

  // Called after every commit with how long the write (and fsync) took, on
  // the store's thread. Set once, before writes start.
  virtual void set_commit_observer(std::function<void(double seconds)> observer) {
    (void)observer;
  }

  // Called once, on the store's thread, when a write failed in a way that
  // retrying cannot mend: an I/O error such as a failed fsync, after which
  // what the page cache holds can no longer be trusted to reach the disk (the
  // lesson of PostgreSQL's "fsyncgate"). Nothing waiting on it was
  // acknowledged; the owner should stop the process, whose restart recovers
  // from what is really on disk (and, clustered, from the replicas). A full
  // disk or the size limit is not such a failure: writes resume with space.
  virtual void set_failure_handler(std::function<void(std::error_code, std::string_view why)> handler) {
    (void)handler;
  }

  // Batches appended (by any thread) between begin_group() and the matching
  // end_group() are committed in one write, with nothing of them before a
  // crash unless all: for one change that takes several appends. Returns the
  // token to end it with. Groups are short (microseconds): commits wait for them.
  virtual commit_seq begin_group() { return 0; }
  virtual void end_group(commit_seq token) { (void)token; }
};

// begin_group() and end_group() for a scope.
class store_group {
 public:
  explicit store_group(store& s) : store_(s), token_(s.begin_group()) {}
  store_group(const store_group&) = delete;
  store_group& operator=(const store_group&) = delete;
  ~store_group() { store_.end_group(token_); }

 private:
  store& store_;
  commit_seq token_;
};

// A store that keeps everything in memory: every write is "durable" at once.
std::unique_ptr<store> make_memory_store();

}  // namespace ringmq::storage
