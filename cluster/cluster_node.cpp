// Lifecycle, membership and the cluster thread's timers (liveness,
// heartbeats, digests, seeds and DNS). Routes and forwarding are in
// cluster_routes.cpp, the client-id directory in cluster_directory.cpp.
#include "cluster/cluster_node.hpp"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>

#include "cluster/peer_service.hpp"
#include "cluster/replication/session_replicator.hpp"
#include "cluster/session_replication.hpp"
#include "cluster/unary_call.hpp"
#include "grpc/health/v1/health.grpc.pb.h"
#include "ringmq/cluster/v1/cluster.grpc.pb.h"

namespace ringmq::cluster {

namespace {

constexpr std::string_view members_key = "cluster/members";

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::uint64_t random_u64() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

// Versions of peer tables are unique over every cluster_node of the process,
// so a thread's cached table can never be taken for another node's.
std::atomic<std::uint64_t> table_versions{0};

std::string read_file(const std::string& path, const char* key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string(key) + ": cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool split_address(const std::string& address, std::string& host, std::string& port) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) return false;
  host = address.substr(0, colon);
  port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return true;
}

std::string join_address(const std::string& host, std::uint16_t port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

}  // namespace

cluster_node::cluster_node(cluster_settings settings, core::broker& broker,
                           storage::store* store, post_function post)
    : settings_(std::move(settings)),
      broker_(broker),
      store_(store),
      post_(std::move(post)),
      boot_id_(random_u64() | 1),
      started_ms_(wall_ms()),
      clustered_(!settings_.bind.empty()),
      table_(16),
      tick_timer_(io_),
      resolver_(io_) {
  peers_ = std::make_shared<peer_table>();
  ring_ = std::make_shared<ring>(std::vector<ring_member>{{settings_.node_id, settings_.vnodes}});
}

cluster_node::~cluster_node() { stop(); }

// Liveness, deadlines and leases are durations on this node alone: a jump of
// the wall clock (found by the chaos run) must not make every peer look
// silent for as long as it jumped.
std::int64_t cluster_node::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ----- lifecycle

void cluster_node::load() {
  std::lock_guard lock(members_mutex_);
  if (clustered_ && store_) {
    if (auto raw = store_->get(storage::column::meta, members_key)) {
      v1::MemberSet stored;
      if (!stored.ParseFromString(*raw)) {
        throw std::runtime_error("the store's cluster member set (meta column, key " +
                                 std::string(members_key) + ") cannot be read");
      }
      if (!stored.cluster_name().empty() && stored.cluster_name() != settings_.name) {
        throw std::runtime_error("the store belongs to cluster \"" + stored.cluster_name() +
                                 "\", not cluster.name \"" + settings_.name + "\"");
      }
      members_ = member_set::from_proto(stored);
    }
  }
  if (auto self = members_.member(settings_.node_id)) {
    incarnation_ = self->incarnation;
    spdlog::info("cluster: member set from the store: epoch={} members={} incarnation={}",
                 members_.epoch(), members_.members().size(), incarnation_);
  } else {
    // A node alone is always incarnation 1; a clustered node's first start (or
    // a new empty volume) joins with a fresh one, so that a leave of an earlier
    // node of the same name does not apply to it.
    incarnation_ = clustered_ ? static_cast<std::uint64_t>(started_ms_) : 1;
    if (!members_.events().empty()) {
      spdlog::warn(
          "cluster: this node ({}) is not in the member set of its store; joining as a new "
          "member",
          settings_.node_id);
    }
    members_.add({member_event::kind::join, settings_.node_id, incarnation_, settings_.vnodes});
    persist_members_locked();
  }
  rebuild_locked();
  start_session_replication();
}

// ----- replicated sessions

void cluster_node::start_session_replication() {
  if (!clustered_ || !store_ || !settings_.replicate_sessions) return;
  session_replication::settings s;
  s.self = replication::member_number(settings_.node_id, incarnation_);
  s.replication_factor = settings_.replication_factor;
  s.write_quorum = settings_.write_quorum;
  s.acquire_timeout = settings_.claim_timeout;
  s.handover_timeout = settings_.claim_timeout;
  session_replication::hooks h;
  h.preference = [this](const std::string& client, std::size_t n) {
    return session_preference(client, n);
  };
  h.alive = [this](std::uint64_t m) { return member_alive(m); };
  h.may_serve = [this](std::uint64_t m) { return member_alive(m) && !member_releasing(m); };
  h.send = [this](std::uint64_t to, std::string batch) { send_session_log(to, std::move(batch)); };
  h.ring_version = [this] {
    std::lock_guard lock(members_mutex_);
    return members_.epoch();
  };
  h.members = [this] {
    std::lock_guard lock(members_mutex_);
    std::vector<std::uint64_t> out;
    out.reserve(member_of_id_.size());
    for (const auto& [id, number] : member_of_id_) out.push_back(number);
    return out;
  };
  replication_ = std::make_unique<session_replication>(s, *store_, broker_, std::move(h), io_);
  if (auto ec = replication_->load()) {
    throw std::runtime_error("the store's replicated session logs cannot be read: " +
                             ec.message());
  }
}

core::session_keeper* cluster_node::session_keeper() const noexcept { return replication_.get(); }

bool cluster_node::has_replicated_session(const std::string& client_id) const {
  return replication_ && replication_->has_log(client_id);
}

std::uint64_t cluster_node::member_number_of(const std::string& id) const {
  std::lock_guard lock(members_mutex_);
  auto it = member_of_id_.find(id);
  return it == member_of_id_.end() ? 0 : it->second;
}

std::vector<std::uint64_t> cluster_node::session_preference(const std::string& client,
                                                            std::size_t n) const {
  std::lock_guard lock(members_mutex_);
  std::vector<std::uint64_t> out;
  for (const auto& id : placement_ring_->preference_list(client, n)) {
    auto it = member_of_id_.find(id);
    if (it != member_of_id_.end()) out.push_back(it->second);
  }
  return out;
}

void cluster_node::describe_session(
    const std::string& client_id,
    std::function<void(std::optional<session_description>)> done) const {
  if (!replication_) return done(std::nullopt);
  replication_->describe(client_id, [this, done = std::move(done)](
                                        std::optional<session_replication::session_state> s) {
    if (!s) return done(std::nullopt);
    const auto name = [this](std::uint64_t m) {
      std::lock_guard lock(members_mutex_);
      auto it = id_of_member_.find(m);
      return it == id_of_member_.end() ? std::string("(former member)") : it->second;
    };
    session_description d;
    d.role = s->role;
    d.round = s->round;
    d.generation_owner = s->generation_owner ? name(s->generation_owner) : std::string();
    for (auto r : s->replicas) d.replicas.push_back(name(r));
    d.last_seq = s->last_seq;
    d.committed = s->committed;
    d.replicas_in_sync = s->replicas_in_sync;
    done(std::move(d));
  });
}

bool cluster_node::member_alive(std::uint64_t member) const {
  std::string id;
  {
    std::lock_guard lock(members_mutex_);
    auto it = id_of_member_.find(member);
    if (it == id_of_member_.end()) return false;  // not a member (any more)
    id = it->second;
  }
  if (id == settings_.node_id) return true;
  auto link = link_by_id(id);
  return link && !link->dead();
}

bool cluster_node::member_releasing(std::uint64_t member) const {
  std::string id;
  {
    std::lock_guard lock(members_mutex_);
    auto it = id_of_member_.find(member);
    if (it == id_of_member_.end()) return false;
    id = it->second;
  }
  if (id == settings_.node_id) return releasing_.load();
  auto link = link_by_id(id);
  return link && link->releasing();
}

void cluster_node::release_sessions() {
  if (!releasing_.exchange(true)) {
    spdlog::info("cluster: leaving: asking the other members to take over the {} sessions "
                 "still served here",
                 replication_ ? replication_->owned_sessions() : 0);
  }
}

std::size_t cluster_node::sessions_served() const {
  return replication_ ? replication_->owned_sessions() + replication_->handing_over_sessions() : 0;
}

void cluster_node::send_session_log(std::uint64_t member, std::string batch) {
  std::string id;
  {
    std::lock_guard lock(members_mutex_);
    auto it = id_of_member_.find(member);
    if (it == id_of_member_.end()) return;
    id = it->second;
  }
  auto link = link_by_id(id);
  if (!link || link->dead()) return;  // resent on a tick once it is back
  v1::PeerFrame f;
  f.mutable_session_log()->set_batch(std::move(batch));
  link->enqueue_frame(std::move(f));
}

void cluster_node::start() {
  // Before any peer can forward a message here, or hears of this node's routes.
  if (replication_) {
    replication_->keep_stored_sessions_local();
    replication_->start();
  }
  if (clustered_) {
    std::string host, port_text;
    if (!split_address(settings_.bind, host, port_text)) {
      throw std::runtime_error("cluster.bind: expected host:port, got " + settings_.bind);
    }
    std::shared_ptr<grpc::ServerCredentials> server_credentials;
    const auto& tls = settings_.tls;
    if (tls.enabled()) {
      grpc::SslServerCredentialsOptions options(
          GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
      options.pem_root_certs = read_file(tls.ca_file, "cluster.tls.ca_file");
      options.pem_key_cert_pairs.push_back({read_file(tls.key_file, "cluster.tls.key_file"),
                                            read_file(tls.cert_file, "cluster.tls.cert_file")});
      server_credentials = grpc::SslServerCredentials(options);
      grpc::SslCredentialsOptions client;
      client.pem_root_certs = options.pem_root_certs;
      client.pem_private_key = options.pem_key_cert_pairs[0].private_key;
      client.pem_cert_chain = options.pem_key_cert_pairs[0].cert_chain;
      channel_credentials_ = grpc::SslCredentials(client);
      if (!tls.server_name.empty()) channel_args_.SetSslTargetNameOverride(tls.server_name);
    } else {
      server_credentials = grpc::InsecureServerCredentials();
      channel_credentials_ = grpc::InsecureChannelCredentials();
    }
    // A restarted peer is found again quickly (gRPC's default backoff grows to 2 minutes).
    channel_args_.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    channel_args_.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    channel_args_.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1'000);
    channel_args_.SetMaxReceiveMessageSize(256 << 20);
    channel_args_.SetMaxSendMessageSize(256 << 20);

    service_ = std::make_unique<peer_service>(*this);
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    int bound_port = 0;
    builder.AddListeningPort(settings_.bind, server_credentials, &bound_port);
    builder.RegisterService(service_.get());
    builder.SetMaxReceiveMessageSize(256 << 20);
    builder.SetMaxSendMessageSize(256 << 20);
    server_ = builder.BuildAndStart();
    if (!server_ || bound_port == 0) {
      throw std::runtime_error("cluster.bind: cannot listen on " + settings_.bind);
    }
    port_ = static_cast<std::uint16_t>(bound_port);
    if (!settings_.advertise.empty()) {
      advertised_ = settings_.advertise;
    } else if (host == "0.0.0.0" || host == "::" || host.empty()) {
      throw std::runtime_error(
          "cluster.advertise: needed when cluster.bind listens on every address (" +
          settings_.bind + "): peers must be told one they can reach");
    } else {
      advertised_ = join_address(host, port_);
    }
    std::lock_guard lock(members_mutex_);
    const auto version =
        std::max<std::uint64_t>(static_cast<std::uint64_t>(started_ms_),
                                members_.address_version(settings_.node_id) + 1);
    members_.set_address(settings_.node_id, advertised_, version);
    persist_members_locked();
    rebuild_locked();
    spdlog::info("cluster: peer server listening: address={} advertised={} cluster={} tls={}",
                 join_address(host, port_), advertised_, settings_.name,
                 tls.enabled() ? "mutual" : "off");
  }
  thread_ = std::thread([this] {
    auto guard = boost::asio::make_work_guard(io_);
    io_.run();
  });
  boost::asio::post(io_, [this] { tick(); });
}

void cluster_node::stop() {
  if (stopping_.exchange(true)) return;
  if (replication_ && thread_.joinable()) replication_->stop();
  boost::asio::post(io_, [this] {
    tick_timer_.cancel();
    resolver_.cancel();
    io_.stop();
  });
  if (thread_.joinable()) thread_.join();
  // Whatever waits for the cluster is answered now: the peer service's calls
  // must finish before the server can shut down.
  std::vector<std::function<void(bool)>> answers;
  {
    std::lock_guard lock(directory_mutex_);
    for (auto& [client, w] : kick_waiters_) answers.push_back(std::move(w.done));
    kick_waiters_.clear();
    for (auto& [client, queued] : busy_) {
      for (auto& q : queued) answers.push_back(std::move(q.done));
    }
    busy_.clear();
  }
  for (auto& a : answers) a(false);
  check_route_waiters(now_ms());
  // Every stream ends now, both ways: the server's shutdown need not wait for them.
  for (const auto& link : all_links()) {
    link->close_stream();
    std::lock_guard lock(link->inbound_mutex);
    if (auto* s = static_cast<inbound_handle*>(link->inbound.stream)) s->cancel();
  }
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  // Streams and calls end once gRPC has completed them; their reactors point here.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    bool busy = false;
    for (const auto& link : all_links()) busy |= link->stream_open();
    if (!busy && calls_in_flight_.load() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (server_) server_->Wait();
}

// ----- membership

std::shared_ptr<const cluster_node::peer_table> cluster_node::peers() const {
  std::lock_guard lock(members_mutex_);
  return peers_;
}

const cluster_node::peer_table& cluster_node::peers_for_this_thread() const {
  // The publish path asks for every message: a thread keeps its copy until
  // the table changes, instead of touching a shared reference count each time.
  struct cache {
    std::uint64_t version = 0;
    std::shared_ptr<const peer_table> table;
  };
  thread_local cache c;
  const auto v = peers_version_.load(std::memory_order_acquire);
  if (c.version != v || !c.table) {
    std::lock_guard lock(members_mutex_);
    c.table = peers_;
    c.version = peers_version_.load(std::memory_order_relaxed);
  }
  return *c.table;
}

std::shared_ptr<peer_link> cluster_node::link_by_id(const std::string& id) const {
  std::lock_guard lock(members_mutex_);
  auto it = links_.find(id);
  return it == links_.end() ? nullptr : it->second;
}

std::shared_ptr<const ring> cluster_node::current_ring() const {
  std::lock_guard lock(members_mutex_);
  return ring_;
}

void cluster_node::persist_members_locked() {
  if (!clustered_ || !store_) return;
  v1::MemberSet p;
  members_.to_proto(p);
  p.set_cluster_name(settings_.name);
  storage::write_batch b;
  b.put(storage::column::meta, std::string(members_key), p.SerializeAsString());
  store_->append(std::move(b));
}

void cluster_node::rebuild_locked() {
  const auto list = members_.members();
  std::vector<ring_member> ring_members;
  std::vector<ring_member> placing;
  for (const auto& m : list) {
    ring_members.push_back({m.id, m.vnodes});
    if (!m.draining) placing.push_back({m.id, m.vnodes});
  }
  ring_ = std::make_shared<ring>(std::move(ring_members));
  // Session copies go to members that are not leaving (all of them, should
  // every member be leaving).
  placement_ring_ = placing.empty() ? ring_ : std::make_shared<ring>(std::move(placing));
  leaving_ = false;
  for (const auto& m : list) {
    if (m.id == settings_.node_id && m.draining) leaving_ = true;
  }
  if (leaving_ && leave_epoch_ == 0) leave_epoch_ = members_.epoch();
  id_of_member_.clear();
  member_of_id_.clear();
  for (const auto& m : list) {
    const auto number = replication::member_number(m.id, m.incarnation);
    id_of_member_[number] = m.id;
    member_of_id_[m.id] = number;
  }

  std::set<std::string> wanted;
  for (const auto& m : list) {
    if (m.id == settings_.node_id) continue;
    wanted.insert(m.id);
    auto& link = links_[m.id];
    if (!link) {
      link = std::make_shared<peer_link>(*this, m.id, next_index_++, now_ms(),
                                         settings_.peer_queue_bytes);
    }
    if (!m.address.empty() && channel_credentials_) {
      link->set_address(m.address, channel_credentials_, channel_args_);
    }
  }
  for (auto it = links_.begin(); it != links_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    // A member that left: all its routes go at once.
    auto link = it->second;
    link->close_stream();
    table_.drop(link->index());
    link->drop_queue();
    it = links_.erase(it);
  }
  auto table = std::make_shared<peer_table>();
  table->by_index.resize(next_index_);
  for (const auto& [id, link] : links_) {
    table->by_index[link->index()] = link;
    table->all.push_back(link);
  }
  peers_ = std::move(table);
  peers_version_.store(++table_versions, std::memory_order_release);
  if (clustered_ && !members_.is_member(settings_.node_id) && !removed_) {
    removed_ = true;
    spdlog::error(
        "cluster: this node ({}) was removed from the member set; it stops taking part and "
        "reports not ready. To join again, start it with an empty data directory",
        settings_.node_id);
  }
}

void cluster_node::apply_members(const member_set& incoming, const char* source) {
  std::string summary;
  std::uint64_t epoch = 0;
  {
    std::lock_guard lock(members_mutex_);
    if (!members_.merge(incoming)) return;
    persist_members_locked();
    rebuild_locked();
    epoch = members_.epoch();
    for (const auto& m : members_.members()) {
      if (!summary.empty()) summary += ",";
      summary += m.id;
    }
  }
  spdlog::info("cluster: member set changed: epoch={} members={} source={}", epoch, summary,
               source);
  readiness_may_have_changed();
  v1::PeerFrame f;
  {
    std::lock_guard lock(members_mutex_);
    members_.to_proto(*f.mutable_members()->mutable_members());
  }
  f.mutable_members()->mutable_members()->set_cluster_name(settings_.name);
  for (const auto& link : all_links()) {
    v1::PeerFrame copy = f;
    link->enqueue_frame(std::move(copy));
  }
  if (!stopping_) {
    // New members get their streams now, not at the next tick.
    boost::asio::post(io_, [this] {
      for (const auto& link : all_links()) link->maintain(now_ms());
      register_with_owners();
    });
  }
}

std::string cluster_node::leave() {
  if (!clustered_) return "this node is not part of a cluster";
  member_set change;
  {
    std::lock_guard lock(members_mutex_);
    if (removed_) return "this node was removed from the cluster already";
    if (leaving_) return {};
    change = members_;
    change.add({member_event::kind::drain, settings_.node_id, incarnation_, 0});
  }
  spdlog::warn("cluster: leaving: this node holds no new session copies; the sessions it "
               "serves or holds move to the other members");
  apply_members(change, "leave");
  return {};
}

bool cluster_node::leaving() const {
  std::lock_guard lock(members_mutex_);
  return leaving_;
}

cluster_node::handoff_status cluster_node::handoff() const {
  handoff_status s;
  if (replication_) {
    s.misplaced_here = replication_->misplaced_sessions();
    s.moving_here = replication_->moving_sessions();
  }
  std::uint64_t epoch = 0;
  {
    std::lock_guard lock(members_mutex_);
    epoch = leave_epoch_;
  }
  // A peer counts once it reported, after its view of the ring changed and
  // its next look at its sessions (every 500 ms) could have run, that it
  // serves none off the ring's replica sets.
  const auto now = now_ms();
  for (const auto& link : all_links()) {
    if (link->dead()) continue;
    const auto r = link->placement();
    const bool seen = r.epoch >= epoch && epoch > 0;
    const bool fresh = seen && r.at_ms - link->epoch_raised_at_ms() >= 1'500;
    if (!fresh || r.misplaced > 0 || now - r.at_ms > 5'000) {
      s.waiting_for.push_back(link->id() + (seen ? " (" + std::to_string(r.misplaced) +
                                                       " sessions to move)"
                                                 : " (has not seen the leave yet)"));
    }
  }
  s.done = s.misplaced_here == 0 && s.moving_here == 0 && s.waiting_for.empty();
  return s;
}

std::string cluster_node::depart() {
  member_set change;
  {
    std::lock_guard lock(members_mutex_);
    if (removed_) return {};
    change = members_;
    change.add({member_event::kind::leave, settings_.node_id, incarnation_, 0});
  }
  apply_members(change, "departure");
  return {};
}

std::string cluster_node::forget(const std::string& node) {
  member_set change;
  {
    std::lock_guard lock(members_mutex_);
    auto m = members_.member(node);
    if (!m) return "no member " + node + " in the member set";
    if (node == settings_.node_id) {
      return "a node cannot forget itself; ask another member to forget it";
    }
    change = members_;
    change.add({member_event::kind::leave, node, m->incarnation, 0});
  }
  apply_members(change, "forget");
  return {};
}

// ----- views

bool cluster_node::ready() const { return not_ready_reason().empty(); }

std::string cluster_node::not_ready_reason() const {
  {
    std::lock_guard lock(members_mutex_);
    if (removed_) return "this node was removed from the cluster";
    if (leaving_) return "this node is leaving the cluster";
  }
  for (const auto& link : all_links()) {
    if (link->dead()) continue;
    std::lock_guard lock(link->inbound_mutex);
    if (!link->inbound.routes_synced) return "routes of " + link->id() + " not received yet";
    if (!link->inbound.retained_synced) {
      return "retained messages of " + link->id() + " not compared yet";
    }
  }
  return {};
}

cluster_view cluster_node::view() const {
  cluster_view v;
  v.node_id = settings_.node_id;
  v.name = settings_.name;
  v.address = advertised_;
  v.clustered = clustered_;
  v.route_seq = route_seq_.load();
  if (replication_) {
    v.replicating_sessions = true;
    v.session_logs = replication_->sessions();
    v.owned_sessions = replication_->owned_sessions();
    v.under_replicated_sessions = replication_->under_replicated();
    v.misplaced_sessions = replication_->misplaced_sessions();
    v.moving_sessions = replication_->moving_sessions();
    v.moved_sessions = replication_->moved_sessions();
    v.arriving_sessions = replication_->arriving_sessions();
    v.handoff_bytes_out = replication_->handoff_bytes_sent();
    v.handoff_bytes_in = replication_->handoff_bytes_received();
    v.replica_lag_seconds =
        std::chrono::duration<double>(replication_->replica_lag()).count();
  }
  std::vector<member_info> list;
  std::shared_ptr<const ring> r;
  {
    std::lock_guard lock(members_mutex_);
    v.member = !removed_;
    v.epoch = members_.epoch();
    v.digest = members_.digest();
    list = members_.members();
    r = ring_;
  }
  const auto slots = r->slot_counts();
  const auto now = now_ms();
  for (const auto& m : list) {
    member_view mv;
    mv.id = m.id;
    mv.incarnation = m.incarnation;
    mv.vnodes = m.vnodes;
    mv.address = m.address;
    mv.self = m.id == settings_.node_id;
    mv.leaving = m.draining;
    for (std::size_t i = 0; i < r->members().size(); ++i) {
      if (r->members()[i].id == m.id) mv.slots = slots[i];
    }
    if (!mv.self) {
      auto link = link_by_id(m.id);
      mv.state = link ? link->state() : liveness::dead;
    }
    v.members.push_back(std::move(mv));
  }
  for (const auto& link : all_links()) {
    peer_view p;
    p.id = link->id();
    p.address = link->address();
    p.state = link->state();
    p.stream_open = link->stream_open();
    p.last_heard_ms_ago = now - link->last_heard_ms();
    p.queued_messages = link->queued_messages();
    p.queued_bytes = link->queued_bytes();
    p.acked_route_seq = link->acked_route_seq();
    {
      std::lock_guard lock(link->inbound_mutex);
      p.routes_synced = link->inbound.routes_synced;
      p.retained_synced = link->inbound.retained_synced;
    }
    p.routes = table_.count_of(link->index());
    p.forwarded_out = link->counters.forwarded_out.load();
    p.forwarded_in = link->counters.forwarded_in.load();
    p.streams_opened = link->counters.streams_opened.load();
    v.forwarded_out += p.forwarded_out;
    v.forwarded_in += p.forwarded_in;
    v.dropped_peer_queue_full += link->counters.dropped_queue_full.load();
    v.dropped_peer_dead += link->counters.dropped_dead.load();
    v.resent += link->counters.resent.load();
    v.forwards_failed += link->counters.settle_failed.load();
    v.peers.push_back(std::move(p));
  }
  v.dropped_claim_timeout = dropped_claim_timeout_.load();
  v.dropped_malformed = dropped_malformed_.load();
  v.dropped_peer_restarted = dropped_stale_.load();
  v.route_sync_timeouts = route_sync_timeouts_.load();
  {
    std::lock_guard lock(directory_mutex_);
    v.directory_entries = directory_.size();
  }
  v.ready = ready();
  return v;
}

// ----- the cluster thread

void cluster_node::schedule_tick() {
  if (stopping_) return;
  tick_timer_.expires_after(settings_.heartbeat_interval);
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

void cluster_node::tick() {
  if (stopping_) return;
  const auto now = now_ms();
  if (clustered_) {
    check_liveness(now);
    check_lease(now);
    expire_departed_routes(now);
    expire_barriers(now);
    for (const auto& link : all_links()) link->maintain(now);
    // A peer that neither settles what it was sent nor is found dead in
    // this time is not waited for: the publishers are told it failed.
    const auto settle_timeout = (settings_.dead_timeout + settings_.claim_timeout).count();
    for (const auto& link : all_links()) link->expire_settles(now, settle_timeout);
    send_heartbeats();
    if (now - last_digest_ms_ >= settings_.digest_interval.count()) {
      last_digest_ms_ = now;
      send_digests();
    }
    if (last_dns_ms_ == 0 || now - last_dns_ms_ >= settings_.dns_interval.count()) {
      last_dns_ms_ = now;
      if (!settings_.dns.empty()) resolve_dns();
      contact_seeds();
    }
    // Dropped messages are counted one by one but logged at most every 10 s.
    std::uint64_t dropped = 0;
    for (const auto& link : all_links()) {
      dropped += link->counters.dropped_queue_full.load() + link->counters.dropped_dead.load();
    }
    if (dropped != reported_drops_ && now - last_drop_report_ms_ >= 10'000) {
      spdlog::warn("cluster: {} messages for peers dropped since the last report "
                   "(ringmq_cluster_dropped_total has the reasons)",
                   dropped - reported_drops_);
      reported_drops_ = dropped;
      last_drop_report_ms_ = now;
    }
  }
  check_route_waiters(now);
  schedule_tick();
}

std::int64_t cluster_node::lease_ms() const {
  return settings_.suspect_timeout.count() +
         (settings_.dead_timeout.count() - settings_.suspect_timeout.count()) / 2;
}

std::int64_t cluster_node::lease_expiry() const {
  constexpr auto never = std::numeric_limits<std::int64_t>::max();
  // Only replicated sessions can be taken over by a peer that finds this
  // node dead (found by the chaos run: a node back from a pause or a
  // partition delivered through sessions that had moved meanwhile).
  if (!clustered_ || !settings_.replicate_sessions) return never;
  const auto& peers = peers_for_this_thread();
  if (peers.all.empty()) return never;
  // The members that answered at least once since this node started: one
  // that never did (it is joining, or was down all along) cannot have found
  // this node dead while it served sessions, and counting it would cut a
  // node off whenever the cluster grows.
  std::vector<std::int64_t> answers;
  answers.reserve(peers.all.size());
  for (const auto& link : peers.all) {
    if (const auto at = link->confirmed_ms(); at != 0) answers.push_back(at);
  }
  if (answers.empty()) return never;
  std::sort(answers.begin(), answers.end(), std::greater<>());
  // A majority of them, this node included, must have answered lately.
  const std::size_t needed = (answers.size() + 1) / 2;
  const auto majority_at = answers[needed - 1];
  // Only a majority counts: a single peer that stopped answering may just be
  // slow to send, or dead (counting it cut nodes off whenever a peer was
  // slow, in the chaos run). One that cannot hear this node and takes a
  // session over needs another replica's promise for it, and this node
  // learns of the new generation at its next write to that session.
  return majority_at + lease_ms();
}

void cluster_node::extend_lease(std::int64_t now) {
  // Never past a lapse: the cluster thread must see it (check_lease) and
  // put the sessions in doubt first, even if the peers answer again by then.
  const auto until = lease_expiry();
  auto held = held_until_.load();
  while (held > now && until > held && !held_until_.compare_exchange_weak(held, until)) {
  }
}

void cluster_node::check_lease(std::int64_t now) {
  const auto previous = held_until_.load();
  const auto until = lease_expiry();
  held_until_.store(until);
  // Lapsed since the last look (a pause: the peers may have answered the
  // first heartbeats after it already, but found this node dead before),
  // or lapsing now.
  const bool lapsed = now >= previous || now >= until;
  if (lapsed == cut_off_.load()) return;
  cut_off_.store(lapsed);
  readiness_may_have_changed();
  if (lapsed) {
    std::string silent;
    for (const auto& link : all_links()) {
      const auto at = link->confirmed_ms();
      if (at == 0 || now - at >= lease_ms()) silent += (silent.empty() ? "" : ",") + link->id();
    }
    spdlog::warn("cluster: cut off from the cluster (no answer to heartbeats within {} ms{}{}): "
                 "the persistent sessions served here may be taken over elsewhere, so their "
                 "clients are disconnected, and QoS 1/2 messages refused, until the peers "
                 "answer again",
                 lease_ms(), silent.empty() ? " (this node was stalled)" : " from: ", silent);
  } else {
    spdlog::info("cluster: the peers answer again; sessions are served here again once "
                 "their clients reconnect");
  }
  if (replication_) replication_->set_cut_off(lapsed);
}

void cluster_node::check_liveness(std::int64_t now) {
  std::vector<std::string> gone;
  for (const auto& link : all_links()) {
    const auto elapsed = now - link->last_heard_ms();
    if (settings_.dead_member_timeout.count() > 0 &&
        elapsed >= settings_.dead_member_timeout.count()) {
      gone.push_back(link->id());
    }
    const auto next = elapsed < settings_.suspect_timeout.count() ? liveness::alive
                      : elapsed < settings_.dead_timeout.count()  ? liveness::suspect
                                                                  : liveness::dead;
    if (next == liveness::suspect) health_check(link);
    const auto previous = link->state();
    if (next == previous) continue;
    link->set_state(next);
    readiness_may_have_changed();
    if (next == liveness::dead) {
      spdlog::warn("cluster: peer dead: node={} silent_ms={}", link->id(), elapsed);
      on_peer_dead(*link);
    } else if (previous == liveness::dead) {
      spdlog::info("cluster: peer alive again: node={}", link->id());
      on_peer_back(*link);
    } else if (next == liveness::suspect) {
      spdlog::info("cluster: peer suspect: node={} silent_ms={}", link->id(), elapsed);
    } else {
      spdlog::info("cluster: peer alive: node={}", link->id());
    }
  }
  // Every node decides this alone and adds the same leave (the member's
  // incarnation): the sets merge into one, the epoch rises once. The ring
  // then gives the member's sessions other replica sets, and their owners
  // move them there (R copies again).
  for (const auto& id : gone) {
    spdlog::warn("cluster: removing member {}: dead for cluster.dead_member_timeout_ms", id);
    if (auto why = forget(id); !why.empty()) {
      spdlog::warn("cluster: member {} not removed: {}", id, why);
    }
  }
}

void cluster_node::on_peer_dead(peer_link& link) {
  if (settings_.replicate_sessions) {
    // The dead node's persistent sessions are taken over by their replicas,
    // which then announce their subscriptions. Until those routes can have
    // arrived, a QoS 1/2 message matching the dead node's routes may be for
    // one of those sessions: it is failed back to its publisher (publish()),
    // not acknowledged with no session queueing it. Past the grace, the
    // routes go.
    departure d;
    d.drop_by_ms = now_ms() + departed_route_grace(settings_).count();
    d.checks_at_death = replication_ ? replication_->orphan_checks() : 0;
    const auto now = now_ms();
    for (const auto& [peer, at] : early_takeovers_[link.index()]) {
      if (now - at < departed_route_grace(settings_).count()) d.taken_over_by.insert(peer);
    }
    early_takeovers_.erase(link.index());
    departed_[link.index()] = std::move(d);
    departed_changed();
  } else {
    table_.drop(link.index());
  }
  const auto dropped = link.drop_queue();
  if (dropped) spdlog::warn("cluster: dropped {} messages queued for {}", dropped, link.id());
  {
    std::lock_guard lock(link.inbound_mutex);
    if (auto* s = static_cast<inbound_handle*>(link.inbound.stream)) s->cancel();
    link.inbound = inbound_state{};
  }
  link.close_stream();
  forget_holders_of(link.index(), 0);
  check_route_waiters(now_ms());
  register_with_owners();
}

void cluster_node::on_peer_back(peer_link& link) {
  // Its routes come again with its snapshot on the stream it opens.
  departed_.erase(link.index());
  departed_changed();
  early_takeovers_.erase(link.index());
  register_with_owners();
}

void cluster_node::expire_departed_routes(std::int64_t now) {
  const auto table = peers();
  const auto& peers = *table;
  for (auto it = departed_.begin(); it != departed_.end();) {
    auto& [index, d] = *it;
    const auto dead = index < peers.by_index.size() ? peers.by_index[index] : nullptr;
    if (!dead) {  // it left the member set meanwhile: its routes went with it
      it = departed_.erase(it);
      continue;
    }
    if (!d.told && replication_ && replication_->last_quiet_orphan_check() > d.checks_at_death) {
      // After the routes of the sessions this node took over, on each stream.
      d.told = true;
      v1::PeerFrame f;
      f.mutable_sessions_taken_over()->set_node(dead->id());
      for (const auto& link : peers.all) {
        if (link->dead()) continue;
        v1::PeerFrame copy = f;
        link->enqueue_frame(std::move(copy));
      }
    }
    bool everyone = d.told;
    for (const auto& link : peers.all) {
      if (everyone && !link->dead() && !d.taken_over_by.contains(link->id())) everyone = false;
    }
    if (!everyone && now < d.drop_by_ms) {
      ++it;
      continue;
    }
    // Dropped before it is logged: what reads the log may look at them next.
    table_.drop(index);
    if (everyone) {
      spdlog::info("cluster: every live node took over the sessions of {}; its routes dropped",
                   dead->id());
    } else {
      spdlog::warn("cluster: routes of {} dropped after {} ms without every live node saying it "
                   "took over its sessions",
                   dead->id(), departed_route_grace(settings_).count());
    }
    it = departed_.erase(it);
  }
  departed_changed();
}

void cluster_node::on_sessions_taken_over(peer_link& from, const std::string& node) {
  const auto dead = link_by_id(node);
  if (!dead) return;
  auto it = departed_.find(dead->index());
  if (it != departed_.end()) {
    it->second.taken_over_by.insert(from.id());
  } else {
    // A peer found it dead before this node did: kept for when it does.
    early_takeovers_[dead->index()][from.id()] = now_ms();
  }
}

void cluster_node::health_check(const std::shared_ptr<peer_link>& link) {
  auto channel = link->channel();
  if (!channel || health_in_flight_.contains(link->id())) return;
  health_in_flight_.insert(link->id());
  ++calls_in_flight_;
  start_unary<grpc::health::v1::Health, grpc::health::v1::HealthCheckResponse>(
      channel, std::chrono::milliseconds(500), grpc::health::v1::HealthCheckRequest{},
      [](auto& health, auto... args) { health.Check(args...); },
      [this, link](const grpc::Status& status, const auto& c) {
        observe("rpc:health", c.seconds());
        if (status.ok() &&
            c.response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
          link->heard(now_ms());
        }
        boost::asio::post(io_, [this, id = link->id()] { health_in_flight_.erase(id); });
        --calls_in_flight_;
      });
}

void cluster_node::send_heartbeats() {
  v1::PeerFrame f;
  f.mutable_heartbeat()->set_sent_at_ms(now_ms());
  {
    std::lock_guard lock(members_mutex_);
    f.mutable_heartbeat()->set_epoch(members_.epoch());
  }
  if (replication_) {
    f.mutable_heartbeat()->set_misplaced_sessions(replication_->misplaced_sessions());
    f.mutable_heartbeat()->set_releasing_sessions(releasing_.load());
  }
  for (const auto& link : all_links()) {
    if (!link->stream_open()) continue;
    v1::PeerFrame copy = f;
    link->enqueue_frame(std::move(copy));
  }
}

void cluster_node::send_digests() {
  const auto targets = all_links();
  {
    // Under the routes lock: the digest is of exactly the routes numbered up to seq.
    std::lock_guard lock(routes_mutex_);
    v1::PeerFrame f;
    auto* d = f.mutable_route_digest();
    d->set_seq(route_seq_.load());
    d->set_digest(table_.digest_of(0));
    d->set_count(table_.count_of(0));
    for (const auto& link : targets) {
      if (!link->stream_open()) continue;
      v1::PeerFrame copy = f;
      link->enqueue_frame(std::move(copy), false);
    }
  }
  v1::PeerFrame f;
  f.mutable_retained_digest()->set_digest(broker_.retained().digest());
  f.mutable_retained_digest()->set_count(broker_.retained().replicated_count());
  for (const auto& link : targets) {
    if (!link->stream_open()) continue;
    v1::PeerFrame copy = f;
    link->enqueue_frame(std::move(copy));
  }
}

void cluster_node::resolve_dns() {
  std::string host, port;
  if (!split_address(settings_.dns, host, port)) return;
  resolver_.async_resolve(
      host, port,
      [this, name = settings_.dns](const boost::system::error_code& ec,
                                   boost::asio::ip::tcp::resolver::results_type results) {
        if (ec) {
          if (ec != boost::asio::error::operation_aborted) {
            spdlog::warn("cluster: cannot resolve cluster.dns {}: {}", name, ec.message());
          }
          return;
        }
        std::vector<std::string> found;
        for (const auto& entry : results) {
          const auto ep = entry.endpoint();
          found.push_back(join_address(ep.address().to_string(), ep.port()));
        }
        std::sort(found.begin(), found.end());
        found.erase(std::unique(found.begin(), found.end()), found.end());
        if (found != dns_addresses_) {
          spdlog::info("cluster: cluster.dns {} resolves to {} addresses", name, found.size());
          dns_addresses_ = std::move(found);
        }
        contact_seeds();
      });
}

void cluster_node::contact_seeds() {
  std::set<std::string> targets(settings_.seeds.begin(), settings_.seeds.end());
  targets.insert(dns_addresses_.begin(), dns_addresses_.end());
  targets.erase(advertised_);
  // A seed that is a known, connected peer has nothing new to say.
  for (const auto& link : all_links()) {
    if (link->stream_open() && link->state() == liveness::alive) targets.erase(link->address());
  }
  for (const auto& t : targets) exchange_with(t);
}

void cluster_node::exchange_with(const std::string& address) {
  if (exchanges_in_flight_.contains(address) || stopping_) return;
  exchanges_in_flight_.insert(address);
  v1::MemberSet request;
  {
    std::lock_guard lock(members_mutex_);
    members_.to_proto(request);
  }
  request.set_cluster_name(settings_.name);
  request.set_sender(settings_.node_id);
  ++calls_in_flight_;
  start_unary<v1::Peer, v1::MemberSet>(
      grpc::CreateCustomChannel(address, channel_credentials_, channel_args_),
      std::chrono::seconds(2), std::move(request),
      [](auto& peer, auto... args) { peer.Exchange(args...); },
      [this, address](const grpc::Status& status, const auto& c) {
        observe("rpc:exchange", c.seconds());
        if (status.ok()) {
          apply_members(member_set::from_proto(c.response), "seed");
        } else if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
          spdlog::error("cluster: seed {} refused this node: {}", address, status.error_message());
        } else {
          spdlog::debug("cluster: seed {} not reachable: {}", address, status.error_message());
        }
        if (!stopping_) {
          boost::asio::post(io_, [this, address] { exchanges_in_flight_.erase(address); });
        }
        --calls_in_flight_;
      });
}

grpc::Status cluster_node::on_exchange(const v1::MemberSet& in, v1::MemberSet& out) {
  if (in.cluster_name() != settings_.name) {
    spdlog::error("cluster: refused an exchange from {} of cluster \"{}\" (this is \"{}\")",
                  in.sender(), in.cluster_name(), settings_.name);
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "cluster name \"" + in.cluster_name() + "\" is not \"" + settings_.name + "\""};
  }
  apply_members(member_set::from_proto(in), "exchange");
  std::lock_guard lock(members_mutex_);
  members_.to_proto(out);
  out.set_cluster_name(settings_.name);
  out.set_sender(settings_.node_id);
  return grpc::Status::OK;
}

}  // namespace ringmq::cluster
