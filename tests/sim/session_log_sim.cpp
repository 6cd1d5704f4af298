#include "tests/sim/session_log_sim.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "cluster/replication/session_log.hpp"

namespace ringmq::sim {

namespace {

using namespace ringmq::cluster::replication;

constexpr int retransmit_every = 5;
constexpr int election_min = 40;
constexpr int election_max = 120;
constexpr int client_timeout = 150;
constexpr int settle_ticks =
    1'000; // after the run: a healed network, every node restarted
constexpr int client_nack_pause = 10;

std::string id_of(int publisher, int number) {
  return "p" + std::to_string(publisher) + ":" + std::to_string(number);
}

// The application state of the simulated session: the message ids, in log
// order. A snapshot is them joined by commas.
std::string snapshot_of(const std::vector<std::string> &ids, std::size_t upto) {
  std::string out;
  for (std::size_t i = 0; i < upto && i < ids.size(); ++i) {
    if (i)
      out += ',';
    out += ids[i];
  }
  return out;
}

std::vector<std::string> full_log(const session_log &log) {
  std::vector<std::string> ids;
  const auto &snap = log.snapshot();
  std::size_t start = 0;
  while (log.base_seq() > 0 && start <= snap.size()) {
    const auto comma = snap.find(',', start);
    ids.push_back(snap.substr(
        start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  for (const auto &e : log.entries())
    ids.push_back(e.data);
  return ids;
}

struct persist_job {
  int complete_at;
  std::uint64_t version;
  session_log::durable_state state;
};

struct waiting_ack {
  std::uint64_t seq;
  std::string id;
  int publisher;
  int number;
};

struct node {
  bool up = true;
  std::uint64_t incarnation = 0;
  std::unique_ptr<session_log> log;
  session_log::durable_state disk;
  std::vector<persist_job> persisting;
  int last_owner_contact = 0;
  int election_timeout = election_min;
  int restart_at = -1;
  std::vector<waiting_ack> waiting;
};

struct wire {
  int at = 0;
  std::uint64_t order = 0; // ties broken by send order
  enum class kind : std::uint8_t { log, request, ack, nack } what = kind::log;
  member from = 0;
  member to = 0; // node (log, request) or publisher (ack, nack)
  std::uint64_t to_incarnation = 0;
  message msg;
  int publisher = 0;
  int number = 0;
  bool operator>(const wire &o) const {
    return std::tie(at, order) > std::tie(o.at, o.order);
  }
};

struct publisher {
  int next = 0; // next number to send for the first time
  std::set<int> outstanding;
  std::set<int> acked;
  int node = 0; // where it is connected
  int resend_at = 0;
  int last_send_at_node = 0;
};

class simulation {
public:
  explicit simulation(const scenario &s) : s_(s), rng_(s.seed) {
    for (int i = 0; i < s.nodes; ++i)
      config_.replicas.push_back(static_cast<member>(i));
    config_.write_quorum = static_cast<std::size_t>(s.write_quorum);
    config_.prepare_quorum = static_cast<std::size_t>(s.prepare_quorum);
    nodes_.resize(static_cast<std::size_t>(all()));
    for (int i = 0; i < all(); ++i)
      start(i);
    publishers_.resize(static_cast<std::size_t>(s.publishers));
    for (auto &p : publishers_)
      p.node = pick(0, all() - 1);
    blocked_.assign(static_cast<std::size_t>(all()),
                    std::vector<bool>(all(), false));
  }

  outcome run() {
    for (tick_ = 0; tick_ < s_.max_ticks; ++tick_) {
      if (tick_ < s_.fault_ticks)
        inject_faults();
      if (tick_ == s_.fault_ticks)
        heal();
      deliver();
      complete_persists();
      for (int i = 0; i < all(); ++i)
        step_node(i);
      for (int p = 0; p < s_.publishers; ++p)
        step_publisher(p);
      if (tick_ > s_.fault_ticks && done())
        break;
    }
    out_.ticks = tick_;
    settle();
    check();
    return out_;
  }

private:
  int all() const { return s_.nodes + s_.outsiders; }
  bool moving_sets() const { return s_.move_per_tick > 0; }
  // A replica as far as the node itself knows (its log names it), or one of
  // the first set when sets do not move.
  bool replica(int i) const {
    if (!moving_sets())
      return i < s_.nodes;
    const auto &n = nodes_[static_cast<std::size_t>(i)];
    if (!n.log)
      return false;
    const auto &r = n.log->replicas();
    return std::find(r.begin(), r.end(), static_cast<member>(i)) != r.end();
  }
  std::vector<member> everyone() const {
    std::vector<member> out;
    if (moving_sets())
      for (int i = 0; i < all(); ++i)
        out.push_back(static_cast<member>(i));
    return out;
  }
  std::vector<member> random_set() {
    std::vector<member> out = everyone();
    std::shuffle(out.begin(), out.end(), rng_);
    out.resize(static_cast<std::size_t>(s_.nodes));
    return out;
  }

  int pick(int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng_);
  }
  bool chance(double p) {
    return std::uniform_real_distribution<double>(0, 1)(rng_) < p;
  }

  void violation(std::string what) {
    out_.ok = false;
    if (out_.violations.size() < 20)
      out_.violations.push_back(std::move(what));
  }

  // --- nodes ----------------------------------------------------------------

  void start(int i) {
    auto &n = nodes_[static_cast<std::size_t>(i)];
    auto c = config_;
    c.self = static_cast<member>(i);
    n.up = true;
    ++n.incarnation;
    n.log = std::make_unique<session_log>(c, n.disk);
    n.persisting.clear();
    n.waiting.clear();
    n.last_owner_contact = tick_;
    n.election_timeout = pick(election_min, election_max);
    n.restart_at = -1;
  }

  void crash(int i) {
    trace(i, "crashes");
    auto &n = nodes_[static_cast<std::size_t>(i)];
    n.up = false;
    n.log.reset();
    n.persisting.clear(); // not durable yet: lost
    n.waiting.clear();
    n.restart_at = tick_ + pick(30, 400);
    ++out_.crashes;
  }

  int replicas_down() const {
    // With moving sets any node may hold a replica: all count.
    const auto last = moving_sets() ? nodes_.end() : nodes_.begin() + s_.nodes;
    return static_cast<int>(std::count_if(nodes_.begin(), last,
                                          [](const node &n) { return !n.up; }));
  }

  void inject_faults() {
    // At most R - W replicas down at once, so that the rest can always form
    // both quorums; a node outside the replica set may go down any time.
    if (chance(s_.crash_per_tick)) {
      const int victim = pick(0, all() - 1);
      if ((!moving_sets() && !replica(victim)) ||
          replicas_down() < s_.nodes - s_.write_quorum)
        crash(victim);
    }
    for (int i = 0; i < all(); ++i) {
      auto &n = nodes_[static_cast<std::size_t>(i)];
      if (!n.up && n.restart_at >= 0 && tick_ >= n.restart_at)
        start(i);
    }
    if (tick_ >= partition_until_ && partitioned_)
      heal_partition();
    if (!partitioned_ && chance(s_.partition_per_tick)) {
      // One node cut off from the others, both ways or one way only.
      const int cut = pick(0, all() - 1);
      const bool one_way = chance(0.3);
      for (int j = 0; j < all(); ++j) {
        if (j == cut)
          continue;
        blocked_[static_cast<std::size_t>(cut)][static_cast<std::size_t>(j)] =
            true;
        if (!one_way)
          blocked_[static_cast<std::size_t>(j)][static_cast<std::size_t>(cut)] =
              true;
      }
      partitioned_ = true;
      partition_until_ = tick_ + pick(50, 500);
      ++out_.partitions;
    }
  }

  void heal_partition() {
    for (auto &row : blocked_)
      std::fill(row.begin(), row.end(), false);
    partitioned_ = false;
  }

  void heal() {
    heal_partition();
    for (int i = 0; i < all(); ++i) {
      if (!nodes_[static_cast<std::size_t>(i)].up)
        start(i);
    }
  }

  void send(wire w) {
    const bool faults = tick_ < s_.fault_ticks;
    if (faults && w.what == wire::kind::log && chance(s_.drop))
      return;
    w.order = ++order_;
    w.at = tick_ + pick(1, s_.max_delay);
    if (w.what == wire::kind::log) {
      if (blocked_[w.from][w.to])
        return;
      network_.push_back(w);
      if (faults && chance(s_.duplicate)) {
        w.at = tick_ + pick(1, s_.max_delay);
        w.order = ++order_;
        network_.push_back(w);
      }
      return;
    }
    network_.push_back(w);
  }

  static std::string set_of(const std::vector<member> &v) {
    std::string out;
    for (auto m : v)
      out += (out.empty() ? "" : ",") + std::to_string(m);
    return "{" + out + "}";
  }

  void trace(int i, const std::string &what) const {
    static const bool on = std::getenv("RINGMQ_SIM_TRACE") != nullptr;
    if (!on)
      return;
    const auto &n = nodes_[static_cast<std::size_t>(i)];
    std::cerr << "t=" << tick_ << " n" << i << " " << what;
    if (n.log)
      std::cerr << " gen=" << n.log->generation().round << "."
                << n.log->generation().node
                << " log_gen=" << n.log->state().log_gen.round << "."
                << n.log->state().log_gen.node
                << " set=" << set_of(n.log->replicas())
                << " last=" << n.log->last_seq()
                << " commit=" << n.log->committed();
    std::cerr << "\n";
  }

  void apply(int i, session_log::effects &&e) {
    auto &n = nodes_[static_cast<std::size_t>(i)];
    if (e.became_owner)
      trace(i, "became owner");
    if (e.fenced)
      trace(i, "fenced");
    for (auto &o : e.send) {
      wire w;
      w.what = wire::kind::log;
      w.from = static_cast<member>(i);
      w.to = o.to;
      w.to_incarnation = nodes_[o.to].incarnation;
      w.msg = std::move(o.msg);
      send(std::move(w));
    }
    if (e.persist) {
      // A store writes in order: a later batch is never durable before an
      // earlier one.
      const int last =
          n.persisting.empty() ? tick_ : n.persisting.back().complete_at;
      n.persisting.push_back(
          {std::max(last, tick_ + pick(0, s_.max_persist_delay)), *e.persist,
           n.log->state()});
    }
    if (e.became_owner) {
      ++out_.ownerships;
      if (n.log->replicas() != owned_set_) {
        if (!owned_set_.empty())
          ++out_.moves;
        owned_set_ = n.log->replicas();
      }
      if (!replica(i))
        ++out_.outsider_ownerships;
      n.last_owner_contact = tick_;
    }
    if (e.committed) {
      trace(i, "commits to " + std::to_string(e.committed));
      on_committed(i, e.committed);
    }
    if (e.fenced)
      n.waiting.clear();
  }

  void on_committed(int i, std::uint64_t commit) {
    auto &n = nodes_[static_cast<std::size_t>(i)];
    const auto ids = full_log(*n.log);
    if (ids.size() != n.log->last_seq()) {
      violation("node " + std::to_string(i) + " holds " +
                std::to_string(ids.size()) + " ids for a log of " +
                std::to_string(n.log->last_seq()));
    }
    // Prefix consistency: what any node commits agrees with all that was
    // committed before.
    for (std::uint64_t s = 0; s < commit && s < ids.size(); ++s) {
      if (s < committed_.size()) {
        if (committed_[s] != ids[s]) {
          violation("position " + std::to_string(s + 1) + " committed as " +
                    committed_[s] + " and later as " + ids[s] + " (node " +
                    std::to_string(i) + ")");
        }
      } else {
        committed_.push_back(ids[s]);
      }
    }
    for (auto it = n.waiting.begin(); it != n.waiting.end();) {
      if (it->seq <= commit) {
        if (it->seq <= ids.size() && ids[it->seq - 1] == it->id) {
          wire w;
          w.what = wire::kind::ack;
          w.from = static_cast<member>(i);
          w.to = static_cast<member>(it->publisher);
          w.number = it->number;
          send(std::move(w));
        }
        it = n.waiting.erase(it);
      } else {
        ++it;
      }
    }
  }

  void complete_persists() {
    for (int i = 0; i < all(); ++i) {
      auto &n = nodes_[static_cast<std::size_t>(i)];
      while (n.up && !n.persisting.empty() &&
             n.persisting.front().complete_at <= tick_) {
        auto job = std::move(n.persisting.front());
        n.persisting.erase(n.persisting.begin());
        n.disk = std::move(job.state);
        apply(i, n.log->on_persisted(job.version));
      }
    }
  }

  void step_node(int i) {
    auto &n = nodes_[static_cast<std::size_t>(i)];
    if (!n.up)
      return;
    if (tick_ % retransmit_every == i % retransmit_every)
      apply(i, n.log->on_tick());
    // Now and then each node folds what it knows committed into a snapshot.
    if (s_.compact_every > 0 &&
        tick_ % s_.compact_every == (i * 37) % s_.compact_every) {
      const auto upto = std::min(n.log->known_commit(), n.log->last_seq());
      if (upto > n.log->base_seq()) {
        session_log::effects e;
        if (n.log->compact(upto, snapshot_of(full_log(*n.log), upto), e)) {
          ++out_.compactions;
          apply(i, std::move(e));
        }
      }
    }
    // A replica that hears from no owner for a while tries to become one; a
    // node outside the replica set hears nothing and takes the session over
    // now and then (its client connected there) while the faults last.
    if (moving_sets() && tick_ < s_.fault_ticks && n.log->serving() &&
        chance(s_.move_per_tick)) {
      auto target = random_set();
      trace(i, "moves to " + set_of(target));
      apply(i, n.log->acquire(std::move(target), everyone()));
      return;
    }
    if (!replica(i) && tick_ >= s_.fault_ticks)
      return;
    if (n.log->current_role() != session_log::role::owner &&
        tick_ - n.last_owner_contact > n.election_timeout) {
      n.last_owner_contact = tick_;
      n.election_timeout = replica(i) ? pick(election_min, election_max)
                                      : pick(election_max, 4 * election_max);
      auto target = moving_sets() && tick_ < s_.fault_ticks && chance(0.3)
                        ? random_set()
                        : std::vector<member>{};
      trace(i, "acquires, target " + set_of(target));
      apply(i, n.log->acquire(std::move(target), everyone()));
    }
  }

  void on_request(int i, int publisher, int number) {
    auto &n = nodes_[static_cast<std::size_t>(i)];
    const auto id = id_of(publisher, number);
    const auto nack = [&] {
      wire w;
      w.what = wire::kind::nack;
      w.from = static_cast<member>(i);
      w.to = static_cast<member>(publisher);
      w.number = number;
      send(std::move(w));
    };
    if (!n.log->serving()) {
      nack();
      return;
    }
    const auto ids = full_log(*n.log);
    // In order per publisher: its previous message must be in the log first
    // (its connection delivers in order; a gap means the earlier one is being
    // resent).
    std::optional<std::uint64_t> found;
    bool previous_present = number == 0;
    const auto previous = id_of(publisher, number - 1);
    for (std::size_t k = 0; k < ids.size(); ++k) {
      if (ids[k] == id)
        found = k + 1;
      if (ids[k] == previous)
        previous_present = true;
    }
    if (!found && !previous_present) {
      nack();
      return;
    }
    std::uint64_t seq = 0;
    if (found) {
      seq = *found; // a resend: not appended again (exactly once)
    } else {
      session_log::effects e;
      seq = *n.log->propose(id, e);
      apply(i, std::move(e));
    }
    if (seq <= n.log->committed()) {
      n.waiting.push_back({seq, id, publisher, number});
      on_committed(i, n.log->committed());
    } else {
      n.waiting.push_back({seq, id, publisher, number});
    }
  }

  void deliver() {
    std::vector<wire> due;
    for (auto it = network_.begin(); it != network_.end();) {
      if (it->at <= tick_) {
        due.push_back(std::move(*it));
        it = network_.erase(it);
      } else {
        ++it;
      }
    }
    std::sort(due.begin(), due.end(), [](const wire &a, const wire &b) {
      return std::tie(a.at, a.order) < std::tie(b.at, b.order);
    });
    for (auto &w : due) {
      switch (w.what) {
      case wire::kind::log: {
        auto &n = nodes_[w.to];
        if (!n.up || n.incarnation != w.to_incarnation)
          break; // sent to a process that died
        if (blocked_[w.from][w.to])
          break;
        if (const auto *a = std::get_if<accept>(&w.msg)) {
          n.last_owner_contact = tick_;
          if (a->install && a->base_seq > n.log->last_seq())
            ++out_.snapshot_installs;
        }
        if (const auto *pr = std::get_if<promise>(&w.msg); pr && pr->ok)
          trace(static_cast<int>(w.to),
                "promise " + std::to_string(pr->gen.round) + "." +
                    std::to_string(pr->gen.node) + " from n" +
                    std::to_string(w.from) + " log_gen " +
                    std::to_string(pr->log_gen.round) + "." +
                    std::to_string(pr->log_gen.node) + " set " +
                    set_of(pr->replicas) + " joint " +
                    std::to_string(pr->joint.size()));
        if (const auto *ac = std::get_if<accept>(&w.msg); ac && ac->install)
          trace(static_cast<int>(w.to),
                "install " + std::to_string(ac->gen.round) + "." +
                    std::to_string(ac->gen.node) + " from n" +
                    std::to_string(w.from) + " set " + set_of(ac->replicas) +
                    " joint " + std::to_string(ac->joint.size()));
        apply(static_cast<int>(w.to), n.log->on_message(w.from, w.msg));
        break;
      }
      case wire::kind::request:
        if (nodes_[w.to].up)
          on_request(static_cast<int>(w.to), w.publisher, w.number);
        break;
      case wire::kind::ack: {
        auto &p = publishers_[w.to];
        if (p.outstanding.erase(w.number)) {
          p.acked.insert(w.number);
          ++out_.acknowledged;
        }
        break;
      }
      case wire::kind::nack: {
        auto &p = publishers_[w.to];
        if (p.outstanding.contains(w.number)) {
          p.resend_at = std::min(p.resend_at, tick_ + client_nack_pause);
        }
        break;
      }
      }
    }
  }

  // --- publishers -----------------------------------------------------------

  void send_request(int pi, int number) {
    auto &p = publishers_[static_cast<std::size_t>(pi)];
    wire w;
    w.what = wire::kind::request;
    w.to = static_cast<member>(p.node);
    w.publisher = pi;
    w.number = number;
    // Its connection keeps order: a later message never overtakes an earlier
    // one.
    w.order = ++order_;
    w.at = std::max(p.last_send_at_node, tick_ + pick(1, s_.max_delay));
    p.last_send_at_node = w.at;
    network_.push_back(w);
  }

  void step_publisher(int pi) {
    auto &p = publishers_[static_cast<std::size_t>(pi)];
    if (tick_ >= p.resend_at && !p.outstanding.empty()) {
      // Not acknowledged in time, or refused: connect to another node and
      // send everything outstanding again, in order.
      p.node = pick(0, all() - 1);
      p.last_send_at_node = 0;
      for (int number : p.outstanding)
        send_request(pi, number);
      p.resend_at = tick_ + client_timeout;
    }
    while (static_cast<int>(p.outstanding.size()) < s_.window &&
           p.next < s_.messages_per_publisher) {
      p.outstanding.insert(p.next);
      send_request(pi, p.next++);
      if (p.outstanding.size() == 1)
        p.resend_at = tick_ + client_timeout;
    }
  }

  bool done() const {
    for (const auto &p : publishers_) {
      if (static_cast<int>(p.acked.size()) < s_.messages_per_publisher)
        return false;
    }
    return true;
  }

  // --- the end --------------------------------------------------------------

  const node *final_owner() const {
    const node *owner = nullptr;
    for (const auto &n : nodes_) {
      if (n.up && n.log->serving() &&
          (!owner || n.log->generation() > owner->log->generation())) {
        owner = &n;
      }
    }
    return owner;
  }

  // On a healed network with every node up, the owner comes to have nothing
  // left to tell (the driver then stops ticking it): every replica holds the
  // whole log and knows the commit point.
  void settle() {
    if (tick_ <= s_.fault_ticks)
      heal();
    const int until = tick_ + settle_ticks;
    for (; tick_ < until; ++tick_) {
      deliver();
      complete_persists();
      for (int i = 0; i < all(); ++i)
        step_node(i);
      const auto *owner = final_owner();
      const bool all_up = std::all_of(nodes_.begin(), nodes_.end(),
                                      [](const node &n) { return n.up; });
      if (all_up && owner && owner->log->settled())
        return;
    }
    if (done())
      violation("the owner did not settle within " +
                std::to_string(settle_ticks) + " ticks");
  }

  void check() {
    if (!done()) {
      violation("not every message was acknowledged within " +
                std::to_string(s_.max_ticks) +
                " ticks after the faults stopped");
    }
    const node *owner = final_owner();
    std::vector<std::string> final_log = committed_;
    if (owner) {
      const auto ids = full_log(*owner->log);
      for (std::uint64_t s = 0; s < owner->log->committed() && s < ids.size();
           ++s) {
        if (s < final_log.size()) {
          if (final_log[s] != ids[s])
            violation("the final owner's log differs at " +
                      std::to_string(s + 1));
        } else {
          final_log.push_back(ids[s]);
        }
      }
    }
    out_.committed_entries = static_cast<int>(final_log.size());
    std::map<std::string, int> count;
    for (const auto &id : final_log)
      ++count[id];
    for (const auto &[id, c] : count) {
      if (c > 1)
        violation(id + " is in the log " + std::to_string(c) + " times");
    }
    for (int pi = 0; pi < s_.publishers; ++pi) {
      for (int number : publishers_[static_cast<std::size_t>(pi)].acked) {
        if (!count.contains(id_of(pi, number))) {
          violation("acknowledged " + id_of(pi, number) +
                    " is not in the committed log");
        }
      }
      int last = -1;
      for (const auto &id : final_log) {
        if (!id.starts_with("p" + std::to_string(pi) + ":"))
          continue;
        const int number = std::stoi(id.substr(id.find(':') + 1));
        if (number <= last) {
          violation("publisher " + std::to_string(pi) + ": " + id + " after p" +
                    std::to_string(pi) + ":" + std::to_string(last));
        }
        last = number;
      }
    }
  }

  scenario s_;
  std::mt19937_64 rng_;
  session_log::config config_;
  std::vector<member> owned_set_; // the replica set of the latest owner
  std::vector<node> nodes_;
  std::vector<publisher> publishers_;
  std::vector<wire> network_;
  std::vector<std::vector<bool>> blocked_;
  bool partitioned_ = false;
  int partition_until_ = 0;
  std::vector<std::string> committed_; // the longest commit seen anywhere
  std::uint64_t order_ = 0;
  int tick_ = 0;
  outcome out_;
};

} // namespace

std::string outcome::summary() const {
  std::ostringstream s;
  s << (ok ? "ok" : "VIOLATED") << ": acknowledged=" << acknowledged
    << " committed=" << committed_entries << " crashes=" << crashes
    << " partitions=" << partitions << " ownerships=" << ownerships
    << " (outside the replicas: " << outsider_ownerships << ")"
    << " compactions=" << compactions
    << " snapshot_installs=" << snapshot_installs << " moves=" << moves
    << " ticks=" << ticks;
  for (const auto &v : violations)
    s << "\n  " << v;
  return s.str();
}

outcome run(const scenario &s) { return simulation(s).run(); }

} // namespace ringmq::sim
