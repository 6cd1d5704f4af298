// ringmq driven by MQTT.js (npm `mqtt` v5, pinned by tests/js/package-lock.json
// and installed by `./dev setup`) in MQTT 5.0: connect with properties,
// subscription identifiers, QoS 0/1/2, user properties, retained messages and
// wills. Each scenario is a function of tests/js/mqttjs_v5_flows.mjs, run
// with node against a broker of its own.

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "tests/integration/child_process.hpp"
#include "tests/support/broker_process.hpp"

namespace ringmq::testing {
namespace {

const std::string js_dir = RINGMQ_JS_TESTS_DIR;
const std::string script = js_dir + "/mqttjs_v5_flows.mjs";

class BrokerMqttJs : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(program_available("node")) << "node is missing: install Debian's nodejs";
    ASSERT_TRUE(std::filesystem::exists(js_dir + "/node_modules/mqtt/package.json"))
        << "MQTT.js is not installed: run ./dev setup (npm ci in tests/js)";
    broker_ = std::make_unique<broker_process>(std::vector<std::string>{"mqtt.sys_interval_s=0"});
    ASSERT_TRUE(broker_->ready()) << broker_->describe();
  }

  void TearDown() override {
    if (!broker_ || !broker_->ready()) return;
    const auto status = broker_->stop();
    EXPECT_TRUE(status && status->clean()) << broker_->describe();
  }

  std::unique_ptr<broker_process> broker_;
};

TEST_P(BrokerMqttJs, Scenario) {
  background_process node({"node", script, broker_->port_string(), GetParam()});
  ASSERT_TRUE(node.started()) << node.describe();
  if (GetParam() == "will") {
    // The script disconnected a client normally and waits for the broker to
    // have finished with it before it publishes its sentinel.
    ASSERT_TRUE(node.wait_for_out("polite client disconnected", milliseconds(20'000)))
        << node.describe() << broker_->describe();
    ASSERT_TRUE(broker_->wait_for_log("client disconnected: client_id=js-will-polite"))
        << broker_->describe();
    ASSERT_TRUE(node.signal(SIGUSR1)) << node.describe();
  }
  if (GetParam() == "server_shutdown") {
    ASSERT_TRUE(node.wait_for_out("connected", milliseconds(20'000)))
        << node.describe() << broker_->describe();
    ASSERT_TRUE(broker_->terminate());
  }
  const auto status = node.wait_exit(milliseconds(30'000));
  ASSERT_TRUE(status) << "still running\n" << node.describe() << broker_->describe();
  EXPECT_TRUE(status->clean()) << node.describe() << "\n--- broker ---\n" << broker_->describe();
}

INSTANTIATE_TEST_SUITE_P(MqttJs, BrokerMqttJs,
                         ::testing::Values("connect_properties", "subscription_identifier",
                                           "qos_levels", "user_properties", "retained", "will",
                                           "server_shutdown"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ringmq::testing
