// Packets from real MQTT clients decode, and re-encode, exactly.
//
// Each test starts a capture_server on an ephemeral port, runs one real client
// (mosquitto_pub / mosquitto_sub from mosquitto-clients, or Paho for Python from
// python3-paho-mqtt) against it as a child process, and then checks that:
//  - every packet the client sent decoded without error;
//  - encode() gives back the client's exact bytes wherever the specification
//    allows one encoding only (at most one property; 5.0 acknowledgements with
//    no properties may drop their reason code, so those only round-trip), and
//    decode(encode(p)) == p everywhere;
//  - the decoded fields are what the client was told to send.
//
// With RINGMQ_CAPTURE_DIR set, every connection's bytes are also written there
// (<test>.client.bin, <test>.server.bin) for tests/fuzz/make_seed_corpus.py.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "broker/codec/decoder.hpp"
#include "broker/codec/encoder.hpp"
#include "tests/integration/capture_server.hpp"
#include "tests/integration/child_process.hpp"

namespace ringmq::codec {

// Readable property sets in assertion messages (found by argument-dependent lookup).
void PrintTo(const properties& p, std::ostream* os) {
  auto& o = *os;
  o << "{";
  auto num = [&](const char* name, const auto& v) {
    if (v) o << " " << name << "=" << static_cast<std::uint64_t>(*v);
  };
  auto str = [&](const char* name, const std::optional<std::string>& v) {
    if (v) o << " " << name << "=\"" << *v << "\"";
  };
  num("payload_format_indicator", p.payload_format_indicator);
  num("message_expiry_interval", p.message_expiry_interval);
  str("content_type", p.content_type);
  str("response_topic", p.response_topic);
  str("correlation_data", p.correlation_data);
  for (auto id : p.subscription_identifiers) o << " subscription_identifier=" << id;
  num("session_expiry_interval", p.session_expiry_interval);
  str("assigned_client_identifier", p.assigned_client_identifier);
  num("server_keep_alive", p.server_keep_alive);
  str("authentication_method", p.authentication_method);
  str("authentication_data", p.authentication_data);
  num("request_problem_information", p.request_problem_information);
  num("will_delay_interval", p.will_delay_interval);
  num("request_response_information", p.request_response_information);
  str("response_information", p.response_information);
  str("server_reference", p.server_reference);
  str("reason_string", p.reason_string);
  num("receive_maximum", p.receive_maximum);
  num("topic_alias_maximum", p.topic_alias_maximum);
  num("topic_alias", p.topic_alias);
  num("maximum_qos", p.maximum_qos);
  num("retain_available", p.retain_available);
  for (const auto& up : p.user_properties) {
    o << " user_property=(" << up.name << "," << up.value << ")";
  }
  num("maximum_packet_size", p.maximum_packet_size);
  num("wildcard_subscription_available", p.wildcard_subscription_available);
  num("subscription_identifier_available", p.subscription_identifier_available);
  num("shared_subscription_available", p.shared_subscription_available);
  o << " }";
}

}  // namespace ringmq::codec

namespace ringmq::testing {
namespace {

using namespace ringmq::codec;
using namespace std::chrono_literals;

constexpr auto connection_end_limit = 10s;

const std::string python = "/usr/bin/python3";  // Debian's, which has paho; not a PATH python
const std::string paho_script = std::string(RINGMQ_INTEROP_CLIENTS_DIR) + "/paho_capture_client.py";

// ---------------------------------------------------------------------------
// Looking at what was captured.

std::size_t property_count(const properties& p) {
  std::size_t n = p.subscription_identifiers.size() + p.user_properties.size();
  auto one = [&n](const auto& field) { n += field.has_value() ? 1 : 0; };
  one(p.payload_format_indicator);
  one(p.message_expiry_interval);
  one(p.content_type);
  one(p.response_topic);
  one(p.correlation_data);
  one(p.session_expiry_interval);
  one(p.assigned_client_identifier);
  one(p.server_keep_alive);
  one(p.authentication_method);
  one(p.authentication_data);
  one(p.request_problem_information);
  one(p.will_delay_interval);
  one(p.request_response_information);
  one(p.response_information);
  one(p.server_reference);
  one(p.reason_string);
  one(p.receive_maximum);
  one(p.topic_alias_maximum);
  one(p.topic_alias);
  one(p.maximum_qos);
  one(p.retain_available);
  one(p.maximum_packet_size);
  one(p.wildcard_subscription_available);
  one(p.subscription_identifier_available);
  one(p.shared_subscription_available);
  return n;
}

// Properties in the whole packet, Will Properties included.
std::size_t property_count(const packet& p) {
  return std::visit(
      [](const auto& x) -> std::size_t {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, connect_packet>) {
          return property_count(x.props) + (x.will ? property_count(x.will->props) : 0);
        } else if constexpr (requires { x.props; }) {
          return property_count(x.props);
        } else {
          return 0;
        }
      },
      p);
}

// False where the specification allows more than one encoding of the same
// packet, so that the client's bytes and ours may differ and both be right:
//  - two or more properties may come in any order (section 2.2.2);
//  - in 5.0, PUBACK/PUBREC/PUBREL/PUBCOMP, DISCONNECT and AUTH without
//    properties may omit the Property Length, and with Success also the reason
//    code (sections 3.4.2.1, 3.14.2.1, 3.15.2.1).
bool has_single_encoding(const packet& p, protocol_version version) {
  if (property_count(p) > 1) return false;
  if (!is_v5(version)) return true;
  switch (type_of(p)) {
    case packet_type::puback:
    case packet_type::pubrec:
    case packet_type::pubrel:
    case packet_type::pubcomp:
    case packet_type::disconnect:
    case packet_type::auth:
      return property_count(p) != 0;
    default:
      return true;
  }
}

// The version a packet is written in: CONNECT carries its own.
protocol_version wire_version(const captured_packet& c) {
  if (const auto* connect = std::get_if<connect_packet>(&*c.decoded)) return connect->version;
  return c.version;
}

std::string describe(const captured_connection& conn) {
  std::ostringstream s;
  s << "captured " << conn.packets.size() << " packet(s) from the client"
    << (conn.timed_out ? " (then it went quiet)" : "") << ":\n";
  for (std::size_t i = 0; i < conn.packets.size(); ++i) {
    const auto& c = conn.packets[i];
    s << "  #" << i << " ";
    if (c.decoded) {
      s << to_string(type_of(*c.decoded));
    } else {
      s << "DECODE ERROR " << to_string(c.error->code) << ": " << c.error->detail;
    }
    s << " [" << hex(c.raw) << "]\n";
  }
  return s.str();
}

bool all_decoded(const captured_connection& conn) {
  return !conn.packets.empty() &&
         std::all_of(conn.packets.begin(), conn.packets.end(),
                     [](const auto& c) { return c.decoded.has_value(); });
}

void expect_reencodes(const captured_connection& conn) {
  for (std::size_t i = 0; i < conn.packets.size(); ++i) {
    const auto& c = conn.packets[i];
    if (!c.decoded) continue;
    const auto& p = *c.decoded;
    const auto v = wire_version(c);
    SCOPED_TRACE(::testing::Message() << "packet #" << i << " " << to_string(type_of(p)) << " in "
                                      << to_string(v) << ", client bytes [" << hex(c.raw) << "]");
    const auto bytes = encode(p, v);
    EXPECT_EQ(bytes.size(), encoded_size(p, v));
    if (has_single_encoding(p, v)) {
      EXPECT_EQ(hex(bytes), hex(c.raw)) << "encode() differs from the client's bytes";
    }
    auto again = decode_packet(bytes, v);
    ASSERT_TRUE(again) << "encode() output does not decode: " << again.error().detail << " ["
                       << hex(bytes) << "]";
    EXPECT_TRUE(*again == p) << "decode(encode(p)) != p [" << hex(bytes) << "]";
  }
}

template <class P>
std::vector<const P*> packets_of(const captured_connection& conn) {
  std::vector<const P*> out;
  for (const auto& c : conn.packets) {
    if (c.decoded) {
      if (const auto* p = std::get_if<P>(&*c.decoded)) out.push_back(p);
    }
  }
  return out;
}

std::vector<packet_type> types_of(const captured_connection& conn) {
  std::vector<packet_type> out;
  for (const auto& c : conn.packets) {
    if (c.decoded) out.push_back(type_of(*c.decoded));
  }
  return out;
}

std::string names(const std::vector<packet_type>& types) {
  std::string out;
  for (auto t : types) out += (out.empty() ? "" : " ") + std::string(to_string(t));
  return out;
}

std::size_t count_of(const captured_connection& conn, packet_type type) {
  const auto t = types_of(conn);
  return static_cast<std::size_t>(std::count(t.begin(), t.end(), type));
}

// ---------------------------------------------------------------------------
// Running a client against a capture server.

struct capture_run {
  child_result client;
  std::vector<captured_connection> connections;
};

std::string current_test_name() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "." + info->name();
  std::replace(name.begin(), name.end(), '/', '_');
  return name;
}

// Keeps the bytes for the fuzzing seed corpus when RINGMQ_CAPTURE_DIR asks for them.
void save_capture(const std::vector<captured_connection>& connections) {
  const char* dir = std::getenv("RINGMQ_CAPTURE_DIR");
  if (!dir || !*dir) return;
  std::filesystem::create_directories(dir);
  const auto base = std::filesystem::path(dir) / current_test_name();
  for (std::size_t i = 0; i < connections.size(); ++i) {
    const auto stem = base.string() + (connections.size() > 1 ? "." + std::to_string(i) : "");
    std::ofstream(stem + ".client.bin", std::ios::binary) << connections[i].client_bytes;
    std::ofstream(stem + ".server.bin", std::ios::binary) << connections[i].server_bytes;
  }
}

// Runs argv with "{port}" replaced by the server's port, then waits for the
// connection to end.
capture_run run_capture(std::vector<std::string> argv, const capture_options& options = {},
                        const child_options& child = {}) {
  capture_server server(options);
  for (auto& a : argv) {
    if (a == "{port}") a = std::to_string(server.port());
  }
  capture_run run;
  run.client = run_child(argv, child);
  if (run.client.started) server.wait_for_connections(1, connection_end_limit);
  run.connections = server.connections();
  save_capture(run.connections);
  return run;
}

// The client's account of the run, then what the server captured.
std::string describe(const capture_run& run) {
  std::string out = run.client.describe();
  if (run.connections.empty()) out += "the client never connected (or never disconnected)\n";
  for (const auto& conn : run.connections) out += describe(conn);
  return out;
}

child_options mosquitto_env() {
  child_options o;
  // mosquitto_pub/sub read default options from $XDG_CONFIG_HOME/mosquitto_{pub,sub};
  // a developer's file there must not change what the test sends.
  o.set_env["XDG_CONFIG_HOME"] = "/dev/null";
  return o;
}

std::string mosquitto_version_flag(protocol_version v) {
  switch (v) {
    case protocol_version::v3_1: return "mqttv31";
    case protocol_version::v3_1_1: return "mqttv311";
    case protocol_version::v5: return "mqttv5";
  }
  return "";
}

std::string version_tag(protocol_version v) {
  switch (v) {
    case protocol_version::v3_1: return "v31";
    case protocol_version::v3_1_1: return "v311";
    case protocol_version::v5: return "v5";
  }
  return "";
}

void require_program(const std::string& program, const std::string& package) {
  ASSERT_TRUE(program_available(program))
      << program << " is missing: install the Debian package " << package << " (./dev setup)";
}

// Fatal unless the client succeeded and every packet of its one connection
// decoded; then the (non-fatal) re-encoding checks.
#define ASSERT_CLEAN_CAPTURE(run)                                    \
  do {                                                               \
    ASSERT_TRUE((run).client.succeeded()) << describe(run);          \
    ASSERT_EQ((run).connections.size(), 1u) << describe(run);        \
    ASSERT_TRUE(all_decoded((run).connections[0])) << describe(run); \
    expect_reencodes((run).connections[0]);                          \
  } while (false)

// ---------------------------------------------------------------------------
// mosquitto_pub in 3.1, 3.1.1 and 5.0.

class MosquittoPub : public ::testing::TestWithParam<protocol_version> {
 protected:
  // A fatal failure in SetUp skips the test body.
  void SetUp() override { require_program("mosquitto_pub", "mosquitto-clients"); }

  std::vector<std::string> command(std::initializer_list<std::string> extra) const {
    std::vector<std::string> argv = {"mosquitto_pub", "-h", "127.0.0.1", "-p", "{port}", "-V",
                                     mosquitto_version_flag(GetParam())};
    argv.insert(argv.end(), extra);
    return argv;
  }
  std::string id(const std::string& prefix) const { return prefix + "-" + version_tag(GetParam()); }
};

TEST_P(MosquittoPub, Qos0) {
  const auto v = GetParam();
  auto run = run_capture(
      command({"-i", id("pub-q0"), "-t", "ringmq/pub/q0", "-m", "hello at qos 0"}), {},
      mosquitto_env());
  ASSERT_CLEAN_CAPTURE(run);
  const auto& conn = run.connections[0];
  ASSERT_EQ(names(types_of(conn)), "CONNECT PUBLISH DISCONNECT") << describe(conn);

  const auto& c = *packets_of<connect_packet>(conn)[0];
  EXPECT_EQ(c.version, v);
  EXPECT_EQ(c.client_id, id("pub-q0"));
  EXPECT_EQ(c.keep_alive, 60);  // mosquitto_pub's default
  EXPECT_TRUE(c.clean_start);
  EXPECT_FALSE(c.will);
  EXPECT_FALSE(c.username);
  EXPECT_FALSE(c.password);
  properties connect_props;
  // libmosquitto announces its in-flight window (-M, default 20) as Receive Maximum.
  if (is_v5(v)) connect_props.receive_maximum = 20;
  EXPECT_EQ(c.props, connect_props);

  const auto& p = *packets_of<publish_packet>(conn)[0];
  EXPECT_EQ(p.topic, "ringmq/pub/q0");
  EXPECT_EQ(p.payload, "hello at qos 0");
  EXPECT_EQ(p.qos, qos::at_most_once);
  EXPECT_FALSE(p.retain);
  EXPECT_FALSE(p.dup);
  EXPECT_EQ(p.props, properties{});
}

TEST_P(MosquittoPub, Qos1RetainedWithCredentials) {
  auto run = run_capture(command({"-i", id("pub-q1"), "-t", "ringmq/pub/q1", "-m",
                                  "retained at qos 1", "-q", "1", "-r", "-k", "17", "-u",
                                  "ringmq-user", "-P", "s3cret pass"}),
                         {}, mosquitto_env());
  ASSERT_CLEAN_CAPTURE(run);
  const auto& conn = run.connections[0];
  ASSERT_EQ(names(types_of(conn)), "CONNECT PUBLISH DISCONNECT") << describe(conn);

  const auto& c = *packets_of<connect_packet>(conn)[0];
  EXPECT_EQ(c.client_id, id("pub-q1"));
  EXPECT_EQ(c.keep_alive, 17);
  EXPECT_EQ(c.username, "ringmq-user");
  EXPECT_EQ(c.password, "s3cret pass");

  const auto& p = *packets_of<publish_packet>(conn)[0];
  EXPECT_EQ(p.topic, "ringmq/pub/q1");
  EXPECT_EQ(p.payload, "retained at qos 1");
  EXPECT_EQ(p.qos, qos::at_least_once);
  EXPECT_TRUE(p.retain);
  EXPECT_NE(p.packet_id, 0);
}

TEST_P(MosquittoPub, Qos2PersistentWithWill) {
  const auto v = GetParam();
  auto run = run_capture(
      command({"-i", id("pub-q2"), "-t", "ringmq/pub/q2", "-m", "exactly once", "-q", "2", "-c",
               "--will-topic", "ringmq/will/pub", "--will-payload", "publisher went away",
               "--will-qos", "1", "--will-retain"}),
      {}, mosquitto_env());
  ASSERT_CLEAN_CAPTURE(run);
  const auto& conn = run.connections[0];
  ASSERT_EQ(names(types_of(conn)), "CONNECT PUBLISH PUBREL DISCONNECT") << describe(conn);

  const auto& c = *packets_of<connect_packet>(conn)[0];
  EXPECT_EQ(c.client_id, id("pub-q2"));
  EXPECT_FALSE(c.clean_start);
  ASSERT_TRUE(c.will);
  EXPECT_EQ(c.will->topic, "ringmq/will/pub");
  EXPECT_EQ(c.will->payload, "publisher went away");
  EXPECT_EQ(c.will->qos, qos::at_least_once);
  EXPECT_TRUE(c.will->retain);
  EXPECT_EQ(c.will->props, properties{});
  properties expected;
  // In 5.0, -c without -x asks for a session that never expires; Receive Maximum as above.
  if (is_v5(v)) {
    expected.session_expiry_interval = 0xFFFF'FFFF;
    expected.receive_maximum = 20;
  }
  EXPECT_EQ(c.props, expected);

  const auto& p = *packets_of<publish_packet>(conn)[0];
  EXPECT_EQ(p.qos, qos::exactly_once);
  EXPECT_EQ(p.payload, "exactly once");
  EXPECT_EQ(packets_of<pubrel_packet>(conn)[0]->packet_id, p.packet_id);
}

INSTANTIATE_TEST_SUITE_P(Versions, MosquittoPub,
                         ::testing::Values(protocol_version::v3_1, protocol_version::v3_1_1,
                                           protocol_version::v5),
                         [](const auto& info) { return version_tag(info.param); });

TEST(MosquittoPubV5, EveryProperty) {
  ASSERT_NO_FATAL_FAILURE(require_program("mosquitto_pub", "mosquitto-clients"));
  auto run = run_capture(
      {"mosquitto_pub", "-h", "127.0.0.1", "-p", "{port}", "-V", "mqttv5", "-i", "pub-v5-props",
       "-t", "ringmq/pub/props", "-m", "with properties", "-q", "2",
       "-D", "connect", "session-expiry-interval", "30",
       "-D", "connect", "receive-maximum", "7",
       "-D", "connect", "maximum-packet-size", "65000",
       "-D", "connect", "topic-alias-maximum", "4",
       "-D", "connect", "request-problem-information", "1",
       "-D", "connect", "user-property", "connect-key", "connect-value",
       "-D", "publish", "user-property", "k1", "v1",
       "-D", "publish", "user-property", "k2", "v2",
       "-D", "publish", "message-expiry-interval", "120",
       "-D", "publish", "content-type", "text/plain",
       "-D", "publish", "response-topic", "ringmq/reply",
       "-D", "publish", "correlation-data", "corr-42",
       "-D", "publish", "payload-format-indicator", "1",
       "--will-topic", "ringmq/will/props", "--will-payload", "will with properties",
       "--will-qos", "2",
       "-D", "will", "will-delay-interval", "5",
       "-D", "will", "message-expiry-interval", "99",
       "-D", "will", "content-type", "text/plain",
       "-D", "will", "user-property", "will-key", "will-value",
       "-D", "disconnect", "session-expiry-interval", "0",
       "-D", "disconnect", "user-property", "bye-key", "bye-value"},
      {}, mosquitto_env());
  ASSERT_CLEAN_CAPTURE(run);
  const auto& conn = run.connections[0];
  ASSERT_EQ(names(types_of(conn)), "CONNECT PUBLISH PUBREL DISCONNECT") << describe(conn);

  const auto& c = *packets_of<connect_packet>(conn)[0];
  EXPECT_EQ(c.version, protocol_version::v5);
  properties connect_props;
  connect_props.session_expiry_interval = 30;
  connect_props.receive_maximum = 7;
  connect_props.maximum_packet_size = 65000;
  connect_props.topic_alias_maximum = 4;
  connect_props.request_problem_information = 1;
  connect_props.user_properties = {{"connect-key", "connect-value"}};
  EXPECT_EQ(c.props, connect_props);
  ASSERT_TRUE(c.will);
  EXPECT_EQ(c.will->topic, "ringmq/will/props");
  EXPECT_EQ(c.will->payload, "will with properties");
  EXPECT_EQ(c.will->qos, qos::exactly_once);
  EXPECT_FALSE(c.will->retain);
  properties will_props;
  will_props.will_delay_interval = 5;
  will_props.message_expiry_interval = 99;
  will_props.content_type = "text/plain";
  will_props.user_properties = {{"will-key", "will-value"}};
  EXPECT_EQ(c.will->props, will_props);

  const auto& p = *packets_of<publish_packet>(conn)[0];
  EXPECT_EQ(p.topic, "ringmq/pub/props");
  EXPECT_EQ(p.payload, "with properties");
  EXPECT_EQ(p.qos, qos::exactly_once);
  properties publish_props;
  publish_props.payload_format_indicator = 1;
  publish_props.message_expiry_interval = 120;
  publish_props.content_type = "text/plain";
  publish_props.response_topic = "ringmq/reply";
  publish_props.correlation_data = "corr-42";
  publish_props.user_properties = {{"k1", "v1"}, {"k2", "v2"}};
  EXPECT_EQ(p.props, publish_props);

  const auto& d = *packets_of<disconnect_packet>(conn)[0];
  EXPECT_EQ(d.code, reason_code::success);
  properties disconnect_props;
  disconnect_props.session_expiry_interval = 0;
  disconnect_props.user_properties = {{"bye-key", "bye-value"}};
  EXPECT_EQ(d.props, disconnect_props);
}

// With a Topic Alias, mosquitto_pub sends the topic once, then the alias alone.
TEST(MosquittoPubV5, TopicAlias) {
  ASSERT_NO_FATAL_FAILURE(require_program("mosquitto_pub", "mosquitto-clients"));
  auto run = run_capture({"mosquitto_pub", "-h", "127.0.0.1", "-p", "{port}", "-V", "mqttv5",
                          "-i", "pub-v5-alias", "-t", "ringmq/pub/alias", "-m", "aliased",
                          "--repeat", "2", "-D", "publish", "topic-alias", "3"},
                         {}, mosquitto_env());
  ASSERT_CLEAN_CAPTURE(run);
  const auto& conn = run.connections[0];
  ASSERT_EQ(names(types_of(conn)), "CONNECT PUBLISH PUBLISH DISCONNECT") << describe(conn);
  const auto publishes = packets_of<publish_packet>(conn);
  EXPECT_EQ(publishes[0]->topic, "ringmq/pub/alias");
  EXPECT_EQ(publishes[0]->props.topic_alias, 3);
  EXPECT_EQ(publishes[1]->topic, "");
  EXPECT_EQ(publishes[1]->props.topic_alias, 3);
  for (const auto* p : publishes) EXPECT_EQ(p->payload, "aliased");
}

// A zero-length retained message is how clients clear a retained topic.
TEST(MosquittoPubV311, EmptyRetainedMessage) {
  ASSERT_NO_FATAL_FAILURE(require_program("mosquitto_pub", "mosquitto-clients"));
  auto run = run_capture({"mosquitto_pub", "-h", "127.0.0.1", "-p", "{port}", "-i", "pub-null",
                          "-t", "ringmq/pub/cleared", "-n", "-r", "-q", "1"},
                         {}, mosquitto_env());
  ASSERT_CLEAN_CAPTURE(run);
  const auto& conn = run.connections[0];
  const auto publishes = packets_of<publish_packet>(conn);
  ASSERT_EQ(publishes.size(), 1u) << describe(conn);
  EXPECT_EQ(publishes[0]->payload, "");
  EXPECT_TRUE(publishes[0]->retain);
  EXPECT_EQ(publishes[0]->qos, qos::at_least_once);
}

// ---------------------------------------------------------------------------
// mosquitto_sub in 3.1, 3.1.1 and 5.0, at each QoS.

using sub_param = std::tuple<protocol_version, qos>;

class MosquittoSub : public ::testing::TestWithParam<sub_param> {
 protected:
  // A fatal failure in SetUp skips the test body.
  void SetUp() override { require_program("mosquitto_sub", "mosquitto-clients"); }
};

// Subscribes to two filters, receives the server's one message and exits (-C 1).
TEST_P(MosquittoSub, ReceivesOneMessage) {
  const auto [v, q] = GetParam();
  const auto client_id = "sub-q" + std::to_string(static_cast<int>(q)) + "-" + version_tag(v);
  capture_options options;
  options.payload = "message for mosquitto_sub";
  auto run = run_capture({"mosquitto_sub", "-h", "127.0.0.1", "-p", "{port}", "-V",
                          mosquitto_version_flag(v), "-i", client_id, "-k", "30", "-q",
                          std::to_string(static_cast<int>(q)), "-t", "ringmq/sub/+", "-t",
                          "ringmq/sub2/#", "-C", "1"},
                         options, mosquitto_env());
  ASSERT_CLEAN_CAPTURE(run);
  const auto& conn = run.connections[0];
  // The client printing the message proves it decoded the server's PUBLISH.
  EXPECT_EQ(run.client.out, options.payload + "\n");

  // Between SUBSCRIBE and DISCONNECT: the acknowledgements of the server's PUBLISH.
  const char* expected[] = {"CONNECT SUBSCRIBE DISCONNECT", "CONNECT SUBSCRIBE PUBACK DISCONNECT",
                            "CONNECT SUBSCRIBE PUBREC PUBCOMP DISCONNECT"};
  ASSERT_EQ(names(types_of(conn)), expected[static_cast<int>(q)]) << describe(conn);
  for (const auto* ack : packets_of<puback_packet>(conn)) EXPECT_EQ(ack->packet_id, 1);
  for (const auto* ack : packets_of<pubrec_packet>(conn)) EXPECT_EQ(ack->packet_id, 1);
  for (const auto* ack : packets_of<pubcomp_packet>(conn)) EXPECT_EQ(ack->packet_id, 1);

  const auto& c = *packets_of<connect_packet>(conn)[0];
  EXPECT_EQ(c.version, v);
  EXPECT_EQ(c.client_id, client_id);
  EXPECT_EQ(c.keep_alive, 30);

  const auto& s = *packets_of<subscribe_packet>(conn)[0];
  EXPECT_NE(s.packet_id, 0);
  ASSERT_EQ(s.subscriptions.size(), 2u);
  EXPECT_EQ(s.subscriptions[0].filter, "ringmq/sub/+");
  EXPECT_EQ(s.subscriptions[1].filter, "ringmq/sub2/#");
  for (const auto& sub : s.subscriptions) {
    EXPECT_EQ(sub.options, (subscribe_options{.max_qos = q}));
  }
  EXPECT_EQ(s.props, properties{});
}

INSTANTIATE_TEST_SUITE_P(
    VersionsAndQos, MosquittoSub,
    ::testing::Combine(::testing::Values(protocol_version::v3_1, protocol_version::v3_1_1,
                                         protocol_version::v5),
                       ::testing::Values(qos::at_most_once, qos::at_least_once,
                                         qos::exactly_once)),
    [](const auto& info) {
      return version_tag(std::get<0>(info.param)) + "_qos" +
             std::to_string(static_cast<int>(std::get<1>(info.param)));
    });

class MosquittoUnsubscribe : public ::testing::TestWithParam<protocol_version> {
 protected:
  // A fatal failure in SetUp skips the test body.
  void SetUp() override { require_program("mosquitto_sub", "mosquitto-clients"); }
};

// -U sends one UNSUBSCRIBE per topic after the SUBSCRIBE; -E exits once subscribed.
TEST_P(MosquittoUnsubscribe, SubscribesThenUnsubscribes) {
  const auto v = GetParam();
  const auto client_id = "unsub-" + version_tag(v);
  std::vector<std::string> argv = {"mosquitto_sub", "-h", "127.0.0.1", "-p", "{port}",
                                   "-i", client_id, "-c", "-t", "ringmq/keep",
                                   "-U", "ringmq/drop/+", "-U", "ringmq/drop2", "-E"};
  if (is_v5(v)) {
    argv.insert(argv.end(), {"-D", "unsubscribe", "user-property", "why", "cleanup"});
  }
  // -D switches to 5.0; -V comes last so that it decides.
  argv.push_back("-V");
  argv.push_back(mosquitto_version_flag(v));
  capture_options options;
  options.trigger = publish_trigger::never;
  auto run = run_capture(argv, options, mosquitto_env());
  ASSERT_CLEAN_CAPTURE(run);
  const auto& conn = run.connections[0];
  // -E disconnects on the SUBACK, from inside a callback, so libmosquitto only queues its
  // DISCONNECT; an UNSUBACK read right behind the SUBACK then fails its state check and
  // the socket is closed with the DISCONNECT unsent. Whether it goes out is a race.
  auto types = names(types_of(conn));
  if (types.ends_with(" DISCONNECT")) types.resize(types.size() - 11);
  ASSERT_EQ(types, "CONNECT SUBSCRIBE UNSUBSCRIBE UNSUBSCRIBE") << describe(conn);
  EXPECT_FALSE(packets_of<connect_packet>(conn)[0]->clean_start);
  const auto unsubscribes = packets_of<unsubscribe_packet>(conn);
  EXPECT_EQ(unsubscribes[0]->filters, std::vector<std::string>{"ringmq/drop/+"});
  EXPECT_EQ(unsubscribes[1]->filters, std::vector<std::string>{"ringmq/drop2"});
  properties expected;
  if (is_v5(v)) expected.user_properties = {{"why", "cleanup"}};
  for (const auto* u : unsubscribes) {
    EXPECT_NE(u->packet_id, 0);
    EXPECT_EQ(u->props, expected);
  }
  EXPECT_NE(unsubscribes[0]->packet_id, unsubscribes[1]->packet_id);
}

INSTANTIATE_TEST_SUITE_P(Versions, MosquittoUnsubscribe,
                         ::testing::Values(protocol_version::v3_1, protocol_version::v3_1_1,
                                           protocol_version::v5),
                         [](const auto& info) { return version_tag(info.param); });

TEST(MosquittoSubV5, SubscriptionProperties) {
  ASSERT_NO_FATAL_FAILURE(require_program("mosquitto_sub", "mosquitto-clients"));
  capture_options options;
  options.payload = "tagged message";
  auto run = run_capture(
      {"mosquitto_sub", "-h", "127.0.0.1", "-p", "{port}", "-V", "mqttv5", "-i", "sub-v5-props",
       "-q", "1", "-t", "ringmq/sub5/#", "--retain-as-published", "-x", "600",
       "-D", "connect", "receive-maximum", "9",
       "-D", "connect", "user-property", "client", "mosquitto_sub",
       "-D", "subscribe", "subscription-identifier", "42",
       "-D", "subscribe", "user-property", "sub-key", "sub-value",
       // Prints the Subscription Identifier the server's PUBLISH carried.
       "-F", "%S %p", "-C", "1"},
      options, mosquitto_env());
  ASSERT_CLEAN_CAPTURE(run);
  const auto& conn = run.connections[0];
  EXPECT_EQ(run.client.out, "42 tagged message\n");
  ASSERT_EQ(names(types_of(conn)), "CONNECT SUBSCRIBE PUBACK DISCONNECT") << describe(conn);

  const auto& c = *packets_of<connect_packet>(conn)[0];
  properties connect_props;
  connect_props.session_expiry_interval = 600;
  connect_props.receive_maximum = 9;
  connect_props.user_properties = {{"client", "mosquitto_sub"}};
  EXPECT_EQ(c.props, connect_props);

  const auto subscribes = packets_of<subscribe_packet>(conn);
  ASSERT_EQ(subscribes.size(), 1u) << describe(conn);
  const auto& s = *subscribes[0];
  ASSERT_EQ(s.subscriptions.size(), 1u);
  EXPECT_EQ(s.subscriptions[0].filter, "ringmq/sub5/#");
  EXPECT_EQ(s.subscriptions[0].options,
            (subscribe_options{.max_qos = qos::at_least_once, .retain_as_published = true}));
  properties subscribe_props;
  subscribe_props.subscription_identifiers = {42};
  subscribe_props.user_properties = {{"sub-key", "sub-value"}};
  EXPECT_EQ(s.props, subscribe_props);
}

// libmosquitto's PINGREQ: keep-alive 5 s (its minimum), the server publishes only
// after the PINGREQ, so the client cannot finish without sending one.
TEST(MosquittoSubV311, KeepAlivePing) {
  ASSERT_NO_FATAL_FAILURE(require_program("mosquitto_sub", "mosquitto-clients"));
  capture_options options;
  options.trigger = publish_trigger::after_pingreq;
  auto child = mosquitto_env();
  child.timeout = 15s;  // the keep-alive itself takes 5 s
  auto run = run_capture({"mosquitto_sub", "-h", "127.0.0.1", "-p", "{port}", "-i", "sub-ping",
                          "-k", "5", "-t", "ringmq/ping", "-C", "1"},
                         options, child);
  ASSERT_CLEAN_CAPTURE(run);
  const auto& conn = run.connections[0];
  EXPECT_EQ(names(types_of(conn)), "CONNECT SUBSCRIBE PINGREQ DISCONNECT") << describe(conn);
  EXPECT_EQ(packets_of<connect_packet>(conn)[0]->keep_alive, 5);
}

// ---------------------------------------------------------------------------
// Paho for Python (tests/integration/clients/paho_capture_client.py): one
// session with every client packet type. The values below mirror the script.

class Paho : public ::testing::TestWithParam<protocol_version> {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(require_program(python, "python3"));
    ASSERT_EQ(run_child({python, "-c", "import paho.mqtt.client"}, python_env()).exit_code, 0)
        << python << " cannot import paho.mqtt: install the Debian package python3-paho-mqtt";
  }

  static child_options python_env() {
    child_options o;
    // Debian's paho, not one from a user site or PYTHONPATH; no .pyc in the source tree.
    o.unset_env = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"};
    o.set_env["PYTHONNOUSERSITE"] = "1";
    o.set_env["PYTHONDONTWRITEBYTECODE"] = "1";
    return o;
  }

  static std::string version_arg(protocol_version v) {
    switch (v) {
      case protocol_version::v3_1: return "3.1";
      case protocol_version::v3_1_1: return "3.1.1";
      case protocol_version::v5: return "5";
    }
    return "";
  }
};

TEST_P(Paho, FullSession) {
  const auto v = GetParam();
  const bool v5 = is_v5(v);
  const auto client_id = "paho-" + version_tag(v);
  capture_options options;
  options.trigger = publish_trigger::after_pingreq;
  options.payload = "message for paho";
  auto run = run_capture({python, paho_script, "127.0.0.1", "{port}", version_arg(v), client_id},
                         options, python_env());
  ASSERT_CLEAN_CAPTURE(run);
  const auto& conn = run.connections[0];

  const auto types = types_of(conn);
  ASSERT_GE(types.size(), 2u) << describe(conn);
  EXPECT_EQ(types.front(), packet_type::connect) << describe(conn);
  EXPECT_EQ(types.back(), packet_type::disconnect) << describe(conn);
  EXPECT_EQ(count_of(conn, packet_type::subscribe), 1u) << describe(conn);
  EXPECT_EQ(count_of(conn, packet_type::publish), v5 ? 4u : 3u) << describe(conn);
  EXPECT_EQ(count_of(conn, packet_type::pubrel), 1u) << describe(conn);
  EXPECT_EQ(count_of(conn, packet_type::pubrec), 1u) << describe(conn);
  EXPECT_EQ(count_of(conn, packet_type::pubcomp), 1u) << describe(conn);
  EXPECT_GE(count_of(conn, packet_type::pingreq), 1u) << describe(conn);
  EXPECT_EQ(count_of(conn, packet_type::unsubscribe), 1u) << describe(conn);

  // CONNECT
  const auto& c = *packets_of<connect_packet>(conn)[0];
  EXPECT_EQ(c.version, v);
  EXPECT_EQ(c.client_id, client_id);
  EXPECT_EQ(c.keep_alive, 1);
  EXPECT_FALSE(c.clean_start);
  EXPECT_EQ(c.username, "paho-user");
  EXPECT_EQ(c.password, "paho-pass");
  ASSERT_TRUE(c.will);
  EXPECT_EQ(c.will->topic, "ringmq/paho/will");
  EXPECT_EQ(c.will->payload, "paho will payload");
  EXPECT_EQ(c.will->qos, qos::exactly_once);
  EXPECT_TRUE(c.will->retain);
  properties connect_props;
  properties will_props;
  if (v5) {
    connect_props.session_expiry_interval = 300;
    connect_props.receive_maximum = 20;
    connect_props.maximum_packet_size = 1048576;
    connect_props.topic_alias_maximum = 5;
    connect_props.request_response_information = 1;
    connect_props.request_problem_information = 0;
    connect_props.user_properties = {{"connect-key", "one"}, {"connect-key", "two"}};
    will_props.will_delay_interval = 10;
    will_props.message_expiry_interval = 3600;
    will_props.content_type = "text/plain";
    will_props.response_topic = "ringmq/paho/will-reply";
    will_props.correlation_data = "will-correlation";
    will_props.payload_format_indicator = 1;
    will_props.user_properties = {{"will-key", "will-value"}};
  }
  EXPECT_EQ(c.props, connect_props);
  EXPECT_EQ(c.will->props, will_props);

  // SUBSCRIBE
  const auto& s = *packets_of<subscribe_packet>(conn)[0];
  ASSERT_EQ(s.subscriptions.size(), 3u);
  EXPECT_EQ(s.subscriptions[0].filter, "ringmq/paho/+");
  EXPECT_EQ(s.subscriptions[1].filter, "ringmq/paho/b/#");
  EXPECT_EQ(s.subscriptions[2].filter, v5 ? "$share/grp/ringmq/paho/c" : "ringmq/paho/c");
  if (v5) {
    EXPECT_EQ(s.subscriptions[0].options,
              (subscribe_options{.max_qos = qos::exactly_once, .no_local = true,
                                 .retain_as_published = true, .retain_handling = 1}));
    EXPECT_EQ(s.subscriptions[1].options,
              (subscribe_options{.max_qos = qos::at_least_once, .retain_handling = 2}));
  } else {
    EXPECT_EQ(s.subscriptions[0].options, (subscribe_options{.max_qos = qos::exactly_once}));
    EXPECT_EQ(s.subscriptions[1].options, (subscribe_options{.max_qos = qos::at_least_once}));
  }
  EXPECT_EQ(s.subscriptions[2].options, (subscribe_options{.max_qos = qos::at_most_once}));
  properties subscribe_props;
  if (v5) {
    subscribe_props.subscription_identifiers = {7};
    subscribe_props.user_properties = {{"sub-key", "sub-value"}};
  }
  EXPECT_EQ(s.props, subscribe_props);

  // PUBLISH at QoS 0, 1 and 2 (and in 5.0 once more by Topic Alias only)
  const auto publishes = packets_of<publish_packet>(conn);
  ASSERT_EQ(publishes.size(), v5 ? 4u : 3u);
  const auto& p0 = *publishes[0];
  EXPECT_EQ(p0.topic, "ringmq/paho/q0");
  EXPECT_EQ(p0.payload, "payload at qos 0");
  EXPECT_EQ(p0.qos, qos::at_most_once);
  EXPECT_FALSE(p0.retain);
  const auto& p1 = *publishes[1];
  EXPECT_EQ(p1.topic, "ringmq/paho/q1");
  EXPECT_EQ(p1.payload, "payload at qos 1");
  EXPECT_EQ(p1.qos, qos::at_least_once);
  EXPECT_TRUE(p1.retain);
  const auto& p2 = *publishes[2];
  EXPECT_EQ(p2.topic, "ringmq/paho/q2");
  EXPECT_EQ(p2.payload, std::string("\x00\x01\xfe\xff binary at qos 2", 20));
  EXPECT_EQ(p2.qos, qos::exactly_once);
  EXPECT_EQ(packets_of<pubrel_packet>(conn)[0]->packet_id, p2.packet_id);
  properties alias_props;
  properties p1_props;
  properties p2_props;
  if (v5) {
    alias_props.topic_alias = 2;
    p1_props.payload_format_indicator = 1;
    p1_props.message_expiry_interval = 60;
    p1_props.content_type = "application/octet-stream";
    p1_props.response_topic = "ringmq/paho/reply";
    p1_props.correlation_data = std::string("\x01\x02" "correlation", 13);
    p1_props.user_properties = {{"k1", "v1"}, {"k2", "v2"}};
    p2_props.user_properties = {{"only", "one"}};
    const auto& by_alias = *publishes[3];
    EXPECT_EQ(by_alias.topic, "");
    EXPECT_EQ(by_alias.payload, "payload by alias");
    EXPECT_EQ(by_alias.props, alias_props);
  }
  EXPECT_EQ(p0.props, alias_props);
  EXPECT_EQ(p1.props, p1_props);
  EXPECT_EQ(p2.props, p2_props);

  // The acknowledgements of the server's QoS 2 PUBLISH (packet identifier 1).
  EXPECT_EQ(packets_of<pubrec_packet>(conn)[0]->packet_id, 1);
  EXPECT_EQ(packets_of<pubcomp_packet>(conn)[0]->packet_id, 1);

  // UNSUBSCRIBE
  const auto& u = *packets_of<unsubscribe_packet>(conn)[0];
  EXPECT_EQ(u.filters, (std::vector<std::string>{"ringmq/paho/b/#", v5 ? "$share/grp/ringmq/paho/c"
                                                                        : "ringmq/paho/c"}));
  properties unsubscribe_props;
  if (v5) unsubscribe_props.user_properties = {{"unsub-key", "unsub-value"}};
  EXPECT_EQ(u.props, unsubscribe_props);

  // DISCONNECT
  const auto& d = *packets_of<disconnect_packet>(conn)[0];
  properties disconnect_props;
  if (v5) {
    EXPECT_EQ(d.code, reason_code::disconnect_with_will_message);
    disconnect_props.session_expiry_interval = 60;
    disconnect_props.reason_string = "capture done";
    disconnect_props.user_properties = {{"bye", "now"}};
  } else {
    EXPECT_EQ(d.code, reason_code::success);
  }
  EXPECT_EQ(d.props, disconnect_props);
}

INSTANTIATE_TEST_SUITE_P(Versions, Paho,
                         ::testing::Values(protocol_version::v3_1, protocol_version::v3_1_1,
                                           protocol_version::v5),
                         [](const auto& info) { return version_tag(info.param); });

}  // namespace
}  // namespace ringmq::testing
