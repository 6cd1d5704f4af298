// ACL files over the wire: user sections, patterns with %c and %u, deny,
// read-only and write-only lines, $SYS, retained delivery, SUBACK and PUBACK
// codes in 5.0 and 3.1.1, the wildcard-in-client-id attack, and SIGHUP
// tightening an ACL under existing subscriptions and queued messages.
//
// The brokers here have an ACL file and no password file, so user names are
// taken as given: the ACL is what is under test. A message that must not
// arrive is followed by one that must; the next delivery is the latter.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>

#include "tests/integration/auth_client.hpp"
#include "tests/integration/auth_files.hpp"
#include "tests/integration/child_process.hpp"
#include "tests/support/broker_process.hpp"

namespace ringmq::testing {
namespace {

using codec::protocol_version;

constexpr milliseconds wait_limit{10'000};
constexpr std::uint8_t granted_qos1 = 0x01;
constexpr std::uint8_t success = 0x00;
constexpr std::uint8_t no_subscribers = 0x10;
constexpr std::uint8_t not_authorized = 0x87;
constexpr std::uint8_t v3_failure = 0x80;

const std::string acl_text =
    "# Clients without a user name.\n"
    "topic read public/#\n"
    "topic read $SYS/broker/version\n"
    "\n"
    "user alice\n"
    "topic readwrite alice/#\n"
    "topic read shared/#\n"
    "topic deny shared/secret/#\n"
    "topic write inbox/bob\n"
    "\n"
    "user bob\n"
    "topic read inbox/bob\n"
    "topic read shared/#\n"
    "\n"
    "user admin\n"
    "topic readwrite #\n"
    "topic read $SYS/#\n"
    "\n"
    "pattern readwrite devices/%c/#\n"
    "pattern read users/%u/#\n";

class AuthAcl : public ::testing::Test {
 protected:
  void SetUp() override { start(acl_text); }

  void start(const std::string& acl, std::vector<std::string> more = {}) {
    acl_ = dir_.write("acl", acl);
    more.push_back("auth.acl_file=" + acl_);
    broker_ = std::make_unique<broker_process>(more);
    ASSERT_TRUE(broker_->ready()) << broker_->describe();
  }

  void TearDown() override {
    if (broker_ && broker_->ready()) {
      const auto status = broker_->stop();
      EXPECT_TRUE(status && status->clean()) << broker_->describe();
    }
  }

  std::unique_ptr<auth_client> connect(std::string id, std::optional<std::string> user,
                                       protocol_version v = protocol_version::v5) {
    auto c = std::make_unique<auth_client>(broker_->port(),
                                           auth_client::options{v, std::move(id), std::move(user)});
    EXPECT_TRUE(c->connected()) << c->error() << broker_->describe();
    return c;
  }

  void sighup_and_wait(std::string_view logged, std::size_t times) {
    ASSERT_EQ(::kill(broker_->pid(), SIGHUP), 0);
    ASSERT_TRUE(broker_->wait_for_log_count(logged, times)) << broker_->describe();
  }

  scratch_dir dir_;
  std::string acl_;
  std::unique_ptr<broker_process> broker_;
};

TEST_F(AuthAcl, UserSectionsWithReadOnlyAndWriteOnlyLines) {
  EXPECT_TRUE(broker_->wait_for_log("ACL file loaded: " + acl_ + " rules=12"))
      << broker_->describe();
  auto alice = connect("alice-1", "alice");
  auto bob = connect("bob-1", "bob");
  // alice: readwrite on her own tree.
  EXPECT_EQ(alice->subscribe({"alice/#"}), std::vector<std::uint8_t>{granted_qos1});
  EXPECT_EQ(alice->publish("alice/status", "up"), success);
  EXPECT_EQ(alice->next(), "alice/status=up");
  // bob: read only on inbox/bob; alice: write only there.
  EXPECT_EQ(bob->subscribe({"inbox/bob"}), std::vector<std::uint8_t>{granted_qos1});
  EXPECT_EQ(bob->publish("inbox/bob", "from bob"), not_authorized);
  EXPECT_EQ(alice->publish("inbox/bob", "from alice"), success);
  EXPECT_EQ(bob->next(), "inbox/bob=from alice");
  EXPECT_EQ(alice->subscribe({"inbox/bob", "alice/x"}),
            (std::vector<std::uint8_t>{not_authorized, granted_qos1}));
  // Nobody else's tree.
  EXPECT_EQ(bob->publish("alice/status", "hijack"), not_authorized);
  EXPECT_EQ(bob->subscribe({"alice/#"}), std::vector<std::uint8_t>{not_authorized});
  EXPECT_EQ(alice->publish("alice/status", "still mine"), success);
  EXPECT_EQ(alice->next(), "alice/status=still mine");
  // Refused publishes are counted as drops and logged nowhere per message; the
  // clients stay connected.
  EXPECT_EQ(bob->publish("inbox/bob", "again"), not_authorized);
}

TEST_F(AuthAcl, ThreeOneOneGetsSubackFailureAndSilentlyDroppedPublishes) {
  auto bob = connect("bob-3", "bob", protocol_version::v3_1_1);
  auto alice = connect("alice-3", "alice", protocol_version::v3_1_1);
  EXPECT_EQ(bob->subscribe({"inbox/bob", "alice/#"}),
            (std::vector<std::uint8_t>{granted_qos1, v3_failure}));
  EXPECT_EQ(alice->subscribe({"alice/#"}), std::vector<std::uint8_t>{granted_qos1});
  // 3.1.1 cannot say no to a PUBLISH: acknowledged, then dropped (as mosquitto does).
  EXPECT_EQ(bob->publish("alice/forbidden", "dropped"), success);
  EXPECT_EQ(alice->publish("alice/allowed", "kept"), success);
  EXPECT_EQ(alice->next(), "alice/allowed=kept");
  EXPECT_TRUE(broker_->wait_for_log("ACL file loaded")) << broker_->describe();
}

TEST_F(AuthAcl, DenyWinsAndRetainedMessagesAreFilteredAtDelivery) {
  auto admin = connect("console", "admin");
  EXPECT_EQ(admin->publish("shared/open", "for all", true), no_subscribers);
  EXPECT_EQ(admin->publish("shared/secret/code", "1234", true), no_subscribers);
  EXPECT_EQ(admin->publish("shared/zzz", "last", true), no_subscribers);

  auto alice = connect("alice-r", "alice");
  EXPECT_EQ(alice->subscribe({"shared/secret/#"}), std::vector<std::uint8_t>{not_authorized});
  // shared/# can deliver something, so it is granted; the secret is not delivered.
  EXPECT_EQ(alice->subscribe({"shared/#"}), std::vector<std::uint8_t>{granted_qos1});
  std::vector<std::string> retained;
  for (int i = 0; i < 2; ++i) retained.push_back(alice->next());
  std::sort(retained.begin(), retained.end());
  EXPECT_EQ(retained, (std::vector<std::string>{"shared/open=for all", "shared/zzz=last"}));
  // Denied for alice, the only subscriber: nobody gets it (0x10).
  EXPECT_EQ(admin->publish("shared/secret/code", "5678", true), no_subscribers);
  EXPECT_EQ(admin->publish("shared/after", "live"), success);
  EXPECT_EQ(alice->next(), "shared/after=live");

  // bob has no deny line: he gets all three retained messages.
  auto bob = connect("bob-r", "bob");
  EXPECT_EQ(bob->subscribe({"shared/#"}), std::vector<std::uint8_t>{granted_qos1});
  std::vector<std::string> all;
  for (int i = 0; i < 3; ++i) all.push_back(bob->next());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<std::string>{"shared/open=for all", "shared/secret/code=5678",
                                           "shared/zzz=last"}));
}

TEST_F(AuthAcl, PatternsSubstituteClientIdAndUserName) {
  auto dev1 = connect("dev1", std::nullopt);
  auto dev2 = connect("dev2", std::nullopt);
  EXPECT_EQ(dev1->subscribe({"devices/dev1/#", "devices/dev2/#"}),
            (std::vector<std::uint8_t>{granted_qos1, not_authorized}));
  EXPECT_EQ(dev2->subscribe({"devices/dev2/#"}), std::vector<std::uint8_t>{granted_qos1});
  EXPECT_EQ(dev1->publish("devices/dev2/cmd", "reboot"), not_authorized);
  EXPECT_EQ(dev2->publish("devices/dev2/temp", "21"), success);
  EXPECT_EQ(dev2->next(), "devices/dev2/temp=21");
  EXPECT_EQ(dev1->publish("devices/dev1/temp", "19"), success);
  EXPECT_EQ(dev1->next(), "devices/dev1/temp=19");

  auto carol = connect("phone", "carol");
  auto admin = connect("console", "admin");
  EXPECT_EQ(carol->subscribe({"users/carol/#", "users/dave/#"}),
            (std::vector<std::uint8_t>{granted_qos1, not_authorized}));
  EXPECT_EQ(carol->publish("users/carol/mail", "self"), not_authorized);  // read only
  EXPECT_EQ(admin->publish("users/carol/mail", "hello carol"), success);
  EXPECT_EQ(carol->next(), "users/carol/mail=hello carol");
  // Without a user name, %u grants nothing.
  auto anonymous = connect("carol", std::nullopt);
  EXPECT_EQ(anonymous->subscribe({"users/carol/#"}), std::vector<std::uint8_t>{not_authorized});
}

// CVE-2017-7650: "pattern readwrite devices/%c/#" must not give a client named
// "#" (or "+", or "x/#") the whole devices/ tree.
TEST_F(AuthAcl, WildcardsInTheClientIdDoNotWidenAPattern) {
  auto admin = connect("console", "admin");
  EXPECT_EQ(admin->publish("devices/dev2/secret", "retained key", true), no_subscribers);
  auto dev2 = connect("dev2", std::nullopt);
  EXPECT_EQ(dev2->subscribe({"devices/dev2/#"}), std::vector<std::uint8_t>{granted_qos1});
  EXPECT_EQ(dev2->next(), "devices/dev2/secret=retained key");

  for (const char* id : {"#", "+", "x/#", "dev2/#", "devices/+"}) {
    SCOPED_TRACE(id);
    auto attacker = connect(id, std::nullopt);
    EXPECT_EQ(attacker->subscribe({"devices/#", "devices/+/secret", "devices/dev2/#"}),
              (std::vector<std::uint8_t>{not_authorized, not_authorized, not_authorized}));
    EXPECT_EQ(attacker->publish("devices/dev2/cmd", "unlock"), not_authorized);
    // "#" is granted (public/# is readable) but delivers nothing of devices/.
    EXPECT_EQ(attacker->subscribe({"#"}), std::vector<std::uint8_t>{granted_qos1});
    EXPECT_EQ(admin->publish("devices/dev2/secret", "live key"), success);
    EXPECT_EQ(dev2->next(), "devices/dev2/secret=live key");
    EXPECT_EQ(admin->publish("public/sentinel", "end"), success);
    EXPECT_EQ(attacker->next(), "public/sentinel=end");
  }

  // A real client, for good measure: mosquitto_sub -i '#' is refused the subscription.
  const auto r = run_child({"mosquitto_sub", "-h", "127.0.0.1", "-p", broker_->port_string(),
                            "-V", "mqttv5", "-i", "#", "-t", "devices/#", "-d", "-E"},
                           child_options{wait_limit, {}, {}});
  EXPECT_NE(r.out.find("Subscribed (mid: 1): 135"), std::string::npos) << r.describe();
}

TEST_F(AuthAcl, SysTopicsNeedTheirOwnLinesAndNobodyPublishesThere) {
  // The broker publishes $SYS (retained) at start.
  auto anonymous = connect("watcher", std::nullopt);
  EXPECT_EQ(anonymous->subscribe({"$SYS/broker/version", "$SYS/broker/uptime"}),
            (std::vector<std::uint8_t>{granted_qos1, not_authorized}));
  const auto version = anonymous->next_message();
  ASSERT_TRUE(version) << broker_->describe();
  EXPECT_EQ(version->topic, "$SYS/broker/version");
  EXPECT_TRUE(version->payload.starts_with("ringmq ")) << version->payload;

  // alice's lines do not start with $: no $SYS for her.
  auto alice = connect("alice-s", "alice");
  EXPECT_EQ(alice->subscribe({"$SYS/#"}), std::vector<std::uint8_t>{not_authorized});
  // admin's "#" does not reach $SYS, his "$SYS/#" line does; writing there is the broker's.
  auto admin = connect("console", "admin");
  EXPECT_EQ(admin->subscribe({"$SYS/broker/uptime"}), std::vector<std::uint8_t>{granted_qos1});
  const auto uptime = admin->next_message();
  ASSERT_TRUE(uptime) << broker_->describe();
  EXPECT_EQ(uptime->topic, "$SYS/broker/uptime");
  EXPECT_EQ(admin->publish("$SYS/broker/version", "fake"), not_authorized);
}

TEST_F(AuthAcl, SighupTightensTheAclUnderExistingSubscriptions) {
  auto bob = connect("bob-h", "bob");
  auto admin = connect("console", "admin");
  EXPECT_EQ(bob->subscribe({"shared/#", "inbox/bob"}),
            (std::vector<std::uint8_t>{granted_qos1, granted_qos1}));
  EXPECT_EQ(admin->publish("shared/news", "before"), success);
  EXPECT_EQ(bob->next(), "shared/news=before");

  // bob loses shared/#: his subscription stays, but nothing more is delivered on it.
  const std::string bob_before = "user bob\ntopic read inbox/bob\ntopic read shared/#\n";
  auto tightened = acl_text;
  tightened.replace(tightened.find(bob_before), bob_before.size(),
                    "user bob\ntopic read inbox/bob\n");
  dir_.write("acl", tightened);
  sighup_and_wait("ACL file reloaded: " + acl_ + " rules=11", 1);
  EXPECT_EQ(admin->publish("shared/news", "after"), no_subscribers);  // bob may not read it
  EXPECT_EQ(admin->publish("inbox/bob", "sentinel"), success);
  EXPECT_EQ(bob->next(), "inbox/bob=sentinel");
  EXPECT_EQ(bob->subscribe({"shared/#"}), std::vector<std::uint8_t>{not_authorized});

  // A broken edit is refused and the tightened rules stay.
  dir_.write("acl", tightened + "topic raed shared/#\n");
  const auto bad_line = std::count(tightened.begin(), tightened.end(), '\n') + 1;
  sighup_and_wait("ACL file reload failed, keeping the previous rules: " + acl_ + ":" +
                      std::to_string(bad_line) + ": unknown access \"raed\"",
                  1);
  EXPECT_EQ(admin->publish("shared/news", "still not"), no_subscribers);
  EXPECT_EQ(admin->publish("inbox/bob", "sentinel 2"), success);
  EXPECT_EQ(bob->next(), "inbox/bob=sentinel 2");
}

// A read right revoked while a persistent session is offline applies to the
// messages already queued for it: they meet the ACL in force when they leave
// the queue, not the one of the moment they were queued.
TEST_F(AuthAcl, SighupAppliesToMessagesQueuedForAnOfflineSession) {
  auto admin = connect("console", "admin");
  auth_client::options persistent{protocol_version::v5, "bob-offline", "bob"};
  persistent.session_expiry = 3600;
  {
    auth_client bob(broker_->port(), persistent);
    ASSERT_TRUE(bob.connected()) << bob.error();
    EXPECT_EQ(bob.subscribe({"shared/#", "inbox/bob"}),
              (std::vector<std::uint8_t>{granted_qos1, granted_qos1}));
  }
  ASSERT_TRUE(broker_->wait_for_log("client disconnected: client_id=bob-offline"))
      << broker_->describe();
  EXPECT_EQ(admin->publish("shared/news", "queued while bob was away"), success);
  EXPECT_EQ(admin->publish("inbox/bob", "sentinel"), success);

  const std::string bob_before = "user bob\ntopic read inbox/bob\ntopic read shared/#\n";
  auto tightened = acl_text;
  tightened.replace(tightened.find(bob_before), bob_before.size(),
                    "user bob\ntopic read inbox/bob\n");
  dir_.write("acl", tightened);
  sighup_and_wait("ACL file reloaded: " + acl_ + " rules=11", 1);

  auth_client bob(broker_->port(), persistent);
  ASSERT_TRUE(bob.connected()) << bob.error();
  // The queue keeps publish order: had the news gone out, it would come first.
  EXPECT_EQ(bob.next(), "inbox/bob=sentinel");
}

}  // namespace
}  // namespace ringmq::testing
