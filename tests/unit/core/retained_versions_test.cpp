// Versioned retained writes as the cluster applies them: last writer wins by
// (HLC, origin) whatever the order of arrival, tombstones keep older writes
// out, and the digest is equal exactly when the replicated state is.

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "broker/core/hlc.hpp"
#include "broker/core/retained_index.hpp"

namespace ringmq::core {
namespace {

message_ptr write(std::string topic, std::string payload) {
  auto m = std::make_shared<message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->retain = true;
  return m;
}

TEST(HybridClock, FollowsTheWallClockAndNeverGoesBack) {
  hybrid_clock c;
  const auto a = c.now(1'000);
  EXPECT_EQ(hybrid_clock::wall_ms_of(a), 1'000u);
  const auto b = c.now(1'000);
  EXPECT_GT(b, a) << "same millisecond: the counter moves";
  const auto back = c.now(900);
  EXPECT_GT(back, b) << "the wall clock went back: the timestamp does not";
  EXPECT_EQ(hybrid_clock::wall_ms_of(c.now(2'000)), 2'000u);
}

TEST(HybridClock, MovesPastWhatItObserves) {
  hybrid_clock local;
  // A peer whose clock is an hour ahead wrote something; a later local write
  // (with the local wall clock behind) still orders after it.
  const auto remote = hybrid_clock::make(1'000 + 3'600'000, 5);
  local.observe(remote);
  EXPECT_GT(local.now(1'000), remote);
  // Observing an older timestamp changes nothing.
  const auto before = local.last();
  local.observe(hybrid_clock::make(10, 0));
  EXPECT_EQ(local.last(), before);
}

TEST(HybridClock, TimestampsFarAheadOfTheWallClockAreNotPlausibleAndNowNeverWraps) {
  const std::uint64_t wall = 1'700'000'000'000;
  EXPECT_TRUE(hybrid_clock::plausible(hybrid_clock::make(wall + 3'600'000, 0), wall))
      << "an hour of clock skew between nodes is taken";
  EXPECT_FALSE(hybrid_clock::plausible(hybrid_clock::make(wall + hybrid_clock::max_ahead_ms + 1, 0),
                                       wall));
  EXPECT_FALSE(hybrid_clock::plausible(~std::uint64_t{0}, wall));
  // Had the top of the range been observed, the clock stays there instead of
  // wrapping to 0 (a write numbered 0 would lose to every earlier one).
  hybrid_clock c;
  c.observe(~std::uint64_t{0});
  EXPECT_EQ(c.now(wall), ~std::uint64_t{0});
  EXPECT_EQ(c.now(wall), ~std::uint64_t{0});
}

TEST(RetainedVersions, LastWriterWinsWhateverTheOrder) {
  const retained_version v1{hybrid_clock::make(100, 0), "n1"};
  const retained_version v2{hybrid_clock::make(100, 0), "n2"};  // same time: origin decides
  const retained_version v3{hybrid_clock::make(101, 0), "n1"};
  std::vector<std::pair<message_ptr, retained_version>> writes{
      {write("t", "first"), v1}, {write("t", "tie"), v2}, {write("t", "last"), v3}};
  std::sort(writes.begin(), writes.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
  do {
    retained_index index;
    for (const auto& [m, v] : writes) index.apply(m, v);
    ASSERT_NE(index.get("t"), nullptr);
    EXPECT_EQ(index.get("t")->payload, "last");
    EXPECT_EQ(index.version_of("t"), v3);
  } while (std::next_permutation(writes.begin(), writes.end(), [](const auto& a, const auto& b) {
    return a.second < b.second;
  }));
}

TEST(RetainedVersions, ATombstoneKeepsAnOlderWriteOut) {
  retained_index index;
  const retained_version set{hybrid_clock::make(100, 0), "n1"};
  const retained_version clear{hybrid_clock::make(200, 0), "n3"};
  EXPECT_TRUE(index.apply(write("alarm", ""), clear));
  EXPECT_EQ(index.get("alarm"), nullptr);
  EXPECT_EQ(index.tombstone_count(), 1u);
  EXPECT_FALSE(index.apply(write("alarm", "on"), set)) << "older than the clear: refused";
  EXPECT_EQ(index.get("alarm"), nullptr);
  EXPECT_EQ(index.size(), 0u);
  // A newer write brings it back and replaces the tombstone.
  EXPECT_TRUE(index.apply(write("alarm", "again"), {hybrid_clock::make(300, 0), "n2"}));
  EXPECT_EQ(index.get("alarm")->payload, "again");
  EXPECT_EQ(index.tombstone_count(), 0u);
}

TEST(RetainedVersions, DigestsAgreeExactlyWhenTheStateDoes) {
  // Two replicas receive the same writes in different orders.
  std::vector<std::pair<message_ptr, retained_version>> writes;
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    const auto topic = "site/" + std::to_string(rng() % 40);
    const bool clear = rng() % 4 == 0;
    writes.push_back({write(topic, clear ? "" : "v" + std::to_string(i)),
                      {hybrid_clock::make(1'000 + rng() % 500, rng() % 3),
                       "n" + std::to_string(rng() % 3)}});
  }
  retained_index a, b;
  for (const auto& [m, v] : writes) a.apply(m, v);
  std::shuffle(writes.begin(), writes.end(), rng);
  for (const auto& [m, v] : writes) b.apply(m, v);
  EXPECT_EQ(a.digest(), b.digest());
  EXPECT_EQ(a.replicated_count(), b.replicated_count());
  EXPECT_EQ(a.size(), b.size());
  // One more write on one side only: the digests differ; the same on the other: equal again.
  const auto extra = write("site/new", "x");
  const retained_version v{hybrid_clock::make(5'000, 0), "n1"};
  a.apply(extra, v);
  EXPECT_NE(a.digest(), b.digest());
  b.apply(extra, v);
  EXPECT_EQ(a.digest(), b.digest());
}

TEST(RetainedVersions, SysTopicsAreNotReplicated) {
  retained_index index;
  index.set(write("$SYS/broker/uptime", "10"));
  EXPECT_EQ(index.replicated_count(), 0u);
  EXPECT_EQ(index.digest(), 0u);
  std::size_t visited = 0;
  index.for_each_versioned([&](const std::string&, const message_ptr&, const retained_version&) {
    ++visited;
  });
  EXPECT_EQ(visited, 0u);
}

TEST(RetainedVersions, TombstonesArePurgedAfterTheirTime) {
  retained_index index;
  index.apply(write("old", ""), {hybrid_clock::make(100, 0), "n1"});
  index.apply(write("new", ""), {hybrid_clock::make(900, 0), "n1"});
  std::vector<std::string> purged;
  EXPECT_EQ(index.purge_tombstones(hybrid_clock::make(500, 0),
                                   [&](const std::string& t) { purged.push_back(t); }),
            1u);
  EXPECT_EQ(purged, std::vector<std::string>{"old"});
  EXPECT_EQ(index.tombstone_count(), 1u);
  EXPECT_EQ(index.replicated_count(), 1u);
}

TEST(RetainedVersions, SnapshotHoldsMessagesAndTombstones) {
  retained_index index;
  index.apply(write("a", "1"), {10, "n1"});
  index.apply(write("b", ""), {11, "n2"});
  std::map<std::string, bool> seen;  // topic -> is a message
  index.for_each_versioned([&](const std::string& topic, const message_ptr& m,
                               const retained_version&) { seen[topic] = m != nullptr; });
  EXPECT_EQ(seen, (std::map<std::string, bool>{{"a", true}, {"b", false}}));
}

}  // namespace
}  // namespace ringmq::core
