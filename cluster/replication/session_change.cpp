#include "cluster/replication/session_change.hpp"

#include "ringmq/replication/v1/session.pb.h"
#include "storage/keys.hpp"

namespace ringmq::cluster::replication {

namespace v1 = ringmq::replication::v1;
using storage::column;
using storage::write_batch;

bool is_session_column(column c) noexcept {
  switch (c) {
    case column::sessions:
    case column::subscriptions:
    case column::queue:
    case column::inflight:
    case column::inbound_qos2:
    case column::wills:
    case column::dedup:
      return true;
    case column::meta:
    case column::retained:
    case column::replication:
    case column::count_:
      break;
  }
  return false;
}

std::optional<std::string_view> session_of(column c, std::string_view key) noexcept {
  if (!is_session_column(c)) return std::nullopt;
  std::size_t offset = 0;
  std::string_view client;
  if (!storage::keys::read_string(key, offset, client)) return std::nullopt;
  return client;
}

namespace {

std::optional<column> column_of(std::uint32_t raw) {
  if (raw >= storage::column_count) return std::nullopt;
  return static_cast<column>(raw);
}

bool belongs_to(column c, std::string_view key, std::string_view client) {
  const auto owner = session_of(c, key);
  return owner && *owner == client;
}

std::string client_prefix(std::string_view client) {
  std::string k;
  storage::keys::append_string(k, client);
  return k;
}

}  // namespace

std::string encode_change(const write_batch& change) {
  v1::SessionChange msg;
  for (const auto& op : change.operations()) {
    auto* o = msg.add_ops();
    switch (op.what) {
      case write_batch::operation::kind::put: o->set_kind(v1::RecordOp::PUT); break;
      case write_batch::operation::kind::erase: o->set_kind(v1::RecordOp::ERASE); break;
      case write_batch::operation::kind::erase_prefix:
        o->set_kind(v1::RecordOp::ERASE_PREFIX);
        break;
    }
    o->set_column(static_cast<std::uint32_t>(op.col));
    o->set_key(op.key);
    if (op.what == write_batch::operation::kind::put) o->set_value(op.value);
  }
  return msg.SerializeAsString();
}

bool decode_change(std::string_view data, std::string_view client, write_batch& out) {
  v1::SessionChange msg;
  if (!msg.ParseFromArray(data.data(), static_cast<int>(data.size()))) return false;
  out.clear();
  for (const auto& o : msg.ops()) {
    const auto c = column_of(o.column());
    if (!c || !belongs_to(*c, o.key(), client)) return false;
    switch (o.kind()) {
      case v1::RecordOp::PUT: out.put(*c, o.key(), o.value()); break;
      case v1::RecordOp::ERASE: out.erase(*c, o.key()); break;
      case v1::RecordOp::ERASE_PREFIX: out.erase_prefix(*c, o.key()); break;
      default: return false;
    }
  }
  return true;
}

void apply_change(const write_batch& change, session_records& records) {
  for (const auto& op : change.operations()) {
    switch (op.what) {
      case write_batch::operation::kind::put:
        records[{op.col, op.key}] = op.value;
        break;
      case write_batch::operation::kind::erase:
        records.erase({op.col, op.key});
        break;
      case write_batch::operation::kind::erase_prefix: {
        auto it = records.lower_bound({op.col, op.key});
        while (it != records.end() && it->first.first == op.col &&
               it->first.second.compare(0, op.key.size(), op.key) == 0) {
          it = records.erase(it);
        }
        break;
      }
    }
  }
}

std::string encode_snapshot(const session_records& records) {
  v1::SessionSnapshot msg;
  for (const auto& [k, value] : records) {
    auto* r = msg.add_records();
    r->set_column(static_cast<std::uint32_t>(k.first));
    r->set_key(k.second);
    r->set_value(value);
  }
  return msg.SerializeAsString();
}

bool decode_snapshot(std::string_view data, std::string_view client, session_records& out) {
  v1::SessionSnapshot msg;
  if (!msg.ParseFromArray(data.data(), static_cast<int>(data.size()))) return false;
  out.clear();
  for (const auto& r : msg.records()) {
    const auto c = column_of(r.column());
    if (!c || !belongs_to(*c, r.key(), client)) return false;
    out[{*c, r.key()}] = r.value();
  }
  return true;
}

write_batch replace_batch(std::string_view client, const session_records& records) {
  write_batch b;
  const auto prefix = client_prefix(client);
  for (std::size_t i = 0; i < storage::column_count; ++i) {
    const auto c = static_cast<column>(i);
    if (is_session_column(c)) b.erase_prefix(c, prefix);
  }
  for (const auto& [k, value] : records) b.put(k.first, k.second, value);
  return b;
}

}  // namespace ringmq::cluster::replication
