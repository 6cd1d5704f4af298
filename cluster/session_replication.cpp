#include "cluster/session_replication.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <future>

#include "broker/core/journal.hpp"
#include "cluster/replication/log_wire.hpp"
#include "cluster/replication/session_change.hpp"

namespace ringmq::cluster {

namespace {

// A session as the journal would read it back from `records` (null when
// they hold no session record: a session that ended, or never began).
std::optional<core::recovered_session> as_session(const std::string& client,
                                                  const replication::session_records& records,
                                                  core::time_point now) {
  auto scratch = storage::make_memory_store();
  scratch->append(replication::replace_batch(client, records));
  core::journal reader(*scratch);
  core::recovered_state state;
  if (auto ec = reader.load(state, now)) {
    spdlog::error("cluster: the replicated records of session {} cannot be read: {}", client,
                  ec.message());
    return std::nullopt;
  }
  for (auto& s : state.sessions) {
    if (s.client_id == client) return std::move(s);
  }
  return std::nullopt;
}

}  // namespace

session_replication::session_replication(settings s, storage::store& store, core::broker& broker,
                                         hooks h, boost::asio::io_context& io)
    : settings_(s),
      store_(store),
      broker_(broker),
      hooks_(std::move(h)),
      strand_(boost::asio::make_strand(io)),
      timer_(strand_),
      log_storage_(store) {
  replication::session_replicator::hooks rh;
  rh.placement = [this](const std::string& client) { return placement(client); };
  rh.members = [this] {
    return hooks_.members ? hooks_.members() : std::vector<member>{};
  };
  rh.alive = [this](member m) { return m == settings_.self || !hooks_.alive || hooks_.alive(m); };
  rh.moved = [this](const std::string& client) {
    moving_.erase(client);
    moved_.fetch_add(1);
    spdlog::debug("cluster: session {} moved to its replica set on the ring", client);
  };
  rh.owned = [this](const std::string& client, replication::session_records records,
                    member deposed) { on_owned(client, std::move(records), deposed); };
  rh.fenced = [this](const std::string& client) { on_fenced(client); };
  rh.created = [this](const std::string& client) {
    std::lock_guard lock(logged_mutex_);
    logged_.insert(client);
  };
  rh.handover_asked = [this](const std::string& client, member from) {
    // Only once this node's routes for it are everywhere (see on_owned).
    if (!routed_.contains(client)) return;
    replicator_->hand_over(client, from);
    schedule_flush();
  };
  rh.handed_over = [this](const std::string& client, member) {
    // Messages peers routed here for it before they knew of its new owner
    // may still be on their way: let go once they are in (until then they
    // fail, and are sent again).
    const auto then = [this, client, alive = alive_] {
      if (!alive->load()) return;
      boost::asio::post(strand_, [this, client] {
        if (!stopped_) let_go(client, "is served by another node now");
      });
    };
    if (auto* cluster = broker_.cluster()) {
      cluster->when_forwards_delivered(then);
    } else {
      then();
    }
  };
  replicator_ = std::make_unique<replication::session_replicator>(
      replication::session_replicator::settings{settings_.self, settings_.write_quorum, 64,
                                                settings_.resend_every_ticks},
      log_storage_, std::move(rh));
}

session_replication::~session_replication() { stop(); }

std::error_code session_replication::load() {
  if (auto ec = replicator_->load()) return ec;
  update_views();
  if (replicator_->sessions()) {
    spdlog::info("cluster: {} replicated session logs read from the store",
                 replicator_->sessions());
  }
  return {};
}

bool session_replication::has_log(const std::string& client) const {
  std::lock_guard lock(logged_mutex_);
  return logged_.contains(client);
}

void session_replication::keep_stored_sessions_local() {
  // Sessions recovered from the store's own columns were written while
  // sessions were not replicated: they stay this node's, in its store, until
  // they end (a client that connects elsewhere starts a new one there).
  for (const auto& s : broker_.sessions().all()) local_.insert(s->client_id());
  if (!local_.empty()) {
    spdlog::warn("cluster: {} persistent sessions from before sessions were replicated stay on "
                 "this node until they end",
                 local_.size());
  }
}

void session_replication::start() {
  // Before anything runs on the strand, and before peers hear of this node:
  // the routes of the sessions it puts back are in its first route snapshot.
  restore_own_sessions();
  if (settings_.tick.count() > 0) boost::asio::post(strand_, [this] { schedule_tick(); });
}

void session_replication::restore_own_sessions() {
  // The sessions this node served last, as far as it knows (the newest log
  // installed on it is its own generation: no later owner installed one),
  // are served by nobody until it (or another node) takes them over again;
  // their routes went with this node's previous process. They are put back
  // as the local log holds them, their routes with them, but not served: a
  // message for them fails (its publisher sends it again) until the
  // takeover, or the handover to another node, or the deadline.
  const auto now = settings_.now();
  std::size_t restored = 0;
  for (const auto& [client, replicas] : replicator_->replica_sets()) {
    const auto* log = replicator_->log_of(client);
    if (!log || log->state().log_gen.node != settings_.self) continue;
    restarted_.insert(client);
    replication::session_records records;
    if (!replication::session_replicator::records_of(*log, client, records)) continue;
    auto session = as_session(client, records, now);
    if (!session) continue;
    adopted_[client] = broker_.adopt_session(std::move(*session), now);
    handing_over_[client] = handover_wait{now + settings_.handover_timeout};
    ++restored;
  }
  if (restored) {
    spdlog::info("cluster: {} sessions this node served before it stopped are back, served again "
                 "once taken over",
                 restored);
  }
}

void session_replication::tick_now() {
  boost::asio::post(strand_, [this] {
    if (!stopped_) tick();
  });
}

void session_replication::stop() {
  if (alive_->exchange(false)) {
    // Runs on the strand, after whatever is queued there; the io_context may
    // already be stopped, then nothing of ours runs any more.
    if (settings_.polled) {
      // Nobody else runs the strand: finish here.
      finish_stop();
      return;
    }
    std::promise<void> stopped;
    auto f = stopped.get_future();
    boost::asio::post(strand_, [this, &stopped] {
      finish_stop();
      stopped.set_value();
    });
    f.wait_for(std::chrono::seconds(2));
  }
}

void session_replication::finish_stop() {
  stopped_ = true;
  timer_.cancel();
  for (auto& [client, waiters] : acquiring_) {
    for (auto& w : waiters) w.done(false);
  }
  acquiring_.clear();
}

replication::session_log::config session_replication::placement(const std::string& client) {
  auto replicas = hooks_.preference(client, std::max<std::size_t>(settings_.replication_factor, 1));
  return replication::quorums(settings_.self, std::move(replicas), settings_.write_quorum);
}

// ----- the keeper

void session_replication::append(const std::string& client, std::uint64_t writer,
                                 storage::write_batch&& change,
                                 std::function<void(bool committed)> done) {
  auto data = replication::encode_change(change);
  boost::asio::post(strand_, [this, client, writer, data = std::move(data),
                              done = std::move(done)]() mutable {
    // A change of a session object that the copy loaded from the log since
    // replaced: that copy does not hold it, so the log must not either (it
    // would commit behind the copy's back: a delivery the copy never sent,
    // numbered in its place).
    const auto adopted = adopted_.find(client);
    const bool replaced = writer != 0 && adopted != adopted_.end() && writer < adopted->second;
    if (stopped_ || replaced || !replicator_->propose(client, std::move(data), done)) {
      // Not served here (any more): the change is not made, and what waits
      // for it fails (the client is told, or its connection closed).
      done(false);
      return;
    }
    schedule_flush();
  });
}

// ----- owning

void session_replication::acquire(const std::string& client, std::function<void(bool)> done) {
  boost::asio::post(strand_, [this, client, done = std::move(done)]() mutable {
    if (stopped_) {
      done(false);
      return;
    }
    if (cut_off_.load()) {
      // Another node may be serving it (or about to): refused, the client
      // connects again, here once the peers answer, or elsewhere.
      spdlog::debug("cluster: session {} not acquired: this node is cut off from its cluster",
                    client);
      done(false);
      return;
    }
    if (replicator_->serving(client) && in_doubt_.erase(client) == 0) {
      done(true);
      return;
    }
    auto& waiters = acquiring_[client];
    waiters.push_back({settings_.now() + settings_.acquire_timeout,
                       std::move(done)});
    // One acquisition at a time: a second CONNECT waits for the first's.
    if (waiters.size() == 1) {
      replicator_->acquire(client);
      schedule_flush();
    }
  });
}

void session_replication::on_owned(const std::string& client,
                                   replication::session_records records, member deposed) {
  const auto now = settings_.now();
  handing_over_.erase(client);
  in_doubt_.erase(client);
  if (auto session = as_session(client, records, now)) {
    adopted_[client] = broker_.adopt_session(std::move(*session), now);
  } else {
    // No session in the log (it ended): nothing here may stand for it.
    broker_.let_go_session(client);
    adopted_.erase(client);
  }
  spdlog::debug("cluster: serving session {} ({} records)", client, records.size());
  finish_acquire(client, true);
  // The node that served it lets it go once this node's routes for it are on
  // every live node: until then it keeps matching the session's messages
  // (and fails them, so they are sent again), and no message finds nobody.
  // From then on this node also answers a node that asks for a handover.
  const auto hand_over = [this, client, deposed, alive = alive_] {
    if (!alive->load()) return;
    boost::asio::post(strand_, [this, client, deposed] {
      if (stopped_ || !replicator_->serving(client)) return;
      routed_.insert(client);
      if (deposed == 0) return;
      replicator_->hand_over(client, deposed);
      schedule_flush();
    });
  };
  if (auto* cluster = broker_.cluster()) {
    cluster->when_routes_synced(hand_over);
  } else {
    hand_over();
  }
}

void session_replication::on_fenced(const std::string& client) {
  // The session's changes fail from now on, but it keeps its routes until
  // its new owner hands it over (or at the deadline). Its client is
  // disconnected now: whatever reached it from here from now on would be
  // out of step with the new owner (found by the chaos run: a node back
  // from a partition kept delivering through a session that had moved).
  in_doubt_.erase(client);
  if (auto session = broker_.sessions().find(client)) {
    auto [wait, added] =
        handing_over_.try_emplace(client, handover_wait{settings_.now() + settings_.handover_timeout});
    routed_.erase(client);
    // The new owner's handover may have been sent while this node could not
    // hear it (it was cut off, or paused): asked for at once, since until it
    // comes every message matching the session fails here and is sent again
    // (found by the chaos run: publishers reconnecting for seconds after a
    // partition healed).
    const auto* log = replicator_->log_of(client);
    const auto holder = log ? log->newest_known().node : 0;
    if (added && holder != 0 && holder != settings_.self && hooks_.alive(holder)) {
      ++wait->second.asks;
      replicator_->ask_handover(client, holder);
      schedule_flush();
    }
    if (session->disconnect(codec::reason_code::session_taken_over,
                            "session taken over on another node")) {
      spdlog::info("cluster: session {} was taken over by another node; its client here "
                   "disconnected",
                   client);
    }
  }
  finish_acquire(client, false);
}

void session_replication::set_cut_off(bool off) {
  cut_off_.store(off);
  if (!off) return;
  boost::asio::post(strand_, [this] {
    // Even if the peers answer again by now: another node may have taken
    // these sessions over meanwhile.
    if (stopped_) return;
    std::vector<std::string> served;
    replicator_->for_each_log([&](const std::string& client, const replication::session_log& log) {
      if (log.serving()) served.push_back(client);
    });
    std::size_t disconnected = 0;
    for (auto& client : served) {
      if (auto session = broker_.sessions().find(client)) {
        disconnected += session->disconnect(codec::reason_code::use_another_server,
                                            "this node is cut off from its cluster");
      }
      in_doubt_.insert(std::move(client));
    }
    spdlog::warn("cluster: cut off: {} persistent sessions served here are in doubt, {} of "
                 "their clients disconnected",
                 served.size(), disconnected);
  });
}

void session_replication::let_go(const std::string& client, const char* why) {
  handing_over_.erase(client);
  if (replicator_->serving(client)) return;  // served here again meanwhile
  adopted_.erase(client);
  if (broker_.let_go_session(client)) {
    spdlog::info("cluster: session {} {}; its connection here closed", client, why);
  }
}

void session_replication::finish_acquire(const std::string& client, bool ok) {
  auto it = acquiring_.find(client);
  if (it == acquiring_.end()) return;
  auto waiters = std::move(it->second);
  acquiring_.erase(it);
  for (auto& w : waiters) w.done(ok);
}

void session_replication::on_batch(member from, std::string bytes) {
  boost::asio::post(strand_, [this, from, bytes = std::move(bytes)] {
    if (stopped_) return;
    std::vector<replication::addressed> batch;
    if (!replication::decode_batch(bytes, batch)) {
      if (malformed_.fetch_add(1) == 0) {
        spdlog::warn("cluster: a session log batch from a peer cannot be read (dropped)");
      }
      return;
    }
    replicator_->on_messages(from, std::move(batch));
    schedule_flush();
  });
}

void session_replication::describe(const std::string& client,
                                   std::function<void(std::optional<session_state>)> done) {
  boost::asio::post(strand_, [this, client, done = std::move(done)] {
    const auto* log = stopped_ ? nullptr : replicator_->log_of(client);
    if (!log) return done(std::nullopt);
    session_state s;
    using role = replication::session_log::role;
    s.role = log->serving() ? "owner"
             : log->current_role() == role::replica ? "replica"
                                                    : "candidate";
    const auto gen = log->current_role() == role::replica ? log->promised() : log->generation();
    s.round = gen.round;
    s.generation_owner = gen.node;
    s.replicas = log->replicas();
    s.last_seq = log->last_seq();
    s.committed = log->known_commit();
    if (log->serving()) s.replicas_in_sync = log->replicas_in_sync();
    done(std::move(s));
  });
}

// ----- sending, persisting, ticking

void session_replication::schedule_flush() {
  // Everything queued on the strand before the flush shares its messages and
  // its store batch.
  if (flush_posted_) return;
  flush_posted_ = true;
  boost::asio::post(strand_, [this] {
    flush_posted_ = false;
    flush();
  });
}

void session_replication::flush() {
  if (stopped_) return;
  for (auto seq : replicator_->take_writes()) {
    store_.when_durable(seq, [this, alive = alive_, seq](std::error_code ec) {
      if (!alive->load()) return;
      if (ec) {
        // Not durable: the replies that depend on it are never sent; the
        // owner retries, and an acknowledgement waiting on it fails.
        spdlog::error("cluster: a session log write failed: {}", ec.message());
        return;
      }
      boost::asio::post(strand_, [this, seq] {
        if (stopped_) return;
        replicator_->on_durable(seq);
        schedule_flush();
      });
    });
  }
  for (auto& [to, batch] : replicator_->take_outgoing()) {
    hooks_.send(to, replication::encode_batch(batch));
  }
}

void session_replication::schedule_tick() {
  if (stopped_) return;
  timer_.expires_after(settings_.tick);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    tick();
    schedule_tick();
  });
}

void session_replication::tick() {
  const auto now = settings_.now();
  replicator_->on_tick();
  for (auto it = acquiring_.begin(); it != acquiring_.end();) {
    auto& waiters = it->second;
    std::vector<std::function<void(bool)>> late;
    for (auto w = waiters.begin(); w != waiters.end();) {
      if (now >= w->deadline) {
        late.push_back(std::move(w->done));
        w = waiters.erase(w);
      } else {
        ++w;
      }
    }
    it = waiters.empty() ? acquiring_.erase(it) : std::next(it);
    for (auto& done : late) done(false);
  }
  std::vector<std::string> unclaimed;
  for (auto& [client, wait] : handing_over_) {
    // Cut off: taking anything back is for when the peers answer.
    if (now < wait.deadline || cut_off_.load()) continue;
    wait.deadline = now + settings_.handover_timeout;
    // No handover in time: it was lost, or the node that fenced this one
    // never came to serve the session. The session is not let go blindly
    // (nobody might route its messages then): the newest owner this node
    // knows of is asked for a handover; if it does not answer, or is down,
    // this node takes the session back (and is handed over to, or fenced
    // again, by whoever serves it).
    const auto* log = replicator_->log_of(client);
    const auto holder = log ? log->newest_known().node : 0;
    if (holder != 0 && holder != settings_.self && hooks_.alive(holder) && wait.asks < 2) {
      ++wait.asks;
      replicator_->ask_handover(client, holder);
      continue;
    }
    wait.asks = 0;
    if (log && log->current_role() == replication::session_log::role::replica) {
      if (!may_serve(settings_.self)) {
        // Leaving: never taken back; the others take it over if nobody serves it.
        unclaimed.push_back(client);
        continue;
      }
      spdlog::info("cluster: taking back session {} (no handover from its new owner)", client);
      replicator_->acquire(client);
    }
  }
  for (const auto& client : unclaimed) {
    let_go(client, "is let go without a handover (this node is leaving)");
  }
  if (now - last_orphan_check_ >= settings_.orphan_check) {
    last_orphan_check_ = now;
    // Cut off, every peer may look dead from here while they are not.
    if (!cut_off_.load()) take_over_orphans();
    find_misplaced();
    sessions_.store(replicator_->sessions());
  } else {
    start_moves();
  }
  flush();
}

bool session_replication::may_serve(member m) const {
  if (hooks_.may_serve) return hooks_.may_serve(m);
  return !hooks_.alive || hooks_.alive(m);
}

void session_replication::take_over_orphans() {
  // A session whose last generation belongs to a member that is down (or to
  // this node before it restarted) is served by nobody: its first live
  // replica takes it over, so that its subscriptions route here and its
  // messages queue. So is one whose owner is leaving and asked for its
  // sessions to be taken over (it hands them over as to any new owner).
  const auto check = orphan_checks_.fetch_add(1) + 1;
  bool quiet = true;
  // Looked at without copying every log (a node may keep 100,000s); acted on after.
  std::vector<std::string> restarted, orphaned;
  std::unordered_set<std::string> released;  // of those, the ones a leaving owner let go
  std::size_t in_flight = 0;
  replicator_->for_each_log([&](const std::string& client,
                                const replication::session_log& log) {
    if (log.current_role() == replication::session_log::role::candidate) {
      quiet = false;  // being taken over: served once it is owner
      ++in_flight;
      return;
    }
    if (log.current_role() != replication::session_log::role::replica) return;
    if (acquiring_.contains(client)) {
      quiet = false;
      return;
    }
    if (restarted_.contains(client)) {
      restarted.push_back(client);
      return;
    }
    const auto holder = log.newest_known().node;
    if (holder != 0 && may_serve(holder)) return;
    member first_alive = 0;
    for (auto r : log.replicas()) {
      if (may_serve(r)) {  // this node too, unless it is leaving
        first_alive = r;
        break;
      }
    }
    if (first_alive == settings_.self && orphaned.size() < settings_.max_takeovers) {
      orphaned.push_back(client);
      if (holder != 0 && hooks_.alive && hooks_.alive(holder)) released.insert(client);
    }
  });
  for (const auto& client : restarted) {
    // Served here last before this node restarted: taken back by this node,
    // whatever its place among the replicas (the others see it alive and
    // would wait for it).
    restarted_.erase(client);
    spdlog::info("cluster: taking back session {} (served here before a restart)", client);
    replicator_->acquire(client);
    quiet = false;
  }
  // At most max_takeovers under way at once: with 100,000 sessions to take
  // over (a member that left or died), starting them all at once swamps
  // every replica, and acquisitions then time out and start again.
  const auto room = in_flight >= settings_.max_takeovers ? 0 : settings_.max_takeovers - in_flight;
  if (orphaned.size() > room) {
    orphaned.resize(room);
    quiet = false;
  }
  for (const auto& client : orphaned) {
    spdlog::info("cluster: taking over session {} ({})", client,
                 released.contains(client) ? "its owner is leaving" : "its owner is down");
    replicator_->acquire(client);
    quiet = false;
  }
  if (quiet) quiet_check_.store(check);
}

void session_replication::find_misplaced() {
  // A served session whose replica set is not the one the ring gives it now
  // (a member joined or left) is to move there. Looked for with the orphans;
  // moved a batch at a time by start_moves().
  std::erase_if(moving_, [this](const std::string& client) {
    const auto* log = replicator_->log_of(client);
    return !log || !log->moving();
  });
  const auto now = settings_.now();
  const auto version = hooks_.ring_version ? hooks_.ring_version() : 0;
  const bool full = !hooks_.ring_version || version != ring_version_seen_ || misplaced_left_ ||
                    now - last_full_look_ >= std::chrono::seconds(10);
  if (full) {
    misplaced_queue_.clear();
    ring_version_seen_ = version;
    last_full_look_ = now;
  }
  std::size_t owned = 0, short_of_copies = 0, arriving = 0;
  replicator_->for_each_log([&](const std::string& client, const replication::session_log& log) {
    if (log.current_role() == replication::session_log::role::candidate) ++arriving;
    if (!log.serving()) return;
    ++owned;
    if (log.replicas_in_sync() < log.replicas().size()) ++short_of_copies;
    if (!full) return;
    auto wanted = placement(client).replicas;
    auto have = log.replicas();
    std::sort(wanted.begin(), wanted.end());
    std::sort(have.begin(), have.end());
    if (wanted != have) misplaced_queue_.push_back(client);
  });
  owned_.store(owned);
  under_replicated_.store(short_of_copies);
  arriving_.store(arriving);
  handing_over_count_.store(handing_over_.size());
  handoff_sent_.store(replicator_->install_bytes_sent());
  handoff_received_.store(replicator_->install_bytes_received());
  replica_lag_ms_.store(static_cast<std::int64_t>(replicator_->replica_lag_ticks()) *
                        settings_.tick.count());
  if (full) misplaced_left_ = !misplaced_queue_.empty() || !moving_.empty();
  misplaced_.store(misplaced_queue_.size() + moving_.size());
  start_moves();
}

void session_replication::start_moves() {
  // Each move is a new generation installed on both sets, the session served
  // all along; at most max_moves at once, topped up every tick as they end.
  std::erase_if(moving_, [this](const std::string& client) {
    const auto* log = replicator_->log_of(client);
    return !log || !log->moving();
  });
  while (moving_.size() < settings_.max_moves && !misplaced_queue_.empty()) {
    auto client = std::move(misplaced_queue_.front());
    misplaced_queue_.pop_front();
    if (moving_.contains(client)) continue;
    if (replicator_->move(client)) moving_.insert(std::move(client));
  }
  moving_count_.store(moving_.size());
  if (!moving_.empty() || !misplaced_queue_.empty()) schedule_flush();
}

void session_replication::update_views() {
  sessions_.store(replicator_->sessions());
  owned_.store(replicator_->owned_sessions());
  under_replicated_.store(replicator_->under_replicated());
}

}  // namespace ringmq::cluster
