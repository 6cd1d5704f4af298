// A message between nodes: what travels (topic, payload, QoS, properties,
// publisher, the expiry left, a numbered QoS 2 message's number and packet
// id) comes back as it went.

#include "cluster/wire.hpp"

#include <gtest/gtest.h>

#include "ringmq/cluster/v1/cluster.pb.h"

namespace ringmq::cluster {
namespace {

TEST(Wire, AMessageComesBackAsItWent) {
  const auto now = core::clock::now();
  core::message m;
  m.topic = "plant/7/alarm";
  m.payload = std::string("on\0off", 6);
  m.qos = codec::qos::exactly_once;
  m.retain = true;
  m.props.content_type = "text/plain";
  m.props.user_properties.push_back({"site", "plant-7"});
  m.publisher = "sensor-1";
  m.publish_number = 41;
  m.publish_packet_id = 7;
  m.expires_at = now + std::chrono::seconds(30);
  v1::ClusterMessage wire;
  to_wire(m, now, wire);
  const auto back = from_wire(wire, now);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->topic, m.topic);
  EXPECT_EQ(back->payload, m.payload);
  EXPECT_EQ(back->qos, m.qos);
  EXPECT_TRUE(back->retain);
  EXPECT_EQ(back->props.content_type, m.props.content_type);
  EXPECT_EQ(back->props.user_properties, m.props.user_properties);
  EXPECT_EQ(back->publisher, "sensor-1");
  EXPECT_EQ(back->publish_number, 41u) << "so that sessions on that node know a resend";
  EXPECT_EQ(back->publish_packet_id, 7);
  ASSERT_TRUE(back->expires_at.has_value());
  EXPECT_EQ(back->remaining_expiry(now), 30u);

  m.publish_number = 0;
  m.publish_packet_id = 0;
  v1::ClusterMessage plain;
  to_wire(m, now, plain);
  EXPECT_EQ(plain.publish_number(), 0u);
  EXPECT_EQ(from_wire(plain, now)->publish_number, 0u);
}

TEST(Wire, AnExpiryBeyondWhatMqttCanSayIsCutToTheLargestItCan) {
  // A peer's frame with an expiry near 2^64 ms overflowed the clock's
  // nanoseconds (undefined behaviour; found by the gRPC fuzzer).
  const auto now = core::clock::now();
  v1::ClusterMessage wire;
  wire.set_topic("t");
  wire.set_expires_in_ms(~std::uint64_t{0});
  const auto back = from_wire(wire, now);
  ASSERT_NE(back, nullptr);
  ASSERT_TRUE(back->expires_at.has_value());
  EXPECT_EQ(*back->expires_at - now, std::chrono::seconds(4'294'967'295));
}

}  // namespace
}  // namespace ringmq::cluster
