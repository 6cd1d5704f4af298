// Password files over the wire: files made by Debian's mosquitto_passwd work in
// ringmq, files made by `ringmq passwd` work in Debian's mosquitto, wrong
// credentials get the right CONNACK codes and are counted, SIGHUP rereads the
// file, a brute-force loop is throttled per address while others carry on, and
// a broken file at start is a configuration error (exit code 2).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regex>

#include "tests/integration/auth_client.hpp"
#include "tests/integration/auth_files.hpp"
#include "tests/integration/child_process.hpp"
#include "tests/support/broker_process.hpp"

namespace ringmq::testing {
namespace {

using codec::protocol_version;
using codec::reason_code;

constexpr milliseconds wait_limit{10'000};
constexpr std::uint8_t bad_credentials = 0x86;
constexpr std::uint8_t not_authorized = 0x87;
constexpr std::uint8_t rate_exceeded = 0x9F;

child_result run(const std::vector<std::string>& argv) {
  child_options options;
  options.timeout = wait_limit;
  return run_child(argv, options);
}

child_result ringmq_passwd(std::vector<std::string> args) {
  args.insert(args.begin(), {ringmq_binary(), "passwd"});
  return run(args);
}

std::uint8_t code_of(const auth_client& c) {
  const auto code = c.connack_code();
  return code ? static_cast<std::uint8_t>(*code) : 0xFF;
}

// A metric's value from the broker's /metrics (it runs with http.bind=127.0.0.1:0); -1 if absent.
double metric(const broker_process& broker, const std::string& name) {
  static const std::regex http(R"(http listening: address=\S+:(\d+))");
  const auto log = broker.log();
  std::smatch port;
  if (!std::regex_search(log, port, http)) return -1;
  const auto r = run({"curl", "-sf", "http://127.0.0.1:" + port[1].str() + "/metrics"});
  const std::regex line("(^|\n)" + name + R"((\{[^}]*\})? ([0-9.e+]+))");
  std::smatch value;
  if (!r.succeeded() || !std::regex_search(r.out, value, line)) return -1;
  return std::stod(value[3].str());
}

// mosquitto_pub's debug output ("received CONNACK (4)") shows the raw 3.1.1 return code.
child_result pub(std::uint16_t port, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(port),
                                "-d", "-t", "auth/test", "-m", "hello", "-q", "1"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

class AuthPassword : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* program : {"mosquitto_pub", "mosquitto_passwd", "mosquitto"}) {
      ASSERT_TRUE(program_available(program) || program_available(std::string("/usr/sbin/") +
                                                                   program))
          << program << " is missing: install the Debian packages mosquitto and mosquitto-clients";
    }
  }

  scratch_dir dir_;
};

TEST_F(AuthPassword, AFileMadeByMosquittoPasswdAuthenticatesInRingmq) {
  const auto pw = dir_.file("passwords");
  auto r = run({"mosquitto_passwd", "-c", "-b", pw, "alice", "alice-pw"});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  r = run({"mosquitto_passwd", "-H", "sha512", "-b", pw, "carol", "carol-pw"});  // the old $6$
  ASSERT_TRUE(r.succeeded()) << r.describe();

  broker_process broker(
      {"auth.password_file=" + pw, "mqtt.sys_interval_s=0", "http.bind=127.0.0.1:0"});
  ASSERT_TRUE(broker.ready()) << broker.describe();
  EXPECT_TRUE(broker.wait_for_log("password file loaded: " + pw + " users=2"))
      << broker.describe();
  const auto port = broker.port();

  for (const char* version : {"mqttv5", "mqttv311"}) {
    for (const auto& [user, password] : {std::pair{"alice", "alice-pw"}, {"carol", "carol-pw"}}) {
      r = pub(port, {"-V", version, "-u", user, "-P", password});
      EXPECT_TRUE(r.succeeded()) << r.describe();
    }
  }

  // Wrong credentials, each from its own address so that throttling stays out of the way.
  EXPECT_EQ(code_of(auth_client(port, {protocol_version::v5, "w1", "alice", "carol-pw",
                                       "127.0.0.11"})),
            bad_credentials);
  EXPECT_EQ(code_of(auth_client(port, {protocol_version::v5, "w2", "mallory", "alice-pw",
                                       "127.0.0.12"})),
            bad_credentials);
  EXPECT_EQ(code_of(auth_client(port, {protocol_version::v5, "w3", "alice", std::nullopt,
                                       "127.0.0.13"})),
            bad_credentials);
  EXPECT_EQ(code_of(auth_client(port, {protocol_version::v5, "w4", std::nullopt, std::nullopt,
                                       "127.0.0.14"})),
            not_authorized);
  // 3.1.1: return code 4 (bad user name or password), 5 (not authorized) without a user name.
  r = pub(port, {"-V", "mqttv311", "-A", "127.0.0.15", "-u", "alice", "-P", "wrong"});
  EXPECT_FALSE(r.succeeded()) << r.describe();
  EXPECT_NE((r.out + r.err).find("received CONNACK (4)"), std::string::npos) << r.describe();
  r = pub(port, {"-V", "mqttv311", "-A", "127.0.0.16"});
  EXPECT_FALSE(r.succeeded()) << r.describe();
  EXPECT_NE((r.out + r.err).find("received CONNACK (5)"), std::string::npos) << r.describe();

  // Every refusal is counted, and in the log.
  EXPECT_EQ(metric(broker, "ringmq_auth_failures_total"), 6) << broker.describe();
  EXPECT_TRUE(broker.wait_for_log_count("reason=bad user name or password", 4))
      << broker.describe();
  EXPECT_TRUE(broker.wait_for_log_count("reason=not authorized", 2)) << broker.describe();
  EXPECT_NE(broker.log().find("peer=127.0.0.11:"), std::string::npos) << broker.describe();
  EXPECT_EQ(count_of(broker.log(), "connection refused: "), 6u) << broker.describe();
  EXPECT_EQ(count_of(broker.log(), "reason=bad user name or password"), 4u) << broker.describe();
}

TEST_F(AuthPassword, AFileMadeByRingmqPasswdAuthenticatesInMosquitto) {
  const auto pw = dir_.file("passwords");
  auto r = ringmq_passwd({"-c", "-b", pw, "alice", "alice-pw"});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  // Without -b and with standard input not a terminal: one line from it.
  r = run({"/bin/sh", "-c",
           "printf 'bob-pw\\n' | '" + ringmq_binary() + "' passwd '" + pw + "' bob"});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  struct stat st {};
  ASSERT_EQ(::stat(pw.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  const auto port = free_port();
  ASSERT_NE(port, 0);
  // "user root": run as root, mosquitto would switch to the mosquitto user,
  // which cannot read a 0600 file owned by root. As anyone else it is ignored.
  const auto conf = dir_.write("mosquitto.conf", "listener " + std::to_string(port) +
                                                     " 127.0.0.1\n"
                                                     "allow_anonymous false\n"
                                                     "password_file " + pw + "\n"
                                                     "user root\n"
                                                     "log_dest stderr\n");
  const std::string mosquitto =
      program_available("mosquitto") ? "mosquitto" : "/usr/sbin/mosquitto";
  background_process broker({mosquitto, "-c", conf});
  ASSERT_TRUE(broker.wait_for_err(" running", wait_limit)) << broker.describe();

  for (const char* version : {"mqttv5", "mqttv311"}) {
    r = pub(port, {"-V", version, "-u", "alice", "-P", "alice-pw"});
    EXPECT_TRUE(r.succeeded()) << r.describe() << broker.describe();
    r = pub(port, {"-V", version, "-u", "bob", "-P", "bob-pw"});
    EXPECT_TRUE(r.succeeded()) << r.describe() << broker.describe();
    r = pub(port, {"-V", version, "-u", "alice", "-P", "bob-pw"});
    EXPECT_FALSE(r.succeeded()) << r.describe();
    // "Not authorized" (5.0) or "not authorised" (3.1.1).
    EXPECT_NE(r.err.find("ot authori"), std::string::npos) << r.describe();
  }
  // A deleted user is refused by mosquitto too, once it rereads the file.
  r = ringmq_passwd({"-D", pw, "bob"});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  ASSERT_TRUE(broker.signal(SIGHUP));
  ASSERT_TRUE(broker.wait_for_err("Reloading config", wait_limit)) << broker.describe();
  bool refused = false;
  // mosquitto applies the reload on its next loop turn: retry briefly.
  for (int i = 0; i < 50 && !refused; ++i) {
    r = pub(port, {"-u", "bob", "-P", "bob-pw"});
    refused = !r.succeeded();
  }
  EXPECT_TRUE(refused) << r.describe() << broker.describe();
  r = pub(port, {"-u", "alice", "-P", "alice-pw"});
  EXPECT_TRUE(r.succeeded()) << r.describe();
  broker.signal(SIGTERM);
  EXPECT_TRUE(broker.wait_exit(wait_limit)) << broker.describe();
}

TEST_F(AuthPassword, RingmqPasswdExitsOneWithAReason) {
  const auto pw = dir_.file("passwords");
  auto r = ringmq_passwd({});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("usage: ringmq passwd"), std::string::npos) << r.describe();
  r = ringmq_passwd({"-b", pw, "alice", "pw"});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.describe();
  r = ringmq_passwd({"-c", "-b", pw, "alice", "pw"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out + r.err, "") << r.describe();
  r = ringmq_passwd({"-D", pw, "bob"});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("\"bob\" is not in"), std::string::npos) << r.describe();
}

TEST_F(AuthPassword, SighupRereadsThePasswordFileAndKeepsItWhenBroken) {
  const auto pw = dir_.file("passwords");
  ASSERT_TRUE(ringmq_passwd({"-c", "-b", pw, "alice", "one"}).succeeded());
  broker_process broker({"auth.password_file=" + pw, "mqtt.sys_interval_s=0"});
  ASSERT_TRUE(broker.ready()) << broker.describe();
  const auto port = broker.port();
  auth_client first(port, {protocol_version::v5, "first", "alice", "one"});
  ASSERT_TRUE(first.connected()) << first.error() << broker.describe();

  ASSERT_TRUE(ringmq_passwd({"-b", pw, "alice", "two"}).succeeded());
  ASSERT_TRUE(ringmq_passwd({"-b", pw, "bob", "three"}).succeeded());
  ASSERT_EQ(::kill(broker.pid(), SIGHUP), 0);
  ASSERT_TRUE(broker.wait_for_log("password file reloaded: " + pw + " users=2"))
      << broker.describe();
  EXPECT_EQ(code_of(auth_client(port, {protocol_version::v5, "a1", "alice", "one", "127.0.0.21"})),
            bad_credentials);
  EXPECT_EQ(code_of(auth_client(port, {protocol_version::v5, "a2", "alice", "two"})), 0);
  EXPECT_EQ(code_of(auth_client(port, {protocol_version::v5, "b1", "bob", "three"})), 0);
  // Connections made with the old password are not dropped.
  EXPECT_EQ(first.publish("auth/still", "here"), 0x10);  // no matching subscribers

  dir_.write("passwords", "# edited by hand\nalice:two\n");
  ASSERT_EQ(::kill(broker.pid(), SIGHUP), 0);
  ASSERT_TRUE(broker.wait_for_log("password file reload failed, keeping the previous users: " +
                                  pw + ":2: user \"alice\""))
      << broker.describe();
  EXPECT_EQ(code_of(auth_client(port, {protocol_version::v5, "b2", "bob", "three"})), 0);
}

TEST_F(AuthPassword, BruteForceIsThrottledPerAddressWhileOthersCarryOn) {
  const auto pw = dir_.file("passwords");
  ASSERT_TRUE(ringmq_passwd({"-c", "-b", pw, "alice", "right"}).succeeded());
  broker_process broker({"auth.password_file=" + pw, "auth.allow_anonymous=true",
                         "mqtt.sys_interval_s=0", "http.bind=127.0.0.1:0"});
  ASSERT_TRUE(broker.ready()) << broker.describe();
  const auto port = broker.port();
  // An anonymous client already connected keeps its round trips going throughout.
  steady_client steady(port, "steady");
  ASSERT_TRUE(steady.wait_running()) << broker.describe();

  std::vector<std::uint8_t> codes;
  for (int i = 0; i < 12; ++i) {
    const auto guess = "guess-" + std::to_string(i);
    codes.push_back(code_of(auth_client(port, {protocol_version::v5, guess, "alice", guess})));
    // Another host (all of 127/8 is loopback) logs in fine at any time.
    if (i % 3 == 2) {
      const auto other = auth_client(
          port, {protocol_version::v5, "other-" + guess, "alice", "right", "127.0.0.2"});
      EXPECT_EQ(code_of(other), 0) << "after attempt " << i << ": " << other.error();
    }
  }
  // Five wrong passwords are checked; then the address is refused unchecked (0x9F).
  const std::vector<std::uint8_t> expected{bad_credentials, bad_credentials, bad_credentials,
                                           bad_credentials, bad_credentials, rate_exceeded,
                                           rate_exceeded,   rate_exceeded,   rate_exceeded,
                                           rate_exceeded,   rate_exceeded,   rate_exceeded};
  EXPECT_EQ(codes, expected);
  // Even the right password, from the blocked address; 3.1.1 gets "not authorized" (5).
  EXPECT_EQ(code_of(auth_client(port, {protocol_version::v5, "late", "alice", "right"})),
            rate_exceeded);
  const auto v3 = auth_client(port, {protocol_version::v3_1_1, "late3", "alice", "right"});
  EXPECT_EQ(v3.connack_code(), reason_code::not_authorized);

  EXPECT_TRUE(broker.wait_for_log_count("too many failed authentications from this address", 9))
      << broker.describe();
  EXPECT_EQ(count_of(broker.log(), "reason=bad user name or password"), 5u) << broker.describe();
  // 5 checked and 9 throttled attempts; one address blocked.
  EXPECT_EQ(metric(broker, "ringmq_auth_failures_total"), 14) << broker.describe();
  EXPECT_EQ(metric(broker, "ringmq_auth_blocked_addresses"), 1) << broker.describe();
  // The steady client's round trips went on during the attack and still do.
  EXPECT_TRUE(steady.wait_round_trips(steady.round_trips() + 3, wait_limit)) << broker.describe();
  EXPECT_EQ(steady.stop(), "") << broker.describe();
}

TEST_F(AuthPassword, ABrokenFileAtStartIsABadConfiguration) {
  const auto run_ringmq = [](const std::string& key, const std::string& file) {
    return run({ringmq_binary(), "--set", "listeners[0].bind=127.0.0.1:0", "--set", "http.bind=",
                "--set", "node.data_dir=/nonexistent/never-created", "--set", key + "=" + file});
  };
  const auto missing = dir_.file("missing");
  auto r = run_ringmq("auth.password_file", missing);
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("bad configuration: auth.password_file: " + missing + ": cannot open"),
            std::string::npos)
      << r.describe();
  EXPECT_EQ(r.err.find("listening"), std::string::npos) << r.describe();

  const auto hashed = dir_.file("hashed");
  ASSERT_TRUE(ringmq_passwd({"-c", "-b", hashed, "alice", "pw"}).succeeded());
  const auto plain = dir_.write("plain", "# users\n" + [&] {
    std::ifstream in(hashed);
    std::string line;
    std::getline(in, line);
    return line;
  }() + "\nbob:secret\n");
  r = run_ringmq("auth.password_file", plain);
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("auth.password_file: " + plain + ":3: user \"bob\""), std::string::npos)
      << r.describe();

  const auto acl = dir_.write("acl", "user alice\ntopic read a/#\ntopic reed b/#\n");
  r = run_ringmq("auth.acl_file", acl);
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("auth.acl_file: " + acl + ":3: unknown access \"reed\""),
            std::string::npos)
      << r.describe();
}

}  // namespace
}  // namespace ringmq::testing
