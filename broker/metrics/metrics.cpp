#include "broker/metrics/metrics.hpp"

#include <prometheus/collectable.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <sstream>

#include "broker/core/probe.hpp"
#include "broker/metrics/process_stats.hpp"

namespace ringmq::metrics {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add(MetricFamily& f, double value, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

MetricFamily single(std::string name, std::string help, MetricType type, double value) {
  auto f = family(std::move(name), std::move(help), type);
  add(f, value);
  return f;
}

const char* qos_label(std::size_t q) { return q == 0 ? "0" : q == 1 ? "1" : "2"; }

// The cluster's figures (docs/operations.md, "Cluster"). A node alone is a
// cluster of one member and exports them too.
void collect_cluster(const cluster::cluster_view& v, std::vector<MetricFamily>& out) {
  using T = MetricType;
  std::size_t alive = 0, suspect = 0, dead = 0;
  for (const auto& m : v.members) {
    if (m.self || m.state == cluster::liveness::alive) {
      ++alive;
    } else if (m.state == cluster::liveness::suspect) {
      ++suspect;
    } else {
      ++dead;
    }
  }
  auto members = family("ringmq_cluster_members", "Members of the cluster by liveness, as this "
                        "node sees them (itself included).", T::Gauge);
  add(members, static_cast<double>(alive), {{"state", "alive"}});
  add(members, static_cast<double>(suspect), {{"state", "suspect"}});
  add(members, static_cast<double>(dead), {{"state", "dead"}});
  out.push_back(std::move(members));
  out.push_back(single("ringmq_cluster_epoch", "Epoch of the member set (number of joins and "
                       "leaves); equal on members that agree.", T::Gauge,
                       static_cast<double>(v.epoch)));
  auto forwarded = family("ringmq_cluster_forwarded_messages_total",
                          "Messages sent to (out) or received from (in) other nodes, one per "
                          "node, not per subscriber.", T::Counter);
  add(forwarded, static_cast<double>(v.forwarded_out), {{"direction", "out"}});
  add(forwarded, static_cast<double>(v.forwarded_in), {{"direction", "in"}});
  out.push_back(std::move(forwarded));
  auto queue = family("ringmq_cluster_peer_queue_messages",
                      "Messages waiting in the send queue to a peer.", T::Gauge);
  auto queue_bytes = family("ringmq_cluster_peer_queue_bytes",
                            "Bytes waiting in the send queue to a peer.", T::Gauge);
  auto routes = family("ringmq_cluster_peer_routes",
                       "Topic filters (and shared groups) a peer routes to, as this node holds "
                       "them.", T::Gauge);
  auto up = family("ringmq_cluster_peer_up",
                   "1 while the stream to a peer is open and its routes and retained messages "
                   "are synced.", T::Gauge);
  for (const auto& p : v.peers) {
    add(queue, static_cast<double>(p.queued_messages), {{"peer", p.id}});
    add(queue_bytes, static_cast<double>(p.queued_bytes), {{"peer", p.id}});
    add(routes, static_cast<double>(p.routes), {{"peer", p.id}});
    add(up, p.stream_open && p.routes_synced && p.retained_synced ? 1 : 0, {{"peer", p.id}});
  }
  out.push_back(std::move(queue));
  out.push_back(std::move(queue_bytes));
  out.push_back(std::move(routes));
  out.push_back(std::move(up));
  auto dropped = family("ringmq_cluster_dropped_total",
                        "Messages or claims the cluster could not carry, by reason.", T::Counter);
  add(dropped, static_cast<double>(v.dropped_peer_queue_full), {{"reason", "peer_queue_full"}});
  add(dropped, static_cast<double>(v.dropped_peer_dead), {{"reason", "peer_dead"}});
  add(dropped, static_cast<double>(v.dropped_peer_restarted), {{"reason", "peer_restarted"}});
  add(dropped, static_cast<double>(v.dropped_claim_timeout), {{"reason", "claim_timeout"}});
  add(dropped, static_cast<double>(v.dropped_malformed), {{"reason", "malformed"}});
  out.push_back(std::move(dropped));
  out.push_back(single("ringmq_cluster_forwards_failed_total",
                       "QoS 1/2 messages forwarded to a peer that did not settle them (not kept "
                       "there, the peer died, or no answer in time): their publishers were told "
                       "they failed.", T::Counter, static_cast<double>(v.forwards_failed)));
  out.push_back(single("ringmq_cluster_resent_messages_total",
                       "Messages written again to a peer after a broken stream (the peer skips "
                       "those it had).", T::Counter, static_cast<double>(v.resent)));
  out.push_back(single("ringmq_cluster_route_sync_timeouts_total",
                       "SUBACKs sent after cluster.route_sync_timeout_ms without every live "
                       "peer's acknowledgement.", T::Counter,
                       static_cast<double>(v.route_sync_timeouts)));
  out.push_back(single("ringmq_cluster_directory_entries",
                       "Client ids this node is the directory owner of and knows the holder.",
                       T::Gauge, static_cast<double>(v.directory_entries)));
  out.push_back(single("ringmq_cluster_session_logs",
                       "Replicated persistent sessions this node keeps a log of (as owner or "
                       "replica).", T::Gauge, static_cast<double>(v.session_logs)));
  out.push_back(single("ringmq_cluster_owned_sessions",
                       "Replicated persistent sessions this node serves.", T::Gauge,
                       static_cast<double>(v.owned_sessions)));
  out.push_back(single("ringmq_cluster_under_replicated_sessions",
                       "Sessions this node serves that fewer than all their replicas hold "
                       "entirely.", T::Gauge, static_cast<double>(v.under_replicated_sessions)));
  out.push_back(single("ringmq_cluster_misplaced_sessions",
                       "Sessions this node serves whose replica set is not the one the ring "
                       "gives them now (a member joined or left): waiting to move, or moving.",
                       T::Gauge, static_cast<double>(v.misplaced_sessions)));
  out.push_back(single("ringmq_cluster_moving_sessions",
                       "Sessions this node serves that are being installed on their new "
                       "replica set.", T::Gauge, static_cast<double>(v.moving_sessions)));
  out.push_back(single("ringmq_cluster_moved_sessions_total",
                       "Sessions this node moved to another replica set.", T::Counter,
                       static_cast<double>(v.moved_sessions)));
  auto handoff = family("ringmq_cluster_handoff_sessions",
                        "Sessions changing hands: served here and moving to another replica "
                        "set (out), or being taken over by this node, from a dead or leaving "
                        "owner or for a CONNECT (in).", T::Gauge);
  add(handoff, static_cast<double>(v.moving_sessions), {{"direction", "out"}});
  add(handoff, static_cast<double>(v.arriving_sessions), {{"direction", "in"}});
  out.push_back(std::move(handoff));
  auto handoff_bytes = family("ringmq_cluster_handoff_bytes_total",
                              "Session data (snapshots and queued changes) in whole logs sent "
                              "(out) or received (in) to install a generation: a move, a "
                              "takeover, a replica that lost its copy.", T::Counter);
  add(handoff_bytes, static_cast<double>(v.handoff_bytes_out), {{"direction", "out"}});
  add(handoff_bytes, static_cast<double>(v.handoff_bytes_in), {{"direction", "in"}});
  out.push_back(std::move(handoff_bytes));
  out.push_back(single("ringmq_cluster_replica_lag_seconds",
                       "How long the served session furthest behind has had a replica that "
                       "does not hold all of it (0: every replica holds every change).",
                       T::Gauge, v.replica_lag_seconds));
}

}  // namespace

// Everything computed at scrape time.
class node_metrics::collector : public prometheus::Collectable {
 public:
  collector(core::broker& broker, const node_sources& sources)
      : broker_(broker), sources_(sources) {}

  std::vector<MetricFamily> Collect() const override {
    using T = MetricType;
    std::vector<MetricFamily> out;
    const auto p = core::sum_probes();

    out.push_back(single("ringmq_connections", "Open network connections (MQTT, any transport).",
                         T::Gauge, sources_.connections ? sources_.connections() : 0));
    out.push_back(single("ringmq_clients_connected", "Clients whose CONNECT was accepted.",
                         T::Gauge, static_cast<double>(broker_.clients_connected())));
    out.push_back(single("ringmq_sessions", "Sessions on this node, connected or not.", T::Gauge,
                         static_cast<double>(broker_.sessions().size())));
    out.push_back(single("ringmq_subscriptions", "Subscriptions in the routing index.", T::Gauge,
                         static_cast<double>(broker_.routes().subscription_count())));
    out.push_back(single("ringmq_retained_messages", "Retained messages.", T::Gauge,
                         static_cast<double>(broker_.retained().size())));

    auto received = family("ringmq_messages_received_total",
                           "PUBLISH packets received from clients, by QoS.", T::Counter);
    auto sent = family("ringmq_messages_sent_total", "PUBLISH packets sent to clients, by QoS.",
                       T::Counter);
    for (std::size_t q = 0; q < 3; ++q) {
      add(received, static_cast<double>(p.messages_received[q]), {{"qos", qos_label(q)}});
      add(sent, static_cast<double>(p.messages_sent[q]), {{"qos", qos_label(q)}});
    }
    out.push_back(std::move(received));
    out.push_back(std::move(sent));

    auto dropped = family("ringmq_messages_dropped_total",
                          "Messages not delivered to a subscriber, by reason.", T::Counter);
    for (std::size_t r = 0; r < core::drop_reason_count; ++r) {
      add(dropped, static_cast<double>(p.messages_dropped[r]),
          {{"reason", std::string(core::to_string(static_cast<core::drop_reason>(r)))}});
    }
    out.push_back(std::move(dropped));

    out.push_back(single("ringmq_bytes_received_total", "Bytes read from client connections.",
                         T::Counter, static_cast<double>(p.bytes_received)));
    out.push_back(single("ringmq_bytes_sent_total", "Bytes written to client connections.",
                         T::Counter, static_cast<double>(p.bytes_sent)));
    out.push_back(single("ringmq_packets_received_total", "MQTT packets received.", T::Counter,
                         static_cast<double>(p.packets_received)));
    out.push_back(single("ringmq_publisher_pauses_total",
                         "Times a client's reading was paused because QoS 0 copies of what it "
                         "published were being dropped or queued too deep (overload protection).",
                         T::Counter, static_cast<double>(p.publisher_pauses)));
    out.push_back(single("ringmq_packets_sent_total", "MQTT packets sent.", T::Counter,
                         static_cast<double>(p.packets_sent)));
    out.push_back(single("ringmq_auth_failures_total",
                         "CONNECTs refused for bad credentials or throttled after failures.",
                         T::Counter, static_cast<double>(p.auth_failures)));
    out.push_back(single("ringmq_connections_accepted_total", "Network connections accepted.",
                         T::Counter, static_cast<double>(p.connections_accepted)));
    out.push_back(single("ringmq_connections_refused_total",
                         "Network connections closed at once because a connection limit was "
                         "reached.",
                         T::Counter, static_cast<double>(p.connections_refused)));
    out.push_back(single("ringmq_protocol_errors_total",
                         "Connections closed for a malformed packet or a protocol error.",
                         T::Counter, static_cast<double>(p.protocol_errors)));
    out.push_back(single("ringmq_clients_maximum",
                         "Most clients connected at once since the node started.", T::Gauge,
                         static_cast<double>(broker_.clients_maximum())));
    out.push_back(single("ringmq_auth_blocked_addresses",
                         "Source addresses currently refused after failed authentications.",
                         T::Gauge,
                         static_cast<double>(broker_.throttle().blocked(core::clock::now()))));

    std::size_t inflight = 0;
    std::size_t queued = 0;
    for (const auto& s : broker_.sessions().all()) {
      inflight += s->inflight_count();
      queued += s->queued_count();
    }
    out.push_back(single("ringmq_inflight_messages",
                         "QoS 1/2 messages sent to clients and not yet acknowledged.", T::Gauge,
                         static_cast<double>(inflight)));
    out.push_back(single("ringmq_queued_messages",
                         "QoS 1/2 messages waiting for an offline client or a full window.",
                         T::Gauge, static_cast<double>(queued)));

    if (auto* store = broker_.store()) {
      const auto st = store->stats();
      out.push_back(single("ringmq_store_writable",
                           "1 while the store accepts writes, 0 when the disk is full.",
                           T::Gauge, st.writable ? 1 : 0));
      out.push_back(single("ringmq_store_commits_total", "Group commits written to the store.",
                           T::Counter, static_cast<double>(st.commits)));
      out.push_back(single("ringmq_store_failed_commits_total",
                           "Store commits that failed (retried until they succeed).", T::Counter,
                           static_cast<double>(st.failed_commits)));
      out.push_back(single("ringmq_store_bytes", "Live data in the store, as RocksDB estimates it.",
                           T::Gauge, static_cast<double>(st.bytes_on_disk)));
    }

    if (sources_.cluster) collect_cluster(sources_.cluster(), out);

    out.push_back(single("ringmq_ready", "1 when the node is ready to serve (/readyz).", T::Gauge,
                         sources_.ready && sources_.ready() ? 1 : 0));
    auto build = family("ringmq_build_info", "Version of the running ringmq.", T::Gauge);
    add(build, 1, {{"version", sources_.version}, {"revision", sources_.revision}});
    out.push_back(std::move(build));

    if (auto proc = read_process_stats()) {
      out.push_back(single("process_cpu_seconds_total", "User and system CPU time spent.",
                           T::Counter, proc->cpu_seconds));
      out.push_back(single("process_resident_memory_bytes", "Resident memory size.", T::Gauge,
                           proc->resident_bytes));
      out.push_back(single("process_virtual_memory_bytes", "Virtual memory size.", T::Gauge,
                           proc->virtual_bytes));
      out.push_back(single("process_open_fds", "Open file descriptors.", T::Gauge,
                           proc->open_fds));
      out.push_back(single("process_max_fds", "Maximum number of open file descriptors.",
                           T::Gauge, proc->max_fds));
      out.push_back(single("process_start_time_seconds",
                           "Start time of the process since the Unix epoch.", T::Gauge,
                           proc->start_time_seconds));
    }
    return out;
  }

 private:
  core::broker& broker_;
  const node_sources& sources_;
};

node_metrics::node_metrics(core::broker& broker, node_sources sources)
    : broker_(broker), sources_(std::move(sources)),
      registry_(std::make_shared<prometheus::Registry>()) {
  // Store commits take from tens of microseconds (no fsync) to tens of milliseconds.
  auto& store_family = prometheus::BuildHistogram()
                           .Name("ringmq_store_write_seconds")
                           .Help("Time to write (and fsync, per storage.durability) one group "
                                 "commit to the store.")
                           .Register(*registry_);
  store_write_seconds_ = &store_family.Add(
      {}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1});
  // A SUBACK waits one round trip to the peers (well under a millisecond on a
  // LAN) or, at worst, cluster.route_sync_timeout_ms.
  auto& sync_family = prometheus::BuildHistogram()
                          .Name("ringmq_cluster_route_sync_seconds")
                          .Help("Time a SUBACK waited for the live peers to apply its route.")
                          .Register(*registry_);
  const prometheus::Histogram::BucketBoundaries cluster_buckets{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  route_sync_seconds_ = &sync_family.Add({}, cluster_buckets);
  rpc_seconds_ = &prometheus::BuildHistogram()
                      .Name("ringmq_cluster_rpc_seconds")
                      .Help("Time of the unary calls this node made to its peers, by call.")
                      .Register(*registry_);
  for (const char* call : {"exchange", "claim", "kick", "health"}) {
    rpc_seconds_->Add({{"call", call}}, cluster_buckets);
  }
  collector_ = std::make_shared<collector>(broker_, sources_);
}

void node_metrics::observe_cluster(std::string_view what, double seconds) {
  if (what == "route_sync") {
    route_sync_seconds_->Observe(seconds);
    return;
  }
  if (what.starts_with("rpc:")) {
    const prometheus::Histogram::BucketBoundaries buckets{
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
    rpc_seconds_->Add({{"call", std::string(what.substr(4))}}, buckets).Observe(seconds);
  }
}

node_metrics::~node_metrics() = default;

void node_metrics::observe_store_write(double seconds) { store_write_seconds_->Observe(seconds); }

std::string node_metrics::scrape() const {
  auto families = collector_->Collect();
  for (auto& f : registry_->Collect()) families.push_back(std::move(f));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace ringmq::metrics
