// Real MQTT clients across the nodes of a cluster: mosquitto_pub and
// mosquitto_sub (3.1.1 and 5.0, properties printed as JSON by -F %j), Paho for
// Python (clients/paho_cluster_scenarios.py) and MQTT.js (tests/js/cluster_flows.mjs).

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <sstream>

#include "tests/integration/child_process.hpp"
#include "tests/support/cluster_support.hpp"

namespace ringmq::testing {
namespace {

std::string address(cluster_member& n) { return n.ip() + ":" + std::to_string(n.mqtt_port()); }

class ClusterClients : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new test_cluster(3); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(cluster_->started()) << cluster_->describe(); }
  cluster_member& n(int i) { return cluster_->node(i); }
  static test_cluster* cluster_;
};
test_cluster* ClusterClients::cluster_ = nullptr;

// mosquitto_sub on n3 has its subscription once it printed nothing and the
// node logged the connection; a SUBACK is then what -E (exit once subscribed)
// would wait for: a first mosquitto_sub -E proves the route is in place.
void subscribed(cluster_member& node, const std::string& topic, const std::string& version) {
  background_process probe({"mosquitto_sub", "-h", node.ip(), "-p", std::to_string(node.mqtt_port()),
                            "-t", topic, "-V", version, "-E"});
  ASSERT_TRUE(probe.wait_exit(milliseconds(10'000))) << probe.describe();
}

TEST_F(ClusterClients, MosquittoClientsAcrossNodesAtEveryQoS) {
  for (const std::string version : {"mqttv311", "mqttv5"}) {
    const auto topic = "mosq/" + version + "/reading";
    background_process sub({"mosquitto_sub", "-h", n(3).ip(), "-p", std::to_string(n(3).mqtt_port()),
                            "-t", topic, "-q", "2", "-V", version, "-F", "%j", "-C", "3",
                            "-i", "mosq-sub-" + version});
    ASSERT_TRUE(sub.started());
    ASSERT_TRUE(n(3).wait_for_log("client connected: client_id=mosq-sub-" + version));
    subscribed(n(3), topic, version);  // the SUBACK of a second subscriber on the same node
    for (int q = 0; q <= 2; ++q) {
      std::vector<std::string> argv{"mosquitto_pub", "-h", n(1).ip(), "-p",
                                    std::to_string(n(1).mqtt_port()), "-t", topic, "-m",
                                    "q" + std::to_string(q), "-q", std::to_string(q), "-V", version};
      if (version == "mqttv5") {
        for (const auto& extra :
             std::vector<std::vector<std::string>>{{"-D", "publish", "user-property", "site", "p7"},
                                                   {"-D", "publish", "content-type", "text/plain"},
                                                   {"-D", "publish", "correlation-data", "c-9"},
                                                   {"-D", "publish", "response-topic", "r/9"}}) {
          argv.insert(argv.end(), extra.begin(), extra.end());
        }
      }
      const auto r = run_child(argv);
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    const auto done = sub.wait_exit(milliseconds(10'000));
    ASSERT_TRUE(done && done->clean()) << sub.describe() << cluster_->describe();
    std::size_t lines = 0;
    std::istringstream out(sub.out());
    for (std::string line; std::getline(out, line); ++lines) {
      const auto j = boost::json::parse(line).as_object();
      const auto payload = std::string(j.at("payload").as_string());
      const int q = payload.back() - '0';
      EXPECT_EQ(j.at("qos").to_number<int>(), q) << line;
      if (version == "mqttv5") {
        const auto& p = j.at("properties").as_object();
        EXPECT_EQ(p.at("content-type").as_string(), "text/plain") << line;
        EXPECT_EQ(p.at("correlation-data").as_string(), "c-9") << line;
        EXPECT_EQ(p.at("response-topic").as_string(), "r/9") << line;
        EXPECT_EQ(p.at("user-properties").as_object().at("site").as_string(), "p7") << line;
      }
    }
    EXPECT_EQ(lines, 3u) << sub.out();
  }
}

TEST_F(ClusterClients, PahoAcrossNodes) {
  const std::string python = "/usr/bin/python3";
  const std::string script =
      std::string(RINGMQ_INTEROP_CLIENTS_DIR) + "/paho_cluster_scenarios.py";
  for (const std::string version : {"3.1.1", "5"}) {
    for (const std::string scenario : {"cross_node", "shared", "takeover"}) {
      std::vector<std::string> argv{python, script, scenario, version, address(n(1)), address(n(2))};
      if (scenario == "shared") argv.push_back(address(n(3)));
      const auto r = run_child(argv, {milliseconds(60'000)});
      EXPECT_EQ(r.exit_code, 0) << scenario << " " << version << "\n" << r.out << r.err;
    }
  }
}

TEST_F(ClusterClients, MqttJsAcrossNodes) {
  const std::string js_dir = RINGMQ_JS_TESTS_DIR;
  ASSERT_TRUE(std::filesystem::exists(js_dir + "/node_modules/mqtt/package.json"))
      << "MQTT.js is not installed: run ./dev setup";
  for (const std::string scenario : {"cross_node", "retained"}) {
    const auto r = run_child({"node", js_dir + "/cluster_flows.mjs", scenario,
                              "mqtt://" + address(n(1)), "mqtt://" + address(n(3))},
                             {milliseconds(60'000)});
    EXPECT_EQ(r.exit_code, 0) << scenario << "\n" << r.out << r.err;
  }
}

}  // namespace
}  // namespace ringmq::testing
