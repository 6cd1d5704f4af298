// Topic levels and the reference matching rule (MQTT 5.0 section 4.7). topic_matches is what the
// subscription trie is checked against, so it is itself checked here against the examples of
// the specification and, on random input, against a level-by-level restatement of the rule.

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/topic_levels.hpp"

namespace {

using ringmq::core::split_levels;
using ringmq::core::topic_matches;

std::vector<std::string_view> levels_of(std::string_view topic) {
  std::vector<std::string_view> out;
  split_levels(topic, out);
  return out;
}

using levels = std::vector<std::string_view>;

TEST(TopicLevelsSplit, SeparatesOnSlash) {
  EXPECT_EQ(levels_of("a/b/c"), (levels{"a", "b", "c"}));
  EXPECT_EQ(levels_of("sport"), (levels{"sport"}));
  EXPECT_EQ(levels_of("$SYS/broker/uptime"), (levels{"$SYS", "broker", "uptime"}));
}

TEST(TopicLevelsSplit, KeepsEmptyLevels) {
  EXPECT_EQ(levels_of("/a"), (levels{"", "a"}));
  EXPECT_EQ(levels_of("a/"), (levels{"a", ""}));
  EXPECT_EQ(levels_of("a//b"), (levels{"a", "", "b"}));
  EXPECT_EQ(levels_of("/"), (levels{"", ""}));
  EXPECT_EQ(levels_of("//"), (levels{"", "", ""}));
  EXPECT_EQ(levels_of(""), (levels{""}));
}

TEST(TopicLevelsSplit, KeepsWildcardsAndSpacesAsLevels) {
  EXPECT_EQ(levels_of("a/+/#"), (levels{"a", "+", "#"}));
  EXPECT_EQ(levels_of("Accounts payable/x y"), (levels{"Accounts payable", "x y"}));
}

TEST(TopicLevelsSplit, AppendsWithoutClearing) {
  // The trie reuses one thread-local vector; split_levels must only append.
  std::vector<std::string_view> out{"kept"};
  split_levels("a/b", out);
  EXPECT_EQ(out, (levels{"kept", "a", "b"}));
}

TEST(TopicLevelsSplit, ViewsPointIntoTheInput) {
  const std::string topic = "one/two";
  const auto out = levels_of(topic);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].data(), topic.data());
  EXPECT_EQ(out[1].data(), topic.data() + 4);
}

TEST(TopicLevelsMatch, ExactFilters) {
  EXPECT_TRUE(topic_matches("a", "a"));
  EXPECT_TRUE(topic_matches("a/b/c", "a/b/c"));
  EXPECT_FALSE(topic_matches("a/b", "a/b/c"));
  EXPECT_FALSE(topic_matches("a/b/c", "a/b"));
  EXPECT_FALSE(topic_matches("a/b", "a/bc"));
  EXPECT_FALSE(topic_matches("a/bc", "a/b"));
  // Topics are case sensitive and may contain spaces (section 4.7.3).
  EXPECT_FALSE(topic_matches("ACCOUNTS", "Accounts"));
  EXPECT_TRUE(topic_matches("Accounts payable", "Accounts payable"));
  EXPECT_TRUE(topic_matches("caf\xC3\xA9/\xE2\x82\xAC", "caf\xC3\xA9/\xE2\x82\xAC"));
}

TEST(TopicLevelsMatch, MultiLevelWildcardFromTheSpecification) {
  // Section 4.7.1.2.
  EXPECT_TRUE(topic_matches("sport/tennis/player1/#", "sport/tennis/player1"));
  EXPECT_TRUE(topic_matches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
  EXPECT_TRUE(topic_matches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
  EXPECT_TRUE(topic_matches("sport/#", "sport"));
  EXPECT_TRUE(topic_matches("#", "sport/tennis/player1"));
  EXPECT_FALSE(topic_matches("sport/tennis/player1/#", "sport/tennis/player2"));
  EXPECT_FALSE(topic_matches("sport/tennis/#", "sport/tennis1"));
}

TEST(TopicLevelsMatch, HashIncludesTheParentLevelOnly) {
  EXPECT_TRUE(topic_matches("a/#", "a"));
  EXPECT_TRUE(topic_matches("a/#", "a/"));
  EXPECT_TRUE(topic_matches("a/#", "a/b/c/d"));
  EXPECT_FALSE(topic_matches("a/b/#", "a"));
  EXPECT_FALSE(topic_matches("a/#", "ab"));
  EXPECT_FALSE(topic_matches("a/#", "b/a"));
  EXPECT_TRUE(topic_matches("+/#", "a"));
  EXPECT_TRUE(topic_matches("+/#", "a/b"));
  EXPECT_TRUE(topic_matches("a/+/#", "a/b"));
  EXPECT_FALSE(topic_matches("a/+/#", "a"));
}

TEST(TopicLevelsMatch, SingleLevelWildcardFromTheSpecification) {
  // Section 4.7.1.3.
  EXPECT_TRUE(topic_matches("sport/tennis/+", "sport/tennis/player1"));
  EXPECT_TRUE(topic_matches("sport/tennis/+", "sport/tennis/player2"));
  EXPECT_FALSE(topic_matches("sport/tennis/+", "sport/tennis/player1/ranking"));
  EXPECT_FALSE(topic_matches("sport/+", "sport"));
  EXPECT_TRUE(topic_matches("sport/+", "sport/"));
  EXPECT_TRUE(topic_matches("+", "sport"));
  EXPECT_TRUE(topic_matches("+/+", "/finance"));
  EXPECT_TRUE(topic_matches("/+", "/finance"));
  EXPECT_FALSE(topic_matches("+", "/finance"));
  EXPECT_TRUE(topic_matches("+/tennis/#", "sport/tennis/player1"));
  EXPECT_TRUE(topic_matches("sport/+/player1", "sport/tennis/player1"));
  EXPECT_FALSE(topic_matches("sport/+/player1", "sport/tennis/player2"));
}

TEST(TopicLevelsMatch, EmptyLevelsAreLevels) {
  EXPECT_TRUE(topic_matches("a//b", "a//b"));
  EXPECT_TRUE(topic_matches("a/+/b", "a//b"));
  EXPECT_TRUE(topic_matches("+/+/+", "a//b"));
  EXPECT_FALSE(topic_matches("a/b", "a//b"));
  EXPECT_FALSE(topic_matches("a//b", "a/b"));
  EXPECT_TRUE(topic_matches("+/+", "/"));
  EXPECT_TRUE(topic_matches("/+", "/"));
  EXPECT_TRUE(topic_matches("+/", "/"));
  EXPECT_TRUE(topic_matches("/#", "/"));
  EXPECT_TRUE(topic_matches("#", "/"));
  EXPECT_FALSE(topic_matches("+", "/"));
  EXPECT_TRUE(topic_matches("+/+/+", "//"));
  EXPECT_FALSE(topic_matches("+/+", "//"));
  EXPECT_TRUE(topic_matches("/", "/"));
  EXPECT_FALSE(topic_matches("/", "//"));
  EXPECT_TRUE(topic_matches("a/", "a/"));
  EXPECT_FALSE(topic_matches("a/", "a"));
  EXPECT_FALSE(topic_matches("a", "a/"));
  EXPECT_TRUE(topic_matches("/#", "/a/b"));
  EXPECT_FALSE(topic_matches("/#", "a"));
}

TEST(TopicLevelsMatch, WildcardsInTheFirstLevelSkipDollarTopics) {
  // Section 4.7.2: [MQTT-4.7.2-1].
  EXPECT_FALSE(topic_matches("#", "$SYS/broker/clients"));
  EXPECT_FALSE(topic_matches("#", "$SYS"));
  EXPECT_FALSE(topic_matches("#", "$"));
  EXPECT_FALSE(topic_matches("+", "$SYS"));
  EXPECT_FALSE(topic_matches("+/monitor/Clients", "$SYS/monitor/Clients"));
  EXPECT_FALSE(topic_matches("+/#", "$SYS/x"));
  EXPECT_TRUE(topic_matches("$SYS/#", "$SYS/monitor/Clients"));
  EXPECT_TRUE(topic_matches("$SYS/#", "$SYS"));
  EXPECT_TRUE(topic_matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
  EXPECT_TRUE(topic_matches("$SYS/+/Clients", "$SYS/monitor/Clients"));
  EXPECT_FALSE(topic_matches("$SYS/#", "$SYS2/x"));
  EXPECT_TRUE(topic_matches("$", "$"));
}

TEST(TopicLevelsMatch, DollarOutsideTheFirstLevelIsOrdinary) {
  EXPECT_TRUE(topic_matches("#", "a/$SYS"));
  EXPECT_TRUE(topic_matches("a/+", "a/$SYS"));
  EXPECT_TRUE(topic_matches("+/$SYS", "a/$SYS"));
  EXPECT_TRUE(topic_matches("#", "x$"));
  // Only a leading '$' of the topic counts, not one in the filter's first level.
  EXPECT_FALSE(topic_matches("$SYS", "SYS"));
}

// The rule restated level by level, written independently of topic_matches.
bool matches_by_levels(std::string_view filter, std::string_view topic) {
  const auto f = levels_of(filter);
  const auto t = levels_of(topic);
  if (!topic.empty() && topic.front() == '$' && (f[0] == "+" || f[0] == "#")) return false;
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return true;  // the rest, including none (the parent level)
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return f.size() == t.size();
}

std::string random_name(std::mt19937& rng, bool filter) {
  static const std::vector<std::string> alphabet{"a", "b", "", "$SYS", "$", "ab"};
  const auto count = std::uniform_int_distribution<int>(1, 5)(rng);
  std::string out;
  for (int i = 0; i < count; ++i) {
    if (i) out += '/';
    const auto roll = std::uniform_int_distribution<int>(0, 9)(rng);
    if (filter && i == count - 1 && roll == 0) {
      out += '#';
    } else if (filter && roll <= 2) {
      out += '+';
    } else {
      out += alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng)];
    }
  }
  return out;
}

TEST(TopicLevelsMatch, AgreesWithTheLevelByLevelRuleOnRandomInput) {
  for (const unsigned seed : {1u, 7u, 42u, 2024u}) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    int matched = 0;
    for (int i = 0; i < 20000; ++i) {
      const auto filter = random_name(rng, true);
      const auto topic = random_name(rng, false);
      const bool expected = matches_by_levels(filter, topic);
      ASSERT_EQ(topic_matches(filter, topic), expected) << filter << " vs " << topic;
      matched += expected;
    }
    // The generator must produce both outcomes in useful numbers.
    EXPECT_GT(matched, 500);
    EXPECT_LT(matched, 19500);
  }
}

}  // namespace
