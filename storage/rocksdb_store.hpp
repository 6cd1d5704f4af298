#pragma once
// The store on RocksDB: one database in the node's data directory, one column
// family per kind of record, one RocksDB WriteBatch per logical change. A
// committer thread applies appended batches in order, groups them, and
// fsyncs according to the durability mode. No RocksDB type leaves this file
// pair: errors become storage_errc.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "storage/store.hpp"

namespace ringmq::storage {

struct rocksdb_options {
  std::string path;
  storage::durability durability = durability::batch;
  std::uint64_t max_bytes = 0;  // 0 = unlimited; beyond it writes fail as over_limit
  // Check every block's checksum when opening (finds a damaged store before serving it).
  bool verify_on_open = true;
  // batch mode: how long the committer gathers writes before one fsync.
  std::chrono::microseconds batch_window{1000};
  // How long a failed commit waits before it is retried (e.g. after a full disk).
  std::chrono::milliseconds retry_interval{200};
  // Where RocksDB's own warnings and errors go (the node's log); empty: nowhere.
  // RocksDB writes no LOG file of its own in the data directory.
  std::function<void(bool error, std::string_view message)> log;
};

inline constexpr std::uint32_t schema_version = 1;

struct open_result {
  std::unique_ptr<store> opened;
  std::error_code error;
  std::string message;  // what went wrong, in words, for the operator
};

// Opens (or creates) the store at options.path. A damaged store, an
// incompatible schema or an unusable directory is an error, never a silent repair.
open_result open_rocksdb(const rocksdb_options& options);

}  // namespace ringmq::storage
