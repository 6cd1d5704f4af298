// Start and stop: SIGTERM tells every connected MQTT 5 client why it is being
// disconnected (DISCONNECT 0x8B Server shutting down), closes 3.x clients, and
// the process exits 0.

#include <gtest/gtest.h>

#include "tests/support/broker_process.hpp"

namespace ringmq::testing {
namespace {

using codec::protocol_version;
using codec::reason_code;

codec::connect_packet connect_of(protocol_version v, std::string id) {
  codec::connect_packet c;
  c.version = v;
  c.client_id = std::move(id);
  c.keep_alive = 60;
  return c;
}

TEST(BrokerLifecycle, SigtermSendsServerShuttingDownToV5ClientsAndExitsZero) {
  broker_process broker;
  ASSERT_TRUE(broker.ready()) << broker.describe();

  mqtt_socket v5_a;
  mqtt_socket v5_b;
  mqtt_socket v311;
  ASSERT_TRUE(v5_a.connect_tcp(broker.port())) << v5_a.error();
  ASSERT_TRUE(v5_b.connect_tcp(broker.port())) << v5_b.error();
  ASSERT_TRUE(v311.connect_tcp(broker.port())) << v311.error();
  ASSERT_TRUE(v5_a.handshake(connect_of(protocol_version::v5, "shutdown-a"))) << v5_a.error();
  ASSERT_TRUE(v5_b.handshake(connect_of(protocol_version::v5, "shutdown-b"))) << v5_b.error();
  ASSERT_TRUE(v311.handshake(connect_of(protocol_version::v3_1_1, "shutdown-c"))) << v311.error();

  ASSERT_TRUE(broker.terminate());
  for (auto* s : {&v5_a, &v5_b}) {
    codec::packet p;
    ASSERT_EQ(s->receive(p, milliseconds(5'000)), mqtt_socket::read_result::packet)
        << s->error() << "\n"
        << broker.describe();
    auto* d = std::get_if<codec::disconnect_packet>(&p);
    ASSERT_NE(d, nullptr) << codec::to_string(codec::type_of(p));
    EXPECT_EQ(d->code, reason_code::server_shutting_down);
    EXPECT_TRUE(s->wait_closed(milliseconds(5'000))) << broker.describe();
  }
  // 3.1.1 has no server DISCONNECT: the connection is closed.
  EXPECT_TRUE(v311.wait_closed(milliseconds(5'000))) << broker.describe();
  EXPECT_TRUE(v311.last_packets().empty());

  const auto status = broker.stop();
  ASSERT_TRUE(status) << "still running after SIGTERM\n" << broker.describe();
  EXPECT_TRUE(status->clean()) << broker.describe();
}

TEST(BrokerLifecycle, ClientsThatDoNotCloseDoNotHoldTheShutdownForever) {
  // A client that ignores the DISCONNECT and keeps its socket open: the broker
  // closes its side, so the shutdown completes well within the grace period.
  broker_process broker;
  ASSERT_TRUE(broker.ready()) << broker.describe();
  mqtt_socket stubborn;
  ASSERT_TRUE(stubborn.connect_tcp(broker.port()));
  ASSERT_TRUE(stubborn.handshake(connect_of(protocol_version::v5, "stubborn"))) << stubborn.error();
  const auto began = steady::now();
  const auto status = broker.stop(milliseconds(15'000));
  ASSERT_TRUE(status) << broker.describe();
  EXPECT_TRUE(status->clean()) << broker.describe();
  EXPECT_LT(steady::now() - began, std::chrono::seconds(12)) << broker.describe();
}

}  // namespace
}  // namespace ringmq::testing
