// SUBSCRIBE and UNSUBSCRIBE: acknowledgements and their codes, overlapping
// subscriptions, retained messages, No Local, shared subscriptions and the
// '$' topics. Statement numbers are MQTT 5.0's unless marked 3.1.1.

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/unit/core/engine_harness.hpp"

namespace ringmq::core {
namespace {

using namespace harness;

std::set<std::string> topics(const std::vector<codec::publish_packet>& got) {
  std::set<std::string> out;
  for (const auto& p : got) out.insert(p.topic);
  return out;
}

codec::subscription with_options(std::string filter, qos q, std::uint8_t retain_handling,
                                 bool retain_as_published = false, bool no_local = false) {
  auto s = make_subscription(std::move(filter), q);
  s.options.retain_handling = retain_handling;
  s.options.retain_as_published = retain_as_published;
  s.options.no_local = no_local;
  return s;
}

// --- acknowledgements ----------------------------------------------------------------------------

TEST(EngineSubscribe, SubackGrantsEachRequestedQosInOrder) {
  // [MQTT-3.8.4-1], [MQTT-3.8.4-2], [MQTT-3.8.4-5], [MQTT-3.8.4-6], [MQTT-3.8.4-7],
  // [MQTT-3.9.3-1]; 3.1.1 [MQTT-3.8.4-1] .. [MQTT-3.8.4-5], [MQTT-3.9.3-1].
  for (const auto v : {v3_1, v3_1_1, v5}) {
    bench b;
    auto& c = b.connected("c1", v);
    const auto ack = c.subscribe({make_subscription("a", qos::exactly_once),
                                  make_subscription("b/+", qos::at_most_once),
                                  make_subscription("c/#", qos::at_least_once)},
                                 321);
    EXPECT_EQ(ack.packet_id, 321);
    EXPECT_EQ(ack.codes, (std::vector<reason_code>{reason_code::granted_qos_2,
                                                   reason_code::success,
                                                   reason_code::granted_qos_1}));
    EXPECT_TRUE(ack.props.empty());
    EXPECT_EQ(c.current_session()->subscription_count(), 3u);
    EXPECT_EQ(b.broker().routes().subscription_count(), 3u);
  }
}

TEST(EngineSubscribe, InvalidFiltersAreRefusedOneByOne) {
  const std::vector<std::string> invalid = {"a/#/b", "a+", "#/a", "$share/g", "$share//a",
                                            "$share/g+/a"};
  for (const auto v : {v3_1_1, v5}) {
    bench b;
    auto& c = b.connected("c1", v);
    std::vector<codec::subscription> subs;
    for (const auto& f : invalid) subs.push_back(make_subscription(f, qos::at_least_once));
    subs.push_back(make_subscription("ok/+", qos::at_least_once));
    const auto ack = c.subscribe(subs, 5);
    ASSERT_EQ(ack.codes.size(), invalid.size() + 1);
    // 0x8F in 5.0, 0x80 (Failure) in 3.1.1.
    const auto refused =
        v == v5 ? reason_code::topic_filter_invalid : reason_code::unspecified_error;
    for (std::size_t i = 0; i < invalid.size(); ++i) EXPECT_EQ(ack.codes[i], refused) << i;
    EXPECT_EQ(ack.codes.back(), reason_code::granted_qos_1);
    EXPECT_EQ(c.current_session()->subscription_count(), 1u);
    EXPECT_FALSE(c.closing());
  }
}

TEST(EngineSubscribe, UnsubackCodes) {
  // [MQTT-3.10.4-4], [MQTT-3.10.4-5], [MQTT-3.10.4-6], [MQTT-3.11.3-1], [MQTT-3.11.3-2].
  bench b;
  auto& c = b.connected("c1");
  c.subscribe("a", qos::at_least_once);
  const auto ack = c.unsubscribe({"a", "b", "a/#/b", "a"}, 77);
  EXPECT_EQ(ack.packet_id, 77);
  EXPECT_EQ(ack.codes, (std::vector<reason_code>{reason_code::success,
                                                 reason_code::no_subscription_existed,
                                                 reason_code::topic_filter_invalid,
                                                 reason_code::no_subscription_existed}));
  EXPECT_EQ(c.current_session()->subscription_count(), 0u);
  EXPECT_EQ(b.broker().routes().subscription_count(), 0u);
}

TEST(EngineSubscribe, V311UnsubackHasOnlyThePacketId) {
  // 3.1.1 [MQTT-3.10.4-4], [MQTT-3.10.4-5]: answered even when nothing was removed.
  bench b;
  auto& c = b.connected("c1", v3_1_1);
  const auto ack = c.unsubscribe({"never/subscribed"}, 9);
  EXPECT_EQ(ack.packet_id, 9);
  EXPECT_TRUE(ack.codes.empty());
}

TEST(EngineSubscribe, UnsubscribeStopsNewDeliveries) {
  // [MQTT-3.10.4-1], [MQTT-3.10.4-2]: exact, character-by-character match.
  bench b;
  auto& c = b.connected("c1");
  c.subscribe("a/+", qos::at_least_once);
  c.subscribe("a/b", qos::at_least_once, 2);
  EXPECT_EQ(c.unsubscribe({"a/b"}).codes, std::vector<reason_code>{reason_code::success});
  auto& pub = b.connected("pub");
  pub.publish("a/b", "x");
  EXPECT_EQ(c.publishes().size(), 1u);  // still through "a/+"
  EXPECT_EQ(c.unsubscribe({"a/+"}).codes, std::vector<reason_code>{reason_code::success});
  pub.publish("a/b", "y");
  c.expect_nothing();
}

TEST(EngineSubscribe, UnsubscribeLetsStartedDeliveriesComplete) {
  // [MQTT-3.10.4-3].
  bench b;
  auto& c = b.connected("c1");
  c.subscribe("t", qos::exactly_once);
  auto& pub = b.connected("pub");
  pub.publish("t", "one", qos::at_least_once, 1);
  pub.publish("t", "two", qos::exactly_once, 2);
  const auto got = c.publishes();
  ASSERT_EQ(got.size(), 2u);
  c.unsubscribe({"t"});
  c.puback(got[0].packet_id);
  c.pubrec(got[1].packet_id);
  EXPECT_EQ(c.expect<codec::pubrel_packet>().packet_id, got[1].packet_id);
  c.pubcomp(got[1].packet_id);
  EXPECT_EQ(c.current_session()->inflight_count(), 0u);
}

TEST(EngineSubscribe, SubscriptionLimitPerClient) {
  broker_settings s;
  s.max_subscriptions_per_client = 2;
  bench b(s);
  auto& c5 = b.connected("c5", v5);
  const auto ack =
      c5.subscribe({make_subscription("a"), make_subscription("b"), make_subscription("c"),
                    make_subscription("a", qos::exactly_once)});
  // A new filter beyond the limit gets 0x97; replacing an existing one is fine.
  EXPECT_EQ(ack.codes,
            (std::vector<reason_code>{reason_code::success, reason_code::success,
                                      reason_code::quota_exceeded, reason_code::granted_qos_2}));
  EXPECT_EQ(c5.current_session()->subscription_count(), 2u);
  auto& c3 = b.connected("c3", v3_1_1);
  const auto ack3 = c3.subscribe({make_subscription("a"), make_subscription("b"),
                                  make_subscription("c")});
  EXPECT_EQ(ack3.codes, (std::vector<reason_code>{reason_code::success, reason_code::success,
                                                  reason_code::unspecified_error}));
}

TEST(EngineSubscribe, SameFilterReplacesTheSubscription) {
  // [MQTT-3.8.4-3]; 3.1.1 [MQTT-3.8.4-3].
  bench b;
  auto& c = b.connected("c1");
  c.subscribe("t", qos::at_most_once);
  c.subscribe("t", qos::exactly_once, 2);
  EXPECT_EQ(c.current_session()->subscription_count(), 1u);
  EXPECT_EQ(b.broker().routes().subscription_count(), 1u);
  auto& pub = b.connected("pub");
  pub.publish("t", "x", qos::exactly_once, 1);
  const auto got = c.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, qos::exactly_once);
}

// --- overlapping subscriptions -------------------------------------------------------------------

TEST(EngineSubscribe, OverlappingSubscriptionsGiveOneCopyAtTheHighestQos) {
  // [MQTT-3.3.4-2], [MQTT-3.3.4-3], [MQTT-3.3.4-4]; 3.1.1 [MQTT-3.3.5-1].
  bench b;
  auto& c = b.connected("c1");
  codec::properties id5;
  id5.subscription_identifiers = {5};
  codec::properties id7;
  id7.subscription_identifiers = {7};
  c.subscribe({make_subscription("a/+", qos::at_least_once)}, 1, id5);
  c.subscribe({make_subscription("a/#", qos::at_most_once)}, 2, id7);
  c.subscribe({make_subscription("a/b", qos::at_most_once)}, 3);
  auto& pub = b.connected("pub");
  pub.publish("a/b", "x", qos::exactly_once, 1);
  const auto got = c.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, qos::at_least_once);
  auto ids = got[0].props.subscription_identifiers;
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::uint32_t>{5, 7}));
  // Only the matching ones: "a/c" matches "a/+" and "a/#".
  pub.publish("a/c/d", "y", qos::at_least_once, 2);
  const auto deep = c.publishes();
  ASSERT_EQ(deep.size(), 1u);
  EXPECT_EQ(deep[0].qos, qos::at_most_once);
  EXPECT_EQ(deep[0].props.subscription_identifiers, std::vector<std::uint32_t>{7});
}

TEST(EngineSubscribe, V311OverlappingSubscriptionsGiveOneCopy) {
  bench b;
  auto& c = b.connected("c1", v3_1_1);
  c.subscribe("#", qos::at_most_once);
  c.subscribe("x/+", qos::exactly_once, 2);
  auto& pub = b.connected("pub");
  pub.publish("x/y", "p", qos::exactly_once, 1);
  const auto got = c.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, qos::exactly_once);
}

// --- retained messages ---------------------------------------------------------------------------

TEST(EngineSubscribe, RetainedMessageDeliveredOnSubscribeWithRetainSet) {
  // [MQTT-3.3.1-5], [MQTT-3.3.1-9]; 3.1.1 [MQTT-3.3.1-5], [MQTT-3.3.1-6], [MQTT-3.3.1-8].
  for (const auto v : {v3_1_1, v5}) {
    bench b;
    auto& pub = b.connected("pub", v);
    pub.publish("r/1", "kept", qos::at_least_once, 1, true);
    EXPECT_EQ(b.broker().retained().size(), 1u);
    auto& sub = b.connected("sub", v);
    const auto ack = sub.subscribe("r/1", qos::exactly_once);
    EXPECT_EQ(ack.codes, std::vector<reason_code>{reason_code::granted_qos_2});
    const auto got = sub.publishes();  // after the SUBACK
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].topic, "r/1");
    EXPECT_EQ(got[0].payload, "kept");
    EXPECT_TRUE(got[0].retain);
    EXPECT_EQ(got[0].qos, qos::at_least_once);  // as published, below the granted QoS 2
  }
}

TEST(EngineSubscribe, RetainedMessageQosLimitedByGrantedQos) {
  bench b;
  auto& pub = b.connected("pub");
  pub.publish("r", "kept", qos::exactly_once, 1, true);
  auto& sub = b.connected("sub");
  sub.subscribe("r", qos::at_most_once);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, qos::at_most_once);
  EXPECT_TRUE(got[0].retain);
}

TEST(EngineSubscribe, NewRetainedMessageReplacesTheOld) {
  bench b;
  auto& pub = b.connected("pub");
  pub.publish("r", "old", qos::at_most_once, 0, true);
  pub.publish("r", "new", qos::at_most_once, 0, true);
  EXPECT_EQ(b.broker().retained().size(), 1u);
  auto& sub = b.connected("sub");
  sub.subscribe("r");
  EXPECT_EQ(payloads(sub.publishes()), std::vector<std::string>{"new"});
}

TEST(EngineSubscribe, EmptyRetainedPayloadClearsAndIsForwardedNormally) {
  // [MQTT-3.3.1-6], [MQTT-3.3.1-7]; 3.1.1 [MQTT-3.3.1-10], [MQTT-3.3.1-11].
  bench b;
  auto& pub = b.connected("pub");
  pub.publish("r", "kept", qos::at_most_once, 0, true);
  auto& live = b.connected("live");
  live.subscribe("r");
  live.received();
  pub.publish("r", "", qos::at_least_once, 1, true);
  EXPECT_EQ(b.broker().retained().size(), 0u);
  const auto got = live.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "");
  EXPECT_FALSE(got[0].retain);
  auto& late = b.connected("late");
  late.subscribe("r");
  late.expect_nothing();
}

TEST(EngineSubscribe, NonRetainedPublishLeavesTheRetainedMessage) {
  // [MQTT-3.3.1-8]; 3.1.1 [MQTT-3.3.1-12].
  bench b;
  auto& pub = b.connected("pub");
  pub.publish("r", "kept", qos::at_most_once, 0, true);
  pub.publish("r", "passing");
  pub.publish("r", "", qos::at_most_once);
  auto& sub = b.connected("sub");
  sub.subscribe("r");
  EXPECT_EQ(payloads(sub.publishes()), std::vector<std::string>{"kept"});
}

TEST(EngineSubscribe, RetainFlagOnLiveDeliveryFollowsRetainAsPublished) {
  // [MQTT-3.3.1-12], [MQTT-3.3.1-13]; 3.1.1 [MQTT-3.3.1-9].
  bench b;
  auto& plain = b.connected("plain");
  plain.subscribe({with_options("t", qos::at_most_once, 0, false)});
  auto& rap = b.connected("rap");
  rap.subscribe({with_options("t", qos::at_most_once, 0, true)});
  auto& old = b.connected("old", v3_1_1);
  old.subscribe("t");
  auto& pub = b.connected("pub");
  pub.publish("t", "r", qos::at_most_once, 0, true);
  pub.publish("t", "n");
  const auto p = plain.publishes();
  const auto r = rap.publishes();
  const auto o = old.publishes();
  ASSERT_EQ(p.size(), 2u);
  ASSERT_EQ(r.size(), 2u);
  ASSERT_EQ(o.size(), 2u);
  EXPECT_FALSE(p[0].retain);
  EXPECT_FALSE(p[1].retain);
  EXPECT_TRUE(r[0].retain);
  EXPECT_FALSE(r[1].retain);
  EXPECT_FALSE(o[0].retain);
  EXPECT_FALSE(o[1].retain);
}

TEST(EngineSubscribe, RetainHandling) {
  // [MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11], [MQTT-3.8.4-4].
  bench b;
  auto& pub = b.connected("pub");
  pub.publish("r", "kept", qos::at_most_once, 0, true);
  auto& c = b.connected("c1");

  c.subscribe({with_options("r", qos::at_most_once, 0)});
  EXPECT_EQ(c.publishes().size(), 1u);
  c.subscribe({with_options("r", qos::at_most_once, 0)}, 2);  // re-sent on every SUBSCRIBE
  EXPECT_EQ(c.publishes().size(), 1u);
  c.unsubscribe({"r"});

  c.subscribe({with_options("r", qos::at_most_once, 1)}, 3);  // new: sent
  EXPECT_EQ(c.publishes().size(), 1u);
  c.subscribe({with_options("r", qos::at_most_once, 1)}, 4);  // existed: not sent
  c.expect_nothing();
  c.unsubscribe({"r"});

  c.subscribe({with_options("r", qos::at_most_once, 2)}, 5);  // never
  c.expect_nothing();
  // The subscription itself works.
  pub.publish("r", "live");
  EXPECT_EQ(payloads(c.publishes()), std::vector<std::string>{"live"});
}

TEST(EngineSubscribe, WildcardSubscriptionGetsEveryMatchingRetainedMessage) {
  bench b;
  auto& pub = b.connected("pub");
  for (const auto* t : {"w/a", "w/b", "w/c/d", "x/a", "w"}) {
    pub.publish(t, t, qos::at_most_once, 0, true);
  }
  auto& all = b.connected("all");
  all.subscribe("w/#");
  EXPECT_EQ(topics(all.publishes()), (std::set<std::string>{"w", "w/a", "w/b", "w/c/d"}));
  auto& one = b.connected("one");
  one.subscribe("w/+");
  EXPECT_EQ(topics(one.publishes()), (std::set<std::string>{"w/a", "w/b"}));
  auto& mid = b.connected("mid");
  mid.subscribe("+/a");
  EXPECT_EQ(topics(mid.publishes()), (std::set<std::string>{"w/a", "x/a"}));
}

TEST(EngineSubscribe, RetainedMessagesCarryTheSubscriptionIdentifier) {
  bench b;
  auto& pub = b.connected("pub");
  pub.publish("r", "kept", qos::at_most_once, 0, true);
  auto& c = b.connected("c1");
  codec::properties props;
  props.subscription_identifiers = {99};
  c.subscribe({make_subscription("r")}, 1, props);
  const auto got = c.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].props.subscription_identifiers, std::vector<std::uint32_t>{99});
}

TEST(EngineSubscribe, RetainedMessagesAreNotSessionState) {
  // 3.1.1 [MQTT-3.1.2-7]: they outlive the session of their publisher.
  bench b;
  {
    auto& pub = b.connected("pub");
    pub.publish("r", "kept", qos::at_most_once, 0, true);
    pub.lose();
  }
  auto& sub = b.connected("sub");
  sub.subscribe("r");
  EXPECT_EQ(payloads(sub.publishes()), std::vector<std::string>{"kept"});
}

// --- No Local ------------------------------------------------------------------------------------

TEST(EngineSubscribe, NoLocal) {
  // [MQTT-3.8.3-3].
  bench b;
  auto& c = b.connected("c1");
  c.subscribe({with_options("n", qos::at_least_once, 0, false, true)});
  auto& echo = b.connected("echo");
  echo.subscribe("n");
  c.publish("n", "mine", qos::at_least_once, 1);
  // Nobody else matched the publisher's own subscription, but "echo" did.
  EXPECT_EQ(c.expect<codec::puback_packet>().code, reason_code::success);
  c.expect_nothing();
  EXPECT_EQ(payloads(echo.publishes()), std::vector<std::string>{"mine"});
  echo.publish("n", "theirs");
  EXPECT_EQ(payloads(c.publishes()), std::vector<std::string>{"theirs"});
  // Without No Local the publisher gets its own message back.
  echo.publish("n", "own");
  EXPECT_EQ(payloads(echo.publishes()), (std::vector<std::string>{"theirs", "own"}));
}

TEST(EngineSubscribe, NoLocalAloneMeansNoMatchingSubscribers) {
  bench b;
  auto& c = b.connected("c1");
  c.subscribe({with_options("n", qos::at_least_once, 0, false, true)});
  c.publish("n", "mine", qos::at_least_once, 1);
  EXPECT_EQ(c.expect<codec::puback_packet>().code, reason_code::no_matching_subscribers);
}

// --- shared subscriptions ------------------------------------------------------------------------

TEST(EngineSubscribe, SharedSubscriptionGivesEachMessageToOneMemberInTurn) {
  bench b;
  auto& m1 = b.connected("m1");
  auto& m2 = b.connected("m2");
  auto& plain = b.connected("plain");
  EXPECT_EQ(m1.subscribe("$share/g/s/#", qos::at_least_once).codes,
            std::vector<reason_code>{reason_code::granted_qos_1});
  m2.subscribe("$share/g/s/#", qos::at_least_once);
  plain.subscribe("s/#", qos::at_least_once);
  auto& pub = b.connected("pub");
  for (int i = 0; i < 6; ++i) {
    pub.publish("s/x", std::to_string(i), qos::at_least_once, static_cast<std::uint16_t>(i + 1));
  }
  const auto a = m1.publishes();
  const auto c = m2.publishes();
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(c.size(), 3u);
  std::set<std::string> seen;
  for (const auto& p : a) seen.insert(p.payload);
  for (const auto& p : c) seen.insert(p.payload);
  EXPECT_EQ(seen.size(), 6u);  // each message to exactly one member
  // Round robin: the members alternate.
  ASSERT_FALSE(a.empty());
  const auto first = std::stoi(a[0].payload);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(std::stoi(a[i].payload), first + 2 * static_cast<int>(i));
  }
  EXPECT_EQ(plain.publishes().size(), 6u);  // non-shared subscribers get everything
}

TEST(EngineSubscribe, SharedMembersGetTheirOwnGrantedQos) {
  // [MQTT-4.8.2-3].
  bench b;
  auto& m1 = b.connected("m1");
  auto& m2 = b.connected("m2");
  m1.subscribe("$share/g/t", qos::at_most_once);
  m2.subscribe("$share/g/t", qos::exactly_once);
  auto& pub = b.connected("pub");
  pub.publish("t", "a", qos::exactly_once, 1);
  pub.publish("t", "b", qos::exactly_once, 2);
  const auto a = m1.publishes();
  const auto c = m2.publishes();
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(a[0].qos, qos::at_most_once);
  EXPECT_EQ(c[0].qos, qos::exactly_once);
}

TEST(EngineSubscribe, EachShareGroupGetsACopy) {
  bench b;
  auto& g1 = b.connected("g1");
  auto& g2 = b.connected("g2");
  g1.subscribe("$share/one/t");
  g2.subscribe("$share/two/t");
  auto& pub = b.connected("pub");
  pub.publish("t", "x", qos::at_least_once, 1);
  EXPECT_EQ(pub.expect<codec::puback_packet>().code, reason_code::success);
  EXPECT_EQ(g1.publishes().size(), 1u);
  EXPECT_EQ(g2.publishes().size(), 1u);
}

TEST(EngineSubscribe, RetainedMessagesAreNotSentToSharedSubscriptions) {
  // MQTT 5.0 section 4.8.2.
  bench b;
  auto& pub = b.connected("pub");
  pub.publish("s/x", "kept", qos::at_least_once, 1, true);
  auto& m = b.connected("m1");
  m.subscribe({with_options("$share/g/s/#", qos::at_least_once, 0)});
  m.expect_nothing();
}

TEST(EngineSubscribe, UnacknowledgedQos1GoesToAnotherMemberWhenOneLeaves) {
  bench b;
  auto& m1 = b.connected("m1");
  auto& m2 = b.connected("m2");
  m1.subscribe("$share/g/t", qos::at_least_once);
  m2.subscribe("$share/g/t", qos::at_least_once);
  auto& pub = b.connected("pub");
  pub.publish("t", "a", qos::at_least_once, 1);
  pub.publish("t", "b", qos::at_least_once, 2);
  auto got1 = m1.publishes();
  auto got2 = m2.publishes();
  ASSERT_EQ(got1.size(), 1u);
  ASSERT_EQ(got2.size(), 1u);
  m2.puback(got2[0].packet_id);
  m1.lose();  // m1 never acknowledged its message
  const auto moved = m2.publishes();
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].payload, got1[0].payload);
  EXPECT_FALSE(moved[0].dup);  // new to this client
  // The group is now m2 alone.
  pub.publish("t", "c", qos::at_least_once, 3);
  EXPECT_EQ(payloads(m2.publishes()), std::vector<std::string>{"c"});
}

TEST(EngineSubscribe, QueuedSharedMessagesGoToAnotherMemberWhenOneLeaves) {
  broker_settings s;
  s.session.max_inflight = 1;
  bench b(s);
  auto& m1 = b.persistent("m1");
  m1.subscribe("$share/g/t", qos::at_least_once);
  auto& pub = b.connected("pub");
  for (int i = 0; i < 3; ++i) {
    pub.publish("t", std::to_string(i), qos::at_least_once, static_cast<std::uint16_t>(i + 1));
  }
  EXPECT_EQ(m1.publishes().size(), 1u);
  auto& m2 = b.connected("m2");
  m2.subscribe("$share/g/t", qos::at_least_once);
  m1.lose();
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i) {
    for (const auto& p : m2.publishes()) {
      got.push_back(p.payload);
      m2.puback(p.packet_id);
    }
  }
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"0", "1", "2"}));
}

TEST(EngineSubscribe, StartedQos2DeliveryStaysWithItsMember) {
  // [MQTT-4.8.2-4], [MQTT-4.8.2-5]: completed with that client when it returns.
  bench b;
  auto& m1 = b.persistent("m1");
  m1.subscribe("$share/g/t", qos::exactly_once);
  auto& pub = b.connected("pub");
  pub.publish("t", "two", qos::exactly_once, 1);
  const auto first = m1.publishes();
  ASSERT_EQ(first.size(), 1u);
  auto& m2 = b.connected("m2");
  m2.subscribe("$share/g/t", qos::exactly_once);
  m1.lose();
  m2.expect_nothing();
  auto& back = b.add(v5);
  EXPECT_TRUE(back.connect_persistent("m1", 3600).session_present);
  const auto again = back.publishes();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].payload, "two");
  EXPECT_EQ(again[0].packet_id, first[0].packet_id);
  EXPECT_TRUE(again[0].dup);
}

TEST(EngineSubscribe, RefusedSharedMessageIsNotGivenToAnotherMember) {
  // [MQTT-4.8.2-6].
  bench b;
  auto& m1 = b.connected("m1");
  m1.subscribe("$share/g/t", qos::at_least_once);
  auto& pub = b.connected("pub");
  pub.publish("t", "x", qos::at_least_once, 1);
  const auto got = m1.publishes();
  ASSERT_EQ(got.size(), 1u);
  auto& m2 = b.connected("m2");
  m2.subscribe("$share/g/t", qos::at_least_once);
  m1.puback(got[0].packet_id, reason_code::unspecified_error);
  m1.lose();
  m2.expect_nothing();
}

TEST(EngineSubscribe, UnsubscribingASharedSubscription) {
  bench b;
  auto& m1 = b.connected("m1");
  auto& m2 = b.connected("m2");
  m1.subscribe("$share/g/t");
  m2.subscribe("$share/g/t");
  EXPECT_EQ(m1.unsubscribe({"$share/g/t"}).codes, std::vector<reason_code>{reason_code::success});
  auto& pub = b.connected("pub");
  for (int i = 0; i < 3; ++i) pub.publish("t", "x");
  m1.expect_nothing();
  EXPECT_EQ(m2.publishes().size(), 3u);
}

// --- '$' topics ----------------------------------------------------------------------------------

TEST(EngineSubscribe, DollarTopicsAreNotMatchedByLeadingWildcards) {
  // [MQTT-4.7.2-1]; 3.1.1 [MQTT-4.7.2-1].
  bench b;
  auto& hash = b.connected("hash");
  hash.subscribe("#");
  auto& plus = b.connected("plus");
  plus.subscribe("+/x");
  auto& sys = b.connected("sys");
  sys.subscribe("$SYS/#");
  auto& exact = b.connected("exact");
  exact.subscribe("$x/x");
  auto& pub = b.connected("pub");
  pub.publish("$SYS/x", "1");
  pub.publish("$x/x", "2");
  hash.expect_nothing();
  plus.expect_nothing();
  EXPECT_EQ(payloads(sys.publishes()), std::vector<std::string>{"1"});
  EXPECT_EQ(payloads(exact.publishes()), std::vector<std::string>{"2"});
}

TEST(EngineSubscribe, RetainedDollarTopicsAreNotSentToLeadingWildcards) {
  bench b;
  auto& pub = b.connected("pub");
  pub.publish("$SYS/broker/version", "v", qos::at_most_once, 0, true);
  pub.publish("a", "a", qos::at_most_once, 0, true);
  auto& hash = b.connected("hash");
  hash.subscribe("#");
  EXPECT_EQ(topics(hash.publishes()), std::set<std::string>{"a"});
  auto& plus = b.connected("plus");
  plus.subscribe("+/broker/+");
  plus.expect_nothing();
  auto& sys = b.connected("sys");
  sys.subscribe("$SYS/#");
  EXPECT_EQ(topics(sys.publishes()), std::set<std::string>{"$SYS/broker/version"});
}

TEST(EngineSubscribe, TopicsAreMatchedWithoutNormalisation) {
  // [MQTT-4.7.3-4]: case, spaces and empty levels count.
  bench b;
  auto& c = b.connected("c1");
  c.subscribe("a/b");
  c.subscribe("a//+", qos::at_most_once, 2);
  auto& pub = b.connected("pub");
  pub.publish("A/b", "1");
  pub.publish("a/b ", "2");
  pub.publish("a/b/", "3");
  pub.publish("a//c", "4");
  pub.publish("a/b", "5");
  EXPECT_EQ(payloads(c.publishes()), (std::vector<std::string>{"4", "5"}));
}

}  // namespace
}  // namespace ringmq::core
