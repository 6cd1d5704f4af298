#pragma once
// TLS for the mqtts and wss listeners (OpenSSL through Asio): TLS 1.2 and 1.3
// only, optional or required client certificates, and the certificate's
// Common Name for use_identity_as_username.

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <optional>
#include <string>

namespace ringmq::net {

struct tls_settings {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;  // CA that client certificates must chain to
  bool require_client_cert = false;
};

// Builds a server context from the files; on failure returns null and says why.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const tls_settings& settings,
                                                            std::string& error);

// The Common Name of the verified client certificate, if there is one.
std::optional<std::string> peer_common_name(SSL* ssl);

}  // namespace ringmq::net
