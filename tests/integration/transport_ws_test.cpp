// MQTT over WebSocket and secure WebSocket: MQTT.js (npm `ws` and the WHATWG
// WebSocket class browsers have) at QoS 0, 1 and 2 in MQTT 5.0, 3.1.1 and 3.1;
// the HTTP upgrade (path, subprotocol, refusals); and a raw RFC 6455 client
// for what libraries do not do on purpose: an MQTT packet split over several
// frames, several packets in one frame, a fragmented message, ping and close.

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <memory>

#include "tests/integration/transport_support.hpp"

namespace ringmq::testing {
namespace {

constexpr milliseconds wait_limit{10'000};
const std::string js_dir = RINGMQ_JS_TESTS_DIR;
const std::string script = js_dir + "/ws_flows.mjs";

// The header line `name` of an HTTP head, without the name; "" when absent.
std::string header(const std::string& head, const std::string& name) {
  std::string lower_head = head;
  std::string lower_name = name + ":";
  for (auto& c : lower_head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (auto& c : lower_name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto at = lower_head.find("\r\n" + lower_name);
  if (at == std::string::npos) return "";
  auto begin = at + 2 + lower_name.size();
  const auto end = head.find("\r\n", begin);
  while (begin < head.size() && head[begin] == ' ') ++begin;
  return head.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

class TransportWs : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new scratch_dir();
    pki_ = new test_pki(*dir_);
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete dir_;
  }

  void SetUp() override {
    ASSERT_TRUE(pki_->error().empty()) << pki_->error();
    start({});
  }

  void TearDown() override {
    if (broker_ && broker_->ready()) {
      const auto status = broker_->stop();
      EXPECT_TRUE(status && status->clean()) << broker_->describe();
    }
  }

  // A plain MQTT listener "plain", a ws listener "ws" and a wss listener "wss".
  void start(std::vector<std::string> more) {
    more.push_back("listeners=[{type: mqtt, name: plain, bind: \"127.0.0.1:0\"}, "
                   "{type: ws, name: ws, bind: \"127.0.0.1:0\", path: /mqtt}, "
                   "{type: wss, name: wss, bind: \"127.0.0.1:0\", path: /mqtt, cert_file: \"" +
                   pki_->cert("server") + "\", key_file: \"" + pki_->key("server") + "\"}]");
    more.push_back("mqtt.sys_interval_s=0");
    broker_ = std::make_unique<broker_process>(more);
    ASSERT_TRUE(broker_->ready()) << broker_->describe();
  }

  std::uint16_t port(const std::string& listener) const {
    return listener_port(*broker_, listener);
  }

  std::string url(const std::string& listener) const {
    return listener + "://127.0.0.1:" + std::to_string(port(listener)) + "/mqtt";
  }

  void run_node(const std::vector<std::string>& argv) {
    ASSERT_TRUE(program_available("node")) << "node is missing: install Debian's nodejs";
    ASSERT_TRUE(std::filesystem::exists(js_dir + "/node_modules/mqtt/package.json"))
        << "MQTT.js is not installed: run ./dev setup (npm ci in tests/js)";
    child_options options;
    options.timeout = milliseconds(60'000);
    const auto r = run_child(argv, options);
    EXPECT_TRUE(r.succeeded()) << r.describe() << broker_->describe();
    EXPECT_NE(r.out.find("all ok"), std::string::npos) << r.describe();
  }

  // An upgraded WebSocket on the ws listener offering the `mqtt` subprotocol.
  void open_mqtt_websocket(ws_socket& ws) {
    ASSERT_TRUE(ws.connect(port("ws"))) << ws.error();
    const auto a = ws.request("/mqtt", {"Sec-WebSocket-Protocol: mqtt"});
    ASSERT_EQ(a.status, 101) << a.head << ws.error();
    EXPECT_EQ(header(a.head, "Sec-WebSocket-Protocol"), "mqtt") << a.head;
  }

  static scratch_dir* dir_;
  static test_pki* pki_;
  std::unique_ptr<broker_process> broker_;
};

scratch_dir* TransportWs::dir_ = nullptr;
test_pki* TransportWs::pki_ = nullptr;

TEST_F(TransportWs, MqttJsOverWebSocket) { run_node({"node", script, url("ws")}); }

TEST_F(TransportWs, MqttJsWithTheBrowserWebSocketClass) {
  run_node({"node", "--experimental-websocket", script, url("ws"), "--native"});
}

TEST_F(TransportWs, MqttJsOverSecureWebSocket) {
  // Verified against the test CA, as a browser that trusts it would.
  run_node({"node", script, url("wss"), pki_->ca()});
  // And unverified (rejectUnauthorized: false), as development setups do.
  run_node({"node", script, url("wss")});
}

TEST_F(TransportWs, UpgradeAgreesOnTheMqttSubprotocol) {
  struct offer {
    std::string header;  // the request's Sec-WebSocket-Protocol ("" = none)
    std::string agreed;  // the answer's ("" = none)
  };
  for (const auto& o : std::vector<offer>{{"mqtt", "mqtt"},
                                          {"mqttv3.1", "mqttv3.1"},
                                          {"wamp.2.json, mqtt", "mqtt"},
                                          {"", ""}}) {
    ws_socket ws;
    ASSERT_TRUE(ws.connect(port("ws"))) << ws.error();
    std::vector<std::string> headers;
    if (!o.header.empty()) headers.push_back("Sec-WebSocket-Protocol: " + o.header);
    // A query string is not part of the path.
    const auto a = ws.request("/mqtt?client=browser", headers);
    ASSERT_EQ(a.status, 101) << o.header << "\n" << a.head << ws.error();
    EXPECT_EQ(header(a.head, "Sec-WebSocket-Protocol"), o.agreed) << a.head;
    EXPECT_EQ(header(a.head, "Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") << a.head;
  }
}

TEST_F(TransportWs, UpgradeRefusals) {
  {
    ws_socket ws;
    ASSERT_TRUE(ws.connect(port("ws"))) << ws.error();
    const auto a = ws.request("/other", {"Sec-WebSocket-Protocol: mqtt"});
    EXPECT_EQ(a.status, 404) << a.head;
    EXPECT_TRUE(ws.closed()) << "the connection stays open after a 404";
  }
  {
    ws_socket ws;
    ASSERT_TRUE(ws.connect(port("ws"))) << ws.error();
    const auto a = ws.request("/mqtt", {}, false);
    EXPECT_EQ(a.status, 426) << a.head;
    EXPECT_NE(a.body.find("/mqtt"), std::string::npos) << a.body;
    EXPECT_TRUE(ws.closed());
  }
  {
    ws_socket ws;
    ASSERT_TRUE(ws.connect(port("ws"))) << ws.error();
    const auto a = ws.request("/mqtt", {"Sec-WebSocket-Protocol: graphql-ws, wamp.2.json"});
    EXPECT_EQ(a.status, 400) << a.head;
    EXPECT_NE(a.body.find("mqtt"), std::string::npos) << a.body;
    EXPECT_TRUE(ws.closed());
  }
  // The log line is written just before the answer: wait for the pipe to bring it.
  EXPECT_TRUE(broker_->wait_for_log_count("WebSocket upgrade refused: listener=ws peer=", 3,
                                          wait_limit))
      << broker_->describe();
  const auto log = broker_->log();
  EXPECT_EQ(count_of(log, "client connected:"), 0u) << log;
  EXPECT_EQ(count_of(log, "WebSocket upgrade refused: listener=ws peer="), 3u) << log;
  EXPECT_NE(log.find("status=404 reason=wrong path"), std::string::npos) << log;
  EXPECT_NE(log.find("status=426 reason=not a WebSocket upgrade request"), std::string::npos)
      << log;
  EXPECT_NE(log.find("status=400 reason=no MQTT subprotocol offered"), std::string::npos) << log;
}

TEST_F(TransportWs, PacketsSplitOverFramesAndPackedIntoOne) {
  ws_socket ws;
  open_mqtt_websocket(ws);
  ws.set_version(codec::protocol_version::v5);
  const auto v5 = codec::protocol_version::v5;

  // CONNECT in three binary messages, cut inside the fixed header and the payload.
  codec::connect_packet connect;
  connect.version = v5;
  connect.client_id = "raw-ws";
  connect.keep_alive = 30;
  const auto connect_bytes = codec::encode(codec::packet{connect}, v5);
  ASSERT_GT(connect_bytes.size(), 12u);
  ASSERT_TRUE(ws.send_mqtt_split(connect_bytes, {1, 9})) << ws.error();
  auto p = ws.receive_mqtt(wait_limit);
  ASSERT_TRUE(p && std::holds_alternative<codec::connack_packet>(*p)) << ws.error();
  EXPECT_EQ(std::get<codec::connack_packet>(*p).code, codec::reason_code::success);

  // SUBSCRIBE and a QoS 1 PUBLISH to the same topic in one frame.
  codec::subscribe_packet sub;
  sub.packet_id = 1;
  sub.subscriptions.push_back({"raw/#", {codec::qos::at_least_once}});
  codec::publish_packet pub;
  pub.topic = "raw/packed";
  pub.payload = "packed";
  pub.qos = codec::qos::at_least_once;
  pub.packet_id = 2;
  ASSERT_TRUE(ws.send_frame(ws_socket::binary, codec::encode(codec::packet{sub}, v5) +
                                                   codec::encode(codec::packet{pub}, v5)))
      << ws.error();
  bool subacked = false;
  bool acked = false;
  bool delivered = false;
  while (!(subacked && acked && delivered)) {
    p = ws.receive_mqtt(wait_limit);
    ASSERT_TRUE(p) << "subacked=" << subacked << " acked=" << acked
                   << " delivered=" << delivered << ": " << ws.error();
    if (auto* s = std::get_if<codec::suback_packet>(&*p)) {
      EXPECT_EQ(s->packet_id, 1);
      subacked = true;
    } else if (auto* a = std::get_if<codec::puback_packet>(&*p)) {
      EXPECT_EQ(a->packet_id, 2);
      acked = true;
    } else if (auto* m = std::get_if<codec::publish_packet>(&*p)) {
      EXPECT_EQ(m->payload, "packed");
      codec::puback_packet back;
      back.packet_id = m->packet_id;
      ASSERT_TRUE(ws.send_frame(ws_socket::binary, codec::encode(codec::packet{back}, v5)));
      delivered = true;
    } else {
      FAIL() << "unexpected " << codec::to_string(codec::type_of(*p));
    }
  }

  // A PUBLISH as one fragmented message (binary, continuation, continuation),
  // with the tail of it and a whole second PUBLISH (QoS 0) in the last fragment.
  codec::publish_packet big;
  big.topic = "raw/fragmented";
  big.payload = std::string(70'000, 'f');  // a 64-bit frame length on the way back
  codec::publish_packet small;
  small.topic = "raw/after";
  small.payload = "after";
  const auto big_bytes = codec::encode(codec::packet{big}, v5);
  const auto both = big_bytes + codec::encode(codec::packet{small}, v5);
  ASSERT_TRUE(ws.send_frame(ws_socket::binary, std::string_view(both).substr(0, 3), false));
  ASSERT_TRUE(ws.send_frame(ws_socket::continuation, std::string_view(both).substr(3, 40'000),
                            false));
  // A ping between fragments is allowed [RFC 6455 5.4] and answered with its payload.
  ASSERT_TRUE(ws.send_frame(ws_socket::ping, "are you there"));
  ASSERT_TRUE(ws.send_frame(ws_socket::continuation, std::string_view(both).substr(40'003)));
  for (const auto& want : {big.payload, small.payload}) {
    p = ws.receive_mqtt(wait_limit);
    ASSERT_TRUE(p && std::holds_alternative<codec::publish_packet>(*p)) << ws.error();
    EXPECT_EQ(std::get<codec::publish_packet>(*p).payload.size(), want.size());
    EXPECT_EQ(std::get<codec::publish_packet>(*p).payload, want);
  }
  ASSERT_EQ(ws.control_frames().size(), 1u);
  EXPECT_EQ(ws.control_frames()[0].op, ws_socket::pong);
  EXPECT_EQ(ws.control_frames()[0].payload, "are you there");
  ws.control_frames().clear();

  // A ping on its own; then a PINGREQ split over two frames.
  ASSERT_TRUE(ws.send_frame(ws_socket::ping, "again"));
  ASSERT_TRUE(ws.send_mqtt_split(codec::encode(codec::packet{codec::pingreq_packet{}}, v5), {1}));
  p = ws.receive_mqtt(wait_limit);
  ASSERT_TRUE(p && std::holds_alternative<codec::pingresp_packet>(*p)) << ws.error();
  ASSERT_EQ(ws.control_frames().size(), 1u);
  EXPECT_EQ(ws.control_frames()[0].payload, "again");
  EXPECT_FALSE(ws.server_masked()) << "the server masked its frames";

  // A close frame is answered with a close frame, then the server ends the
  // TCP connection (it shuts down its side and waits for ours, RFC 6455 7.1.1).
  ASSERT_TRUE(ws.send_frame(ws_socket::close_frame, std::string("\x03\xE8", 2)));
  auto f = ws.read_frame(wait_limit);
  ASSERT_TRUE(f) << ws.error();
  EXPECT_EQ(f->op, ws_socket::close_frame);
  EXPECT_TRUE(wait_peer_closed(ws.fd(), wait_limit));
  ws.close();
  EXPECT_TRUE(broker_->wait_for_log("client disconnected: client_id=raw-ws", wait_limit))
      << broker_->describe();
}

TEST_F(TransportWs, SilentClientsAreClosedAtTheHandshakeDeadline) {
  start({"mqtt.connect_timeout_ms=1000"});
  struct silent {
    std::string listener;
    std::string sends;  // what it sends before going quiet
  };
  const std::vector<silent> clients{{"ws", ""},
                                    {"wss", ""},
                                    // Headers that never end (slowloris).
                                    {"ws", "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\n"},
                                    // Upgraded, but no CONNECT.
                                    {"ws", "upgrade"}};
  for (const auto& c : clients) {
    ws_socket ws;
    ASSERT_TRUE(ws.connect(port(c.listener))) << ws.error();
    if (c.sends == "upgrade") {
      const auto a = ws.request("/mqtt", {"Sec-WebSocket-Protocol: mqtt"});
      ASSERT_EQ(a.status, 101) << a.head;
    } else if (!c.sends.empty()) {
      ASSERT_TRUE(ws.send_raw(c.sends));
    }
    const auto began = steady::now();
    const bool closed = wait_peer_closed(ws.fd(), milliseconds(5'000));
    const auto took = std::chrono::duration_cast<milliseconds>(steady::now() - began);
    ASSERT_TRUE(closed) << c.listener << " '" << c.sends << "' still open after 5 s\n"
                        << broker_->describe();
    EXPECT_GE(took.count(), 800) << c.listener << " '" << c.sends << "'";
    EXPECT_LE(took.count(), 3'000) << c.listener << " '" << c.sends << "'";
  }
  // Each is in the log, saying which stage timed out.
  EXPECT_TRUE(broker_->wait_for_log("reason=no CONNECT in time", wait_limit))
      << broker_->describe();
  const auto log = broker_->log();
  EXPECT_EQ(count_of(log, "WebSocket upgrade failed: listener=ws peer="), 2u) << log;
  EXPECT_EQ(count_of(log, "reason=no upgrade request in time"), 2u) << log;
  EXPECT_EQ(count_of(log, "TLS handshake failed: listener=wss peer="), 1u) << log;
  EXPECT_EQ(count_of(log, "reason=no TLS handshake in time"), 1u) << log;
}

}  // namespace
}  // namespace ringmq::testing
