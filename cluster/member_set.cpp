#include "cluster/member_set.hpp"

#include "broker/core/stable_hash.hpp"
#include "ringmq/cluster/v1/cluster.pb.h"

namespace ringmq::cluster {

bool member_set::add(const member_event& e) { return events_.insert(e).second; }

bool member_set::set_address(const std::string& node, const std::string& address,
                             std::uint64_t version) {
  auto [it, added] = addresses_.try_emplace(node);
  auto& entry = it->second;
  if (!added) {
    // Only the node itself raises its version; the tie rule only makes sure
    // that two sets holding different values at one version still converge.
    if (version < entry.version) return false;
    if (version == entry.version && address <= entry.address) return false;
  }
  entry.address = address;
  entry.version = version;
  return true;
}

bool member_set::merge(const member_set& other) {
  bool changed = false;
  for (const auto& e : other.events_) changed |= add(e);
  for (const auto& [node, a] : other.addresses_) {
    changed |= set_address(node, a.address, a.version);
  }
  return changed;
}

std::uint64_t member_set::digest() const {
  std::uint64_t d = 0;
  for (const auto& e : events_) {
    auto h = core::fnv1a64(e.node);
    h = core::hash_combine(h, e.incarnation);
    h = core::hash_combine(h, static_cast<std::uint64_t>(e.what));
    h = core::hash_combine(h, e.vnodes);
    d ^= h;
  }
  return d;
}

std::vector<member_info> member_set::members() const {
  std::vector<member_info> out;
  // Events are ordered by node, then incarnation: one pass per node.
  for (auto it = events_.begin(); it != events_.end();) {
    const auto& node = it->node;
    std::optional<member_info> current;
    std::uint64_t left_up_to = 0;
    bool any_leave = false;
    std::set<std::uint64_t> draining;
    for (; it != events_.end() && it->node == node; ++it) {
      if (it->what == member_event::kind::leave) {
        any_leave = true;
        left_up_to = std::max(left_up_to, it->incarnation);
      } else if (it->what == member_event::kind::drain) {
        draining.insert(it->incarnation);
      } else if (!current || it->incarnation >= current->incarnation) {
        current = member_info{node, it->incarnation, it->vnodes, {}};
      }
    }
    if (!current || (any_leave && left_up_to >= current->incarnation)) continue;
    current->draining = draining.contains(current->incarnation);
    if (auto a = addresses_.find(node); a != addresses_.end()) current->address = a->second.address;
    out.push_back(std::move(*current));
  }
  return out;
}

std::optional<member_info> member_set::member(const std::string& node) const {
  for (auto& m : members()) {
    if (m.id == node) return m;
  }
  return std::nullopt;
}

bool member_set::has_left(const std::string& node, std::uint64_t incarnation) const {
  for (auto it = events_.lower_bound(member_event{member_event::kind::join, node, 0, 0});
       it != events_.end() && it->node == node; ++it) {
    if (it->what == member_event::kind::leave && it->incarnation >= incarnation) return true;
  }
  return false;
}

std::uint64_t member_set::address_version(const std::string& node) const {
  auto it = addresses_.find(node);
  return it == addresses_.end() ? 0 : it->second.version;
}

void member_set::to_proto(v1::MemberSet& out) const {
  out.clear_events();
  out.clear_addresses();
  for (const auto& e : events_) {
    auto* pe = out.add_events();
    pe->set_kind(e.what == member_event::kind::join    ? v1::MemberEvent::JOIN
                 : e.what == member_event::kind::drain ? v1::MemberEvent::DRAIN
                                                       : v1::MemberEvent::LEAVE);
    pe->set_node(e.node);
    pe->set_incarnation(e.incarnation);
    pe->set_vnodes(e.vnodes);
  }
  for (const auto& [node, a] : addresses_) {
    auto* pa = out.add_addresses();
    pa->set_node(node);
    pa->set_address(a.address);
    pa->set_version(a.version);
  }
}

member_set member_set::from_proto(const v1::MemberSet& in) {
  member_set s;
  for (const auto& pe : in.events()) {
    member_event e;
    e.what = pe.kind() == v1::MemberEvent::LEAVE   ? member_event::kind::leave
             : pe.kind() == v1::MemberEvent::DRAIN ? member_event::kind::drain
                                                   : member_event::kind::join;
    e.node = pe.node();
    e.incarnation = pe.incarnation();
    e.vnodes = e.what == member_event::kind::join ? pe.vnodes() : 0;
    if (e.node.empty()) continue;
    s.add(e);
  }
  for (const auto& pa : in.addresses()) {
    if (!pa.node().empty()) s.set_address(pa.node(), pa.address(), pa.version());
  }
  return s;
}

}  // namespace ringmq::cluster
