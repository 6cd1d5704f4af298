#include "broker/app/check_config.hpp"

#include <fstream>

#include "broker/auth/file_auth.hpp"
#include "broker/net/tls.hpp"

namespace ringmq::app {
namespace {

bool uses_tls(config::listener_type t) {
  return t == config::listener_type::mqtts || t == config::listener_type::wss;
}

// A file the node reads at start: there and readable.
void check_readable(const std::string& key, const std::string& path,
                    std::vector<std::string>& problems) {
  if (path.empty()) return;
  std::ifstream in(path);
  if (!in) problems.push_back(key + ": " + path + ": cannot open");
}

}  // namespace

std::vector<std::string> check_config(const config::config& cfg) {
  std::vector<std::string> problems;
  if (!cfg.auth.password_file.empty()) {
    auth::authenticator_settings s;
    s.password_file = cfg.auth.password_file;
    auth::file_authenticator authn(std::move(s));
    if (auto error = authn.reload()) problems.push_back("auth.password_file: " + error->to_string());
  }
  if (!cfg.auth.acl_file.empty()) {
    auth::file_authorizer authz(cfg.auth.acl_file);
    if (auto error = authz.reload()) problems.push_back("auth.acl_file: " + error->to_string());
  }
  for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
    const auto& l = cfg.listeners[i];
    if (!uses_tls(l.type)) continue;
    std::string error;
    net::tls_settings t{l.cert_file, l.key_file, l.ca_file, l.require_client_cert};
    if (!net::make_tls_context(t, error)) {
      problems.push_back("listeners[" + std::to_string(i) + "] (" + l.name + "): " + error);
    }
  }
  check_readable("cluster.tls_cert_file", cfg.cluster.tls_cert_file, problems);
  check_readable("cluster.tls_key_file", cfg.cluster.tls_key_file, problems);
  check_readable("cluster.tls_ca_file", cfg.cluster.tls_ca_file, problems);
  return problems;
}

std::string describe_config(const config::config& cfg) {
  std::string out = "configuration OK: node " + cfg.node.id + ", " +
                    std::to_string(cfg.listeners.size()) + " listener(s)";
  for (const auto& l : cfg.listeners) out += " " + l.name;
  out += ", data in " + cfg.node.data_dir;
  if (cfg.cluster.bind.empty()) {
    out += ", single node";
  } else {
    out += ", cluster " + cfg.cluster.name + " on " + cfg.cluster.bind;
    if (!cfg.cluster.dns.empty()) out += " (peers from DNS " + cfg.cluster.dns + ")";
  }
  return out;
}

}  // namespace ringmq::app
