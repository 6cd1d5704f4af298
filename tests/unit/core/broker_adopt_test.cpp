// A node that comes to serve a replicated session takes it as its log holds
// it (broker::adopt_session), and a node that stops serving one lets go of it
// (broker::let_go_session): the connection that held it is closed with
// Session taken over, and neither ends the session (no will, no erase).

#include "tests/unit/core/engine_harness.hpp"

namespace ringmq::core {
namespace {

using namespace harness;

recovered_session offline_session(const std::string& client, time_point now) {
  recovered_session r;
  r.client_id = client;
  r.expiry_interval = 600;
  r.disconnected_at_ms = unix_now_ms();
  stored_subscription sub;
  sub.options.max_qos = qos::at_least_once;
  r.subscriptions.emplace_back("b/#", sub);
  auto m = std::make_shared<message>();
  m->topic = "b/queued";
  m->payload = "kept by the replicas";
  m->qos = qos::at_least_once;
  m->received_at = now;
  r.queue.push_back({1, outgoing{m, qos::at_least_once, false, {}, {}}});
  return r;
}

TEST(BrokerAdopt, AnAdoptedSessionReplacesTheLocalOneAndClosesItsConnection) {
  bench b;
  auto& old = b.persistent("dev");
  old.subscribe("a/#", qos::at_least_once);
  b.broker().adopt_session(offline_session("dev", b.clock.now), b.clock.now);

  const auto got = old.received();
  ASSERT_FALSE(got.empty());
  const auto* d = std::get_if<codec::disconnect_packet>(&got.back());
  ASSERT_NE(d, nullptr) << "the connection that held the session is told";
  EXPECT_EQ(d->code, reason_code::session_taken_over);

  auto& pub = b.connected("pub");
  pub.publish("a/x", "to the replaced subscription", qos::at_least_once, 1);
  pub.publish("b/x", "to the adopted one", qos::at_least_once, 2);
  auto& back = b.add(v5);
  const auto ack = back.connect_persistent("dev", 600, false);
  EXPECT_TRUE(ack.session_present);
  EXPECT_EQ(payloads(back.publishes()),
            (std::vector<std::string>{"kept by the replicas", "to the adopted one"}));
}

TEST(BrokerAdopt, LettingGoClosesTheConnectionWithoutTheWillOrTheRoutes) {
  bench b;
  auto& watcher = b.connected("watcher");
  watcher.subscribe("#", qos::at_least_once);
  auto& dev = b.add(v5);
  auto c = dev.connect_packet("dev", false);
  c.props.session_expiry_interval = 600;
  c.will = make_will("wills/dev", "gone");
  ASSERT_EQ(dev.connect(std::move(c)).code, reason_code::success);
  dev.subscribe("c/#", qos::at_least_once);

  EXPECT_TRUE(b.broker().let_go_session("dev"));
  EXPECT_FALSE(b.broker().let_go_session("dev")) << "once";
  const auto got = dev.received();
  ASSERT_FALSE(got.empty());
  const auto* d = std::get_if<codec::disconnect_packet>(&got.back());
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->code, reason_code::session_taken_over);
  EXPECT_EQ(b.broker().sessions().find("dev"), nullptr);

  auto& pub = b.connected("pub");
  pub.publish("c/x", "nobody here serves dev", qos::at_least_once, 1);
  b.advance(std::chrono::seconds(5));
  b.sweep();
  EXPECT_EQ(payloads(watcher.publishes()), (std::vector<std::string>{"nobody here serves dev"}))
      << "no will: the session did not end, another node serves it";
}

// The log of a session whose connection was open on a node that died: the
// node that serves it now sends its will after the will delay, once.
recovered_session session_with_open_connection(const std::string& client, std::uint32_t delay) {
  recovered_session r;
  r.client_id = client;
  r.expiry_interval = 600;
  r.disconnected_at_ms = 0;  // connected when its node stopped
  auto will = std::make_shared<message>();
  will->topic = "wills/" + client;
  will->payload = "gone";
  will->qos = qos::at_least_once;
  r.will = will;
  r.will_armed_delay_s = delay;
  return r;
}

TEST(BrokerAdopt, TheWillOfAConnectionLostWithItsNodeIsSentAfterItsDelayOnce) {
  bench b;
  auto& watcher = b.connected("watcher");
  watcher.subscribe("wills/#", qos::at_least_once);
  b.broker().adopt_session(session_with_open_connection("dev", 5), b.clock.now);
  b.advance(std::chrono::seconds(4));
  b.sweep();
  EXPECT_TRUE(watcher.publishes().empty()) << "not before its delay";
  b.advance(std::chrono::seconds(1));
  b.sweep();
  b.advance(std::chrono::seconds(10));
  b.sweep();
  EXPECT_EQ(payloads(watcher.publishes()), (std::vector<std::string>{"gone"}));
}

TEST(BrokerAdopt, AClientBackBeforeTheDelayCancelsTheWillOfItsLostConnection) {
  bench b;
  auto& watcher = b.connected("watcher");
  watcher.subscribe("wills/#", qos::at_least_once);
  b.broker().adopt_session(session_with_open_connection("dev", 5), b.clock.now);
  b.advance(std::chrono::seconds(2));
  auto& back = b.add(v5);
  EXPECT_TRUE(back.connect_persistent("dev", 600, false).session_present);
  b.advance(std::chrono::seconds(10));
  b.sweep();
  EXPECT_TRUE(watcher.publishes().empty());
}

}  // namespace
}  // namespace ringmq::core
