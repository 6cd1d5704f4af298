// Overload protection for QoS 0 (core/overload.hpp): a copy dropped for a
// slow reader signals the thread handling the PUBLISH, so that its connection
// pauses reading; a reader that stopped altogether (congested for longer than
// overload_stuck_after) is dropped for without slowing anyone down.

#include <gtest/gtest.h>

#include "broker/core/outbox.hpp"
#include "broker/core/overload.hpp"
#include "broker/core/probe.hpp"
#include "broker/core/session.hpp"

namespace ringmq::core {
namespace {

using codec::protocol_version;
using codec::qos;

const time_point t0 = time_point{} + std::chrono::hours(1);
constexpr std::size_t soft_limit = 1024;

// A 5.0 session whose outbox takes `soft_limit` bytes before it is congested.
struct reader {
  reader() : s("slow", session_limits{}), out(std::make_shared<outbox>(protocol_version::v5, [] {}, soft_limit)) {
    s.claim(1);
    EXPECT_TRUE(s.attach(1, out, {}, t0));
    take_qos0_overload();  // nothing signalled before the test's own deliveries
  }
  void deliver(std::size_t payload_bytes, time_point now) {
    auto m = std::make_shared<message>();
    m->topic = "t";
    m->payload.assign(payload_bytes, 'x');
    m->qos = qos::at_most_once;
    outgoing o;
    o.qos = qos::at_most_once;
    o.msg = std::move(m);
    s.deliver(std::move(o), now);
  }
  // What the connection's writer does: everything pending goes to the socket.
  void written() {
    std::string bytes;
    out->take(bytes);
  }
  session s;
  std::shared_ptr<outbox> out;
};

std::uint64_t slow_consumer_drops() {
  return local_probe().messages_dropped[static_cast<std::size_t>(drop_reason::slow_consumer)].get();
}

TEST(Overload, OutboxIsCongestedBeyondItsLimitAndStuckWhenThatLasts) {
  outbox out(protocol_version::v5, [] {}, soft_limit);
  EXPECT_EQ(out.congested(t0), outbox::congestion::none);
  codec::publish_packet p;
  p.topic = "t";
  p.payload.assign(2 * soft_limit, 'x');
  ASSERT_TRUE(out.send(codec::packet{p}));
  EXPECT_EQ(out.congested(t0), outbox::congestion::slow);
  EXPECT_EQ(out.congested(t0 + overload_stuck_after), outbox::congestion::slow);
  EXPECT_EQ(out.congested(t0 + overload_stuck_after + std::chrono::milliseconds(1)),
            outbox::congestion::stuck);
  // Written: the congestion is over, and the next one is counted afresh.
  std::string bytes;
  out.take(bytes);
  EXPECT_EQ(out.congested(t0 + std::chrono::seconds(10)), outbox::congestion::none);
  ASSERT_TRUE(out.send(codec::packet{p}));
  EXPECT_EQ(out.congested(t0 + std::chrono::seconds(11)), outbox::congestion::slow);
}

TEST(Overload, ADeliveryThatFitsSignalsNothing) {
  reader r;
  r.deliver(100, t0);
  EXPECT_FALSE(take_qos0_overload());
}

TEST(Overload, ACopyDroppedForASlowReaderSignalsItsPublisher) {
  reader r;
  r.deliver(2 * soft_limit, t0);  // accepted: the outbox was empty
  EXPECT_FALSE(take_qos0_overload());
  const auto drops = slow_consumer_drops();
  r.deliver(100, t0);
  EXPECT_EQ(slow_consumer_drops(), drops + 1);
  EXPECT_TRUE(take_qos0_overload());
  EXPECT_FALSE(take_qos0_overload()) << "taking the signal clears it";
}

TEST(Overload, AReaderThatStoppedIsDroppedForWithoutSlowingItsPublishers) {
  reader r;
  r.deliver(2 * soft_limit, t0);
  r.deliver(100, t0);  // the congestion begins
  ASSERT_TRUE(take_qos0_overload());
  const auto drops = slow_consumer_drops();
  r.deliver(100, t0 + overload_stuck_after + std::chrono::seconds(1));
  EXPECT_EQ(slow_consumer_drops(), drops + 1);
  EXPECT_FALSE(take_qos0_overload());
}

TEST(Overload, AReaderThatCatchesUpIsDeliveredToAgain) {
  reader r;
  r.deliver(2 * soft_limit, t0);
  r.deliver(100, t0);
  ASSERT_TRUE(take_qos0_overload());
  r.written();
  const auto drops = slow_consumer_drops();
  r.deliver(100, t0 + std::chrono::seconds(5));
  EXPECT_EQ(slow_consumer_drops(), drops);
  EXPECT_FALSE(take_qos0_overload());
  EXPECT_GT(r.out->pending_bytes(), 0u);
}

}  // namespace
}  // namespace ringmq::core
