#include "broker/auth/file_auth.hpp"

#include <algorithm>

namespace ringmq::auth {

file_authenticator::file_authenticator(authenticator_settings settings)
    : settings_(std::move(settings)), decoy_(make_password_hash("ringmq decoy password")) {}

std::optional<file_error> file_authenticator::reload() {
  if (settings_.password_file.empty()) {
    table_.store(std::make_shared<const password_table>(), std::memory_order_release);
    return std::nullopt;
  }
  auto loaded = load_password_file(settings_.password_file);
  if (loaded.error) return loaded.error;
  table_.store(std::move(loaded.table), std::memory_order_release);
  return std::nullopt;
}

std::size_t file_authenticator::user_count() const {
  const auto table = table_.load(std::memory_order_acquire);
  return table ? table->size() : 0;
}

codec::reason_code file_authenticator::authenticate(const core::client_identity& who,
                                                    const std::optional<std::string>& password) {
  using codec::reason_code;
  const auto& certs = settings_.certificate_listeners;
  if (who.certificate_cn && who.username == who.certificate_cn &&
      std::find(certs.begin(), certs.end(), who.listener) != certs.end()) {
    // The TLS layer verified the certificate the user name came from.
    return reason_code::success;
  }
  if (!who.username) {
    return settings_.allow_anonymous ? reason_code::success : reason_code::not_authorized;
  }
  const auto table = table_.load(std::memory_order_acquire);
  const password_hash* hash = table ? table->find(*who.username) : nullptr;
  if (!hash) {
    if (decoy_ && password) verify_password(*decoy_, *password);
    return reason_code::bad_user_name_or_password;
  }
  if (!password || !verify_password(*hash, *password)) {
    return reason_code::bad_user_name_or_password;
  }
  return reason_code::success;
}

file_authorizer::file_authorizer(std::string acl_file) : file_(std::move(acl_file)) {}

std::optional<file_error> file_authorizer::reload() {
  auto loaded = load_acl_file(file_);
  if (loaded.error) return loaded.error;
  table_.store(std::move(loaded.table), std::memory_order_release);
  return std::nullopt;
}

std::size_t file_authorizer::rule_count() const {
  const auto table = table_.load(std::memory_order_acquire);
  return table ? table->rule_count() : 0;
}

bool file_authorizer::allowed(const core::client_identity& who, std::string_view topic,
                              core::access what) {
  const auto table = table_.load(std::memory_order_acquire);
  return table && table->allowed(who, topic, what);
}

}  // namespace ringmq::auth
