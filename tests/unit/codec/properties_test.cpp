// MQTT 5.0 properties (section 2.2.2): which packet may carry which, their wire forms,
// filtering between packet types, and emptiness.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "broker/codec/properties.hpp"
#include "broker/codec/wire.hpp"

namespace ringmq::codec {
namespace {

using ctx = property_context;
using pid = property_id;

// Bytes from two-digit hex and 'quoted ASCII', as in malformed_test.cpp.
std::string b(std::string_view spec) {
  std::string out;
  for (std::size_t i = 0; i < spec.size();) {
    const char c = spec[i];
    if (c == ' ') {
      ++i;
    } else if (c == '\'') {
      const auto close = spec.find('\'', i + 1);
      if (close == std::string_view::npos) throw std::invalid_argument("unterminated text");
      out.append(spec.substr(i + 1, close - i - 1));
      i = close + 1;
    } else {
      if (i + 1 >= spec.size() || !std::isxdigit(static_cast<unsigned char>(spec[i + 1]))) {
        throw std::invalid_argument("hex bytes take two digits");
      }
      out.push_back(static_cast<char>(std::stoi(std::string(spec.substr(i, 2)), nullptr, 16)));
      i += 2;
    }
  }
  return out;
}

codec_result<properties> decode(std::string_view bytes, ctx context) {
  wire::reader in(bytes);
  return decode_properties(in, context);
}

std::string encode(const properties& p) {
  std::string out;
  encode_properties(p, out);
  return out;
}

constexpr std::array all_contexts = {ctx::connect,  ctx::connack, ctx::publish,   ctx::will,
                                     ctx::puback,   ctx::pubrec,  ctx::pubrel,    ctx::pubcomp,
                                     ctx::subscribe, ctx::suback, ctx::unsubscribe,
                                     ctx::unsuback, ctx::disconnect, ctx::auth};

const char* context_name(ctx c) {
  constexpr std::array names = {"CONNECT", "CONNACK", "PUBLISH", "Will",     "PUBACK",
                                "PUBREC",  "PUBREL",  "PUBCOMP", "SUBSCRIBE", "SUBACK",
                                "UNSUBSCRIBE", "UNSUBACK", "DISCONNECT", "AUTH"};
  return names[static_cast<std::size_t>(c)];
}

// ---------------------------------------------------------------------------------------------
// property_allowed against the table of section 2.2.2.2, transcribed here on its own so the
// codec's table is checked, not copied.

struct allowed_case {
  std::string name;
  property_id id;
  std::vector<ctx> allowed;
};

void PrintTo(const allowed_case& c, std::ostream* os) { *os << c.name; }

class PropertiesAllowed : public ::testing::TestWithParam<allowed_case> {};

TEST_P(PropertiesAllowed, MatchesTheSpecificationTable) {
  const auto& c = GetParam();
  for (auto context : all_contexts) {
    const bool expected =
        std::find(c.allowed.begin(), c.allowed.end(), context) != c.allowed.end();
    EXPECT_EQ(property_allowed(c.id, context), expected)
        << to_string(c.id) << " in " << context_name(context);
  }
}

const std::vector<ctx> every_context(all_contexts.begin(), all_contexts.end());

INSTANTIATE_TEST_SUITE_P(
    Properties, PropertiesAllowed,
    ::testing::Values(
        allowed_case{"payload_format_indicator", pid::payload_format_indicator,
                     {ctx::publish, ctx::will}},
        allowed_case{"message_expiry_interval", pid::message_expiry_interval,
                     {ctx::publish, ctx::will}},
        allowed_case{"content_type", pid::content_type, {ctx::publish, ctx::will}},
        allowed_case{"response_topic", pid::response_topic, {ctx::publish, ctx::will}},
        allowed_case{"correlation_data", pid::correlation_data, {ctx::publish, ctx::will}},
        allowed_case{"subscription_identifier", pid::subscription_identifier,
                     {ctx::publish, ctx::subscribe}},
        allowed_case{"session_expiry_interval", pid::session_expiry_interval,
                     {ctx::connect, ctx::connack, ctx::disconnect}},
        allowed_case{"assigned_client_identifier", pid::assigned_client_identifier,
                     {ctx::connack}},
        allowed_case{"server_keep_alive", pid::server_keep_alive, {ctx::connack}},
        allowed_case{"authentication_method", pid::authentication_method,
                     {ctx::connect, ctx::connack, ctx::auth}},
        allowed_case{"authentication_data", pid::authentication_data,
                     {ctx::connect, ctx::connack, ctx::auth}},
        allowed_case{"request_problem_information", pid::request_problem_information,
                     {ctx::connect}},
        allowed_case{"will_delay_interval", pid::will_delay_interval, {ctx::will}},
        allowed_case{"request_response_information", pid::request_response_information,
                     {ctx::connect}},
        allowed_case{"response_information", pid::response_information, {ctx::connack}},
        allowed_case{"server_reference", pid::server_reference,
                     {ctx::connack, ctx::disconnect}},
        allowed_case{"reason_string", pid::reason_string,
                     {ctx::connack, ctx::puback, ctx::pubrec, ctx::pubrel, ctx::pubcomp,
                      ctx::suback, ctx::unsuback, ctx::disconnect, ctx::auth}},
        allowed_case{"receive_maximum", pid::receive_maximum, {ctx::connect, ctx::connack}},
        allowed_case{"topic_alias_maximum", pid::topic_alias_maximum,
                     {ctx::connect, ctx::connack}},
        allowed_case{"topic_alias", pid::topic_alias, {ctx::publish}},
        allowed_case{"maximum_qos", pid::maximum_qos, {ctx::connack}},
        allowed_case{"retain_available", pid::retain_available, {ctx::connack}},
        allowed_case{"user_property", pid::user_property, every_context},
        allowed_case{"maximum_packet_size", pid::maximum_packet_size,
                     {ctx::connect, ctx::connack}},
        allowed_case{"wildcard_subscription_available", pid::wildcard_subscription_available,
                     {ctx::connack}},
        allowed_case{"subscription_identifier_available",
                     pid::subscription_identifier_available, {ctx::connack}},
        allowed_case{"shared_subscription_available", pid::shared_subscription_available,
                     {ctx::connack}}),
    [](const auto& info) { return info.param.name; });

// Identifiers the specification leaves undefined are allowed nowhere.
TEST(PropertiesAllowedTable, UndefinedIdentifiersAllowedNowhere) {
  for (int raw : {0x00, 0x04, 0x0A, 0x0C, 0x10, 0x14, 0x1B, 0x1D, 0x1E, 0x20, 0x2B, 0x7F, 0xFF}) {
    for (auto context : all_contexts) {
      EXPECT_FALSE(property_allowed(static_cast<property_id>(raw), context))
          << "0x" << std::hex << raw << " in " << context_name(context);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Every property: its bytes on the wire, decoded back in a packet that may carry it.

struct wire_case {
  std::string name;
  properties props;
  ctx context;
  std::string bytes;  // Property Length included
};

void PrintTo(const wire_case& c, std::ostream* os) { *os << c.name; }

class PropertiesWire : public ::testing::TestWithParam<wire_case> {};

TEST_P(PropertiesWire, Encodes) {
  const auto& c = GetParam();
  EXPECT_EQ(encode(c.props), c.bytes);
  EXPECT_EQ(properties_body_size(c.props) + 1, c.bytes.size());
}

TEST_P(PropertiesWire, Decodes) {
  const auto& c = GetParam();
  wire::reader in(c.bytes);
  auto decoded = decode_properties(in, c.context);
  ASSERT_TRUE(decoded) << decoded.error().detail;
  EXPECT_TRUE(*decoded == c.props);
  EXPECT_TRUE(in.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Properties, PropertiesWire,
    ::testing::Values(
        // Byte
        wire_case{"payload_format_indicator", {.payload_format_indicator = 1}, ctx::publish,
                  b("02 01 01")},
        wire_case{"request_problem_information", {.request_problem_information = 0},
                  ctx::connect, b("02 17 00")},
        wire_case{"request_response_information", {.request_response_information = 1},
                  ctx::connect, b("02 19 01")},
        wire_case{"maximum_qos", {.maximum_qos = 1}, ctx::connack, b("02 24 01")},
        wire_case{"retain_available", {.retain_available = 0}, ctx::connack, b("02 25 00")},
        wire_case{"wildcard_subscription_available", {.wildcard_subscription_available = 1},
                  ctx::connack, b("02 28 01")},
        wire_case{"subscription_identifier_available",
                  {.subscription_identifier_available = 0}, ctx::connack, b("02 29 00")},
        wire_case{"shared_subscription_available", {.shared_subscription_available = 1},
                  ctx::connack, b("02 2A 01")},
        // Two Byte Integer
        wire_case{"server_keep_alive", {.server_keep_alive = 0}, ctx::connack, b("03 13 00 00")},
        wire_case{"receive_maximum", {.receive_maximum = 0x0102}, ctx::connect,
                  b("03 21 01 02")},
        wire_case{"topic_alias_maximum", {.topic_alias_maximum = 0xFFFF}, ctx::connack,
                  b("03 22 FF FF")},
        wire_case{"topic_alias", {.topic_alias = 1}, ctx::publish, b("03 23 00 01")},
        // Four Byte Integer
        wire_case{"message_expiry_interval", {.message_expiry_interval = 0x12345678},
                  ctx::publish, b("05 02 12 34 56 78")},
        wire_case{"session_expiry_interval", {.session_expiry_interval = 0xFFFFFFFF},
                  ctx::disconnect, b("05 11 FF FF FF FF")},
        wire_case{"will_delay_interval", {.will_delay_interval = 0}, ctx::will,
                  b("05 18 00 00 00 00")},
        wire_case{"maximum_packet_size", {.maximum_packet_size = 1}, ctx::connack,
                  b("05 27 00 00 00 01")},
        // UTF-8 Encoded String
        wire_case{"content_type", {.content_type = "text/plain"}, ctx::will,
                  b("0D 03 00 0A 'text/plain'")},
        wire_case{"response_topic", {.response_topic = "reply/to"}, ctx::publish,
                  b("0B 08 00 08 'reply/to'")},
        wire_case{"assigned_client_identifier", {.assigned_client_identifier = "auto-1"},
                  ctx::connack, b("09 12 00 06 'auto-1'")},
        wire_case{"authentication_method", {.authentication_method = "SCRAM-SHA-1"},
                  ctx::auth, b("0E 15 00 0B 'SCRAM-SHA-1'")},
        wire_case{"response_information", {.response_information = ""}, ctx::connack,
                  b("03 1A 00 00")},
        wire_case{"server_reference", {.server_reference = "b:1883"}, ctx::disconnect,
                  b("09 1C 00 06 'b:1883'")},
        wire_case{"reason_string", {.reason_string = "caf\xC3\xA9"}, ctx::pubrel,
                  b("08 1F 00 05 'caf' C3 A9")},
        // Binary Data
        wire_case{"correlation_data", {.correlation_data = b("00 FF 00")}, ctx::publish,
                  b("06 09 00 03 00 FF 00")},
        wire_case{"authentication_data", {.authentication_data = b("C0 80")}, ctx::connect,
                  b("05 16 00 02 C0 80")},
        // Variable Byte Integer, at each length boundary.
        wire_case{"subscription_identifier_1", {.subscription_identifiers = {1}},
                  ctx::subscribe, b("02 0B 01")},
        wire_case{"subscription_identifier_127", {.subscription_identifiers = {127}},
                  ctx::subscribe, b("02 0B 7F")},
        wire_case{"subscription_identifier_128", {.subscription_identifiers = {128}},
                  ctx::subscribe, b("03 0B 80 01")},
        wire_case{"subscription_identifier_16383", {.subscription_identifiers = {16'383}},
                  ctx::publish, b("03 0B FF 7F")},
        wire_case{"subscription_identifier_16384", {.subscription_identifiers = {16'384}},
                  ctx::publish, b("04 0B 80 80 01")},
        wire_case{"subscription_identifier_2097151", {.subscription_identifiers = {2'097'151}},
                  ctx::publish, b("04 0B FF FF 7F")},
        wire_case{"subscription_identifier_2097152", {.subscription_identifiers = {2'097'152}},
                  ctx::publish, b("05 0B 80 80 80 01")},
        wire_case{"subscription_identifier_max",
                  {.subscription_identifiers = {268'435'455}}, ctx::subscribe,
                  b("05 0B FF FF FF 7F")},
        // Several in a server-sent PUBLISH, kept in order.
        wire_case{"subscription_identifiers_repeated", {.subscription_identifiers = {5, 1, 300}},
                  ctx::publish, b("07 0B 05 0B 01 0B AC 02")},
        // UTF-8 String Pair, repeatable, order kept, names may repeat.
        wire_case{"user_property", {.user_properties = {{"k", "v"}}}, ctx::unsuback,
                  b("07 26 00 01 'k' 00 01 'v'")},
        wire_case{"user_properties_repeated",
                  {.user_properties = {{"a", "2"}, {"a", "1"}, {"", ""}}}, ctx::connect,
                  b("13 26 00 01 'a' 00 01 '2' 26 00 01 'a' 00 01 '1' 26 00 00 00 00")},
        // No properties: a Property Length of zero ([MQTT-2.2.2-1]).
        wire_case{"none", {}, ctx::suback, b("00")},
        // Several: written in ascending identifier order.
        wire_case{"several_in_identifier_order",
                  {.payload_format_indicator = 0,
                   .subscription_identifiers = {2},
                   .topic_alias = 7,
                   .user_properties = {{"x", "y"}}},
                  ctx::publish, b("0E 01 00 0B 02 23 00 07 26 00 01 'x' 00 01 'y'")}),
    [](const auto& info) { return info.param.name; });

// A Property Length above 127 takes two bytes.
TEST(PropertiesLength, TwoByteVariableByteInteger) {
  properties p;
  p.user_properties.push_back({"k", std::string(200, 'v')});
  const auto bytes = encode(p);
  ASSERT_EQ(bytes.size(), 2u + 206u);
  EXPECT_EQ(bytes.substr(0, 2), b("CE 01"));
  auto decoded = decode(bytes, ctx::publish);
  ASSERT_TRUE(decoded);
  EXPECT_TRUE(*decoded == p);
}

// The decoder reads exactly the block and leaves the reader on the next field.
TEST(PropertiesDecode, StopsAtTheEndOfTheBlock) {
  const auto bytes = b("02 01 01 AA BB");
  wire::reader in(bytes);
  auto decoded = decode_properties(in, ctx::publish);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->payload_format_indicator, std::uint8_t{1});
  EXPECT_EQ(in.position(), 3u);
  EXPECT_EQ(in.remaining(), 2u);
}

// Properties may arrive in any order; the decoded struct is the same as for ascending order.
TEST(PropertiesDecode, OrderOnTheWireDoesNotMatter) {
  auto decoded = decode(b("05 23 00 07 01 01"), ctx::publish);
  ASSERT_TRUE(decoded);
  EXPECT_TRUE(*decoded == (properties{.payload_format_indicator = 1, .topic_alias = 7}));
}

TEST(PropertiesDecode, DuplicateUserPropertiesAllowedDuplicateOthersNot) {
  auto users = decode(b("0E 26 00 01 'a' 00 01 'b' 26 00 01 'a' 00 01 'b'"), ctx::disconnect);
  ASSERT_TRUE(users);
  EXPECT_EQ(users->user_properties.size(), 2u);
  auto reasons = decode(b("08 1F 00 01 'a' 1F 00 01 'a'"), ctx::disconnect);
  ASSERT_FALSE(reasons);
  EXPECT_EQ(reasons.error().code, reason_code::protocol_error);
}

TEST(PropertiesDecode, SubscriptionIdentifierRepeatsOnlyInPublish) {
  const auto bytes = b("04 0B 01 0B 02");
  auto in_publish = decode(bytes, ctx::publish);
  ASSERT_TRUE(in_publish);
  EXPECT_EQ(in_publish->subscription_identifiers, (std::vector<std::uint32_t>{1, 2}));
  auto in_subscribe = decode(bytes, ctx::subscribe);
  ASSERT_FALSE(in_subscribe);
  EXPECT_EQ(in_subscribe.error().code, reason_code::protocol_error);
}

TEST(PropertiesDecode, MisplacedPropertyIsMalformed) {
  for (auto context : {ctx::connect, ctx::connack, ctx::will, ctx::puback, ctx::auth}) {
    auto decoded = decode(b("03 23 00 01"), context);  // Topic Alias
    ASSERT_FALSE(decoded) << context_name(context);
    EXPECT_EQ(decoded.error().code, reason_code::malformed_packet) << context_name(context);
  }
}

// ---------------------------------------------------------------------------------------------
// filter_properties: what survives when a message moves from one packet type to another.

properties publish_properties() {
  return {.payload_format_indicator = 1,
          .message_expiry_interval = 60,
          .content_type = "application/json",
          .response_topic = "reply",
          .correlation_data = "id-7",
          .subscription_identifiers = {3, 4},
          .topic_alias = 9,
          .user_properties = {{"b", "2"}, {"a", "1"}}};
}

TEST(PropertiesFilter, PublishToWillDropsAliasAndSubscriptionIdentifiers) {
  const auto filtered = filter_properties(publish_properties(), ctx::will);
  auto expected = publish_properties();
  expected.subscription_identifiers.clear();
  expected.topic_alias.reset();
  EXPECT_TRUE(filtered == expected);
}

TEST(PropertiesFilter, WillToPublishDropsOnlyTheWillDelay) {
  properties will{.payload_format_indicator = 0,
                  .message_expiry_interval = 5,
                  .content_type = "t",
                  .response_topic = "r",
                  .correlation_data = "c",
                  .will_delay_interval = 30,
                  .user_properties = {{"k", "v"}}};
  auto expected = will;
  expected.will_delay_interval.reset();  // a will's own timing, not part of the message
  EXPECT_TRUE(filter_properties(will, ctx::publish) == expected);
}

TEST(PropertiesFilter, PublishToPubackKeepsOnlyUserProperties) {
  const auto filtered = filter_properties(publish_properties(), ctx::puback);
  EXPECT_TRUE(filtered == (properties{.user_properties = {{"b", "2"}, {"a", "1"}}}));
}

TEST(PropertiesFilter, ConnackToDisconnect) {
  properties connack{.session_expiry_interval = 10,
                     .assigned_client_identifier = "auto",
                     .server_keep_alive = 30,
                     .authentication_method = "m",
                     .server_reference = "other:1883",
                     .reason_string = "moving",
                     .receive_maximum = 10,
                     .maximum_qos = 1,
                     .user_properties = {{"k", "v"}}};
  const auto filtered = filter_properties(connack, ctx::disconnect);
  EXPECT_TRUE(filtered == (properties{.session_expiry_interval = 10,
                                      .server_reference = "other:1883",
                                      .reason_string = "moving",
                                      .user_properties = {{"k", "v"}}}));
}

TEST(PropertiesFilter, KeepsExactlyWhatTheContextAllows) {
  // A block with every property set once; after filtering, each one that is still present
  // must be allowed in the context, and each allowed one must still be present.
  const properties all{.payload_format_indicator = 1,
                       .message_expiry_interval = 1,
                       .content_type = "c",
                       .response_topic = "r",
                       .correlation_data = "d",
                       .subscription_identifiers = {1},
                       .session_expiry_interval = 1,
                       .assigned_client_identifier = "a",
                       .server_keep_alive = 1,
                       .authentication_method = "m",
                       .authentication_data = "d",
                       .request_problem_information = 1,
                       .will_delay_interval = 1,
                       .request_response_information = 1,
                       .response_information = "i",
                       .server_reference = "s",
                       .reason_string = "r",
                       .receive_maximum = 1,
                       .topic_alias_maximum = 1,
                       .topic_alias = 1,
                       .maximum_qos = 1,
                       .retain_available = 1,
                       .user_properties = {{"k", "v"}},
                       .maximum_packet_size = 1,
                       .wildcard_subscription_available = 1,
                       .subscription_identifier_available = 1,
                       .shared_subscription_available = 1};
  for (auto context : all_contexts) {
    const auto filtered = filter_properties(all, context);
    // Encoding then decoding in that context succeeds only if nothing misplaced is left.
    auto decoded = decode(encode(filtered), context);
    ASSERT_TRUE(decoded) << context_name(context) << ": " << decoded.error().detail;
    EXPECT_TRUE(*decoded == filtered) << context_name(context);
    // As many properties kept as the table allows there (User Property counts once).
    std::size_t allowed = 0;
    for (int raw = 1; raw <= 0x2A; ++raw) {
      if (property_allowed(static_cast<property_id>(raw), context)) ++allowed;
    }
    std::size_t kept = 0;
    kept += filtered.payload_format_indicator.has_value();
    kept += filtered.message_expiry_interval.has_value();
    kept += filtered.content_type.has_value();
    kept += filtered.response_topic.has_value();
    kept += filtered.correlation_data.has_value();
    kept += !filtered.subscription_identifiers.empty();
    kept += filtered.session_expiry_interval.has_value();
    kept += filtered.assigned_client_identifier.has_value();
    kept += filtered.server_keep_alive.has_value();
    kept += filtered.authentication_method.has_value();
    kept += filtered.authentication_data.has_value();
    kept += filtered.request_problem_information.has_value();
    kept += filtered.will_delay_interval.has_value();
    kept += filtered.request_response_information.has_value();
    kept += filtered.response_information.has_value();
    kept += filtered.server_reference.has_value();
    kept += filtered.reason_string.has_value();
    kept += filtered.receive_maximum.has_value();
    kept += filtered.topic_alias_maximum.has_value();
    kept += filtered.topic_alias.has_value();
    kept += filtered.maximum_qos.has_value();
    kept += filtered.retain_available.has_value();
    kept += !filtered.user_properties.empty();
    kept += filtered.maximum_packet_size.has_value();
    kept += filtered.wildcard_subscription_available.has_value();
    kept += filtered.subscription_identifier_available.has_value();
    kept += filtered.shared_subscription_available.has_value();
    EXPECT_EQ(kept, allowed) << context_name(context);
  }
}

// ---------------------------------------------------------------------------------------------
// properties::empty: "nothing to put on the wire", not "all values are zero".

TEST(PropertiesEmpty, DefaultIsEmpty) { EXPECT_TRUE(properties{}.empty()); }

TEST(PropertiesEmpty, ZeroValuesAreNotEmpty) {
  EXPECT_FALSE((properties{.message_expiry_interval = 0}).empty());
  EXPECT_FALSE((properties{.payload_format_indicator = 0}).empty());
  EXPECT_FALSE((properties{.server_keep_alive = 0}).empty());
}

TEST(PropertiesEmpty, EmptyStringsAreNotEmpty) {
  EXPECT_FALSE((properties{.content_type = ""}).empty());
  EXPECT_FALSE((properties{.correlation_data = ""}).empty());
  EXPECT_FALSE((properties{.user_properties = {{"", ""}}}).empty());
}

TEST(PropertiesEmpty, RepeatableOnesCount) {
  EXPECT_FALSE((properties{.subscription_identifiers = {1}}).empty());
  EXPECT_FALSE((properties{.user_properties = {{"k", "v"}}}).empty());
}

TEST(PropertiesEmpty, FilteredToNothingIsEmpty) {
  const properties p{.topic_alias = 3};
  EXPECT_TRUE(filter_properties(p, ctx::puback).empty());
  EXPECT_FALSE(filter_properties(p, ctx::publish).empty());
}

TEST(PropertiesNames, SpecificationNames) {
  EXPECT_EQ(to_string(pid::payload_format_indicator), "Payload Format Indicator");
  EXPECT_EQ(to_string(pid::subscription_identifier), "Subscription Identifier");
  EXPECT_EQ(to_string(pid::user_property), "User Property");
  EXPECT_EQ(to_string(static_cast<property_id>(0x04)), "Unknown property");
}

}  // namespace
}  // namespace ringmq::codec
