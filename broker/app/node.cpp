#include "broker/app/node.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <future>
#include <unordered_set>

#include "broker/app/admin_api.hpp"
#include "broker/app/cluster_api.hpp"
#include "broker/core/probe.hpp"
#include "broker/core/sys_topics.hpp"
#include "broker/version.hpp"
#include "storage/rocksdb_store.hpp"

namespace ringmq::app {

namespace {

core::broker_settings broker_settings_from(const config::config& c, std::size_t workers) {
  core::broker_settings s;
  s.session.max_inflight = c.mqtt.max_inflight;
  s.session.max_queued_messages = c.mqtt.max_queued_messages;
  // The whole packet, as MQTT 5's Maximum Packet Size counts it.
  s.max_packet_size = c.mqtt.max_packet_size;
  s.max_keepalive = c.mqtt.max_keepalive;
  s.max_session_expiry = c.mqtt.max_session_expiry;
  s.allow_zero_length_clientid = c.mqtt.allow_zero_length_clientid;
  s.max_client_id_length = c.mqtt.max_client_id_length;
  s.max_topic_alias = c.mqtt.max_topic_alias;
  s.receive_maximum = c.mqtt.max_inflight;
  s.connect_timeout = std::chrono::milliseconds(c.mqtt.connect_timeout_ms);
  s.max_outbound_bytes = c.mqtt.max_outbound_bytes;
  s.retain_available = c.mqtt.retain_available;
  s.max_subscriptions_per_client = c.mqtt.max_subscriptions_per_client;
  s.version = std::string("ringmq ") + ringmq::version;
  s.node_id = c.node.id;
  s.retained_tombstone_ttl = std::chrono::seconds(c.cluster.tombstone_ttl_s);
  (void)workers;
  return s;
}

cluster::cluster_settings cluster_settings_from(const config::config& c) {
  cluster::cluster_settings s;
  const auto& k = c.cluster;
  s.name = k.name;
  s.node_id = c.node.id;
  s.bind = k.bind;
  s.advertise = k.advertise;
  s.seeds = k.seeds;
  s.dns = k.dns;
  s.vnodes = k.vnodes;
  s.heartbeat_interval = std::chrono::milliseconds(k.heartbeat_interval_ms);
  s.suspect_timeout = std::chrono::milliseconds(k.suspect_timeout_ms);
  s.dead_timeout = std::chrono::milliseconds(k.dead_timeout_ms);
  s.dead_member_timeout = std::chrono::milliseconds(k.dead_member_timeout_ms);
  s.digest_interval = std::chrono::milliseconds(k.digest_interval_ms);
  s.route_sync_timeout = std::chrono::milliseconds(k.route_sync_timeout_ms);
  s.claim_timeout = std::chrono::milliseconds(k.claim_timeout_ms);
  s.dns_interval = std::chrono::milliseconds(k.dns_interval_ms);
  s.peer_queue_bytes = k.peer_queue_bytes;
  s.tls = {k.tls_cert_file, k.tls_key_file, k.tls_ca_file, k.tls_server_name};
  s.replicate_sessions = k.replicate_sessions;
  s.replication_factor = k.replication_factor;
  s.write_quorum = k.write_quorum;
  return s;
}

storage::durability durability_from(config::durability d) {
  switch (d) {
    case config::durability::sync: return storage::durability::sync;
    case config::durability::batch: return storage::durability::batch;
    case config::durability::none: return storage::durability::none;
  }
  return storage::durability::batch;
}

const char* durability_name(config::durability d) {
  switch (d) {
    case config::durability::sync: return "sync";
    case config::durability::batch: return "batch";
    case config::durability::none: return "none";
  }
  return "batch";
}

}  // namespace

node::node(const config::config& cfg)
    : config_(cfg),
      workers_(cfg.node.workers),
      signals_(control_),
      reload_signal_(control_, SIGHUP),
      tick_timer_(control_),
      shutdown_timer_(control_),
      leave_timer_(control_) {
  // Before the store: a wrong password or ACL file is reported before anything else happens.
  load_auth();
  storage::rocksdb_options store_options;
  store_options.path = cfg.node.data_dir;
  store_options.durability = durability_from(cfg.storage.durability);
  store_options.max_bytes = cfg.storage.max_store_bytes;
  store_options.log = [](bool error, std::string_view message) {
    if (error) {
      spdlog::error("store: rocksdb: {}", message);
    } else {
      spdlog::warn("store: rocksdb: {}", message);
    }
  };
  auto opened = storage::open_rocksdb(store_options);
  if (opened.error) throw startup_error(opened.message);
  store_ = std::move(opened.opened);
  spdlog::info("store opened: data_dir={} durability={}", cfg.node.data_dir,
               durability_name(cfg.storage.durability));
  // Fail-stop: a node whose disk lost a write it was told to sync cannot know
  // what else it lost. Nothing waiting on that write was acknowledged; the
  // restart recovers from what the disk really holds and from the replicas.
  store_->set_failure_handler([](std::error_code ec, std::string_view why) {
    spdlog::critical("store failed: {} ({}): this node can no longer promise durability; "
                     "stopping so that it restarts from what its disk holds", ec.message(), why);
    spdlog::shutdown();
    std::_Exit(1);
  });
  // Reader stripes: one per worker, plus room for the control and HTTP threads.
  broker_ = std::make_unique<core::broker>(broker_settings_from(cfg, workers_.size()),
                                           workers_.size() + 2, authn_.get(), authz_.get(),
                                           store_.get());
  // The cluster's tasks for the workers: one peer's forwarded messages always
  // on the same worker, so they keep their order.
  cluster_ = std::make_unique<cluster::cluster_node>(
      cluster_settings_from(cfg), *broker_, store_.get(),
      [this](std::size_t key, std::function<void()> task) {
        boost::asio::post(workers_.context(key % workers_.size()), std::move(task));
      });
  try {
    cluster_->load();
  } catch (const std::runtime_error& e) {
    throw startup_error(std::string("cluster: ") + e.what());
  }
  broker_->set_cluster(cluster_.get());
  // Replicated sessions: their records live in their logs, not in the store's session columns.
  if (auto* keeper = cluster_->session_keeper(); keeper && broker_->journal()) {
    broker_->journal()->set_keeper(keeper);
  }
  metrics::node_sources sources;
  sources.connections = [this] { return static_cast<double>(tracker_.size()); };
  sources.ready = [this] { return ready(); };
  sources.cluster = [this] { return cluster_->view(); };
  sources.version = ringmq::version;
  sources.revision = ringmq::git_revision;
  metrics_ = std::make_unique<metrics::node_metrics>(*broker_, std::move(sources));
  store_->set_commit_observer([m = metrics_.get()](double seconds) {
    m->observe_store_write(seconds);
  });
  cluster_->set_observer([m = metrics_.get()](std::string_view what, double seconds) {
    m->observe_cluster(what, seconds);
  });
  cluster_->set_readiness_observer(
      [this] { boost::asio::post(control_, [this] { watch_readiness(); }); });
}

node::~node() {
  workers_.stop();
  cluster_->stop();
  cluster_->set_observer({});
  broker_->set_cluster(nullptr);
  // The metrics die before the store: stop the store from reporting to them.
  store_->set_commit_observer({});
}

void node::start() {
  started_ = core::clock::now();
  last_sys_ = started_;
  // HTTP first, so that probes see "alive, not ready" while the store is read.
  start_http();
  const auto t0 = core::clock::now();
  if (auto ec = broker_->recover(t0)) {
    throw startup_error("cannot recover from the store in " + config_.node.data_dir + ": " +
                        ec.message());
  }
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(core::clock::now() - t0).count();
  spdlog::info("recovered from the store: sessions={} subscriptions={} retained={} duration_ms={}",
               broker_->sessions().size(), broker_->routes().subscription_count(),
               broker_->retained().size(), ms);
  try {
    cluster_->start();
  } catch (const std::runtime_error& e) {
    throw startup_error(std::string("cluster: ") + e.what());
  }
  net::server_limits limits{config_.mqtt.max_connections};
  for (const auto& l : config_.listeners) {
    net::listener_settings ls;
    ls.name = l.name;
    config::split_host_port(l.bind, ls.host, ls.port);
    ls.max_connections = l.max_connections;
    switch (l.type) {
      case config::listener_type::mqtt: ls.kind = net::transport_kind::tcp; break;
      case config::listener_type::mqtts: ls.kind = net::transport_kind::tls; break;
      case config::listener_type::ws: ls.kind = net::transport_kind::ws; break;
      case config::listener_type::wss: ls.kind = net::transport_kind::wss; break;
    }
    ls.tls = {l.cert_file, l.key_file, l.ca_file, l.require_client_cert};
    ls.use_identity_as_username = l.use_identity_as_username;
    ls.ws_path = l.path;
    ls.handshake_timeout = std::chrono::milliseconds(config_.mqtt.connect_timeout_ms);
    auto listener = std::make_shared<net::listener>(control_, workers_, *broker_, tracker_, ls,
                                                    limits, net::connection_settings{});
    try {
      listener->open();
    } catch (const boost::system::system_error& e) {
      throw startup_error("listener " + l.name + ": cannot listen on " + l.bind + ": " +
                          e.code().message());
    } catch (const std::runtime_error& e) {
      throw startup_error(e.what());
    }
    spdlog::info("listening: listener={} address={}:{}", l.name, ls.host, listener->port());
    listeners_.push_back(std::move(listener));
  }
  workers_.start();
  for (auto& l : listeners_) l->start();
  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
    if (!ec) on_signal(signal);
  });
  reload_signal_.async_wait([this](const boost::system::error_code& ec, int) {
    if (!ec) reload();
  });
  tick();
  ready_ = true;
  spdlog::info("ringmq started: version={} workers={}", ringmq::version, workers_.size());
  watch_readiness();
}

void node::start_http() {
  if (config_.http.bind.empty()) return;
  std::string host;
  std::uint16_t port = 0;
  config::split_host_port(config_.http.bind, host, port);
  http_ = std::make_shared<http::server>(control_, host, port);
  http_->route("/livez", [this](const http::request&, http::reply_function reply) {
    answer_livez(std::move(reply));
  });
  http_->route("/readyz", [this](const http::request&, http::reply_function reply) {
    http::response r;
    const bool ok = ready();
    r.status = ok ? 200 : 503;
    if (ok) {
      r.body = "ready\n";
    } else if (ready_ && cluster_) {
      r.body = "not ready: " + cluster_->not_ready_reason() + "\n";
    } else {
      r.body = "not ready\n";
    }
    reply(std::move(r));
  });
  http_->route("/metrics", [this](const http::request&, http::reply_function reply) {
    http::response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_->scrape();
    reply(std::move(r));
  });
  const admin_api_settings api{config_.http.admin_token, config_.http.protect_reads,
                               config_.node.id};
  register_admin_api(*http_, *broker_, api);
  register_cluster_api(*http_, *cluster_, api, [this] { return request_leave(); });
  try {
    http_->open();
  } catch (const boost::system::system_error& e) {
    throw startup_error("http: cannot listen on " + config_.http.bind + ": " + e.code().message());
  }
  http_->start();
  spdlog::info("http listening: address={}:{}", host, http_->port());
}

// Alive when every worker loop runs a task within a second.
void node::answer_livez(http::reply_function reply) {
  struct probe_state {
    std::atomic<std::size_t> left;
    std::atomic<bool> answered{false};
    http::reply_function reply;
    boost::asio::steady_timer timer;
    probe_state(std::size_t n, http::reply_function r, boost::asio::io_context& io)
        : left(n), reply(std::move(r)), timer(io) {}
    void answer(bool alive) {
      if (answered.exchange(true)) return;
      http::response res;
      res.status = alive ? 200 : 503;
      res.body = alive ? "alive\n" : "a worker loop does not answer\n";
      reply(std::move(res));
      timer.cancel();
    }
  };
  auto state = std::make_shared<probe_state>(workers_.size(), std::move(reply), control_);
  state->timer.expires_after(std::chrono::seconds(1));
  state->timer.async_wait([state](const boost::system::error_code& ec) {
    if (!ec) state->answer(false);
  });
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    boost::asio::post(workers_.context(i), [state, &control = control_] {
      if (--state->left == 0) boost::asio::post(control, [state] { state->answer(true); });
    });
  }
}

// Logs when the store starts or stops refusing writes (full disk, size limit).
void node::watch_store() {
  const bool writable = store_->writable();
  if (writable == store_writable_) return;
  store_writable_ = writable;
  if (writable) {
    spdlog::info("store writable again: QoS 1/2 publishes accepted");
  } else {
    spdlog::error("store not writable (disk full or size limit): new QoS 1/2 publishes are "
                  "refused with reason code 0x97; delivery of stored messages goes on");
  }
}

bool node::ready() const { return ready_ && cluster_->ready(); }

// Logs when the cluster holds readiness back, and when it stops doing so.
void node::watch_readiness() {
  if (!ready_) return;
  auto reason = cluster_->not_ready_reason();
  if (reason == not_ready_reason_) return;
  if (reason.empty()) {
    spdlog::info("ready{}", config_.cluster.bind.empty()
                                ? ""
                                : ": routes and retained messages synced with every live peer");
  } else {
    spdlog::info("not ready: {}", reason);
  }
  not_ready_reason_ = std::move(reason);
}

void node::tick() {
  const auto now = core::clock::now();
  broker_->sweep(now);
  watch_store();
  watch_readiness();
  resume_leave();
  report_drops(now);
  const auto interval = std::chrono::seconds(config_.mqtt.sys_interval_s);
  if (interval.count() > 0 && (now - last_sys_ >= interval || last_sys_ == started_)) {
    last_sys_ = now;
    core::publish_sys_topics(*broker_, now,
                             std::chrono::duration_cast<std::chrono::seconds>(now - started_));
  }
  tick_timer_.expires_after(std::chrono::seconds(1));
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

// Messages dropped because a client does not keep up (it stopped reading, or
// reads slower than it is sent to) are counted per message in
// ringmq_messages_dropped_total but never logged per message: one summary
// line at most every 10 s says that it happens. The admin API shows who
// (inflight_cnt, mqueue_len of /api/v1/clients).
void node::report_drops(core::time_point now) {
  const bool reported_lately = last_drop_report_ != core::time_point{} &&
                               now - last_drop_report_ < std::chrono::seconds(10);
  if (reported_lately) return;
  const auto totals = core::sum_probes();
  const auto of = [&](core::drop_reason r) {
    return totals.messages_dropped[static_cast<std::size_t>(r)];
  };
  const auto slow = of(core::drop_reason::slow_consumer);
  const auto full = of(core::drop_reason::queue_full);
  if (slow == reported_slow_consumer_ && full == reported_queue_full_) return;
  spdlog::warn(
      "messages dropped: slow_consumer={} queue_full={} (clients that do not read fast enough; "
      "since the last report, at most one every 10 s)",
      slow - reported_slow_consumer_, full - reported_queue_full_);
  reported_slow_consumer_ = slow;
  reported_queue_full_ = full;
  last_drop_report_ = now;
}

void node::on_signal(int signal) {
  if (shutting_down_) {
    spdlog::warn("second signal, exiting at once: signal={}", signal);
    std::_Exit(1);
  }
  signals_.async_wait([this](const boost::system::error_code& ec, int s) {
    if (!ec) on_signal(s);
  });
  if (leave_phase_.load() != leave_phase::none) {
    // A node told to leave stops once nothing needs it (Kubernetes sends
    // SIGTERM when it scales down): stopping earlier would leave sessions
    // short of copies.
    spdlog::info("signal {} while leaving the cluster: the node stops once its sessions are on "
                 "the other members and its clients are disconnected",
                 signal);
    return;
  }
  spdlog::info("shutting down: signal={}", signal);
  begin_shutdown();
}

std::string node::request_leave() {
  // Done on the control loop (which may be the one asking: the HTTP server's).
  auto answer = std::make_shared<std::promise<std::string>>();
  auto result = answer->get_future();
  auto start = [this, answer] {
    if (shutting_down_) return answer->set_value("the node is shutting down");
    if (leave_phase_.load() != leave_phase::none) return answer->set_value({});
    if (auto problem = cluster_->leave(); !problem.empty()) return answer->set_value(problem);
    leave_phase_ = leave_phase::handing_off;
    leave_started_ = core::clock::now();
    // New CONNECTs are refused from now on (readiness already says 503), with
    // 0x9C Use another server: a client that still reaches this node hears
    // where to go instead of finding the port closed.
    broker_->refuse_new_clients(config_.cluster.server_reference);
    spdlog::warn("leaving the cluster: new connections refused; handing the sessions to the "
                 "other members, then disconnecting the {} clients",
                 tracker_.size());
    answer->set_value({});
    leave_step();
  };
  if (control_.get_executor().running_in_this_thread()) {
    start();
  } else {
    boost::asio::post(control_, start);
  }
  if (result.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    return "the node did not answer in time";
  }
  return result.get();
}

void node::resume_leave() {
  // The member set has this node's drain but no leave runs here: it stopped
  // (or was killed) while leaving, and its store or its peers remember the
  // drain. The leave goes on rather than stay half done.
  // (The first tick runs from start(), before the control loop does.)
  if (!control_.get_executor().running_in_this_thread()) return;
  if (shutting_down_ || !cluster_ || leave_phase_.load() != leave_phase::none ||
      !cluster_->leaving()) {
    return;
  }
  spdlog::warn("this node was leaving the cluster when it stopped: resuming the leave");
  if (auto problem = request_leave(); !problem.empty()) {
    spdlog::error("the leave cannot resume: {}", problem);
  }
}

void node::leave_step() {
  if (shutting_down_) return;
  const auto now = core::clock::now();
  const auto again = [this](std::chrono::milliseconds after) {
    leave_timer_.expires_after(after);
    leave_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) leave_step();
    });
  };
  switch (leave_phase_.load()) {
    case leave_phase::none:
      return;
    case leave_phase::handing_off: {
      const auto h = cluster_->handoff();
      if (!h.done) {
        if (now - leave_reported_ >= std::chrono::seconds(5)) {
          leave_reported_ = now;
          std::string peers;
          for (const auto& w : h.waiting_for) peers += (peers.empty() ? "" : ", ") + w;
          spdlog::info("leaving: handing off sessions: {} here still on a set with this node, {} "
                       "moving; waiting for: {}",
                       h.misplaced_here, h.moving_here, peers.empty() ? "nobody" : peers);
        }
        return again(std::chrono::milliseconds(250));
      }
      spdlog::info("leaving: every session is on the other members ({} s); disconnecting {} "
                   "clients at up to {}/s",
                   std::chrono::duration_cast<std::chrono::seconds>(now - leave_started_).count(),
                   tracker_.size(), config_.cluster.leave_disconnect_rate);
      leave_phase_ = leave_phase::disconnecting;
      [[fallthrough]];
    }
    case leave_phase::disconnecting: {
      // A bounded rate, so that the other nodes take the reconnections in
      // their stride: MQTT 5.0 clients hear where to go (0x9C with a Server
      // Reference when one is configured, else 0x8B), 3.1.1 clients are closed.
      const auto per_step = std::max<std::size_t>(1, config_.cluster.leave_disconnect_rate / 4);
      const auto& reference = config_.cluster.server_reference;
      const auto code = reference.empty() ? codec::reason_code::server_shutting_down
                                          : codec::reason_code::use_another_server;
      std::size_t sent = 0;
      for (const auto& c : tracker_.all()) {
        if (sent == per_step) break;
        if (!told_.insert(c.get()).second) continue;
        c->shutdown(code, reference);
        ++sent;
      }
      if (tracker_.size() > 0 && sent > 0) return again(std::chrono::milliseconds(250));
      if (all_told_at_ == core::time_point{}) all_told_at_ = now;
      if (tracker_.size() > 0 && now - all_told_at_ < std::chrono::seconds(5)) {
        return again(std::chrono::milliseconds(250));  // the last ones are closing
      }
      told_.clear();
      leave_phase_ = leave_phase::releasing;
      leave_reported_ = now;
      cluster_->release_sessions();
      [[fallthrough]];
    }
    case leave_phase::releasing: {
      // The sessions still served here (their clients offline) get new
      // owners while this node is there to hand them over: none is left
      // ownerless for the others to find after it departs.
      const auto served = cluster_->sessions_served();
      if (served > 0) {
        if (now - leave_reported_ >= std::chrono::seconds(5)) {
          leave_reported_ = now;
          spdlog::info("leaving: {} sessions still served here; the other members are taking "
                       "them over",
                       served);
        }
        return again(std::chrono::milliseconds(250));
      }
      spdlog::info("leaving: clients disconnected and every session served elsewhere; leaving "
                   "the member set");
      leave_phase_ = leave_phase::departing;
      departed_at_ = now;
      cluster_->depart();
      return again(std::chrono::milliseconds(250));
    }
    case leave_phase::departing:
      // The leave reaches the peers with the next frames; then stop.
      if (now - departed_at_ < std::chrono::seconds(1)) return again(std::chrono::milliseconds(250));
      spdlog::info("left the cluster in {} s; stopping",
                   std::chrono::duration_cast<std::chrono::seconds>(now - leave_started_).count());
      begin_shutdown();
      return;
  }
}

// Password and ACL files, when configured. With neither (and anonymous clients
// allowed) the broker keeps its allow-all default and pays nothing per message.
void node::load_auth() {
  const auto& a = config_.auth;
  if (!a.password_file.empty() || !a.anonymous_allowed()) {
    auth::authenticator_settings settings;
    settings.password_file = a.password_file;
    settings.allow_anonymous = a.anonymous_allowed();
    for (const auto& l : config_.listeners) {
      if (l.use_identity_as_username) settings.certificate_listeners.push_back(l.name);
    }
    authn_ = std::make_unique<auth::file_authenticator>(std::move(settings));
    if (auto error = authn_->reload()) {
      throw configuration_error("auth.password_file: " + error->to_string());
    }
    if (!a.password_file.empty()) {
      spdlog::info("password file loaded: {} users={} allow_anonymous={}", a.password_file,
                   authn_->user_count(), a.anonymous_allowed());
    } else {
      spdlog::info("no password file and allow_anonymous=false: only clients with a "
                   "certificate user name can connect");
    }
  }
  if (!a.acl_file.empty()) {
    authz_ = std::make_unique<auth::file_authorizer>(a.acl_file);
    if (auto error = authz_->reload()) {
      throw configuration_error("auth.acl_file: " + error->to_string());
    }
    spdlog::info("ACL file loaded: {} rules={}", a.acl_file, authz_->rule_count());
  }
}

// A file that fails to parse keeps the previous users or rules in force.
void node::reload_auth() {
  if (authn_ && !config_.auth.password_file.empty()) {
    if (auto error = authn_->reload()) {
      spdlog::error("password file reload failed, keeping the previous users: {}",
                    error->to_string());
    } else {
      spdlog::info("password file reloaded: {} users={}", config_.auth.password_file,
                   authn_->user_count());
    }
  }
  if (authz_) {
    if (auto error = authz_->reload()) {
      spdlog::error("ACL file reload failed, keeping the previous rules: {}", error->to_string());
    } else {
      spdlog::info("ACL file reloaded: {} rules={}", config_.auth.acl_file, authz_->rule_count());
    }
  }
}

// SIGHUP: certificates and keys are reread (open connections keep theirs), and
// the password and ACL files (the ACL applies to existing subscriptions at once).
void node::reload() {
  spdlog::info("SIGHUP: reloading certificates, password and ACL files");
  reload_auth();
  for (auto& l : listeners_) {
    std::string error;
    if (!l->reload_tls(error)) {
      spdlog::error("listener {}: reload failed, keeping the previous certificates: {}",
                    l->name(), error);
    }
  }
  reload_signal_.async_wait([this](const boost::system::error_code& ec, int) {
    if (!ec) reload();
  });
}

void node::begin_shutdown() {
  shutting_down_ = true;
  ready_ = false;
  for (auto& l : listeners_) l->stop();
  for (auto& c : tracker_.all()) c->shutdown(codec::reason_code::server_shutting_down);
  shutdown_deadline_ =
      core::clock::now() + std::chrono::milliseconds(config_.node.shutdown_timeout_ms);
  wait_for_connections();
}

void node::wait_for_connections() {
  if (tracker_.size() == 0 || core::clock::now() >= shutdown_deadline_) {
    if (tracker_.size() > 0) {
      spdlog::warn("shutdown: {} connections still open after the grace period",
                   tracker_.size());
    }
    tick_timer_.cancel();
    signals_.cancel();
    reload_signal_.cancel();
    control_.stop();
    return;
  }
  shutdown_timer_.expires_after(std::chrono::milliseconds(20));
  shutdown_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) wait_for_connections();
  });
}

int node::run() {
  control_.run();
  // Every connection is closed (or past its grace period): leave the peers,
  // then stop the loops.
  cluster_->stop();
  workers_.halt();
  if (auto ec = store_->flush()) spdlog::error("store flush at shutdown failed: {}", ec.message());
  spdlog::info("ringmq stopped");
  return 0;
}

}  // namespace ringmq::app
