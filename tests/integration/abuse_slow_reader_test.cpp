// Clients that stop reading while they are sent much more than the broker may
// buffer for them: 100 MB of QoS 0 (beyond mqtt.max_outbound_bytes it is
// dropped and counted), then QoS 1 (bounded by mqtt.max_inflight plus
// mqtt.max_queued_messages, the rest dropped and counted). Throughout, a
// well-behaved client from another address keeps doing QoS 1 round trips
// within their deadline and the broker's memory stays far below what was sent.

#include <gtest/gtest.h>

#include <boost/json/src.hpp>
#include <memory>

#include "tests/integration/abuse_support.hpp"
#include "tests/integration/transport_support.hpp"

namespace ringmq::testing {
namespace {

constexpr milliseconds wait_limit{10'000};
constexpr milliseconds probe_deadline{1'000};
constexpr std::size_t payload_size = 10 * 1024;
const std::string dropped = "ringmq_messages_dropped_total";

std::string dropped_series(const std::string& reason) {
  return dropped + "{reason=\"" + reason + "\"}";
}

// An MQTT 5 client on a plain socket from `source`, CONNECTed; null if it could not.
std::unique_ptr<mqtt_socket> connect_v5(std::uint16_t port, const std::string& source,
                                        const std::string& id) {
  auto s = std::make_unique<mqtt_socket>();
  if (!s->connect_tcp(port, source)) return nullptr;
  codec::connect_packet c;
  c.version = codec::protocol_version::v5;
  c.client_id = id;
  c.keep_alive = 120;
  const auto ack = s->handshake(c);
  if (!ack || ack->code != codec::reason_code::success) return nullptr;
  return s;
}

bool subscribe(mqtt_socket& s, const std::string& filter, codec::qos q) {
  codec::subscribe_packet sub;
  sub.packet_id = 1;
  sub.subscriptions.push_back({filter, {q}});
  codec::packet p;
  return s.send(codec::packet{sub}) &&
         s.receive(p, wait_limit) == mqtt_socket::read_result::packet &&
         std::holds_alternative<codec::suback_packet>(p);
}

// Reads (and acknowledges) deliveries until a PINGRESP: everything the broker
// had for this client before the PINGREQ. The payloads, in order.
std::optional<std::vector<std::string>> drain(mqtt_socket& s) {
  if (!s.send(codec::packet{codec::pingreq_packet{}})) return std::nullopt;
  std::vector<std::string> got;
  for (;;) {
    codec::packet p;
    if (s.receive(p, wait_limit) != mqtt_socket::read_result::packet) return std::nullopt;
    if (std::holds_alternative<codec::pingresp_packet>(p)) return got;
    if (auto* m = std::get_if<codec::publish_packet>(&p)) {
      if (m->qos == codec::qos::at_least_once) {
        codec::puback_packet ack;
        ack.packet_id = m->packet_id;
        s.send(codec::packet{ack});
      }
      got.push_back(m->payload.substr(0, m->payload.find(' ')));
    }
  }
}

class AbuseSlowReader : public ::testing::Test {
 protected:
  void start(std::vector<std::string> more) {
    limit_asan_quarantine();
    more.insert(more.end(), {"http.bind=127.0.0.1:0", "mqtt.sys_interval_s=0"});
    broker_ = std::make_unique<broker_process>(more);
    ASSERT_TRUE(broker_->ready()) << broker_->describe();
    http_ = http_port_of(*broker_);
    probe_ = std::make_unique<steady_client>(broker_->port(), "probe", probe_deadline, "127.0.0.2");
    ASSERT_TRUE(probe_->wait_running()) << probe_->stop() << broker_->describe();
  }

  void TearDown() override {
    if (probe_) {
      EXPECT_TRUE(probe_->wait_more_round_trips(3, wait_limit));
      EXPECT_EQ(probe_->stop(), "");
      EXPECT_LT(probe_->slowest(), probe_deadline);
      std::cout << "probe: " << probe_->round_trips() << " round trips, slowest "
                << probe_->slowest().count() << " ms\n";
    }
    if (broker_ && broker_->ready()) {
      const auto status = broker_->stop();
      EXPECT_TRUE(status && status->clean()) << broker_->describe();
    }
  }

  double metric(const std::string& series) { return metric_value(http_, series).value_or(-1); }

  std::unique_ptr<broker_process> broker_;
  std::unique_ptr<steady_client> probe_;
  std::uint16_t http_ = 0;
};

TEST_F(AbuseSlowReader, QoS0BeyondTheOutboundLimitIsDroppedAndCounted) {
  constexpr std::size_t messages = 10'000;  // 100 MB
  constexpr std::size_t batch = 100;
  start({"mqtt.max_outbound_bytes=1048576"});
  auto stalled = connect_v5(broker_->port(), "127.0.0.3", "stalled");
  ASSERT_TRUE(stalled);
  ASSERT_TRUE(subscribe(*stalled, "bulk/#", codec::qos::at_most_once)) << stalled->error();
  auto publisher = connect_v5(broker_->port(), "127.0.0.4", "flood");
  ASSERT_TRUE(publisher);
  const auto drops_before = metric(dropped_series("slow_consumer"));
  ASSERT_EQ(drops_before, 0.0);
  const auto rss_before = broker_->resident_kib();
  rss_sampler rss(*broker_);

  // 100 packets of 10 KB per send; QoS 0 packets have no id, so one encoding does.
  std::string packets;
  for (std::size_t i = 0; i < batch; ++i) {
    codec::publish_packet p;
    p.topic = "bulk/data";
    p.payload = "m " + std::string(payload_size - 2, 'x');
    packets += codec::encode(codec::packet{p}, codec::protocol_version::v5);
  }
  for (std::size_t sent = 0; sent < messages; sent += batch) {
    ASSERT_TRUE(publisher->send_bytes(packets)) << publisher->error();
  }
  // Every one was routed (dropped or buffered) once a QoS 1 PUBLISH after them is acknowledged.
  ASSERT_TRUE(publisher->confirm_handled("flood/done", wait_limit)) << publisher->error();
  const auto rss_max = rss.stop();

  const auto drops = metric(dropped_series("slow_consumer")) - drops_before;
  std::cout << "RSS before " << rss_before << " KiB, largest " << rss_max << " KiB; dropped "
            << drops << " of " << messages << "\n";
  // 100 MB went through; the broker held at most a few MB of it at a time.
  EXPECT_LT(rss_max - rss_before, 32u * 1024)
      << "RSS grew from " << rss_before << " KiB to " << rss_max << " KiB";
  EXPECT_GT(drops, messages * 0.8);
  // Overload protection: while the reader was merely slow (its first seconds
  // of congestion), the publisher was read more slowly; then no longer.
  EXPECT_GT(metric("ringmq_publisher_pauses_total"), 0.0);
  EXPECT_TRUE(broker_->wait_for_log("messages dropped: slow_consumer=", wait_limit))
      << broker_->describe();

  // Once it reads, the stalled client gets what was buffered for it, and every
  // message is accounted for: delivered or dropped.
  const auto got = drain(*stalled);
  ASSERT_TRUE(got) << stalled->error();
  EXPECT_EQ(got->size() + drops, messages) << got->size() << " delivered, " << drops << " dropped";
  EXPECT_EQ(metric(dropped_series("slow_consumer")) - drops_before, drops);
}

TEST_F(AbuseSlowReader, QoS1ForAReaderThatStoppedIsBoundedByInflightAndQueue) {
  constexpr std::size_t messages = 2'000;  // 20 MB
  constexpr std::size_t inflight = 20;
  constexpr std::size_t queued = 100;
  start({"mqtt.max_inflight=" + std::to_string(inflight),
         "mqtt.max_queued_messages=" + std::to_string(queued),
         "mqtt.max_outbound_bytes=1048576"});
  auto stalled = connect_v5(broker_->port(), "127.0.0.3", "stalled");
  ASSERT_TRUE(stalled);
  ASSERT_TRUE(subscribe(*stalled, "bulk/#", codec::qos::at_least_once)) << stalled->error();
  auto publisher = connect_v5(broker_->port(), "127.0.0.4", "flood");
  ASSERT_TRUE(publisher);
  const auto drops_before = metric(dropped_series("queue_full"));
  ASSERT_EQ(drops_before, 0.0);
  const auto rss_before = broker_->resident_kib();
  rss_sampler rss(*broker_);

  // All sent at once, then the acknowledgements read: PUBACKs are small
  // enough for the socket buffers to hold them meanwhile.
  std::string packets;
  for (std::size_t i = 0; i < messages; ++i) {
    codec::publish_packet m;
    m.topic = "bulk/data";
    m.payload = std::to_string(i) + " " + std::string(payload_size, 'x');
    m.qos = codec::qos::at_least_once;
    m.packet_id = static_cast<std::uint16_t>(i + 1);
    codec::encode(codec::packet{m}, codec::protocol_version::v5, packets);
    if (packets.size() > 1024 * 1024 || i + 1 == messages) {
      ASSERT_TRUE(publisher->send_bytes(packets)) << publisher->error();
      packets.clear();
    }
  }
  for (std::size_t acked = 0; acked < messages; ++acked) {
    codec::packet p;
    ASSERT_EQ(publisher->receive(p, wait_limit), mqtt_socket::read_result::packet)
        << acked << " PUBACKs; " << publisher->error();
    auto* ack = std::get_if<codec::puback_packet>(&p);
    ASSERT_TRUE(ack && ack->packet_id == acked + 1) << acked;
    EXPECT_EQ(ack->code, codec::reason_code::success);
  }
  const auto rss_max = rss.stop();
  const auto drops = metric(dropped_series("queue_full")) - drops_before;
  std::cout << "RSS before " << rss_before << " KiB, largest " << rss_max << " KiB; dropped "
            << drops << " of " << messages << "\n";
  EXPECT_LT(rss_max - rss_before, 32u * 1024)
      << "RSS grew from " << rss_before << " KiB to " << rss_max << " KiB";
  EXPECT_EQ(drops, static_cast<double>(messages - inflight - queued));

  // The admin API shows the bound: a full window and a full queue.
  const auto reply = http_request(http_, "GET", "/api/v1/clients/stalled");
  ASSERT_EQ(reply.status, 200) << reply.describe();
  const auto json = reply.json();
  ASSERT_TRUE(json.is_object()) << reply.body;
  EXPECT_EQ(json.at("inflight_cnt").to_number<std::uint64_t>(), inflight) << reply.body;
  EXPECT_EQ(json.at("mqueue_len").to_number<std::uint64_t>(), queued) << reply.body;
  EXPECT_TRUE(broker_->wait_for_log("queue_full=", wait_limit)) << broker_->describe();

  // When it reads again it gets exactly the first inflight + queued messages, in order.
  const auto got = drain(*stalled);
  ASSERT_TRUE(got) << stalled->error();
  std::vector<std::string> first;
  for (std::size_t i = 0; i < inflight + queued; ++i) first.push_back(std::to_string(i));
  // Acknowledging the window lets the queue flow: read until it is empty.
  auto all = *got;
  while (all.size() < first.size()) {
    const auto more = drain(*stalled);
    ASSERT_TRUE(more && !more->empty()) << all.size() << " received; " << stalled->error();
    all.insert(all.end(), more->begin(), more->end());
  }
  EXPECT_EQ(all, first);
  const auto rest = drain(*stalled);
  ASSERT_TRUE(rest);
  EXPECT_TRUE(rest->empty()) << rest->size() << " more";
}

}  // namespace
}  // namespace ringmq::testing
