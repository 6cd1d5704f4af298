#include "cluster/replication/session_log.hpp"

#include <algorithm>
#include <functional>
#include <tuple>

namespace ringmq::cluster::replication {

namespace {

std::uint64_t last_of(const std::vector<entry>& entries, std::uint64_t base) {
  return entries.empty() ? base : entries.back().seq;
}

bool same_set(std::vector<member> a, std::vector<member> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

bool contains(const std::vector<member>& v, member m) {
  return std::find(v.begin(), v.end(), m) != v.end();
}

void merge(session_log::effects& into, session_log::effects&& from) {
  for (auto& o : from.send) into.send.push_back(std::move(o));
  if (from.persist) into.persist = std::max(into.persist.value_or(0), *from.persist);
  into.committed = std::max(into.committed, from.committed);
  into.became_owner |= from.became_owner;
  if (from.deposed) into.deposed = from.deposed;
  if (from.handed_over) into.handed_over = from.handed_over;
  if (from.handover_asked) into.handover_asked = from.handover_asked;
  into.fenced |= from.fenced;
}

}  // namespace

session_log::config quorums(member self, std::vector<member> replicas, std::size_t w) {
  session_log::config c;
  c.self = self;
  c.replicas = std::move(replicas);
  const auto r = c.replicas.size();
  c.write_quorum = std::clamp<std::size_t>(w == 0 ? r / 2 + 1 : w, 1, std::max<std::size_t>(r, 1));
  c.prepare_quorum = r + 1 - std::min(c.write_quorum, r);
  c.write_setting = w;
  return c;
}

// A nested type's default member initializers are not usable in a default
// argument of the enclosing class, hence two constructors.
session_log::session_log(config c) : session_log(std::move(c), durable_state{}) {}

session_log::session_log(config c, durable_state restored)
    : config_(std::move(c)), durable_(std::move(restored)) {
  highest_round_ = std::max(durable_.promised.round, durable_.log_gen.round);
  if (durable_.replicas.empty()) durable_.replicas = config_.replicas;
  config_ = with_set(durable_.replicas);
}

session_log::config session_log::with_set(const std::vector<member>& replicas) const {
  // The same rule on every node for every set (each node's configured write
  // quorum is the cluster's): prepare and write quorums of one set meet,
  // whoever counts them.
  return quorums(config_.self, replicas, config_.write_setting);
}

std::size_t session_log::peer_index(member m) const {
  return static_cast<std::size_t>(std::find(peers_.begin(), peers_.end(), m) - peers_.begin());
}

bool session_log::quorum_holds(const std::vector<member>& set, std::size_t w,
                               std::uint64_t seq) const {
  // A member counts once it holds this generation's log (even an empty log
  // must be installed: it names where the session lives now).
  std::size_t n = 0;
  for (auto m : set) {
    const auto i = peer_index(m);
    if (m == config_.self) {
      n += durable_version_ >= install_version_ && self_durable_seq_ >= seq ? 1 : 0;
    } else if (i < match_.size() && !needs_install_[i] && match_[i] >= seq) {
      ++n;
    }
  }
  return n >= w;
}

std::uint64_t session_log::last_seq() const noexcept {
  return last_of(durable_.entries, durable_.base_seq);
}

std::uint64_t session_log::request_persist(effects& out) {
  out.persist = ++version_;
  return version_;
}

std::vector<member> session_log::asked() const {
  std::vector<member> out;
  for (const auto& set : sets_) {
    for (auto m : set) {
      if (!contains(out, m)) out.push_back(m);
    }
  }
  return out;
}

void session_log::step_down(effects& out) {
  if (role_ != role::replica) out.fenced = true;
  role_ = role::replica;
  installed_ = false;
  moving_ = false;
  promises_.clear();
  pending_self_.clear();
  self_durable_seq_ = 0;
}

void session_log::tell_deposed(effects& out) {
  // The owner before this one may be a node outside the replica set (the
  // one its client was connected to), which would learn of the new
  // generation only when its next change is refused: until then it would
  // keep the session's subscriptions and take messages it can no longer
  // keep. Tell it now, in the words a replica refusing it would use. Sent
  // after this owner's effects of becoming owner, so a driver that puts
  // both on one ordered link delivers what this node announced first.
  if (deposed_.node == 0 || deposed_.node == config_.self) return;
  accepted refusal;
  refusal.gen = deposed_;
  refusal.promised = gen_;
  out.send.push_back({deposed_.node, refusal});
  deposed_ = {};
}

session_log::effects session_log::acquire(std::vector<member> target, std::vector<member> everyone) {
  effects out;
  role_ = role::candidate;
  installed_ = false;
  gen_ = ballot{std::max(highest_round_, durable_.promised.round) + 1, config_.self};
  highest_round_ = gen_.round;
  promises_.clear();
  pointer_gen_ = durable_.log_gen;
  everyone_ = std::move(everyone);
  // Prepares go to the sets the log held here names; a node that holds none
  // prepares on every member and its guess (its target).
  guessed_ = durable_.log_gen == ballot{};
  if (guessed_) {
    sets_ = {target.empty() ? durable_.replicas : target};
    if (!everyone_.empty()) sets_.push_back(everyone_);
  } else {
    sets_ = {durable_.replicas};
    for (const auto& j : durable_.joint) sets_.push_back(j);
  }
  moving_ = !target.empty() && !same_set(target, durable_.replicas);
  target_ = std::move(target);  // empty: the set of the newest log found
  pending_self_.clear();
  self_durable_seq_ = 0;
  // This node's own promise, like any replica's, counts once it is durable.
  durable_.promised = gen_;
  const auto v = request_persist(out);
  held_.push_back({v, {config_.self, promise{gen_, true, gen_, durable_.log_gen,
                                             durable_.base_seq, durable_.snapshot,
                                             durable_.entries, durable_.replicas,
                                             durable_.joint}}});
  prepare_on_sets(out);
  return out;
}

void session_log::prepare_on_sets(effects& out) {
  std::set<member> asked;
  for (const auto& set : sets_) {
    for (auto m : set) {
      if (m == config_.self || promises_.contains(m) || !asked.insert(m).second) continue;
      out.send.push_back({m, prepare{gen_}});
    }
  }
}

bool session_log::quorum_promised(const std::vector<member>& set) const {
  std::size_t n = 0;
  for (auto m : set) n += promises_.contains(m) ? 1 : 0;
  return n >= with_set(set).prepare_quorum;
}

std::optional<std::uint64_t> session_log::propose(std::string data, effects& out) {
  if (role_ != role::owner) return std::nullopt;
  const auto seq = last_seq() + 1;
  durable_.entries.push_back({seq, gen_, std::move(data)});
  const auto v = request_persist(out);
  pending_self_.emplace_back(v, seq);
  accept a;
  a.gen = gen_;
  a.prev = seq - 1;
  a.commit = commit_;
  a.replicas = durable_.replicas;
  a.joint = durable_.joint;
  a.entries.push_back(durable_.entries.back());
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    const auto r = peers_[i];
    // Pipelined: sent after what was sent to it before, acknowledged or
    // not. Replicas that lag (a gap, a lost message) or need the whole log
    // get it from their answer or from on_tick().
    if (r == config_.self || needs_install_[i] || sent_[i] + 1 != seq) continue;
    out.send.push_back({r, a});
    sent_[i] = seq;
  }
  return seq;
}

accept session_log::install_message() const {
  accept install;
  install.gen = gen_;
  install.install = true;
  install.base_seq = durable_.base_seq;
  install.snapshot = durable_.snapshot;
  install.entries = durable_.entries;
  install.commit = commit_;
  install.replicas = durable_.replicas;
  install.joint = durable_.joint;
  return install;
}

accept session_log::accept_from(std::uint64_t after) const {
  // What it lacks was folded into the snapshot here: it gets the whole log.
  if (after < durable_.base_seq) return install_message();
  accept a;
  a.gen = gen_;
  a.prev = after;
  a.commit = commit_;
  a.replicas = durable_.replicas;
  a.joint = durable_.joint;
  for (const auto& e : durable_.entries) {
    if (e.seq > after) a.entries.push_back(e);
  }
  return a;
}

void session_log::adopt(effects& out) {
  // The most advanced log among the promises (of every set prepared on):
  // highest log generation, then the longest. Every committed change is in
  // it (Q + W > R on each set, and the sets are the newest log's).
  const promise* best = nullptr;
  for (const auto& [from, p] : promises_) {
    if (!best || std::make_tuple(p.log_gen, last_of(p.entries, p.base_seq)) >
                     std::make_tuple(best->log_gen, last_of(best->entries, best->base_seq))) {
      best = &p;
    }
  }
  adopted_gen_ = {};
  if (best) {
    durable_.base_seq = best->base_seq;
    durable_.snapshot = best->snapshot;
    durable_.entries = best->entries;
    deposed_ = best->log_gen;
    adopted_gen_ = best->log_gen;
  }
  durable_.log_gen = gen_;
  // Installed on every set prepared on and on the target; until it is on a
  // write quorum of each, the log names them all (joint), then the target.
  if (target_.empty()) target_ = sets_.front();
  durable_.replicas = target_;
  durable_.joint.clear();
  std::vector<member> all = target_;
  for (const auto& set : sets_) {
    if (!same_set(set, target_)) durable_.joint.push_back(set);
    for (auto m : set) {
      if (!contains(all, m)) all.push_back(m);
    }
  }
  peers_ = std::move(all);
  role_ = role::owner;
  installed_ = false;
  install_seq_ = last_seq();
  commit_ = 0;
  match_.assign(peers_.size(), 0);
  // The install carries the whole log.
  sent_.assign(peers_.size(), last_seq());
  needs_install_.assign(peers_.size(), true);
  told_commit_.assign(peers_.size(), 0);
  promises_.clear();
  self_durable_seq_ = 0;
  const auto v = request_persist(out);
  install_version_ = v;
  pending_self_.emplace_back(v, last_seq());
  const auto install = install_message();
  for (auto m : peers_) {
    if (m != config_.self) out.send.push_back({m, install});
  }
}

void session_log::switch_to_target() {
  // On a write quorum of every set: the log names the target alone (sealed),
  // and only the target counts from now on. Replicas hear of it with the
  // next accept (the old sets keep naming both, which only asks more of
  // whoever prepares there).
  std::vector<std::uint64_t> match, sent, told;
  std::vector<bool> needs;
  for (auto m : target_) {
    const auto i = peer_index(m);
    match.push_back(match_[i]);
    sent.push_back(sent_[i]);
    told.push_back(told_commit_[i]);
    needs.push_back(needs_install_[i]);
  }
  config_ = with_set(target_);
  peers_ = target_;
  match_ = std::move(match);
  sent_ = std::move(sent);
  told_commit_ = std::move(told);
  needs_install_ = std::move(needs);
  moving_ = false;
  sets_.clear();
}

bool session_log::compact(std::uint64_t upto, std::string snapshot, effects& out) {
  // Logs are only ever replaced whole or appended to, so folding an entry
  // that is not committed yet would not lose it; keeping to committed ones
  // makes a snapshot the state every later owner starts from, which is what
  // the driver applies to its session.
  if (upto <= durable_.base_seq || upto > known_commit() || upto > last_seq()) return false;
  auto keep = std::find_if(durable_.entries.begin(), durable_.entries.end(),
                           [&](const entry& e) { return e.seq > upto; });
  durable_.entries.erase(durable_.entries.begin(), keep);
  durable_.base_seq = upto;
  durable_.snapshot = std::move(snapshot);
  request_persist(out);
  return true;
}

void session_log::advance_commit(effects& out) {
  if (role_ != role::owner) return;
  if (!installed_) {
    const auto target = with_set(target_);
    if (!quorum_holds(target.replicas, target.write_quorum, install_seq_)) return;
    for (const auto& set : sets_) {
      if (!quorum_holds(set, with_set(set).write_quorum, install_seq_)) return;
    }
    switch_to_target();
    if (!durable_.joint.empty()) {
      durable_.joint.clear();
      request_persist(out);
    }
    installed_ = true;
    out.became_owner = true;
    if (deposed_.node != config_.self) out.deposed = deposed_.node;
    tell_deposed(out);
  }
  std::vector<std::uint64_t> acked;
  for (auto m : config_.replicas) {
    const auto i = peer_index(m);
    acked.push_back(m == config_.self ? self_durable_seq_ : needs_install_[i] ? 0 : match_[i]);
  }
  std::sort(acked.begin(), acked.end(), std::greater<>());
  if (acked.size() < config_.write_quorum) return;
  const auto quorum_seq = acked[config_.write_quorum - 1];
  if (quorum_seq > commit_) {
    commit_ = quorum_seq;
    out.committed = commit_;
  }
}

session_log::effects session_log::on_message(member from, const message& m) {
  return std::visit([&](const auto& msg) { return handle(from, msg); }, m);
}

session_log::effects session_log::handle(member from, const prepare& m) {
  effects out;
  highest_round_ = std::max(highest_round_, m.gen.round);
  if (m.gen < durable_.promised) {
    out.send.push_back({from, promise{m.gen, false, durable_.promised, {}, 0, {}, {}, {}, {}}});
    return out;
  }
  if (m.gen > durable_.promised) {
    // A higher generation: this node no longer leads, if it did.
    if (role_ != role::replica && m.gen > gen_) step_down(out);
    durable_.promised = m.gen;
    request_persist(out);
  }
  // New or resent, the promise leaves once it is durable.
  held_.push_back({version_, {from, promise{m.gen, true, m.gen, durable_.log_gen,
                                             durable_.base_seq, durable_.snapshot,
                                             durable_.entries, durable_.replicas,
                                             durable_.joint}}});
  if (durable_version_ >= version_) {
    auto released = on_persisted(durable_version_);
    merge(out, std::move(released));
  }
  return out;
}

session_log::effects session_log::handle(member from, const promise& m) {
  effects out;
  highest_round_ = std::max(highest_round_, m.promised.round);
  if (!m.ok) {
    if (role_ != role::replica && m.promised > gen_) step_down(out);
    return out;
  }
  if (role_ != role::candidate || m.gen != gen_) return out;  // stale
  promises_[from] = m;
  if (m.log_gen != ballot{}) heard_of_log(m.log_gen, m.replicas, m.joint, out);
  maybe_adopt(out);
  return out;
}

void session_log::heard_of_log(ballot log_gen, const std::vector<member>& replicas,
                               const joint_sets& joint, effects& out) {
  // The newest log heard of names the sets to prepare on: every log names
  // the sets its generation was installed on (or is being installed on),
  // and a later generation is installed on a write quorum of each of those
  // before it serves, so the newest log leads to where the last changes
  // were committed.
  if (log_gen <= pointer_gen_) return;
  pointer_gen_ = log_gen;
  guessed_ = false;
  if (replicas.empty()) return;
  sets_ = {replicas};
  for (const auto& j : joint) sets_.push_back(j);
  prepare_on_sets(out);
}

void session_log::maybe_adopt(effects& out) {
  if (role_ != role::candidate) return;
  for (const auto& set : sets_) {
    if (!quorum_promised(set)) return;
  }
  if (guessed_) {
    // No log seen anywhere: new only if fewer than a write quorum of the
    // members are unheard (a session's changes are on a write quorum of
    // some set's members, so one of them would have answered).
    std::set<member> all;
    for (const auto& set : sets_) all.insert(set.begin(), set.end());
    std::size_t unheard = 0;
    for (auto m : all) unheard += promises_.contains(m) ? 0 : 1;
    if (unheard >= with_set(sets_.front()).write_quorum) return;
  }
  adopt(out);
}

session_log::effects session_log::handle(member from, const accept& m) {
  effects out;
  highest_round_ = std::max(highest_round_, m.gen.round);
  if (m.gen < durable_.promised) {
    out.send.push_back({from, accepted{m.gen, false, durable_.promised, last_seq(), false}});
    return out;
  }
  if (role_ != role::replica && m.gen > gen_) step_down(out);
  durable_.promised = m.gen;  // accepting at a generation promises it
  if (m.install) {
    // A late or duplicated install must not cut back a log that already
    // went further in the same generation (it acknowledged those entries).
    if (durable_.log_gen != m.gen || last_of(m.entries, m.base_seq) > last_seq()) {
      durable_.base_seq = m.base_seq;
      durable_.snapshot = m.snapshot;
      durable_.entries = m.entries;
      durable_.log_gen = m.gen;
    }
  } else {
    if (durable_.log_gen != m.gen) {
      out.send.push_back({from, accepted{m.gen, false, durable_.promised, last_seq(), true}});
      return out;
    }
    if (m.prev > last_seq()) {  // a gap: ask for what is missing
      out.send.push_back({from, accepted{m.gen, false, durable_.promised, last_seq(), false}});
      return out;
    }
    for (const auto& e : m.entries) {
      if (e.seq == last_seq() + 1) durable_.entries.push_back(e);
    }
  }
  // The log names what its owner's does (sealed once the install is done).
  if (!m.replicas.empty() && durable_.log_gen == m.gen) {
    durable_.replicas = m.replicas;
    durable_.joint = m.joint;
  }
  // Only now is the log in the owner's generation, so its prefix up to the
  // owner's commit point is the committed one (an older log may differ there).
  if (role_ == role::replica) known_commit_ = std::max(known_commit_, m.commit);
  const auto v = request_persist(out);
  held_.push_back(
      {v, {from, accepted{m.gen, true, durable_.promised, last_seq(), false, known_commit_}}});
  return out;
}

session_log::effects session_log::handle(member, const handover& m) {
  effects out;
  highest_round_ = std::max(highest_round_, m.gen.round);
  heard_ = std::max(heard_, m.gen);
  // Unless this node leads a generation newer than the one handed over to
  // (its client came back here meanwhile), the session is served elsewhere.
  if (role_ != role::replica && gen_ > m.gen) return out;
  if (role_ != role::replica) step_down(out);
  out.handed_over = m.gen.node;
  return out;
}

session_log::effects session_log::handle(member from, const handover_request&) {
  effects out;
  if (serving()) out.handover_asked = from;
  return out;
}

session_log::effects session_log::handle(member from, const accepted& m) {
  effects out;
  highest_round_ = std::max(highest_round_, m.promised.round);
  if (!m.ok) heard_ = std::max(heard_, m.promised);
  if (!m.ok && m.promised > gen_ && role_ != role::replica) {
    step_down(out);
    return out;
  }
  if (role_ != role::owner || m.gen != gen_) return out;  // stale
  const auto i = peer_index(from);
  if (i >= peers_.size()) return out;
  if (!m.ok) {
    if (m.needs_install) {
      needs_install_[i] = true;
      out.send.push_back({from, install_message()});
    } else {
      out.send.push_back({from, accept_from(std::min(m.last, last_seq()))});
    }
    sent_[i] = last_seq();
    return out;
  }
  needs_install_[i] = false;
  match_[i] = std::max(match_[i], m.last);
  sent_[i] = std::max(sent_[i], match_[i]);
  told_commit_[i] = std::max(told_commit_[i], m.known_commit);
  advance_commit(out);
  return out;
}

bool session_log::settled() const noexcept {
  if (role_ == role::replica) return true;
  if (role_ == role::candidate || !installed_) return false;
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    if (peers_[i] == config_.self) continue;
    if (needs_install_[i] || match_[i] < last_seq() || told_commit_[i] < commit_) return false;
  }
  return true;
}

std::size_t session_log::replicas_in_sync() const noexcept {
  if (role_ != role::owner) return 0;
  std::size_t n = 0;
  for (auto m : config_.replicas) {
    const auto i = peer_index(m);
    if (m == config_.self ? self_durable_seq_ >= last_seq()
                          : i < peers_.size() && !needs_install_[i] && match_[i] >= last_seq()) {
      ++n;
    }
  }
  return n;
}

session_log::effects session_log::on_persisted(std::uint64_t version) {
  effects out;
  durable_version_ = std::max(durable_version_, version);
  std::vector<held_reply> ready;
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->version <= durable_version_) {
      ready.push_back(std::move(*it));
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& h : ready) {
    if (h.reply.to == config_.self) {
      merge(out, on_message(config_.self, h.reply.msg));
    } else {
      out.send.push_back(std::move(h.reply));
    }
  }
  for (auto it = pending_self_.begin(); it != pending_self_.end();) {
    if (it->first <= durable_version_) {
      self_durable_seq_ = std::max(self_durable_seq_, it->second);
      it = pending_self_.erase(it);
    } else {
      ++it;
    }
  }
  advance_commit(out);
  return out;
}

session_log::effects session_log::on_tick() {
  effects out;
  if (role_ == role::candidate) {
    prepare_on_sets(out);
  } else if (role_ == role::owner) {
    for (std::size_t i = 0; i < peers_.size(); ++i) {
      const auto r = peers_[i];
      if (r == config_.self) continue;
      if (needs_install_[i]) {
        out.send.push_back({r, install_message()});
      } else {
        // What is missing, or nothing: then it says the owner is there.
        out.send.push_back({r, accept_from(std::min(match_[i], last_seq()))});
      }
      sent_[i] = last_seq();
    }
  }
  return out;
}

}  // namespace ringmq::cluster::replication
