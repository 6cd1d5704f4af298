// /readyz as Kubernetes uses it: 503 until the store is recovered and the
// listeners accept, 200 while serving, 503 again as soon as a shutdown starts
// (while connections drain), so no new client is sent to a node that is leaving.

#include <gtest/gtest.h>

#include <csignal>

#include "tests/integration/observability_http.hpp"
#include "tests/support/broker_process.hpp"

namespace ringmq::testing {
namespace {

constexpr milliseconds wait_limit{10'000};

codec::connect_packet connect_packet(std::string id) {
  codec::connect_packet c;
  c.version = codec::protocol_version::v5;
  c.client_id = std::move(id);
  c.keep_alive = 0;
  return c;
}

// A node that is ready serves MQTT: whenever /readyz said 200, a client connects.
TEST(ObservabilityReadyz, ReadyOnlyOnceTheListenersAccept) {
  const auto mqtt_port = free_tcp_port();
  const auto http_port = free_tcp_port();
  ASSERT_NE(mqtt_port, 0);
  ASSERT_NE(http_port, 0);
  background_process node({ringmq_binary(), "--set",
                           "listeners[0].bind=127.0.0.1:" + std::to_string(mqtt_port), "--set",
                           "http.bind=127.0.0.1:" + std::to_string(http_port), "--set",
                           "node.data_dir=" + std::string(::testing::TempDir()) + "readyz-" +
                               std::to_string(::getpid()),
                           "--set", "mqtt.sys_interval_s=0"});
  ASSERT_TRUE(node.started()) << node.start_error();
  // Poll from the very start: refusals and 503s are fine, a 200 must mean "serving".
  const auto deadline = std::chrono::steady_clock::now() + wait_limit;
  bool ready = false;
  while (!ready && std::chrono::steady_clock::now() < deadline) {
    const auto r = http_request(http_port, "GET", "/readyz", {}, {}, milliseconds(1'000));
    if (r.status == 200) {
      ready = true;
    } else if (r.status != 0) {
      EXPECT_EQ(r.status, 503) << r.describe();
    }
  }
  ASSERT_TRUE(ready) << node.describe();
  mqtt_socket client;
  ASSERT_TRUE(client.connect_tcp(mqtt_port)) << client.error();
  client.set_version(codec::protocol_version::v5);
  auto ack = client.handshake(connect_packet("readyz-probe"));
  ASSERT_TRUE(ack) << client.error();
  EXPECT_EQ(ack->code, codec::reason_code::success);
  client.close();
  ASSERT_TRUE(node.signal(SIGTERM));
  const auto status = node.wait_exit(wait_limit);
  ASSERT_TRUE(status && status->clean()) << node.describe();
}

// During the drain after SIGTERM the node is alive (/livez 200) but not ready.
TEST(ObservabilityReadyz, NotReadyWhileShuttingDown) {
  broker_process broker({"http.bind=127.0.0.1:0", "mqtt.sys_interval_s=0",
                         "mqtt.max_outbound_bytes=262144"});
  ASSERT_TRUE(broker.ready()) << broker.describe();
  const auto http_port = http_port_of(broker);
  ASSERT_NE(http_port, 0);
  EXPECT_EQ(http_request(http_port, "GET", "/readyz").status, 200);

  // A subscriber that never reads keeps a write pending, so the drain takes the
  // whole close timeout instead of finishing at once.
  mqtt_socket stalled;
  ASSERT_TRUE(stalled.connect_tcp(broker.port())) << stalled.error();
  stalled.set_version(codec::protocol_version::v5);
  ASSERT_TRUE(stalled.handshake(connect_packet("stalled-reader"))) << stalled.error();
  codec::subscribe_packet sub;
  sub.packet_id = 1;
  sub.subscriptions.push_back({"fill/#", {}});
  ASSERT_TRUE(stalled.send(codec::packet{sub}));
  codec::packet p;
  ASSERT_EQ(stalled.receive(p, wait_limit), mqtt_socket::read_result::packet);

  mqtt_socket publisher;
  ASSERT_TRUE(publisher.connect_tcp(broker.port())) << publisher.error();
  publisher.set_version(codec::protocol_version::v5);
  ASSERT_TRUE(publisher.handshake(connect_packet("filler"))) << publisher.error();
  codec::publish_packet fill;
  fill.topic = "fill/x";
  fill.payload.assign(64 * 1024, 'f');
  // 32 MB towards a reader that reads nothing: far beyond what the kernel buffers.
  for (int i = 0; i < 512; ++i) ASSERT_TRUE(publisher.send(codec::packet{fill}));
  // A round trip on the publisher's own connection: everything before it was routed.
  codec::pingreq_packet ping;
  ASSERT_TRUE(publisher.send(codec::packet{ping}));
  ASSERT_EQ(publisher.receive(p, wait_limit), mqtt_socket::read_result::packet);
  publisher.close();

  ASSERT_TRUE(broker.terminate());
  ASSERT_TRUE(broker.wait_for_log("shutting down", wait_limit)) << broker.describe();
  const auto ready = http_request(http_port, "GET", "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.describe();
  const auto live = http_request(http_port, "GET", "/livez");
  EXPECT_EQ(live.status, 200) << live.describe();
  const auto status = broker.stop(milliseconds(20'000));
  EXPECT_TRUE(status && status->clean()) << broker.describe();
}

}  // namespace
}  // namespace ringmq::testing
