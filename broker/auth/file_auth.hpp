#pragma once
// The password and ACL files behind the core's authenticator and authorizer.
// The broker asks from every worker thread at once while SIGHUP rereads the
// files: each check takes a snapshot of the parsed file (an immutable table
// behind an atomic shared_ptr), and reload() swaps in a new table only when the
// whole file parsed, so a broken edit keeps the previous rules.

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/auth/acl_file.hpp"
#include "broker/auth/file_error.hpp"
#include "broker/auth/password_file.hpp"
#include "broker/core/auth.hpp"

namespace ringmq::auth {

struct authenticator_settings {
  std::string password_file;  // empty: no password file (every user name is unknown)
  bool allow_anonymous = false;
  // Listeners with use_identity_as_username: there the verified client
  // certificate is the credential and its CN the user name (no password asked).
  std::vector<std::string> certificate_listeners;
};

class file_authenticator final : public core::authenticator {
 public:
  // Reads nothing yet: call reload() (until it succeeds, every user is refused).
  explicit file_authenticator(authenticator_settings settings);

  // Rereads the password file; on error keeps the users it had.
  std::optional<file_error> reload();
  std::size_t user_count() const;

  // Success; Not authorized (0x87) for a client without user name when anonymous
  // clients are not allowed (as mosquitto answers); Bad User Name or Password
  // (0x86) for an unknown user, a missing or wrong password.
  codec::reason_code authenticate(const core::client_identity& who,
                                  const std::optional<std::string>& password) override;

 private:
  authenticator_settings settings_;
  std::atomic<std::shared_ptr<const password_table>> table_;
  // Checked for unknown users so that a wrong name costs as long as a wrong password.
  std::optional<password_hash> decoy_;
};

class file_authorizer final : public core::authorizer {
 public:
  // Reads nothing yet: call reload() (until it succeeds, everything is denied).
  explicit file_authorizer(std::string acl_file);

  // Rereads the ACL file; on error keeps the rules it had.
  std::optional<file_error> reload();
  std::size_t rule_count() const;

  bool allowed(const core::client_identity& who, std::string_view topic,
               core::access what) override;

 private:
  std::string file_;
  std::atomic<std::shared_ptr<const acl_table>> table_;
};

}  // namespace ringmq::auth
