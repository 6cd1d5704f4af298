#include "cluster/replication/session_log.hpp"

#include <algorithm>
#include <functional>
#include <tuple>

namespace ringmq::cluster::replication {

namespace {

std::uint64_t last_of(const std::vector<entry>& entries, std::uint64_t base) {
  return entries.empty() ? base : entries.back().seq;
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

// A nested type's default member initializers are not usable in a default
// argument of the enclosing class, hence two constructors.
session_log::session_log(config c) : session_log(std::move(c), durable_state{}) {}

session_log::session_log(config c, durable_state restored)
    : config_(std::move(c)), durable_(std::move(restored)) {
  highest_round_ = std::max(durable_.promised.round, durable_.log_gen.round);
}

std::uint64_t session_log::last_seq() const noexcept {
  return last_of(durable_.entries, durable_.base_seq);
}

std::uint64_t session_log::request_persist(effects& out) {
  out.persist = ++version_;
  return version_;
}

void session_log::send_to_replicas(const message& m, effects& out, bool include_self) {
  for (auto r : config_.replicas) {
    if (r == config_.self && !include_self) continue;
    out.send.push_back({r, m});
  }
}

void session_log::step_down(effects& out) {
  if (role_ != role::replica) out.fenced = true;
  role_ = role::replica;
  installed_ = false;
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

session_log::effects session_log::acquire() {
  effects out;
  role_ = role::candidate;
  installed_ = false;
  gen_ = ballot{std::max(highest_round_, durable_.promised.round) + 1, config_.self};
  highest_round_ = gen_.round;
  promises_.assign(config_.replicas.size(), std::nullopt);
  pending_self_.clear();
  self_durable_seq_ = 0;
  // This node's own promise, like any replica's, counts once it is durable.
  durable_.promised = gen_;
  const auto v = request_persist(out);
  held_.push_back({v, {config_.self, promise{gen_, true, gen_, durable_.log_gen,
                                             durable_.base_seq, durable_.snapshot,
                                             durable_.entries}}});
  send_to_replicas(prepare{gen_}, out, false);
  return out;
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
  a.entries.push_back(durable_.entries.back());
  for (std::size_t i = 0; i < config_.replicas.size(); ++i) {
    const auto r = config_.replicas[i];
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
  return install;
}

accept session_log::accept_from(std::uint64_t after) const {
  // What it lacks was folded into the snapshot here: it gets the whole log.
  if (after < durable_.base_seq) return install_message();
  accept a;
  a.gen = gen_;
  a.prev = after;
  a.commit = commit_;
  for (const auto& e : durable_.entries) {
    if (e.seq > after) a.entries.push_back(e);
  }
  return a;
}

void session_log::adopt(effects& out) {
  // The most advanced log among the promises: highest log generation, then
  // the longest. Every committed change is in it (Q + W > R).
  const promise* best = nullptr;
  for (const auto& p : promises_) {
    if (!p) continue;
    if (!best || std::make_tuple(p->log_gen, last_of(p->entries, p->base_seq)) >
                     std::make_tuple(best->log_gen, last_of(best->entries, best->base_seq))) {
      best = &*p;
    }
  }
  durable_.base_seq = best->base_seq;
  durable_.snapshot = best->snapshot;
  durable_.entries = best->entries;
  deposed_ = best->log_gen;
  durable_.log_gen = gen_;
  role_ = role::owner;
  installed_ = false;
  install_seq_ = last_seq();
  commit_ = 0;
  match_.assign(config_.replicas.size(), 0);
  // The install carries the whole log.
  sent_.assign(config_.replicas.size(), last_seq());
  needs_install_.assign(config_.replicas.size(), true);
  told_commit_.assign(config_.replicas.size(), 0);
  promises_.clear();
  self_durable_seq_ = 0;
  const auto v = request_persist(out);
  pending_self_.emplace_back(v, last_seq());
  send_to_replicas(install_message(), out, false);
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
  std::vector<std::uint64_t> acked;
  for (std::size_t i = 0; i < config_.replicas.size(); ++i) {
    acked.push_back(config_.replicas[i] == config_.self ? self_durable_seq_ : match_[i]);
  }
  std::sort(acked.begin(), acked.end(), std::greater<>());
  if (acked.size() < config_.write_quorum) return;
  const auto quorum_seq = acked[config_.write_quorum - 1];
  if (!installed_) {
    if (quorum_seq < install_seq_) return;
    installed_ = true;
    out.became_owner = true;
    if (deposed_.node != config_.self) out.deposed = deposed_.node;
    tell_deposed(out);
  }
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
    out.send.push_back({from, promise{m.gen, false, durable_.promised, {}, 0, {}, {}}});
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
                                             durable_.entries}}});
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
  const auto it = std::find(config_.replicas.begin(), config_.replicas.end(), from);
  if (it == config_.replicas.end()) return out;
  promises_[static_cast<std::size_t>(it - config_.replicas.begin())] = m;
  const auto count = std::count_if(promises_.begin(), promises_.end(),
                                   [](const auto& p) { return p.has_value(); });
  if (static_cast<std::size_t>(count) >= config_.prepare_quorum) adopt(out);
  return out;
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
  const auto it = std::find(config_.replicas.begin(), config_.replicas.end(), from);
  if (it == config_.replicas.end()) return out;
  const auto i = static_cast<std::size_t>(it - config_.replicas.begin());
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
  for (std::size_t i = 0; i < config_.replicas.size(); ++i) {
    if (config_.replicas[i] == config_.self) continue;
    if (needs_install_[i] || match_[i] < last_seq() || told_commit_[i] < commit_) return false;
  }
  return true;
}

std::size_t session_log::replicas_in_sync() const noexcept {
  if (role_ != role::owner) return 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < config_.replicas.size(); ++i) {
    if (config_.replicas[i] == config_.self ? self_durable_seq_ >= last_seq()
                                            : !needs_install_[i] && match_[i] >= last_seq()) {
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
    for (std::size_t i = 0; i < config_.replicas.size(); ++i) {
      if (config_.replicas[i] != config_.self && !promises_[i]) {
        out.send.push_back({config_.replicas[i], prepare{gen_}});
      }
    }
  } else if (role_ == role::owner) {
    for (std::size_t i = 0; i < config_.replicas.size(); ++i) {
      const auto r = config_.replicas[i];
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
