// The authenticator and authorizer the broker calls: reason codes, anonymous
// clients, certificate user names, and reloading (a broken file keeps the old
// state; checks keep running on other threads while the files are swapped).

#include "broker/auth/file_auth.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "tests/unit/auth/temp_dir.hpp"

namespace ringmq::auth {
namespace {

using codec::reason_code;
using core::access;
using testing::temp_dir;
using testing::write_file;

std::string entry(std::string_view user, std::string_view password) {
  return std::string(user) + ":" + format_password_hash(*make_password_hash(password)) + "\n";
}

core::client_identity client(std::optional<std::string> user, std::string listener = "mqtt") {
  core::client_identity who;
  who.client_id = "c1";
  who.username = std::move(user);
  who.listener = std::move(listener);
  return who;
}

TEST(FileAuthenticator, ChecksUsersAndPasswords) {
  temp_dir dir;
  const auto file = dir.file("pw");
  write_file(file, entry("alice", "secret") + entry("bob", "hunter2"));
  file_authenticator authn({file, false, {}});
  ASSERT_FALSE(authn.reload());
  EXPECT_EQ(authn.user_count(), 2u);
  EXPECT_EQ(authn.authenticate(client("alice"), "secret"), reason_code::success);
  EXPECT_EQ(authn.authenticate(client("bob"), "hunter2"), reason_code::success);
  EXPECT_EQ(authn.authenticate(client("alice"), "hunter2"), reason_code::bad_user_name_or_password);
  EXPECT_EQ(authn.authenticate(client("alice"), std::nullopt),
            reason_code::bad_user_name_or_password);
  EXPECT_EQ(authn.authenticate(client("alice"), ""), reason_code::bad_user_name_or_password);
  EXPECT_EQ(authn.authenticate(client("eve"), "secret"), reason_code::bad_user_name_or_password);
  EXPECT_EQ(authn.authenticate(client(""), "secret"), reason_code::bad_user_name_or_password);
  // No user name: refused with Not authorized, as mosquitto answers.
  EXPECT_EQ(authn.authenticate(client(std::nullopt), std::nullopt), reason_code::not_authorized);
}

TEST(FileAuthenticator, LetsAnonymousClientsInWhenAllowedButNeverUnknownUsers) {
  temp_dir dir;
  const auto file = dir.file("pw");
  write_file(file, entry("alice", "secret"));
  file_authenticator authn({file, true, {}});
  ASSERT_FALSE(authn.reload());
  EXPECT_EQ(authn.authenticate(client(std::nullopt), std::nullopt), reason_code::success);
  EXPECT_EQ(authn.authenticate(client("alice"), "secret"), reason_code::success);
  EXPECT_EQ(authn.authenticate(client("eve"), "x"), reason_code::bad_user_name_or_password);
}

TEST(FileAuthenticator, WithoutPasswordFileOnlyCertificatesGetIn) {
  file_authenticator authn({"", false, {"mqtts"}});
  ASSERT_FALSE(authn.reload());
  EXPECT_EQ(authn.authenticate(client("alice"), "secret"), reason_code::bad_user_name_or_password);
  EXPECT_EQ(authn.authenticate(client(std::nullopt), std::nullopt), reason_code::not_authorized);
  auto device = client("device-7", "mqtts");
  device.certificate_cn = "device-7";
  EXPECT_EQ(authn.authenticate(device, std::nullopt), reason_code::success);
}

TEST(FileAuthenticator, ACertificateNameCountsOnlyOnListenersThatUseIt) {
  temp_dir dir;
  const auto file = dir.file("pw");
  write_file(file, entry("alice", "secret"));
  file_authenticator authn({file, false, {"mqtts"}});
  ASSERT_FALSE(authn.reload());
  auto who = client("device-7", "mqtts");
  who.certificate_cn = "device-7";
  EXPECT_EQ(authn.authenticate(who, std::nullopt), reason_code::success);
  // The same certificate on a listener without use_identity_as_username proves nothing.
  who.listener = "mqtts-other";
  EXPECT_EQ(authn.authenticate(who, std::nullopt), reason_code::bad_user_name_or_password);
  // A user name that is not the certificate's is checked against the file.
  who.listener = "mqtts";
  who.username = "alice";
  EXPECT_EQ(authn.authenticate(who, "wrong"), reason_code::bad_user_name_or_password);
  EXPECT_EQ(authn.authenticate(who, "secret"), reason_code::success);
}

TEST(FileAuthenticator, ReloadSwapsUsersAndABrokenFileKeepsTheOldOnes) {
  temp_dir dir;
  const auto file = dir.file("pw");
  write_file(file, entry("alice", "one"));
  file_authenticator authn({file, false, {}});
  ASSERT_FALSE(authn.reload());
  write_file(file, entry("alice", "two") + entry("bob", "three"));
  ASSERT_FALSE(authn.reload());
  EXPECT_EQ(authn.authenticate(client("alice"), "one"), reason_code::bad_user_name_or_password);
  EXPECT_EQ(authn.authenticate(client("alice"), "two"), reason_code::success);
  EXPECT_EQ(authn.authenticate(client("bob"), "three"), reason_code::success);

  write_file(file, entry("alice", "four") + "carol:plaintext\n");
  const auto error = authn.reload();
  ASSERT_TRUE(error);
  EXPECT_EQ(error->line, 2);
  EXPECT_EQ(authn.authenticate(client("alice"), "two"), reason_code::success);
  EXPECT_EQ(authn.authenticate(client("alice"), "four"), reason_code::bad_user_name_or_password);

  std::filesystem::remove(file);
  ASSERT_TRUE(authn.reload());
  EXPECT_EQ(authn.authenticate(client("bob"), "three"), reason_code::success);
}

TEST(FileAuthenticator, RefusesEveryUserUntilAFileWasRead) {
  temp_dir dir;
  file_authenticator authn({dir.file("missing"), true, {}});
  ASSERT_TRUE(authn.reload());
  EXPECT_EQ(authn.authenticate(client("alice"), "x"), reason_code::bad_user_name_or_password);
}

TEST(FileAuthorizer, ReloadSwapsRulesAndABrokenFileKeepsTheOldOnes) {
  temp_dir dir;
  const auto file = dir.file("acl");
  write_file(file, "user alice\ntopic read a/#\n");
  file_authorizer authz(file);
  ASSERT_FALSE(authz.reload());
  EXPECT_EQ(authz.rule_count(), 1u);
  const auto alice = client("alice");
  EXPECT_TRUE(authz.allowed(alice, "a/1", access::receive));
  EXPECT_FALSE(authz.allowed(alice, "b/1", access::receive));

  write_file(file, "user alice\ntopic read b/#\n");
  ASSERT_FALSE(authz.reload());
  EXPECT_FALSE(authz.allowed(alice, "a/1", access::receive));
  EXPECT_TRUE(authz.allowed(alice, "b/1", access::receive));

  write_file(file, "user alice\ntopic read c/#\ntopic raed d/#\n");
  const auto error = authz.reload();
  ASSERT_TRUE(error);
  EXPECT_EQ(error->file, file);
  EXPECT_EQ(error->line, 3);
  EXPECT_TRUE(authz.allowed(alice, "b/1", access::receive));
  EXPECT_FALSE(authz.allowed(alice, "c/1", access::receive));
}

TEST(FileAuthorizer, DeniesEverythingUntilAFileWasRead) {
  temp_dir dir;
  file_authorizer authz(dir.file("missing"));
  ASSERT_TRUE(authz.reload());
  EXPECT_FALSE(authz.allowed(client("alice"), "a", access::receive));
}

// Checks from several threads while the files are swapped: each check sees one
// whole file or the other, never freed memory (ASan builds would tell).
TEST(FileAuth, ChecksRunConcurrentlyWithReloads) {
  temp_dir dir;
  const auto acl = dir.file("acl");
  const auto pw = dir.file("pw");
  const std::string acl_a = "user u\ntopic readwrite a/#\n";
  const std::string acl_b = "user u\ntopic readwrite b/#\n";
  write_file(acl, acl_a);
  write_file(pw, entry("u", "p"));
  file_authorizer authz(acl);
  file_authenticator authn({pw, false, {}});
  ASSERT_FALSE(authz.reload());
  ASSERT_FALSE(authn.reload());

  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      const auto who = client("u");
      while (!stop.load()) {
        authz.allowed(who, "a/x", access::receive);
        if (authz.allowed(who, "c/x", access::receive)) ++wrong;  // in neither file
        if (authn.authenticate(who, "p") != reason_code::success) ++refused;
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    write_file(acl, i % 2 ? acl_a : acl_b);
    ASSERT_FALSE(authz.reload());
    ASSERT_FALSE(authn.reload());
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace ringmq::auth
