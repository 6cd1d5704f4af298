#include "cluster/replication/session_replicator.hpp"

#include <algorithm>

#include "broker/core/stable_hash.hpp"

namespace ringmq::cluster::replication {

member member_number(std::string_view node_id, std::uint64_t incarnation) noexcept {
  const auto n = core::hash_combine(core::fnv1a64(node_id), incarnation);
  return n == 0 ? 1 : n;
}

namespace {

bool carries_replicas(const message& m) {
  if (std::holds_alternative<prepare>(m)) return true;
  const auto* a = std::get_if<accept>(&m);
  return a && a->install;
}

// The session data an install carries.
std::uint64_t install_bytes(const accept& a) {
  std::uint64_t n = a.snapshot.size();
  for (const auto& e : a.entries) n += e.data.size();
  return n;
}

bool same_set(std::vector<member> a, std::vector<member> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

}  // namespace

session_replicator::session_replicator(settings s, log_storage& storage, hooks h)
    : settings_(s), storage_(storage), hooks_(std::move(h)) {}

std::error_code session_replicator::load() {
  std::map<std::string, stored_log> stored;
  if (auto ec = storage_.load(stored)) return ec;
  for (auto& [client, log] : stored) {
    create(client, quorums(settings_.self, std::move(log.replicas), settings_.write_quorum),
           std::move(log.state));
  }
  return {};
}

session_replicator::session* session_replicator::find(const std::string& client) {
  const auto it = logs_.find(client);
  return it == logs_.end() ? nullptr : &it->second;
}

session_replicator::session& session_replicator::create(const std::string& client,
                                                        session_log::config c,
                                                        session_log::durable_state restored) {
  c.self = settings_.self;
  auto& s = logs_[client];
  s.log = std::make_unique<session_log>(std::move(c), std::move(restored));
  if (hooks_.created) hooks_.created(client);
  return s;
}

const session_log* session_replicator::log_of(const std::string& client) const {
  const auto it = logs_.find(client);
  return it == logs_.end() ? nullptr : it->second.log.get();
}

std::vector<member> session_replicator::target_for(const std::string& client,
                                                   const session_log& log) const {
  // The ring's set when every member of it is alive; else the log's own (an
  // install must reach a write quorum of its target, and a move can wait).
  auto placement = hooks_.placement(client).replicas;
  if (log.state().log_gen == ballot{}) return placement;  // no log: the guess
  for (auto m : placement) {
    if (hooks_.alive && !hooks_.alive(m)) return {};
  }
  return placement;
}

void session_replicator::acquire(const std::string& client) {
  auto* s = find(client);
  if (!s) s = &create(client, hooks_.placement(client));
  // Changes waiting from an earlier generation are not vouched for by the new
  // one (its adopted log may hold other changes at their positions): their
  // proposers hear that they failed, as when fenced.
  fail_waiters(*s);
  s->moving = false;
  s->reported_commit = 0;
  auto everyone = hooks_.members ? hooks_.members() : std::vector<member>{};
  apply(client, *s, s->log->acquire(target_for(client, *s->log), std::move(everyone)));
}

bool session_replicator::move(const std::string& client) {
  auto* s = find(client);
  if (!s || s->moving || !s->log->serving()) return false;
  auto target = target_for(client, *s->log);
  if (target.empty() || same_set(target, s->log->replicas())) return false;
  // Serving all along: the changes under way are in this node's log, which
  // the new generation adopts (it is the newest), so they commit there and
  // their waiters stay; new ones wait until it is installed.
  s->moving = true;
  s->moved_from = s->log->generation();
  s->reported_commit = 0;
  apply(client, *s, s->log->acquire(std::move(target), {}));
  return true;
}

bool session_replicator::serving(const std::string& client) const {
  const auto* log = log_of(client);
  return log && log->serving();
}

bool session_replicator::records_of(const session_log& log, const std::string& client,
                                    session_records& out) {
  bool ok = log.base_seq() == 0 || decode_snapshot(log.snapshot(), client, out);
  for (const auto& entry : log.entries()) {
    storage::write_batch change;
    ok = ok && decode_change(entry.data, client, change);
    if (ok) apply_change(change, out);
  }
  return ok;
}

void session_replicator::hand_over(const std::string& client, member to) {
  const auto* s = find(client);
  if (!s || !s->log->serving() || to == 0 || to == settings_.self) return;
  outgoing_[to].push_back({client, handover{s->log->generation()}, {}, 0});
}

void session_replicator::ask_handover(const std::string& client, member to) {
  if (to == 0 || to == settings_.self) return;
  outgoing_[to].push_back({client, handover_request{}, {}, 0});
}

bool session_replicator::propose(const std::string& client, std::string change,
                                 std::function<void(bool)> done) {
  auto* s = find(client);
  if (s && s->moving && !s->log->serving()) {
    s->held.push_back({std::move(change), std::move(done)});
    return true;
  }
  if (!s || !s->log->serving()) return false;
  session_log::effects e;
  const auto seq = s->log->propose(std::move(change), e);
  if (!seq) return false;
  s->waiters.push_back({*seq, std::move(done)});
  apply(client, *s, std::move(e));
  return true;
}

void session_replicator::on_messages(member from, std::vector<addressed> batch) {
  for (auto& m : batch) deliver(from, std::move(m));
}

void session_replicator::deliver(member from, addressed&& m) {
  auto* s = find(m.client);
  if (!s) {
    if (carries_replicas(m.msg)) {
      const bool listed = std::find(m.replicas.begin(), m.replicas.end(), settings_.self) !=
                          m.replicas.end();
      if (!listed || m.replicas.size() > 64) return;  // not ours to keep
      s = &create(m.client, quorums(settings_.self, m.replicas, settings_.write_quorum));
    } else if (const auto* a = std::get_if<accept>(&m.msg)) {
      // An owner thinks this node holds the log (it lost its disk, or the
      // install was lost): ask for the whole log with its replica set.
      accepted reply;
      reply.gen = a->gen;
      reply.needs_install = true;
      outgoing_[from].push_back({m.client, reply, {}, 0});
      return;
    } else if (const auto* h = std::get_if<handover>(&m.msg)) {
      // No log here (it was removed), but the broker may still hold the session.
      if (hooks_.handed_over) hooks_.handed_over(m.client, h->gen.node);
      return;
    } else {
      return;  // an answer for a log this node no longer has
    }
  }
  if (const auto* a = std::get_if<accept>(&m.msg); a && a->install) {
    install_bytes_received_ += install_bytes(*a);
  }
  apply(m.client, *s, s->log->on_message(from, m.msg));
}

void session_replicator::apply(const std::string& client, session& s, session_log::effects&& e) {
  for (auto& o : e.send) {
    addressed a{client, std::move(o.msg), {}, 0};
    if (carries_replicas(a.msg)) {
      // Every member the message asks to hold the log, so that one that
      // holds none yet makes it.
      if (const auto* install = std::get_if<accept>(&a.msg)) {
        install_bytes_sent_ += install_bytes(*install);
        a.replicas = install->replicas;
        for (const auto& set : install->joint) {
          for (auto m : set) {
            if (std::find(a.replicas.begin(), a.replicas.end(), m) == a.replicas.end()) {
              a.replicas.push_back(m);
            }
          }
        }
      } else {
        a.replicas = s.log->asked();
      }
      a.write_quorum = quorums(0, a.replicas, settings_.write_quorum).write_quorum;
    }
    outgoing_[o.to].push_back(std::move(a));
  }
  if (e.persist) {
    const auto seq = storage_.persist(client, s.log->settings(), s.log->state());
    pending_writes_.push_back({seq, client, *e.persist});
    new_writes_.push_back(seq);
  }
  if (e.fenced) {
    s.moving = false;
    fail_waiters(s);
    if (hooks_.fenced) hooks_.fenced(client);
  }
  if (e.handed_over && hooks_.handed_over) hooks_.handed_over(client, e.handed_over);
  if (e.handover_asked && hooks_.handover_asked) hooks_.handover_asked(client, e.handover_asked);
  if (e.became_owner && s.moving && s.log->adopted_generation() != s.moved_from) {
    // Another node served the session meanwhile (this one was fenced without
    // hearing of it): the log adopted is not the one its changes under way
    // were appended to. They failed; the session is taken over from the log,
    // as on any takeover.
    s.moving = false;
    fail_waiters(s);
  }
  if (e.became_owner && s.moving) {
    // Moved, and served here all along: nothing to hand the broker.
    s.moving = false;
    for (auto& h : std::exchange(s.held, {})) {
      session_log::effects pe;
      const auto seq = s.log->propose(std::move(h.data), pe);
      if (!seq) {
        h.done(false);
        continue;
      }
      s.waiters.push_back({*seq, std::move(h.done)});
      apply(client, s, std::move(pe));
    }
    if (hooks_.moved) hooks_.moved(client);
  } else if (e.became_owner && hooks_.owned) {
    session_records records;
    // A log that does not decode came from a node running other code: the
    // session is served empty rather than from records it cannot read.
    if (!records_of(*s.log, client, records)) records.clear();
    hooks_.owned(client, std::move(records), e.deposed);
  }
  if (e.committed > s.reported_commit) {
    s.reported_commit = e.committed;
    // In the order they were proposed.
    auto ready = std::stable_partition(s.waiters.begin(), s.waiters.end(),
                                [&](const waiter& w) { return w.seq > e.committed; });
    std::vector<waiter> done(std::make_move_iterator(ready), std::make_move_iterator(s.waiters.end()));
    s.waiters.erase(ready, s.waiters.end());
    for (auto& w : done) w.done(true);
    maybe_compact(client, s);
  }
  if (s.log->current_role() == session_log::role::replica) {
    s.reported_commit = 0;
    maybe_compact(client, s);
  }
  if (s.log->serving() && s.log->replicas_in_sync() < s.log->settings().replicas.size()) {
    if (s.behind_since == 0) s.behind_since = ticks_ + 1;
  } else {
    s.behind_since = 0;
  }
  if (s.log->settled()) {
    active_.erase(client);
  } else {
    active_.insert(client);
  }
}

void session_replicator::maybe_compact(const std::string& client, session& s) {
  auto& log = *s.log;
  const auto upto = std::min(log.known_commit(), log.last_seq());
  if (upto <= log.base_seq() || log.entries().size() < settings_.compact_after) return;
  session_records records;
  if (log.base_seq() > 0 && !decode_snapshot(log.snapshot(), client, records)) return;
  for (const auto& entry : log.entries()) {
    if (entry.seq > upto) break;
    storage::write_batch change;
    if (!decode_change(entry.data, client, change)) return;  // kept as it is
    apply_change(change, records);
  }
  session_log::effects e;
  if (log.compact(upto, encode_snapshot(records), e)) apply(client, s, std::move(e));
}

void session_replicator::fail_waiters(session& s) {
  auto waiters = std::move(s.waiters);
  s.waiters.clear();
  auto held = std::move(s.held);
  s.held.clear();
  for (auto& w : waiters) w.done(false);
  for (auto& h : held) h.done(false);
}

void session_replicator::on_tick() {
  ++ticks_;
  std::vector<std::string> due;
  for (const auto& client : active_) {
    if (due.size() == settings_.resends_per_tick) break;
    auto* s = find(client);
    // The first resend comes at the next tick, later ones spaced out.
    if (!s || (s->resent_at != 0 && ticks_ - s->resent_at < settings_.resend_every_ticks)) {
      continue;
    }
    s->resent_at = ticks_;
    due.push_back(client);
  }
  for (const auto& client : due) {
    if (auto* s = find(client)) apply(client, *s, s->log->on_tick());
  }
}

void session_replicator::on_durable(storage::commit_seq seq) {
  // Written in the order of their commit numbers, they become durable in that
  // order too: the done ones are at the front (thousands wait during a failover).
  std::vector<pending_write> done;
  while (!pending_writes_.empty() && pending_writes_.front().seq <= seq) {
    done.push_back(std::move(pending_writes_.front()));
    pending_writes_.pop_front();
  }
  for (const auto& w : done) {
    if (auto* s = find(w.client)) apply(w.client, *s, s->log->on_persisted(w.version));
  }
}

std::map<member, std::vector<addressed>> session_replicator::take_outgoing() {
  return std::exchange(outgoing_, {});
}

std::vector<storage::commit_seq> session_replicator::take_writes() {
  return std::exchange(new_writes_, {});
}

std::uint64_t session_replicator::replica_lag_ticks() const noexcept {
  std::uint64_t oldest = 0;
  for (const auto& [client, s] : logs_) {
    if (s.behind_since != 0 && (oldest == 0 || s.behind_since < oldest)) oldest = s.behind_since;
  }
  return oldest == 0 ? 0 : ticks_ + 2 - oldest;  // the tick it fell behind in counts
}

std::size_t session_replicator::owned_sessions() const noexcept {
  std::size_t n = 0;
  for (const auto& [client, s] : logs_) n += s.log->serving() ? 1 : 0;
  return n;
}

std::size_t session_replicator::under_replicated() const noexcept {
  std::size_t n = 0;
  for (const auto& [client, s] : logs_) {
    if (s.log->serving() && s.log->replicas_in_sync() < s.log->settings().replicas.size()) ++n;
  }
  return n;
}

std::vector<std::pair<std::string, std::vector<member>>> session_replicator::replica_sets() const {
  std::vector<std::pair<std::string, std::vector<member>>> out;
  out.reserve(logs_.size());
  for (const auto& [client, s] : logs_) out.emplace_back(client, s.log->replicas());
  return out;
}

}  // namespace ringmq::cluster::replication
