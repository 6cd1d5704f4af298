#include "cluster/replication/log_wire.hpp"

#include <type_traits>

#include "ringmq/replication/v1/session.pb.h"

namespace ringmq::cluster::replication {

namespace v1 = ringmq::replication::v1;

namespace {

void put(const ballot& b, v1::Ballot& r) {
  r.set_round(b.round);
  r.set_node(b.node);
}

ballot get(const v1::Ballot& r) { return ballot{r.round(), r.node()}; }

template <typename Repeated>
void put_joint(const joint_sets& joint, Repeated& out) {
  for (const auto& set : joint) {
    auto* r = out.Add();
    for (auto m : set) r->add_members(m);
  }
}

template <typename Repeated>
joint_sets get_joint(const Repeated& in) {
  joint_sets out;
  for (const auto& r : in) out.emplace_back(r.members().begin(), r.members().end());
  return out;
}

template <typename Repeated>
void put_entries(const std::vector<entry>& entries, Repeated& out) {
  out.Reserve(static_cast<int>(entries.size()));
  for (const auto& e : entries) {
    auto* r = out.Add();
    r->set_seq(e.seq);
    put(e.gen, *r->mutable_gen());
    r->set_data(e.data);
  }
}

template <typename Repeated>
std::vector<entry> get_entries(const Repeated& in) {
  std::vector<entry> out;
  out.reserve(static_cast<std::size_t>(in.size()));
  for (const auto& r : in) out.push_back({r.seq(), get(r.gen()), r.data()});
  return out;
}

void put_message(const message& m, v1::LogMessage& r) {
  std::visit(
      [&](const auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, prepare>) {
          put(msg.gen, *r.mutable_prepare()->mutable_gen());
        } else if constexpr (std::is_same_v<T, promise>) {
          auto& p = *r.mutable_promise();
          put(msg.gen, *p.mutable_gen());
          p.set_ok(msg.ok);
          put(msg.promised, *p.mutable_promised());
          put(msg.log_gen, *p.mutable_log_gen());
          p.set_base_seq(msg.base_seq);
          p.set_snapshot(msg.snapshot);
          put_entries(msg.entries, *p.mutable_entries());
          for (auto m : msg.replicas) p.add_replicas(m);
          put_joint(msg.joint, *p.mutable_joint());
        } else if constexpr (std::is_same_v<T, accept>) {
          auto& a = *r.mutable_accept();
          put(msg.gen, *a.mutable_gen());
          a.set_install(msg.install);
          a.set_prev(msg.prev);
          a.set_base_seq(msg.base_seq);
          a.set_snapshot(msg.snapshot);
          put_entries(msg.entries, *a.mutable_entries());
          a.set_commit(msg.commit);
          for (auto m : msg.replicas) a.add_replicas(m);
          put_joint(msg.joint, *a.mutable_joint());
        } else if constexpr (std::is_same_v<T, handover>) {
          put(msg.gen, *r.mutable_handover()->mutable_gen());
        } else if constexpr (std::is_same_v<T, handover_request>) {
          r.mutable_handover_request();
        } else {
          auto& a = *r.mutable_accepted();
          put(msg.gen, *a.mutable_gen());
          a.set_ok(msg.ok);
          put(msg.promised, *a.mutable_promised());
          a.set_last(msg.last);
          a.set_needs_install(msg.needs_install);
          a.set_known_commit(msg.known_commit);
        }
      },
      m);
}

bool get_message(const v1::LogMessage& r, message& out) {
  switch (r.kind_case()) {
    case v1::LogMessage::kPrepare:
      out = prepare{get(r.prepare().gen())};
      return true;
    case v1::LogMessage::kPromise: {
      const auto& p = r.promise();
      out = promise{get(p.gen()),  p.ok(),        get(p.promised()),
                    get(p.log_gen()), p.base_seq(), p.snapshot(),
                    get_entries(p.entries()),
                    std::vector<member>(p.replicas().begin(), p.replicas().end()),
                    get_joint(p.joint())};
      return true;
    }
    case v1::LogMessage::kAccept: {
      const auto& a = r.accept();
      accept m;
      m.gen = get(a.gen());
      m.install = a.install();
      m.prev = a.prev();
      m.base_seq = a.base_seq();
      m.snapshot = a.snapshot();
      m.entries = get_entries(a.entries());
      m.commit = a.commit();
      m.replicas.assign(a.replicas().begin(), a.replicas().end());
      m.joint = get_joint(a.joint());
      out = std::move(m);
      return true;
    }
    case v1::LogMessage::kAccepted: {
      const auto& a = r.accepted();
      out = accepted{get(a.gen()), a.ok(), get(a.promised()), a.last(), a.needs_install(),
                     a.known_commit()};
      return true;
    }
    case v1::LogMessage::kHandover:
      out = handover{get(r.handover().gen())};
      return true;
    case v1::LogMessage::kHandoverRequest:
      out = handover_request{};
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string encode_batch(const std::vector<addressed>& batch) {
  v1::LogBatch r;
  r.mutable_messages()->Reserve(static_cast<int>(batch.size()));
  for (const auto& a : batch) {
    auto* m = r.add_messages();
    m->set_client(a.client);
    put_message(a.msg, *m);
    for (auto member : a.replicas) m->add_replicas(member);
    m->set_write_quorum(static_cast<std::uint32_t>(a.write_quorum));
  }
  return r.SerializeAsString();
}

bool decode_batch(std::string_view data, std::vector<addressed>& out) {
  v1::LogBatch r;
  if (!r.ParseFromArray(data.data(), static_cast<int>(data.size()))) return false;
  out.clear();
  out.reserve(static_cast<std::size_t>(r.messages_size()));
  for (const auto& m : r.messages()) {
    addressed a;
    a.client = m.client();
    if (!get_message(m, a.msg)) return false;
    a.replicas.assign(m.replicas().begin(), m.replicas().end());
    a.write_quorum = m.write_quorum();
    out.push_back(std::move(a));
  }
  return true;
}

}  // namespace ringmq::cluster::replication
