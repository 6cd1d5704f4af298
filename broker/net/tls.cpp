#include "broker/net/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace ringmq::net {

namespace {

std::string openssl_error() {
  const auto code = ERR_get_error();
  if (code == 0) return "unknown OpenSSL error";
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof buffer);
  ERR_clear_error();
  return buffer;
}

}  // namespace

std::shared_ptr<boost::asio::ssl::context> make_tls_context(const tls_settings& settings,
                                                            std::string& error) {
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  // TLS 1.2 and 1.3 only: older versions are refused in the handshake.
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                   ssl::context::single_dh_use);
  if (SSL_CTX_use_certificate_chain_file(native, settings.cert_file.c_str()) != 1) {
    error = "cannot use certificate " + settings.cert_file + ": " + openssl_error();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(native, settings.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "cannot use key " + settings.key_file + ": " + openssl_error();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    error = "key " + settings.key_file + " does not match certificate " + settings.cert_file;
    return nullptr;
  }
  if (!settings.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(native, settings.ca_file.c_str(), nullptr) != 1) {
      error = "cannot use CA file " + settings.ca_file + ": " + openssl_error();
      return nullptr;
    }
    // Tell clients which CAs we accept, so they pick the right certificate.
    SSL_CTX_set_client_CA_list(native, SSL_load_client_CA_file(settings.ca_file.c_str()));
    int mode = SSL_VERIFY_PEER;
    if (settings.require_client_cert) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(native, mode, nullptr);
  }
  return ctx;
}

std::optional<std::string> peer_common_name(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return std::nullopt;
  std::optional<std::string> cn;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    X509_NAME* subject = X509_get_subject_name(cert);
    const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (index >= 0) {
      ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
      unsigned char* utf8 = nullptr;
      const int length = ASN1_STRING_to_UTF8(&utf8, data);
      if (length >= 0) {
        cn.emplace(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(length));
        OPENSSL_free(utf8);
      }
    }
  }
  X509_free(cert);
  return cn;
}

}  // namespace ringmq::net
