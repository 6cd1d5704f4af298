#include "broker/app/cluster_api.hpp"

#include <boost/json.hpp>
#include <cstdio>

namespace ringmq::app {

namespace {

namespace json = boost::json;

std::string hex64(std::uint64_t v) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(v));
  return text;
}

json::object to_json(const cluster::cluster_view& v) {
  json::array members;
  json::array ring_members;
  for (const auto& m : v.members) {
    members.push_back(json::object{
        {"id", m.id},
        {"incarnation", m.incarnation},
        {"vnodes", m.vnodes},
        {"address", m.address},
        {"state", m.self ? "alive" : cluster::to_string(m.state)},
        {"self", m.self},
        {"leaving", m.leaving},
        {"slots", m.slots},
    });
    ring_members.push_back(json::object{
        {"id", m.id},
        {"slots", m.slots},
        {"share", v.ring_slots ? static_cast<double>(m.slots) / v.ring_slots : 0.0},
    });
  }
  json::array peers;
  for (const auto& p : v.peers) {
    peers.push_back(json::object{
        {"id", p.id},
        {"address", p.address},
        {"state", cluster::to_string(p.state)},
        {"stream", p.stream_open ? "open" : "closed"},
        {"last_heard_ms_ago", p.last_heard_ms_ago},
        {"queue_messages", p.queued_messages},
        {"queue_bytes", p.queued_bytes},
        {"acked_route_seq", p.acked_route_seq},
        {"routes_synced", p.routes_synced},
        {"retained_synced", p.retained_synced},
        {"routes", p.routes},
        {"forwarded_out", p.forwarded_out},
        {"forwarded_in", p.forwarded_in},
        {"streams_opened", p.streams_opened},
    });
  }
  return json::object{
      {"node", v.node_id},
      {"cluster", v.name},
      {"address", v.address},
      {"clustered", v.clustered},
      {"member", v.member},
      {"ready", v.ready},
      {"epoch", v.epoch},
      {"digest", hex64(v.digest)},
      {"route_seq", v.route_seq},
      {"members", std::move(members)},
      {"ring", json::object{{"slots", v.ring_slots}, {"members", std::move(ring_members)}}},
      {"peers", std::move(peers)},
      {"directory_entries", v.directory_entries},
      {"sessions", json::object{{"replicated", v.replicating_sessions},
                                {"logs", v.session_logs},
                                {"owned", v.owned_sessions},
                                {"under_replicated", v.under_replicated_sessions},
                                {"misplaced", v.misplaced_sessions},
                                {"moving", v.moving_sessions},
                                {"moved", v.moved_sessions},
                                {"arriving", v.arriving_sessions},
                                {"handoff_bytes_out", v.handoff_bytes_out},
                                {"handoff_bytes_in", v.handoff_bytes_in},
                                {"replica_lag_seconds", v.replica_lag_seconds}}},
  };
}

}  // namespace

void register_cluster_api(http::server& server, cluster::cluster_node& cluster,
                          const admin_api_settings& s, std::function<std::string()> leave) {
  server.route("/api/v1/cluster", [&cluster, s, leave](const http::request& r,
                                                       http::reply_function reply) {
    if (r.path == "/api/v1/cluster/leave") {
      if (r.method != "POST") return reply(json_error(405, "use POST"));
      if (auto denied = check_token(r, s, true)) return reply(*denied);
      if (auto problem = leave(); !problem.empty()) return reply(json_error(409, problem));
      return reply(json_response(202, to_json(cluster.view())));
    }
    if (r.path == "/api/v1/cluster/forget") {
      if (r.method != "POST") return reply(json_error(405, "use POST"));
      if (auto denied = check_token(r, s, true)) return reply(*denied);
      boost::system::error_code ec;
      auto body = json::parse(r.body, ec);
      const json::string* node = nullptr;
      if (!ec && body.is_object()) {
        if (const auto* n = body.as_object().if_contains("node"); n && n->is_string()) {
          node = &n->as_string();
        }
      }
      if (!node) return reply(json_error(400, "expected {\"node\": \"<node id>\"}"));
      if (auto problem = cluster.forget(std::string(*node)); !problem.empty()) {
        return reply(json_error(409, problem));
      }
      return reply(json_response(200, to_json(cluster.view())));
    }
    if (r.path != "/api/v1/cluster") return reply(json_error(404, "unknown API path"));
    if (r.method != "GET") return reply(json_error(405, "use GET"));
    if (auto denied = check_token(r, s, false)) return reply(*denied);
    auto body = to_json(cluster.view());
    auto it = r.query.find("client_id");
    if (it == r.query.end()) return reply(json_response(200, body));
    const auto client = it->second;
    // The session's log as this node holds it: answered from the cluster's thread.
    cluster.describe_session(client, [body = std::move(body), client, &cluster, reply](
                                         std::optional<cluster::cluster_node::session_description>
                                             d) mutable {
      json::object c{{"client_id", client},
                     {"directory_owner", cluster.directory_owner_of(client)}};
      if (d) {
        json::array replicas;
        for (const auto& r : d->replicas) replicas.push_back(json::string(r));
        c["session"] = json::object{{"role", d->role},
                                    {"generation", json::object{{"round", d->round},
                                                                {"owner", d->generation_owner}}},
                                    {"replicas", std::move(replicas)},
                                    {"last_seq", d->last_seq},
                                    {"committed", d->committed},
                                    {"replicas_in_sync", d->replicas_in_sync}};
      } else {
        c["session"] = nullptr;
      }
      body["client"] = std::move(c);
      reply(json_response(200, body));
    });
  });
}

}  // namespace ringmq::app
