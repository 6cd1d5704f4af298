// Topic Name and Topic Filter rules (MQTT 5.0 sections 4.7 and 4.8.2).

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <string_view>

#include "broker/codec/topic.hpp"

namespace ringmq::codec {
namespace {

// ---------------------------------------------------------------------------------------------
// validate_topic_name: what a PUBLISH or a will may be sent to.

struct topic_name_case {
  std::string name;
  std::string topic;
  bool valid;
};

void PrintTo(const topic_name_case& c, std::ostream* os) {
  *os << c.name << " \"" << c.topic << '"';
}

class TopicName : public ::testing::TestWithParam<topic_name_case> {};

TEST_P(TopicName, Validates) {
  const auto& c = GetParam();
  auto result = validate_topic_name(c.topic);
  if (c.valid) {
    EXPECT_TRUE(result) << result.error().detail;
  } else {
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, reason_code::topic_name_invalid);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Topic, TopicName,
    ::testing::Values(
        topic_name_case{"one_level", "a", true},
        topic_name_case{"several_levels", "sport/tennis/player1", true},
        // Empty levels are levels too (section 4.7.1.1).
        topic_name_case{"only_separator", "/", true},
        topic_name_case{"two_separators", "//", true},
        topic_name_case{"leading_separator", "/finance", true},
        topic_name_case{"trailing_separator", "finance/", true},
        topic_name_case{"empty_middle_level", "a//b", true},
        // Spaces and '$' are ordinary characters in a name (sections 4.7.2, 4.7.3).
        topic_name_case{"space", "a b/ c", true},
        topic_name_case{"dollar_sys", "$SYS/broker/uptime", true},
        topic_name_case{"dollar_share_is_just_a_name", "$share/g/a", true},
        topic_name_case{"multibyte", "caf\xC3\xA9/\xE2\x82\xAC", true},
        topic_name_case{"long", std::string(65535, 'x'), true},
        // [MQTT-4.7.3-1]
        topic_name_case{"empty", "", false},
        // [MQTT-4.7.0-1], [MQTT-3.3.2-2]
        topic_name_case{"single_level_wildcard", "+", false},
        topic_name_case{"multi_level_wildcard", "#", false},
        topic_name_case{"plus_level", "a/+/c", false},
        topic_name_case{"hash_last_level", "a/#", false},
        topic_name_case{"plus_inside_level", "a+b", false},
        topic_name_case{"hash_inside_level", "sport/tennis#", false},
        topic_name_case{"plus_first", "+/a", false},
        topic_name_case{"hash_first", "#/a", false}),
    [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// parse_topic_filter: what a SUBSCRIBE may ask for, with shared subscriptions split apart.

struct topic_filter_case {
  std::string name;
  std::string input;
  bool valid;
  std::string share_group = {};  // expected when valid
  std::string filter = {};       // expected when valid; the input itself when not shared
};

void PrintTo(const topic_filter_case& c, std::ostream* os) {
  *os << c.name << " \"" << c.input << '"';
}

class TopicFilter : public ::testing::TestWithParam<topic_filter_case> {};

TEST_P(TopicFilter, Parses) {
  const auto& c = GetParam();
  auto result = parse_topic_filter(c.input);
  if (!c.valid) {
    ASSERT_FALSE(result) << "group \"" << result->share_group << "\" filter \"" << result->filter
                         << '"';
    EXPECT_EQ(result.error().code, reason_code::topic_filter_invalid);
    return;
  }
  ASSERT_TRUE(result) << result.error().detail;
  EXPECT_EQ(result->share_group, c.share_group);
  EXPECT_EQ(result->filter, c.filter.empty() ? c.input : c.filter);
  EXPECT_EQ(result->is_shared(), !c.share_group.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Topic, TopicFilter,
    ::testing::Values(
        topic_filter_case{"plain", "sport/tennis/player1", true},
        topic_filter_case{"single_level_alone", "+", true},
        topic_filter_case{"multi_level_alone", "#", true},
        topic_filter_case{"plus_every_level", "+/+", true},
        topic_filter_case{"plus_middle", "sport/+/player1", true},
        topic_filter_case{"plus_then_hash", "+/tennis/#", true},
        topic_filter_case{"hash_after_separator", "sport/#", true},
        topic_filter_case{"hash_after_leading_separator", "/#", true},
        topic_filter_case{"plus_then_empty_level", "+/", true},
        topic_filter_case{"empty_then_plus", "/+", true},
        topic_filter_case{"only_separator", "/", true},
        topic_filter_case{"empty_levels", "a//b", true},
        topic_filter_case{"dollar_sys", "$SYS/#", true},
        // Only "$share/" starts a shared subscription, and it is case-sensitive.
        topic_filter_case{"dollar_share_without_slash", "$share", true},
        topic_filter_case{"dollar_sharex", "$sharex/g/a", true},
        topic_filter_case{"dollar_share_upper_case", "$SHARE/g/a", true},
        topic_filter_case{"share_plain", "$share/g/a", true, "g", "a"},
        topic_filter_case{"share_wildcards", "$share/consumers/+/b/#", true, "consumers",
                          "+/b/#"},
        topic_filter_case{"share_hash", "$share/g/#", true, "g", "#"},
        topic_filter_case{"share_filter_is_separator", "$share/g//", true, "g", "/"},
        topic_filter_case{"share_multibyte_group", "$share/gr\xC3\xBCn/a", true, "gr\xC3\xBCn",
                          "a"},
        // A filter that itself begins with "$share/" is an ordinary filter of that group: the
        // specification only asks for a Topic Filter after the group ([MQTT-4.8.2-2]).
        topic_filter_case{"share_nested", "$share/g/$share/h/a", true, "g", "$share/h/a"},
        // [MQTT-4.7.3-1]
        topic_filter_case{"empty", "", false},
        // [MQTT-4.7.1-2]: '+' occupies a whole level.
        topic_filter_case{"plus_after_text", "a+", false},
        topic_filter_case{"plus_before_text", "+a", false},
        topic_filter_case{"plus_inside_last_level", "sport/tennis+", false},
        topic_filter_case{"two_plus_one_level", "++", false},
        // [MQTT-4.7.1-1]: '#' alone and last.
        topic_filter_case{"hash_after_text", "sport/tennis#", false},
        topic_filter_case{"hash_before_text", "#a", false},
        topic_filter_case{"hash_not_last", "sport/#/ranking", false},
        topic_filter_case{"hash_then_separator", "#/", false},
        topic_filter_case{"two_hash", "##", false},
        topic_filter_case{"plus_hash_one_level", "+#", false},
        // [MQTT-4.8.2-1], [MQTT-4.8.2-2]
        topic_filter_case{"share_nothing_after_prefix", "$share/", false},
        topic_filter_case{"share_empty_group", "$share//a", false},
        topic_filter_case{"share_empty_group_and_filter", "$share//", false},
        topic_filter_case{"share_group_without_filter", "$share/g", false},
        topic_filter_case{"share_empty_filter", "$share/g/", false},
        topic_filter_case{"share_group_plus", "$share/+/a", false},
        topic_filter_case{"share_group_hash", "$share/#/a", false},
        topic_filter_case{"share_group_with_plus_inside", "$share/g+/a", false},
        topic_filter_case{"share_filter_plus_inside_level", "$share/g/a+", false},
        topic_filter_case{"share_filter_hash_not_last", "$share/g/#/a", false},
        topic_filter_case{"share_nested_invalid_inner", "$share/g/$share/h/a#", false}),
    [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// has_wildcards: a character test, used to answer 0xA2 when wildcards are disabled.

struct wildcard_case {
  std::string name;
  std::string filter;
  bool expected;
};

void PrintTo(const wildcard_case& c, std::ostream* os) {
  *os << c.name << " \"" << c.filter << '"';
}

class TopicWildcards : public ::testing::TestWithParam<wildcard_case> {};

TEST_P(TopicWildcards, Detects) {
  EXPECT_EQ(has_wildcards(GetParam().filter), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(Topic, TopicWildcards,
                         ::testing::Values(wildcard_case{"plain", "a/b/c", false},
                                           wildcard_case{"empty", "", false},
                                           wildcard_case{"dollar", "$SYS/x", false},
                                           wildcard_case{"shared_plain", "$share/g/a", false},
                                           wildcard_case{"plus", "+", true},
                                           wildcard_case{"hash", "#", true},
                                           wildcard_case{"plus_level", "a/+/c", true},
                                           wildcard_case{"hash_last", "a/#", true},
                                           wildcard_case{"shared_hash", "$share/g/#", true},
                                           // A character test: invalid filters count too.
                                           wildcard_case{"plus_inside_level", "a+b", true}),
                         [](const auto& info) { return info.param.name; });

// The parts point into the caller's string: no copy is made for a filter on the hot path.
TEST(TopicFilterParts, ViewIntoTheInput) {
  const std::string input = "$share/group/a/b";
  auto parts = parse_topic_filter(input);
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->share_group.data(), input.data() + 7);
  EXPECT_EQ(parts->filter.data(), input.data() + 13);
}

}  // namespace
}  // namespace ringmq::codec
