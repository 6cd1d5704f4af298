#pragma once
// The admin HTTP API under /api/v1 (JSON): clients, sessions, subscriptions,
// retained messages, publish, cluster. Lists are paged like EMQX's:
// {"data":[...],"meta":{"page":1,"limit":100,"count":N,"hasnext":false}}.
// Writes need `Authorization: Bearer <http.admin_token>`; without a token
// configured the API is read-only; with http.protect_reads, reads need it too.

#include <string>

#include "broker/core/broker.hpp"
#include "broker/http/server.hpp"

namespace ringmq::app {

struct admin_api_settings {
  std::string admin_token;
  bool protect_reads = false;
  std::string node_id;
};

// Registers every /api/v1 route on `server`.
void register_admin_api(http::server& server, core::broker& broker,
                        const admin_api_settings& settings);

}  // namespace ringmq::app
