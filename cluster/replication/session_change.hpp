#pragma once
// A persistent session's journal writes as the entries of its replicated log.
// The owner's journal produces, per change of a session, a store batch on the
// session's own keys (docs/storage.md: every such key starts with the client
// id as a length-prefixed component); the batch travels as one log entry, and
// a snapshot is the session's records after every entry up to a position.
// Pure data: no store, no network.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "storage/store.hpp"

namespace ringmq::cluster::replication {

// The columns whose keys belong to one session (the rest, retained and meta, do not).
bool is_session_column(storage::column c) noexcept;
// The client id `key` of session column `c` belongs to; nullopt for other
// columns and for keys without a whole client component.
std::optional<std::string_view> session_of(storage::column c, std::string_view key) noexcept;

// A session's records: (column, key) -> value, in store order.
using record_key = std::pair<storage::column, std::string>;
using session_records = std::map<record_key, std::string>;

std::string encode_change(const storage::write_batch& change);
// False, with `out` unspecified, for bytes that are not a change or a change
// touching anything but records of `client` (a log carries one session only).
bool decode_change(std::string_view data, std::string_view client, storage::write_batch& out);

// Applies a change the way the store would.
void apply_change(const storage::write_batch& change, session_records& records);

std::string encode_snapshot(const session_records& records);
bool decode_snapshot(std::string_view data, std::string_view client, session_records& out);

// The records as one batch that replaces whatever the store held for `client`.
storage::write_batch replace_batch(std::string_view client, const session_records& records);

}  // namespace ringmq::cluster::replication
