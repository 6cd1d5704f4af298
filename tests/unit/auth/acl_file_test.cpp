// ACL files: mosquitto's syntax and semantics (anonymous section, user sections,
// patterns with %c and %u, deny, read-only and write-only lines, $SYS), wildcard
// subscriptions, the wildcard-in-client-id attack, and errors with line numbers.

#include "broker/auth/acl_file.hpp"

#include <gtest/gtest.h>

namespace ringmq::auth {
namespace {

using core::access;

// Raw strings start with a newline so that line numbers read naturally.
std::string text(std::string_view s) {
  if (!s.empty() && s.front() == '\n') s.remove_prefix(1);
  return std::string(s);
}

const std::string example = text(R"(
# Anonymous clients (no user name).
topic read public/#
topic read $SYS/broker/version

user alice
topic readwrite alice/#
topic read shared/#
topic deny shared/secret/#
topic write inbox/bob

user bob
topic read inbox/bob
topic read shared/#

user admin
topic readwrite #
topic read $SYS/#

# Every client, whatever section it follows.
pattern readwrite devices/%c/#
pattern read users/%u/#
pattern deny devices/%c/locked
)");

core::client_identity client(std::string id, std::optional<std::string> user = std::nullopt) {
  core::client_identity who;
  who.client_id = std::move(id);
  who.username = std::move(user);
  return who;
}

class Acl : public ::testing::Test {
 protected:
  void SetUp() override {
    auto parsed = parse_acl_file(example, "acl");
    ASSERT_FALSE(parsed.error) << parsed.error->to_string();
    table_ = std::move(parsed.table);
  }

  bool can(const core::client_identity& who, access what, std::string_view topic) const {
    return table_->allowed(who, topic, what);
  }

  std::shared_ptr<const acl_table> table_;
};

TEST_F(Acl, CountsRulesAndUsers) {
  EXPECT_EQ(table_->rule_count(), 13u);
  EXPECT_EQ(table_->user_count(), 3u);
}

TEST_F(Acl, TheFirstSectionIsForClientsWithoutUserName) {
  const auto anon = client("anon-1");
  EXPECT_TRUE(can(anon, access::receive, "public/news"));
  EXPECT_TRUE(can(anon, access::subscribe, "public/#"));
  EXPECT_FALSE(can(anon, access::publish, "public/news"));  // read only
  EXPECT_FALSE(can(anon, access::receive, "alice/x"));
  // Named users do not get the anonymous lines (mosquitto 2.0 does the same).
  EXPECT_FALSE(can(client("c", "alice"), access::receive, "public/news"));
  // Neither does an empty user name: it is a user name, not its absence.
  EXPECT_FALSE(can(client("c", ""), access::receive, "public/news"));
}

TEST_F(Acl, UserSectionsApplyToThatUserOnly) {
  const auto alice = client("a1", "alice");
  EXPECT_TRUE(can(alice, access::publish, "alice/status"));
  EXPECT_TRUE(can(alice, access::receive, "alice/status"));
  EXPECT_TRUE(can(alice, access::subscribe, "alice/#"));
  EXPECT_FALSE(can(client("b1", "bob"), access::publish, "alice/status"));
  EXPECT_FALSE(can(client("b1", "bob"), access::receive, "alice/status"));
  // A user with no section has the pattern lines only.
  const auto eve = client("e1", "eve");
  EXPECT_FALSE(can(eve, access::receive, "alice/status"));
  EXPECT_TRUE(can(eve, access::receive, "users/eve/inbox"));
}

TEST_F(Acl, ReadOnlyAndWriteOnlyLines) {
  const auto alice = client("a1", "alice");
  const auto bob = client("b1", "bob");
  // bob: read inbox/bob.
  EXPECT_TRUE(can(bob, access::receive, "inbox/bob"));
  EXPECT_TRUE(can(bob, access::subscribe, "inbox/bob"));
  EXPECT_FALSE(can(bob, access::publish, "inbox/bob"));
  // alice: write inbox/bob.
  EXPECT_TRUE(can(alice, access::publish, "inbox/bob"));
  EXPECT_FALSE(can(alice, access::receive, "inbox/bob"));
  EXPECT_FALSE(can(alice, access::subscribe, "inbox/bob"));
}

TEST_F(Acl, DenyWinsOverBroaderGrants) {
  const auto alice = client("a1", "alice");
  EXPECT_TRUE(can(alice, access::receive, "shared/plan"));
  // "shared/secret/#" covers "shared/secret" itself.
  EXPECT_FALSE(can(alice, access::receive, "shared/secret"));
  EXPECT_FALSE(can(alice, access::receive, "shared/secret/code"));
  EXPECT_FALSE(can(alice, access::subscribe, "shared/secret/#"));
  EXPECT_FALSE(can(alice, access::subscribe, "shared/secret/+/x"));
  // A subscription that can deliver something is accepted; the deny applies per message.
  EXPECT_TRUE(can(alice, access::subscribe, "shared/#"));
  EXPECT_TRUE(can(alice, access::subscribe, "shared/+/x"));
  // bob has no deny line: he reads the secret.
  EXPECT_TRUE(can(client("b1", "bob"), access::receive, "shared/secret/code"));
}

TEST(AclDeny, WinsWhereverItStandsInTheSection) {
  for (const auto* file : {"user u\ntopic deny a/b\ntopic readwrite a/#\n",
                           "user u\ntopic readwrite a/#\ntopic deny a/b\n"}) {
    const auto parsed = parse_acl_file(file, "acl");
    ASSERT_FALSE(parsed.error) << parsed.error->to_string();
    const auto u = client("c", "u");
    EXPECT_FALSE(parsed.table->allowed(u, "a/b", access::publish)) << file;
    EXPECT_FALSE(parsed.table->allowed(u, "a/b", access::receive)) << file;
    EXPECT_TRUE(parsed.table->allowed(u, "a/c", access::receive)) << file;
  }
}

TEST_F(Acl, PatternsSubstituteTheClientId) {
  const auto dev1 = client("dev1");
  EXPECT_TRUE(can(dev1, access::publish, "devices/dev1/temp"));
  EXPECT_TRUE(can(dev1, access::receive, "devices/dev1/config"));
  EXPECT_TRUE(can(dev1, access::receive, "devices/dev1"));  // "#" matches the parent level
  EXPECT_TRUE(can(dev1, access::subscribe, "devices/dev1/#"));
  EXPECT_FALSE(can(dev1, access::publish, "devices/dev2/temp"));
  EXPECT_FALSE(can(dev1, access::receive, "devices/dev2/temp"));
  EXPECT_FALSE(can(dev1, access::subscribe, "devices/dev2/#"));
  // Patterns apply to named users too.
  EXPECT_TRUE(can(client("dev3", "bob"), access::publish, "devices/dev3/temp"));
  // %c is substituted only as a whole level, and compared exactly.
  EXPECT_FALSE(can(client("dev"), access::receive, "devices/dev1/temp"));
  EXPECT_FALSE(can(client("Dev1"), access::receive, "devices/dev1/temp"));
}

TEST_F(Acl, PatternsSubstituteTheUserName) {
  const auto carol = client("phone", "carol");
  EXPECT_TRUE(can(carol, access::receive, "users/carol/mail"));
  EXPECT_FALSE(can(carol, access::publish, "users/carol/mail"));  // read only
  EXPECT_FALSE(can(carol, access::receive, "users/dave/mail"));
  // Without a user name a %u line grants nothing.
  EXPECT_FALSE(can(client("carol"), access::receive, "users/carol/mail"));
}

TEST_F(Acl, DenyPatternsWinToo) {
  EXPECT_FALSE(can(client("dev1"), access::publish, "devices/dev1/locked"));
  EXPECT_FALSE(can(client("dev1"), access::receive, "devices/dev1/locked"));
  // Also over a user's own readwrite "#": deny wins, wherever it is written.
  const auto admin = client("console", "admin");
  EXPECT_FALSE(can(admin, access::publish, "devices/console/locked"));
  EXPECT_TRUE(can(admin, access::publish, "devices/dev1/locked"));
}

TEST_F(Acl, SysTopicsNeedTheirOwnLines) {
  const auto anon = client("anon");
  EXPECT_TRUE(can(anon, access::receive, "$SYS/broker/version"));
  EXPECT_TRUE(can(anon, access::subscribe, "$SYS/broker/version"));
  EXPECT_FALSE(can(anon, access::receive, "$SYS/broker/uptime"));
  EXPECT_FALSE(can(anon, access::subscribe, "$SYS/broker/uptime"));
  // The admin's "#" does not reach $SYS; his "$SYS/#" does.
  const auto admin = client("console", "admin");
  EXPECT_TRUE(can(admin, access::receive, "$SYS/broker/uptime"));
  EXPECT_TRUE(can(admin, access::subscribe, "$SYS/#"));
  EXPECT_FALSE(can(admin, access::publish, "$SYS/broker/uptime"));  // the broker's own
  EXPECT_FALSE(can(admin, access::publish, "$SYS"));
  EXPECT_FALSE(can(client("c", "alice"), access::subscribe, "$SYS/#"));

  const auto parsed = parse_acl_file("user u\ntopic readwrite #\ntopic read +/x\n", "acl");
  ASSERT_FALSE(parsed.error);
  const auto u = client("c", "u");
  EXPECT_FALSE(parsed.table->allowed(u, "$SYS/broker/uptime", access::receive));
  EXPECT_FALSE(parsed.table->allowed(u, "$SYS/x", access::receive));
  EXPECT_FALSE(parsed.table->allowed(u, "$SYS/#", access::subscribe));
  EXPECT_FALSE(parsed.table->allowed(u, "$SYS/+", access::subscribe));
  EXPECT_TRUE(parsed.table->allowed(u, "#", access::subscribe));
  EXPECT_FALSE(parsed.table->allowed(u, "$other/x", access::publish));
}

TEST_F(Acl, WildcardSubscriptionsAreAcceptedWhenTheyCanDeliverSomething) {
  const auto bob = client("b1", "bob");
  EXPECT_TRUE(can(bob, access::subscribe, "inbox/+"));       // inbox/bob
  EXPECT_TRUE(can(bob, access::subscribe, "inbox/#"));       // inbox/bob
  EXPECT_TRUE(can(bob, access::subscribe, "+/bob"));         // inbox/bob
  EXPECT_TRUE(can(bob, access::subscribe, "#"));             // shared/..., inbox/bob
  EXPECT_TRUE(can(bob, access::subscribe, "inbox/bob/#"));   // inbox/bob itself
  EXPECT_FALSE(can(bob, access::subscribe, "inbox/alice"));
  EXPECT_FALSE(can(bob, access::subscribe, "inbox/+/x"));
  EXPECT_FALSE(can(bob, access::subscribe, "alice/#"));
  EXPECT_TRUE(can(bob, access::subscribe, "+/+/+/+"));       // shared/+/+/+
  EXPECT_FALSE(can(bob, access::subscribe, "alice/+"));
  EXPECT_TRUE(can(bob, access::subscribe, "shared/+/+/+/+/x/y"));
}

TEST_F(Acl, SharedSubscriptionsAreCheckedOnTheirFilter) {
  const auto bob = client("b1", "bob");
  EXPECT_TRUE(can(bob, access::subscribe, "$share/workers/shared/#"));
  EXPECT_TRUE(can(bob, access::subscribe, "$share/workers/inbox/bob"));
  EXPECT_FALSE(can(bob, access::subscribe, "$share/workers/alice/#"));
  EXPECT_FALSE(can(bob, access::subscribe, "$share/workers"));  // malformed
}

// CVE-2017-7650: with "pattern readwrite devices/%c/#", a client calling itself
// "#" or "+" must not get "devices/#"; one calling itself "a/b" must not get a
// level that is not its own.
TEST_F(Acl, WildcardsInClientIdOrUserNameNeverWidenAPattern) {
  for (const auto* id : {"#", "+", "a/#", "+/+", "a/b", "dev1/#", "x+", "#y"}) {
    const auto attacker = client(id);
    EXPECT_FALSE(can(attacker, access::subscribe, "devices/#")) << id;
    EXPECT_FALSE(can(attacker, access::subscribe, "devices/+/temp")) << id;
    EXPECT_FALSE(can(attacker, access::receive, "devices/dev1/temp")) << id;
    EXPECT_FALSE(can(attacker, access::publish, "devices/dev1/temp")) << id;
    EXPECT_FALSE(can(attacker, access::receive, "devices/" + std::string(id) + "/temp")) << id;
    EXPECT_FALSE(can(attacker, access::publish, "devices/a/b/temp")) << id;
  }
  for (const auto* user : {"#", "+", "carol/#", "x/carol"}) {
    const auto attacker = client("phone", user);
    EXPECT_FALSE(can(attacker, access::subscribe, "users/#")) << user;
    EXPECT_FALSE(can(attacker, access::receive, "users/carol/mail")) << user;
  }
  // The client's other lines still apply: only the pattern is withheld.
  EXPECT_TRUE(can(client("#", "alice"), access::receive, "alice/x"));
  EXPECT_TRUE(can(client("#"), access::receive, "public/x"));
}

TEST_F(Acl, ADangerousValueWidensADenyPatternInstead) {
  // "pattern deny devices/%c/locked" cannot be resolved for "x/#": it denies
  // everything it could have meant, i.e. all of devices/.
  const auto admin = client("x/#", "admin");
  EXPECT_FALSE(can(admin, access::receive, "devices/dev1/temp"));
  EXPECT_FALSE(can(admin, access::subscribe, "devices/#"));
  EXPECT_TRUE(can(admin, access::receive, "alice/x"));
  EXPECT_TRUE(can(admin, access::subscribe, "#"));
}

TEST_F(Acl, AClientKnownOnlyByItsIdIsTreatedAsAnonymous) {
  // What the router knows of a persistent session recovered from the store.
  core::client_identity offline;
  offline.client_id = "dev1";
  EXPECT_TRUE(can(offline, access::receive, "public/x"));
  EXPECT_TRUE(can(offline, access::receive, "devices/dev1/x"));
}

TEST(AclParse, AcceptsMosquittosSyntaxVariants) {
  const auto parsed = parse_acl_file(text(R"(
  # indented comment
topic no/access/word
topic	read	tab/separated
topic read   spaced   name
user  name with spaces  
topic read spaced/user
user alice
topic read first
user bob
topic read b
user alice
topic read second
pattern %c
)") + "topic read crlf\r\n",
                                     "acl");
  ASSERT_FALSE(parsed.error) << parsed.error->to_string();
  const auto& t = *parsed.table;
  const auto anon = client("anon");
  EXPECT_TRUE(t.allowed(anon, "no/access/word", access::publish));
  EXPECT_TRUE(t.allowed(anon, "no/access/word", access::receive));
  EXPECT_TRUE(t.allowed(anon, "tab/separated", access::receive));
  EXPECT_TRUE(t.allowed(anon, "spaced   name", access::receive));  // a topic may hold spaces
  EXPECT_TRUE(t.allowed(client("c", "name with spaces"), "spaced/user", access::receive));
  // Two sections of one user add up.
  EXPECT_TRUE(t.allowed(client("c", "alice"), "first", access::receive));
  EXPECT_TRUE(t.allowed(client("c", "alice"), "second", access::receive));
  // The last line belongs to alice's section: no "\r" in the topic.
  EXPECT_TRUE(t.allowed(client("c", "alice"), "crlf", access::receive));
  EXPECT_TRUE(t.allowed(client("dev9"), "dev9", access::publish));
  // Outside a whole level, %c is just text.
  const auto literal = parse_acl_file("pattern read dev-%c/x\n", "acl");
  ASSERT_FALSE(literal.error);
  EXPECT_TRUE(literal.table->allowed(client("a"), "dev-%c/x", access::receive));
  EXPECT_FALSE(literal.table->allowed(client("a"), "dev-a/x", access::receive));
  // In topic lines %c and %u are plain text.
  const auto plain = parse_acl_file("topic read x/%c\n", "acl");
  ASSERT_FALSE(plain.error);
  EXPECT_TRUE(plain.table->allowed(client("a"), "x/%c", access::receive));
  EXPECT_FALSE(plain.table->allowed(client("a"), "x/a", access::receive));
}

TEST(AclParse, AnEmptyFileDeniesEverything) {
  const auto parsed = parse_acl_file("# nothing\n\n", "acl");
  ASSERT_FALSE(parsed.error);
  EXPECT_FALSE(parsed.table->allowed(client("c"), "a", access::receive));
  EXPECT_FALSE(parsed.table->allowed(client("c"), "a", access::publish));
  EXPECT_FALSE(parsed.table->allowed(client("c", "u"), "#", access::subscribe));
}

TEST(AclParse, ErrorsNameTheFileTheLineAndTheProblem) {
  struct bad {
    std::string text;
    int line;
    std::string_view says;
  };
  for (const auto& b : std::vector<bad>{
           {"topic read a\nsubscribe read b\n", 2, "unknown keyword \"subscribe\""},
           {"\n\ntopic reed a/b\n", 3, "unknown access \"reed\""},
           {"topic read a/#/b\n", 1, "'#' is not the last level"},
           {"topic read a+/b\n", 1, "stand alone"},
           {"pattern write dev/%c#\n", 1, "stand alone"},
           {"topic\n", 1, "without a topic"},
           {"topic read\n", 1, "no topic"},
           {"# ok\nuser\n", 2, "without a user name"},
       }) {
    const auto parsed = parse_acl_file(b.text, "/etc/ringmq/acl");
    ASSERT_TRUE(parsed.error) << b.text;
    EXPECT_FALSE(parsed.table);
    EXPECT_EQ(parsed.error->line, b.line) << b.text;
    const auto message = parsed.error->to_string();
    EXPECT_TRUE(message.starts_with("/etc/ringmq/acl:" + std::to_string(b.line) + ": "))
        << message;
    EXPECT_NE(message.find(b.says), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace ringmq::auth
