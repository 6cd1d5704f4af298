#include "broker/app/admin_api.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>

#include "broker/codec/topic.hpp"
#include "broker/codec/utf8.hpp"

namespace ringmq::app {

namespace json = boost::json;

http::response json_response(unsigned status, const json::value& body) {
  http::response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = json::serialize(body);
  return r;
}

http::response json_error(unsigned status, std::string_view message) {
  return json_response(status, json::object{{"error", message}});
}

std::optional<http::response> check_token(const http::request& req,
                                          const admin_api_settings& s, bool write) {
  if (!write && !s.protect_reads) return std::nullopt;
  if (s.admin_token.empty()) {
    return json_error(403, "the admin API is read-only: set http.admin_token to allow writes");
  }
  constexpr std::string_view bearer = "Bearer ";
  if (req.authorization.empty()) return json_error(401, "missing Authorization: Bearer <token>");
  const std::string_view given(req.authorization);
  const bool well_formed = given.starts_with(bearer);
  const auto token = well_formed ? given.substr(bearer.size()) : std::string_view{};
  const bool equal = token.size() == s.admin_token.size() &&
                     CRYPTO_memcmp(token.data(), s.admin_token.data(), token.size()) == 0;
  if (!well_formed || !equal) return json_error(403, "wrong token");
  return std::nullopt;
}

namespace {

http::response error(unsigned status, std::string_view message) {
  return json_error(status, message);
}

struct paging {
  std::size_t page = 1;
  std::size_t limit = 100;
};

std::optional<std::string> query(const http::request& r, const std::string& key) {
  auto it = r.query.find(key);
  if (it == r.query.end()) return std::nullopt;
  return it->second;
}

bool parse_size(const std::string& text, std::size_t& out) {
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc{} && ptr == end;
}

std::optional<paging> parse_paging(const http::request& r, std::string& problem) {
  paging p;
  if (auto v = query(r, "page"); v && (!parse_size(*v, p.page) || p.page == 0)) {
    problem = "page must be a positive integer";
    return std::nullopt;
  }
  if (auto v = query(r, "limit"); v && (!parse_size(*v, p.limit) || p.limit == 0 ||
                                        p.limit > 10'000)) {
    problem = "limit must be an integer from 1 to 10000";
    return std::nullopt;
  }
  return p;
}

json::value paged(std::vector<json::value> items, const paging& p) {
  const auto count = items.size();
  const auto begin = std::min(count, (p.page - 1) * p.limit);
  const auto end = std::min(count, begin + p.limit);
  json::array data;
  for (auto i = begin; i < end; ++i) data.push_back(std::move(items[i]));
  return json::object{{"data", std::move(data)},
                      {"meta", json::object{{"page", p.page},
                                            {"limit", p.limit},
                                            {"count", count},
                                            {"hasnext", end < count}}}};
}

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

json::value subscription_json(const std::string& client, const std::string& filter,
                              const core::stored_subscription& sub) {
  json::object o{{"clientid", client},
                 {"topic", filter},
                 {"qos", static_cast<int>(sub.options.max_qos)},
                 {"nl", sub.options.no_local ? 1 : 0},
                 {"rap", sub.options.retain_as_published ? 1 : 0},
                 {"rh", sub.options.retain_handling}};
  if (sub.identifier) o["subid"] = *sub.identifier;
  return o;
}

json::object client_json(const core::session& s) {
  json::object o{{"clientid", s.client_id()},
                 {"connected", s.online()},
                 {"expiry_interval", s.expiry_interval()},
                 {"subscriptions_cnt", s.subscription_count()},
                 {"inflight_cnt", s.inflight_count()},
                 {"mqueue_len", s.queued_count()}};
  if (auto who = s.identity()) {
    o["username"] = who->username ? json::value(*who->username) : json::value(nullptr);
    o["peername"] = who->peer;
    o["listener"] = who->listener;
    o["proto_ver"] = who->protocol;
    o["keepalive"] = who->keep_alive;
    o["connected_at"] = who->connected_at_ms;
  }
  return o;
}

bool client_matches(const core::session& s, const http::request& r) {
  if (auto v = query(r, "clientid"); v && s.client_id() != *v) return false;
  if (auto v = query(r, "like_clientid"); v && !contains(s.client_id(), *v)) return false;
  auto who = s.identity();
  const std::string username = who && who->username ? *who->username : "";
  if (auto v = query(r, "username"); v && username != *v) return false;
  if (auto v = query(r, "like_username"); v && !contains(username, *v)) return false;
  return true;
}

std::vector<std::shared_ptr<core::session>> sorted_sessions(core::broker& b) {
  auto all = b.sessions().all();
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& z) { return a->client_id() < z->client_id(); });
  return all;
}

json::value message_json(const core::message& m) {
  json::object o{{"topic", m.topic},
                 {"qos", static_cast<int>(m.qos)},
                 {"publisher", m.publisher},
                 {"payload_size", m.payload.size()}};
  if (codec::is_valid_mqtt_utf8(m.payload)) {
    o["payload"] = m.payload;
  } else {
    o["payload_encoding"] = "hex";
    static constexpr char hex[] = "0123456789abcdef";
    std::string h;
    for (unsigned char c : m.payload) {
      h.push_back(hex[c >> 4]);
      h.push_back(hex[c & 0xF]);
    }
    o["payload"] = h;
  }
  return o;
}

// "/api/v1/clients/abc" with prefix "/api/v1/clients" -> "abc" ("" if none).
std::string tail(const std::string& path, std::string_view prefix) {
  if (path.size() <= prefix.size() + 1) return {};
  return path.substr(prefix.size() + 1);
}

}  // namespace

void register_admin_api(http::server& server, core::broker& broker,
                        const admin_api_settings& settings) {
  auto& b = broker;
  const auto s = settings;

  server.route("/api/v1/clients", [&b, s](const http::request& r, http::reply_function reply) {
    const bool write = r.method == "DELETE";
    if (r.method != "GET" && !write) return reply(error(405, "use GET or DELETE"));
    if (auto denied = check_token(r, s, write)) return reply(*denied);
    const auto id = tail(r.path, "/api/v1/clients");
    if (write) {
      if (id.empty()) return reply(error(400, "DELETE needs a client id"));
      auto session = b.sessions().find(id);
      if (!session || !session->disconnect(codec::reason_code::administrative_action)) {
        return reply(error(404, "client not connected"));
      }
      http::response ok;
      ok.status = 204;
      return reply(std::move(ok));
    }
    if (!id.empty()) {
      auto session = b.sessions().find(id);
      if (!session) return reply(error(404, "no such client"));
      auto o = client_json(*session);
      json::array subs;
      for (const auto& [filter, sub] : session->subscriptions()) {
        subs.push_back(subscription_json(id, filter, sub));
      }
      o["subscriptions"] = std::move(subs);
      return reply(json_response(200, o));
    }
    std::string problem;
    auto p = parse_paging(r, problem);
    if (!p) return reply(error(400, problem));
    std::vector<json::value> items;
    for (const auto& session : sorted_sessions(b)) {
      if (!session->online() || !client_matches(*session, r)) continue;
      items.push_back(client_json(*session));
    }
    reply(json_response(200, paged(std::move(items), *p)));
  });

  server.route("/api/v1/sessions", [&b, s](const http::request& r, http::reply_function reply) {
    if (r.method != "GET") return reply(error(405, "use GET"));
    if (auto denied = check_token(r, s, false)) return reply(*denied);
    std::string problem;
    auto p = parse_paging(r, problem);
    if (!p) return reply(error(400, problem));
    std::vector<json::value> items;
    for (const auto& session : sorted_sessions(b)) {
      if (!client_matches(*session, r)) continue;
      auto o = client_json(*session);
      if (auto at = session->expires_at()) {
        o["expires_in_s"] = std::chrono::duration_cast<std::chrono::seconds>(
                                *at - core::clock::now())
                                .count();
      }
      items.push_back(std::move(o));
    }
    reply(json_response(200, paged(std::move(items), *p)));
  });

  server.route("/api/v1/subscriptions",
               [&b, s](const http::request& r, http::reply_function reply) {
                 if (r.method != "GET") return reply(error(405, "use GET"));
                 if (auto denied = check_token(r, s, false)) return reply(*denied);
                 std::string problem;
                 auto p = parse_paging(r, problem);
                 if (!p) return reply(error(400, problem));
                 const auto topic = query(r, "topic");
                 std::vector<json::value> items;
                 for (const auto& session : sorted_sessions(b)) {
                   if (!client_matches(*session, r)) continue;
                   for (const auto& [filter, sub] : session->subscriptions()) {
                     if (topic && filter != *topic) continue;
                     items.push_back(subscription_json(session->client_id(), filter, sub));
                   }
                 }
                 reply(json_response(200, paged(std::move(items), *p)));
               });

  server.route("/api/v1/retained", [&b, s](const http::request& r, http::reply_function reply) {
    const bool write = r.method == "DELETE";
    if (r.method != "GET" && !write) return reply(error(405, "use GET or DELETE"));
    if (auto denied = check_token(r, s, write)) return reply(*denied);
    const auto topic = tail(r.path, "/api/v1/retained");
    if (write) {
      if (topic.empty() || !codec::validate_topic_name(topic)) {
        return reply(error(400, "DELETE needs a topic name: /api/v1/retained/{topic}"));
      }
      if (!b.retained().get(topic)) return reply(error(404, "no retained message on that topic"));
      // Clearing goes through publish, so the store and the index agree.
      auto clear = std::make_shared<core::message>();
      clear->topic = topic;
      clear->retain = true;
      clear->publisher = "$admin";
      clear->received_at = core::clock::now();
      b.publish(clear, clear->received_at);
      http::response ok;
      ok.status = 204;
      return reply(std::move(ok));
    }
    const auto filter = query(r, "filter").value_or("#");
    if (!codec::parse_topic_filter(filter)) return reply(error(400, "invalid filter"));
    std::string problem;
    auto p = parse_paging(r, problem);
    if (!p) return reply(error(400, problem));
    auto found = b.retained().match(filter);
    std::sort(found.begin(), found.end(),
              [](const auto& a, const auto& z) { return a->topic < z->topic; });
    std::vector<json::value> items;
    for (const auto& m : found) items.push_back(message_json(*m));
    reply(json_response(200, paged(std::move(items), *p)));
  });

  server.route("/api/v1/publish", [&b, s](const http::request& r, http::reply_function reply) {
    if (r.method != "POST") return reply(error(405, "use POST"));
    if (auto denied = check_token(r, s, true)) return reply(*denied);
    boost::system::error_code ec;
    auto body = json::parse(r.body, ec);
    if (ec || !body.is_object()) return reply(error(400, "body must be a JSON object"));
    const auto& o = body.as_object();
    const auto* topic = o.if_contains("topic");
    if (!topic || !topic->is_string()) return reply(error(400, "\"topic\" (string) is required"));
    auto m = std::make_shared<core::message>();
    m->topic = std::string(topic->as_string());
    if (!codec::is_valid_mqtt_utf8(m->topic) || !codec::validate_topic_name(m->topic)) {
      return reply(error(400, "invalid topic name"));
    }
    if (const auto* payload = o.if_contains("payload")) {
      if (!payload->is_string()) return reply(error(400, "\"payload\" must be a string"));
      m->payload = std::string(payload->as_string());
    }
    if (const auto* qos = o.if_contains("qos")) {
      if (!qos->is_int64() || qos->as_int64() < 0 || qos->as_int64() > 2) {
        return reply(error(400, "\"qos\" must be 0, 1 or 2"));
      }
      m->qos = static_cast<codec::qos>(qos->as_int64());
    }
    if (const auto* retain = o.if_contains("retain")) {
      if (!retain->is_bool()) return reply(error(400, "\"retain\" must be true or false"));
      m->retain = retain->as_bool();
    }
    m->publisher = "$admin";
    m->received_at = core::clock::now();
    const auto delivered = b.publish(m, m->received_at);
    reply(json_response(200, json::object{{"delivered", delivered}}));
  });

  server.route("/api/v1", [](const http::request&, http::reply_function reply) {
    reply(error(404, "unknown API path"));
  });
}

}  // namespace ringmq::app
