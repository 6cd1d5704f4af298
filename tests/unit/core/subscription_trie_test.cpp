// The subscription trie: plain and shared subscriptions, replacement, erasure with pruning, and
// a randomized comparison of match() with a brute-force scan using the reference rule
// (core::topic_matches), before and after random erases.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "broker/core/subscription_trie.hpp"
#include "broker/core/topic_levels.hpp"

namespace {

using ringmq::core::topic_matches;

// The value remembers its filter so a match can be traced back to the subscription it came from.
struct sub_value {
  std::string filter;
  int version = 0;
};
using trie = ringmq::core::subscription_trie<int, sub_value>;

struct hit {
  int key;
  std::string filter;
  int version;
  friend auto operator<=>(const hit&, const hit&) = default;
};

struct group_hit {
  std::string name;
  std::string filter;
  std::vector<int> members;  // sorted
  friend auto operator<=>(const group_hit&, const group_hit&) = default;
};

// Sorted, with duplicates kept: a subscription reported twice is a failure.
std::vector<hit> plain_matches(const trie& t, std::string_view topic) {
  std::vector<hit> out;
  t.match(
      topic, [&](int key, const sub_value& v) { out.push_back({key, v.filter, v.version}); },
      [](const trie::shared_group&) {});
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<group_hit> group_matches(const trie& t, std::string_view topic) {
  std::vector<group_hit> out;
  t.match(
      topic, [](int, const sub_value&) {},
      [&](const trie::shared_group& g) {
        group_hit h{g.name, g.filter, {}};
        for (const auto& m : g.members) h.members.push_back(m.first);
        std::sort(h.members.begin(), h.members.end());
        out.push_back(std::move(h));
      });
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int> keys_matching(const trie& t, std::string_view topic) {
  std::vector<int> keys;
  for (const auto& h : plain_matches(t, topic)) keys.push_back(h.key);
  return keys;
}

using keys = std::vector<int>;

TEST(TrieBasics, EmptyTrieMatchesNothing) {
  trie t;
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(plain_matches(t, "a/b").empty());
  EXPECT_TRUE(group_matches(t, "a/b").empty());
  EXPECT_FALSE(t.erase("a/b", 1));
  EXPECT_FALSE(t.erase_shared("g", "a/b", 1));
  EXPECT_EQ(t.find_group("g", "a/b"), nullptr);
  EXPECT_TRUE(t.empty());
}

TEST(TrieBasics, InsertReportsNewAndCountsSize) {
  trie t;
  EXPECT_TRUE(t.insert("a/b", 1, {"a/b", 1}));
  EXPECT_TRUE(t.insert("a/b", 2, {"a/b", 1}));
  EXPECT_TRUE(t.insert("a/+", 1, {"a/+", 1}));
  EXPECT_FALSE(t.empty());
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(keys_matching(t, "a/b"), (keys{1, 1, 2}));
  EXPECT_EQ(keys_matching(t, "a/c"), (keys{1}));
  EXPECT_TRUE(keys_matching(t, "a").empty());
  EXPECT_TRUE(keys_matching(t, "a/b/c").empty());
}

TEST(TrieBasics, InsertingTheSameKeyAndFilterReplacesTheValue) {
  trie t;
  EXPECT_TRUE(t.insert("a/b", 1, {"a/b", 1}));
  EXPECT_FALSE(t.insert("a/b", 1, {"a/b", 2}));
  EXPECT_EQ(t.size(), 1u);
  const auto hits = plain_matches(t, "a/b");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].version, 2);
}

TEST(TrieBasics, WildcardsMatchByTheirRules) {
  trie t;
  t.insert("#", 1, {"#", 0});
  t.insert("a/#", 2, {"a/#", 0});
  t.insert("a/+", 3, {"a/+", 0});
  t.insert("+/b", 4, {"+/b", 0});
  t.insert("+/+/+", 5, {"+/+/+", 0});
  t.insert("a/+/#", 6, {"a/+/#", 0});
  t.insert("a/b/c", 7, {"a/b/c", 0});
  EXPECT_EQ(keys_matching(t, "a"), (keys{1, 2}));  // "a/#" includes its parent level
  EXPECT_EQ(keys_matching(t, "a/b"), (keys{1, 2, 3, 4, 6}));
  EXPECT_EQ(keys_matching(t, "a/b/c"), (keys{1, 2, 5, 6, 7}));
  EXPECT_EQ(keys_matching(t, "x/b"), (keys{1, 4}));
  EXPECT_EQ(keys_matching(t, "a/"), (keys{1, 2, 3, 6}));
  EXPECT_EQ(keys_matching(t, "/b"), (keys{1, 4}));
  EXPECT_EQ(keys_matching(t, "x/y/z/w"), (keys{1}));
}

TEST(TrieBasics, DollarTopicsSkipFirstLevelWildcards) {
  trie t;
  t.insert("#", 1, {"#", 0});
  t.insert("+/broker/uptime", 2, {"+/broker/uptime", 0});
  t.insert("$SYS/#", 3, {"$SYS/#", 0});
  t.insert("$SYS/broker/+", 4, {"$SYS/broker/+", 0});
  t.insert("+", 5, {"+", 0});
  t.insert("+/#", 6, {"+/#", 0});
  EXPECT_EQ(keys_matching(t, "$SYS/broker/uptime"), (keys{3, 4}));
  EXPECT_EQ(keys_matching(t, "$SYS"), (keys{3}));
  EXPECT_TRUE(keys_matching(t, "$other").empty());
  EXPECT_EQ(keys_matching(t, "sys/broker/uptime"), (keys{1, 2, 6}));
  // A '$' beyond the first level is an ordinary character.
  EXPECT_EQ(keys_matching(t, "a/$SYS"), (keys{1, 6}));
}

TEST(TrieBasics, EmptyLevelsAreDistinctLevels) {
  trie t;
  t.insert("a//b", 1, {"a//b", 0});
  t.insert("/", 2, {"/", 0});
  t.insert("/+", 3, {"/+", 0});
  t.insert("+/", 4, {"+/", 0});
  t.insert("a/b", 5, {"a/b", 0});
  EXPECT_EQ(keys_matching(t, "a//b"), (keys{1}));
  EXPECT_EQ(keys_matching(t, "/"), (keys{2, 3, 4}));
  EXPECT_EQ(keys_matching(t, "/x"), (keys{3}));
  EXPECT_EQ(keys_matching(t, "x/"), (keys{4}));
  EXPECT_EQ(keys_matching(t, "a/b"), (keys{5}));
  EXPECT_TRUE(keys_matching(t, "a/b/").empty());
}

TEST(TrieBasics, OverlappingFiltersOfOneKeyAreEachReported) {
  // The router folds them into one delivery; the trie reports every subscription.
  trie t;
  t.insert("a/#", 1, {"a/#", 0});
  t.insert("a/+", 1, {"a/+", 0});
  t.insert("a/b", 1, {"a/b", 0});
  const auto hits = plain_matches(t, "a/b");
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[0].filter, "a/#");
  EXPECT_EQ(hits[1].filter, "a/+");
  EXPECT_EQ(hits[2].filter, "a/b");
}

TEST(TrieErase, RemovesOnlyTheNamedSubscription) {
  trie t;
  t.insert("a/b", 1, {"a/b", 0});
  t.insert("a/b", 2, {"a/b", 0});
  t.insert("a/+", 1, {"a/+", 0});
  t.insert("a/#", 1, {"a/#", 0});
  EXPECT_TRUE(t.erase("a/b", 1));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(keys_matching(t, "a/b"), (keys{1, 1, 2}));
  EXPECT_FALSE(t.erase("a/b", 1));  // already gone
  EXPECT_FALSE(t.erase("a/b", 3));  // never there
  EXPECT_FALSE(t.erase("a/c", 1));  // matched by a wildcard, but not this filter
  EXPECT_FALSE(t.erase("a", 1));    // an inner node of other filters
  EXPECT_FALSE(t.erase("a/b/c", 2));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_TRUE(t.erase("a/+", 1));
  EXPECT_TRUE(t.erase("a/#", 1));
  EXPECT_EQ(keys_matching(t, "a/b"), (keys{2}));
  EXPECT_TRUE(keys_matching(t, "a").empty());
  EXPECT_EQ(t.size(), 1u);
}

TEST(TrieErase, ErasingEverythingPrunesToEmpty) {
  trie t;
  const std::vector<std::string> filters{"a/b/c/d", "a/b", "a/+/c", "#",   "a/#", "+",
                                         "+/+/#",   "/",   "a//b",  "$SYS/x", "+/b/#"};
  for (std::size_t i = 0; i < filters.size(); ++i) {
    t.insert(filters[i], static_cast<int>(i), {filters[i], 0});
    t.insert(filters[i], 100, {filters[i], 0});
  }
  t.insert_shared("g", "a/b", 1, {"a/b", 0});
  EXPECT_EQ(t.size(), 2 * filters.size() + 1);
  // Erase leaves before their parents and parents before leaves, to exercise both prunings.
  for (std::size_t i = 0; i < filters.size(); ++i) {
    EXPECT_TRUE(t.erase(filters[i], static_cast<int>(i))) << filters[i];
  }
  EXPECT_FALSE(t.empty());
  for (std::size_t i = filters.size(); i-- > 0;) {
    EXPECT_TRUE(t.erase(filters[i], 100)) << filters[i];
  }
  EXPECT_FALSE(t.empty());  // the shared member is left
  EXPECT_EQ(t.size(), 1u);
  EXPECT_TRUE(t.erase_shared("g", "a/b", 1));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(t.empty());
  EXPECT_TRUE(plain_matches(t, "a/b").empty());
}

TEST(TrieErase, PruningKeepsSiblingsAndAncestorsWithSubscribers) {
  trie t;
  t.insert("a", 1, {"a", 0});
  t.insert("a/b/c", 2, {"a/b/c", 0});
  t.insert("a/b/d", 3, {"a/b/d", 0});
  EXPECT_TRUE(t.erase("a/b/c", 2));
  EXPECT_EQ(keys_matching(t, "a"), (keys{1}));
  EXPECT_EQ(keys_matching(t, "a/b/d"), (keys{3}));
  EXPECT_TRUE(t.erase("a/b/d", 3));
  EXPECT_EQ(keys_matching(t, "a"), (keys{1}));
  // Re-inserting under a pruned path works.
  EXPECT_TRUE(t.insert("a/b/c", 2, {"a/b/c", 1}));
  EXPECT_EQ(keys_matching(t, "a/b/c"), (keys{2}));
  EXPECT_TRUE(t.erase("a", 1));
  EXPECT_TRUE(t.erase("a/b/c", 2));
  EXPECT_TRUE(t.empty());
}

TEST(TrieShared, GroupsAreReportedOncePerMatchingGroup) {
  trie t;
  EXPECT_TRUE(t.insert_shared("g1", "a/+", 1, {"a/+", 0}));
  EXPECT_TRUE(t.insert_shared("g1", "a/+", 2, {"a/+", 0}));
  EXPECT_TRUE(t.insert_shared("g2", "a/+", 3, {"a/+", 0}));
  EXPECT_TRUE(t.insert_shared("g1", "a/#", 4, {"a/#", 0}));
  EXPECT_EQ(t.size(), 4u);
  // Shared members are not plain subscribers.
  EXPECT_TRUE(plain_matches(t, "a/b").empty());
  const auto groups = group_matches(t, "a/b");
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0], (group_hit{"g1", "a/#", {4}}));
  EXPECT_EQ(groups[1], (group_hit{"g1", "a/+", {1, 2}}));
  EXPECT_EQ(groups[2], (group_hit{"g2", "a/+", {3}}));
  EXPECT_EQ(group_matches(t, "a"), (std::vector<group_hit>{{"g1", "a/#", {4}}}));
  EXPECT_TRUE(group_matches(t, "b/c").empty());
}

TEST(TrieShared, ReinsertingAMemberReplacesItsValue) {
  trie t;
  EXPECT_TRUE(t.insert_shared("g", "a", 1, {"a", 1}));
  EXPECT_FALSE(t.insert_shared("g", "a", 1, {"a", 2}));
  EXPECT_EQ(t.size(), 1u);
  const auto* g = t.find_group("g", "a");
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(g->members.size(), 1u);
  EXPECT_EQ(g->members[0].second.version, 2);
}

TEST(TrieShared, PlainAndSharedSubscriptionsOnOneFilterCoexist) {
  trie t;
  t.insert("a/b", 1, {"a/b", 0});
  t.insert_shared("g", "a/b", 1, {"a/b", 0});
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(keys_matching(t, "a/b"), (keys{1}));
  EXPECT_EQ(group_matches(t, "a/b").size(), 1u);
  EXPECT_TRUE(t.erase("a/b", 1));
  EXPECT_EQ(t.find_group("g", "a/b")->members.size(), 1u);  // the plain erase left the group
  EXPECT_FALSE(t.erase_shared("g", "a/b", 2));
  EXPECT_TRUE(t.erase_shared("g", "a/b", 1));
  EXPECT_TRUE(t.empty());
}

TEST(TrieShared, FindGroupNeedsTheExactGroupAndFilter) {
  trie t;
  t.insert_shared("g", "a/+/c", 1, {"a/+/c", 0});
  t.insert_shared("g", "$SYS/#", 2, {"$SYS/#", 0});
  const auto* g = t.find_group("g", "a/+/c");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->name, "g");
  EXPECT_EQ(g->filter, "a/+/c");
  ASSERT_NE(t.find_group("g", "$SYS/#"), nullptr);
  EXPECT_EQ(t.find_group("g", "$SYS/#")->filter, "$SYS/#");
  EXPECT_EQ(t.find_group("h", "a/+/c"), nullptr);
  EXPECT_EQ(t.find_group("g", "a/b/c"), nullptr);  // a topic it matches is not its filter
  EXPECT_EQ(t.find_group("g", "a/+"), nullptr);
  EXPECT_EQ(t.find_group("g", "a/+/c/d"), nullptr);
  EXPECT_EQ(t.find_group("g", "#"), nullptr);
}

TEST(TrieShared, ErasingTheLastMemberRemovesTheGroup) {
  trie t;
  t.insert_shared("g", "a/b", 1, {"a/b", 0});
  t.insert_shared("g", "a/b", 2, {"a/b", 0});
  EXPECT_FALSE(t.erase_shared("g", "a/b", 3));
  EXPECT_FALSE(t.erase_shared("h", "a/b", 1));
  EXPECT_FALSE(t.erase_shared("g", "a/c", 1));
  EXPECT_FALSE(t.erase("a/b", 1));  // not a plain subscription
  EXPECT_TRUE(t.erase_shared("g", "a/b", 1));
  ASSERT_NE(t.find_group("g", "a/b"), nullptr);
  EXPECT_EQ(t.find_group("g", "a/b")->members.size(), 1u);
  EXPECT_TRUE(t.erase_shared("g", "a/b", 2));
  EXPECT_EQ(t.find_group("g", "a/b"), nullptr);
  EXPECT_TRUE(group_matches(t, "a/b").empty());
  EXPECT_TRUE(t.empty());
}

TEST(TrieShared, RoundRobinCursorLivesWithTheGroup) {
  trie t;
  for (int k = 1; k <= 3; ++k) t.insert_shared("g", "a/+", k, {"a/+", 0});
  const auto* g = t.find_group("g", "a/+");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->cursor.load(), 0u);

  // The router picks members as the trie hands out a const group: the cursor must advance
  // through a const reference and visit every member in turn.
  auto pick = [](const trie::shared_group& group) {
    const auto start = group.cursor.fetch_add(1, std::memory_order_relaxed);
    return group.members[start % group.members.size()].first;
  };
  std::vector<int> picked;
  for (int i = 0; i < 6; ++i) {
    t.match("a/x", [](int, const sub_value&) {},
            [&](const trie::shared_group& group) { picked.push_back(pick(group)); });
  }
  EXPECT_EQ(picked, (keys{1, 2, 3, 1, 2, 3}));

  // Membership changes and unrelated inserts keep the group (and its cursor) where it is.
  t.insert_shared("g", "a/+", 4, {"a/+", 0});
  t.insert_shared("h", "a/+", 5, {"a/+", 0});
  for (int i = 0; i < 200; ++i) t.insert("x/" + std::to_string(i), i, {"x", 0});
  EXPECT_EQ(t.find_group("g", "a/+"), g);
  EXPECT_EQ(g->cursor.load(), 6u);
  EXPECT_TRUE(t.erase_shared("g", "a/+", 1));
  EXPECT_EQ(t.find_group("g", "a/+"), g);
  EXPECT_EQ(g->cursor.load(), 6u);
  EXPECT_EQ(t.find_group("h", "a/+")->cursor.load(), 0u);  // each group has its own
}

// --- randomized comparison with the reference rule ---------------------------------------------

const std::vector<std::string> first_levels{"a", "b", "", "$SYS", "$x", "c"};
const std::vector<std::string> inner_levels{"a", "b", "", "c", "$SYS"};

std::string random_topic(std::mt19937& rng) {
  while (true) {
    const auto count = std::uniform_int_distribution<int>(1, 5)(rng);
    std::string out;
    for (int i = 0; i < count; ++i) {
      const auto& pool = i == 0 ? first_levels : inner_levels;
      if (i) out += '/';
      out += pool[std::uniform_int_distribution<std::size_t>(0, pool.size() - 1)(rng)];
    }
    if (!out.empty()) return out;  // a topic name has at least one character
  }
}

std::string random_filter(std::mt19937& rng) {
  while (true) {
    const auto count = std::uniform_int_distribution<int>(1, 4)(rng);
    std::string out;
    for (int i = 0; i < count; ++i) {
      const auto& pool = i == 0 ? first_levels : inner_levels;
      if (i) out += '/';
      const auto roll = std::uniform_int_distribution<int>(0, 99)(rng);
      if (i == count - 1 && roll < 15) {
        out += '#';  // only ever the last level
      } else if (roll < 40) {
        out += '+';
      } else {
        out += pool[std::uniform_int_distribution<std::size_t>(0, pool.size() - 1)(rng)];
      }
    }
    if (!out.empty()) return out;
  }
}

// What the trie should hold, kept the simple way.
struct reference {
  std::map<std::pair<int, std::string>, int> plain;  // (key, filter) -> version
  // (group, filter) -> key -> version
  std::map<std::pair<std::string, std::string>, std::map<int, int>> shared;

  std::size_t size() const {
    std::size_t n = plain.size();
    for (const auto& [id, members] : shared) n += members.size();
    return n;
  }

  std::vector<hit> plain_matches(std::string_view topic) const {
    std::vector<hit> out;
    for (const auto& [sub, version] : plain) {
      if (topic_matches(sub.second, topic)) out.push_back({sub.first, sub.second, version});
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::vector<group_hit> group_matches(std::string_view topic) const {
    std::vector<group_hit> out;
    for (const auto& [id, members] : shared) {
      if (!topic_matches(id.second, topic)) continue;
      group_hit h{id.first, id.second, {}};
      for (const auto& m : members) h.members.push_back(m.first);
      out.push_back(std::move(h));
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

const std::vector<std::string> group_names{"g1", "g2", "g3"};

// Applies one random insert (plain or shared) to both, checking the trie's "new" answer.
void random_insert(std::mt19937& rng, trie& t, reference& ref, int version) {
  const auto filter = random_filter(rng);
  const int key = std::uniform_int_distribution<int>(0, 39)(rng);
  if (std::uniform_int_distribution<int>(0, 9)(rng) == 0) {
    const auto& group = group_names[std::uniform_int_distribution<std::size_t>(0, 2)(rng)];
    auto& members = ref.shared[{group, filter}];
    const bool is_new = members.find(key) == members.end();
    members[key] = version;
    ASSERT_EQ(t.insert_shared(group, filter, key, {filter, version}), is_new)
        << "$share/" << group << "/" << filter << " key " << key;
    const auto* g = t.find_group(group, filter);
    ASSERT_NE(g, nullptr);
    ASSERT_EQ(g->members.size(), members.size());
  } else {
    const auto [it, is_new] = ref.plain.insert_or_assign({key, filter}, version);
    ASSERT_EQ(t.insert(filter, key, {filter, version}), is_new) << filter << " key " << key;
  }
}

// Erases a random existing subscription, or (sometimes) one that is not there.
void random_erase(std::mt19937& rng, trie& t, reference& ref) {
  const auto roll = std::uniform_int_distribution<int>(0, 9)(rng);
  if (roll == 0) {
    const auto filter = random_filter(rng);
    const int key = std::uniform_int_distribution<int>(0, 39)(rng);
    const bool present = ref.plain.erase({key, filter}) > 0;
    ASSERT_EQ(t.erase(filter, key), present) << filter << " key " << key;
    return;
  }
  if (roll == 1 && !ref.shared.empty()) {
    auto it = std::next(ref.shared.begin(), std::uniform_int_distribution<std::size_t>(
                                                0, ref.shared.size() - 1)(rng));
    const auto [group, filter] = it->first;
    auto m = std::next(it->second.begin(), std::uniform_int_distribution<std::size_t>(
                                               0, it->second.size() - 1)(rng));
    const int key = m->first;
    it->second.erase(m);
    const bool last = it->second.empty();
    if (last) ref.shared.erase(it);
    ASSERT_TRUE(t.erase_shared(group, filter, key)) << group << " " << filter << " " << key;
    ASSERT_FALSE(t.erase_shared(group, filter, key));
    ASSERT_EQ(t.find_group(group, filter) == nullptr, last);
    return;
  }
  if (ref.plain.empty()) return;
  auto it = std::next(ref.plain.begin(),
                      std::uniform_int_distribution<std::size_t>(0, ref.plain.size() - 1)(rng));
  const auto [key, filter] = it->first;
  ref.plain.erase(it);
  ASSERT_TRUE(t.erase(filter, key)) << filter << " key " << key;
  ASSERT_FALSE(t.erase(filter, key)) << filter << " key " << key;
}

void expect_same_matches(std::mt19937& rng, const trie& t, const reference& ref, int topics) {
  ASSERT_EQ(t.size(), ref.size());
  for (int i = 0; i < topics; ++i) {
    const auto topic = random_topic(rng);
    ASSERT_EQ(plain_matches(t, topic), ref.plain_matches(topic)) << "topic " << topic;
    ASSERT_EQ(group_matches(t, topic), ref.group_matches(topic)) << "topic " << topic;
  }
}

TEST(TrieRandomized, MatchesEqualBruteForceBeforeAndAfterErases) {
  for (const unsigned seed : {1u, 2u, 3u, 99u, 12345u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    trie t;
    reference ref;
    int version = 0;
    for (int i = 0; i < 4000; ++i) {
      ASSERT_NO_FATAL_FAILURE(random_insert(rng, t, ref, ++version));
    }
    ASSERT_NO_FATAL_FAILURE(expect_same_matches(rng, t, ref, 1500));

    // Erase about half, then compare again.
    const auto half = ref.size() / 2;
    while (ref.size() > half) ASSERT_NO_FATAL_FAILURE(random_erase(rng, t, ref));
    ASSERT_NO_FATAL_FAILURE(expect_same_matches(rng, t, ref, 1500));

    // Everything left goes; the trie prunes back to an empty root.
    while (ref.size() > 0) ASSERT_NO_FATAL_FAILURE(random_erase(rng, t, ref));
    EXPECT_EQ(t.size(), 0u);
    EXPECT_TRUE(t.empty());
    ASSERT_NO_FATAL_FAILURE(expect_same_matches(rng, t, ref, 100));
  }
}

TEST(TrieRandomized, InterleavedInsertsAndErasesStayConsistent) {
  for (const unsigned seed : {7u, 8u, 2024u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    trie t;
    reference ref;
    int version = 0;
    for (int round = 0; round < 40; ++round) {
      const auto inserts = std::uniform_int_distribution<int>(0, 150)(rng);
      const auto erases = std::uniform_int_distribution<int>(0, 150)(rng);
      for (int i = 0; i < inserts; ++i) {
        ASSERT_NO_FATAL_FAILURE(random_insert(rng, t, ref, ++version));
      }
      for (int i = 0; i < erases && ref.size() > 0; ++i) {
        ASSERT_NO_FATAL_FAILURE(random_erase(rng, t, ref));
      }
      ASSERT_NO_FATAL_FAILURE(expect_same_matches(rng, t, ref, 100));
    }
    while (ref.size() > 0) ASSERT_NO_FATAL_FAILURE(random_erase(rng, t, ref));
    EXPECT_TRUE(t.empty());
  }
}

}  // namespace
