// The route table: counts per node, matching plain filters and shared groups,
// an origin's snapshot followed by its later deltas equals its full state,
// digests tell divergence, and a node's routes go at once.

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <vector>

#include "cluster/route_table.hpp"

namespace ringmq::cluster {
namespace {

std::set<origin_index> plain_matches(const route_table& t, std::string_view topic) {
  std::set<origin_index> out;
  t.match(topic, [&](origin_index o) { out.insert(o); }, [](const route_table::shared_group&) {});
  return out;
}

std::map<std::string, std::map<origin_index, std::uint32_t>> groups(const route_table& t,
                                                                     std::string_view topic) {
  std::map<std::string, std::map<origin_index, std::uint32_t>> out;
  t.match(topic, [](origin_index) {}, [&](const route_table::shared_group& g) {
    for (const auto& [o, c] : g.members) out[g.name + "/" + g.filter][o] = c;
  });
  return out;
}

TEST(RouteTable, MatchesPlainFiltersOncePerNodeNotPerClient) {
  route_table t(4);
  t.set(1, "sensors/+/temperature", 1);
  t.set(2, "sensors/#", 1);
  t.set(3, "other/#", 1);
  EXPECT_EQ(plain_matches(t, "sensors/kitchen/temperature"), (std::set<origin_index>{1, 2}));
  EXPECT_EQ(plain_matches(t, "other/x"), (std::set<origin_index>{3}));
  EXPECT_TRUE(plain_matches(t, "$SYS/x").empty()) << "wildcards do not match $ topics";
  t.set(2, "sensors/#", 0);
  EXPECT_EQ(plain_matches(t, "sensors/kitchen/temperature"), (std::set<origin_index>{1}));
  EXPECT_EQ(t.count_of(2), 0u);
}

TEST(RouteTable, SharedGroupsCarryMembersPerNode) {
  route_table t(4);
  t.set(0, "$share/workers/jobs/#", 2);
  t.set(1, "$share/workers/jobs/#", 3);
  t.set(2, "$share/audit/jobs/#", 1);
  const auto g = groups(t, "jobs/42");
  EXPECT_EQ(g.at("workers/jobs/#"), (std::map<origin_index, std::uint32_t>{{0, 2}, {1, 3}}));
  EXPECT_EQ(g.at("audit/jobs/#"), (std::map<origin_index, std::uint32_t>{{2, 1}}));
  t.set(1, "$share/workers/jobs/#", 1);
  EXPECT_EQ(groups(t, "jobs/42").at("workers/jobs/#").at(1), 1u) << "a count changes in place";
  t.set(0, "$share/workers/jobs/#", 0);
  t.set(1, "$share/workers/jobs/#", 0);
  EXPECT_FALSE(groups(t, "jobs/42").contains("workers/jobs/#"));
}

TEST(RouteTable, DroppingANodeRemovesAllItsRoutesAtOnce) {
  route_table t(2);
  for (int i = 0; i < 100; ++i) t.set(5, "plant/" + std::to_string(i) + "/#", 1);
  t.set(5, "$share/g/plant/#", 4);
  t.set(6, "plant/1/#", 1);
  t.drop(5);
  EXPECT_EQ(t.count_of(5), 0u);
  EXPECT_EQ(plain_matches(t, "plant/1/x"), (std::set<origin_index>{6}));
  EXPECT_TRUE(groups(t, "plant/1/x").empty());
  EXPECT_EQ(t.digest_of(5), 0u);
}

// What an origin does: local changes numbered in order; a receiver that
// applies a snapshot taken at any point, then only the later deltas, ends
// with exactly the origin's state.
TEST(RouteTable, SnapshotThenLaterDeltasEqualsTheFullState) {
  std::mt19937 rng(3);
  for (int round = 0; round < 40; ++round) {
    std::map<std::string, std::uint32_t> origin;
    struct delta {
      std::uint64_t seq;
      std::string filter;
      std::uint32_t count;
    };
    std::vector<delta> log;
    std::vector<route_entry> snapshot;
    std::uint64_t snapshot_seq = 0;
    const int snapshot_at = static_cast<int>(rng() % 300);
    for (int i = 0; i < 300; ++i) {
      if (i == snapshot_at) {
        snapshot.clear();
        for (const auto& [f, c] : origin) snapshot.push_back({f, c});
        snapshot_seq = log.size();
      }
      const bool shared = rng() % 3 == 0;
      const auto filter = (shared ? "$share/g" + std::to_string(rng() % 3) + "/" : std::string()) +
                          "t/" + std::to_string(rng() % 25) + (rng() % 2 ? "/#" : "");
      const std::uint32_t count = rng() % 2 ? 0 : (shared ? 1 + rng() % 4 : 1);
      if (count == 0) {
        origin.erase(filter);
      } else {
        origin[filter] = count;
      }
      log.push_back({log.size() + 1, filter, count});
    }
    route_table receiver(2);
    // Deltas sent before the snapshot arrive first (they were queued), then
    // the snapshot, then the rest, some of which the snapshot already holds.
    for (std::size_t i = 0; i < snapshot_seq / 2; ++i) {
      receiver.set(1, log[i].filter, log[i].count);
    }
    receiver.replace(1, snapshot);
    std::uint64_t applied = snapshot_seq;
    for (const auto& d : log) {
      if (d.seq <= applied) continue;  // the rule: deltas up to the snapshot's seq are skipped
      receiver.set(1, d.filter, d.count);
      applied = d.seq;
    }
    std::vector<route_entry> full;
    for (const auto& [f, c] : origin) full.push_back({f, c});
    EXPECT_EQ(receiver.routes_of(1), full) << "round " << round;
    EXPECT_EQ(receiver.digest_of(1), route_table::digest(full));
  }
}

TEST(RouteTable, ADigestShowsDivergenceAndASnapshotRepairsIt) {
  route_table origin_view(2), receiver(2);
  for (int i = 0; i < 50; ++i) {
    origin_view.set(0, "d/" + std::to_string(i), 1);
    if (i != 17) receiver.set(4, "d/" + std::to_string(i), 1);  // one delta lost
  }
  receiver.set(4, "stale/#", 1);  // and one remove lost
  EXPECT_NE(receiver.digest_of(4), origin_view.digest_of(0));
  receiver.replace(4, origin_view.routes_of(0));
  EXPECT_EQ(receiver.digest_of(4), origin_view.digest_of(0));
  EXPECT_EQ(receiver.count_of(4), 50u);
  EXPECT_TRUE(plain_matches(receiver, "stale/x").empty());
  EXPECT_EQ(plain_matches(receiver, "d/17"), (std::set<origin_index>{4}));
}

TEST(RouteTable, InvalidFiltersAreIgnored) {
  route_table t(1);
  t.set(1, "a/#/b", 1);
  t.set(1, "", 1);
  EXPECT_EQ(t.count_of(1), 0u);
}

}  // namespace
}  // namespace ringmq::cluster
