// ringmq driven by Paho for Python (Debian's python3-paho-mqtt 1.6), in MQTT
// 3.1.1 and 5.0: session present, takeover, shared subscriptions, topic
// aliases, message expiry and subscription identifiers. Each scenario is a
// function of clients/paho_broker_scenarios.py, run against a broker of its own.

#include <gtest/gtest.h>

#include "tests/integration/child_process.hpp"
#include "tests/support/broker_process.hpp"

namespace ringmq::testing {
namespace {

// Debian's interpreter, which has paho; a python earlier in PATH may not.
const std::string python = "/usr/bin/python3";
const std::string script = std::string(RINGMQ_INTEROP_CLIENTS_DIR) + "/paho_broker_scenarios.py";

struct scenario {
  std::string name;
  std::string version;  // "3.1.1" or "5"
};

void PrintTo(const scenario& s, std::ostream* out) {
  *out << s.name << " (MQTT " << s.version << ")";
}

std::string test_name(const ::testing::TestParamInfo<scenario>& info) {
  return info.param.name + (info.param.version == "5" ? "_v5" : "_v311");
}

class BrokerPaho : public ::testing::TestWithParam<scenario> {};

TEST_P(BrokerPaho, Scenario) {
  ASSERT_TRUE(program_available(python)) << python << " is missing";
  const auto probe = run_child({python, "-c", "import paho.mqtt.client"});
  ASSERT_TRUE(probe.succeeded())
      << "paho is not importable: install the Debian package python3-paho-mqtt\n"
      << probe.describe();

  // $SYS every second: the message expiry scenario waits on the broker's uptime.
  broker_process broker({"mqtt.sys_interval_s=1"});
  ASSERT_TRUE(broker.ready()) << broker.describe();
  child_options options;
  options.timeout = milliseconds(45'000);
  const auto r = run_child(
      {python, script, broker.port_string(), GetParam().name, GetParam().version}, options);
  EXPECT_TRUE(r.succeeded()) << r.describe() << "\n--- broker ---\n" << broker.describe();
  const auto status = broker.stop();
  EXPECT_TRUE(status && status->clean()) << broker.describe();
}

INSTANTIATE_TEST_SUITE_P(Paho, BrokerPaho,
                         ::testing::Values(scenario{"session_present", "3.1.1"},
                                           scenario{"session_present", "5"},
                                           scenario{"takeover", "3.1.1"}, scenario{"takeover", "5"},
                                           scenario{"shared", "3.1.1"}, scenario{"shared", "5"},
                                           scenario{"topic_alias", "5"},
                                           scenario{"message_expiry", "5"},
                                           scenario{"subscription_ids", "5"}),
                         test_name);

}  // namespace
}  // namespace ringmq::testing
