#include "cluster/replication/log_storage.hpp"

#include "ringmq/replication/v1/session.pb.h"
#include "storage/keys.hpp"

namespace ringmq::cluster::replication {

namespace v1 = ringmq::replication::v1;
using storage::column;

namespace {

constexpr char meta_tag = 'm';
constexpr char snapshot_tag = 's';
constexpr char entry_tag = 'e';

std::string client_prefix(const std::string& client) {
  std::string k;
  storage::keys::append_string(k, client);
  return k;
}

std::string tagged(const std::string& client, char tag) {
  auto k = client_prefix(client);
  k.push_back(tag);
  return k;
}

std::string entry_key(const std::string& client, std::uint64_t seq) {
  auto k = tagged(client, entry_tag);
  storage::keys::append_u64(k, seq);
  return k;
}

void to_record(const ballot& b, v1::Ballot& r) {
  r.set_round(b.round);
  r.set_node(b.node);
}

ballot from_record(const v1::Ballot& r) { return ballot{r.round(), r.node()}; }

std::string encode_entry(const entry& e) {
  v1::LogEntry r;
  to_record(e.gen, *r.mutable_gen());
  r.set_data(e.data);
  return r.SerializeAsString();
}

std::string encode_meta(const session_log::config& placement, const session_log::durable_state& s) {
  v1::LogMeta r;
  for (auto m : s.replicas.empty() ? placement.replicas : s.replicas) r.add_replicas(m);
  r.set_write_quorum(static_cast<std::uint32_t>(placement.write_quorum));
  for (const auto& set : s.joint) {
    auto* j = r.add_joint();
    for (auto m : set) j->add_members(m);
  }
  to_record(s.promised, *r.mutable_promised());
  to_record(s.log_gen, *r.mutable_log_gen());
  r.set_base_seq(s.base_seq);
  return r.SerializeAsString();
}

std::uint64_t last_of(const session_log::durable_state& s) {
  return s.entries.empty() ? s.base_seq : s.entries.back().seq;
}

}  // namespace

storage::commit_seq log_storage::persist(const std::string& client,
                                         const session_log::config& placement,
                                         const session_log::durable_state& state) {
  storage::write_batch b;
  b.put(column::replication, tagged(client, meta_tag), encode_meta(placement, state));
  const auto it = stored_.find(client);
  // Entries of one generation at one position are the same everywhere, so a
  // log that only grew or was compacted in its generation keeps what is
  // stored; anything else (a new generation's install, a base moved back) is
  // written whole.
  const bool rewrite = it == stored_.end() || it->second.log_gen != state.log_gen ||
                       state.base_seq < it->second.base_seq ||
                       last_of(state) < it->second.last_seq;
  if (rewrite) {
    b.erase_prefix(column::replication, tagged(client, entry_tag));
    b.put(column::replication, tagged(client, snapshot_tag), state.snapshot);
    for (const auto& e : state.entries) {
      b.put(column::replication, entry_key(client, e.seq), encode_entry(e));
    }
  } else {
    const auto& was = it->second;
    if (state.base_seq > was.base_seq) {
      b.put(column::replication, tagged(client, snapshot_tag), state.snapshot);
      for (auto seq = was.base_seq + 1; seq <= state.base_seq && seq <= was.last_seq; ++seq) {
        b.erase(column::replication, entry_key(client, seq));
      }
    }
    for (const auto& e : state.entries) {
      if (e.seq > was.last_seq) b.put(column::replication, entry_key(client, e.seq), encode_entry(e));
    }
  }
  stored_[client] = stored{state.log_gen, state.base_seq, last_of(state)};
  return store_.append(std::move(b));
}

storage::commit_seq log_storage::erase(const std::string& client) {
  stored_.erase(client);
  storage::write_batch b;
  b.erase_prefix(column::replication, client_prefix(client));
  return store_.append(std::move(b));
}

std::error_code log_storage::load(std::map<std::string, stored_log>& out) {
  bool malformed = false;
  auto ec = store_.scan(column::replication, {}, [&](std::string_view key, std::string_view value) {
    std::size_t offset = 0;
    std::string_view client_view;
    if (!storage::keys::read_string(key, offset, client_view) || offset >= key.size()) {
      malformed = true;
      return false;
    }
    const std::string client(client_view);
    auto& log = out[client];
    auto& state = log.state;
    switch (key[offset]) {
      case meta_tag: {
        v1::LogMeta r;
        if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) break;
        state.promised = from_record(r.promised());
        state.log_gen = from_record(r.log_gen());
        state.base_seq = r.base_seq();
        log.replicas.assign(r.replicas().begin(), r.replicas().end());
        state.replicas = log.replicas;
        state.joint.clear();
        for (const auto& j : r.joint()) state.joint.emplace_back(j.members().begin(), j.members().end());
        log.write_quorum = r.write_quorum();
        return true;
      }
      case snapshot_tag:
        state.snapshot.assign(value);
        return true;
      case entry_tag: {
        v1::LogEntry r;
        if (key.size() != offset + 1 + 8) break;
        if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) break;
        state.entries.push_back(entry{storage::keys::read_u64(key, offset + 1),
                                      from_record(r.gen()), r.data()});
        return true;
      }
      default:
        break;
    }
    malformed = true;
    return false;
  });
  if (ec) return ec;
  if (malformed) return storage::storage_errc::corruption;  // written by no version of this code
  for (const auto& [client, log] : out) {
    stored_[client] = stored{log.state.log_gen, log.state.base_seq, last_of(log.state)};
  }
  return {};
}

}  // namespace ringmq::cluster::replication
