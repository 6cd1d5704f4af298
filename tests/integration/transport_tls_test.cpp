// MQTT over TLS with real clients and certificates made in the test with the
// openssl command line: Debian's mosquitto_pub and mosquitto_sub with
// --cafile (and --cert/--key against a listener that requires client
// certificates), `openssl s_client` for protocol versions and for the
// certificate a new connection sees, MQTT.js for a connection that lives
// through a certificate reload (SIGHUP), and the certificate's Common Name as
// the user name, proved by an ACL file and by the admin API.

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json/src.hpp>
#include <filesystem>
#include <memory>

#include "tests/integration/transport_support.hpp"

namespace ringmq::testing {
namespace {

constexpr milliseconds wait_limit{10'000};
const std::string js_dir = RINGMQ_JS_TESTS_DIR;

// A listener item for `--set listeners=[...]` (YAML flow style).
std::string tls_listener(const std::string& name, const test_pki& pki, const std::string& cert,
                         const std::string& more = {}) {
  return "{type: mqtts, name: " + name + ", bind: \"127.0.0.1:0\", cert_file: \"" +
         pki.cert(cert) + "\", key_file: \"" + pki.key(cert) + "\"" +
         (more.empty() ? "" : ", " + more) + "}";
}

class TransportTls : public ::testing::Test {
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
    for (const char* program : {"openssl", "mosquitto_pub", "mosquitto_sub"}) {
      ASSERT_TRUE(program_available(program)) << program << " is missing";
    }
    ASSERT_TRUE(pki_->error().empty()) << pki_->error();
  }

  void TearDown() override {
    subscribers_.clear();
    if (broker_ && broker_->ready()) {
      const auto status = broker_->stop();
      EXPECT_TRUE(status && status->clean()) << broker_->describe();
    }
  }

  // Starts ringmq with a plain listener "plain" and the given ones.
  void start(const std::vector<std::string>& listeners, std::vector<std::string> more = {}) {
    std::string list = "listeners=[{type: mqtt, name: plain, bind: \"127.0.0.1:0\"}";
    for (const auto& l : listeners) list += ", " + l;
    list += "]";
    more.push_back(list);
    more.push_back("mqtt.sys_interval_s=0");
    broker_ = std::make_unique<broker_process>(more);
    ASSERT_TRUE(broker_->ready()) << broker_->describe();
  }

  std::uint16_t port(const std::string& listener) const {
    return listener_port(*broker_, listener);
  }

  std::vector<std::string> tls_args(const std::string& program, const std::string& listener,
                                    const std::string& host = "127.0.0.1") const {
    return {program, "-h", host, "-p", std::to_string(port(listener)), "--cafile", pki_->ca()};
  }

  child_result run(std::vector<std::string> argv, const std::vector<std::string>& args) {
    argv.insert(argv.end(), args.begin(), args.end());
    child_options options;
    options.timeout = wait_limit;
    return run_child(argv, options);
  }

  // mosquitto_sub in the background, line-buffered, once its SUBACK arrived.
  background_process& subscriber(std::vector<std::string> argv,
                                 const std::vector<std::string>& args) {
    argv.insert(argv.begin(), {"stdbuf", "-oL"});
    argv.insert(argv.end(), {"-d", "-F", "MSG|%t|%q|%p"});
    argv.insert(argv.end(), args.begin(), args.end());
    subscribers_.push_back(std::make_unique<background_process>(argv));
    auto& s = *subscribers_.back();
    EXPECT_TRUE(s.wait_for_out("received SUBACK", wait_limit)) << s.describe()
                                                                << broker_->describe();
    return s;
  }

  // openssl s_client against a listener; its stdout and stderr together.
  child_result s_client(const std::string& listener, const std::vector<std::string>& args) {
    return run({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port(listener))},
               args);
  }

  // "serial=...\nsubject=..." of the certificate a new connection is shown.
  std::string served_certificate(const std::string& listener) {
    const auto r = run({"sh", "-c",
                        "openssl s_client -connect 127.0.0.1:" + std::to_string(port(listener)) +
                            " </dev/null 2>/dev/null | openssl x509 -noout -serial -subject"},
                       {});
    return r.succeeded() ? r.out : "(failed) " + r.describe();
  }

  static scratch_dir* dir_;
  static test_pki* pki_;
  std::unique_ptr<broker_process> broker_;
  std::vector<std::unique_ptr<background_process>> subscribers_;
};

scratch_dir* TransportTls::dir_ = nullptr;
test_pki* TransportTls::pki_ = nullptr;

TEST_F(TransportTls, MosquittoClientsPublishAndSubscribeOverTls) {
  start({tls_listener("tls", *pki_, "server")});
  auto& sub = subscriber(tls_args("mosquitto_sub", "tls"), {"-t", "tls/#", "-q", "2", "-C", "4"});
  for (const char* qos : {"0", "1", "2"}) {
    const auto r = run(tls_args("mosquitto_pub", "tls"),
                       {"-t", std::string("tls/") + qos, "-q", qos, "-m", std::string("m") + qos});
    ASSERT_TRUE(r.succeeded()) << r.describe() << broker_->describe();
  }
  // The DNS name in the certificate works as well as its IP address.
  const auto r = run(tls_args("mosquitto_pub", "tls", "localhost"),
                     {"-t", "tls/name", "-q", "1", "-m", "by name"});
  ASSERT_TRUE(r.succeeded()) << r.describe() << broker_->describe();

  const auto status = sub.wait_exit(wait_limit);
  ASSERT_TRUE(status && status->clean()) << sub.describe();
  EXPECT_NE(sub.out().find("MSG|tls/0|0|m0\n"), std::string::npos) << sub.out();
  EXPECT_NE(sub.out().find("MSG|tls/1|1|m1\n"), std::string::npos) << sub.out();
  EXPECT_NE(sub.out().find("MSG|tls/2|2|m2\n"), std::string::npos) << sub.out();
  EXPECT_NE(sub.out().find("MSG|tls/name|1|by name\n"), std::string::npos) << sub.out();
  EXPECT_NE(broker_->log().find("client connected: client_id="), std::string::npos);
  EXPECT_NE(broker_->log().find("listener=tls protocol="), std::string::npos) << broker_->log();
}

TEST_F(TransportTls, ListenerRequiringClientCertificatesRefusesOthers) {
  start({tls_listener("mtls", *pki_, "server",
                      "ca_file: \"" + pki_->ca() + "\", require_client_cert: true")});
  const std::vector<std::string> device_7{"--cert", pki_->cert("device-7"), "--key",
                                          pki_->key("device-7")};
  auto sub_args = device_7;
  sub_args.insert(sub_args.end(), {"-t", "mtls/#", "-q", "1", "-C", "1"});
  auto& sub = subscriber(tls_args("mosquitto_sub", "mtls"), sub_args);
  auto pub_args = device_7;
  pub_args.insert(pub_args.end(), {"-t", "mtls/a", "-q", "1", "-m", "with a certificate"});
  auto r = run(tls_args("mosquitto_pub", "mtls"), pub_args);
  ASSERT_TRUE(r.succeeded()) << r.describe() << broker_->describe();
  ASSERT_TRUE(sub.wait_exit(wait_limit)) << sub.describe();
  EXPECT_NE(sub.out().find("MSG|mtls/a|1|with a certificate\n"), std::string::npos) << sub.out();

  // No certificate: refused in the handshake.
  r = run(tls_args("mosquitto_pub", "mtls"), {"-t", "mtls/a", "-q", "1", "-m", "none"});
  EXPECT_FALSE(r.succeeded()) << r.describe();
  EXPECT_TRUE(broker_->wait_for_log("TLS handshake failed: listener=mtls", wait_limit))
      << broker_->describe();
  EXPECT_NE(broker_->log().find("peer did not return a certificate"), std::string::npos)
      << broker_->log();

  // A certificate from a CA the listener does not trust (same CN): refused too.
  r = run(tls_args("mosquitto_pub", "mtls"), {"--cert", pki_->cert("rogue-7"), "--key",
                                              pki_->key("rogue-7"), "-t", "mtls/a", "-q", "1",
                                              "-m", "rogue"});
  EXPECT_FALSE(r.succeeded()) << r.describe();
  EXPECT_TRUE(broker_->wait_for_log("certificate verify failed", wait_limit))
      << broker_->describe();
  EXPECT_EQ(count_of(broker_->log(), "TLS handshake failed: listener=mtls"), 2u)
      << broker_->log();
  // Neither got as far as MQTT.
  EXPECT_EQ(count_of(broker_->log(), "client connected:"), 2u) << broker_->log();
}

TEST_F(TransportTls, OnlyTls12AndTls13AreAccepted) {
  start({tls_listener("tls", *pki_, "server")});
  // SECLEVEL=0: OpenSSL 3 would not even offer TLS 1.1 otherwise, and the
  // refusal must come from the server.
  auto r = s_client("tls", {"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"});
  EXPECT_FALSE(r.succeeded()) << r.describe();
  EXPECT_NE((r.out + r.err).find("alert protocol version"), std::string::npos) << r.describe();
  EXPECT_TRUE(broker_->wait_for_log("unsupported protocol", wait_limit)) << broker_->describe();

  for (const std::string version : {"1.2", "1.3"}) {
    r = s_client("tls", {version == "1.2" ? "-tls1_2" : "-tls1_3", "-CAfile", pki_->ca(),
                         "-verify_return_error", "-verify_ip", "127.0.0.1"});
    EXPECT_TRUE(r.succeeded()) << r.describe();
    EXPECT_NE(r.out.find("New, TLSv" + version + ", Cipher is"), std::string::npos)
        << r.describe();
    EXPECT_NE(r.out.find("Verify return code: 0 (ok)"), std::string::npos) << r.describe();
  }
}

TEST_F(TransportTls, CertificateCommonNameIsTheUserName) {
  const auto acl = dir_->write("acl",
                               "user device-7\n"
                               "topic readwrite devices/7/#\n");
  start({tls_listener("devices", *pki_, "server",
                      "ca_file: \"" + pki_->ca() +
                          "\", require_client_cert: true, use_identity_as_username: true")},
        {"auth.acl_file=" + acl, "http.bind=127.0.0.1:0"});
  auto as = [&](const std::string& device, const std::string& program) {
    auto argv = tls_args(program, "devices");
    argv.insert(argv.end(), {"--cert", pki_->cert(device), "--key", pki_->key(device), "-V", "5"});
    return argv;
  };
  // The user name in CONNECT does not count: the certificate's CN does.
  auto& seven = subscriber(as("device-7", "mosquitto_sub"),
                           {"-i", "seven", "-u", "someone-else", "-t", "devices/7/#", "-q", "1"});
  // The SUBACK grants QoS 1 (a refusal would be 135, Not authorized).
  EXPECT_TRUE(seven.wait_for_out("Subscribed (mid: 1): 1\n", wait_limit)) << seven.describe();

  const auto http = http_port_of(*broker_);
  const auto reply = http_request(http, "GET", "/api/v1/clients/seven");
  ASSERT_EQ(reply.status, 200) << reply.describe();
  const auto json = reply.json();
  ASSERT_TRUE(json.is_object()) << reply.body;
  const auto* username = json.as_object().if_contains("username");
  ASSERT_TRUE(username && username->is_string()) << reply.body;
  EXPECT_EQ(username->as_string(), "device-7") << reply.body;

  // device-8 (same CA, no ACL section) may neither subscribe nor publish there.
  auto r = run(as("device-8", "mosquitto_sub"),
               {"-i", "eight", "-u", "device-7", "-t", "devices/7/#", "-q", "1", "-E", "-d"});
  EXPECT_NE(r.out.find("Subscribed (mid: 1): 135"), std::string::npos) << r.describe();
  r = run(as("device-8", "mosquitto_pub"),
          {"-i", "eight", "-u", "device-7", "-t", "devices/7/temp", "-q", "1", "-m", "from 8"});
  EXPECT_NE((r.out + r.err).find("Not authorized"), std::string::npos) << r.describe();
  // device-7 may, whatever user name it sends.
  r = run(as("device-7", "mosquitto_pub"),
          {"-i", "seven-pub", "-u", "nobody", "-t", "devices/7/temp", "-q", "1", "-m", "from 7"});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  ASSERT_TRUE(seven.wait_for_out("MSG|devices/7/temp|1|from 7\n", wait_limit)) << seven.describe();
  EXPECT_EQ(seven.out().find("from 8"), std::string::npos) << seven.out();
}

TEST_F(TransportTls, SighupSwapsCertificatesWithoutDroppingConnections) {
  ASSERT_TRUE(program_available("node")) << "node is missing: install Debian's nodejs";
  ASSERT_TRUE(pki_->make_server_cert("rotated", "/CN=ringmq-rotated", "0x1002"))
      << pki_->error();
  // The files the listener reads, replaced by renaming as Kubernetes does.
  const auto live_cert = dir_->file("live.crt");
  const auto live_key = dir_->file("live.key");
  auto install = [&](const std::string& cert, const std::string& key) {
    std::filesystem::copy_file(cert, live_cert + ".new",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(key, live_key + ".new",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(live_key + ".new", live_key);
    std::filesystem::rename(live_cert + ".new", live_cert);
  };
  install(pki_->cert("server"), pki_->key("server"));
  start({"{type: mqtts, name: tls, bind: \"127.0.0.1:0\", cert_file: \"" + live_cert +
         "\", key_file: \"" + live_key + "\"}"});
  EXPECT_EQ(served_certificate("tls"), "serial=1001\nsubject=CN = localhost\n");

  background_process session({"node", js_dir + "/tls_session.mjs",
                              std::to_string(port("tls")), pki_->ca()});
  ASSERT_TRUE(session.wait_for_out("ready serial=1001", wait_limit))
      << session.describe() << broker_->describe();

  // A broken pair (key of another certificate) is refused; the old one stays.
  install(pki_->cert("rotated"), pki_->key("server"));
  ASSERT_TRUE(broker_->process().signal(SIGHUP));
  ASSERT_TRUE(
      broker_->wait_for_log("reload failed, keeping the previous certificates", wait_limit))
      << broker_->describe();
  EXPECT_EQ(served_certificate("tls"), "serial=1001\nsubject=CN = localhost\n");

  install(pki_->cert("rotated"), pki_->key("rotated"));
  ASSERT_TRUE(broker_->process().signal(SIGHUP));
  // The reload runs on the thread that accepts, so any connection accepted
  // after its log line was written gets the new certificate.
  ASSERT_TRUE(broker_->wait_for_log_count("SIGHUP: reloading", 2, wait_limit))
      << broker_->describe();
  EXPECT_EQ(served_certificate("tls"), "serial=1002\nsubject=CN = ringmq-rotated\n");
  const auto r = run(tls_args("mosquitto_pub", "tls"), {"-t", "x", "-q", "1", "-m", "new"});
  EXPECT_TRUE(r.succeeded()) << r.describe();

  // The connection opened before both reloads still works, on its old certificate.
  ASSERT_TRUE(session.signal(SIGUSR1));
  const auto status = session.wait_exit(wait_limit);
  ASSERT_TRUE(status && status->clean()) << session.describe() << broker_->describe();
  EXPECT_NE(session.out().find("round trip ok serial=1001"), std::string::npos)
      << session.describe();
  EXPECT_TRUE(broker_->wait_for_log("client disconnected: client_id=tls-session", wait_limit))
      << broker_->describe();
  EXPECT_EQ(count_of(broker_->log(), "client connected: client_id=tls-session"), 1u)
      << broker_->log();
}

TEST_F(TransportTls, SilentClientIsClosedAtTheHandshakeDeadline) {
  start({tls_listener("tls", *pki_, "server")}, {"mqtt.connect_timeout_ms=1000"});
  const auto began = steady::now();
  const int fd = open_socket(port("tls"));
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const bool closed = wait_peer_closed(fd, milliseconds(5'000));
  const auto took = std::chrono::duration_cast<milliseconds>(steady::now() - began);
  ::close(fd);
  ASSERT_TRUE(closed) << "still open after 5 s\n" << broker_->describe();
  EXPECT_GE(took.count(), 900);
  EXPECT_LE(took.count(), 3'000);
  EXPECT_TRUE(broker_->wait_for_log("TLS handshake failed: listener=tls", wait_limit))
      << broker_->describe();
  EXPECT_NE(broker_->log().find("reason=no TLS handshake in time"), std::string::npos)
      << broker_->log();
}

}  // namespace
}  // namespace ringmq::testing
