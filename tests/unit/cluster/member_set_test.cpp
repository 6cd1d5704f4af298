// The member set: a union of join and leave events. Merging in any order,
// any number of times, gives the same set, epoch and digest; a leave ends the
// incarnation it names and not a later one; addresses follow their version.

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "cluster/member_set.hpp"
#include "ringmq/cluster/v1/cluster.pb.h"

namespace ringmq::cluster {
namespace {

member_event join(std::string node, std::uint64_t inc, std::uint32_t vnodes = 128) {
  return {member_event::kind::join, std::move(node), inc, vnodes};
}
member_event leave(std::string node, std::uint64_t inc) {
  return {member_event::kind::leave, std::move(node), inc, 0};
}

std::vector<std::string> ids(const member_set& s) {
  std::vector<std::string> out;
  for (const auto& m : s.members()) out.push_back(m.id);
  return out;
}

TEST(MemberSet, MergingInAnyOrderGivesOneSetEpochAndDigest) {
  const std::vector<member_event> events{join("n1", 1), join("n2", 5), join("n3", 9),
                                         leave("n2", 5), join("n2", 12), join("n4", 3)};
  std::mt19937 rng(11);
  member_set reference;
  for (const auto& e : events) reference.add(e);
  for (int round = 0; round < 50; ++round) {
    // Spread the events over three nodes, merge them pairwise in a random order.
    std::vector<member_set> nodes(3);
    for (const auto& e : events) nodes[rng() % 3].add(e);
    std::vector<int> order{0, 1, 2, 0, 2, 1};
    std::shuffle(order.begin(), order.end(), rng);
    member_set merged;
    for (int i : order) merged.merge(nodes[i]);
    EXPECT_EQ(merged, reference);
    EXPECT_EQ(merged.epoch(), events.size());
    EXPECT_EQ(merged.digest(), reference.digest());
    EXPECT_FALSE(merged.merge(reference)) << "merging what it has changes nothing";
  }
}

TEST(MemberSet, AMemberIsAJoinWithoutALeaveOfItsIncarnation) {
  member_set s;
  s.add(join("n1", 1));
  s.add(join("n2", 5));
  EXPECT_EQ(ids(s), (std::vector<std::string>{"n1", "n2"}));
  s.add(leave("n2", 5));
  EXPECT_EQ(ids(s), (std::vector<std::string>{"n1"}));
  EXPECT_TRUE(s.has_left("n2", 5));
  // A new incarnation (a new empty data directory) is a member again.
  s.add(join("n2", 20, 64));
  ASSERT_TRUE(s.member("n2"));
  EXPECT_EQ(s.member("n2")->incarnation, 20u);
  EXPECT_EQ(s.member("n2")->vnodes, 64u);
  EXPECT_FALSE(s.has_left("n2", 20));
  EXPECT_EQ(s.epoch(), 4u) << "the epoch counts every event and never goes down";
}

TEST(MemberSet, EqualEpochsOfDifferentSetsHaveDifferentDigests) {
  member_set a, b;
  a.add(join("n1", 1));
  a.add(join("n2", 1));
  b.add(join("n1", 1));
  b.add(join("n3", 1));
  EXPECT_EQ(a.epoch(), b.epoch());
  EXPECT_NE(a.digest(), b.digest());
}

TEST(MemberSet, AddressesFollowTheirVersion) {
  member_set s;
  s.add(join("n1", 1));
  EXPECT_TRUE(s.set_address("n1", "10.0.0.1:7946", 100));
  EXPECT_FALSE(s.set_address("n1", "10.0.0.9:7946", 50)) << "older";
  EXPECT_TRUE(s.set_address("n1", "10.0.0.2:7946", 200)) << "the pod came back with a new IP";
  EXPECT_EQ(s.member("n1")->address, "10.0.0.2:7946");
  member_set other;
  other.set_address("n1", "10.0.0.3:7946", 300);
  EXPECT_TRUE(s.merge(other));
  EXPECT_EQ(s.member("n1")->address, "10.0.0.3:7946");
  // Two values at one version still converge, whichever side merges.
  member_set x, y;
  x.set_address("n5", "a:1", 7);
  y.set_address("n5", "b:1", 7);
  auto xy = x;
  xy.merge(y);
  auto yx = y;
  yx.merge(x);
  EXPECT_EQ(xy, yx);
}

TEST(MemberSet, RoundTripsThroughTheWire) {
  member_set s;
  s.add(join("n1", 1));
  s.add(join("n2", 7, 256));
  s.add(leave("n2", 7));
  s.add({member_event::kind::drain, "n1", 1, 0});
  s.set_address("n1", "127.0.0.1:7946", 3);
  v1::MemberSet wire;
  s.to_proto(wire);
  const auto parsed = member_set::from_proto(wire);
  EXPECT_EQ(parsed, s);
  // Garbage without a node name is ignored rather than made into a member.
  auto* bad = wire.add_events();
  bad->set_kind(v1::MemberEvent::JOIN);
  EXPECT_EQ(member_set::from_proto(wire), s);
}

TEST(MemberSet, ALeavingMemberStaysAMemberUntilItsLeave) {
  member_set s;
  s.add(join("n1", 1));
  s.add(join("n2", 5));
  s.add({member_event::kind::drain, "n2", 5, 0});
  auto members = s.members();
  ASSERT_EQ(members.size(), 2u);
  EXPECT_FALSE(members[0].draining);
  EXPECT_TRUE(members[1].draining) << "n2 is leaving";
  EXPECT_EQ(members[1].vnodes, 128u) << "its join still says what it is";
  EXPECT_EQ(s.epoch(), 3u);
  // A drain of an earlier incarnation says nothing of a later one.
  s.add(join("n2", 9));
  EXPECT_FALSE(s.member("n2")->draining);
  s.add({member_event::kind::drain, "n2", 9, 0});
  s.add(leave("n2", 9));
  EXPECT_FALSE(s.is_member("n2"));
  EXPECT_EQ(s.epoch(), 6u);
}

}  // namespace
}  // namespace ringmq::cluster
