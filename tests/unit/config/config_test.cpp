// The configuration loader: defaults, YAML files, RINGMQ_* environment variables and --set,
// their precedence, and errors that name the key, the source and the file line.

#include "broker/config/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace ringmq::config {
namespace {

namespace fs = std::filesystem;

// Test YAML is written as R"(...)" with a newline after the opening parenthesis, so the text
// lines up with the line numbers it is checked against: that first newline is dropped.
std::string yaml(std::string_view text) {
  if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  return std::string(text);
}

std::string host_name() {
  char buffer[HOST_NAME_MAX + 1] = {};
  gethostname(buffer, sizeof buffer - 1);
  return buffer;
}

// "FILE:LINE" as errors print it, or just "FILE" when there is no line.
std::string located(const std::string& path, int line) {
  return line > 0 ? path + ":" + std::to_string(line) : path;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

config defaults() {
  config c;
  c.node.id = host_name();
  listener_config l;
  l.name = "mqtt:127.0.0.1:1883";
  c.listeners.push_back(l);
  return c;
}

class Config : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "ringmq-config-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& content, const std::string& name = "ringmq.yaml") {
    auto path = (dir_ / name).string();
    std::ofstream(path) << content;
    return path;
  }

  load_result load_yaml(const std::string& content, std::vector<std::string> environment = {},
                        std::vector<std::string> set = {}) {
    return load({write(content), std::move(set), std::move(environment)});
  }

  config value_of(const load_result& result) {
    if (result.error) ADD_FAILURE() << "unexpected error: " << result.error->to_string();
    return result.value.value_or(config{});
  }

  config_error error_of(const load_result& result) {
    if (result.value) ADD_FAILURE() << "loaded, but an error was expected";
    return result.error.value_or(config_error{});
  }

  fs::path dir_;
};

// ---------------------------------------------------------------------------------------------
// Defaults

TEST_F(Config, NoSourcesGiveTheDocumentedDefaults) {
  auto c = value_of(load({}));
  EXPECT_EQ(c, defaults());

  EXPECT_EQ(c.node.id, host_name());
  EXPECT_EQ(c.node.data_dir, "./data");
  EXPECT_EQ(c.node.workers, 0u);
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].type, listener_type::mqtt);
  EXPECT_EQ(c.listeners[0].bind, "127.0.0.1:1883");
  EXPECT_EQ(c.listeners[0].name, "mqtt:127.0.0.1:1883");
  EXPECT_EQ(c.http.bind, "127.0.0.1:8080");
  EXPECT_EQ(c.http.admin_token, "");
  EXPECT_FALSE(c.auth.allow_anonymous.has_value());
  EXPECT_TRUE(c.auth.anonymous_allowed());
  EXPECT_EQ(c.mqtt.max_packet_size, 268'435'455u);
  EXPECT_EQ(c.mqtt.max_inflight, 20u);
  EXPECT_EQ(c.mqtt.max_queued_messages, 1000u);
  EXPECT_EQ(c.mqtt.max_keepalive, 65535u);
  EXPECT_EQ(c.mqtt.max_session_expiry, 4'294'967'295u);
  EXPECT_TRUE(c.mqtt.allow_zero_length_clientid);
  EXPECT_EQ(c.storage.durability, durability::batch);
  EXPECT_TRUE(c.cluster.bind.empty());
  EXPECT_TRUE(c.cluster.seeds.empty());
  EXPECT_EQ(c.cluster.replication_factor, 3u);
  EXPECT_TRUE(c.cluster.replicate_sessions) << "persistent sessions are replicated when clustered";
  EXPECT_EQ(c.cluster.vnodes, 128u);
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.log.format, log_format::text);
}

TEST_F(Config, EmptyFileIsValid) {
  EXPECT_EQ(value_of(load_yaml("")), defaults());
  EXPECT_EQ(value_of(load_yaml("# nothing but a comment\n")), defaults());
  EXPECT_EQ(value_of(load_yaml("---\n")), defaults());
}

TEST_F(Config, EmptySectionsKeepTheirDefaults) {
  EXPECT_EQ(value_of(load_yaml("node:\nmqtt:\ncluster:\nlog:\n")), defaults());
}

TEST_F(Config, AllowAnonymousStaysUnsetUnlessGiven) {
  auto unset =
      value_of(load_yaml("auth:\n  allow_anonymous:\n  password_file: /etc/ringmq/passwd\n"));
  EXPECT_FALSE(unset.auth.allow_anonymous.has_value());
  EXPECT_FALSE(unset.auth.anonymous_allowed());

  auto set =
      value_of(load_yaml("auth:\n  allow_anonymous: true\n  password_file: /etc/ringmq/passwd\n"));
  EXPECT_EQ(set.auth.allow_anonymous, true);
  EXPECT_TRUE(set.auth.anonymous_allowed());
}

TEST_F(Config, ListenerNameDefaultsToTypeAndBind) {
  auto c = value_of(load_yaml(yaml(R"(
listeners:
  - {type: mqtt, bind: "0.0.0.0:1883"}
  - {type: ws, bind: "0.0.0.0:8083", name: websocket}
)")));
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].name, "mqtt:0.0.0.0:1883");
  EXPECT_EQ(c.listeners[1].name, "websocket");
  EXPECT_EQ(c.listeners[1].path, "/mqtt");
}

// ---------------------------------------------------------------------------------------------
// Every key

TEST_F(Config, EveryKeyIsParsed) {
  auto c = value_of(load_yaml(yaml(R"(
node:
  id: n7
  data_dir: /var/lib/ringmq
  workers: 3
listeners:
  - type: mqtt
    bind: "0.0.0.0:1883"
    max_connections: 1000
  - type: mqtts
    bind: "0.0.0.0:8883"
    name: secure
    cert_file: /etc/ringmq/server.crt
    key_file: /etc/ringmq/server.key
    ca_file: /etc/ringmq/ca.crt
    require_client_cert: true
    use_identity_as_username: true
  - type: ws
    bind: "[::1]:8083"
    path: /ws
  - {type: wss, bind: "127.0.0.1:0", path: /mqtt, cert_file: s.crt, key_file: s.key}
http:
  bind: "0.0.0.0:9090"
  admin_token: "s3cret#token"
auth:
  allow_anonymous: false
  password_file: /etc/ringmq/passwd
  acl_file: /etc/ringmq/acl
mqtt:
  max_packet_size: 1048576
  max_inflight: 50
  max_queued_messages: 5000
  max_keepalive: 600
  max_session_expiry: 86400
  allow_zero_length_clientid: false
  max_connections: 100000
  max_subscriptions_per_client: 64
  max_topic_alias: 10
  connect_timeout_ms: 5000
  max_client_id_length: 128
  max_outbound_bytes: 65536
  retain_available: false
  sys_interval_s: 0
storage:
  durability: sync
  max_store_bytes: 10737418240
cluster:
  bind: "0.0.0.0:7946"
  advertise: "10.0.0.7:7946"
  seeds: ["10.0.0.5:7946", "10.0.0.6:7946"]
  dns: "ringmq-headless.mq.svc.cluster.local:7946"
  replication_factor: 3
  vnodes: 256
log:
  level: debug
  format: json
)")));

  config expected;
  expected.node = {"n7", "/var/lib/ringmq", 3};

  listener_config plain;
  plain.bind = "0.0.0.0:1883";
  plain.name = "mqtt:0.0.0.0:1883";
  plain.max_connections = 1000;
  listener_config tls;
  tls.type = listener_type::mqtts;
  tls.bind = "0.0.0.0:8883";
  tls.name = "secure";
  tls.cert_file = "/etc/ringmq/server.crt";
  tls.key_file = "/etc/ringmq/server.key";
  tls.ca_file = "/etc/ringmq/ca.crt";
  tls.require_client_cert = true;
  tls.use_identity_as_username = true;
  listener_config ws;
  ws.type = listener_type::ws;
  ws.bind = "[::1]:8083";
  ws.name = "ws:[::1]:8083";
  ws.path = "/ws";
  listener_config wss;
  wss.type = listener_type::wss;
  wss.bind = "127.0.0.1:0";
  wss.name = "wss:127.0.0.1:0";
  wss.cert_file = "s.crt";
  wss.key_file = "s.key";
  expected.listeners = {plain, tls, ws, wss};

  expected.http = {"0.0.0.0:9090", "s3cret#token"};
  expected.auth.allow_anonymous = false;
  expected.auth.password_file = "/etc/ringmq/passwd";
  expected.auth.acl_file = "/etc/ringmq/acl";

  auto& m = expected.mqtt;
  m.max_packet_size = 1'048'576;
  m.max_inflight = 50;
  m.max_queued_messages = 5000;
  m.max_keepalive = 600;
  m.max_session_expiry = 86400;
  m.allow_zero_length_clientid = false;
  m.max_connections = 100'000;
  m.max_subscriptions_per_client = 64;
  m.max_topic_alias = 10;
  m.connect_timeout_ms = 5000;
  m.max_client_id_length = 128;
  m.max_outbound_bytes = 65536;
  m.retain_available = false;
  m.sys_interval_s = 0;

  expected.storage = {durability::sync, 10'737'418'240ull};
  expected.cluster.bind = "0.0.0.0:7946";
  expected.cluster.advertise = "10.0.0.7:7946";
  expected.cluster.seeds = {"10.0.0.5:7946", "10.0.0.6:7946"};
  expected.cluster.dns = "ringmq-headless.mq.svc.cluster.local:7946";
  expected.cluster.replication_factor = 3;
  expected.cluster.vnodes = 256;
  expected.log = {"debug", log_format::json};

  // Field by field first, so a failure names the key; then the whole value.
  EXPECT_EQ(c.node, expected.node);
  ASSERT_EQ(c.listeners.size(), expected.listeners.size());
  for (std::size_t i = 0; i < c.listeners.size(); ++i) {
    EXPECT_EQ(c.listeners[i], expected.listeners[i]) << "listeners[" << i << "]";
  }
  EXPECT_EQ(c.http, expected.http);
  EXPECT_EQ(c.auth, expected.auth);
  EXPECT_EQ(c.mqtt, expected.mqtt);
  EXPECT_EQ(c.storage, expected.storage);
  EXPECT_EQ(c.cluster, expected.cluster);
  EXPECT_EQ(c.log, expected.log);
  EXPECT_EQ(c, expected);
}

TEST_F(Config, RangeLimitsAreInclusive) {
  auto low = value_of(load_yaml(yaml(R"(
mqtt: {max_packet_size: 1, max_inflight: 1, max_client_id_length: 23, max_keepalive: 1}
cluster: {replication_factor: 1, vnodes: 1}
)")));
  EXPECT_EQ(low.mqtt.max_packet_size, 1u);
  EXPECT_EQ(low.mqtt.max_inflight, 1u);
  EXPECT_EQ(low.cluster.vnodes, 1u);
  auto high = value_of(load_yaml(yaml(R"(
mqtt: {max_packet_size: 268435455, max_inflight: 65535, max_session_expiry: 4294967295}
cluster: {vnodes: 4096}
storage: {max_store_bytes: 18446744073709551615}
)")));
  EXPECT_EQ(high.mqtt.max_inflight, 65535u);
  EXPECT_EQ(high.mqtt.max_session_expiry, 4'294'967'295u);
  EXPECT_EQ(high.cluster.vnodes, 4096u);
  EXPECT_EQ(high.storage.max_store_bytes, 18'446'744'073'709'551'615ull);
}

TEST_F(Config, BooleansAcceptCoreSchemaSpellings) {
  auto c =
      value_of(load_yaml("mqtt: {retain_available: False, allow_zero_length_clientid: TRUE}\n"));
  EXPECT_FALSE(c.mqtt.retain_available);
  EXPECT_TRUE(c.mqtt.allow_zero_length_clientid);
}

// ---------------------------------------------------------------------------------------------
// Precedence: defaults < file < environment < --set

TEST_F(Config, PrecedenceIsDefaultsFileEnvironmentSet) {
  auto file = write("mqtt:\n  max_inflight: 30\n  max_keepalive: 300\nnode:\n  id: from-file\n");
  std::vector<std::string> env{"RINGMQ_MQTT__MAX_INFLIGHT=40", "RINGMQ_NODE__ID=from-env"};
  std::vector<std::string> set{"mqtt.max_inflight=50"};

  auto all = value_of(load({file, set, env}));
  EXPECT_EQ(all.mqtt.max_inflight, 50u);    // --set beats the environment
  EXPECT_EQ(all.node.id, "from-env");       // the environment beats the file
  EXPECT_EQ(all.mqtt.max_keepalive, 300u);  // the file beats the defaults
  EXPECT_EQ(all.mqtt.max_queued_messages, 1000u);

  EXPECT_EQ(value_of(load({file, {}, env})).mqtt.max_inflight, 40u);
  EXPECT_EQ(value_of(load({file, {}, {}})).mqtt.max_inflight, 30u);
  EXPECT_EQ(value_of(load({"", {}, env})).mqtt.max_inflight, 40u);
  EXPECT_EQ(value_of(load({"", set, {}})).mqtt.max_inflight, 50u);
  EXPECT_EQ(value_of(load({"", {}, {}})).mqtt.max_inflight, 20u);
}

TEST_F(Config, LaterSetOverridesWinAndSectionsMerge) {
  auto c =
      value_of(load({write("mqtt: {max_inflight: 30, max_keepalive: 300}\n"),
                     {"mqtt.max_inflight=5", "mqtt.max_inflight=6", "mqtt={max_topic_alias: 0}"},
                     {"RINGMQ_MQTT={max_queued_messages: 7}"}}));
  EXPECT_EQ(c.mqtt.max_inflight, 6u);
  EXPECT_EQ(c.mqtt.max_keepalive, 300u);
  EXPECT_EQ(c.mqtt.max_queued_messages, 7u);
  EXPECT_EQ(c.mqtt.max_topic_alias, 0u);
}

TEST_F(Config, EnvironmentAndSetEditListenersFromTheFile) {
  auto file = write(yaml(R"(
listeners:
  - {type: mqtt, bind: "127.0.0.1:1883"}
  - {type: ws, bind: "127.0.0.1:8083"}
)"));
  auto c =
      value_of(load({file, {"listeners[1].path=/ws"}, {"RINGMQ_LISTENERS__1__BIND=0.0.0.0:9001"}}));
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].bind, "127.0.0.1:1883");
  EXPECT_EQ(c.listeners[1].bind, "0.0.0.0:9001");
  EXPECT_EQ(c.listeners[1].path, "/ws");
  EXPECT_EQ(c.listeners[1].name, "ws:0.0.0.0:9001");
}

TEST_F(Config, ListsFromALaterSourceReplaceEarlierOnes) {
  auto file = write(yaml(R"(
listeners:
  - {type: mqtt, bind: "127.0.0.1:1883"}
  - {type: ws, bind: "127.0.0.1:8083"}
cluster:
  bind: "127.0.0.1:7946"
  seeds: ["a:1", "b:2", "c:3"]
)"));
  auto c = value_of(load({file,
                          {"cluster.seeds=[d:4]"},
                          {"RINGMQ_LISTENERS=[{type: mqtt, bind: \"127.0.0.1:2883\"}]",
                           "RINGMQ_CLUSTER__SEEDS=x:1,y:2"}}));
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].bind, "127.0.0.1:2883");
  EXPECT_EQ(c.cluster.seeds, std::vector<std::string>{"d:4"});
}

// ---------------------------------------------------------------------------------------------
// The environment

TEST_F(Config, EnvironmentCommaListsAndFlowSequences) {
  auto comma = value_of(load(
      {"",
       {},
       {"RINGMQ_CLUSTER__BIND=0.0.0.0:7946", "RINGMQ_CLUSTER__SEEDS=a:1, b:2 ,10.0.0.3:7946"}}));
  EXPECT_EQ(comma.cluster.seeds, (std::vector<std::string>{"a:1", "b:2", "10.0.0.3:7946"}));

  auto flow = value_of(load(
      {"", {}, {"RINGMQ_CLUSTER__BIND=0.0.0.0:7946", "RINGMQ_CLUSTER__SEEDS=[a:1, \"[::1]:2\"]"}}));
  EXPECT_EQ(flow.cluster.seeds, (std::vector<std::string>{"a:1", "[::1]:2"}));

  auto empty = value_of(load({"", {}, {"RINGMQ_CLUSTER__SEEDS="}}));
  EXPECT_TRUE(empty.cluster.seeds.empty());
}

TEST_F(Config, EnvironmentListenersAsFlowSequence) {
  auto c = value_of(load({"",
                          {},
                          {"RINGMQ_LISTENERS=[{type: mqtt, bind: \"0.0.0.0:1883\"}, "
                           "{type: ws, bind: \"0.0.0.0:8083\", path: /mqtt}]"}}));
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].type, listener_type::mqtt);
  EXPECT_EQ(c.listeners[0].bind, "0.0.0.0:1883");
  EXPECT_EQ(c.listeners[1].type, listener_type::ws);
  EXPECT_EQ(c.listeners[1].name, "ws:0.0.0.0:8083");
}

TEST_F(Config, EnvironmentWholeListsApplyBeforeTheirItems) {
  // Listed item first: the list must still be applied first, or it would erase the item.
  auto c = value_of(load({"",
                          {},
                          {"RINGMQ_LISTENERS__0__BIND=127.0.0.1:0",
                           "RINGMQ_LISTENERS=[{type: ws, bind: \"0.0.0.0:8083\"}]"}}));
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].type, listener_type::ws);
  EXPECT_EQ(c.listeners[0].bind, "127.0.0.1:0");
}

TEST_F(Config, EnvironmentKeyNamesIgnoreCase) {
  auto c = value_of(load({"", {}, {"RINGMQ_mqtt__Max_Inflight=7", "RINGMQ_LOG__LEVEL=warn"}}));
  EXPECT_EQ(c.mqtt.max_inflight, 7u);
  EXPECT_EQ(c.log.level, "warn");
}

TEST_F(Config, EnvironmentStringsAreVerbatimUnlessQuoted) {
  auto c = value_of(load({"",
                          {},
                          {"RINGMQ_HTTP__ADMIN_TOKEN=#not:a comment", "RINGMQ_NODE__ID=\"n2\"",
                           "RINGMQ_HTTP__BIND=[::1]:8080"}}));
  EXPECT_EQ(c.http.admin_token, "#not:a comment");
  EXPECT_EQ(c.node.id, "n2");
  EXPECT_EQ(c.http.bind, "[::1]:8080");
}

TEST_F(Config, EnvironmentEmptyValueUnsetsAnOptional) {
  auto c = value_of(
      load({write("auth:\n  allow_anonymous: false\n"), {}, {"RINGMQ_AUTH__ALLOW_ANONYMOUS="}}));
  EXPECT_FALSE(c.auth.allow_anonymous.has_value());
  auto f = value_of(load({"", {}, {"RINGMQ_AUTH__ALLOW_ANONYMOUS=false"}}));
  EXPECT_EQ(f.auth.allow_anonymous, false);
}

TEST_F(Config, OtherEnvironmentVariablesAreIgnored) {
  auto c = value_of(load({"",
                          {},
                          {"PATH=/usr/bin", "HOME=/root", "ringmq_node__id=lower", "RINGMQ",
                           "RINGMQX_NODE__ID=x", "NOT_RINGMQ_NODE__ID=y"}}));
  EXPECT_EQ(c, defaults());
}

// ---------------------------------------------------------------------------------------------
// --set

TEST_F(Config, SetListItemOfTheDefaultListener) {
  auto c = value_of(load({"", {"listeners[0].bind=127.0.0.1:0"}, {}}));
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].bind, "127.0.0.1:0");
  EXPECT_EQ(c.listeners[0].name, "mqtt:127.0.0.1:0");
}

TEST_F(Config, SetAtTheEndOfTheListAddsAListener) {
  auto c = value_of(load({"",
                          {"listeners[1].type=ws", "listeners[1].bind=127.0.0.1:0",
                           "listeners.2.type=wss", "listeners.2.bind=127.0.0.1:0",
                           "listeners[2].cert_file=s.crt", "listeners[2].key_file=s.key"},
                          {}}));
  ASSERT_EQ(c.listeners.size(), 3u);
  EXPECT_EQ(c.listeners[0].bind, "127.0.0.1:1883");
  EXPECT_EQ(c.listeners[1].type, listener_type::ws);
  EXPECT_EQ(c.listeners[1].bind, "127.0.0.1:0");
  EXPECT_EQ(c.listeners[1].path, "/mqtt");
  EXPECT_EQ(c.listeners[2].type, listener_type::wss);
  EXPECT_EQ(c.listeners[2].cert_file, "s.crt");
}

TEST_F(Config, SetReplacesAWholeListenerOrList) {
  auto one =
      value_of(load({write("listeners:\n  - {type: mqtt, bind: \"127.0.0.1:1883\", name: a}\n"),
                     {"listeners[0]={type: ws, bind: \"127.0.0.1:9001\", path: /x}"},
                     {}}));
  ASSERT_EQ(one.listeners.size(), 1u);
  EXPECT_EQ(one.listeners[0].type, listener_type::ws);
  EXPECT_EQ(one.listeners[0].path, "/x");
  EXPECT_EQ(one.listeners[0].name, "ws:127.0.0.1:9001");  // the old name went with the old listener

  auto all = value_of(load({"",
                            {"listeners=[{type: mqtt, bind: \"127.0.0.1:1\"}, "
                             "{type: ws, bind: \"127.0.0.1:2\"}]"},
                            {}}));
  ASSERT_EQ(all.listeners.size(), 2u);
  EXPECT_EQ(all.listeners[1].bind, "127.0.0.1:2");
}

TEST_F(Config, SetValuesAreYaml) {
  auto c = value_of(load({"",
                          {"cluster.bind=127.0.0.1:0", "cluster.seeds=[a:1,b:2]",
                           "auth.allow_anonymous=false", "mqtt.retain_available=false",
                           "http.admin_token=", "node.id='quoted'", "storage.durability=none"},
                          {}}));
  EXPECT_EQ(c.cluster.seeds, (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(c.auth.allow_anonymous, false);
  EXPECT_FALSE(c.mqtt.retain_available);
  EXPECT_EQ(c.http.admin_token, "");
  EXPECT_EQ(c.node.id, "quoted");
  EXPECT_EQ(c.storage.durability, durability::none);
}

TEST_F(Config, SetEmptyOptionalIsUnset) {
  auto c =
      value_of(load({write("auth: {allow_anonymous: true}\n"), {"auth.allow_anonymous="}, {}}));
  EXPECT_FALSE(c.auth.allow_anonymous.has_value());
}

// ---------------------------------------------------------------------------------------------
// Errors in the file: key, line and message

struct file_error_case {
  std::string name;
  std::string yaml;
  std::string key;
  int line;
  std::string message;  // a part of the message
};

void PrintTo(const file_error_case& c, std::ostream* os) { *os << c.name; }

class FileError : public Config, public ::testing::WithParamInterface<file_error_case> {};

TEST_P(FileError, NamesKeyAndLine) {
  const auto& c = GetParam();
  auto path = write(c.yaml);
  auto e = error_of(load({path, {}, {}}));
  EXPECT_EQ(e.key, c.key);
  EXPECT_EQ(e.line, c.line);
  EXPECT_EQ(e.source, path);
  EXPECT_NE(e.message.find(c.message), std::string::npos) << e.message;
  auto prefix = located(path, c.line) + ": " + (c.key.empty() ? "" : c.key + ": ");
  EXPECT_EQ(e.to_string(), prefix + e.message);
}

// clang-format off
INSTANTIATE_TEST_SUITE_P(Config, FileError, ::testing::Values(
  file_error_case{"unknown_section", yaml(R"(
node:
  id: n1
nodes:
  id: n2
)"), "nodes", 3, "unknown key"},
  file_error_case{"unknown_nested_key", yaml(R"(
node:
  id: a
mqtt:
  max_inflight: 5
  max_inflght: 6
)"), "mqtt.max_inflght", 5, "unknown key"},
  file_error_case{"unknown_listener_key", yaml(R"(
listeners:
  - type: mqtt
    bind: "127.0.0.1:1883"
  - type: ws
    bnd: "127.0.0.1:8083"
)"), "listeners[1].bnd", 5, "unknown key"},
  file_error_case{"not_an_integer", "mqtt:\n  max_inflight: lots\n",
                  "mqtt.max_inflight", 2, "expected an integer from 1 to 65535"},
  file_error_case{"integer_is_a_list", "mqtt:\n  max_inflight: [1]\n",
                  "mqtt.max_inflight", 2, "expected an integer from 1 to 65535"},
  file_error_case{"integer_is_null", "mqtt:\n  max_keepalive: 60\n  max_inflight:\nlog: {}\n",
                  "mqtt.max_inflight", 3, "expected an integer from 1 to 65535"},
  file_error_case{"negative", "mqtt:\n  max_inflight: -1\n",
                  "mqtt.max_inflight", 2, "expected an integer from 1 to 65535"},
  file_error_case{"fraction", "mqtt:\n  max_inflight: 2.5\n",
                  "mqtt.max_inflight", 2, "expected an integer"},
  file_error_case{"max_inflight_zero", "mqtt:\n  max_inflight: 0\n",
                  "mqtt.max_inflight", 2, "expected an integer from 1 to 65535"},
  file_error_case{"max_inflight_too_big", "mqtt:\n  max_inflight: 65536\n",
                  "mqtt.max_inflight", 2, "expected an integer from 1 to 65535"},
  file_error_case{"max_packet_size_too_big", "\n\nmqtt: {max_packet_size: 268435456}\n",
                  "mqtt.max_packet_size", 3, "expected an integer from 1 to 268435455"},
  file_error_case{"max_packet_size_zero", "mqtt:\n  max_packet_size: 0\n",
                  "mqtt.max_packet_size", 2, "from 1 to 268435455"},
  file_error_case{"huge_number", "storage:\n  max_store_bytes: 18446744073709551616\n",
                  "storage.max_store_bytes", 2, "expected an integer"},
  file_error_case{"client_id_below_mqtt_minimum", "mqtt:\n  max_client_id_length: 22\n",
                  "mqtt.max_client_id_length", 2, "from 23 to 65535"},
  file_error_case{"vnodes_zero", "cluster:\n  vnodes: 0\n", "cluster.vnodes", 2, "from 1 to 4096"},
  file_error_case{"vnodes_too_many", "cluster:\n  vnodes: 4097\n", "cluster.vnodes", 2,
                  "from 1 to 4096"},
  file_error_case{"replication_factor_zero", "cluster:\n  replication_factor: 0\n",
                  "cluster.replication_factor", 2, "expected an integer from 1"},
  file_error_case{"section_not_a_map", "node: {}\nmqtt: 5\n", "mqtt", 2, "expected a map"},
  file_error_case{"durability", "storage:\n  durability: fast\n", "storage.durability", 2,
                  "expected one of sync, batch, none"},
  file_error_case{"log_level", "log:\n  level: verbose\n", "log.level", 2,
                  "expected one of trace, debug, info, warn, error"},
  file_error_case{"log_format", "log:\n  format: xml\n", "log.format", 2,
                  "expected one of text, json"},
  file_error_case{"listener_type", "listeners:\n  - type: tcp\n", "listeners[0].type", 2,
                  "expected one of mqtt, mqtts, ws, wss"},
  file_error_case{"boolean_yes", "mqtt:\n  retain_available: yes\n", "mqtt.retain_available", 2,
                  "expected true or false"},
  file_error_case{"boolean_number", "auth:\n  allow_anonymous: 1\n", "auth.allow_anonymous", 2,
                  "expected true or false"},
  file_error_case{"bind_without_port", "listeners:\n  - type: mqtt\n    bind: localhost\n",
                  "listeners[0].bind", 3, "expected host:port"},
  file_error_case{"bind_port_too_big", yaml(R"(
listeners:
  - {type: mqtt, bind: "127.0.0.1:1883"}
  - {type: mqtt, bind: "127.0.0.1:70000"}
)"), "listeners[1].bind", 3, "port from 0 to 65535"},
  file_error_case{"bind_empty", "listeners:\n  - {type: mqtt, bind: \"\"}\n",
                  "listeners[0].bind", 2, "expected host:port"},
  file_error_case{"http_bind", "http:\n  bind: 8080\n", "http.bind", 2, "expected host:port"},
  file_error_case{"mqtts_without_cert", yaml(R"(
listeners:
  - type: mqtt
    bind: "127.0.0.1:1883"
  - type: mqtts
    bind: "127.0.0.1:8883"
    key_file: server.key
)"), "listeners[1].cert_file", 4, "required for mqtts listeners"},
  file_error_case{"wss_without_key", yaml(R"(
listeners:
  - {type: wss, bind: "127.0.0.1:8084", cert_file: s.crt}
)"), "listeners[0].key_file", 2, "required for wss listeners"},
  file_error_case{"client_cert_without_ca", yaml(R"(
listeners:
  - type: mqtts
    bind: "127.0.0.1:8883"
    cert_file: s.crt
    key_file: s.key
    require_client_cert: true
)"), "listeners[0].ca_file", 6, "required when require_client_cert is true"},
  file_error_case{"identity_without_client_cert", yaml(R"(
listeners:
  - type: mqtts
    bind: "127.0.0.1:8883"
    cert_file: s.crt
    key_file: s.key
    use_identity_as_username: true
)"), "listeners[0].use_identity_as_username", 6, "needs require_client_cert"},
  file_error_case{"tls_key_on_plain_listener", yaml(R"(
listeners:
  - type: mqtt
    bind: "127.0.0.1:1883"
    cert_file: s.crt
)"), "listeners[0].cert_file", 4, "only for mqtts and wss listeners, not mqtt"},
  file_error_case{"path_on_plain_listener", yaml(R"(
listeners:
  - type: mqtt
    bind: "127.0.0.1:1883"
    path: /mqtt
)"), "listeners[0].path", 4, "only for ws and wss listeners"},
  file_error_case{"ws_path_without_slash", yaml(R"(
listeners:
  - type: ws
    bind: "127.0.0.1:8083"
    path: mqtt
)"), "listeners[0].path", 4, "must start with '/'"},
  file_error_case{"duplicate_bind", yaml(R"(
listeners:
  - {type: mqtt, bind: "127.0.0.1:1883"}
  - {type: ws, bind: "127.0.0.1:1883"}
)"), "listeners[1].bind", 3, "already used by listeners[0].bind"},
  file_error_case{"http_on_a_listener_address", yaml(R"(
listeners:
  - {type: mqtt, bind: "127.0.0.1:8080"}
)"), "listeners[0].bind", 2, "already used by http.bind"},
  file_error_case{"duplicate_name", yaml(R"(
listeners:
  - {type: mqtt, bind: "127.0.0.1:1883", name: main}
  - {type: ws, bind: "127.0.0.1:8083", name: main}
)"), "listeners[1].name", 3, "also the name of listeners[0]"},
  file_error_case{"no_listeners", "node: {id: a}\nlisteners: []\n", "listeners", 2,
                  "at least one listener is required"},
  file_error_case{"listeners_not_a_list", "listeners:\n  type: mqtt\n", "listeners", 2,
                  "expected a list of listeners"},
  file_error_case{"listener_not_a_map", "listeners:\n  - mqtt\n", "listeners[0]", 2,
                  "expected a map"},
  file_error_case{"seeds_without_bind", "cluster:\n  seeds: [\"a:1\"]\n", "cluster.seeds", 2,
                  "needs cluster.bind"},
  file_error_case{"suspect_before_heartbeat",
                  "cluster:\n  heartbeat_interval_ms: 1000\n  suspect_timeout_ms: 800\n",
                  "cluster.suspect_timeout_ms", 3, "must be above cluster.heartbeat_interval_ms"},
  file_error_case{"dead_before_suspect",
                  "cluster:\n  suspect_timeout_ms: 3000\n  dead_timeout_ms: 2000\n",
                  "cluster.dead_timeout_ms", 3, "must be above cluster.suspect_timeout_ms"},
  file_error_case{"peer_tls_without_ca",
                  "cluster:\n  tls_cert_file: a.crt\n  tls_key_file: a.key\n",
                  "cluster.tls_cert_file", 2, "needs cluster.tls_ca_file too"},
  file_error_case{"bad_cluster_name", "cluster:\n  name: \"two words\"\n", "cluster.name", 2,
                  ""},
  file_error_case{"bad_seed", yaml(R"(
cluster:
  bind: "0.0.0.0:7946"
  seeds:
    - "10.0.0.1:7946"
    - "10.0.0.2"
)"), "cluster.seeds[1]", 5, "expected host:port"},
  file_error_case{"seed_port_zero", "cluster:\n  bind: \"0.0.0.0:7946\"\n  seeds: [\"a:0\"]\n",
                  "cluster.seeds[0]", 3, "needs a port from 1 to 65535"},
  file_error_case{"advertise_wildcard",
                  "cluster:\n  bind: \"0.0.0.0:7946\"\n  advertise: \"0.0.0.0:7946\"\n",
                  "cluster.advertise", 3, "not a wildcard"},
  file_error_case{"node_id_with_space", "node:\n  id: my node\n", "node.id", 2, "may contain only"},
  file_error_case{"data_dir_empty", "node:\n  data_dir: \"\"\n", "node.data_dir", 2,
                  "must not be empty"},
  file_error_case{"string_is_a_map", "http:\n  admin_token: {a: b}\n", "http.admin_token", 2,
                  "expected a string"},
  file_error_case{"duplicate_key", "mqtt:\n  max_inflight: 5\n  max_inflight: 6\n",
                  "mqtt.max_inflight", 3, "duplicate key"},
  file_error_case{"top_level_list", "- node\n- mqtt\n", "", 1, "expected a map of sections"},
  file_error_case{"syntax_error", yaml(R"(
node:
  id: a
mqtt:
  max_inflight: [1, 2
log:
  level: info
)"), "", 5, "invalid YAML"},
  file_error_case{"bad_indentation", "mqtt:\n  max_inflight: 5\n max_keepalive: 6\n", "", 3,
                  "invalid YAML"}
), [](const auto& info) { return info.param.name; });
// clang-format on

// ---------------------------------------------------------------------------------------------
// Errors from the environment and --set

TEST_F(Config, MissingFileIsAnError) {
  auto path = (dir_ / "absent.yaml").string();
  auto e = error_of(load({path, {}, {}}));
  EXPECT_EQ(e.source, path);
  EXPECT_EQ(e.line, 0);
  EXPECT_NE(e.message.find("cannot open"), std::string::npos) << e.message;
  EXPECT_EQ(e.to_string().rfind(path + ": cannot open", 0), 0u) << e.to_string();
}

TEST_F(Config, DirectoryIsNotAConfigurationFile) {
  auto e = error_of(load({dir_.string(), {}, {}}));
  EXPECT_EQ(e.to_string(), dir_.string() + ": is a directory, not a file");
}

TEST_F(Config, EnvironmentUnknownKey) {
  auto e = error_of(load({"", {}, {"RINGMQ_MQTT__MAX_INFLIGT=5"}}));
  EXPECT_EQ(e.key, "mqtt.max_infligt");
  EXPECT_EQ(e.source, "environment RINGMQ_MQTT__MAX_INFLIGT");
  EXPECT_EQ(e.line, 0);
  EXPECT_EQ(e.to_string(), "environment RINGMQ_MQTT__MAX_INFLIGT: mqtt.max_infligt: unknown key");

  for (auto variable :
       {"RINGMQ_FOO=1", "RINGMQ_=1", "RINGMQ_MQTT__MAX_INFLIGHT__X=1", "RINGMQ_NODE_ID=x",
        "RINGMQ_LISTENERS__X__BIND=a:1", "RINGMQ_LISTENERS__0__BOUND=a:1"}) {
    auto error = error_of(load({"", {}, {variable}}));
    EXPECT_EQ(error.message, "unknown key") << variable;
  }
}

TEST_F(Config, EnvironmentBadValues) {
  auto range = error_of(load({"", {}, {"RINGMQ_MQTT__MAX_INFLIGHT=0"}}));
  EXPECT_EQ(range.to_string(),
            "environment RINGMQ_MQTT__MAX_INFLIGHT: mqtt.max_inflight: expected an integer from 1 "
            "to 65535");

  auto seeds =
      error_of(load({"", {}, {"RINGMQ_CLUSTER__BIND=0.0.0.0:1", "RINGMQ_CLUSTER__SEEDS=a:1,b"}}));
  EXPECT_EQ(seeds.key, "cluster.seeds[1]");
  EXPECT_EQ(seeds.source, "environment RINGMQ_CLUSTER__SEEDS");

  auto syntax = error_of(load({"", {}, {"RINGMQ_LISTENERS=[{type: mqtt, bind: "}}));
  EXPECT_EQ(syntax.key, "listeners");
  EXPECT_NE(syntax.message.find("invalid YAML"), std::string::npos) << syntax.message;

  auto nested = error_of(load({"", {}, {"RINGMQ_LISTENERS=[{type: mqtt, bnd: \"a:1\"}]"}}));
  EXPECT_EQ(nested.key, "listeners[0].bnd");
  EXPECT_EQ(nested.source, "environment RINGMQ_LISTENERS");
  EXPECT_EQ(nested.line, 0);

  auto tls = error_of(load({"", {}, {"RINGMQ_LISTENERS__0__TYPE=mqtts"}}));
  EXPECT_EQ(tls.to_string(),
            "environment RINGMQ_LISTENERS__0__TYPE: listeners[0].cert_file: required for mqtts "
            "listeners");
}

TEST_F(Config, SetErrors) {
  auto no_equals = error_of(load({"", {"mqtt.max_inflight"}, {}}));
  EXPECT_EQ(no_equals.source, "--set");
  EXPECT_EQ(no_equals.message, "expected key.path=value");

  auto unknown = error_of(load({"", {"mqtt.nope=1"}, {}}));
  EXPECT_EQ(unknown.to_string(), "--set: mqtt.nope: unknown key");

  auto bind = error_of(load({"", {"listeners[0].bind=nowhere"}, {}}));
  EXPECT_EQ(bind.key, "listeners[0].bind");
  EXPECT_EQ(bind.line, 0);
  EXPECT_EQ(bind.to_string().rfind("--set: listeners[0].bind: expected host:port", 0), 0u)
      << bind.to_string();

  auto beyond = error_of(load({"", {"listeners[2].bind=127.0.0.1:0"}, {}}));
  EXPECT_EQ(beyond.key, "listeners[2].bind");
  EXPECT_NE(beyond.message.find("no such listener"), std::string::npos) << beyond.message;

  for (auto item : {"mqtt..x=1", "listeners[0]x.bind=1", "listeners[a].bind=1", ".mqtt=1", "=1",
                    "listeners[0.bind=1"}) {
    auto e = error_of(load({"", {item}, {}}));
    EXPECT_NE(e.message.find("malformed key path"), std::string::npos) << item << ": " << e.message;
  }
  for (auto item : {"mqtt.max_inflight.x=1", "nope=1", "listeners[0].bind.x=1"}) {
    EXPECT_EQ(error_of(load({"", {item}, {}})).message, "unknown key") << item;
  }

  auto value = error_of(load({"", {"log.format=[text]"}, {}}));
  EXPECT_EQ(value.to_string(), "--set: log.format: expected one of text, json");

  auto empty_list = error_of(load({"", {"listeners=[]"}, {}}));
  EXPECT_EQ(empty_list.to_string(), "--set: listeners: at least one listener is required");
}

TEST_F(Config, FirstErrorWinsAcrossSources) {
  // The file is read first, so its error is the one reported.
  auto e = error_of(load({write("mqtt:\n  max_inflight: 0\n"), {"nope=1"}, {"RINGMQ_NOPE=1"}}));
  EXPECT_EQ(e.key, "mqtt.max_inflight");
}

// ---------------------------------------------------------------------------------------------
// The shipped examples

TEST_F(Config, DeployExampleLoadsAndStatesTheDefaults) {
  auto path = std::string(RINGMQ_SOURCE_DIR) + "/deploy/ringmq.yaml";
  ASSERT_TRUE(fs::exists(path)) << path;
  // The example spells out every default, so it must load to exactly the defaults.
  EXPECT_EQ(value_of(load({path, {}, {}})), defaults());
}

TEST_F(Config, DocumentationExampleLoads) {
  auto doc = read_file(std::string(RINGMQ_SOURCE_DIR) + "/docs/configuration.md");
  auto heading = doc.find("## Complete example");
  ASSERT_NE(heading, std::string::npos);
  auto begin = doc.find("```yaml\n", heading);
  ASSERT_NE(begin, std::string::npos);
  begin += 8;
  auto end = doc.find("```", begin);
  ASSERT_NE(end, std::string::npos);
  auto c = value_of(load_yaml(doc.substr(begin, end - begin)));
  EXPECT_FALSE(c.cluster.bind.empty());
  EXPECT_GT(c.listeners.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// split_host_port

TEST(SplitHostPort, Accepts) {
  struct accepted {
    std::string address;
    std::string host;
    std::uint16_t port;
  };
  for (const auto& a :
       std::vector<accepted>{{"127.0.0.1:1883", "127.0.0.1", 1883},
                             {"localhost:0", "localhost", 0},
                             {"my-host.example.com:65535", "my-host.example.com", 65535},
                             {"0.0.0.0:8080", "0.0.0.0", 8080},
                             {"[::1]:8080", "::1", 8080},
                             {"[::]:1883", "::", 1883},
                             {"[fe80::1%eth0]:1883", "fe80::1%eth0", 1883}}) {
    std::string host;
    std::uint16_t port = 1;
    EXPECT_TRUE(split_host_port(a.address, host, port)) << a.address;
    EXPECT_EQ(host, a.host);
    EXPECT_EQ(port, a.port);
  }
}

TEST(SplitHostPort, Rejects) {
  for (auto address : {"", "localhost", ":1883", "host:", "host:65536", "host:-1", "host:+80",
                       "host:1883x", "host:000001", "::1:80", "[::1]", "[::1]80", "[]:80",
                       "[::1:80", "host name:80", "[nothex::g]:80", "ho/st:80"}) {
    std::string host = "unchanged";
    std::uint16_t port = 7;
    EXPECT_FALSE(split_host_port(address, host, port)) << address;
    EXPECT_EQ(host, "unchanged");
    EXPECT_EQ(port, 7);
  }
}

}  // namespace
}  // namespace ringmq::config
