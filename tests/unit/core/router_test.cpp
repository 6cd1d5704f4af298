// The router on its own: one copy per session with the highest QoS and every
// subscription identifier, No Local, shared groups, unsubscribing and
// redispatching a departed member's message.

#include <gtest/gtest.h>

#include "broker/core/router.hpp"
#include "tests/unit/core/engine_harness.hpp"

namespace ringmq::core {
namespace {

using namespace harness;

const time_point t0 = time_point{} + std::chrono::hours(1);

// A session attached to its own outbox, so deliveries can be read back.
struct target {
  explicit target(std::string id, std::uint64_t connection = 1)
      : s(std::make_shared<session>(std::move(id), session_limits{})),
        out(std::make_shared<outbox>(v5, [] {}, 1 << 20)) {
    s->claim(connection);
    s->attach(connection, out, {}, t0);
  }
  std::vector<codec::publish_packet> publishes() {
    std::vector<codec::publish_packet> got;
    for (auto& p : drain(*out, v5)) got.push_back(std::get<codec::publish_packet>(std::move(p)));
    return got;
  }
  std::shared_ptr<session> s;
  std::shared_ptr<outbox> out;
};

message_ptr msg(std::string topic, qos q = qos::exactly_once, std::string publisher = "pub",
                bool retain = false) {
  auto m = std::make_shared<message>();
  m->topic = std::move(topic);
  m->payload = "p";
  m->qos = q;
  m->publisher = std::move(publisher);
  m->retain = retain;
  return m;
}

stored_subscription sub(qos q, std::optional<std::uint32_t> id = std::nullopt,
                        bool no_local = false, bool retain_as_published = false) {
  stored_subscription s;
  s.options.max_qos = q;
  s.options.no_local = no_local;
  s.options.retain_as_published = retain_as_published;
  s.identifier = id;
  return s;
}

TEST(Router, DeliversToEveryMatchingSession) {
  router r(2);
  target a("a");
  target b("b");
  target c("c");
  r.subscribe(a.s, "x/+", sub(qos::at_most_once));
  r.subscribe(b.s, "x/#", sub(qos::at_most_once));
  r.subscribe(c.s, "y", sub(qos::at_most_once));
  EXPECT_EQ(r.publish(msg("x/1"), t0), 2u);
  EXPECT_EQ(a.publishes().size(), 1u);
  EXPECT_EQ(b.publishes().size(), 1u);
  EXPECT_TRUE(c.publishes().empty());
  EXPECT_EQ(r.publish(msg("z"), t0), 0u);
}

TEST(Router, OneCopyPerSessionWithTheHighestQosAndEveryIdentifier) {
  router r(2);
  target a("a");
  r.subscribe(a.s, "x/+", sub(qos::at_most_once, 1));
  r.subscribe(a.s, "x/#", sub(qos::at_least_once, 2));
  r.subscribe(a.s, "+/y", sub(qos::at_most_once));
  r.subscribe(a.s, "x/y", sub(qos::at_most_once, 3));
  EXPECT_EQ(r.publish(msg("x/y"), t0), 1u);
  const auto got = a.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, qos::at_least_once);
  auto ids = got[0].props.subscription_identifiers;
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::uint32_t>{1, 2, 3}));
}

TEST(Router, QosIsCappedByThePublishedQos) {
  router r(1);
  target a("a");
  r.subscribe(a.s, "t", sub(qos::exactly_once));
  r.publish(msg("t", qos::at_most_once), t0);
  const auto got = a.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, qos::at_most_once);
}

TEST(Router, RetainAsPublishedFromAnyOfTheOverlappingSubscriptions) {
  router r(1);
  target a("a");
  target b("b");
  r.subscribe(a.s, "t", sub(qos::at_most_once, std::nullopt, false, false));
  r.subscribe(a.s, "#", sub(qos::at_most_once, std::nullopt, false, true));
  r.subscribe(b.s, "t", sub(qos::at_most_once));
  r.publish(msg("t", qos::at_most_once, "pub", true), t0);
  EXPECT_TRUE(a.publishes().at(0).retain);
  EXPECT_FALSE(b.publishes().at(0).retain);
}

TEST(Router, NoLocalSkipsThePublisherOnly) {
  router r(1);
  target self("self");
  target other("other");
  r.subscribe(self.s, "t", sub(qos::at_most_once, std::nullopt, true));
  r.subscribe(other.s, "t", sub(qos::at_most_once, std::nullopt, true));
  EXPECT_EQ(r.publish(msg("t", qos::at_most_once, "self"), t0), 1u);
  EXPECT_TRUE(self.publishes().empty());
  EXPECT_EQ(other.publishes().size(), 1u);
  // A second, local-allowing subscription of the publisher still delivers.
  r.subscribe(self.s, "#", sub(qos::at_most_once));
  EXPECT_EQ(r.publish(msg("t", qos::at_most_once, "self"), t0), 2u);
  EXPECT_EQ(self.publishes().size(), 1u);
}

TEST(Router, SharedGroupTakesTurns) {
  router r(1);
  target a("a");
  target b("b");
  target c("c");
  for (auto* t : {&a, &b, &c}) r.subscribe(t->s, "$share/g/t", sub(qos::at_least_once));
  EXPECT_EQ(r.subscription_count(), 3u);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(r.publish(msg("t"), t0), 1u);
  EXPECT_EQ(a.publishes().size(), 3u);
  EXPECT_EQ(b.publishes().size(), 3u);
  EXPECT_EQ(c.publishes().size(), 3u);
}

TEST(Router, SharedGroupPrefersOnlineMembers) {
  router r(1);
  target a("a");
  target b("b");
  r.subscribe(a.s, "$share/g/t", sub(qos::at_least_once));
  r.subscribe(b.s, "$share/g/t", sub(qos::at_least_once));
  a.s->detach(1, t0);
  for (int i = 0; i < 4; ++i) r.publish(msg("t"), t0);
  EXPECT_EQ(b.publishes().size(), 4u);
  EXPECT_EQ(a.s->queued_count(), 0u);
  // With every member offline, one of them still gets (queues) each message.
  b.s->detach(1, t0);
  for (int i = 0; i < 4; ++i) r.publish(msg("t"), t0);
  EXPECT_EQ(a.s->queued_count() + b.s->queued_count(), 4u);
}

TEST(Router, SharedAndPlainSubscriptionsOfOneSessionAreSeparate) {
  router r(1);
  target a("a");
  r.subscribe(a.s, "$share/g/t", sub(qos::at_least_once, 1));
  r.subscribe(a.s, "t", sub(qos::at_least_once, 2));
  EXPECT_EQ(r.publish(msg("t"), t0), 2u);
  const auto got = a.publishes();
  ASSERT_EQ(got.size(), 2u);
}

TEST(Router, UnsubscribeAndUnsubscribeAll) {
  router r(2);
  target a("a");
  r.subscribe(a.s, "x", sub(qos::at_most_once));
  r.subscribe(a.s, "y/#", sub(qos::at_most_once));
  r.subscribe(a.s, "$share/g/z", sub(qos::at_most_once));
  EXPECT_EQ(r.subscription_count(), 3u);
  r.unsubscribe(*a.s, "x");
  EXPECT_EQ(r.publish(msg("x"), t0), 0u);
  EXPECT_EQ(r.subscription_count(), 2u);
  std::map<std::string, stored_subscription> all = {{"y/#", sub(qos::at_most_once)},
                                                    {"$share/g/z", sub(qos::at_most_once)}};
  r.unsubscribe_all(*a.s, all);
  EXPECT_EQ(r.subscription_count(), 0u);
  EXPECT_EQ(r.publish(msg("y/1"), t0), 0u);
  EXPECT_EQ(r.publish(msg("z"), t0), 0u);
  EXPECT_TRUE(a.publishes().empty());
}

TEST(Router, ResubscribingReplacesTheOptions) {
  router r(1);
  target a("a");
  r.subscribe(a.s, "t", sub(qos::at_most_once));
  r.subscribe(a.s, "t", sub(qos::exactly_once, 8));
  EXPECT_EQ(r.subscription_count(), 1u);
  r.publish(msg("t"), t0);
  const auto got = a.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, qos::exactly_once);
  EXPECT_EQ(got[0].props.subscription_identifiers, std::vector<std::uint32_t>{8});
}

TEST(Router, RedispatchGivesTheMessageToAnotherMember) {
  router r(1);
  target a("a");
  target b("b");
  r.subscribe(a.s, "$share/g/t", sub(qos::at_least_once));
  r.subscribe(b.s, "$share/g/t", sub(qos::at_least_once));
  a.s->detach(1, t0);
  outgoing o;
  o.msg = msg("t", qos::at_least_once);
  o.qos = qos::at_least_once;
  o.share = "$share/g/t";
  r.redispatch(std::move(o), t0);
  EXPECT_EQ(b.publishes().size(), 1u);
  // A group that is gone drops the message.
  outgoing lost;
  lost.msg = msg("t", qos::at_least_once);
  lost.qos = qos::at_least_once;
  lost.share = "$share/other/t";
  r.redispatch(std::move(lost), t0);
  EXPECT_TRUE(b.publishes().empty());
}

TEST(Router, DollarTopicsNeedAnExplicitFirstLevel) {
  router r(1);
  target a("a");
  r.subscribe(a.s, "#", sub(qos::at_most_once));
  r.subscribe(a.s, "+/info", sub(qos::at_most_once));
  r.subscribe(a.s, "$share/g/#", sub(qos::at_most_once));
  EXPECT_EQ(r.publish(msg("$SYS/info"), t0), 0u);
  r.subscribe(a.s, "$SYS/+", sub(qos::at_most_once));
  EXPECT_EQ(r.publish(msg("$SYS/info"), t0), 1u);
}

}  // namespace
}  // namespace ringmq::core
