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

// `ringmq --check-config` (what a container image or Helm chart runs on the
// configuration it renders): the shipped example passes without anything
// being started; every problem of the files a configuration names is told.
TEST(BrokerConfig, CheckConfigAcceptsTheShippedExampleAndStartsNothing) {
  const auto data_dir =
      std::filesystem::temp_directory_path() / ("ringmq-it-check-" + std::to_string(::getpid()));
  const auto r = run_ringmq({"--check-config", "-c",
                             std::string(RINGMQ_SOURCE_DIR) + "/deploy/ringmq.yaml", "--set",
                             "node.data_dir=" + data_dir.string()});
  ASSERT_TRUE(r.started) << r.describe();
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("configuration OK"), std::string::npos) << r.describe();
  EXPECT_FALSE(std::filesystem::exists(data_dir)) << "nothing was started";
}

TEST(BrokerConfig, CheckConfigTellsEveryProblemOfTheFilesItNames) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("ringmq-it-check2-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto acl = dir / "acl";
  {
    std::ofstream out(acl);
    out << "topic read a/b\ntopic reed c/d\n";  // line 2: no such access
  }
  const auto r = run_ringmq(
      {"--check-config", "--set", "auth.password_file=" + (dir / "missing-passwords").string(),
       "--set", "auth.acl_file=" + acl.string(), "--set", "listeners[1].type=mqtts", "--set",
       "listeners[1].bind=127.0.0.1:0", "--set",
       "listeners[1].cert_file=" + (dir / "missing.crt").string(), "--set",
       "listeners[1].key_file=" + (dir / "missing.key").string()});
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(r.started) << r.describe();
  EXPECT_EQ(r.exit_code, exit_bad_config) << r.describe();
  for (const auto* what : {"auth.password_file: ", "auth.acl_file: ", ":2:", "listeners[1]"}) {
    EXPECT_NE(r.err.find(what), std::string::npos) << what << "\n" << r.describe();
  }
  EXPECT_EQ(r.out.find("configuration OK"), std::string::npos) << r.describe();
}

TEST(BrokerConfig, CheckConfigRefusesABadKeyLikeAStartDoes) {
  const auto r = run_ringmq({"--check-config", "--set", "mqtt.max_inflihgt=5"});
  ASSERT_TRUE(r.started) << r.describe();
  EXPECT_EQ(r.exit_code, exit_bad_config) << r.describe();
  EXPECT_NE(r.err.find("mqtt.max_inflihgt"), std::string::npos) << r.describe();
}

}  // namespace
}  // namespace ringmq::testing
