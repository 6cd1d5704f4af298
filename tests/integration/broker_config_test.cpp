// The broker's command line as an operator meets it: a configuration mistake
// stops ringmq with exit code 2 and a message naming the key, before it listens.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/integration/child_process.hpp"
#include "tests/support/broker_process.hpp"

namespace ringmq::testing {
namespace {

constexpr int exit_bad_config = 2;

child_result run_ringmq(std::vector<std::string> args) {
  args.insert(args.begin(), ringmq_binary());
  child_options options;
  options.timeout = milliseconds(10'000);
  return run_child(args, options);
}

TEST(BrokerConfig, UnknownKeyFromSetExitsTwoNamingTheKey) {
  const auto r = run_ringmq({"--set", "listeners[0].bind=127.0.0.1:0", "--set",
                             "http.bind=", "--set", "mqtt.max_inflihgt=5"});
  ASSERT_TRUE(r.started) << r.describe();
  EXPECT_FALSE(r.timed_out) << r.describe();
  EXPECT_EQ(r.exit_code, exit_bad_config) << r.describe();
  EXPECT_NE(r.err.find("mqtt.max_inflihgt"), std::string::npos) << r.describe();
  // It stopped before opening a listener.
  EXPECT_EQ(r.err.find("listening"), std::string::npos) << r.describe();
}

TEST(BrokerConfig, BadValueFromSetExitsTwoNamingTheKey) {
  const auto r = run_ringmq({"--set", "listeners[0].bind=127.0.0.1:0", "--set",
                             "http.bind=", "--set", "mqtt.max_inflight=many"});
  ASSERT_TRUE(r.started) << r.describe();
  EXPECT_EQ(r.exit_code, exit_bad_config) << r.describe();
  EXPECT_NE(r.err.find("mqtt.max_inflight"), std::string::npos) << r.describe();
}

TEST(BrokerConfig, UnknownKeyInFileExitsTwoNamingKeyAndLine) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("ringmq-it-config-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = dir / "ringmq.yaml";
  {
    std::ofstream out(file);
    out << "# a comment\nmqtt:\n  max_inflight: 10\n  max_keepalve: 30\n";
  }
  const auto r = run_ringmq(
      {"-c", file.string(), "--set", "listeners[0].bind=127.0.0.1:0", "--set", "http.bind="});
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(r.started) << r.describe();
  EXPECT_EQ(r.exit_code, exit_bad_config) << r.describe();
  EXPECT_NE(r.err.find("mqtt.max_keepalve"), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("ringmq.yaml:4"), std::string::npos) << r.describe();
}

TEST(BrokerConfig, ValidOverridesStartAndStopCleanly) {
  broker_process broker({"mqtt.max_inflight=5", "mqtt.sys_interval_s=0", "log.level=debug"});
  ASSERT_TRUE(broker.ready()) << broker.describe();
  const auto status = broker.stop();
  ASSERT_TRUE(status) << broker.describe();
  EXPECT_TRUE(status->clean()) << broker.describe();
}

}  // namespace
}  // namespace ringmq::testing
