// PUBLISH and its acknowledgements in both directions: QoS 0, 1 and 2, packet
// identifiers, exactly-once reception, the outbound window (max_inflight and
// the client's Receive Maximum), the per-session queue and its limit,
// redelivery on resume, ordering, the inbound Receive Maximum, and what is
// never sent to a client. Statement numbers are MQTT 5.0's unless marked 3.1.1.

#include <gtest/gtest.h>

#include "tests/unit/core/engine_harness.hpp"

namespace ringmq::core {
namespace {

using namespace harness;

// --- inbound -------------------------------------------------------------------------------------

TEST(EnginePublish, Qos0IsForwardedWithoutAcknowledgement) {
  for (const auto v : {v3_1, v3_1_1, v5}) {
    SCOPED_TRACE(codec::to_string(v));
    bench b;
    auto& sub = b.connected("sub", v);
    sub.subscribe("a/b", qos::exactly_once);
    auto& pub = b.connected("pub", v);
    pub.publish("a/b", "hello");
    pub.expect_nothing();
    const auto got = sub.publishes();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].topic, "a/b");  // [MQTT-3.3.2-3]
    EXPECT_EQ(got[0].payload, "hello");
    EXPECT_EQ(got[0].qos, qos::at_most_once);
    EXPECT_EQ(got[0].packet_id, 0);
    EXPECT_FALSE(got[0].dup);  // [MQTT-4.3.1-1]
    EXPECT_FALSE(got[0].retain);
  }
}

TEST(EnginePublish, Qos1IsAcknowledgedWithItsPacketId) {
  // [MQTT-3.3.4-1], [MQTT-4.3.2-4]; 3.1.1 [MQTT-4.3.2-2].
  for (const auto v : {v3_1_1, v5}) {
    bench b;
    auto& sub = b.connected("sub", v);
    sub.subscribe("t", qos::at_least_once);
    auto& pub = b.connected("pub", v);
    pub.publish("t", "x", qos::at_least_once, 7);
    const auto ack = pub.expect<codec::puback_packet>();
    EXPECT_EQ(ack.packet_id, 7);
    EXPECT_EQ(ack.code, reason_code::success);
    EXPECT_TRUE(ack.props.empty());
    EXPECT_EQ(sub.publishes().size(), 1u);
  }
}

TEST(EnginePublish, Qos1WithAReusedPacketIdIsANewMessage) {
  // [MQTT-4.3.2-5]: after PUBACK the same id starts a new message, DUP or not.
  bench b;
  auto& sub = b.connected("sub");
  sub.subscribe("t", qos::at_least_once);
  auto& pub = b.connected("pub");
  pub.publish("t", "1", qos::at_least_once, 5);
  auto again = make_publish("t", "2", qos::at_least_once, 5);
  again.dup = true;
  pub.publish(again);
  EXPECT_EQ(pub.expect<codec::puback_packet>().packet_id, 5);
  EXPECT_EQ(pub.expect<codec::puback_packet>().packet_id, 5);
  EXPECT_EQ(payloads(sub.publishes()), (std::vector<std::string>{"1", "2"}));
}

TEST(EnginePublish, Qos2InboundFlow) {
  // [MQTT-4.3.3-8], [MQTT-4.3.3-11]; 3.1.1 [MQTT-4.3.3-2].
  for (const auto v : {v3_1_1, v5}) {
    bench b;
    auto& sub = b.connected("sub", v);
    sub.subscribe("t", qos::exactly_once);
    auto& pub = b.connected("pub", v);
    pub.publish("t", "x", qos::exactly_once, 9);
    const auto rec = pub.expect<codec::pubrec_packet>();
    EXPECT_EQ(rec.packet_id, 9);
    EXPECT_EQ(rec.code, reason_code::success);
    EXPECT_EQ(pub.current_session()->inbound_qos2_count(), 1u);
    pub.pubrel(9);
    const auto comp = pub.expect<codec::pubcomp_packet>();
    EXPECT_EQ(comp.packet_id, 9);
    EXPECT_EQ(comp.code, reason_code::success);
    EXPECT_EQ(pub.current_session()->inbound_qos2_count(), 0u);
    pub.expect_nothing();
    const auto got = sub.publishes();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].qos, qos::exactly_once);
  }
}

TEST(EnginePublish, Qos2RetransmissionBeforePubrelIsNotRoutedTwice) {
  // [MQTT-4.3.3-10], then [MQTT-4.3.3-12] once PUBCOMP is sent.
  bench b;
  auto& sub = b.connected("sub");
  sub.subscribe("t", qos::exactly_once);
  auto& pub = b.connected("pub");
  pub.publish("t", "first", qos::exactly_once, 3);
  auto dup = make_publish("t", "first", qos::exactly_once, 3);
  dup.dup = true;
  pub.publish(dup);
  pub.publish(dup);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(pub.expect<codec::pubrec_packet>().packet_id, 3);
  EXPECT_EQ(sub.publishes().size(), 1u);
  pub.pubrel(3);
  EXPECT_EQ(pub.expect<codec::pubcomp_packet>().packet_id, 3);
  pub.publish("t", "second", qos::exactly_once, 3);
  EXPECT_EQ(pub.expect<codec::pubrec_packet>().packet_id, 3);
  EXPECT_EQ(payloads(sub.publishes()), (std::vector<std::string>{"second"}));
}

TEST(EnginePublish, Qos2PacketIdsHeldAcrossReconnect) {
  // The ids awaiting PUBREL are session state: a resumed session still knows them.
  bench b;
  auto& sub = b.connected("sub");
  sub.subscribe("t", qos::exactly_once);
  auto& pub = b.persistent("pub");
  pub.publish("t", "x", qos::exactly_once, 4);
  pub.expect<codec::pubrec_packet>();
  pub.lose();
  auto& again = b.add(v5);
  EXPECT_TRUE(again.connect_persistent("pub", 3600).session_present);
  auto dup = make_publish("t", "x", qos::exactly_once, 4);
  dup.dup = true;
  again.publish(dup);
  EXPECT_EQ(again.expect<codec::pubrec_packet>().packet_id, 4);
  again.pubrel(4);
  const auto comp = again.expect<codec::pubcomp_packet>();
  EXPECT_EQ(comp.code, reason_code::success);
  EXPECT_EQ(sub.publishes().size(), 1u);
}

TEST(EnginePublish, PubrelForAnUnknownPacketId) {
  bench b;
  auto& c5 = b.connected("c5", v5);
  c5.pubrel(42);
  const auto comp = c5.expect<codec::pubcomp_packet>();
  EXPECT_EQ(comp.packet_id, 42);
  EXPECT_EQ(comp.code, reason_code::packet_identifier_not_found);
  EXPECT_FALSE(c5.closing());
  auto& c3 = b.connected("c3", v3_1_1);
  c3.pubrel(42);
  EXPECT_EQ(c3.expect<codec::pubcomp_packet>().packet_id, 42);  // 3.1.1 has no codes
}

TEST(EnginePublish, IncomingDupFlagIsNotForwarded) {
  // [MQTT-3.3.1-3]: DUP on the way out says only whether that packet is a resend.
  bench b;
  auto& sub = b.connected("sub");
  sub.subscribe("t", qos::at_least_once);
  auto& pub = b.connected("pub");
  auto p = make_publish("t", "x", qos::at_least_once, 1);
  p.dup = true;
  pub.publish(p);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].dup);
}

TEST(EnginePublish, NoMatchingSubscribers) {
  bench b;
  auto& c5 = b.connected("c5", v5);
  c5.publish("nobody", "x", qos::at_least_once, 1);
  EXPECT_EQ(c5.expect<codec::puback_packet>().code, reason_code::no_matching_subscribers);
  c5.publish("nobody", "x", qos::exactly_once, 2);
  EXPECT_EQ(c5.expect<codec::pubrec_packet>().code, reason_code::no_matching_subscribers);
  // 0x10 is a success code: the exchange goes on.
  c5.pubrel(2);
  EXPECT_EQ(c5.expect<codec::pubcomp_packet>().code, reason_code::success);
  auto& c3 = b.connected("c3", v3_1_1);
  c3.publish("nobody", "x", qos::at_least_once, 1);
  EXPECT_EQ(c3.expect<codec::puback_packet>().code, reason_code::success);
}

class deny_publish final : public authorizer {
 public:
  bool allowed(const client_identity&, std::string_view topic, access what) override {
    return !(what == access::publish && topic == "secret");
  }
};

TEST(EnginePublish, UnauthorizedPublishIsRefusedOrSilentlyDropped) {
  // 3.1.1 [MQTT-3.3.5-2]: acknowledge as usual (or close); 5.0 says 0x87.
  bench b;
  deny_publish authz;
  b.broker().set_auth(nullptr, &authz);
  auto& sub = b.connected("sub");
  sub.subscribe("#", qos::at_least_once);
  auto& c5 = b.connected("c5", v5);
  c5.publish("secret", "x", qos::at_least_once, 1);
  EXPECT_EQ(c5.expect<codec::puback_packet>().code, reason_code::not_authorized);
  auto& c3 = b.connected("c3", v3_1_1);
  c3.publish("secret", "x", qos::at_least_once, 1);
  EXPECT_EQ(c3.expect<codec::puback_packet>().code, reason_code::success);
  sub.expect_nothing();
  b.broker().set_auth(nullptr, nullptr);
}

TEST(EnginePublish, InboundReceiveMaximumExceeded) {
  // [MQTT-3.3.4-7] binds the client; the server answers a breach with DISCONNECT 0x93.
  broker_settings s;
  s.receive_maximum = 2;
  bench b(s);
  auto& c = b.connected("c1");
  // QoS 1 is acknowledged at once, so it never counts against the limit.
  for (std::uint16_t id = 1; id <= 5; ++id) c.publish("t", "x", qos::at_least_once, id);
  for (std::uint16_t id = 1; id <= 5; ++id) {
    EXPECT_EQ(c.expect<codec::puback_packet>().packet_id, id);
  }
  c.publish("t", "x", qos::exactly_once, 11);
  c.publish("t", "x", qos::exactly_once, 12);
  EXPECT_EQ(c.expect<codec::pubrec_packet>().packet_id, 11);
  EXPECT_EQ(c.expect<codec::pubrec_packet>().packet_id, 12);
  c.publish("t", "x", qos::exactly_once, 13);
  EXPECT_EQ(c.expect<codec::disconnect_packet>().code, reason_code::receive_maximum_exceeded);
  EXPECT_TRUE(c.closing());
}

TEST(EnginePublish, InboundReceiveMaximumCountsOnlyUnreleasedQos2) {
  broker_settings s;
  s.receive_maximum = 1;
  bench b(s);
  auto& c = b.connected("c1");
  for (std::uint16_t id = 1; id <= 4; ++id) {
    c.publish("t", "x", qos::exactly_once, id);
    EXPECT_EQ(c.expect<codec::pubrec_packet>().packet_id, id);
    c.pubrel(id);
    EXPECT_EQ(c.expect<codec::pubcomp_packet>().packet_id, id);
  }
  EXPECT_FALSE(c.closing());
}

// --- outbound ------------------------------------------------------------------------------------

TEST(EnginePublish, Qos1OutboundFlow) {
  // [MQTT-4.3.2-1], [MQTT-4.3.2-2], [MQTT-4.3.2-3], [MQTT-2.2.1-4].
  bench b;
  auto& sub = b.connected("sub");
  sub.subscribe("t", qos::at_least_once);
  auto& pub = b.connected("pub");
  pub.publish("t", "x", qos::at_least_once, 100);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, qos::at_least_once);
  EXPECT_NE(got[0].packet_id, 0);
  EXPECT_FALSE(got[0].dup);
  EXPECT_EQ(sub.current_session()->inflight_count(), 1u);
  sub.puback(got[0].packet_id);
  EXPECT_EQ(sub.current_session()->inflight_count(), 0u);
  sub.puback(got[0].packet_id);  // a stray PUBACK is ignored
  sub.expect_nothing();
  EXPECT_FALSE(sub.closing());
}

TEST(EnginePublish, Qos2OutboundFlow) {
  // [MQTT-4.3.3-1] .. [MQTT-4.3.3-6].
  bench b;
  auto& sub = b.connected("sub");
  sub.subscribe("t", qos::exactly_once);
  auto& pub = b.connected("pub");
  pub.publish("t", "x", qos::exactly_once, 100);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, qos::exactly_once);
  EXPECT_FALSE(got[0].dup);
  const auto id = got[0].packet_id;
  sub.pubrec(id);
  const auto rel = sub.expect<codec::pubrel_packet>();
  EXPECT_EQ(rel.packet_id, id);
  EXPECT_EQ(rel.code, reason_code::success);
  EXPECT_EQ(sub.current_session()->inflight_count(), 1u);  // the PUBREL awaits PUBCOMP
  sub.pubrec(id);  // a repeated PUBREC gets the PUBREL again
  EXPECT_EQ(sub.expect<codec::pubrel_packet>().code, reason_code::success);
  sub.pubcomp(id);
  EXPECT_EQ(sub.current_session()->inflight_count(), 0u);
  sub.expect_nothing();
}

TEST(EnginePublish, PubrecForAnUnknownPacketId) {
  bench b;
  auto& sub = b.connected("sub");
  sub.pubrec(77);
  const auto rel = sub.expect<codec::pubrel_packet>();
  EXPECT_EQ(rel.packet_id, 77);
  EXPECT_EQ(rel.code, reason_code::packet_identifier_not_found);
}

TEST(EnginePublish, ErrorAcknowledgementsEndTheExchange) {
  // [MQTT-4.4.0-2]: PUBACK or PUBREC >= 0x80 counts as acknowledged, never resent.
  bench b;
  auto& sub = b.persistent("sub");
  sub.subscribe("t", qos::exactly_once);
  auto& pub = b.connected("pub");
  pub.publish("t", "one", qos::at_least_once, 1);
  pub.publish("t", "two", qos::exactly_once, 2);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 2u);
  sub.puback(got[0].packet_id, reason_code::unspecified_error);
  sub.pubrec(got[1].packet_id, reason_code::implementation_specific_error);
  sub.expect_nothing();  // no PUBREL after a failed PUBREC
  EXPECT_EQ(sub.current_session()->inflight_count(), 0u);
  sub.lose();
  auto& again = b.add(v5);
  EXPECT_TRUE(again.connect_persistent("sub", 3600).session_present);
  again.expect_nothing();
}

TEST(EnginePublish, DeliveredAtTheMinimumOfPublishedAndGrantedQos) {
  // [MQTT-3.8.4-8]; 3.1.1 [MQTT-3.8.4-6].
  struct row {
    qos granted;
    qos published;
    qos delivered;
  };
  const row rows[] = {
      {qos::at_most_once, qos::exactly_once, qos::at_most_once},
      {qos::at_least_once, qos::exactly_once, qos::at_least_once},
      {qos::exactly_once, qos::at_least_once, qos::at_least_once},
      {qos::exactly_once, qos::at_most_once, qos::at_most_once},
      {qos::at_least_once, qos::at_least_once, qos::at_least_once},
  };
  for (const auto& r : rows) {
    bench b;
    auto& sub = b.connected("sub", v3_1_1);
    sub.subscribe("t", r.granted);
    auto& pub = b.connected("pub");
    pub.publish("t", "x", r.published, 1);
    const auto got = sub.publishes();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].qos, r.delivered);
    EXPECT_EQ(got[0].packet_id == 0, r.delivered == qos::at_most_once);
  }
}

TEST(EnginePublish, OutboundPacketIdsAreDistinctWhileInFlight) {
  // [MQTT-2.2.1-4]: a new PUBLISH gets an id not in use.
  bench b;
  auto& sub = b.connected("sub");
  sub.subscribe("t", qos::exactly_once);
  auto& pub = b.connected("pub");
  for (int i = 0; i < 10; ++i) pub.publish("t", std::to_string(i), qos::exactly_once, 1 + i);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 10u);
  std::vector<std::uint16_t> ids;
  for (const auto& p : got) ids.push_back(p.packet_id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 0), 0);
}

// --- the window ----------------------------------------------------------------------------------

// Publishes `n` QoS 1 messages "0", "1", ... on "t".
void publish_numbered(client& pub, int n, qos q = qos::at_least_once) {
  for (int i = 0; i < n; ++i) {
    pub.publish("t", std::to_string(i), q, static_cast<std::uint16_t>(1 + i % 60000));
  }
  pub.received();
}

TEST(EnginePublish, WindowIsTheSmallerOfMaxInflightAndReceiveMaximum) {
  // [MQTT-3.3.4-9], [MQTT-4.9.0-1], [MQTT-4.9.0-2].
  struct row {
    std::uint16_t max_inflight;
    std::optional<std::uint16_t> receive_maximum;
    std::size_t window;
  };
  const row rows[] = {{3, 2, 2}, {2, 5, 2}, {3, std::nullopt, 3}, {20, 1, 1}};
  for (const auto& r : rows) {
    broker_settings s;
    s.session.max_inflight = r.max_inflight;
    bench b(s);
    auto& sub = b.add(v5);
    codec::properties props;
    props.receive_maximum = r.receive_maximum;
    sub.connect("sub", true, props);
    sub.subscribe("t", qos::exactly_once);
    auto& pub = b.connected("pub");
    publish_numbered(pub, 6);
    auto got = sub.publishes();
    ASSERT_EQ(got.size(), r.window);
    EXPECT_EQ(sub.current_session()->queued_count(), 6 - r.window);
    // Each acknowledgement lets exactly one more through, in order.
    std::vector<std::string> all = payloads(got);
    while (!got.empty()) {
      sub.puback(got.front().packet_id);
      got.erase(got.begin());
      auto more = sub.publishes();
      ASSERT_LE(more.size(), 1u);
      for (auto& m : more) {
        all.push_back(m.payload);
        got.push_back(std::move(m));
      }
      EXPECT_EQ(sub.current_session()->inflight_count(), got.size());
    }
    EXPECT_EQ(all, (std::vector<std::string>{"0", "1", "2", "3", "4", "5"}));
  }
}

TEST(EnginePublish, V311WindowIsMaxInflight) {
  broker_settings s;
  s.session.max_inflight = 3;
  bench b(s);
  auto& sub = b.connected("sub", v3_1_1);
  sub.subscribe("t", qos::exactly_once);
  auto& pub = b.connected("pub");
  publish_numbered(pub, 5, qos::exactly_once);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 3u);
  // A QoS 2 message keeps its place until PUBCOMP, not PUBREC.
  sub.pubrec(got[0].packet_id);
  sub.expect<codec::pubrel_packet>();
  sub.expect_nothing();
  sub.pubcomp(got[0].packet_id);
  EXPECT_EQ(payloads(sub.publishes()), (std::vector<std::string>{"3"}));
}

TEST(EnginePublish, OtherPacketsFlowWhileTheWindowIsFull) {
  // [MQTT-3.3.4-10], [MQTT-4.9.0-3].
  broker_settings s;
  s.session.max_inflight = 1;
  bench b(s);
  auto& sub = b.connected("sub");
  sub.subscribe("t", qos::at_least_once);
  auto& pub = b.connected("pub");
  publish_numbered(pub, 3);
  EXPECT_EQ(sub.publishes().size(), 1u);
  sub.send(codec::pingreq_packet{});
  sub.expect<codec::pingresp_packet>();
  EXPECT_EQ(sub.subscribe("u", qos::at_least_once, 2).codes,
            std::vector<reason_code>{reason_code::granted_qos_1});
  sub.publish("elsewhere", "x", qos::at_least_once, 9);
  EXPECT_EQ(sub.expect<codec::puback_packet>().packet_id, 9);
  // QoS 0 is not held back by the window either.
  pub.publish("u", "zero");
  EXPECT_EQ(payloads(sub.publishes()), (std::vector<std::string>{"zero"}));
}

TEST(EnginePublish, QueueOverflowIsDroppedAndCounted) {
  broker_settings s;
  s.session.max_inflight = 1;
  s.session.max_queued_messages = 2;
  bench b(s);
  auto& sub = b.connected("sub");
  sub.subscribe("t", qos::at_least_once);
  auto& pub = b.connected("pub");
  const auto before = dropped(drop_reason::queue_full);
  publish_numbered(pub, 5);
  EXPECT_EQ(dropped(drop_reason::queue_full) - before, 2u);
  EXPECT_EQ(sub.current_session()->queued_count(), 2u);
  std::vector<std::string> all;
  for (int i = 0; i < 3; ++i) {
    const auto got = sub.publishes();
    ASSERT_EQ(got.size(), 1u);
    all.push_back(got[0].payload);
    sub.puback(got[0].packet_id);
  }
  sub.expect_nothing();
  EXPECT_EQ(all, (std::vector<std::string>{"0", "1", "2"}));  // the newest were dropped
}

TEST(EnginePublish, InOrderDeliveryPerTopicAndQos) {
  // [MQTT-4.6.0-5], [MQTT-4.6.0-6]; 3.1.1 [MQTT-4.6.0-6].
  broker_settings s;
  s.session.max_inflight = 2;
  bench b(s);
  auto& sub = b.connected("sub");
  sub.subscribe("o/#", qos::exactly_once);
  auto& pub = b.connected("pub");
  std::vector<std::string> sent;
  for (int i = 0; i < 20; ++i) {
    const auto topic = i % 3 == 0 ? "o/a" : "o/b";
    const auto q = i % 2 == 0 ? qos::at_least_once : qos::exactly_once;
    pub.publish(topic, std::to_string(i), q, static_cast<std::uint16_t>(i + 1));
    sent.push_back(std::to_string(i));
  }
  // The subscriber acknowledges whatever arrives, as a client would.
  std::vector<std::string> got;
  for (int round = 0; round < 100 && got.size() < sent.size(); ++round) {
    for (const auto& p : sub.received()) {
      if (const auto* m = std::get_if<codec::publish_packet>(&p)) {
        got.push_back(m->payload);
        if (m->qos == qos::at_least_once) {
          sub.puback(m->packet_id);
        } else {
          sub.pubrec(m->packet_id);
        }
      } else if (const auto* rel = std::get_if<codec::pubrel_packet>(&p)) {
        sub.pubcomp(rel->packet_id);
      }
    }
  }
  EXPECT_EQ(got, sent);
}

TEST(EnginePublish, Qos0DroppedWhenTheConnectionIsCongested) {
  broker_settings s;
  s.max_outbound_bytes = 100;
  bench b(s);
  auto& sub = b.connected("sub");
  sub.subscribe("t", qos::at_least_once);
  auto& pub = b.connected("pub");
  const auto before = dropped(drop_reason::slow_consumer);
  const std::string payload(60, 'x');
  // The subscriber reads nothing: after two messages more than 100 bytes wait.
  for (int i = 0; i < 5; ++i) pub.publish("t", payload);
  EXPECT_GT(sub.out().pending_bytes(), 100u);
  EXPECT_EQ(dropped(drop_reason::slow_consumer) - before, 3u);
  // QoS 1 is not dropped for congestion: it waits in the session.
  pub.publish("t", "one", qos::at_least_once, 1);
  EXPECT_EQ(dropped(drop_reason::slow_consumer) - before, 3u);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].payload, "one");
  // Once the connection caught up, QoS 0 flows again.
  pub.publish("t", payload);
  EXPECT_EQ(sub.publishes().size(), 1u);
}

TEST(EnginePublish, MessagesLargerThanTheClientsMaximumPacketSizeAreNotSent) {
  // [MQTT-3.1.2-24], [MQTT-3.1.2-25]: discarded, as if delivered.
  bench b;
  auto& sub = b.add(v5);
  codec::properties props;
  props.maximum_packet_size = 64;
  sub.connect("sub", true, props);
  sub.subscribe("t", qos::at_least_once);
  auto& pub = b.connected("pub");
  const auto before = dropped(drop_reason::too_large);
  pub.publish("t", std::string(64, 'x'), qos::at_least_once, 1);
  pub.publish("t", std::string(64, 'y'));
  EXPECT_EQ(dropped(drop_reason::too_large) - before, 2u);
  sub.expect_nothing();
  EXPECT_EQ(sub.current_session()->inflight_count(), 0u);
  pub.publish("t", "small", qos::at_least_once, 2);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "small");
  // Exactly at the limit still goes: 64 bytes, fixed header included.
  codec::publish_packet probe = make_publish("t", "", qos::at_least_once, 1);
  const auto overhead = codec::encoded_size(codec::packet{probe}, v5);
  pub.publish("t", std::string(64 - overhead, 'z'), qos::at_least_once, 3);
  EXPECT_EQ(sub.publishes().size(), 1u);
}

TEST(EnginePublish, TooLargeMessagesDoNotBlockTheQueue) {
  broker_settings s;
  s.session.max_inflight = 1;
  bench b(s);
  auto& sub = b.add(v5);
  codec::properties props;
  props.maximum_packet_size = 64;
  sub.connect("sub", true, props);
  sub.subscribe("t", qos::at_least_once);
  auto& pub = b.connected("pub");
  pub.publish("t", "a", qos::at_least_once, 1);
  pub.publish("t", std::string(100, 'x'), qos::at_least_once, 2);
  pub.publish("t", "c", qos::at_least_once, 3);
  auto got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  sub.puback(got[0].packet_id);
  EXPECT_EQ(payloads(sub.publishes()), (std::vector<std::string>{"c"}));
}

// --- offline sessions and resumption -------------------------------------------------------------

TEST(EnginePublish, OfflineSessionQueuesQos1And2AndDropsQos0) {
  // 3.1.1 [MQTT-3.1.2-5]; [MQTT-4.5.0-1].
  bench b;
  {
    auto& sub = b.persistent("sub");
    sub.subscribe("t", qos::exactly_once);
    sub.lose();
  }
  auto& pub = b.connected("pub");
  const auto before = dropped(drop_reason::offline_qos0);
  pub.publish("t", "zero");
  pub.publish("t", "one", qos::at_least_once, 1);
  pub.publish("t", "two", qos::exactly_once, 2);
  EXPECT_EQ(dropped(drop_reason::offline_qos0) - before, 1u);
  EXPECT_EQ(b.broker().sessions().find("sub")->queued_count(), 2u);
  auto& sub = b.add(v5);
  EXPECT_TRUE(sub.connect_persistent("sub", 3600).session_present);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload, "one");
  EXPECT_EQ(got[0].qos, qos::at_least_once);
  EXPECT_FALSE(got[0].dup);  // never sent before
  EXPECT_EQ(got[1].payload, "two");
  EXPECT_EQ(got[1].qos, qos::exactly_once);
  EXPECT_FALSE(got[1].dup);
}

TEST(EnginePublish, V311PersistentSessionQueuesWhileOffline) {
  bench b;
  {
    auto& sub = b.add(v3_1_1);
    sub.connect("sub", false);
    sub.subscribe("t", qos::at_least_once);
    sub.lose();
  }
  auto& pub = b.connected("pub", v3_1_1);
  pub.publish("t", "x", qos::at_least_once, 1);
  auto& sub = b.add(v3_1_1);
  EXPECT_TRUE(sub.connect("sub", false).session_present);
  EXPECT_EQ(payloads(sub.publishes()), (std::vector<std::string>{"x"}));
}

TEST(EnginePublish, UnacknowledgedMessagesResentOnResumeInOrder) {
  // [MQTT-4.4.0-1], [MQTT-3.3.1-1], [MQTT-4.6.0-1]'s server side; 3.1.1 [MQTT-4.4.0-1].
  bench b;
  std::vector<codec::publish_packet> first;
  {
    auto& sub = b.persistent("sub");
    sub.subscribe("t", qos::exactly_once);
    auto& pub = b.connected("pub");
    pub.publish("t", "a", qos::at_least_once, 1);
    pub.publish("t", "b", qos::exactly_once, 2);
    pub.publish("t", "c", qos::exactly_once, 3);
    pub.publish("t", "d", qos::at_least_once, 4);
    first = sub.publishes();
    ASSERT_EQ(first.size(), 4u);
    sub.pubrec(first[2].packet_id);  // "c" reached the client: only PUBREL remains
    EXPECT_EQ(sub.expect<codec::pubrel_packet>().packet_id, first[2].packet_id);
    sub.puback(first[3].packet_id);  // "d" is done
    sub.lose();
  }
  auto& sub = b.add(v5);
  EXPECT_TRUE(sub.connect_persistent("sub", 3600).session_present);
  const auto again = sub.received();
  ASSERT_EQ(again.size(), 3u);
  const auto* a = std::get_if<codec::publish_packet>(&again[0]);
  const auto* bb = std::get_if<codec::publish_packet>(&again[1]);
  const auto* rel = std::get_if<codec::pubrel_packet>(&again[2]);
  ASSERT_TRUE(a && bb && rel);
  EXPECT_EQ(a->payload, "a");
  EXPECT_EQ(a->packet_id, first[0].packet_id);  // original packet ids
  EXPECT_TRUE(a->dup);
  EXPECT_EQ(a->qos, qos::at_least_once);
  EXPECT_EQ(bb->payload, "b");
  EXPECT_EQ(bb->packet_id, first[1].packet_id);
  EXPECT_TRUE(bb->dup);
  EXPECT_EQ(rel->packet_id, first[2].packet_id);
  // The exchanges complete on the new connection.
  sub.puback(a->packet_id);
  sub.pubrec(bb->packet_id);
  EXPECT_EQ(sub.expect<codec::pubrel_packet>().packet_id, bb->packet_id);
  sub.pubcomp(bb->packet_id);
  sub.pubcomp(rel->packet_id);
  EXPECT_EQ(sub.current_session()->inflight_count(), 0u);
}

TEST(EnginePublish, V311UnacknowledgedMessagesResentWithDup) {
  bench b;
  std::uint16_t id = 0;
  {
    auto& sub = b.add(v3_1_1);
    sub.connect("sub", false);
    sub.subscribe("t", qos::at_least_once);
    auto& pub = b.connected("pub", v3_1_1);
    pub.publish("t", "x", qos::at_least_once, 1);
    const auto got = sub.publishes();
    ASSERT_EQ(got.size(), 1u);
    id = got[0].packet_id;
    sub.lose();
  }
  auto& sub = b.add(v3_1_1);
  EXPECT_TRUE(sub.connect("sub", false).session_present);
  const auto got = sub.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].packet_id, id);
  EXPECT_TRUE(got[0].dup);
}

TEST(EnginePublish, NothingResentWithoutAReconnect) {
  // [MQTT-4.4.0-1]: resending happens on resume only.
  bench b;
  auto& sub = b.connected("sub");
  sub.subscribe("t", qos::at_least_once);
  auto& pub = b.connected("pub");
  pub.publish("t", "x", qos::at_least_once, 1);
  EXPECT_EQ(sub.publishes().size(), 1u);
  b.advance(1h);
  sub.tick();
  b.sweep();
  sub.expect_nothing();
}

TEST(EnginePublish, MessageForAClosingConnectionIsKeptForTheResumedSession) {
  // Between the DISCONNECT and the socket's end a message may still arrive;
  // the session keeps it ([MQTT-4.5.0-1]) and sends it on resume.
  bench b;
  auto& sub = b.persistent("sub");
  sub.subscribe("t", qos::at_least_once);
  sub.disconnect();
  auto& pub = b.connected("pub");
  pub.publish("t", "late", qos::at_least_once, 1);
  sub.lose();
  auto& again = b.add(v5);
  EXPECT_TRUE(again.connect_persistent("sub", 3600).session_present);
  EXPECT_EQ(payloads(again.publishes()), (std::vector<std::string>{"late"}));
}

TEST(EnginePublish, CleanSessionDiscardsQueuedMessages) {
  bench b;
  {
    auto& sub = b.persistent("sub");
    sub.subscribe("t", qos::at_least_once);
    sub.lose();
  }
  auto& pub = b.connected("pub");
  pub.publish("t", "x", qos::at_least_once, 1);
  auto& sub = b.add(v5);
  EXPECT_FALSE(sub.connect_persistent("sub", 3600, true).session_present);
  sub.expect_nothing();
}

}  // namespace
}  // namespace ringmq::core
