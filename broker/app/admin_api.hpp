#pragma once
// The admin HTTP API under /api/v1 (JSON): clients, sessions, subscriptions,
// retained messages, publish. Lists are paged like EMQX's:
// {"data":[...],"meta":{"page":1,"limit":100,"count":N,"hasnext":false}}.
// Writes need `Authorization: Bearer <http.admin_token>`; without a token
// configured the API is read-only; with http.protect_reads, reads need it too.

#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "broker/core/broker.hpp"
#include "broker/http/server.hpp"

namespace ringmq::app {

struct admin_api_settings {
  std::string admin_token;
  bool protect_reads = false;
  std::string node_id;
};

// A JSON answer, and {"error": message} with a 4xx status.
http::response json_response(unsigned status, const boost::json::value& body);
http::response json_error(unsigned status, std::string_view message);
// 401 without credentials, 403 with wrong ones (or when writes are disabled);
// nullopt when the request may go on.
std::optional<http::response> check_token(const http::request& req,
                                          const admin_api_settings& settings, bool write);

// Registers every /api/v1 route on `server` (the cluster's are in cluster_api.hpp).
void register_admin_api(http::server& server, core::broker& broker,
                        const admin_api_settings& settings);

}  // namespace ringmq::app
