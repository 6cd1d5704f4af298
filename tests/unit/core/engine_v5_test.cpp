// What MQTT 5.0 added: topic aliases, message expiry, properties carried
// through unchanged, subscription identifiers, problem information, payload
// format validation and the Retain Available switch.

#include <gtest/gtest.h>

#include "tests/unit/core/engine_harness.hpp"

namespace ringmq::core {
namespace {

using namespace harness;

codec::publish_packet aliased(std::string topic, std::uint16_t alias, std::string payload,
                              qos q = qos::at_most_once, std::uint16_t id = 0) {
  auto p = make_publish(std::move(topic), std::move(payload), q, id);
  p.props.topic_alias = alias;
  return p;
}

codec::publish_packet expiring(std::string payload, std::uint32_t seconds, std::uint16_t id) {
  auto p = make_publish("t", std::move(payload), qos::at_least_once, id);
  p.props.message_expiry_interval = seconds;
  return p;
}

// --- topic aliases (inbound) ---------------------------------------------------------------------

TEST(EngineV5, TopicAliasIsSetThenUsedWithAnEmptyTopic) {
  // [MQTT-3.3.2-12].
  bench b;
  auto& sub = b.connected("sub");
  sub.subscribe("#");
  auto& pub = b.connected("pub");
  pub.publish(aliased("a/b", 1, "1"));
  pub.publish(aliased("", 1, "2"));
  pub.publish(aliased("c", 1, "3"));  // remapped
  pub.publish(aliased("", 1, "4"));
  pub.publish(aliased("", 64, "x", qos::at_least_once, 1));  // 64 was never set
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].topic, "a/b");
  EXPECT_EQ(got[1].topic, "a/b");
  EXPECT_EQ(got[2].topic, "c");
  EXPECT_EQ(got[3].topic, "c");
  for (const auto& p : got) EXPECT_FALSE(p.props.topic_alias);  // one hop only
  EXPECT_EQ(pub.expect<codec::disconnect_packet>().code, reason_code::protocol_error);
}

TEST(EngineV5, UnknownTopicAliasIsProtocolError) {
  bench b;
  auto& c = b.connected("c1");
  c.publish(aliased("", 3, "x"));
  const auto d = c.expect<codec::disconnect_packet>();
  EXPECT_EQ(d.code, reason_code::protocol_error);
  EXPECT_TRUE(d.props.reason_string);
  EXPECT_TRUE(c.closing());
}

TEST(EngineV5, TopicAliasAboveTheMaximumIsInvalid) {
  // [MQTT-3.3.2-9] binds the client; the server answers with 0x94.
  {
    bench b;
    auto& c = b.connected("c1");
    c.publish(aliased("t", 64, "x"));  // the maximum itself is fine
    EXPECT_FALSE(c.closing());
    c.publish(aliased("t", 65, "x"));
    EXPECT_EQ(c.expect<codec::disconnect_packet>().code, reason_code::topic_alias_invalid);
  }
  {
    broker_settings s;
    s.max_topic_alias = 0;  // no aliases at all
    bench b(s);
    auto& c = b.connected("c1");
    c.publish(aliased("t", 1, "x"));
    EXPECT_EQ(c.expect<codec::disconnect_packet>().code, reason_code::topic_alias_invalid);
  }
}

TEST(EngineV5, TopicAliasesDoNotOutliveTheConnection) {
  // [MQTT-3.3.2-7].
  bench b;
  auto& first = b.persistent("c1");
  first.publish(aliased("t", 1, "x"));
  first.lose();
  auto& second = b.add(v5);
  second.connect_persistent("c1", 3600);
  second.publish(aliased("", 1, "y"));
  EXPECT_EQ(second.expect<codec::disconnect_packet>().code, reason_code::protocol_error);
}

TEST(EngineV5, TopicAliasesAreNeverSentToClients) {
  // [MQTT-3.1.2-26], [MQTT-3.1.2-27], [MQTT-3.3.2-11].
  bench b;
  auto& sub = b.add(v5);
  codec::properties props;
  props.topic_alias_maximum = 10;
  sub.connect("sub", true, props);
  sub.subscribe("t");
  auto& pub = b.connected("pub");
  for (int i = 0; i < 3; ++i) pub.publish("t", "x");
  for (const auto& p : sub.publishes()) {
    EXPECT_EQ(p.topic, "t");
    EXPECT_FALSE(p.props.topic_alias);
  }
}

// --- message expiry ------------------------------------------------------------------------------

TEST(EngineV5, MessageExpiryForwardedAsTheTimeLeft) {
  // [MQTT-3.3.2-6].
  bench b;
  {
    auto& sub = b.persistent("sub");
    sub.subscribe("t", qos::at_least_once);
    auto& pub = b.connected("pub");
    pub.publish(expiring("now", 60, 1));
    const auto got = sub.publishes();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].props.message_expiry_interval, std::optional<std::uint32_t>(60));
    sub.puback(got[0].packet_id);
    sub.lose();
    pub.publish(expiring("later", 60, 2));
  }
  b.advance(20s);
  auto& sub = b.add(v5);
  sub.connect_persistent("sub", 3600);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "later");
  EXPECT_EQ(got[0].props.message_expiry_interval, std::optional<std::uint32_t>(40));
}

TEST(EngineV5, MessageExpiryIsRoundedUpNeverToZero) {
  bench b;
  {
    auto& sub = b.persistent("sub");
    sub.subscribe("t", qos::at_least_once);
    sub.lose();
  }
  auto& pub = b.connected("pub");
  pub.publish(expiring("x", 10, 1));
  b.advance(9'500ms);
  auto& sub = b.add(v5);
  sub.connect_persistent("sub", 3600);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].props.message_expiry_interval, std::optional<std::uint32_t>(1));
}

TEST(EngineV5, ExpiredMessagesAreDroppedFromAnOfflineQueue) {
  // [MQTT-3.3.2-5].
  bench b;
  {
    auto& sub = b.persistent("sub");
    sub.subscribe("t", qos::at_least_once);
    sub.lose();
  }
  auto& pub = b.connected("pub");
  pub.publish(expiring("short", 10, 1));
  pub.publish(expiring("long", 100, 2));
  pub.publish("t", "forever", qos::at_least_once, 3);
  b.advance(10s);
  const auto before = dropped(drop_reason::expired);
  auto& sub = b.add(v5);
  sub.connect_persistent("sub", 3600);
  const auto got = sub.publishes();
  EXPECT_EQ(payloads(got), (std::vector<std::string>{"long", "forever"}));
  EXPECT_EQ(dropped(drop_reason::expired) - before, 1u);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].props.message_expiry_interval, std::optional<std::uint32_t>(90));
  EXPECT_FALSE(got[1].props.message_expiry_interval);
}

TEST(EngineV5, ExpiredMessagesAreDroppedWhileWaitingForTheWindow) {
  broker_settings s;
  s.session.max_inflight = 1;
  bench b(s);
  auto& sub = b.connected("sub");
  sub.subscribe("t", qos::at_least_once);
  auto& pub = b.connected("pub");
  pub.publish(expiring("first", 5, 1));
  pub.publish(expiring("second", 5, 2));
  pub.publish(expiring("third", 50, 3));
  const auto first = sub.publishes();
  ASSERT_EQ(first.size(), 1u);
  b.advance(6s);
  sub.puback(first[0].packet_id);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "third");
  EXPECT_EQ(got[0].props.message_expiry_interval, std::optional<std::uint32_t>(44));
}

TEST(EngineV5, ExpiredRetainedMessageIsNotDelivered) {
  bench b;
  auto& pub = b.connected("pub");
  auto p = expiring("kept", 5, 1);
  p.retain = true;
  pub.publish(p);
  b.advance(3s);
  auto& early = b.connected("early");
  early.subscribe("t", qos::at_least_once);
  const auto got = early.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].props.message_expiry_interval, std::optional<std::uint32_t>(2));
  b.advance(2s);
  auto& late = b.connected("late");
  late.subscribe("t", qos::at_least_once);
  late.expect_nothing();
}

TEST(EngineV5, StartedDeliveryIsResentEvenAfterExpiry) {
  // [MQTT-4.3.3-7]: once sent, expiry no longer applies to that delivery.
  bench b;
  std::uint16_t id = 0;
  {
    auto& sub = b.persistent("sub");
    sub.subscribe("t", qos::exactly_once);
    auto& pub = b.connected("pub");
    auto p = expiring("x", 5, 1);
    p.qos = qos::exactly_once;
    pub.publish(p);
    const auto got = sub.publishes();
    ASSERT_EQ(got.size(), 1u);
    id = got[0].packet_id;
    sub.lose();
  }
  b.advance(10s);
  auto& sub = b.add(v5);
  sub.connect_persistent("sub", 3600);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].packet_id, id);
  EXPECT_TRUE(got[0].dup);
  sub.pubrec(id);
  EXPECT_EQ(sub.expect<codec::pubrel_packet>().packet_id, id);
}

// --- properties passed through -------------------------------------------------------------------

TEST(EngineV5, ApplicationPropertiesArePassedThroughUnchanged) {
  // [MQTT-3.3.2-4], [MQTT-3.3.2-15], [MQTT-3.3.2-16], [MQTT-3.3.2-17], [MQTT-3.3.2-18],
  // [MQTT-3.3.2-20].
  bench b;
  auto& sub = b.connected("sub");
  sub.subscribe("t", qos::at_least_once);
  auto& pub = b.connected("pub");
  auto p = make_publish("t", "{\"a\":1}", qos::at_least_once, 1);
  p.props.payload_format_indicator = 1;
  p.props.content_type = "application/json";
  p.props.response_topic = "reply/to/me";
  p.props.correlation_data = std::string("\x00\xFF\x10", 3);
  p.props.user_properties = {{"z", "1"}, {"a", "2"}, {"z", "3"}, {"", ""}};
  pub.publish(p);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, p.payload);
  EXPECT_EQ(got[0].props.payload_format_indicator, p.props.payload_format_indicator);
  EXPECT_EQ(got[0].props.content_type, p.props.content_type);
  EXPECT_EQ(got[0].props.response_topic, p.props.response_topic);
  EXPECT_EQ(got[0].props.correlation_data, p.props.correlation_data);
  EXPECT_EQ(got[0].props.user_properties, p.props.user_properties);  // same order
  EXPECT_FALSE(got[0].props.message_expiry_interval);
  EXPECT_TRUE(got[0].props.subscription_identifiers.empty());
}

TEST(EngineV5, PropertiesAreLeftOutForV311Subscribers) {
  bench b;
  auto& sub = b.connected("sub", v3_1_1);
  sub.subscribe("t");
  auto& pub = b.connected("pub");
  auto p = make_publish("t", "x");
  p.props.user_properties = {{"k", "v"}};
  p.props.message_expiry_interval = 60;
  pub.publish(p);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].props.empty());
  EXPECT_EQ(got[0].payload, "x");
}

// --- subscription identifiers --------------------------------------------------------------------

TEST(EngineV5, SubscriptionIdentifierIsSentWithMatchingMessages) {
  bench b;
  auto& sub = b.connected("sub");
  codec::properties props;
  props.subscription_identifiers = {42};
  sub.subscribe({make_subscription("with/#")}, 1, props);
  sub.subscribe("without/#", qos::at_most_once, 2);
  auto& pub = b.connected("pub");
  pub.publish("with/x", "1");
  pub.publish("without/x", "2");
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].props.subscription_identifiers, std::vector<std::uint32_t>{42});
  EXPECT_TRUE(got[1].props.subscription_identifiers.empty());
  // Replacing the subscription replaces its identifier.
  props.subscription_identifiers = {43};
  sub.subscribe({make_subscription("with/#")}, 3, props);
  pub.publish("with/x", "3");
  const auto again = sub.publishes();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].props.subscription_identifiers, std::vector<std::uint32_t>{43});
}

TEST(EngineV5, SubscriptionIdentifierInAClientPublishIsProtocolError) {
  // [MQTT-3.3.4-6].
  bench b;
  auto& sub = b.connected("sub");
  sub.subscribe("t");
  auto& c = b.connected("c1");
  auto p = make_publish("t", "x");
  p.props.subscription_identifiers = {1};
  c.publish(p);
  EXPECT_EQ(c.expect<codec::disconnect_packet>().code, reason_code::protocol_error);
  sub.expect_nothing();
}

// --- problem information and reason codes --------------------------------------------------------

TEST(EngineV5, NoReasonStringsOrUserPropertiesOnAcknowledgements) {
  // [MQTT-3.1.2-29] with Request Problem Information 0; the engine never adds them.
  bench b;
  auto& c = b.add(v5);
  codec::properties props;
  props.request_problem_information = 0;
  c.connect("c1", true, props);
  c.publish("nobody", "x", qos::at_least_once, 1);
  const auto ack = c.expect<codec::puback_packet>();
  EXPECT_EQ(ack.code, reason_code::no_matching_subscribers);
  EXPECT_TRUE(ack.props.empty());
  const auto sub = c.subscribe({make_subscription("bad/#/x")});
  EXPECT_EQ(sub.codes, std::vector<reason_code>{reason_code::topic_filter_invalid});
  EXPECT_TRUE(sub.props.empty());
  const auto unsub = c.unsubscribe({"never"});
  EXPECT_TRUE(unsub.props.empty());
  c.pubrel(5);
  EXPECT_TRUE(c.expect<codec::pubcomp_packet>().props.empty());
}

TEST(EngineV5, ServerDisconnectCarriesNoSessionExpiry) {
  // [MQTT-3.14.2-2].
  bench b;
  auto& c = b.persistent("c1");
  c.send(codec::pingresp_packet{});
  const auto d = c.expect<codec::disconnect_packet>();
  EXPECT_EQ(d.code, reason_code::protocol_error);
  EXPECT_FALSE(d.props.session_expiry_interval);
}

// --- payload format ------------------------------------------------------------------------------

TEST(EngineV5, InvalidUtf8WithPayloadFormatIndicatorIsRefused) {
  bench b;
  auto& sub = b.connected("sub");
  sub.subscribe("t", qos::exactly_once);
  auto& pub = b.connected("pub");
  auto p = make_publish("t", "\xC3\x28", qos::at_least_once, 1);
  p.props.payload_format_indicator = 1;
  pub.publish(p);
  EXPECT_EQ(pub.expect<codec::puback_packet>().code, reason_code::payload_format_invalid);
  // QoS 2: PUBREC 0x99 ends the exchange, so the id is free again ([MQTT-4.3.3-9]).
  p.qos = qos::exactly_once;
  p.packet_id = 2;
  pub.publish(p);
  EXPECT_EQ(pub.expect<codec::pubrec_packet>().code, reason_code::payload_format_invalid);
  sub.expect_nothing();
  pub.publish("t", "fine", qos::exactly_once, 2);
  EXPECT_EQ(pub.expect<codec::pubrec_packet>().code, reason_code::success);
  EXPECT_EQ(payloads(sub.publishes()), std::vector<std::string>{"fine"});
  // The same bytes without the indicator are just bytes.
  pub.publish("t", "\xC3\x28", qos::at_least_once, 3);
  EXPECT_EQ(pub.expect<codec::puback_packet>().code, reason_code::success);
}

// --- Retain Available ----------------------------------------------------------------------------

TEST(EngineV5, RetainNotAvailable) {
  broker_settings s;
  s.retain_available = false;
  bench b(s);
  auto& c = b.add(v5);
  EXPECT_EQ(c.connect("c1").props.retain_available, std::optional<std::uint8_t>(0));
  c.publish("t", "x", qos::at_least_once, 1, true);
  EXPECT_EQ(c.expect<codec::disconnect_packet>().code, reason_code::retain_not_supported);
  EXPECT_EQ(b.broker().retained().size(), 0u);
  // [MQTT-3.2.2-13]: a will with Will Retain is refused at CONNECT.
  auto& w = b.add(v5);
  auto p = w.connect_packet("c2");
  p.will = make_will("will", "x", qos::at_most_once, true);
  EXPECT_EQ(w.connect(std::move(p)).code, reason_code::retain_not_supported);
  EXPECT_TRUE(w.closing());
}

}  // namespace
}  // namespace ringmq::core
