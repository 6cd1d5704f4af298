#pragma once
// Store errors. rocksdb::Status is mapped to these at the edge (rocksdb_store.cpp),
// so nothing above storage/ sees a RocksDB type.

#include <system_error>

namespace ringmq::storage {

enum class storage_errc {
  io_error = 1,
  corruption,      // the store is damaged: refuse to serve
  no_space,        // the disk is full: refuse new durable writes until space returns
  busy,
  schema_mismatch, // written by an incompatible version
  closed,
  invalid_argument,
  over_limit,      // storage.max_store_bytes reached
};

const std::error_category& storage_category() noexcept;
inline std::error_code make_error_code(storage_errc e) noexcept {
  return {static_cast<int>(e), storage_category()};
}

}  // namespace ringmq::storage

template <>
struct std::is_error_code_enum<ringmq::storage::storage_errc> : std::true_type {};
