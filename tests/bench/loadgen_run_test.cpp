// The real ringmq-bench binary against the stub broker: a clean run passes,
// and a broker that loses or duplicates one message is caught, with the exit
// code and the JSON report saying so.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/bench/stub_broker.hpp"
#include "tests/integration/child_process.hpp"

namespace ringmq::testing {
namespace {

using namespace std::chrono_literals;

constexpr int exit_ok = 0;
constexpr int exit_not_run = 1;
constexpr int exit_delivery_failed = 3;

// The fault hits a message well inside the run, after the connections settle.
constexpr std::uint64_t fault_at = 5;

struct bench_run {
  child_result child;
  std::string json;  // the report line; empty when there is none

  // The raw token after "key": in the report (a number, true, false, an object...).
  std::optional<std::string_view> field(std::string_view key) const {
    const auto quoted = "\"" + std::string(key) + "\":";
    const auto at = json.find(quoted);
    if (at == std::string::npos) return std::nullopt;
    const auto start = at + quoted.size();
    const auto end = json.find_first_of(",}", start);
    if (end == std::string::npos) return std::nullopt;
    return std::string_view(json).substr(start, end - start);
  }

  std::optional<std::int64_t> integer(std::string_view key) const {
    const auto token = field(key);
    if (!token || token->empty()) return std::nullopt;
    std::int64_t value = 0;
    for (char c : *token) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + (c - '0');
    }
    return value;
  }

  std::string describe() const { return child.describe(); }
};

// Runs ringmq-bench for one second of load against `port`, with the options
// every test shares before `extra`.
bench_run run_bench(std::uint16_t port, const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {RINGMQ_BENCH_BINARY, "--host", "127.0.0.1",
                                   "--port", std::to_string(port), "--warmup", "0",
                                   "-d", "1", "--drain", "2"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  bench_run r;
  r.child = run_child(argv, {.timeout = 15s});
  // One JSON line on stdout; anything else there would be a bug of its own.
  std::string_view out = r.child.out;
  while (!out.empty() && out.back() == '\n') out.remove_suffix(1);
  if (!out.empty() && out.front() == '{' && out.find('\n') == std::string_view::npos) {
    r.json = std::string(out);
  }
  // Kept in the test's XML output (--gtest_output=xml), for looking at the numbers.
  ::testing::Test::RecordProperty("report", r.json);
  return r;
}

void expect_report(const bench_run& r, int exit_code, std::int64_t lost, const char* ok) {
  ASSERT_TRUE(r.child.started) << r.describe();
  ASSERT_FALSE(r.child.timed_out) << r.describe();
  EXPECT_EQ(r.child.exit_code, exit_code) << r.describe();
  ASSERT_FALSE(r.json.empty()) << "no single JSON line on stdout\n" << r.describe();
  EXPECT_EQ(r.integer("lost"), lost) << r.describe();
  EXPECT_EQ(r.field("ok"), ok) << r.describe();
  EXPECT_EQ(r.integer("disconnects"), 0) << r.describe();
  EXPECT_GT(r.integer("published").value_or(0), 0) << r.describe();
  EXPECT_GT(r.integer("received").value_or(0), 0) << r.describe();
}

#define EXPECT_NO_STUB_ERRORS(stub) \
  EXPECT_EQ((stub).protocol_errors(), 0u) << (stub).first_protocol_error()

TEST(LoadgenRun, PairsQos1CleanRunPasses) {
  stub_broker stub;
  const auto r = run_bench(stub.port(), {"-s", "pairs", "-P", "1", "-q", "1"});
  expect_report(r, exit_ok, 0, "true");
  EXPECT_EQ(r.integer("duplicates"), 0) << r.describe();
  EXPECT_EQ(r.integer("published"), r.integer("received")) << r.describe();
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(LoadgenRun, PairsQos2CleanRunPasses) {
  stub_broker stub;
  const auto r = run_bench(stub.port(), {"-s", "pairs", "-P", "2", "-q", "2"});
  expect_report(r, exit_ok, 0, "true");
  EXPECT_EQ(r.integer("duplicates"), 0) << r.describe();
  EXPECT_EQ(r.integer("published"), r.integer("received")) << r.describe();
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(LoadgenRun, FaninQos1CleanRunPasses) {
  // Two subscribers of prefix/+ each receive both publishers' messages.
  stub_broker stub;
  const auto r = run_bench(stub.port(), {"-s", "fanin", "-P", "2", "-S", "2", "-q", "1"});
  expect_report(r, exit_ok, 0, "true");
  EXPECT_EQ(r.integer("duplicates"), 0) << r.describe();
  ASSERT_TRUE(r.integer("published")) << r.describe();
  EXPECT_EQ(r.integer("received"), *r.integer("published") * 2) << r.describe();
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(LoadgenRun, Mqtt5Qos1CleanRunPasses) {
  stub_broker stub;
  const auto r = run_bench(stub.port(), {"-s", "pairs", "-P", "1", "-q", "1", "-V", "5"});
  expect_report(r, exit_ok, 0, "true");
  EXPECT_EQ(r.integer("duplicates"), 0) << r.describe();
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(LoadgenRun, LostQos1MessageFailsTheRun) {
  stub_broker stub({.fault = stub_fault::drop_one, .fault_at = fault_at});
  const auto r = run_bench(stub.port(), {"-s", "pairs", "-P", "1", "-q", "1"});
  ASSERT_TRUE(stub.fault_applied()) << r.describe();
  expect_report(r, exit_delivery_failed, 1, "false");
  EXPECT_EQ(r.integer("duplicates"), 0) << r.describe();
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(LoadgenRun, DuplicatedQos2MessageFailsTheRun) {
  stub_broker stub({.fault = stub_fault::duplicate_one, .fault_at = fault_at});
  const auto r = run_bench(stub.port(), {"-s", "pairs", "-P", "1", "-q", "2"});
  ASSERT_TRUE(stub.fault_applied()) << r.describe();
  expect_report(r, exit_delivery_failed, 0, "false");
  EXPECT_GE(r.integer("duplicates").value_or(0), 1) << r.describe();
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(LoadgenRun, DuplicatedQos1MessageIsReportedButAllowed) {
  // At least once: a duplicate is within the contract, so the run passes and says so.
  stub_broker stub({.fault = stub_fault::duplicate_one, .fault_at = fault_at});
  const auto r = run_bench(stub.port(), {"-s", "pairs", "-P", "1", "-q", "1"});
  ASSERT_TRUE(stub.fault_applied()) << r.describe();
  expect_report(r, exit_ok, 0, "true");
  EXPECT_GE(r.integer("duplicates").value_or(0), 1) << r.describe();
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(LoadgenRun, RefusedConnectionExitsWithoutAReport) {
  // A bound socket that never listens: connecting to its port is refused, and
  // holding it keeps anyone else from taking the port meanwhile.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const auto port = ntohs(address.sin_port);

  const auto r = run_bench(port, {"-s", "pairs", "-P", "1", "-q", "1"});
  ::close(fd);
  ASSERT_TRUE(r.child.started) << r.describe();
  ASSERT_FALSE(r.child.timed_out) << r.describe();
  EXPECT_EQ(r.child.exit_code, exit_not_run) << r.describe();
  EXPECT_NE(r.child.err.find("refused"), std::string::npos) << r.describe();
}

// ---- Several hosts: a stub whose ports share sessions and routes, like the
// nodes of one cluster.

std::string hosts_of(const stub_broker& stub) {
  return "127.0.0.1:" + std::to_string(stub.port(0)) + ",127.0.0.1:" +
         std::to_string(stub.port(1));
}

// A path in a fresh directory that no one else writes to.
std::string fresh_path(const char* name) {
  std::string dir = ::testing::TempDir() + "loadgen-XXXXXX";
  if (!::mkdtemp(dir.data())) return {};
  return dir + "/" + name;
}

TEST(LoadgenRun, CrossPlacementPutsSubscribersOnAnotherHost) {
  stub_broker stub({.listeners = 2});
  const auto r = run_bench(stub.port(), {"-s", "pairs", "-P", "3", "-q", "1", "--hosts",
                                         hosts_of(stub)});
  expect_report(r, exit_ok, 0, "true");
  EXPECT_EQ(stub.accepted(0), 3u) << "the publishers";
  EXPECT_EQ(stub.accepted(1), 3u) << "the subscribers";
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(LoadgenRun, SamePlacementPutsEveryClientOnTheFirstHost) {
  stub_broker stub({.listeners = 2});
  const auto r = run_bench(stub.port(), {"-s", "pairs", "-P", "3", "-q", "1", "--hosts",
                                         hosts_of(stub), "--placement", "same"});
  expect_report(r, exit_ok, 0, "true");
  EXPECT_EQ(stub.accepted(0), 6u);
  EXPECT_EQ(stub.accepted(1), 0u);
  EXPECT_NO_STUB_ERRORS(stub);
}

constexpr int failover_sessions = 40;

// A session not served within `limit` seconds of the kill counts as not served.
bench_run run_failover(stub_broker& stub, const std::string& kill_file, const char* limit) {
  return run_bench(stub.port(), {"-s", "failover", "-C", std::to_string(failover_sessions),
                                 "--hosts", hosts_of(stub), "--kill-command",
                                 "touch '" + kill_file + "'", "--reconnect-limit", limit});
}

TEST(LoadgenRun, FailoverServesEverySessionOnTheOtherHost) {
  const auto kill_file = fresh_path("kill");
  ASSERT_FALSE(kill_file.empty());
  stub_broker stub({.listeners = 2, .kill_file = kill_file});
  const auto r = run_failover(stub, kill_file, "8");
  ASSERT_FALSE(r.json.empty()) << r.describe();
  EXPECT_EQ(r.child.exit_code, exit_ok) << r.describe();
  EXPECT_EQ(r.integer("acknowledged"), failover_sessions) << r.describe();
  EXPECT_EQ(r.integer("served"), failover_sessions) << r.describe();
  EXPECT_EQ(r.integer("missing"), 0) << r.describe();
  EXPECT_EQ(r.integer("no_session"), 0) << r.describe();
  EXPECT_EQ(r.field("ok"), "true") << r.describe();
  // Made on the first host, every session was resumed on the second.
  EXPECT_EQ(stub.accepted(0), std::uint64_t{failover_sessions});
  EXPECT_EQ(stub.resumed(), std::uint64_t{failover_sessions});
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(LoadgenRun, MessageLostOnFailoverFailsTheRun) {
  const auto kill_file = fresh_path("kill");
  ASSERT_FALSE(kill_file.empty());
  stub_broker stub({.fault = stub_fault::lose_queue_of_one, .fault_at = fault_at, .listeners = 2,
                    .kill_file = kill_file});
  const auto r = run_failover(stub, kill_file, "1");
  ASSERT_TRUE(stub.fault_applied()) << r.describe();
  ASSERT_FALSE(r.json.empty()) << r.describe();
  EXPECT_EQ(r.child.exit_code, exit_delivery_failed) << r.describe();
  EXPECT_EQ(r.integer("missing"), 1) << r.describe();
  EXPECT_EQ(r.integer("served"), failover_sessions - 1) << r.describe();
  EXPECT_EQ(r.field("ok"), "false") << r.describe();
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(LoadgenRun, RouteConvergenceMeasuresEveryProbe) {
  stub_broker stub({.listeners = 2});
  const auto r = run_bench(stub.port(), {"-s", "route-convergence", "-P", "2", "-m", "25", "-q",
                                         "1", "--hosts", hosts_of(stub)});
  ASSERT_FALSE(r.json.empty()) << r.describe();
  EXPECT_EQ(r.child.exit_code, exit_ok) << r.describe();
  EXPECT_EQ(r.integer("probes"), 50) << r.describe();
  EXPECT_EQ(r.integer("delivered"), 50) << r.describe();
  EXPECT_EQ(r.integer("misses"), 0) << r.describe();
  EXPECT_NE(r.json.find("\"latency_us\":{\"count\":50,"), std::string::npos) << r.describe();
  EXPECT_EQ(stub.accepted(0), 2u) << "the publishers";
  EXPECT_EQ(stub.accepted(1), 2u) << "the subscribers";
  EXPECT_NO_STUB_ERRORS(stub);
}

TEST(LoadgenRun, RouteConvergenceMissFailsTheRun) {
  stub_broker stub({.fault = stub_fault::drop_one, .fault_at = fault_at, .listeners = 2});
  const auto r = run_bench(stub.port(), {"-s", "route-convergence", "-P", "2", "-m", "10", "-q",
                                         "1", "--hosts", hosts_of(stub), "--probe-timeout", "0.3"});
  ASSERT_TRUE(stub.fault_applied()) << r.describe();
  ASSERT_FALSE(r.json.empty()) << r.describe();
  EXPECT_EQ(r.child.exit_code, exit_delivery_failed) << r.describe();
  EXPECT_EQ(r.integer("misses"), 1) << r.describe();
  EXPECT_EQ(r.integer("delivered"), 19) << r.describe();
  EXPECT_EQ(r.field("ok"), "false") << r.describe();
  EXPECT_NO_STUB_ERRORS(stub);
}

}  // namespace
}  // namespace ringmq::testing
