// ringmq driven by Debian's mosquitto_pub and mosquitto_sub (mosquitto-clients):
// QoS 0/1/2 delivery, retained messages, wills, MQTT 5 properties and
// persistent sessions. Subscribers run in the background with -d, so the test
// knows when their SUBACK arrived before it publishes; messages are printed
// with -F as "MSG|..." lines that the test waits for.

#include <gtest/gtest.h>
#include <signal.h>

#include <sstream>

#include "tests/integration/child_process.hpp"
#include "tests/support/broker_process.hpp"

namespace ringmq::testing {
namespace {

constexpr milliseconds wait_limit{10'000};

// Fields of every received message: topic, QoS, retain flag, payload.
const std::string basic_format = "MSG|%t|%q|%r|%p";

class BrokerMosquitto : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* program : {"mosquitto_pub", "mosquitto_sub"}) {
      ASSERT_TRUE(program_available(program))
          << program << " is missing: install the Debian package mosquitto-clients";
    }
    broker_ = std::make_unique<broker_process>(std::vector<std::string>{"mqtt.sys_interval_s=0"});
    ASSERT_TRUE(broker_->ready()) << broker_->describe();
  }

  void TearDown() override {
    subscribers_.clear();
    if (broker_ && broker_->ready()) {
      const auto status = broker_->stop();
      EXPECT_TRUE(status && status->clean()) << broker_->describe();
    }
  }

  std::vector<std::string> connection_args(const std::string& program) const {
    return {program, "-h", "127.0.0.1", "-p", broker_->port_string()};
  }

  // mosquitto_sub in the background: its stdout is a pipe, which stdio would
  // buffer in blocks; line buffering shows each line as it is printed.
  std::vector<std::string> background_args() const {
    auto argv = connection_args("mosquitto_sub");
    argv.insert(argv.begin(), {"stdbuf", "-oL"});
    return argv;
  }

  // Runs mosquitto_pub to completion.
  child_result pub(const std::vector<std::string>& args) {
    auto argv = connection_args("mosquitto_pub");
    argv.insert(argv.end(), args.begin(), args.end());
    child_options options;
    options.timeout = wait_limit;
    return run_child(argv, options);
  }

  // Runs mosquitto_sub to completion (use -C or -E so that it ends).
  // --nodelay: mosquitto_sub -C closes its socket right after the last
  // message, often with a SUBACK or more unread, so the kernel resets the
  // connection; with Nagle on, its last PUBACKs may still sit unsent in the
  // socket and are lost with the reset, and the broker rightly redelivers them.
  child_result sub_once(const std::vector<std::string>& args) {
    auto argv = connection_args("mosquitto_sub");
    argv.push_back("--nodelay");
    argv.insert(argv.end(), args.begin(), args.end());
    child_options options;
    options.timeout = wait_limit;
    return run_child(argv, options);
  }

  // Starts mosquitto_sub in the background and waits for its SUBACK (or, with
  // `ready_text`, for that text in its output).
  background_process& subscriber(const std::vector<std::string>& args,
                                 const std::string& format = basic_format,
                                 const std::string& ready_text = "received SUBACK") {
    auto argv = background_args();
    argv.insert(argv.end(), {"-d", "-F", format});
    argv.insert(argv.end(), args.begin(), args.end());
    subscribers_.push_back(std::make_unique<background_process>(argv));
    auto& s = *subscribers_.back();
    EXPECT_TRUE(s.wait_for_out(ready_text, wait_limit)) << s.describe() << broker_->describe();
    return s;
  }

  // A persistent subscriber (-c -i ID, QoS 1) disconnects; what is published
  // meanwhile is queued and delivered, in order, when it comes back.
  void persistent_session(const std::string& version, const std::string& id) {
    const std::string topic = "persist/" + id;
    // -E: exit as soon as the subscription is acknowledged.
    auto r = sub_once({"-V", version, "-c", "-i", id, "-q", "1", "-t", topic, "-E"});
    ASSERT_TRUE(r.succeeded()) << r.describe();
    for (const char* m : {"first", "second", "third"}) {
      r = pub({"-V", version, "-q", "1", "-t", topic, "-m", m});
      ASSERT_TRUE(r.succeeded()) << r.describe();
    }
    r = sub_once(
        {"-V", version, "-c", "-i", id, "-q", "1", "-t", topic, "-C", "3", "-F", basic_format});
    ASSERT_TRUE(r.succeeded()) << r.describe();
    EXPECT_EQ(r.out, "MSG|" + topic + "|1|0|first\nMSG|" + topic + "|1|0|second\nMSG|" + topic +
                         "|1|0|third\n");
    // Delivered once: the next reconnection finds the queue empty. A fresh
    // message is the sentinel: it must be the first thing that arrives.
    r = pub({"-V", version, "-q", "1", "-t", topic, "-m", "fresh"});
    ASSERT_TRUE(r.succeeded()) << r.describe();
    r = sub_once(
        {"-V", version, "-c", "-i", id, "-q", "1", "-t", topic, "-C", "1", "-F", basic_format});
    ASSERT_TRUE(r.succeeded()) << r.describe();
    EXPECT_EQ(r.out, "MSG|" + topic + "|1|0|fresh\n");
  }

  std::unique_ptr<broker_process> broker_;
  std::vector<std::unique_ptr<background_process>> subscribers_;
};

// The "MSG|..." lines printed so far.
std::vector<std::string> messages(const background_process& p) {
  std::vector<std::string> out;
  std::istringstream lines(p.out());
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("MSG|", 0) == 0) out.push_back(line);
  }
  return out;
}

bool wait_for_messages(background_process& p, std::size_t count) {
  return p.wait_for(
      [count](const std::string& out, const std::string&) {
        return count_of(out, "\nMSG|") + (out.rfind("MSG|", 0) == 0 ? 1 : 0) >= count;
      },
      wait_limit);
}

TEST_F(BrokerMosquitto, DeliversAtQos0And1And2) {
  auto& q2 = subscriber({"-t", "qos/#", "-q", "2"});
  auto& q1 = subscriber({"-t", "qos/#", "-q", "1"});
  for (const char* qos : {"0", "1", "2"}) {
    const auto r = pub(
        {"-t", std::string("qos/") + qos, "-q", qos, "-m", std::string("payload at qos ") + qos});
    ASSERT_TRUE(r.succeeded()) << r.describe();
  }
  ASSERT_TRUE(wait_for_messages(q2, 3)) << q2.describe();
  ASSERT_TRUE(wait_for_messages(q1, 3)) << q1.describe();
  // Delivered at the publish QoS, in order, to a subscriber granted QoS 2 ...
  EXPECT_EQ(messages(q2), (std::vector<std::string>{"MSG|qos/0|0|0|payload at qos 0",
                                                    "MSG|qos/1|1|0|payload at qos 1",
                                                    "MSG|qos/2|2|0|payload at qos 2"}))
      << q2.describe();
  // ... and downgraded to the granted QoS for a subscriber granted QoS 1.
  EXPECT_EQ(messages(q1), (std::vector<std::string>{"MSG|qos/0|0|0|payload at qos 0",
                                                    "MSG|qos/1|1|0|payload at qos 1",
                                                    "MSG|qos/2|1|0|payload at qos 2"}))
      << q1.describe();
}

TEST_F(BrokerMosquitto, QosTwoPublishFromAV5ClientReachesAV311Subscriber) {
  auto& sub = subscriber({"-t", "mixed/t", "-q", "2", "-V", "mqttv311"});
  for (int i = 1; i <= 3; ++i) {
    const auto r = pub({"-V", "mqttv5", "-t", "mixed/t", "-q", "2", "-m", "m" + std::to_string(i)});
    ASSERT_TRUE(r.succeeded()) << r.describe();
  }
  ASSERT_TRUE(wait_for_messages(sub, 3)) << sub.describe();
  EXPECT_EQ(messages(sub), (std::vector<std::string>{"MSG|mixed/t|2|0|m1", "MSG|mixed/t|2|0|m2",
                                                     "MSG|mixed/t|2|0|m3"}));
}

TEST_F(BrokerMosquitto, RetainedIsStoredDeliveredOnSubscribeAndCleared) {
  auto r = pub({"-t", "retained/a", "-q", "1", "-r", "-m", "kept"});
  ASSERT_TRUE(r.succeeded()) << r.describe();

  // A new subscriber gets it, with the retain flag set.
  r = sub_once({"-t", "retained/#", "-q", "1", "-C", "1", "-F", basic_format});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  EXPECT_EQ(r.out, "MSG|retained/a|1|1|kept\n");

  // An existing subscriber gets later publishes without the retain flag.
  auto& live = subscriber({"-t", "retained/#", "-q", "1"});
  ASSERT_TRUE(wait_for_messages(live, 1)) << live.describe();
  r = pub({"-t", "retained/a", "-q", "1", "-r", "-m", "replaced"});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  ASSERT_TRUE(wait_for_messages(live, 2)) << live.describe();
  EXPECT_EQ(messages(live).back(), "MSG|retained/a|1|0|replaced");

  // An empty retained message clears it. A second retained topic is the
  // sentinel: both filters are in one SUBSCRIBE and retained messages come in
  // filter order, so the first message seen is retained/a's if it survived.
  r = pub({"-t", "retained/a", "-r", "-n"});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  r = pub({"-t", "retained/sentinel", "-q", "1", "-r", "-m", "sentinel"});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  r = sub_once(
      {"-t", "retained/a", "-t", "retained/sentinel", "-q", "1", "-C", "1", "-F", basic_format});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  EXPECT_EQ(r.out, "MSG|retained/sentinel|1|1|sentinel\n");
}

TEST_F(BrokerMosquitto, WillIsSentWhenTheClientDiesButNotOnNormalDisconnect) {
  auto& watcher = subscriber({"-t", "will/#", "-q", "1"});

  // A client killed with SIGKILL: the broker sees the connection drop.
  auto doomed_args = background_args();
  doomed_args.insert(doomed_args.end(),
                     {"-d", "-i", "doomed", "-t", "doomed/nothing", "--will-topic", "will/doomed",
                      "--will-payload", "doomed is gone", "--will-qos", "1"});
  background_process doomed(doomed_args);
  ASSERT_TRUE(doomed.wait_for_out("received SUBACK", wait_limit)) << doomed.describe();
  ASSERT_TRUE(doomed.signal(SIGKILL));
  ASSERT_TRUE(wait_for_messages(watcher, 1)) << watcher.describe() << broker_->describe();
  EXPECT_EQ(messages(watcher)[0], "MSG|will/doomed|1|0|doomed is gone");

  // mosquitto_pub with a will disconnects normally: no will.
  auto r = pub({"-i", "polite", "-t", "polite/data", "-m", "x", "--will-topic", "will/polite",
                "--will-payload", "must not be sent"});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  // The will would be published before the broker logs the disconnection; a
  // message published after that line reaches the watcher after any will.
  ASSERT_TRUE(broker_->wait_for_log("client disconnected: client_id=polite"))
      << broker_->describe();
  r = pub({"-t", "will/polite", "-q", "1", "-m", "sentinel"});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  ASSERT_TRUE(wait_for_messages(watcher, 2)) << watcher.describe();
  EXPECT_EQ(messages(watcher), (std::vector<std::string>{"MSG|will/doomed|1|0|doomed is gone",
                                                         "MSG|will/polite|1|0|sentinel"}));
}

TEST_F(BrokerMosquitto, V5PropertiesReachAV5Subscriber) {
  // %P user properties, %C content type, %R response topic, %D correlation
  // data, %E message expiry interval, %F payload format, %S subscription id.
  auto& sub = subscriber({"-V", "mqttv5", "-t", "props/#", "-q", "1", "-D", "subscribe",
                          "subscription-identifier", "7"},
                         "MSG|%t|%q|%p|%P|%C|%R|%D|%E|%F|%S");
  std::vector<std::string> args{"-V", "mqttv5", "-t", "props/a", "-q", "1", "-m", "body"};
  const std::vector<std::vector<std::string>> properties{
      {"user-property", "k1", "v1"},    {"user-property", "k2", "second value"},
      {"content-type", "text/plain"},   {"response-topic", "reply/here"},
      {"correlation-data", "corr-42"},  {"message-expiry-interval", "3600"},
      {"payload-format-indicator", "1"}};
  for (const auto& p : properties) {
    args.insert(args.end(), {"-D", "publish"});
    args.insert(args.end(), p.begin(), p.end());
  }
  const auto r = pub(args);
  ASSERT_TRUE(r.succeeded()) << r.describe();
  ASSERT_TRUE(wait_for_messages(sub, 1)) << sub.describe();
  const auto got = messages(sub).at(0);
  // The expiry is what is left of it when forwarded: 3600 or a second less.
  EXPECT_TRUE(
      got == "MSG|props/a|1|body|k1:v1 k2:second value|text/plain|reply/here|corr-42|3600|1|7" ||
      got == "MSG|props/a|1|body|k1:v1 k2:second value|text/plain|reply/here|corr-42|3599|1|7")
      << got;
}

TEST_F(BrokerMosquitto, V311SubscriberSeesNoProperties) {
  auto& sub = subscriber({"-V", "mqttv311", "-t", "props/#"}, "MSG|%t|%p|%P|%C|%R");
  const auto r = pub({"-V", "mqttv5", "-t", "props/b", "-m", "plain", "-D", "publish",
                      "user-property", "k", "v", "-D", "publish", "content-type", "text/plain"});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  ASSERT_TRUE(wait_for_messages(sub, 1)) << sub.describe();
  EXPECT_EQ(messages(sub).at(0), "MSG|props/b|plain|||");
}

TEST_F(BrokerMosquitto, PersistentSessionKeepsMessagesWhileOfflineV311) {
  persistent_session("mqttv311", "persist-311");
}

TEST_F(BrokerMosquitto, PersistentSessionKeepsMessagesWhileOfflineV5) {
  persistent_session("mqttv5", "persist-5");
}

TEST_F(BrokerMosquitto, CleanSessionDiscardsWhatWasQueued) {
  auto r = sub_once({"-c", "-i", "cleaned", "-q", "1", "-t", "clean/t", "-E"});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  r = pub({"-q", "1", "-t", "clean/t", "-m", "queued for the old session"});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  // Connecting with a clean session (no -c) throws the old one away.
  auto& fresh = subscriber({"-i", "cleaned", "-q", "1", "-t", "clean/t"});
  r = pub({"-q", "1", "-t", "clean/t", "-m", "after"});
  ASSERT_TRUE(r.succeeded()) << r.describe();
  ASSERT_TRUE(wait_for_messages(fresh, 1)) << fresh.describe();
  EXPECT_EQ(messages(fresh), std::vector<std::string>{"MSG|clean/t|1|0|after"});
}

}  // namespace
}  // namespace ringmq::testing
