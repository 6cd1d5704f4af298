#include "tests/sim/session_sim.hpp"

#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

#include "broker/codec/decoder.hpp"
#include "broker/core/broker.hpp"
#include "broker/core/engine.hpp"
#include "broker/core/outbox.hpp"
#include "broker/core/probe.hpp"
#include "broker/core/session_keeper.hpp"
#include "broker/core/topic_levels.hpp"
#include "cluster/replication/session_replicator.hpp"
#include "cluster/ring.hpp"
#include "cluster/session_replication.hpp"
#include "tests/sim/sim_store.hpp"

namespace ringmq::sim::sessions {

namespace {

using codec::qos;
using codec::reason_code;
using core::time_point;

constexpr int dead_after = 40;         // ticks without hearing from a node
constexpr int forward_timeout = 250;   // ticks a forwarded message may go unsettled
constexpr int route_grace = 400;       // a dead node's routes are kept at most this long
constexpr int replication_tick = 5;    // ticks between the drivers' rounds
constexpr int zombie_life = 300;       // ticks an abandoned connection stays open
constexpr int settle_ticks = 3'000;    // after the faults: time to deliver everything
const std::string topic_filter = "t/#";

std::string payload_of(int publisher, int number) {
  return "p" + std::to_string(publisher) + ":" + std::to_string(number);
}

class simulation;

// The cluster as the broker sees it (core::cluster_link), answered by the
// simulation: routes in one table, forwards over its network.
class sim_link final : public core::cluster_link {
 public:
  sim_link(simulation& sim, int node) : sim_(sim), node_(node) {}
  void local_route_added(const std::string& filter) override;
  void local_route_removed(const std::string& filter) override;
  std::size_t publish(const core::message_ptr& m, const core::retained_version* retained,
                      std::vector<std::string>& local_groups, bool& groups_decided) override;
  bool can_settle(std::string_view topic) const override;
  void when_routes_synced(std::function<void()> done) override { done(); }
  void when_forwards_delivered(std::function<void()> done) override;
  bool claim(const std::string& client_id, std::uint64_t connection_id, bool persistent,
             core::claim_result& result, std::function<void(core::claim_result)> later) override;
  bool confirm(const std::string&, std::uint64_t, const std::function<void()>& open) override {
    open();
    return true;
  }
  void release(const std::string&, std::uint64_t) override {}

 private:
  simulation& sim_;
  int node_;
};

// Between a node's journal and its session driver: notes which connection
// each committed change of a session came from, and in which generation, for
// the checker (one connection at a time writes in a generation).
class tagging_keeper final : public core::session_keeper {
 public:
  using committed_fn = std::function<void(const std::string& client, std::uint64_t connection)>;
  // `connection_of`: the client's newest open connection to this node (0: none).
  tagging_keeper(core::session_keeper& inner, std::function<std::uint64_t(const std::string&)> connection_of,
                 committed_fn on_commit)
      : inner_(inner), connection_of_(std::move(connection_of)), on_commit_(std::move(on_commit)) {}
  bool keeps(const std::string& client) const override { return inner_.keeps(client); }
  void append(const std::string& client, std::uint64_t writer, storage::write_batch&& change,
              std::function<void(bool)> done) override {
    const auto connection = connection_of_(client);
    inner_.append(client, writer, std::move(change),
                  [this, client, connection, done = std::move(done)](bool committed) {
                    if (committed && connection) on_commit_(client, connection);
                    done(committed);
                  });
  }

 private:
  core::session_keeper& inner_;
  std::function<std::uint64_t(const std::string&)> connection_of_;
  committed_fn on_commit_;
};

struct node {
  bool up = false;
  std::uint64_t incarnation = 0;
  tables disk;
  int last_due = 0;  // writes become durable in order
  std::unique_ptr<boost::asio::io_context> io;
  std::unique_ptr<sim_store> store;
  std::unique_ptr<core::broker> broker;
  std::unique_ptr<sim_link> link;
  std::unique_ptr<cluster::session_replication> replication;
  std::unique_ptr<tagging_keeper> keeper;
  std::map<std::string, int> routes;  // filter -> local subscriptions
  int down_since = 0;
  int restart_at = -1;
  std::vector<int> heard;  // tick each other node was last heard from
};

// Runs what comes back for a connection (its claim's answer) at once; gone
// with the connection, so that nothing reaches an engine that is no more.
struct inline_runner final : core::task_runner {
  void defer(std::function<void()> task) override { task(); }
};

struct connection {
  int node = 0;
  std::uint64_t incarnation = 0;
  std::shared_ptr<inline_runner> runner = std::make_shared<inline_runner>();
  std::shared_ptr<core::outbox> out;
  std::unique_ptr<core::engine> engine;
  codec::stream_decoder decoder;
  bool connected = false;  // CONNACK success received
  int abandoned_at = -1;   // a zombie since then (the client moved on)
  std::uint64_t serial = 0;  // connections numbered in the order they were made
};

struct client {
  std::string id;
  bool publisher = false;
  int index = 0;  // among publishers or subscribers
  std::unique_ptr<connection> conn;
  std::vector<std::unique_ptr<connection>> zombies;
  int reconnect_at = 0;
  bool had_session = false;
  std::uint16_t last_packet_id = 0;
  // Publisher: QoS 2 messages not yet completed, in the order sent.
  struct out_msg {
    int number;
    std::uint16_t packet_id;
    bool released = false;  // PUBREC received: PUBREL stage
    bool sent = false;      // sent on the current connection
  };
  std::deque<out_msg> inflight;
  int next = 0;
  std::set<int> acked;
  std::vector<int> ack_order;  // the numbers, in the order they were acknowledged
  // Subscriber.
  bool subscribed = false;
  std::set<std::uint16_t> unreleased;
  std::vector<std::string> delivered;
};

struct forward {
  int at = 0;
  std::uint64_t order = 0;
  int from = 0;
  int to = 0;
  std::uint64_t from_incarnation = 0;
  std::uint64_t to_incarnation = 0;
  core::message_ptr msg;
  std::uint64_t id = 0;
};

struct log_message {
  int at = 0;
  std::uint64_t order = 0;
  int from = 0;
  int to = 0;
  std::uint64_t to_incarnation = 0;
  std::string batch;
};

class simulation {
 public:
  explicit simulation(const scenario& s) : s_(s), rng_(s.seed) {
    nodes_.resize(static_cast<std::size_t>(s_.nodes));
    member_.assign(static_cast<std::size_t>(s_.nodes), false);
    for (int i = 0; i < s_.nodes - s_.joining; ++i) member_[static_cast<std::size_t>(i)] = true;
    for (int j = 0; j < s_.joining; ++j) {
      join_at_[s_.nodes - s_.joining + j] = pick(50, std::max(60, s_.fault_ticks / 2));
    }
    for (int l = 0; l < s_.leaving; ++l) {
      leave_at_.push_back(pick(s_.fault_ticks / 2, std::max(s_.fault_ticks / 2 + 1, s_.fault_ticks - 1)));
    }
    rebuild_ring();
    blocked_.assign(static_cast<std::size_t>(s_.nodes), std::vector<bool>(s_.nodes, false));
    for (int i = 0; i < s_.nodes; ++i) {
      if (member_[static_cast<std::size_t>(i)]) start(i);
    }
    for (int p = 0; p < s_.publishers; ++p) add_client(true, p);
    for (int q = 0; q < s_.subscribers; ++q) add_client(false, q);
  }

  ~simulation() {
    for (int i = 0; i < s_.nodes; ++i) {
      if (nodes_[static_cast<std::size_t>(i)].up) stop(i, false);
    }
  }

  outcome run() {
    for (tick_ = 0; tick_ < s_.max_ticks; ++tick_) {
      if (tick_ < s_.fault_ticks) inject_faults();
      if (tick_ == s_.fault_ticks) heal();
      // A leave under way when the faults end still finishes (every 10 ticks).
      if (tick_ >= s_.fault_ticks && draining_ >= 0 && tick_ % 10 == 0) finish_drain();
      step();
      if (tick_ > s_.fault_ticks && draining_ < 0 && done()) break;
    }
    out_.ticks = tick_;
    for (int i = 0; i < s_.nodes; ++i) {
      const auto& n = nodes_[static_cast<std::size_t>(i)];
      if (n.up) out_.sessions_moved += static_cast<int>(n.replication->moved_sessions());
    }
    check();
    return out_;
  }

  // --- the member set -----------------------------------------------------------------

  bool member(int i) const { return member_[static_cast<std::size_t>(i)]; }

  std::vector<int> members() const {
    std::vector<int> out;
    for (int i = 0; i < s_.nodes; ++i) {
      if (member(i)) out.push_back(i);
    }
    return out;
  }

  // The ring places sessions on the members that are not leaving (as the
  // nodes' placement ring leaves out a draining member).
  void rebuild_ring() {
    std::vector<cluster::ring_member> list;
    for (int i : members()) {
      if (i != draining_) list.push_back({"n" + std::to_string(i + 1)});
    }
    ring_ = std::make_unique<cluster::ring>(list);
  }

  void change_members() {
    for (auto it = join_at_.begin(); it != join_at_.end();) {
      if (tick_ < it->second) {
        ++it;
        continue;
      }
      trace("n", it->first + 1, " joins");
      member_[static_cast<std::size_t>(it->first)] = true;
      rebuild_ring();
      last_member_change_ = tick_;
      start(it->first);
      ++out_.joins;
      it = join_at_.erase(it);
    }
    for (auto& at : leave_at_) {
      if (at < 0 || tick_ < at) continue;
      if (draining_ >= 0) {
        if (finish_drain()) {
          at = -1;
        } else {
          at += 10;
        }
        continue;
      }
      // One member down at a time, never fewer members than R, and only once
      // every session is served and on the replica set the ring gives it:
      // the cluster survives losing one replica of each session for good,
      // not a second before the first is replaced.
      // (The nodes' views of it are a look old: give them time to see.)
      if (nodes_down() > 0 || static_cast<int>(members().size()) <= s_.replication_factor ||
          tick_ - last_member_change_ < 200 || !every_session_placed()) {
        at += 10;
        continue;
      }
      const auto list = members();
      const int victim = list[static_cast<std::size_t>(pick(0, static_cast<int>(list.size()) - 1))];
      if (chance(0.5)) {
        // A graceful leave: drained first (ringmq ctl leave), it keeps
        // serving while its sessions move off it, faults going on.
        trace("n", victim + 1, " is leaving: the ring places nothing on it from now on, and it "
              "refuses new clients");
        draining_ = victim;
        nodes_[static_cast<std::size_t>(victim)].broker->refuse_new_clients({});
        rebuild_ring();
        last_member_change_ = tick_;
        at += 10;
        continue;
      }
      trace("n", victim + 1, " stops and is removed from the member set");
      stop(victim, false);
      member_[static_cast<std::size_t>(victim)] = false;
      rebuild_ring();
      last_member_change_ = tick_;
      ++out_.leaves;
      at = -1;
    }
  }

  // A member leaving gracefully goes as a leaving node does: once every
  // session is on the other members (a copy short on none of them), it
  // disconnects its clients and asks the others to take over the sessions
  // it still serves; it stops once it serves none. False: not yet.
  bool finish_drain() {
    auto& n = nodes_[static_cast<std::size_t>(draining_)];
    if (!releasing_) {
      if (nodes_down() > 0 || tick_ - last_member_change_ < 200 || !every_session_placed()) {
        return false;
      }
      trace("n", draining_ + 1, " has handed its sessions off; disconnects its clients and "
            "asks the others to take over what it serves");
      for (auto& c : clients_) {
        if (c.conn && c.conn->node == draining_) lose(c, c.conn);
      }
      releasing_ = true;
      return false;
    }
    if (nodes_down() > 0 || n.replication->replicator().owned_sessions() > 0 ||
        n.replication->handing_over_sessions() > 0) {
      return false;
    }
    trace("n", draining_ + 1, " serves nothing any more, stops and leaves");
    stop(draining_, false);
    member_[static_cast<std::size_t>(draining_)] = false;
    draining_ = -1;
    releasing_ = false;
    rebuild_ring();
    last_member_change_ = tick_;
    ++out_.leaves;
    ++out_.drains;
    return true;
  }

  // Every session is served on exactly the replica set the ring gives it,
  // every copy whole (read from the logs themselves, not the nodes' views).
  bool every_session_placed() const {
    for (const auto& c : clients_) {
      std::vector<cluster::session_replication::member> wanted;
      for (const auto& id : ring_->preference_list(c.id, static_cast<std::size_t>(s_.replication_factor))) {
        wanted.push_back(member_of(std::stoi(id.substr(1)) - 1));
      }
      std::sort(wanted.begin(), wanted.end());
      bool placed = false;
      for (const auto& n : nodes_) {
        if (!n.up) continue;
        const auto* log = n.replication->replicator().log_of(c.id);
        if (!log || !log->serving()) continue;
        auto have = log->replicas();
        std::sort(have.begin(), have.end());
        placed = have == wanted && log->replicas_in_sync() == have.size();
      }
      if (!placed) return false;
    }
    return true;
  }

  // --- what the nodes ask (sim_link, hooks) ---------------------------------------

  time_point now() const { return base_ + std::chrono::milliseconds(tick_); }

  bool alive_in_view(int from, int to) const {
    if (from == to) return true;
    const auto& n = nodes_[static_cast<std::size_t>(to)];
    return n.up && tick_ - nodes_[static_cast<std::size_t>(from)].heard[static_cast<std::size_t>(to)] <=
                       dead_after;
  }

  bool matches(int node, std::string_view topic) const {
    for (const auto& [filter, count] : nodes_[static_cast<std::size_t>(node)].routes) {
      if (count > 0 && core::topic_matches(filter, topic)) return true;
    }
    return false;
  }

  std::map<std::string, int>& routes(int node) { return nodes_[static_cast<std::size_t>(node)].routes; }

  bool can_settle(int from, std::string_view topic) const {
    for (int k = 0; k < s_.nodes; ++k) {
      if (k != from && !alive_in_view(from, k) && matches(k, topic)) return false;
    }
    return true;
  }

  std::size_t publish(int from, const core::message_ptr& m) {
    const bool settle = m->qos != qos::at_most_once;
    if (tracing_) {
      std::string targets;
      for (int k = 0; k < s_.nodes; ++k) {
        if (matches(k, m->topic)) targets += " n" + std::to_string(k + 1) + (alive_in_view(from, k) ? "" : "(dead)");
      }
      trace("n", from + 1, " routes ", m->payload, " #", m->publish_number, " to", targets);
    }
    std::size_t sent = 0;
    for (int k = 0; k < s_.nodes; ++k) {
      if (k == from || !matches(k, m->topic)) continue;
      if (!alive_in_view(from, k)) {
        if (settle) {
          auto failed = core::thread_keeper_wait();
          failed->add();
          failed->finish(false);
        }
        continue;
      }
      forward f;
      f.from = from;
      f.to = k;
      f.from_incarnation = nodes_[static_cast<std::size_t>(from)].incarnation;
      f.to_incarnation = nodes_[static_cast<std::size_t>(k)].incarnation;
      f.msg = m;
      // One ordered stream per pair of nodes, as the peer protocol's.
      auto& last = stream_at_[{from, k}];
      f.at = last = std::max(last, tick_ + pick(1, s_.max_delay));
      f.order = ++order_;
      f.id = ++forward_ids_;
      if (settle) {
        auto w = core::thread_keeper_wait();
        w->add();
        unsettled_[f.id] = {w, tick_ + forward_timeout, from, nodes_[static_cast<std::size_t>(from)].incarnation};
      }
      forwards_.push_back(std::move(f));
      ++sent;
    }
    return sent;
  }

  // Done once every forward on its way to `node` now has arrived (or was lost).
  void barrier(int node, std::function<void()> done) {
    std::set<std::uint64_t> waiting;
    for (const auto& f : forwards_) {
      if (f.to == node) waiting.insert(f.id);
    }
    barriers_.push_back({node, nodes_[static_cast<std::size_t>(node)].incarnation,
                         std::move(waiting), std::move(done)});
  }

  bool claim(int node, const std::string& client_id, bool persistent,
             core::claim_result& result, std::function<void(core::claim_result)> later) {
    // One connection per client id: the others are closed where this node
    // reaches them (a cut-off node keeps its own until it learns it is fenced).
    for (auto& c : clients_) {
      if (c.id != client_id) continue;
      for (auto* conn : connections_of(c)) {
        if (conn->node == node || !nodes_[static_cast<std::size_t>(conn->node)].up) continue;
        if (blocked_[static_cast<std::size_t>(node)][static_cast<std::size_t>(conn->node)]) continue;
        conn->out->close(std::nullopt, "taken over");
      }
    }
    if (!persistent) {
      result = core::claim_result::granted;
      return true;
    }
    nodes_[static_cast<std::size_t>(node)].replication->acquire(
        client_id, [later = std::move(later)](bool served) {
          later(served ? core::claim_result::granted : core::claim_result::unavailable);
        });
    return false;
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

  // What happened, when one seed is told in full (RINGMQ_SIM_LOG=1).
  template <class... Parts>
  void trace(const Parts&... parts) {
    if (!tracing_) return;
    std::ostringstream s;
    s << "[" << tick_ << "] ";
    (s << ... << parts);
    std::fprintf(stderr, "%s\n", s.str().c_str());
  }

  void violation(std::string what) {
    out_.ok = false;
    if (out_.violations.size() < 20) out_.violations.push_back(std::move(what));
  }

  // --- nodes --------------------------------------------------------------------------

  cluster::session_replication::member member_of(int i) const {
    return static_cast<cluster::session_replication::member>(i + 1);
  }

  void start(int i) {
    auto& n = nodes_[static_cast<std::size_t>(i)];
    n.up = true;
    ++n.incarnation;
    n.restart_at = -1;
    n.routes.clear();
    n.heard.assign(static_cast<std::size_t>(s_.nodes), tick_);
    n.io = std::make_unique<boost::asio::io_context>();
    n.store = std::make_unique<sim_store>(n.disk, [this, i] {
      auto& nn = nodes_[static_cast<std::size_t>(i)];
      nn.last_due = std::max(nn.last_due, tick_ + pick(0, s_.max_persist_delay));
      return nn.last_due;
    });
    core::broker_settings bs;
    bs.node_id = "n" + std::to_string(i + 1);
    n.broker = std::make_unique<core::broker>(bs, 2, nullptr, nullptr, n.store.get());
    n.link = std::make_unique<sim_link>(*this, i);
    n.broker->set_cluster(n.link.get());
    if (i == draining_) n.broker->refuse_new_clients({});  // still leaving after a restart

    cluster::session_replication::settings rs;
    rs.self = member_of(i);
    rs.replication_factor = static_cast<std::size_t>(s_.replication_factor);
    rs.acquire_timeout = std::chrono::milliseconds(300);
    rs.handover_timeout = std::chrono::milliseconds(300);
    rs.tick = std::chrono::milliseconds(0);
    rs.orphan_check = std::chrono::milliseconds(25);
    rs.resend_every_ticks = 1;
    rs.now = [this] { return now(); };
    rs.polled = true;
    cluster::session_replication::hooks h;
    h.preference = [this](const std::string& client, std::size_t count) {
      std::vector<cluster::session_replication::member> out;
      for (const auto& id : ring_->preference_list(client, count)) {
        out.push_back(member_of(std::stoi(id.substr(1)) - 1));
      }
      return out;
    };
    h.alive = [this, i](cluster::session_replication::member m) {
      return alive_in_view(i, static_cast<int>(m) - 1);
    };
    h.may_serve = [this, i](cluster::session_replication::member m) {
      const int to = static_cast<int>(m) - 1;
      return alive_in_view(i, to) && !(releasing_ && to == draining_);
    };
    h.send = [this, i](cluster::session_replication::member to, std::string batch) {
      send_log(i, static_cast<int>(to) - 1, std::move(batch));
    };
    h.members = [this] {
      std::vector<cluster::session_replication::member> out;
      for (int m : members()) out.push_back(member_of(m));
      return out;
    };
    n.replication = std::make_unique<cluster::session_replication>(rs, *n.store, *n.broker,
                                                                   std::move(h), *n.io);
    if (auto ec = n.replication->load()) violation("a node's logs cannot be read: " + ec.message());
    n.keeper = std::make_unique<tagging_keeper>(
        *n.replication,
        [this, i](const std::string& client) {
          std::uint64_t newest = 0;
          for (auto& c : clients_) {
            if (c.id != client) continue;
            for (auto* conn : connections_of(c)) {
              if (conn->node == i) newest = std::max(newest, conn->serial);
            }
          }
          return newest;
        },
        [this, i](const std::string& client, std::uint64_t connection) {
          on_commit(i, client, connection);
        });
    n.broker->journal()->set_keeper(n.keeper.get());
    if (auto ec = n.broker->recover(now())) violation("a node cannot recover: " + ec.message());
    n.replication->start();
    poll(i);
  }

  void stop(int i, bool power_loss) {
    auto& n = nodes_[static_cast<std::size_t>(i)];
    // Its clients' connections go first (their engines use its broker).
    for (auto& c : clients_) {
      if (c.conn && c.conn->node == i) lose(c, c.conn);
      for (auto& z : c.zombies) {
        if (z && z->node == i) lose(c, z);
      }
    }
    n.replication->stop();
    n.store->crash(power_loss);
    n.replication.reset();
    n.keeper.reset();
    n.broker.reset();
    n.link.reset();
    n.store.reset();
    n.io.reset();
    n.up = false;
    n.down_since = tick_;
  }

  void poll(int i) {
    auto& n = nodes_[static_cast<std::size_t>(i)];
    if (!n.up) return;
    n.io->restart();
    n.io->poll();
  }

  void poll_all() {
    for (int i = 0; i < s_.nodes; ++i) poll(i);
  }

  int nodes_down() const {
    int down = 0;
    for (int i : members()) down += nodes_[static_cast<std::size_t>(i)].up ? 0 : 1;
    return down;
  }

  void inject_faults() {
    // At most one node down at once: with R = 3 and W = 2 the others can
    // always form both quorums, so every session stays available.
    change_members();
    if (chance(s_.crash_per_tick) && nodes_down() == 0) {
      const auto list = members();
      const int victim = list[static_cast<std::size_t>(pick(0, static_cast<int>(list.size()) - 1))];
      const bool power_loss = chance(s_.power_loss);
      trace("crash n", victim + 1, power_loss ? " (power loss)" : "");
      stop(victim, power_loss);
      nodes_[static_cast<std::size_t>(victim)].restart_at = tick_ + pick(30, 300);
      ++out_.crashes;
      if (power_loss) ++out_.power_losses;
    }
    for (int i = 0; i < s_.nodes; ++i) {
      auto& n = nodes_[static_cast<std::size_t>(i)];
      if (!n.up && member(i) && n.restart_at >= 0 && tick_ >= n.restart_at) {
        trace("restart n", i + 1);
        start(i);
      }
    }
    if (partitioned_ && tick_ >= partition_until_) heal_partition();
    if (!partitioned_ && chance(s_.partition_per_tick)) {
      const int cut = pick(0, s_.nodes - 1);
      const bool one_way = chance(0.3);
      for (int j = 0; j < s_.nodes; ++j) {
        if (j == cut) continue;
        blocked_[static_cast<std::size_t>(cut)][static_cast<std::size_t>(j)] = true;
        if (!one_way) blocked_[static_cast<std::size_t>(j)][static_cast<std::size_t>(cut)] = true;
      }
      partitioned_ = true;
      partition_until_ = tick_ + pick(50, 400);
      trace("cut n", cut + 1, one_way ? " (its outbound only)" : "", " until ", partition_until_);
      ++out_.partitions;
    }
    for (auto& c : clients_) {
      if (c.conn && c.conn->connected && chance(s_.move_per_tick)) {
        // The client connects elsewhere while its old connection stays open
        // (a device behind a NAT that forgot it).
        trace(c.id, " moves on, leaving its connection to n", c.conn->node + 1, " open");
        c.conn->abandoned_at = tick_;
        c.zombies.push_back(std::move(c.conn));
        c.reconnect_at = tick_;
        ++out_.moves;
      }
    }
  }

  void heal_partition() {
    for (auto& row : blocked_) std::fill(row.begin(), row.end(), false);
    partitioned_ = false;
  }

  void heal() {
    heal_partition();
    for (int i = 0; i < s_.nodes; ++i) {
      if (!nodes_[static_cast<std::size_t>(i)].up && member(i)) start(i);
    }
  }

  // --- the network between nodes ------------------------------------------------------

  void send_log(int from, int to, std::string batch) {
    if (to < 0 || to >= s_.nodes) return;
    const bool faults = tick_ < s_.fault_ticks;
    if (faults && chance(s_.drop)) return;
    log_message m;
    m.from = from;
    m.to = to;
    m.to_incarnation = nodes_[static_cast<std::size_t>(to)].incarnation;
    m.at = tick_ + pick(1, s_.max_delay);
    m.order = ++order_;
    if (faults && chance(s_.duplicate)) {
      auto copy = m;
      copy.batch = batch;
      copy.at = tick_ + pick(1, s_.max_delay);
      copy.order = ++order_;
      logs_.push_back(std::move(copy));
    }
    m.batch = std::move(batch);
    logs_.push_back(std::move(m));
  }

  bool reachable(int from, int to) const {
    return !blocked_[static_cast<std::size_t>(from)][static_cast<std::size_t>(to)];
  }

  void deliver_logs() {
    std::vector<log_message> due;
    for (auto it = logs_.begin(); it != logs_.end();) {
      if (it->at <= tick_) {
        due.push_back(std::move(*it));
        it = logs_.erase(it);
      } else {
        ++it;
      }
    }
    std::sort(due.begin(), due.end(), [](const auto& a, const auto& b) {
      return std::tie(a.at, a.order) < std::tie(b.at, b.order);
    });
    for (auto& m : due) {
      auto& n = nodes_[static_cast<std::size_t>(m.to)];
      if (!n.up || n.incarnation != m.to_incarnation || !reachable(m.from, m.to)) continue;
      n.replication->on_batch(member_of(m.from), std::move(m.batch));
      poll(m.to);
    }
  }

  void deliver_forwards() {
    std::vector<forward> due;
    for (auto it = forwards_.begin(); it != forwards_.end();) {
      if (it->at <= tick_) {
        due.push_back(std::move(*it));
        it = forwards_.erase(it);
      } else {
        ++it;
      }
    }
    std::sort(due.begin(), due.end(), [](const auto& a, const auto& b) {
      return std::tie(a.at, a.order) < std::tie(b.at, b.order);
    });
    for (auto& f : due) {
      auto& n = nodes_[static_cast<std::size_t>(f.to)];
      if (!n.up || n.incarnation != f.to_incarnation || !reachable(f.from, f.to)) continue;
      core::delivery_scope scope;
      const auto reached = n.broker->deliver_forwarded(f.msg, scope, nullptr, now());
      trace("n", f.to + 1, " takes ", f.msg->payload, " from n", f.from + 1, ": ", reached, " sessions");
      (void)core::take_commit_watermark();
      auto kept = core::take_keeper_wait();
      const auto id = f.id;
      const int from = f.from;
      const int to = f.to;
      auto settled = [this, id, from, to](bool ok) {
        // The answer travels back on the same link.
        if (!reachable(to, from)) return;
        answers_.push_back({tick_ + pick(1, s_.max_delay), id, ok});
      };
      if (kept) {
        kept->on_done(settled);
      } else {
        settled(true);
      }
      poll(f.to);
    }
    std::set<std::uint64_t> in_flight;
    for (const auto& f : forwards_) in_flight.insert(f.id);
    for (auto it = barriers_.begin(); it != barriers_.end();) {
      std::erase_if(it->waiting, [&](std::uint64_t id) { return !in_flight.contains(id); });
      const auto& n = nodes_[static_cast<std::size_t>(it->node)];
      if (!n.up || n.incarnation != it->incarnation) {
        it = barriers_.erase(it);  // its process is gone
        continue;
      }
      if (!it->waiting.empty()) {
        ++it;
        continue;
      }
      auto done = std::move(it->done);
      const int node = it->node;
      it = barriers_.erase(it);
      done();
      poll(node);
    }
    for (auto it = answers_.begin(); it != answers_.end();) {
      if (it->at > tick_) {
        ++it;
        continue;
      }
      settle(it->id, it->ok);
      it = answers_.erase(it);
    }
    for (auto it = unsettled_.begin(); it != unsettled_.end();) {
      const auto& u = it->second;
      const bool origin_gone = !nodes_[static_cast<std::size_t>(u.node)].up ||
                               nodes_[static_cast<std::size_t>(u.node)].incarnation != u.incarnation;
      if (origin_gone || tick_ >= u.deadline) {
        auto w = u.wait;
        it = unsettled_.erase(it);
        if (!origin_gone) {
          w->finish(false);
          poll_all();
        }
      } else {
        ++it;
      }
    }
  }

  void settle(std::uint64_t id, bool ok) {
    auto it = unsettled_.find(id);
    if (it == unsettled_.end()) return;
    auto u = it->second;
    unsettled_.erase(it);
    if (!nodes_[static_cast<std::size_t>(u.node)].up ||
        nodes_[static_cast<std::size_t>(u.node)].incarnation != u.incarnation) {
      return;
    }
    u.wait->finish(ok);
    poll(u.node);
  }

  void update_liveness() {
    for (int j = 0; j < s_.nodes; ++j) {
      auto& n = nodes_[static_cast<std::size_t>(j)];
      if (!n.up) continue;
      for (int k = 0; k < s_.nodes; ++k) {
        if (nodes_[static_cast<std::size_t>(k)].up && reachable(k, j)) {
          n.heard[static_cast<std::size_t>(k)] = tick_;
        }
      }
    }
    // A dead node's routes stay (messages for them are refused, not lost)
    // until its sessions are served elsewhere, or at most route_grace.
    for (int k = 0; k < s_.nodes; ++k) {
      auto& n = nodes_[static_cast<std::size_t>(k)];
      if (n.up || n.routes.empty()) continue;
      if (tick_ - n.down_since >= route_grace || every_session_served()) n.routes.clear();
    }
  }

  // Every session has an owner that serves it (what the cluster learns
  // from each node saying it took over what it is first live replica of).
  bool every_session_served() const {
    for (const auto& c : clients_) {
      bool served = false;
      for (const auto& n : nodes_) {
        if (n.up && n.replication->replicator().serving(c.id)) served = true;
      }
      if (!served) return false;
    }
    return true;
  }

  // --- clients ------------------------------------------------------------------------

  void add_client(bool publisher, int index) {
    client c;
    c.publisher = publisher;
    c.index = index;
    c.id = (publisher ? "pub-" : "sub-") + std::to_string(index);
    c.reconnect_at = pick(0, 20);
    clients_.push_back(std::move(c));
  }

  std::vector<connection*> connections_of(client& c) {
    std::vector<connection*> out;
    if (c.conn) out.push_back(c.conn.get());
    for (auto& z : c.zombies) {
      if (z) out.push_back(z.get());
    }
    return out;
  }

  // The connection is gone (its node died, the broker closed it, or the
  // client gave it up): its engine hears so.
  void lose(client& c, std::unique_ptr<connection>& conn) {
    if (!conn) return;
    // Always while its node runs: stop() ends a node's connections first.
    const int node = conn->node;
    conn->engine->on_connection_lost(now());
    conn->engine.reset();
    poll(node);
    const bool current = conn.get() == c.conn.get();
    trace(c.id, current ? "" : " (old)", " connection to n", node + 1, " closed",
          conn->out->closing() ? " by the broker" : "");
    conn.reset();
    if (current) c.reconnect_at = tick_ + pick(2, 30);
  }

  void send(connection& conn, codec::packet p) {
    conn.engine->on_packet(std::move(p), now());
    poll(conn.node);
  }

  std::uint16_t next_id(client& c) {
    while (true) {
      if (++c.last_packet_id == 0) c.last_packet_id = 1;
      const auto id = c.last_packet_id;
      if (std::none_of(c.inflight.begin(), c.inflight.end(),
                       [id](const client::out_msg& m) { return m.packet_id == id; })) {
        return id;
      }
    }
  }

  void connect(client& c) {
    const auto list = members();
    int node = list[static_cast<std::size_t>(pick(0, static_cast<int>(list.size()) - 1))];
    if (!nodes_[static_cast<std::size_t>(node)].up) {
      c.reconnect_at = tick_ + pick(5, 30);
      return;
    }
    auto conn = std::make_unique<connection>();
    conn->node = node;
    conn->serial = ++connections_made_;
    conn->incarnation = nodes_[static_cast<std::size_t>(node)].incarnation;
    conn->out = std::make_shared<core::outbox>(codec::protocol_version::v5, [] {}, 1 << 22);
    conn->engine = std::make_unique<core::engine>(
        *nodes_[static_cast<std::size_t>(node)].broker, conn->out,
        core::connection_info{"sim:" + c.id, "sim", std::nullopt, false}, now());
    conn->engine->set_runner(conn->runner);
    conn->decoder.set_version(codec::protocol_version::v5);
    for (auto& m : c.inflight) m.sent = false;
    if (!c.subscribed) subscribe_sent_.erase(c.id);
    trace(c.id, " connects to n", node + 1);
    c.conn = std::move(conn);
    codec::connect_packet p;
    p.version = codec::protocol_version::v5;
    p.client_id = c.id;
    p.clean_start = false;
    p.props.session_expiry_interval = 600;
    send(*c.conn, codec::packet{std::move(p)});
  }

  bool publishing_allowed() const {
    return std::all_of(clients_.begin(), clients_.end(),
                       [](const client& c) { return c.publisher || c.subscribed; });
  }

  void step_client(client& c) {
    // Zombies: the client reads nothing from them; they end when the broker
    // closes them or after a while.
    for (auto& z : c.zombies) {
      if (!z) continue;
      std::string ignored;
      z->out->take(ignored);
      if (z->out->closing() || tick_ - z->abandoned_at > zombie_life) lose(c, z);
    }
    std::erase_if(c.zombies, [](const auto& z) { return !z; });

    if (!c.conn) {
      if (tick_ >= c.reconnect_at) connect(c);
      if (!c.conn) return;
    }
    read(c);
    if (!c.conn || !c.conn->connected) return;
    if (!c.publisher) {
      if (!c.subscribed && !subscribe_sent_.contains(c.id)) {
        codec::subscribe_packet s;
        s.packet_id = next_id(c);
        codec::subscribe_options o;
        o.max_qos = qos::exactly_once;
        s.subscriptions.push_back({topic_filter, o});
        subscribe_sent_.insert(c.id);
        send(*c.conn, codec::packet{std::move(s)});
      }
      return;
    }
    // Resend what is in flight (a new connection), then new messages.
    for (auto& m : c.inflight) {
      if (m.sent || !c.conn) continue;
      m.sent = true;
      if (m.released) {
        codec::pubrel_packet r;
        r.packet_id = m.packet_id;
        send(*c.conn, codec::packet{r});
      } else {
        send(*c.conn, codec::packet{publish_of(c, m, true)});
      }
    }
    if (!c.conn || !publishing_allowed()) return;
    if (c.inflight.size() < 2 && c.next < s_.messages_per_publisher) {
      client::out_msg m{c.next++, next_id(c), false, true};
      c.inflight.push_back(m);
      send(*c.conn, codec::packet{publish_of(c, m, false)});
    }
  }

  codec::publish_packet publish_of(const client& c, const client::out_msg& m, bool dup) const {
    codec::publish_packet p;
    p.topic = "t/" + std::to_string(c.index);
    p.payload = payload_of(c.index, m.number);
    p.qos = qos::exactly_once;
    p.packet_id = m.packet_id;
    p.dup = dup;
    return p;
  }

  void read(client& c) {
    auto& conn = *c.conn;
    std::string bytes;
    conn.out->take(bytes);
    conn.decoder.feed(bytes);
    while (c.conn) {
      auto next = c.conn->decoder.next();
      if (!next) {
        violation(c.id + ": the broker sent bytes a client cannot decode");
        lose(c, c.conn);
        return;
      }
      if (!*next) break;
      handle(c, std::move(**next));
    }
    if (c.conn && c.conn->out->closing()) lose(c, c.conn);
  }

  void handle(client& c, codec::packet p) {
    auto& conn = *c.conn;
    if (auto* ack = std::get_if<codec::connack_packet>(&p)) {
      if (tracing_) {
        const auto session = nodes_[static_cast<std::size_t>(conn.node)].broker->sessions().find(c.id);
        trace(c.id, " CONNACK from n", conn.node + 1, " code ", static_cast<int>(ack->code),
              " present ", ack->session_present, " (queued ", session ? session->queued_count() : 0,
              ", in flight ", session ? session->inflight_count() : 0, ")");
      }
      if (ack->code != reason_code::success) {
        ++out_.refused_connects;
        lose(c, c.conn);
        return;
      }
      if (c.had_session && !ack->session_present) {
        violation(c.id + " reconnected and found no session (tick " + std::to_string(tick_) + ")");
      }
      c.had_session = true;
      conn.connected = true;
      return;
    }
    if (auto* s = std::get_if<codec::suback_packet>(&p)) {
      if (!s->codes.empty() && static_cast<int>(s->codes[0]) < 0x80) {
        c.subscribed = true;
      } else {
        subscribe_sent_.erase(c.id);  // refused (a failed commit): asked again
      }
      return;
    }
    if (auto* rec = std::get_if<codec::pubrec_packet>(&p)) {
      auto it = std::find_if(c.inflight.begin(), c.inflight.end(), [&](const auto& m) {
        return m.packet_id == rec->packet_id && !m.released;
      });
      if (it == c.inflight.end()) return;
      trace(c.id, " PUBREC ", payload_of(c.index, it->number), " code ",
            static_cast<int>(rec->code), " from n", conn.node + 1);
      if (static_cast<int>(rec->code) >= 0x80) {
        // Refused before it went anywhere: a new message, under a new id.
        it->packet_id = next_id(c);
        it->sent = false;
        return;
      }
      if (c.acked.insert(it->number).second) {
        ++out_.acknowledged;
        c.ack_order.push_back(it->number);
      }
      it->released = true;
      codec::pubrel_packet r;
      r.packet_id = rec->packet_id;
      send(conn, codec::packet{r});
      return;
    }
    if (auto* comp = std::get_if<codec::pubcomp_packet>(&p)) {
      std::erase_if(c.inflight, [&](const auto& m) { return m.packet_id == comp->packet_id && m.released; });
      return;
    }
    if (auto* pub = std::get_if<codec::publish_packet>(&p)) {
      trace(c.id, " PUBLISH ", pub->payload, " id ", pub->packet_id, pub->dup ? " dup" : "",
            " from n", conn.node + 1);
      if (pub->qos == qos::exactly_once) {
        if (c.unreleased.insert(pub->packet_id).second) c.delivered.push_back(pub->payload);
        codec::pubrec_packet r;
        r.packet_id = pub->packet_id;
        send(conn, codec::packet{r});
      } else {
        c.delivered.push_back(pub->payload);
        if (pub->qos == qos::at_least_once) {
          codec::puback_packet a;
          a.packet_id = pub->packet_id;
          send(conn, codec::packet{a});
        }
      }
      return;
    }
    if (auto* rel = std::get_if<codec::pubrel_packet>(&p)) {
      c.unreleased.erase(rel->packet_id);
      codec::pubcomp_packet cp;
      cp.packet_id = rel->packet_id;
      send(conn, codec::packet{cp});
      return;
    }
  }

  // --- one tick -------------------------------------------------------------------------

  void step() {
    update_liveness();
    deliver_logs();
    deliver_forwards();
    for (int i = 0; i < s_.nodes; ++i) {
      auto& n = nodes_[static_cast<std::size_t>(i)];
      if (!n.up) continue;
      n.store->advance(tick_);
      if (tick_ % replication_tick == i % replication_tick) n.replication->tick_now();
      poll(i);
    }
    for (auto& c : clients_) step_client(c);
    check_logs();
    if (tracing_) trace_ownership();
  }

  // Who serves and who holds each session, told when it changes.
  void trace_ownership() {
    for (const auto& c : clients_) {
      std::string now;
      for (int i = 0; i < s_.nodes; ++i) {
        const auto& n = nodes_[static_cast<std::size_t>(i)];
        if (!n.up) continue;
        const bool serves = n.replication->replicator().serving(c.id);
        const bool holds = n.broker->sessions().find(c.id) != nullptr;
        const bool routes = n.routes.contains(topic_filter);
        if (serves || holds) {
          now += " n" + std::to_string(i + 1) + (serves ? "(serves" : "(holds") +
                 (routes ? ",routes" : "");
          if (const auto* log = n.replication->replicator().log_of(c.id); serves && log) {
            now += " gen " + std::to_string(log->generation().round) + ".n" +
                   std::to_string(log->generation().node) + " on";
            for (auto m : log->replicas()) now += " n" + std::to_string(m);
            now += " last " + std::to_string(log->last_seq());
          }
          now += ")";
        }
      }
      auto& before = ownership_[c.id];
      if (now != before) trace(c.id, " is now:", now.empty() ? " nowhere" : now);
      before = now;
    }
  }

  bool done() const {
    for (const auto& c : clients_) {
      if (c.publisher) {
        if (static_cast<int>(c.acked.size()) < s_.messages_per_publisher || !c.inflight.empty()) {
          return false;
        }
      }
    }
    std::set<std::string> wanted;
    for (const auto& c : clients_) {
      if (!c.publisher) continue;
      for (int n : c.acked) wanted.insert(payload_of(c.index, n));
    }
    for (const auto& c : clients_) {
      if (c.publisher) continue;
      std::set<std::string> got(c.delivered.begin(), c.delivered.end());
      if (!std::includes(got.begin(), got.end(), wanted.begin(), wanted.end())) return false;
    }
    return true;
  }

  // Never two connections of one client id writing in the same generation:
  // once a newer connection's change is committed, an older one's is not.
  // (Connections are numbered in the order they were made.)
  void on_commit(int node, const std::string& client, std::uint64_t connection) {
    const auto* log = nodes_[static_cast<std::size_t>(node)].replication->replicator().log_of(client);
    if (!log) return;
    const auto gen = log->generation();
    auto& last = writers_[{client, gen.round, gen.node}];
    if (connection < last) {
      violation(client + ": connection " + std::to_string(connection) + " wrote in generation (" +
                std::to_string(gen.round) + ", n" + std::to_string(gen.node) +
                ") after the newer connection " + std::to_string(last) + " (tick " +
                std::to_string(tick_) + ")");
    }
    last = std::max(last, connection);
  }

  // No two nodes ever commit different changes at one position of a
  // session's log (a fenced owner commits nothing more).
  void check_logs() {
    if (tick_ % 10 != 0) return;
    for (int i = 0; i < s_.nodes; ++i) {
      const auto& n = nodes_[static_cast<std::size_t>(i)];
      if (!n.up) continue;
      const auto& r = n.replication->replicator();
      for (const auto& c : clients_) {
        const auto* log = r.log_of(c.id);
        if (!log) continue;
        const auto commit = std::min(log->known_commit(), log->last_seq());
        auto& seen = committed_[c.id];
        for (const auto& e : log->entries()) {
          if (e.seq > commit) break;
          auto [it, fresh] = seen.emplace(e.seq, e.data);
          if (!fresh && it->second != e.data) {
            violation(c.id + ": position " + std::to_string(e.seq) +
                      " committed with two different changes (node n" + std::to_string(i + 1) +
                      ", tick " + std::to_string(tick_) + ")");
          }
        }
      }
    }
  }

  void check() {
    if (!done()) {
      violation("not everything was acknowledged and delivered within " +
                std::to_string(s_.max_ticks) + " ticks");
    }
    for (const auto& c : clients_) {
      if (c.publisher) continue;
      std::map<std::string, int> count;
      for (const auto& d : c.delivered) ++count[d];
      out_.delivered += static_cast<int>(c.delivered.size());
      for (const auto& p : clients_) {
        if (!p.publisher) continue;
        for (int n : p.acked) {
          if (!count.contains(payload_of(p.index, n))) {
            violation(c.id + " never got acknowledged " + payload_of(p.index, n));
          }
        }
        // In the order the broker accepted them (a message refused and sent
        // again is accepted after the ones behind it).
        std::map<int, int> position;
        for (std::size_t k = 0; k < p.ack_order.size(); ++k) position[p.ack_order[k]] = static_cast<int>(k);
        int last = -1;
        std::string last_payload;
        std::set<std::string> first;
        for (const auto& d : c.delivered) {
          if (!d.starts_with("p" + std::to_string(p.index) + ":") || !first.insert(d).second) continue;
          const auto it = position.find(std::stoi(d.substr(d.find(':') + 1)));
          if (it == position.end()) continue;  // delivered, never acknowledged
          if (it->second < last) violation(c.id + ": " + d + " after " + last_payload);
          if (it->second > last) {
            last = it->second;
            last_payload = d;
          }
        }
      }
      for (const auto& [payload, n] : count) {
        if (n > 1) violation(c.id + " got " + payload + " " + std::to_string(n) + " times");
      }
    }
    out_.duplicates_dropped = static_cast<int>(
        core::sum_probes().messages_dropped[static_cast<std::size_t>(core::drop_reason::duplicate)] -
        duplicates_at_start_);
  }

  struct unsettled {
    std::shared_ptr<core::keeper_wait> wait;
    int deadline = 0;
    int node = 0;
    std::uint64_t incarnation = 0;
  };
  struct answer {
    int at;
    std::uint64_t id;
    bool ok;
  };
  struct barrier_wait {
    int node;
    std::uint64_t incarnation;
    std::set<std::uint64_t> waiting;
    std::function<void()> done;
  };
  std::vector<barrier_wait> barriers_;

  scenario s_;
  std::mt19937_64 rng_;
  time_point base_ = time_point{} + std::chrono::hours(24 * 365);
  std::unique_ptr<cluster::ring> ring_;
  std::vector<bool> member_;
  std::map<int, int> join_at_;   // node -> tick it joins
  std::vector<int> leave_at_;    // ticks a member leaves (-1: done)
  int draining_ = -1;            // the member leaving gracefully (-1: none)
  bool releasing_ = false;       // it asks the others to take over its sessions
  int last_member_change_ = 0;
  std::vector<node> nodes_;
  std::vector<client> clients_;
  std::vector<std::vector<bool>> blocked_;
  bool partitioned_ = false;
  int partition_until_ = 0;
  std::vector<log_message> logs_;
  std::vector<forward> forwards_;
  std::vector<answer> answers_;
  std::map<std::uint64_t, unsettled> unsettled_;
  std::map<std::pair<int, int>, int> stream_at_;
  std::map<std::string, std::string> ownership_;  // traced  // when the last forward on a stream arrives
  std::set<std::string> subscribe_sent_;
  std::map<std::string, std::map<std::uint64_t, std::string>> committed_;
  std::map<std::tuple<std::string, std::uint64_t, std::uint64_t>, std::uint64_t> writers_;
  std::uint64_t order_ = 0;
  std::uint64_t forward_ids_ = 0;
  std::uint64_t connections_made_ = 0;
  std::uint64_t duplicates_at_start_ =
      core::sum_probes().messages_dropped[static_cast<std::size_t>(core::drop_reason::duplicate)];
  int tick_ = 0;
  bool tracing_ = std::getenv("RINGMQ_SIM_LOG") != nullptr;
  outcome out_;
};

void sim_link::local_route_added(const std::string& filter) { ++sim_.routes(node_)[filter]; }

void sim_link::local_route_removed(const std::string& filter) {
  auto& r = sim_.routes(node_);
  if (auto it = r.find(filter); it != r.end() && --it->second <= 0) r.erase(it);
}

std::size_t sim_link::publish(const core::message_ptr& m, const core::retained_version*,
                              std::vector<std::string>&, bool&) {
  return sim_.publish(node_, m);
}

bool sim_link::can_settle(std::string_view topic) const { return sim_.can_settle(node_, topic); }

void sim_link::when_forwards_delivered(std::function<void()> done) {
  sim_.barrier(node_, std::move(done));
}

bool sim_link::claim(const std::string& client_id, std::uint64_t, bool persistent,
                     core::claim_result& result, std::function<void(core::claim_result)> later) {
  return sim_.claim(node_, client_id, persistent, result, std::move(later));
}

}  // namespace

std::string outcome::summary() const {
  std::ostringstream s;
  s << (ok ? "ok" : "VIOLATED") << ": acknowledged=" << acknowledged << " delivered=" << delivered
    << " crashes=" << crashes << " (power losses " << power_losses << ") partitions=" << partitions
    << " moves=" << moves << " refused_connects=" << refused_connects << " joins=" << joins
    << " leaves=" << leaves << " (drained " << drains << ") sessions_moved=" << sessions_moved
    << " duplicates_dropped=" << duplicates_dropped << " ticks=" << ticks;
  for (const auto& v : violations) s << "\n  " << v;
  return s.str();
}

outcome run(const scenario& s) { return simulation(s).run(); }

}  // namespace ringmq::sim::sessions
