#pragma once
// The member set: who is part of the cluster, as a set of join, drain and
// leave events merged by union (docs/cluster.md, "Membership"). Union is
// commutative, associative and idempotent, so two nodes that exchanged their
// sets hold the same set, the same epoch (its number of events) and compute
// the same ring, whatever order the events reached them in. Next to the events,
// each member's advertised address with a version only that member raises.
// A value type; not thread-safe.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace ringmq::cluster::v1 {
class MemberSet;
}
namespace ringmq::cluster {

struct member_event {
  // drain: the member of that incarnation is leaving; it stays a member
  // (it forwards, it serves) but holds no new session copies (the ring for
  // sessions leaves it out) until its leave.
  enum class kind : std::uint8_t { join = 0, leave = 1, drain = 2 };
  kind what = kind::join;
  std::string node;
  std::uint64_t incarnation = 0;
  std::uint32_t vnodes = 0;  // join only

  friend auto operator<=>(const member_event& a, const member_event& b) {
    return std::tie(a.node, a.incarnation, a.what, a.vnodes) <=>
           std::tie(b.node, b.incarnation, b.what, b.vnodes);
  }
  friend bool operator==(const member_event&, const member_event&) = default;
};

struct member_info {
  std::string id;
  std::uint64_t incarnation = 0;
  std::uint32_t vnodes = 0;
  std::string address;  // empty while unknown
  bool draining = false;  // a drain of this incarnation is in the set

  friend bool operator==(const member_info&, const member_info&) = default;
};

class member_set {
 public:
  // Adds one event; true when it was not in the set.
  bool add(const member_event& e);
  // Sets `node`'s address if `version` is above the one held; true when changed.
  bool set_address(const std::string& node, const std::string& address, std::uint64_t version);
  // Union with `other`; true when this set changed (events or addresses).
  bool merge(const member_set& other);

  // Number of events: grows with every join and leave, equal on nodes that
  // hold the same set.
  std::uint64_t epoch() const noexcept { return events_.size(); }
  // Order-independent hash of the events, to tell equal epochs apart.
  std::uint64_t digest() const;

  // Current members (a join with no leave of the same or a later
  // incarnation), sorted by id.
  std::vector<member_info> members() const;
  std::optional<member_info> member(const std::string& node) const;
  bool is_member(const std::string& node) const { return member(node).has_value(); }
  // True when `node` of `incarnation` was removed by a leave.
  bool has_left(const std::string& node, std::uint64_t incarnation) const;
  // The address version held for `node` (0 when none).
  std::uint64_t address_version(const std::string& node) const;

  const std::set<member_event>& events() const noexcept { return events_; }

  void to_proto(v1::MemberSet& out) const;
  static member_set from_proto(const v1::MemberSet& in);

  friend bool operator==(const member_set&, const member_set&) = default;

 private:
  struct address_entry {
    std::string address;
    std::uint64_t version = 0;
    friend bool operator==(const address_entry&, const address_entry&) = default;
  };
  std::set<member_event> events_;
  std::map<std::string, address_entry> addresses_;
};

}  // namespace ringmq::cluster
