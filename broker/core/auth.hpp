#pragma once
// Who may connect (authenticator) and what they may do (authorizer). The core
// asks; implementations live elsewhere (password and ACL files, issue #6).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "broker/codec/reason_code.hpp"

namespace ringmq::core {

struct client_identity {
  std::string client_id;
  std::optional<std::string> username;
  std::string peer;      // "address:port"
  std::string listener;  // listener name
  std::optional<std::string> certificate_cn;  // TLS client certificate's Common Name
  // Facts about the connection, for views (not used for decisions).
  std::string protocol;  // "3.1", "3.1.1", "5.0"
  std::uint16_t keep_alive = 0;
  std::int64_t connected_at_ms = 0;  // Unix time
};

class authenticator {
 public:
  virtual ~authenticator() = default;
  // Success, Bad User Name or Password (0x86) or Not authorized (0x87).
  virtual codec::reason_code authenticate(const client_identity& who,
                                          const std::optional<std::string>& password) = 0;
};

enum class access { publish, subscribe, receive };

class authorizer {
 public:
  virtual ~authorizer() = default;
  // `topic` is a topic name for publish/receive and a topic filter for subscribe.
  virtual bool allowed(const client_identity& who, std::string_view topic, access what) = 0;
};

// Everyone may connect and do everything (no password or ACL file configured).
class allow_all final : public authenticator, public authorizer {
 public:
  codec::reason_code authenticate(const client_identity&,
                                  const std::optional<std::string>&) override {
    return codec::reason_code::success;
  }
  bool allowed(const client_identity&, std::string_view, access) override { return true; }
};

}  // namespace ringmq::core
