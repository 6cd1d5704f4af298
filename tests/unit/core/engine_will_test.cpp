// Wills: when they are published, when not, with what, and when a Will Delay
// Interval defers them. Statement numbers are MQTT 5.0's unless marked 3.1.1.

#include <gtest/gtest.h>

#include "tests/unit/core/engine_harness.hpp"

namespace ringmq::core {
namespace {

using namespace harness;

// A client that watches "will/#" and sees the RETAIN flag as published.
client& watcher(bench& b) {
  auto& w = b.connected("watcher");
  auto s = make_subscription("will/#", qos::exactly_once);
  s.options.retain_as_published = true;
  w.subscribe({s});
  return w;
}

// Connects `id` with a will on "will/<id>".
client& with_will(bench& b, const std::string& id, protocol_version v = v5,
                  std::optional<std::uint32_t> delay = std::nullopt, std::uint32_t expiry = 0,
                  bool retain = false, qos q = qos::at_least_once) {
  auto& c = b.add(v);
  // 3.x: a clean session; 5.0: the session lasts `expiry` seconds past the connection.
  auto p = c.connect_packet(id, v != v5);
  p.will = make_will("will/" + id, "gone", q, retain);
  p.will->props.will_delay_interval = delay;
  if (v == v5 && expiry) p.props.session_expiry_interval = expiry;
  EXPECT_EQ(c.connect(std::move(p)).code, reason_code::success);
  return c;
}

// --- when ----------------------------------------------------------------------------------------

TEST(EngineWill, PublishedWhenTheConnectionIsLostWithoutDisconnect) {
  // [MQTT-3.1.2-8]; 3.1.1 [MQTT-3.1.2-8].
  for (const auto v : {v3_1, v3_1_1, v5}) {
    SCOPED_TRACE(codec::to_string(v));
    bench b;
    auto& w = watcher(b);
    auto& c = with_will(b, "c1", v);
    w.expect_nothing();
    c.lose();
    const auto got = w.publishes();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].topic, "will/c1");
    EXPECT_EQ(got[0].payload, "gone");
    EXPECT_EQ(got[0].qos, qos::at_least_once);
    EXPECT_FALSE(got[0].retain);
  }
}

TEST(EngineWill, PublishedOnKeepAliveTimeout) {
  bench b;
  auto& w = watcher(b);
  auto& c = b.add(v5);
  auto p = c.connect_packet("c1");
  p.keep_alive = 1;
  p.will = make_will("will/c1", "gone");
  c.connect(std::move(p));
  b.advance(1'500ms);
  c.tick();
  EXPECT_EQ(c.expect<codec::disconnect_packet>().code, reason_code::keep_alive_timeout);
  c.lose();
  EXPECT_EQ(w.publishes().size(), 1u);
}

TEST(EngineWill, PublishedWhenTheServerClosesForAProtocolError) {
  for (const auto v : {v3_1_1, v5}) {
    bench b;
    auto& w = watcher(b);
    auto& c = with_will(b, "c1", v);
    c.send(c.connect_packet("c1"));  // a second CONNECT
    EXPECT_TRUE(c.closing());
    c.lose();
    EXPECT_EQ(w.publishes().size(), 1u);
  }
}

TEST(EngineWill, PublishedOnDisconnectWithWillMessage) {
  bench b;
  auto& w = watcher(b);
  auto& c = with_will(b, "c1");
  c.disconnect(reason_code::disconnect_with_will_message);
  EXPECT_TRUE(c.closing());
  c.expect_nothing();
  c.lose();
  EXPECT_EQ(w.publishes().size(), 1u);
}

TEST(EngineWill, PublishedOnDisconnectWithAnErrorCode) {
  // [MQTT-3.1.2-8]: only 0x00 deletes the will.
  for (const auto code : {reason_code::unspecified_error, reason_code::message_rate_too_high}) {
    bench b;
    auto& w = watcher(b);
    auto& c = with_will(b, "c1");
    c.disconnect(code);
    c.lose();
    EXPECT_EQ(w.publishes().size(), 1u);
  }
}

TEST(EngineWill, NotPublishedOnNormalDisconnect) {
  // [MQTT-3.14.4-3], [MQTT-3.1.2-10]; 3.1.1 [MQTT-3.14.4-3], [MQTT-3.1.2-10].
  for (const auto v : {v3_1, v3_1_1, v5}) {
    bench b;
    auto& w = watcher(b);
    auto& c = with_will(b, "c1", v);
    c.disconnect();
    c.lose();
    b.advance(1h);
    b.sweep();
    w.expect_nothing();
  }
}

TEST(EngineWill, NoWillNoMessage) {
  // 3.1.1 [MQTT-3.1.2-12].
  bench b;
  auto& w = watcher(b);
  auto& c = b.connected("c1");
  c.lose();
  w.expect_nothing();
}

TEST(EngineWill, PublishedOnce) {
  // [MQTT-3.1.2-10]: removed from the session once published.
  bench b;
  auto& w = watcher(b);
  auto& c = with_will(b, "c1", v5, std::nullopt, 3600);
  c.lose();
  c.lose();
  EXPECT_EQ(w.publishes().size(), 1u);
  b.advance(2h);
  b.sweep();
  w.expect_nothing();
}

// --- what ----------------------------------------------------------------------------------------

TEST(EngineWill, WillRetainStoresARetainedMessage) {
  // [MQTT-3.1.2-15]; 3.1.1 [MQTT-3.1.2-17].
  bench b;
  auto& w = watcher(b);
  auto& c = with_will(b, "c1", v3_1_1, std::nullopt, 0, true);
  c.lose();
  const auto got = w.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].retain);
  auto& late = b.connected("late");
  late.subscribe("will/c1");
  const auto kept = late.publishes();
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].payload, "gone");
  EXPECT_TRUE(kept[0].retain);
}

TEST(EngineWill, WillWithoutRetainIsNotStored) {
  // [MQTT-3.1.2-14]; 3.1.1 [MQTT-3.1.2-16].
  bench b;
  auto& c = with_will(b, "c1", v3_1_1);
  c.lose();
  EXPECT_EQ(b.broker().retained().size(), 0u);
}

TEST(EngineWill, WillQosIsUsed) {
  bench b;
  auto& w = watcher(b);
  auto& c = with_will(b, "c1", v5, std::nullopt, 0, false, qos::exactly_once);
  c.lose();
  const auto got = w.publishes();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, qos::exactly_once);
}

TEST(EngineWill, WillPropertiesAreForwardedButNotTheDelay) {
  bench b;
  auto& w = watcher(b);
  auto& c = b.add(v5);
  auto p = c.connect_packet("c1");
  p.will = make_will("will/c1", "{}", qos::at_least_once);
  p.will->props.payload_format_indicator = 1;
  p.will->props.content_type = "application/json";
  p.will->props.response_topic = "reply/c1";
  p.will->props.correlation_data = std::string("\x01\x02", 2);
  p.will->props.user_properties = {{"k", "v"}, {"k", "w"}};
  p.will->props.message_expiry_interval = 600;
  p.will->props.will_delay_interval = 0;
  c.connect(std::move(p));
  c.lose();
  const auto got = w.publishes();
  ASSERT_EQ(got.size(), 1u);
  const auto& props = got[0].props;
  EXPECT_EQ(props.payload_format_indicator, std::optional<std::uint8_t>(1));
  EXPECT_EQ(props.content_type, std::optional<std::string>("application/json"));
  EXPECT_EQ(props.response_topic, std::optional<std::string>("reply/c1"));
  EXPECT_EQ(props.correlation_data, std::optional<std::string>(std::string("\x01\x02", 2)));
  EXPECT_EQ(props.user_properties,
            (std::vector<codec::user_property>{{"k", "v"}, {"k", "w"}}));
  EXPECT_EQ(props.message_expiry_interval, std::optional<std::uint32_t>(600));
  EXPECT_FALSE(props.will_delay_interval);
}

// --- Will Delay Interval -------------------------------------------------------------------------

TEST(EngineWill, DelayedWillWaitsForItsDelay) {
  bench b;
  auto& w = watcher(b);
  auto& c = with_will(b, "c1", v5, 10, 3600);
  c.lose();
  w.expect_nothing();
  b.advance(9'999ms);
  b.sweep();
  w.expect_nothing();
  b.advance(1ms);
  b.sweep();
  EXPECT_EQ(w.publishes().size(), 1u);
  b.advance(10min);
  b.sweep();
  w.expect_nothing();
  EXPECT_TRUE(b.broker().sessions().find("c1"));  // the session outlives its will
}

TEST(EngineWill, DelayedWillCancelledWhenTheClientReturnsInTime) {
  // [MQTT-3.1.3-9].
  bench b;
  auto& w = watcher(b);
  auto& c = with_will(b, "c1", v5, 10, 3600);
  c.lose();
  b.advance(5s);
  auto& back = b.add(v5);
  EXPECT_TRUE(back.connect_persistent("c1", 3600).session_present);
  b.advance(1h);
  b.sweep();
  w.expect_nothing();
}

TEST(EngineWill, DelayedWillSentWhenTheReturningClientStartsClean) {
  // Clean Start ends the old session, and a session's end publishes its will (section 3.1.2.5).
  bench b;
  auto& w = watcher(b);
  auto& c = with_will(b, "c1", v5, 10, 3600);
  c.lose();
  b.advance(5s);
  auto& back = b.add(v5);
  EXPECT_FALSE(back.connect_persistent("c1", 3600, true).session_present);
  EXPECT_EQ(w.publishes().size(), 1u);
  b.advance(1h);
  b.sweep();
  w.expect_nothing();
}

TEST(EngineWill, WillSentWhenTheSessionEndsBeforeTheDelay) {
  // [MQTT-3.1.2-8]: after the delay or when the session ends, whichever comes first.
  bench b;
  auto& w = watcher(b);
  auto& c = with_will(b, "c1", v5, 60, 5);
  c.lose();
  b.advance(4'999ms);
  b.sweep();
  w.expect_nothing();
  b.advance(1ms);
  b.sweep();
  EXPECT_EQ(w.publishes().size(), 1u);
  EXPECT_FALSE(b.broker().sessions().find("c1"));
}

TEST(EngineWill, WillSentAtOnceWhenTheSessionEndsWithTheConnection) {
  bench b;
  auto& w = watcher(b);
  auto& c = with_will(b, "c1", v5, 60, 0);
  c.lose();
  EXPECT_EQ(w.publishes().size(), 1u);
}

TEST(EngineWill, DisconnectShorteningTheSessionBringsTheWillForward) {
  bench b;
  auto& w = watcher(b);
  auto& c = with_will(b, "c1", v5, 60, 3600);
  codec::properties props;
  props.session_expiry_interval = 0;
  c.disconnect(reason_code::disconnect_with_will_message, props);
  c.lose();
  EXPECT_EQ(w.publishes().size(), 1u);
}

// --- takeover (MQTT 5.0 section 3.1.4) -----------------------------------------------------------

TEST(EngineWill, TakeoverPublishesAWillWithoutDelay) {
  bench b;
  auto& w = watcher(b);
  auto& old = with_will(b, "c1", v5, std::nullopt, 3600);
  auto& fresh = b.add(v5);
  EXPECT_TRUE(fresh.connect_persistent("c1", 3600).session_present);
  EXPECT_EQ(old.expect<codec::disconnect_packet>().code, reason_code::session_taken_over);
  old.lose();
  EXPECT_EQ(w.publishes().size(), 1u);
}

TEST(EngineWill, TakeoverResumingTheSessionCancelsADelayedWill) {
  bench b;
  auto& w = watcher(b);
  auto& old = with_will(b, "c1", v5, 10, 3600);
  auto& fresh = b.add(v5);
  EXPECT_TRUE(fresh.connect_persistent("c1", 3600).session_present);
  old.lose();
  b.advance(1h);
  b.sweep();
  w.expect_nothing();
}

TEST(EngineWill, TakeoverWithCleanStartPublishesADelayedWill) {
  bench b;
  auto& w = watcher(b);
  auto& old = with_will(b, "c1", v5, 10, 3600);
  auto& fresh = b.add(v5);
  EXPECT_FALSE(fresh.connect_persistent("c1", 3600, true).session_present);
  old.lose();
  EXPECT_EQ(w.publishes().size(), 1u);
  b.advance(1h);
  b.sweep();
  w.expect_nothing();
}

TEST(EngineWill, NewConnectionsWillReplacesTheOldOne) {
  bench b;
  auto& w = watcher(b);
  auto& old = with_will(b, "c1", v5, 10, 3600);
  auto& fresh = b.add(v5);
  auto p = fresh.connect_packet("c1", false);
  p.props.session_expiry_interval = 3600;
  p.will = make_will("will/c1", "second");
  fresh.connect(std::move(p));
  old.lose();
  fresh.lose();
  EXPECT_EQ(payloads(w.publishes()), std::vector<std::string>{"second"});
}

TEST(EngineWill, V311TakeoverPublishesTheOldConnectionsWill) {
  bench b;
  auto& w = watcher(b);
  auto& old = with_will(b, "c1", v3_1_1);
  auto& fresh = b.add(v3_1_1);
  fresh.connect("c1", false);
  EXPECT_TRUE(old.closing());
  old.lose();
  EXPECT_EQ(w.publishes().size(), 1u);
}

}  // namespace
}  // namespace ringmq::core
