// The session on its own: packet identifiers, the window, the queue, what a
// detach hands back for shared subscriptions, claims, expiry and the pending
// will. Packets are read back from the outbox the session writes to.

#include <gtest/gtest.h>

#include "broker/core/receive_gate.hpp"
#include "broker/core/session.hpp"
#include "tests/unit/core/engine_harness.hpp"

namespace ringmq::core {
namespace {

using namespace harness;

const time_point t0 = time_point{} + std::chrono::hours(1);

message_ptr msg(std::string topic, std::string payload, qos q = qos::at_least_once) {
  auto m = std::make_shared<message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = q;
  return m;
}

// Throws away what the session wrote so far.
void discard(outbox& out) {
  std::string bytes;
  out.take(bytes);
}

outgoing out_of(message_ptr m, std::string share = {}) {
  outgoing o;
  o.qos = m->qos;
  o.msg = std::move(m);
  o.share = std::move(share);
  return o;
}

// A session attached to an outbox, read as a 5.0 client would.
struct attached {
  explicit attached(session_limits limits = {}, peer_limits peer = {},
                    protocol_version v = v5)
      : s("c1", limits), out(std::make_shared<outbox>(v, [] {}, 1 << 20)), version(v) {
    s.claim(1);
    EXPECT_TRUE(s.attach(1, out, peer, t0));
  }
  std::vector<codec::publish_packet> publishes() {
    std::vector<codec::publish_packet> got;
    for (auto& p : drain(*out, version)) {
      auto* pub = std::get_if<codec::publish_packet>(&p);
      if (!pub) {
        ADD_FAILURE() << "expected PUBLISH, got " << describe(p);
        continue;
      }
      got.push_back(std::move(*pub));
    }
    return got;
  }

  session s;
  std::shared_ptr<outbox> out;
  protocol_version version;
};

TEST(Session, PacketIdsStartAtOneAndCount) {
  attached a;
  for (int i = 0; i < 3; ++i) a.s.deliver(out_of(msg("t", std::to_string(i))), t0);
  const auto got = a.publishes();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].packet_id, 1);
  EXPECT_EQ(got[1].packet_id, 2);
  EXPECT_EQ(got[2].packet_id, 3);
}

TEST(Session, PacketIdsSkipIdsStillInUseAfterWrapping) {
  // [MQTT-2.2.1-4]: never an id in use, never 0.
  attached a;
  a.s.deliver(out_of(msg("t", "held")), t0);  // id 1, never acknowledged
  ASSERT_EQ(a.publishes().at(0).packet_id, 1);
  // Walk the counter once round: 2 .. 65535.
  for (std::uint32_t id = 2; id <= 65535; ++id) {
    a.s.deliver(out_of(msg("t", "x")), t0);
    a.s.on_puback(static_cast<std::uint16_t>(id), t0);
  }
  discard(*a.out);  // 65534 packets nobody needs to decode
  a.s.deliver(out_of(msg("t", "after")), t0);
  const auto got = a.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].packet_id, 2);  // 0 and the held 1 are skipped
  EXPECT_EQ(a.s.inflight_count(), 2u);
}

TEST(Session, QoS2IdsStayInUseUntilPubcomp) {
  session_limits limits;
  limits.max_inflight = 2;
  attached a(limits);
  a.s.deliver(out_of(msg("t", "a", qos::exactly_once)), t0);
  a.s.on_pubrec(1, reason_code::success, t0);
  EXPECT_EQ(a.s.inflight_count(), 1u);
  const auto rel = drain(*a.out, v5);
  ASSERT_EQ(rel.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<codec::pubrel_packet>(rel[1]));
  a.s.deliver(out_of(msg("t", "b", qos::exactly_once)), t0);
  EXPECT_EQ(a.publishes().at(0).packet_id, 2);
  a.s.on_pubcomp(1, t0);
  EXPECT_EQ(a.s.inflight_count(), 1u);
}

TEST(Session, WindowIsTheSmallerOfTheLimitAndTheReceiveMaximum) {
  session_limits limits;
  limits.max_inflight = 3;
  peer_limits peer;
  peer.receive_maximum = 2;
  attached a(limits, peer);
  for (int i = 0; i < 5; ++i) a.s.deliver(out_of(msg("t", std::to_string(i))), t0);
  EXPECT_EQ(a.s.inflight_count(), 2u);
  EXPECT_EQ(a.s.queued_count(), 3u);
  EXPECT_EQ(payloads(a.publishes()), (std::vector<std::string>{"0", "1"}));
  a.s.on_puback(2, t0);  // out of order: still frees a place
  EXPECT_EQ(payloads(a.publishes()), std::vector<std::string>{"2"});
  a.s.on_puback(1, t0);
  EXPECT_EQ(payloads(a.publishes()), std::vector<std::string>{"3"});
  a.s.on_puback(99, t0);  // unknown: nothing happens
  EXPECT_TRUE(a.publishes().empty());
  EXPECT_EQ(a.s.inflight_count(), 2u);
}

TEST(Session, Qos0BypassesTheQueueAndTheWindow) {
  session_limits limits;
  limits.max_inflight = 1;
  attached a(limits);
  a.s.deliver(out_of(msg("t", "1")), t0);
  a.s.deliver(out_of(msg("t", "2")), t0);
  a.s.deliver(out_of(msg("t", "zero", qos::at_most_once)), t0);
  EXPECT_EQ(payloads(a.publishes()), (std::vector<std::string>{"1", "zero"}));
}

TEST(Session, PubrecWithAnErrorFreesItsPlace) {
  session_limits limits;
  limits.max_inflight = 1;
  attached a(limits);
  a.s.deliver(out_of(msg("t", "a", qos::exactly_once)), t0);
  a.s.deliver(out_of(msg("t", "b", qos::exactly_once)), t0);
  EXPECT_EQ(payloads(a.publishes()), std::vector<std::string>{"a"});
  a.s.on_pubrec(1, reason_code::quota_exceeded, t0);
  EXPECT_EQ(payloads(a.publishes()), std::vector<std::string>{"b"});  // and no PUBREL
}

TEST(Session, QueueLimitDropsTheNewest) {
  session_limits limits;
  limits.max_queued_messages = 2;
  session s("c1", limits);
  const auto before = dropped(drop_reason::queue_full);
  for (int i = 0; i < 4; ++i) s.deliver(out_of(msg("t", std::to_string(i))), t0);
  EXPECT_EQ(s.queued_count(), 2u);
  EXPECT_EQ(dropped(drop_reason::queue_full) - before, 2u);
}

TEST(Session, OfflineQos0IsDroppedUnlessConfiguredToQueue) {
  {
    session s("c1", {});
    const auto before = dropped(drop_reason::offline_qos0);
    s.deliver(out_of(msg("t", "x", qos::at_most_once)), t0);
    EXPECT_EQ(s.queued_count(), 0u);
    EXPECT_EQ(dropped(drop_reason::offline_qos0) - before, 1u);
  }
  session_limits limits;
  limits.queue_qos0_offline = true;
  limits.max_inflight = 1;
  session s("c1", limits);
  s.deliver(out_of(msg("t", "zero-1", qos::at_most_once)), t0);
  s.deliver(out_of(msg("t", "one", qos::at_least_once)), t0);
  s.deliver(out_of(msg("t", "zero-2", qos::at_most_once)), t0);
  EXPECT_EQ(s.queued_count(), 3u);
  auto out = std::make_shared<outbox>(v5, [] {}, 1 << 20);
  s.claim(1);
  s.attach(1, out, {}, t0);
  // QoS 0 goes without a packet id and takes no place in the window; it keeps
  // its place in the queue's order.
  auto got = drain(*out, v5);
  ASSERT_EQ(got.size(), 2u);
  const auto& z1 = std::get<codec::publish_packet>(got[0]);
  const auto& one = std::get<codec::publish_packet>(got[1]);
  EXPECT_EQ(z1.payload, "zero-1");
  EXPECT_EQ(z1.qos, qos::at_most_once);
  EXPECT_EQ(z1.packet_id, 0);
  EXPECT_EQ(one.payload, "one");
  EXPECT_EQ(one.packet_id, 1);
  EXPECT_EQ(s.inflight_count(), 1u);
  EXPECT_EQ(s.queued_count(), 1u);
  s.on_puback(1, t0);
  got = drain(*out, v5);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(std::get<codec::publish_packet>(got[0]).payload, "zero-2");
  EXPECT_EQ(s.inflight_count(), 0u);
  EXPECT_EQ(s.queued_count(), 0u);
}

// An ACL whose read rights can change, as a reloaded ACL file's do.
class switchable_acl final : public authorizer {
 public:
  bool allowed(const client_identity&, std::string_view topic, access what) override {
    return what != access::receive || !topic.starts_with(revoked);
  }
  std::string revoked = "\xff";  // nothing
};

// A message queued while the client was offline is checked again when it
// leaves the queue: a read right revoked meanwhile (SIGHUP) applies to it.
TEST(Session, QueuedMessagesMeetTheAclInForceWhenTheyLeaveTheQueue) {
  switchable_acl acl;
  receive_gate gate;
  gate.set(&acl);
  session s("c1", {}, nullptr, &gate);
  s.deliver(out_of(msg("secret/a", "1")), t0);
  s.deliver(out_of(msg("public/b", "2")), t0);
  s.deliver(out_of(msg("secret/c", "3", qos::exactly_once)), t0);
  ASSERT_EQ(s.queued_count(), 3u);

  acl.revoked = "secret/";
  const auto before = dropped(drop_reason::not_authorized);
  auto out = std::make_shared<outbox>(v5, [] {}, 1 << 20);
  s.claim(1);
  ASSERT_TRUE(s.attach(1, out, {}, t0));
  const auto got = drain(*out, v5);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(std::get<codec::publish_packet>(got[0]).payload, "2");
  EXPECT_EQ(s.queued_count(), 0u);
  EXPECT_EQ(dropped(drop_reason::not_authorized) - before, 2u);
}

TEST(Session, AttachResendsInFlightWithDupThenFillsTheWindow) {
  session_limits limits;
  limits.max_inflight = 2;
  session s("c1", limits);
  auto first = std::make_shared<outbox>(v5, [] {}, 1 << 20);
  s.claim(1);
  s.attach(1, first, {}, t0);
  s.deliver(out_of(msg("t", "a", qos::at_least_once)), t0);
  s.deliver(out_of(msg("t", "b", qos::exactly_once)), t0);
  s.deliver(out_of(msg("t", "c", qos::at_least_once)), t0);  // queued
  s.on_pubrec(2, reason_code::success, t0);
  EXPECT_TRUE(s.detach(1, t0).empty());
  EXPECT_FALSE(s.online());
  s.on_puback(1, t0);  // the window frees up while offline: "c" waits for a connection
  EXPECT_EQ(s.queued_count(), 1u);

  auto second = std::make_shared<outbox>(v5, [] {}, 1 << 20);
  s.claim(2);
  ASSERT_TRUE(s.attach(2, second, {}, t0));
  const auto got = drain(*second, v5);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(std::get<codec::pubrel_packet>(got[0]).packet_id, 2);
  const auto& c = std::get<codec::publish_packet>(got[1]);
  EXPECT_EQ(c.payload, "c");
  EXPECT_FALSE(c.dup);  // never sent before
  EXPECT_NE(c.packet_id, 2);  // 2 still awaits PUBCOMP
}

TEST(Session, DetachHandsBackSharedMessagesNotYetDeliveredOrQos1) {
  session_limits limits;
  limits.max_inflight = 4;
  attached a(limits);
  a.s.deliver(out_of(msg("t", "plain")), t0);
  a.s.deliver(out_of(msg("t", "q1", qos::at_least_once), "$share/g/t"), t0);
  a.s.deliver(out_of(msg("t", "q2", qos::exactly_once), "$share/g/t"), t0);
  a.s.deliver(out_of(msg("t", "q2-released", qos::exactly_once), "$share/g/t"), t0);
  a.s.deliver(out_of(msg("t", "queued", qos::exactly_once), "$share/g/t"), t0);
  a.s.on_pubrec(4, reason_code::success, t0);
  EXPECT_EQ(a.s.inflight_count(), 4u);
  EXPECT_EQ(a.s.queued_count(), 1u);
  const auto back = a.s.detach(1, t0);
  std::vector<std::string> handed;
  for (const auto& o : back) {
    handed.push_back(o.msg->payload);
    EXPECT_EQ(o.share, "$share/g/t");
  }
  // The QoS 1 in flight and the queued one go back to the group; the QoS 2
  // deliveries already started stay ([MQTT-4.8.2-4]).
  EXPECT_EQ(handed, (std::vector<std::string>{"q1", "queued"}));
  EXPECT_EQ(a.s.inflight_count(), 3u);
  EXPECT_EQ(a.s.queued_count(), 0u);
}

TEST(Session, DetachByAnotherConnectionChangesNothing) {
  attached a;
  a.s.deliver(out_of(msg("t", "x"), "$share/g/t"), t0);
  EXPECT_TRUE(a.s.detach(7, t0).empty());
  EXPECT_TRUE(a.s.online());
  EXPECT_EQ(a.s.owner(), 1u);
  EXPECT_EQ(a.s.inflight_count(), 1u);
}

TEST(Session, ClaimHandsBackTheOutboxOfTheConnectionItTakesOver) {
  attached a;
  auto previous = a.s.claim(2);
  EXPECT_EQ(previous, a.out);
  EXPECT_FALSE(a.s.online());
  EXPECT_EQ(a.s.owner(), 2u);
  // The old connection can no longer attach or detach.
  EXPECT_FALSE(a.s.attach(1, a.out, {}, t0));
  EXPECT_TRUE(a.s.detach(1, t0).empty());
  // Deliveries wait for the new connection.
  a.s.deliver(out_of(msg("t", "x")), t0);
  EXPECT_EQ(a.s.queued_count(), 1u);
  auto fresh = std::make_shared<outbox>(v5, [] {}, 1 << 20);
  EXPECT_TRUE(a.s.attach(2, fresh, {}, t0));
  EXPECT_EQ(drain(*fresh, v5).size(), 1u);
}

TEST(Session, DeliveriesToAClosingConnectionAreKept) {
  attached a;
  a.out->close();
  a.s.deliver(out_of(msg("t", "late")), t0);
  EXPECT_EQ(a.s.inflight_count(), 1u);
  a.s.detach(1, t0);
  auto fresh = std::make_shared<outbox>(v5, [] {}, 1 << 20);
  a.s.claim(2);
  a.s.attach(2, fresh, {}, t0);
  const auto got = drain(*fresh, v5);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(std::get<codec::publish_packet>(got[0]).payload, "late");
}

TEST(Session, EndedSessionTakesNothing) {
  session s("c1", {});
  s.end();
  EXPECT_TRUE(s.ended());
  s.deliver(out_of(msg("t", "x")), t0);
  EXPECT_EQ(s.queued_count(), 0u);
}

TEST(Session, ExpiredMessagesAreNotDelivered) {
  attached a;
  auto m = std::make_shared<message>(*msg("t", "x"));
  m->expires_at = t0;
  const auto before = dropped(drop_reason::expired);
  a.s.deliver(out_of(m), t0);
  EXPECT_EQ(dropped(drop_reason::expired) - before, 1u);
  EXPECT_TRUE(a.publishes().empty());
}

TEST(Session, TooLargeForTheClientIsDroppedAsIfDelivered) {
  peer_limits peer;
  peer.maximum_packet_size = 20;
  attached a({}, peer);
  const auto before = dropped(drop_reason::too_large);
  a.s.deliver(out_of(msg("t", std::string(30, 'x'))), t0);
  EXPECT_EQ(dropped(drop_reason::too_large) - before, 1u);
  EXPECT_EQ(a.s.inflight_count(), 0u);
  EXPECT_TRUE(a.publishes().empty());
}

TEST(Session, V311DeliveryCarriesNoProperties) {
  attached a({}, {}, v3_1_1);
  auto m = std::make_shared<message>(*msg("t", "x"));
  m->props.user_properties = {{"k", "v"}};
  m->expires_at = t0 + std::chrono::seconds(30);
  outgoing o = out_of(m);
  o.subscription_ids = {3};
  a.s.deliver(std::move(o), t0);
  const auto got = a.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].props.empty());
}

TEST(Session, InboundQos2Ids) {
  session s("c1", {});
  EXPECT_TRUE(s.begin_inbound_qos2(5).added);
  EXPECT_FALSE(s.begin_inbound_qos2(5).added);  // a retransmission
  EXPECT_TRUE(s.begin_inbound_qos2(6).added);
  EXPECT_EQ(s.inbound_qos2_count(), 2u);
  EXPECT_TRUE(s.release_inbound_qos2(5));
  EXPECT_FALSE(s.release_inbound_qos2(5));
  EXPECT_EQ(s.inbound_qos2_count(), 1u);
  EXPECT_TRUE(s.begin_inbound_qos2(5).added);  // free again after release
}

TEST(Session, SubscriptionsAddReplaceLimitRemove) {
  session s("c1", {});
  stored_subscription sub;
  sub.options.max_qos = qos::at_least_once;
  EXPECT_EQ(s.add_subscription("a", sub, 2), session::add_result::added);
  EXPECT_EQ(s.add_subscription("b", sub, 2), session::add_result::added);
  EXPECT_EQ(s.add_subscription("c", sub, 2), session::add_result::limit_reached);
  sub.identifier = 9;
  EXPECT_EQ(s.add_subscription("a", sub, 2), session::add_result::replaced);
  EXPECT_EQ(s.subscriptions().at("a").identifier, std::optional<std::uint32_t>(9));
  EXPECT_EQ(s.add_subscription("c", sub), session::add_result::added);  // 0 = no limit
  EXPECT_TRUE(s.remove_subscription("b"));
  EXPECT_FALSE(s.remove_subscription("b"));
  EXPECT_EQ(s.subscription_count(), 2u);
  const auto taken = s.take_subscriptions();
  EXPECT_EQ(taken.size(), 2u);
  EXPECT_EQ(s.subscription_count(), 0u);
}

TEST(Session, ExpiresOnlyWhileOffline) {
  attached a;
  a.s.set_expiry_interval(10);
  EXPECT_EQ(a.s.expires_at(), std::nullopt);  // online
  a.s.detach(1, t0);
  EXPECT_EQ(a.s.expires_at(), std::optional<time_point>(t0 + std::chrono::seconds(10)));
  a.s.set_expiry_interval(0xFFFFFFFFu);  // never
  EXPECT_EQ(a.s.expires_at(), std::nullopt);
  auto out = std::make_shared<outbox>(v5, [] {}, 1 << 20);
  a.s.claim(2);
  a.s.set_expiry_interval(10);
  a.s.attach(2, out, {}, t0);
  EXPECT_EQ(a.s.expires_at(), std::nullopt);
}

TEST(Session, PendingWillIsTakenWhenDueOrForced) {
  session s("c1", {});
  EXPECT_FALSE(s.take_pending_will(t0, true));
  s.set_pending_will(msg("will", "x"), t0 + std::chrono::seconds(5));
  EXPECT_EQ(s.pending_will_due(), std::optional<time_point>(t0 + std::chrono::seconds(5)));
  EXPECT_FALSE(s.take_pending_will(t0 + std::chrono::seconds(4), false));
  auto will = s.take_pending_will(t0 + std::chrono::seconds(5), false);
  ASSERT_TRUE(will);
  EXPECT_EQ(will->payload, "x");
  EXPECT_FALSE(s.take_pending_will(t0 + std::chrono::seconds(5), true));  // gone
  s.set_pending_will(msg("will", "y"), t0 + std::chrono::seconds(5));
  EXPECT_TRUE(s.take_pending_will(t0, true));
  EXPECT_EQ(s.pending_will_due(), std::nullopt);
}

}  // namespace
}  // namespace ringmq::core

namespace ringmq::core {
namespace {

TEST(Session, NumberedInboundQos2IdsKeepTheirNumberUntilReleased) {
  session s("publisher", {});
  const auto first = s.begin_inbound_qos2(5, true);
  EXPECT_TRUE(first.added);
  EXPECT_EQ(first.number, 1u);
  const auto again = s.begin_inbound_qos2(5, true);
  EXPECT_FALSE(again.added) << "a retransmission";
  EXPECT_EQ(again.number, 1u) << "routed again under the number it had";
  EXPECT_EQ(s.inbound_number(5), 1u);
  EXPECT_EQ(s.begin_inbound_qos2(6, true).number, 2u);
  EXPECT_TRUE(s.release_inbound_qos2(5));
  EXPECT_EQ(s.inbound_number(5), 0u);
  EXPECT_EQ(s.begin_inbound_qos2(5, true).number, 3u) << "numbers never repeat";
  EXPECT_EQ(s.begin_inbound_qos2(7).number, 0u) << "not numbered unless asked";
}

TEST(Session, ANumberedMessageIsTakenOncePerPublisher) {
  attached a;
  const auto numbered = [](std::string publisher, std::uint64_t number, std::uint16_t id) {
    auto m = std::make_shared<message>();
    m->topic = "t";
    m->payload = publisher + "#" + std::to_string(number);
    m->qos = qos::exactly_once;
    m->publisher = std::move(publisher);
    m->publish_number = number;
    m->publish_packet_id = id;
    return message_ptr(m);
  };
  a.s.deliver(out_of(numbered("p1", 1, 10)), t0);
  a.s.deliver(out_of(numbered("p1", 1, 10)), t0);  // routed again after a failure
  a.s.deliver(out_of(numbered("p2", 1, 10)), t0);  // another publisher's first
  a.s.deliver(out_of(numbered("p1", 2, 11)), t0);
  std::vector<std::string> payloads;
  for (const auto& p : a.publishes()) payloads.push_back(p.payload);
  EXPECT_EQ(payloads, (std::vector<std::string>{"p1#1", "p2#1", "p1#2"}));
}

}  // namespace
}  // namespace ringmq::core
