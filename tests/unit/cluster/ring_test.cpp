// The ring: balanced shares, about 1/N of the keys move when one member of N
// comes or goes (and only those that must), preference lists of distinct
// members, the same ring whatever order the members are given in.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "cluster/ring.hpp"

namespace ringmq::cluster {
namespace {

std::vector<ring_member> named(const std::string& prefix, int count, int first = 0) {
  std::vector<ring_member> out;
  for (int i = first; i < first + count; ++i) out.push_back({prefix + std::to_string(i), 128});
  return out;
}

std::vector<std::string> client_ids(int count) {
  std::vector<std::string> out;
  out.reserve(count);
  for (int i = 0; i < count; ++i) out.push_back("device-" + std::to_string(i * 7919 + 13));
  return out;
}

// Largest relative distance of a member's share from its fair share.
double worst_imbalance(const std::map<std::string, std::size_t>& counts, std::size_t total) {
  const double fair = static_cast<double>(total) / static_cast<double>(counts.size());
  double worst = 0;
  for (const auto& [id, n] : counts) worst = std::max(worst, std::abs(n - fair) / fair);
  return worst;
}

TEST(Ring, SharesAreWithinTenPercentAt128Vnodes) {
  const auto keys = client_ids(200'000);
  for (const auto* prefix : {"n", "ringmq-", "broker-eu-"}) {
    for (int n = 2; n <= 10; ++n) {
      const ring r(named(prefix, n, 1));
      std::map<std::string, std::size_t> slots, owned;
      const auto counts = r.slot_counts();
      for (std::size_t i = 0; i < r.members().size(); ++i) slots[r.members()[i].id] = counts[i];
      for (const auto& k : keys) ++owned[r.owner(k)];
      EXPECT_LE(worst_imbalance(slots, ring::slot_count), 0.10)
          << n << " members named " << prefix << "*: slot shares";
      EXPECT_LE(worst_imbalance(owned, keys.size()), 0.10)
          << n << " members named " << prefix << "*: client id shares";
    }
  }
}

TEST(Ring, AddingAMemberMovesAboutOneNthAndOnlyToIt) {
  const auto keys = client_ids(100'000);
  for (int n = 2; n <= 8; ++n) {
    const ring before(named("n", n, 1));
    auto grown = named("n", n, 1);
    grown.push_back({"n" + std::to_string(n + 1), 128});
    const ring after(grown);
    const std::string newcomer = "n" + std::to_string(n + 1);
    std::size_t moved = 0;
    for (const auto& k : keys) {
      if (before.owner(k) == after.owner(k)) continue;
      ++moved;
      ASSERT_EQ(after.owner(k), newcomer) << "a key moved between two old members";
    }
    const double expected = 1.0 / (n + 1);
    const double fraction = static_cast<double>(moved) / keys.size();
    EXPECT_NEAR(fraction, expected, expected * 0.15) << n << " -> " << n + 1 << " members";
  }
}

TEST(Ring, RemovingAMemberMovesOnlyItsKeys) {
  const auto keys = client_ids(100'000);
  for (int n = 3; n <= 9; ++n) {
    const ring before(named("n", n, 1));
    const std::string leaving = "n2";
    auto shrunk = named("n", n, 1);
    shrunk.erase(std::remove_if(shrunk.begin(), shrunk.end(),
                                [&](const ring_member& m) { return m.id == leaving; }),
                 shrunk.end());
    const ring after(shrunk);
    std::size_t moved = 0;
    for (const auto& k : keys) {
      if (before.owner(k) == after.owner(k)) continue;
      ++moved;
      ASSERT_EQ(before.owner(k), leaving) << "a key of a member that stayed moved";
      // It goes to the next member of its preference list.
      ASSERT_EQ(after.owner(k), before.preference_list(k, 2)[1]);
    }
    const double expected = 1.0 / n;
    EXPECT_NEAR(static_cast<double>(moved) / keys.size(), expected, expected * 0.15);
  }
}

TEST(Ring, PreferenceListsHoldDistinctMembersOwnerFirst) {
  const ring r(named("n", 5, 1));
  for (const auto& k : client_ids(2'000)) {
    const auto list = r.preference_list(k, 3);
    ASSERT_EQ(list.size(), 3u);
    EXPECT_EQ(list[0], r.owner(k));
    auto sorted = list;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end()) << "a member twice";
  }
  // Asking for more than there are gives every member once.
  EXPECT_EQ(r.preference_list("x", 9).size(), 5u);
}

TEST(Ring, TheSameMembersInAnyOrderMakeTheSameRing) {
  auto members = named("n", 6, 1);
  const ring a(members);
  std::reverse(members.begin(), members.end());
  std::swap(members[1], members[4]);
  const ring b(members);
  for (const auto& k : client_ids(5'000)) {
    ASSERT_EQ(a.preference_list(k, 6), b.preference_list(k, 6)) << k;
  }
}

TEST(Ring, VnodesWeighAMembersShare) {
  const ring r({{"big", 256}, {"small-1", 128}, {"small-2", 128}});
  std::map<std::string, std::size_t> owned;
  const auto keys = client_ids(100'000);
  for (const auto& k : keys) ++owned[r.owner(k)];
  EXPECT_NEAR(static_cast<double>(owned["big"]) / keys.size(), 0.5, 0.03);
  EXPECT_NEAR(static_cast<double>(owned["small-1"]) / keys.size(), 0.25, 0.03);
}

TEST(Ring, FirstUsableSkipsMembersThatAreDown) {
  const ring r(named("n", 4, 1));
  for (const auto& k : client_ids(500)) {
    const auto list = r.preference_list(k, 4);
    EXPECT_EQ(r.first_usable(k, [](const std::string&) { return true; }), list[0]);
    const auto down = list[0];
    EXPECT_EQ(r.first_usable(k, [&](const std::string& id) { return id != down; }), list[1]);
    EXPECT_EQ(r.first_usable(k, [](const std::string&) { return false; }), "");
  }
}

TEST(Ring, AKeysSlotIsStable) {
  // Every node, whatever its build, puts a key in the same slot: pinned values.
  EXPECT_EQ(ring::slot_of("device-1"), ring::slot_of(std::string("device-1")));
  EXPECT_LT(ring::slot_of(""), ring::slot_count);
  const ring one({{"solo", 128}});
  EXPECT_EQ(one.owner("anything"), "solo");
  EXPECT_EQ(one.slot_counts(), std::vector<std::uint32_t>{ring::slot_count});
}

}  // namespace
}  // namespace ringmq::cluster
