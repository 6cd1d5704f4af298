// Clients that misbehave at the byte level: garbage, a huge Remaining Length,
// silence, half a CONNECT, a keep alive that lapses. Each is closed within the
// configured limits, while a well-behaved client on the same broker keeps
// publishing and receiving QoS 1 messages without noticing anything.

#include <gtest/gtest.h>

#include "broker/codec/encoder.hpp"
#include "tests/support/broker_process.hpp"

namespace ringmq::testing {
namespace {

using codec::protocol_version;
using codec::reason_code;
using std::chrono::duration_cast;

constexpr milliseconds connect_timeout{500};
constexpr std::uint32_t max_packet_size = 1024 * 1024;

// Round trips the steady client completes before and after the misbehaviour.
constexpr std::size_t round_trips_around = 5;

class BrokerMisbehaving : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<broker_process>(std::vector<std::string>{
        "mqtt.connect_timeout_ms=" + std::to_string(connect_timeout.count()),
        "mqtt.max_packet_size=" + std::to_string(max_packet_size), "mqtt.sys_interval_s=0"});
    ASSERT_TRUE(broker_->ready()) << broker_->describe();
    steady_ = std::make_unique<steady_client>(broker_->port(), "steady");
    ASSERT_TRUE(steady_->wait_running()) << steady_->stop();
    ASSERT_TRUE(steady_->wait_round_trips(round_trips_around, milliseconds(5'000)))
        << steady_->stop();
  }

  // The steady client kept going through the misbehaviour: a few more round
  // trips, then every message of its whole run arrived in time.
  void TearDown() override {
    if (!steady_) return;
    const auto before = steady_->round_trips();
    EXPECT_TRUE(steady_->wait_round_trips(before + round_trips_around, milliseconds(5'000)));
    EXPECT_EQ(steady_->stop(), "");
    steady_.reset();
    // Stopping checks the clean exit.
    const auto status = broker_->stop();
    EXPECT_TRUE(status && status->clean()) << broker_->describe();
  }

  // Opens a raw TCP connection to the broker.
  std::unique_ptr<mqtt_socket> open() {
    auto s = std::make_unique<mqtt_socket>();
    EXPECT_TRUE(s->connect_tcp(broker_->port())) << s->error();
    return s;
  }

  // A raw connection that has sent an MQTT 5 CONNECT as `client_id` and got
  // its CONNACK (null, with the failure recorded, otherwise).
  std::unique_ptr<mqtt_socket> connected_v5(const std::string& client_id) {
    auto s = open();
    s->set_version(protocol_version::v5);
    codec::connect_packet c;
    c.version = protocol_version::v5;
    c.client_id = client_id;
    if (!s->handshake(c)) {
      ADD_FAILURE() << client_id << ": " << s->error();
      return nullptr;
    }
    return s;
  }

  std::unique_ptr<broker_process> broker_;
  std::unique_ptr<steady_client> steady_;
};

milliseconds since(steady::time_point t) { return duration_cast<milliseconds>(steady::now() - t); }

TEST_F(BrokerMisbehaving, GarbageBytesAreClosedAtOnce) {
  auto s = open();
  // Not MQTT: an HTTP request line (0x47 is no valid first byte of a packet).
  ASSERT_TRUE(s->send_bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto began = steady::now();
  EXPECT_TRUE(s->wait_closed(milliseconds(3'000))) << broker_->describe();
  // Far sooner than the connect timeout would have closed it.
  EXPECT_LT(since(began), connect_timeout) << broker_->describe();

  // Binary noise after a valid fixed header of a reserved packet type (0).
  auto t = open();
  ASSERT_TRUE(t->send_bytes(std::string("\x00\x04\xde\xad\xbe\xef", 6)));
  EXPECT_TRUE(t->wait_closed(milliseconds(3'000))) << broker_->describe();
}

TEST_F(BrokerMisbehaving, HugeRemainingLengthIsRefusedWithoutBufferingIt) {
  const auto rss_before = broker_->resident_kib();
  auto s = open();
  // CONNECT announcing the largest Remaining Length there is (256 MiB - 1),
  // with max_packet_size 1 MiB: the header alone is enough to refuse it.
  ASSERT_TRUE(s->send_bytes(std::string("\x10\xFF\xFF\xFF\x7F", 5)));
  // Body bytes follow; the broker may close before they are all sent.
  s->send_bytes(std::string(64 * 1024, 'x'));
  const auto began = steady::now();
  EXPECT_TRUE(s->wait_closed(milliseconds(3'000))) << broker_->describe();
  EXPECT_LT(since(began), connect_timeout) << broker_->describe();

  // The same after a successful CONNECT: 5.0 is told Packet too large first.
  auto v5 = open();
  codec::connect_packet c;
  c.version = protocol_version::v5;
  c.client_id = "huge-publisher";
  ASSERT_TRUE(v5->handshake(c)) << v5->error();
  ASSERT_TRUE(v5->send_bytes(std::string("\x30\xFF\xFF\xFF\x7F", 5)));
  EXPECT_TRUE(v5->wait_closed(milliseconds(3'000))) << broker_->describe();
  ASSERT_EQ(v5->last_packets().size(), 1u);
  const auto* d = std::get_if<codec::disconnect_packet>(&v5->last_packets()[0]);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->code, reason_code::packet_too_large);

  // The broker did not reserve the announced 256 MiB (nor the 64 KiB sent).
  const auto rss_after = broker_->resident_kib();
  if (rss_before > 0 && rss_after > 0) {
    EXPECT_LT(rss_after, rss_before + 32 * 1024)
        << "resident memory grew from " << rss_before << " KiB to " << rss_after << " KiB";
  }
}

// CVE-2023-28366 (a broker whose memory grew with QoS 2 messages that were
// never released): a client that sends QoS 2 PUBLISHes and never sends PUBREL
// holds at most mqtt.max_inflight of them (the Receive Maximum ringmq
// announces, 20 by default) and is closed at the next one (5.0: DISCONNECT
// 0x93 Receive Maximum exceeded); a retransmission of one it holds is the same
// message and does not count again.
TEST_F(BrokerMisbehaving, Qos2NeverReleasedIsBoundedByTheReceiveMaximum) {
  constexpr std::uint16_t receive_maximum = 20;
  for (const auto version : {protocol_version::v3_1_1, protocol_version::v5}) {
    SCOPED_TRACE(codec::to_string(version));
    auto s = open();
    s->set_version(version);
    codec::connect_packet c;
    c.version = version;
    c.client_id = "qos2-hoarder";
    ASSERT_TRUE(s->handshake(c)) << s->error();
    auto publish = [&](std::uint16_t id) {
      codec::publish_packet p;
      p.topic = "hoard/" + std::to_string(id);
      p.payload = "never released";
      p.qos = codec::qos::exactly_once;
      p.packet_id = id;
      return s->send(codec::packet{p});
    };
    auto pubrec_for = [&](std::uint16_t id) {
      codec::packet p;
      if (s->receive(p, milliseconds(3'000)) != mqtt_socket::read_result::packet) return false;
      const auto* rec = std::get_if<codec::pubrec_packet>(&p);
      return rec && rec->packet_id == id;
    };
    for (std::uint16_t id = 1; id <= receive_maximum; ++id) {
      ASSERT_TRUE(publish(id));
      ASSERT_TRUE(pubrec_for(id)) << "PUBLISH " << id << ": " << s->error();
    }
    for (int resend = 0; resend < 5; ++resend) {
      ASSERT_TRUE(publish(1));
      ASSERT_TRUE(pubrec_for(1)) << "retransmission " << resend << ": " << s->error();
    }
    ASSERT_TRUE(publish(receive_maximum + 1));
    EXPECT_TRUE(s->wait_closed(milliseconds(3'000))) << broker_->describe();
    if (version == protocol_version::v5) {
      ASSERT_FALSE(s->last_packets().empty());
      const auto* d = std::get_if<codec::disconnect_packet>(&s->last_packets().back());
      ASSERT_NE(d, nullptr);
      EXPECT_EQ(d->code, reason_code::receive_maximum_exceeded);
    }
  }
}

// A flood of retained messages and several "#" subscribers at once (the
// class of retained-message exhaustion reports against MQTT brokers): every
// subscriber gets every retained message, and the steady client is served
// throughout (its round trips are checked in TearDown).
TEST_F(BrokerMisbehaving, RetainedFloodWithHashSubscribersKeepsOthersServed) {
  constexpr int retained = 20'000;
  constexpr int subscribers = 5;
  constexpr int per_send = 1'000;
  auto pub = connected_v5("retainer");
  ASSERT_TRUE(pub);
  for (int first = 0; first < retained; first += per_send) {
    std::string bytes;
    for (int i = first; i < first + per_send; ++i) {
      codec::publish_packet p;
      p.topic = "flood/" + std::to_string(i);
      p.payload = "r" + std::to_string(i);
      p.retain = true;
      bytes += codec::encode(codec::packet{p}, protocol_version::v5);
    }
    ASSERT_TRUE(pub->send_bytes(bytes)) << pub->error();
  }
  // Every one is retained once a QoS 1 PUBLISH after them is acknowledged.
  ASSERT_TRUE(pub->confirm_handled("flood-done", milliseconds(10'000))) << pub->error();

  std::vector<std::unique_ptr<mqtt_socket>> subs;
  for (int n = 0; n < subscribers; ++n) {
    auto s = connected_v5("everything-" + std::to_string(n));
    ASSERT_TRUE(s);
    codec::subscribe_packet sub;
    sub.packet_id = 1;
    sub.subscriptions.push_back({"#", {codec::qos::at_most_once}});
    ASSERT_TRUE(s->send(codec::packet{sub}));
    subs.push_back(std::move(s));
  }
  for (int n = 0; n < subscribers; ++n) {
    int got = 0;
    while (got < retained) {
      codec::packet p;
      const auto r = subs[n]->receive(p, milliseconds(10'000));
      ASSERT_EQ(r, mqtt_socket::read_result::packet)
          << "subscriber " << n << " after " << got << " retained messages";
      const auto* m = std::get_if<codec::publish_packet>(&p);
      if (m && m->retain && m->topic.starts_with("flood/")) ++got;
    }
    EXPECT_EQ(got, retained);
  }
}

TEST_F(BrokerMisbehaving, SubscribeStormOfLongWildcardFiltersKeepsOthersServed) {
  // 2,000 SUBSCRIBEs at once, each a filter of 100 levels of wildcards: the
  // subscription tree grows by 200,000 nodes, and every PUBLISH is matched
  // against it. The storm is answered, a deep topic still finds exactly its
  // one filter, and the steady client's round trips stay on time (TearDown).
  constexpr int filters = 2'000;
  constexpr int wildcard_levels = 98;
  auto storm = connected_v5("subscribe-storm");
  ASSERT_TRUE(storm);
  std::string wildcards;
  for (int l = 0; l < wildcard_levels; ++l) wildcards += "/+";
  std::string bytes;
  for (int i = 0; i < filters; ++i) {
    codec::subscribe_packet sub;
    sub.packet_id = static_cast<std::uint16_t>(i + 1);
    sub.subscriptions.push_back({"storm/" + std::to_string(i) + wildcards + "/#", {codec::qos::at_most_once}});
    bytes += codec::encode(codec::packet{sub}, protocol_version::v5);
  }
  const auto sent = steady::now();
  ASSERT_TRUE(storm->send_bytes(bytes)) << storm->error();
  int subacks = 0;
  while (subacks < filters) {
    codec::packet p;
    ASSERT_EQ(storm->receive(p, milliseconds(20'000)), mqtt_socket::read_result::packet)
        << "after " << subacks << " SUBACKs";
    if (const auto* ack = std::get_if<codec::suback_packet>(&p)) {
      ASSERT_EQ(ack->codes.size(), 1U);
      EXPECT_EQ(ack->codes[0], reason_code::success);
      ++subacks;
    }
  }
  RecordProperty("storm_ms", static_cast<int>(since(sent).count()));

  std::string deep = "storm/1234";
  for (int l = 0; l < wildcard_levels; ++l) deep += "/x";
  deep += "/end";
  codec::publish_packet pub;
  pub.topic = deep;
  pub.payload = "deep";
  ASSERT_TRUE(storm->send(codec::packet{pub}));
  // A QoS 1 marker after it: its PUBACK leaves after every copy of the deep
  // message was queued to this connection.
  codec::publish_packet marker;
  marker.topic = "storm-done";
  marker.qos = codec::qos::at_least_once;
  marker.packet_id = 1;
  ASSERT_TRUE(storm->send(codec::packet{marker}));
  int matched = 0;
  for (bool acked = false; !acked;) {
    codec::packet p;
    ASSERT_EQ(storm->receive(p, milliseconds(10'000)), mqtt_socket::read_result::packet)
        << storm->error();
    if (const auto* m = std::get_if<codec::publish_packet>(&p); m && m->payload == "deep") ++matched;
    acked = std::holds_alternative<codec::puback_packet>(p);
  }
  EXPECT_EQ(matched, 1) << "the deep topic matches one filter of the storm";
}

TEST_F(BrokerMisbehaving, AClientIdWithANewlineCannotForgeALogLine) {
  // Found by the wire fuzzer: a client id is logged, and MQTT lets it hold
  // control characters. Written raw, a newline in it started a line of the
  // client's choosing.
  auto s = open();
  codec::connect_packet c;
  c.client_id = "evil\n2026-01-01T00:00:00.000Z info  n1 ringmq started: forged=yes";
  const auto ack = s->handshake(c);
  ASSERT_TRUE(ack) << s->error();
  ASSERT_TRUE(broker_->wait_for_log("client connected: client_id=evil\\x0A2026-01-01T00:00:00.000Z"))
      << broker_->log();
  EXPECT_EQ(broker_->log().find("\n2026-01-01T00:00:00.000Z"), std::string::npos)
      << "the client id split the log line";
}

TEST_F(BrokerMisbehaving, SilentConnectionIsClosedAfterTheConnectTimeout) {
  auto s = open();
  const auto began = steady::now();
  EXPECT_TRUE(s->wait_closed(milliseconds(5'000))) << broker_->describe();
  const auto took = since(began);
  EXPECT_GE(took, connect_timeout - milliseconds(50));
  EXPECT_LT(took, connect_timeout + milliseconds(1'500));
  // Not a client yet: nothing is sent to it, the socket is just closed.
  EXPECT_TRUE(s->last_packets().empty());
}

TEST_F(BrokerMisbehaving, HalfAConnectThenSilenceIsClosedAfterTheConnectTimeout) {
  codec::connect_packet c;
  c.version = protocol_version::v3_1_1;
  c.client_id = "half-a-connect";
  c.keep_alive = 60;
  const auto bytes = codec::encode(codec::packet{c}, c.version);
  ASSERT_GT(bytes.size(), 10u);
  auto s = open();
  const auto began = steady::now();
  ASSERT_TRUE(s->send_bytes(std::string_view(bytes).substr(0, bytes.size() / 2)));
  EXPECT_TRUE(s->wait_closed(milliseconds(5'000))) << broker_->describe();
  const auto took = since(began);
  EXPECT_GE(took, connect_timeout - milliseconds(50));
  EXPECT_LT(took, connect_timeout + milliseconds(1'500));
  EXPECT_TRUE(s->last_packets().empty());
}

TEST_F(BrokerMisbehaving, LapsedKeepAliveIsClosedAfterOneAndAHalfTimesIt) {
  auto v311 = open();
  auto v5 = open();
  codec::connect_packet c;
  c.keep_alive = 1;
  c.version = protocol_version::v3_1_1;
  c.client_id = "stalled-311";
  ASSERT_TRUE(v311->handshake(c)) << v311->error();
  const auto began_311 = steady::now();
  c.version = protocol_version::v5;
  c.client_id = "stalled-5";
  ASSERT_TRUE(v5->handshake(c)) << v5->error();
  const auto began_5 = steady::now();

  EXPECT_TRUE(v311->wait_closed(milliseconds(5'000))) << broker_->describe();
  const auto took_311 = since(began_311);
  EXPECT_TRUE(v5->wait_closed(milliseconds(5'000))) << broker_->describe();
  const auto took_5 = since(began_5);
  for (const auto took : {took_311, took_5}) {
    EXPECT_GE(took, milliseconds(1'400));
    EXPECT_LT(took, milliseconds(3'000));
  }
  // 5.0 hears why: Keep Alive timeout.
  ASSERT_EQ(v5->last_packets().size(), 1u);
  const auto* d = std::get_if<codec::disconnect_packet>(&v5->last_packets()[0]);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->code, reason_code::keep_alive_timeout);
}

TEST_F(BrokerMisbehaving, KeepAliveIsKeptByPingsFromAnOtherwiseIdleClient) {
  // The other side of the rule: a client that pings in time stays connected
  // past 1.5 x its keep alive.
  auto s = open();
  codec::connect_packet c;
  c.keep_alive = 1;
  c.client_id = "pinger";
  ASSERT_TRUE(s->handshake(c)) << s->error();
  const auto until = steady::now() + milliseconds(2'000);
  while (steady::now() < until) {
    ASSERT_TRUE(s->send(codec::packet{codec::pingreq_packet{}}));
    codec::packet p;
    ASSERT_EQ(s->receive(p, milliseconds(2'000)), mqtt_socket::read_result::packet) << s->error();
    ASSERT_TRUE(std::holds_alternative<codec::pingresp_packet>(p));
    // The next PINGREQ is due half a keep alive later; a closed socket ends the wait early.
    EXPECT_EQ(s->receive(p, milliseconds(500)), mqtt_socket::read_result::timeout);
  }
  EXPECT_FALSE(s->closed());
}

}  // namespace
}  // namespace ringmq::testing
