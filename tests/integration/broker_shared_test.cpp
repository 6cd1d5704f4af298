// Shared subscriptions at the byte level: QoS 1 messages sent to a member of a
// $share group that leaves without acknowledging them go to another member,
// so the group as a whole loses nothing.

#include <gtest/gtest.h>

#include <set>

#include "tests/support/broker_process.hpp"

namespace ringmq::testing {
namespace {

using codec::protocol_version;

constexpr int message_count = 20;

std::unique_ptr<mqtt_socket> connect_v5(std::uint16_t port, const std::string& id) {
  auto s = std::make_unique<mqtt_socket>();
  EXPECT_TRUE(s->connect_tcp(port)) << s->error();
  codec::connect_packet c;
  c.version = protocol_version::v5;
  c.client_id = id;
  c.keep_alive = 60;
  c.props.receive_maximum = 100;  // room for every message without acknowledging
  const auto ack = s->handshake(c);
  EXPECT_TRUE(ack && ack->code == codec::reason_code::success) << id << ": " << s->error();
  return s;
}

void subscribe(mqtt_socket& s, const std::string& filter) {
  codec::subscribe_packet sub;
  sub.packet_id = 1;
  sub.subscriptions.push_back({filter, {codec::qos::at_least_once}});
  ASSERT_TRUE(s.send(codec::packet{sub}));
  codec::packet p;
  ASSERT_EQ(s.receive(p, milliseconds(5'000)), mqtt_socket::read_result::packet) << s.error();
  const auto* ack = std::get_if<codec::suback_packet>(&p);
  ASSERT_NE(ack, nullptr);
  ASSERT_EQ(ack->codes.size(), 1u);
  EXPECT_EQ(ack->codes[0], codec::reason_code::granted_qos_1);
}

// Reads what arrived on `s` for at most `wait`; records PUBLISH payloads and,
// when `acknowledge`, answers them with PUBACK.
void take_publishes(mqtt_socket& s, bool acknowledge, milliseconds wait,
                    std::vector<std::string>& payloads) {
  codec::packet p;
  while (s.receive(p, wait) == mqtt_socket::read_result::packet) {
    auto* pub = std::get_if<codec::publish_packet>(&p);
    if (!pub) continue;
    payloads.push_back(pub->payload);
    if (acknowledge) {
      codec::puback_packet ack;
      ack.packet_id = pub->packet_id;
      s.send(codec::packet{ack});
    }
    wait = milliseconds(0);  // take what is already buffered, then return
  }
}

TEST(BrokerShared, UnacknowledgedMessagesOfALeavingMemberGoToAnother) {
  broker_process broker({"mqtt.sys_interval_s=0"});
  ASSERT_TRUE(broker.ready()) << broker.describe();
  auto leaving = connect_v5(broker.port(), "share-leaving");
  auto staying = connect_v5(broker.port(), "share-staying");
  ASSERT_NO_FATAL_FAILURE(subscribe(*leaving, "$share/workers/jobs"));
  ASSERT_NO_FATAL_FAILURE(subscribe(*staying, "$share/workers/jobs"));

  auto publisher = connect_v5(broker.port(), "share-publisher");
  for (int i = 0; i < message_count; ++i) {
    codec::publish_packet pub;
    pub.topic = "jobs";
    pub.payload = "job " + std::to_string(i);
    pub.qos = codec::qos::at_least_once;
    pub.packet_id = static_cast<std::uint16_t>(i + 1);
    ASSERT_TRUE(publisher->send(codec::packet{pub}));
  }
  for (int i = 0; i < message_count; ++i) {
    codec::packet p;
    ASSERT_EQ(publisher->receive(p, milliseconds(5'000)), mqtt_socket::read_result::packet);
    ASSERT_TRUE(std::holds_alternative<codec::puback_packet>(p));
  }

  // Every message went to exactly one member; the leaving one acknowledges nothing.
  std::vector<std::string> at_leaving;
  std::vector<std::string> at_staying;
  const auto deadline = steady::now() + milliseconds(10'000);
  while (at_leaving.size() + at_staying.size() < message_count && steady::now() < deadline) {
    take_publishes(*leaving, false, milliseconds(20), at_leaving);
    take_publishes(*staying, true, milliseconds(20), at_staying);
  }
  ASSERT_EQ(at_leaving.size() + at_staying.size(), std::size_t{message_count});
  ASSERT_FALSE(at_leaving.empty()) << "every message went to one member";
  ASSERT_FALSE(at_staying.empty()) << "every message went to one member";

  // The leaving member drops its connection (clean start: its session ends).
  leaving->close();
  const auto before = at_staying.size();
  while (at_staying.size() < before + at_leaving.size() && steady::now() < deadline) {
    take_publishes(*staying, true, milliseconds(200), at_staying);
  }
  const std::set<std::string> all(at_staying.begin(), at_staying.end());
  EXPECT_EQ(all.size(), std::size_t{message_count}) << "messages lost with the leaving member";
  EXPECT_EQ(at_staying.size(), std::size_t{message_count}) << "messages duplicated";
}

}  // namespace
}  // namespace ringmq::testing
