// The stub broker itself, driven packet by packet: the bench tests trust it to
// route correctly and to misbehave exactly once, exactly as told.

#include "tests/bench/stub_broker.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "broker/codec/decoder.hpp"
#include "broker/codec/encoder.hpp"

namespace ringmq::testing {
namespace {

using namespace ringmq::codec;
using namespace std::chrono_literals;

// A blocking MQTT 3.1.1 client whose every wait is bounded.
class test_client {
 public:
  explicit test_client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    connected_ = fd_ >= 0 &&
                 ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    // Small packets back to back: without this, Nagle holds each for the peer's delayed ACK.
    const int one = 1;
    if (connected_) ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    decoder_.set_version(protocol_version::v3_1_1);
  }
  ~test_client() {
    if (fd_ >= 0) ::close(fd_);
  }
  test_client(const test_client&) = delete;
  test_client& operator=(const test_client&) = delete;

  bool connected() const noexcept { return connected_; }

  void send(const packet& p) {
    const auto bytes = encode(p, protocol_version::v3_1_1);
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }

  // The next packet; nullopt when none comes within `timeout` or the stream ends.
  std::optional<packet> receive(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto next = decoder_.next();
      if (!next) return std::nullopt;
      if (*next) return std::move(**next);
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return std::nullopt;
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      auto buffer = decoder_.prepare(4096);
      const auto n = ::recv(fd_, buffer.data(), buffer.size(), 0);
      if (n <= 0) return std::nullopt;
      decoder_.commit(static_cast<std::size_t>(n));
    }
  }

  template <class Packet>
  std::optional<Packet> expect(std::chrono::milliseconds timeout = 5s) {
    auto p = receive(timeout);
    if (!p) {
      ADD_FAILURE() << "no packet within " << timeout.count() << " ms";
      return std::nullopt;
    }
    if (!std::holds_alternative<Packet>(*p)) {
      ADD_FAILURE() << "expected " << to_string(type_of(packet{Packet{}})) << ", got "
                    << to_string(type_of(*p));
      return std::nullopt;
    }
    return std::get<Packet>(std::move(*p));
  }

  void mqtt_connect(const std::string& id) {
    connect_packet c;
    c.client_id = id;
    send(c);
    auto ack = expect<connack_packet>();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->code, reason_code::success);
  }

  void subscribe(const std::string& filter, codec::qos q) {
    subscribe_packet s{.packet_id = 1};
    s.subscriptions.push_back({filter, {q}});
    send(s);
    auto ack = expect<suback_packet>();
    ASSERT_TRUE(ack);
    ASSERT_EQ(ack->codes.size(), 1u);
    EXPECT_EQ(static_cast<int>(ack->codes[0]), static_cast<int>(q));
  }

  // A PINGREQ round trip: everything sent before it has been handled by then.
  void sync() {
    send(pingreq_packet{});
    EXPECT_TRUE(expect<pingresp_packet>());
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  stream_decoder decoder_;
};

publish_packet make_publish(std::string topic, std::string payload, codec::qos q,
                            std::uint16_t id = 0) {
  publish_packet p;
  p.topic = std::move(topic);
  p.payload = std::move(payload);
  p.qos = q;
  p.packet_id = id;
  return p;
}

// Publishes at QoS 1 and waits for the PUBACK.
void publish_acked(test_client& c, const std::string& topic, const std::string& payload,
                   std::uint16_t id) {
  c.send(make_publish(topic, payload, qos::at_least_once, id));
  auto ack = c.expect<puback_packet>();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->packet_id, id);
}

// Receives a QoS 1 PUBLISH and acknowledges it.
std::optional<publish_packet> receive_qos1(test_client& c) {
  auto p = c.expect<publish_packet>();
  if (!p) return std::nullopt;
  EXPECT_EQ(p->qos, qos::at_least_once);
  EXPECT_NE(p->packet_id, 0);
  c.send(puback_packet{.packet_id = p->packet_id});
  return p;
}

// Receives `count` QoS 2 PUBLISHes and completes their flows (PUBREC, PUBREL,
// PUBCOMP). The stub may send every PUBLISH before the first PUBREL, so the
// packets are taken in whatever order they come.
std::vector<publish_packet> receive_qos2(test_client& c, std::size_t count) {
  std::vector<publish_packet> received;
  std::size_t released = 0;
  while (received.size() < count || released < received.size()) {
    auto p = c.receive();
    if (!p) {
      ADD_FAILURE() << "QoS 2 flows stalled after " << received.size() << " PUBLISH and "
                    << released << " PUBREL";
      break;
    }
    if (auto* pub = std::get_if<publish_packet>(&*p)) {
      EXPECT_EQ(pub->qos, qos::exactly_once);
      EXPECT_NE(pub->packet_id, 0);
      c.send(pubrec_packet{.packet_id = pub->packet_id});
      received.push_back(std::move(*pub));
    } else if (auto* rel = std::get_if<pubrel_packet>(&*p)) {
      const bool known = std::any_of(received.begin(), received.end(), [&](const auto& r) {
        return r.packet_id == rel->packet_id;
      });
      EXPECT_TRUE(known) << "PUBREL for packet id " << rel->packet_id;
      c.send(pubcomp_packet{.packet_id = rel->packet_id});
      ++released;
    } else {
      ADD_FAILURE() << "unexpected " << to_string(type_of(*p));
      break;
    }
  }
  EXPECT_EQ(received.size(), count);
  return received;
}

#define EXPECT_NO_STUB_ERRORS(stub) \
  EXPECT_EQ((stub).protocol_errors(), 0u) << (stub).first_protocol_error()

TEST(StubBroker, ConnectsSubscribesAndAnswersPings) {
  stub_broker stub;
  test_client c(stub.port());
  ASSERT_TRUE(c.connected());
  c.mqtt_connect("c");
  c.subscribe("a/+", qos::at_least_once);
  c.subscribe("x/y", qos::exactly_once);
  c.sync();
  c.send(disconnect_packet{});
  EXPECT_FALSE(c.receive(2s)) << "the stub should close the connection after DISCONNECT";
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(StubBroker, RoutesExactTopicsAndOneWildcardLevel) {
  stub_broker stub;
  test_client sub(stub.port());
  test_client pub(stub.port());
  sub.mqtt_connect("sub");
  pub.mqtt_connect("pub");
  sub.subscribe("t/+", qos::at_least_once);
  sub.subscribe("exact/topic", qos::at_least_once);

  publish_acked(pub, "t/1/deeper", "not routed: two levels", 1);
  publish_acked(pub, "u/1", "not routed: other prefix", 2);
  publish_acked(pub, "exact/topic/x", "not routed: longer than the filter", 3);
  publish_acked(pub, "t/1", "one", 4);
  publish_acked(pub, "exact/topic", "two", 5);

  auto first = receive_qos1(sub);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->topic, "t/1");
  EXPECT_EQ(first->payload, "one");
  auto second = receive_qos1(sub);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->topic, "exact/topic");
  EXPECT_EQ(second->payload, "two");
  EXPECT_NE(first->packet_id, second->packet_id);
  sub.sync();
  EXPECT_EQ(stub.routed(), 2u);
  EXPECT_EQ(stub.forwarded(), 2u);
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(StubBroker, DeliversAtTheLowerOfTheTwoQos) {
  stub_broker stub;
  test_client sub(stub.port());
  test_client pub(stub.port());
  sub.mqtt_connect("sub");
  pub.mqtt_connect("pub");
  sub.subscribe("zero", qos::at_most_once);
  sub.subscribe("two", qos::exactly_once);

  publish_acked(pub, "zero", "a", 1);
  auto a = sub.expect<publish_packet>();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->qos, qos::at_most_once);

  publish_acked(pub, "two", "b", 2);
  auto b = receive_qos1(sub);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->payload, "b");
  sub.sync();
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(StubBroker, CompletesQos2OnBothSidesAndRoutesARetransmissionOnce) {
  stub_broker stub;
  test_client sub(stub.port());
  test_client pub(stub.port());
  sub.mqtt_connect("sub");
  pub.mqtt_connect("pub");
  sub.subscribe("q2", qos::exactly_once);

  pub.send(make_publish("q2", "once", qos::exactly_once, 7));
  auto rec = pub.expect<pubrec_packet>();
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->packet_id, 7);
  auto again = make_publish("q2", "once", qos::exactly_once, 7);
  again.dup = true;
  pub.send(again);
  ASSERT_TRUE(pub.expect<pubrec_packet>());
  pub.send(pubrel_packet{.packet_id = 7});
  auto comp = pub.expect<pubcomp_packet>();
  ASSERT_TRUE(comp);
  EXPECT_EQ(comp->packet_id, 7);

  // After the flow the packet id is free again: the same id is a new message.
  pub.send(make_publish("q2", "next", qos::exactly_once, 7));
  ASSERT_TRUE(pub.expect<pubrec_packet>());
  pub.send(pubrel_packet{.packet_id = 7});
  ASSERT_TRUE(pub.expect<pubcomp_packet>());

  const auto got = receive_qos2(sub, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload, "once");
  EXPECT_EQ(got[1].payload, "next");
  sub.sync();
  EXPECT_EQ(stub.routed(), 2u);
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(StubBroker, DropOneAcknowledgesButNeverForwardsTheNthMessage) {
  stub_broker stub({.fault = stub_fault::drop_one, .fault_at = 2});
  test_client sub(stub.port());
  test_client pub(stub.port());
  sub.mqtt_connect("sub");
  pub.mqtt_connect("pub");
  sub.subscribe("d", qos::at_least_once);

  publish_acked(pub, "elsewhere", "not routed, not counted", 1);
  EXPECT_FALSE(stub.fault_applied());
  for (std::uint16_t i = 1; i <= 3; ++i) publish_acked(pub, "d", "m" + std::to_string(i), i);

  auto first = receive_qos1(sub);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->payload, "m1");
  auto second = receive_qos1(sub);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->payload, "m3");
  sub.sync();
  EXPECT_TRUE(stub.fault_applied());
  EXPECT_EQ(stub.routed(), 3u);
  EXPECT_EQ(stub.forwarded(), 2u);
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(StubBroker, DuplicateOneForwardsTheNthMessageTwiceUnderTwoPacketIds) {
  stub_broker stub({.fault = stub_fault::duplicate_one, .fault_at = 1});
  test_client sub(stub.port());
  test_client pub(stub.port());
  sub.mqtt_connect("sub");
  pub.mqtt_connect("pub");
  sub.subscribe("dup", qos::exactly_once);

  for (std::uint16_t i = 1; i <= 2; ++i) {
    pub.send(make_publish("dup", "m" + std::to_string(i), qos::exactly_once, i));
    ASSERT_TRUE(pub.expect<pubrec_packet>());
    pub.send(pubrel_packet{.packet_id = i});
    ASSERT_TRUE(pub.expect<pubcomp_packet>());
  }

  const auto got = receive_qos2(sub, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].payload, "m1");
  EXPECT_EQ(got[1].payload, "m1");
  EXPECT_FALSE(got[1].dup) << "a second message, not a retransmission";
  EXPECT_NE(got[0].packet_id, got[1].packet_id);
  EXPECT_EQ(got[2].payload, "m2");
  sub.sync();
  EXPECT_TRUE(stub.fault_applied());
  EXPECT_EQ(stub.routed(), 2u);
  EXPECT_EQ(stub.forwarded(), 3u);
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(StubBroker, ReportsAcknowledgementsOfUnknownPacketIds) {
  stub_broker stub;
  test_client c(stub.port());
  c.mqtt_connect("c");
  c.send(puback_packet{.packet_id = 99});
  EXPECT_FALSE(c.receive(2s)) << "the stub should close the connection";
  EXPECT_EQ(stub.protocol_errors(), 1u);
  EXPECT_NE(stub.first_protocol_error().find("99"), std::string::npos)
      << stub.first_protocol_error();
}

TEST(StubBroker, ReportsPacketsBeforeConnect) {
  stub_broker stub;
  test_client c(stub.port());
  c.send(pingreq_packet{});
  EXPECT_FALSE(c.receive(2s));
  EXPECT_EQ(stub.protocol_errors(), 1u);
}

}  // namespace
}  // namespace ringmq::testing
