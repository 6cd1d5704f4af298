// Routes, forwarding and retained replication: this node's route changes
// numbered and sent to every peer, the SUBACK wait, publishing to the nodes
// whose routes match, and what arrives on the streams peers opened to this
// node (docs/cluster.md, "Routes", "Cross-node publish", "Retained messages").
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <boost/asio/post.hpp>

#include "broker/codec/topic.hpp"
#include "broker/core/journal.hpp"
#include "cluster/cluster_node.hpp"
#include "cluster/session_replication.hpp"
#include "cluster/wire.hpp"

namespace ringmq::cluster {

namespace {

constexpr origin_index self_index = 0;

bool is_shared(const std::string& filter) { return filter.starts_with("$share/"); }

std::string group_key(const route_table::shared_group& g) {
  std::string key;
  key.reserve(8 + g.name.size() + g.filter.size());
  key.append("$share/").append(g.name).append("/").append(g.filter);
  return key;
}

// What a queued message costs in a peer's queue bound.
std::size_t item_bytes(const core::message& m) { return m.topic.size() + m.payload.size() + 64; }

}  // namespace

// ----- this node's routes

void cluster_node::local_route_added(const std::string& filter) { local_route_changed(filter, 1); }

void cluster_node::local_route_removed(const std::string& filter) {
  local_route_changed(filter, -1);
}

void cluster_node::local_route_changed(const std::string& filter, int delta) {
  std::lock_guard lock(routes_mutex_);
  auto& count = local_counts_[filter];
  const auto before = count;
  count = delta > 0 ? count + 1 : (count > 0 ? count - 1 : 0);
  const auto after = count;
  if (after == 0) local_counts_.erase(filter);
  // A plain filter is announced when its first local subscription comes and
  // its last goes; a shared group with every change of its member count.
  const auto announced = [&](std::uint32_t c) -> std::uint32_t {
    return is_shared(filter) ? c : (c > 0 ? 1 : 0);
  };
  if (announced(before) == announced(after)) return;
  table_.set(self_index, filter, announced(after));
  const auto seq = route_seq_.fetch_add(1) + 1;
  const auto& peers = peers_for_this_thread();
  if (peers.all.empty()) return;
  v1::PeerFrame f;
  auto* d = f.mutable_route_delta();
  d->set_seq(seq);
  d->mutable_route()->set_filter(filter);
  d->mutable_route()->set_count(announced(after));
  // Dead peers too: a stream to one may be open, or opening with a snapshot
  // taken before this change, and carry on once the peer answers again (a
  // partition heals). A delta left out then would be missing from the peer's
  // table for good. Without a stream, the next one's snapshot has it.
  for (const auto& link : peers.all) {
    v1::PeerFrame copy = f;
    link->enqueue_restated(std::move(copy));
  }
  // The router's write lock is held here: the writes start on the cluster
  // thread, so that no publisher waits for a batch to be serialized.
  if (!stopping_) {
    boost::asio::post(io_, [this] {
      for (const auto& link : all_links()) link->pump();
    });
  }
}

void cluster_node::opening_frames(
    peer_link& link, const std::function<void(std::vector<v1::PeerFrame>&&)>& put_first) {
  std::vector<v1::PeerFrame> frames(1);
  auto* hello = frames[0].mutable_hello();
  hello->set_node(settings_.node_id);
  hello->set_cluster_name(settings_.name);
  hello->set_boot_id(boot_id_);
  hello->set_peer_boot_id(link.peer_boot_id());
  hello->set_resend_below_seq(link.resend_below());
  {
    std::lock_guard lock(members_mutex_);
    members_.to_proto(*hello->mutable_members());
  }
  hello->mutable_members()->set_cluster_name(settings_.name);
  std::vector<v1::PeerFrame> registrations;
  register_with(link, registrations);
  std::lock_guard lock(routes_mutex_);
  auto& snapshot = *frames.emplace_back().mutable_route_snapshot();
  snapshot.set_seq(route_seq_.load());
  for (auto& r : table_.routes_of(self_index)) {
    auto* route = snapshot.add_routes();
    route->set_filter(std::move(r.filter));
    route->set_count(r.count);
  }
  auto* digest = frames.emplace_back().mutable_retained_digest();
  digest->set_digest(broker_.retained().digest());
  digest->set_count(broker_.retained().replicated_count());
  for (auto& r : registrations) frames.push_back(std::move(r));
  put_first(std::move(frames));
}

// ----- the SUBACK wait

std::uint64_t cluster_node::route_seq_synced_to_peers() const {
  auto synced = std::numeric_limits<std::uint64_t>::max();
  for (const auto& link : all_links()) {
    if (!link->dead()) synced = std::min(synced, link->acked_route_seq());
  }
  return synced;
}

bool cluster_node::routes_synced_to_peers(std::uint64_t seq) const {
  return seq <= route_seq_synced_to_peers();
}

void cluster_node::when_routes_synced(std::function<void()> done) {
  const auto seq = route_seq_.load();
  if (peers_for_this_thread().all.empty() || routes_synced_to_peers(seq)) {
    done();
    return;
  }
  const auto now = now_ms();
  {
    std::lock_guard lock(waiters_mutex_);
    route_waiters_.push_back(
        {seq, now, now + settings_.route_sync_timeout.count(), std::move(done)});
  }
  // An acknowledgement may have come in between.
  check_route_waiters(now);
}

void cluster_node::check_route_waiters(std::int64_t now) {
  std::vector<route_waiter> ready;
  std::vector<route_waiter> late;
  {
    std::lock_guard lock(waiters_mutex_);
    if (route_waiters_.empty()) return;
    // Once for all of them: thousands wait at once when many clients
    // subscribe together (a failover's reconnections).
    const auto synced = route_seq_synced_to_peers();
    for (auto it = route_waiters_.begin(); it != route_waiters_.end();) {
      if (it->seq <= synced) {
        ready.push_back(std::move(*it));
      } else if (now >= it->deadline_ms || stopping_) {
        late.push_back(std::move(*it));
      } else {
        ++it;
        continue;
      }
      it = route_waiters_.erase(it);
    }
  }
  for (auto& w : ready) {
    observe("route_sync", static_cast<double>(now - w.started_ms) / 1000.0);
    w.done();
  }
  for (auto& w : late) {
    std::string behind;
    for (const auto& link : all_links()) {
      if (!link->dead() && link->acked_route_seq() < w.seq) {
        if (!behind.empty()) behind += ",";
        behind += link->id();
      }
    }
    route_sync_timeouts_.fetch_add(1);
    spdlog::warn("cluster: route sync timed out: a SUBACK waited {} ms for peers={} (seq {}); "
                 "sent anyway",
                 now - w.started_ms, behind, w.seq);
    observe("route_sync", static_cast<double>(now - w.started_ms) / 1000.0);
    w.done();
  }
}

// ----- publishing

std::size_t cluster_node::publish(const core::message_ptr& m,
                                  const core::retained_version* retained,
                                  std::vector<std::string>& local_groups,
                                  bool& groups_decided) {
  const auto& peers = peers_for_this_thread();
  if (peers.all.empty()) return 0;  // a node alone: nothing to send
  struct target {
    bool plain = false;
    std::vector<std::string> groups;
    bool used = false;
  };
  thread_local std::vector<target> targets;
  targets.assign(peers.by_index.size(), target{});
  const auto usable = [&](origin_index o) {
    return o == self_index ||
           (o < peers.by_index.size() && peers.by_index[o] && !peers.by_index[o]->dead());
  };
  table_.match(
      m->topic,
      [&](origin_index o) {
        if (o != self_index && o < targets.size()) targets[o].plain = targets[o].used = true;
      },
      [&](const route_table::shared_group& g) {
        groups_decided = true;
        // Round robin over the group's members cluster-wide: nodes receive
        // messages in proportion to the members they have.
        std::uint64_t total = 0;
        for (const auto& [o, count] : g.members) {
          if (usable(o)) total += count;
        }
        if (total == 0) return;
        auto pick = g.cursor.fetch_add(1, std::memory_order_relaxed) % total;
        for (const auto& [o, count] : g.members) {
          if (!usable(o)) continue;
          if (pick >= count) {
            pick -= count;
            continue;
          }
          if (o == self_index) {
            local_groups.push_back(group_key(g));
          } else if (o < targets.size()) {
            targets[o].groups.push_back(group_key(g));
            targets[o].used = true;
          }
          return;
        }
      });
  std::size_t sent = 0;
  // A QoS 1/2 message is acknowledged to its publisher only once every node
  // it goes to for delivery has settled it (made its copies durable there).
  const bool settle = m->qos != codec::qos::at_most_once;
  const auto queued_at = settle ? now_ms() : 0;
  for (origin_index o = 1; o < targets.size(); ++o) {
    auto& t = targets[o];
    const auto& link = peers.by_index[o];
    const bool deliver = t.used && link && !link->dead();
    if (settle && t.used && link && link->dead()) {
      // Matched the routes of a node that just died (kept for a grace with
      // replicated sessions, on_peer_dead): a session of it may be moving,
      // so the message is not acknowledged as if nobody wanted it.
      auto failed = core::thread_keeper_wait();
      failed->add();
      failed->finish(false);
      link->counters.settle_failed.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (!deliver && !(retained && link && !link->dead())) continue;
    outbound_item item;
    item.what = deliver ? outbound_item::kind::forward : outbound_item::kind::retained;
    item.msg = m;
    item.plain = t.plain;
    item.groups = std::move(t.groups);
    if (retained) item.version = *retained;
    item.bytes = item_bytes(*m);
    if (settle && deliver) {
      item.settle = core::thread_keeper_wait();
      item.settle->add();
      item.queued_at_ms = queued_at;
    }
    if (link->enqueue_message(std::move(item)) && deliver) ++sent;
  }
  return sent;
}

void cluster_node::when_forwards_delivered(std::function<void()> done) {
  barrier_wait w;
  for (const auto& link : peers()->all) {
    if (!link->dead()) w.peers.insert(link->id());
  }
  if (w.peers.empty()) return done();
  w.deadline_ms = now_ms() + settings_.route_sync_timeout.count();
  w.done = std::move(done);
  std::uint64_t token = 0;
  const auto asked = w.peers;
  {
    std::lock_guard lock(barrier_mutex_);
    token = next_barrier_++;
    barriers_.emplace(token, std::move(w));
  }
  for (const auto& id : asked) {
    auto link = link_by_id(id);
    if (!link) continue;
    v1::PeerFrame f;
    f.mutable_barrier()->set_token(token);
    link->enqueue_frame(std::move(f));
  }
}

void cluster_node::barrier_reached(const std::string& peer,
                                   const std::vector<std::uint64_t>& tokens) {
  std::vector<std::function<void()>> done;
  {
    std::lock_guard lock(barrier_mutex_);
    for (auto t : tokens) {
      auto it = barriers_.find(t);
      if (it == barriers_.end()) continue;
      it->second.peers.erase(peer);
      if (!it->second.peers.empty()) continue;
      done.push_back(std::move(it->second.done));
      barriers_.erase(it);
    }
  }
  for (auto& d : done) d();
}

void cluster_node::expire_barriers(std::int64_t now) {
  std::vector<std::function<void()>> done;
  {
    std::lock_guard lock(barrier_mutex_);
    if (barriers_.empty()) return;
    for (auto it = barriers_.begin(); it != barriers_.end();) {
      auto& w = it->second;
      std::erase_if(w.peers, [&](const std::string& id) {
        auto link = link_by_id(id);
        return !link || link->dead();
      });
      if (!w.peers.empty() && now < w.deadline_ms) {
        ++it;
        continue;
      }
      if (!w.peers.empty()) {
        spdlog::warn("cluster: no barrier answer from {} peers in time; going on",
                     w.peers.size());
      }
      done.push_back(std::move(w.done));
      it = barriers_.erase(it);
    }
  }
  for (auto& d : done) d();
}

bool cluster_node::recompute_routes_incomplete() const {
  bool incomplete = false;
  for (const auto& link : all_links()) {
    if (link->dead()) continue;
    std::lock_guard lock(link->inbound_mutex);
    if (!link->inbound.routes_synced) {
      incomplete = true;
      break;
    }
  }
  routes_incomplete_.store(incomplete, std::memory_order_release);
  return incomplete;
}

bool cluster_node::can_settle(std::string_view topic) const {
  // Cut off: the subscribers on the other side cannot be reached, and this
  // node's own persistent sessions may be served elsewhere by now.
  if (cut_off()) return false;
  // Just started (or a peer's stream started over): its subscribers are not
  // known here yet. Found in a full-cluster restart by the chaos run: the
  // first node up acknowledged messages that reached no persistent session.
  if (routes_incomplete_.load(std::memory_order_acquire) && recompute_routes_incomplete()) {
    return false;
  }
  if (departed_count_.load(std::memory_order_acquire) == 0) return true;
  const auto& peers = peers_for_this_thread();
  const auto departed = [&](origin_index o) {
    return o != self_index && o < peers.by_index.size() && peers.by_index[o] &&
           peers.by_index[o]->dead();
  };
  std::shared_ptr<peer_link> blocking;
  table_.match(
      topic,
      [&](origin_index o) {
        if (!blocking && departed(o)) blocking = peers.by_index[o];
      },
      [&](const route_table::shared_group& g) {
        // A group is served by its live members; only when none is left
        // would the message be for the dead node's members alone.
        bool live = false;
        origin_index dead = 0;
        for (const auto& [o, count] : g.members) {
          if (departed(o)) {
            dead = o;
          } else if (o == self_index || (o < peers.by_index.size() && peers.by_index[o])) {
            live = true;
          }
        }
        if (!live && dead && !blocking) blocking = peers.by_index[dead];
      });
  if (!blocking) return true;
  blocking->counters.settle_failed.fetch_add(1, std::memory_order_relaxed);
  return false;
}

// ----- answers on this node's streams

void cluster_node::on_peer_response(peer_link& link, v1::PeerBatch& batch) {
  const auto now = now_ms();
  link.heard(now);
  bool acked = false;
  for (auto& f : *batch.mutable_frames()) {
    switch (f.kind_case()) {
      case v1::PeerFrame::kHelloAck:
        link.set_peer_boot_id(f.hello_ack().boot_id());
        if (f.hello_ack().members().cluster_name() == settings_.name) {
          apply_members(member_set::from_proto(f.hello_ack().members()), "hello");
        }
        break;
      case v1::PeerFrame::kRouteAck:
        link.on_route_ack(f.route_ack().seq());
        acked = true;
        break;
      case v1::PeerFrame::kForwardAck:
        link.on_forward_ack(f.forward_ack().seq(), {f.forward_ack().failed().begin(),
                                                    f.forward_ack().failed().end()});
        break;
      case v1::PeerFrame::kResync:
        if (f.resync().routes()) {
          std::lock_guard lock(routes_mutex_);
          v1::PeerFrame s;
          auto* snapshot = s.mutable_route_snapshot();
          snapshot->set_seq(route_seq_.load());
          for (auto& r : table_.routes_of(self_index)) {
            auto* route = snapshot->add_routes();
            route->set_filter(std::move(r.filter));
            route->set_count(r.count);
          }
          spdlog::info("cluster: {} asked for this node's routes again (digests differed)",
                       link.id());
          link.enqueue_frame(std::move(s));
        }
        if (f.resync().retained()) send_retained_snapshot(link);
        break;
      case v1::PeerFrame::kHeartbeat:
        if (f.heartbeat().answers_sent_at_ms() > 0) {
          link.confirmed(f.heartbeat().answers_sent_at_ms());
          extend_lease(now);
        }
        break;
      default:
        break;
    }
  }
  if (acked) check_route_waiters(now);
}

void cluster_node::send_retained_snapshot(peer_link& link) {
  static constexpr int per_frame = 256;
  std::vector<v1::PeerFrame> frames(1);
  const auto now = core::clock::now();
  broker_.retained().for_each_versioned(
      [&](const std::string& topic, const core::message_ptr& m, const core::retained_version& v) {
        auto* snapshot = frames.back().mutable_retained_snapshot();
        if (snapshot->entries_size() >= per_frame) {
          snapshot = frames.emplace_back().mutable_retained_snapshot();
        }
        auto* e = snapshot->add_entries();
        if (m) {
          to_wire(*m, now, *e->mutable_message());
        } else {
          e->mutable_message()->set_topic(topic);
          e->mutable_message()->set_retain(true);
        }
        to_wire(v, *e->mutable_version());
      });
  frames.back().mutable_retained_snapshot()->set_last(true);
  spdlog::debug("cluster: sending retained snapshot to {}: frames={}", link.id(), frames.size());
  for (auto& f : frames) link.enqueue_frame(std::move(f));
}

void cluster_node::on_stream_done(peer_link& link, const grpc::Status& status) {
  if (stopping_ || status.ok()) return;
  if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
    spdlog::error("cluster: {} refused this node's stream: {}", link.id(),
                  status.error_message());
  } else {
    // Info: streams end rarely outside of failures, and a peer that keeps
    // ending this node's streams leaves it without this node's routes.
    spdlog::info("cluster: stream to {} ended: {} ({})", link.id(), status.error_message(),
                 static_cast<int>(status.error_code()));
  }
}

// ----- streams peers opened to this node

void cluster_node::on_inbound_batch(inbound_handle& stream, std::shared_ptr<peer_link>& origin,
                                    const v1::PeerBatch& batch, inbound_result& result) {
  const auto now = now_ms();
  std::vector<const v1::PeerFrame*> messages;
  std::vector<std::uint64_t> barriers;  // BarrierDone tokens in this batch
  bool routes_changed = false;
  bool sync_changed = false;  // readiness may follow
  std::uint64_t applied = 0;
  // Numbered messages: the highest new one, and whether any came at all
  // (resends of ones it had are answered with the settlement as it is).
  std::uint64_t last_new_seq = 0;
  bool numbered = false;
  std::vector<std::uint64_t> stale;  // meant for an earlier process of this node
  for (const auto& f : batch.frames()) {
    if (!origin) {
      if (f.kind_case() != v1::PeerFrame::kHello) {
        result.finish = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                     "the first frame of a stream is a Hello");
        return;
      }
      const auto& hello = f.hello();
      if (hello.cluster_name() != settings_.name) {
        spdlog::error("cluster: refused a stream from {} of cluster \"{}\" (this is \"{}\")",
                      hello.node(), hello.cluster_name(), settings_.name);
        result.finish = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                     "cluster name \"" + hello.cluster_name() + "\" is not \"" +
                                         settings_.name + "\"");
        return;
      }
      apply_members(member_set::from_proto(hello.members()), "hello");
      origin = link_by_id(hello.node());
      if (!origin) {
        result.finish = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                     hello.node() + " is not a member of cluster " +
                                         settings_.name);
        return;
      }
      bool restarted = false;
      {
        std::lock_guard lock(origin->inbound_mutex);
        auto& in = origin->inbound;
        if (in.stream && in.stream != &stream) static_cast<inbound_handle*>(in.stream)->cancel();
        restarted = in.boot_id != 0 && in.boot_id != hello.boot_id();
        in = inbound_state{};
        in.boot_id = hello.boot_id();
        in.stream = &stream;
        // Resent messages meant for an earlier process of this node are not
        // delivered by this one; for this process, those it had are skipped.
        if (hello.peer_boot_id() != 0 && hello.peer_boot_id() != boot_id_) {
          in.discard_below = hello.resend_below_seq();
        }
        if (origin->delivered_boot != hello.boot_id()) {
          origin->delivered_boot = hello.boot_id();
          origin->delivered_seq = 0;
          origin->settlement.reset();
        }
      }
      sync_changed = true;
      // Client ids it held before a restart are gone with that process.
      if (restarted) forget_holders_of(origin->index(), hello.boot_id());
      origin->heard(now);
      // It is up: this node's own stream to it need not wait for its backoff.
      if (!origin->stream_open()) {
        origin->retry_now();
        if (!stopping_) {
          boost::asio::post(io_, [this, link = origin] { link->maintain(now_ms()); });
        }
      }
      auto& ack = *result.replies.emplace_back().mutable_hello_ack();
      ack.set_node(settings_.node_id);
      ack.set_boot_id(boot_id_);
      {
        std::lock_guard lock(members_mutex_);
        members_.to_proto(*ack.mutable_members());
      }
      ack.mutable_members()->set_cluster_name(settings_.name);
      continue;
    }
    switch (f.kind_case()) {
      case v1::PeerFrame::kRouteSnapshot: {
        std::vector<route_entry> routes;
        for (const auto& r : f.route_snapshot().routes()) {
          routes.push_back({r.filter(), r.count()});
        }
        std::lock_guard lock(origin->inbound_mutex);
        auto& in = origin->inbound;
        if (in.stream != &stream) break;
        table_.replace(origin->index(), routes);
        in.applied_route_seq = f.route_snapshot().seq();
        if (!in.routes_synced) {
          spdlog::info("cluster: routes of {} received: routes={}", origin->id(), routes.size());
          sync_changed = true;
        }
        in.routes_synced = true;
        routes_changed = true;
        applied = in.applied_route_seq;
        break;
      }
      case v1::PeerFrame::kRouteDelta: {
        std::lock_guard lock(origin->inbound_mutex);
        auto& in = origin->inbound;
        // Deltas the snapshot already contains are skipped.
        if (in.stream != &stream || f.route_delta().seq() <= in.applied_route_seq) break;
        // After the snapshot a stream carries every delta, numbered one by
        // one: a gap is a change this table missed, so the whole set comes again.
        if (in.routes_synced && f.route_delta().seq() != in.applied_route_seq + 1) {
          spdlog::warn("cluster: routes of {} skipped from seq {} to {}; asking for a snapshot",
                       origin->id(), in.applied_route_seq, f.route_delta().seq());
          result.replies.emplace_back().mutable_resync()->set_routes(true);
        }
        table_.set(origin->index(), f.route_delta().route().filter(),
                   f.route_delta().route().count());
        in.applied_route_seq = f.route_delta().seq();
        routes_changed = true;
        applied = in.applied_route_seq;
        break;
      }
      case v1::PeerFrame::kRouteDigest: {
        std::lock_guard lock(origin->inbound_mutex);
        const auto& d = f.route_digest();
        const auto& in = origin->inbound;
        if (in.stream != &stream || !in.routes_synced) break;
        // Every delta up to the digest's seq came before it on this stream:
        // a table behind it missed one.
        if (d.seq() != in.applied_route_seq ||
            table_.digest_of(origin->index()) != d.digest() ||
            table_.count_of(origin->index()) != d.count()) {
          spdlog::warn("cluster: routes of {} diverged (digest at seq {}, applied up to {}); "
                       "asking for a snapshot",
                       origin->id(), d.seq(), in.applied_route_seq);
          result.replies.emplace_back().mutable_resync()->set_routes(true);
        }
        break;
      }
      case v1::PeerFrame::kForward:
      case v1::PeerFrame::kRetained: {
        const auto seq = f.kind_case() == v1::PeerFrame::kForward ? f.forward().seq()
                                                                  : f.retained().seq();
        std::lock_guard lock(origin->inbound_mutex);
        if (origin->inbound.stream != &stream) break;
        if (seq != 0) {
          numbered = true;
          if (seq <= origin->delivered_seq) break;  // a resend of one it had
          origin->delivered_seq = seq;
          last_new_seq = seq;
          if (seq < origin->inbound.discard_below) {
            // The earlier process may have lost it: its publisher is told so.
            dropped_stale_.fetch_add(1);
            stale.push_back(seq);
            break;
          }
        }
        messages.push_back(&f);
        break;
      }
      case v1::PeerFrame::kRetainedDigest: {
        const auto& d = f.retained_digest();
        const bool same = d.digest() == broker_.retained().digest() &&
                          d.count() == broker_.retained().replicated_count();
        std::lock_guard lock(origin->inbound_mutex);
        auto& in = origin->inbound;
        if (same) {
          in.retained_mismatches = 0;
          if (!in.retained_synced) {
            spdlog::info("cluster: retained messages of {} compared: equal", origin->id());
            sync_changed = true;
          }
          in.retained_synced = true;
          break;
        }
        // After the Hello a difference means a snapshot at once; later, writes
        // in flight differ for a moment, so only two differences in a row do.
        ++in.retained_mismatches;
        const bool initial = !in.retained_synced;
        if (!in.retained_pull_pending && (initial || in.retained_mismatches >= 2)) {
          in.retained_pull_pending = true;
          result.replies.emplace_back().mutable_resync()->set_retained(true);
        }
        break;
      }
      case v1::PeerFrame::kRetainedSnapshot: {
        std::size_t applied_entries = 0;
        const auto at = core::clock::now();
        for (const auto& e : f.retained_snapshot().entries()) {
          auto m = from_wire(e.message(), at);
          if (!m) {
            dropped_malformed_.fetch_add(1);
            continue;
          }
          m->retain = true;
          if (broker_.apply_retained(m, from_wire(e.version()))) ++applied_entries;
        }
        std::lock_guard lock(origin->inbound_mutex);
        auto& in = origin->inbound;
        if (f.retained_snapshot().last()) {
          if (!in.retained_synced) {
            spdlog::info("cluster: retained messages of {} merged", origin->id());
            sync_changed = true;
          }
          in.retained_pull_pending = false;
          in.retained_synced = true;
          in.retained_mismatches = 0;
        }
        break;
      }
      case v1::PeerFrame::kMembers:
        if (f.members().members().cluster_name() == settings_.name) {
          apply_members(member_set::from_proto(f.members().members()), "peer");
        }
        break;
      case v1::PeerFrame::kRelease:
        on_release(*origin, f.release());
        break;
      case v1::PeerFrame::kRegister:
        on_register(*origin, f.register_());
        break;
      case v1::PeerFrame::kHeartbeat:
        if (f.heartbeat().epoch() > 0) {
          origin->record_placement(f.heartbeat().epoch(), f.heartbeat().misplaced_sessions(),
                                   now_ms());
          origin->record_releasing(f.heartbeat().releasing_sessions());
        }
        {
          auto* answer = result.replies.emplace_back().mutable_heartbeat();
          answer->set_sent_at_ms(now);
          answer->set_answers_sent_at_ms(f.heartbeat().sent_at_ms());
        }
        break;
      case v1::PeerFrame::kSessionsTakenOver:
        // Its routes, ahead of it on this stream, are applied: the cluster
        // thread may drop the dead node's.
        if (!stopping_) {
          boost::asio::post(io_, [this, from = origin, node = f.sessions_taken_over().node()] {
            on_sessions_taken_over(*from, node);
            expire_departed_routes(now_ms());
          });
        }
        break;
      case v1::PeerFrame::kBarrier:
        // Answered on this node's own stream to the asker, behind what is
        // queued there for it.
        if (auto back = link_by_id(origin->id())) {
          v1::PeerFrame done;
          done.mutable_barrier_done()->set_token(f.barrier().token());
          back->enqueue_frame(std::move(done));
        }
        break;
      case v1::PeerFrame::kBarrierDone:
        barriers.push_back(f.barrier_done().token());
        break;
      case v1::PeerFrame::kSessionLog:
        if (replication_) {
          if (const auto from = member_number_of(origin->id())) {
            replication_->on_batch(from, f.session_log().batch());
          }
        }
        break;
      default:
        break;  // a frame of a newer protocol version: skipped
    }
  }
  if (origin) origin->heard(now);
  if (sync_changed) readiness_may_have_changed();
  if (routes_changed) result.replies.emplace_back().mutable_route_ack()->set_seq(applied);
  if (numbered) {
    forward_settlement::ticket ticket = 0;
    if (last_new_seq != 0) {
      std::lock_guard lock(origin->inbound_mutex);
      ticket = origin->settlement.begin(last_new_seq);
      if (messages.empty()) origin->settlement.finish(ticket, std::move(stale));
    }
    if (!messages.empty()) deliver_forwarded(*origin, messages, ticket, std::move(stale));
    std::lock_guard lock(origin->inbound_mutex);
    auto ack = settlement_frame(*origin, true);
    if (ack) result.replies.push_back(std::move(*ack));
  }
  if (!barriers.empty() && origin) {
    // On the worker that delivers this peer's messages, after those before.
    post_(origin->index(), [this, peer = origin->id(), barriers = std::move(barriers)] {
      barrier_reached(peer, barriers);
    });
  }
}

std::optional<v1::PeerFrame> cluster_node::settlement_frame(peer_link& origin, bool restate) {
  std::uint64_t settled = 0;
  std::vector<std::uint64_t> failed;
  if (!origin.settlement.take(settled, failed)) {
    // A resend of messages it had gets the settlement as it stands.
    if (!restate || origin.settlement.settled() == 0) return std::nullopt;
    settled = origin.settlement.settled();
  }
  v1::PeerFrame f;
  auto* ack = f.mutable_forward_ack();
  ack->set_seq(settled);
  for (auto seq : failed) ack->add_failed(seq);
  return f;
}

void cluster_node::settle_forwarded(const std::shared_ptr<peer_link>& origin,
                                    forward_settlement::ticket ticket,
                                    std::vector<std::uint64_t> failed) {
  std::lock_guard lock(origin->inbound_mutex);
  origin->settlement.finish(ticket, std::move(failed));
  // Told on the stream the peer has open now; with none, with the next batch.
  auto* stream = static_cast<inbound_handle*>(origin->inbound.stream);
  if (!stream) return;
  if (auto ack = settlement_frame(*origin, false)) {
    std::vector<v1::PeerFrame> frames;
    frames.push_back(std::move(*ack));
    stream->reply(std::move(frames));
  }
}

void cluster_node::deliver_forwarded(peer_link& origin,
                                     std::vector<const v1::PeerFrame*>& frames,
                                     forward_settlement::ticket ticket,
                                     std::vector<std::uint64_t> stale) {
  struct forwarded {
    core::message_ptr msg;
    bool plain = false;
    std::vector<std::string> groups;
    std::optional<core::retained_version> version;
    std::uint64_t seq = 0;
  };
  std::vector<forwarded> items;
  items.reserve(frames.size());
  const auto now = core::clock::now();
  for (const auto* f : frames) {
    forwarded item;
    if (f->kind_case() == v1::PeerFrame::kForward) {
      const auto& fw = f->forward();
      item.msg = from_wire(fw.message(), now);
      item.plain = fw.plain();
      item.groups.assign(fw.groups().begin(), fw.groups().end());
      if (fw.has_retained()) item.version = from_wire(fw.retained());
      item.seq = fw.seq();
    } else {
      const auto& e = f->retained().entry();
      item.msg = from_wire(e.message(), now);
      item.version = from_wire(e.version());
      item.seq = f->retained().seq();
    }
    if (!item.msg) {
      dropped_malformed_.fetch_add(1);
      continue;
    }
    items.push_back(std::move(item));
  }
  origin.counters.forwarded_in.fetch_add(items.size(), std::memory_order_relaxed);
  // One task per batch, always on the same worker for the same peer: the
  // peer's order is kept.
  origin.delivery_posted();
  post_(origin.index(), [this, link = origin.shared_from_this(), items = std::move(items), ticket,
                          stale = std::move(stale)]() mutable {
    if (cut_off()) {
      // The sessions these are for may be served elsewhere by now (this
      // node was paused or cut off): delivered nowhere, failed back to
      // their publishers, who send them again.
      link->delivery_done();
      auto failed = std::move(stale);
      for (const auto& f : items) failed.push_back(f.seq);
      settle_forwarded(link, ticket, std::move(failed));
      return;
    }
    // Only what these messages write counts for their settlement.
    core::take_commit_watermark();
    core::take_keeper_wait();
    const auto at = core::clock::now();
    for (const auto& f : items) {
      core::delivery_scope scope;
      scope.plain = f.plain;
      scope.groups = &f.groups;
      broker_.deliver_forwarded(f.msg, scope, f.version ? &*f.version : nullptr, at);
    }
    link->delivery_done();
    // Settled once the copies they made are durable: in the store, and in
    // the replicated logs of the sessions they were queued to. When any
    // could not be kept, the whole batch is told failed (its publishers
    // resend; a duplicate is better than a loss).
    struct pending {
      std::atomic<int> waits{1};
      std::atomic<bool> failed{false};
    };
    auto state = std::make_shared<pending>();
    auto seqs = std::make_shared<std::vector<std::uint64_t>>();
    for (const auto& f : items) seqs->push_back(f.seq);
    auto done = [this, link, ticket, state, seqs, stale = std::move(stale)](bool ok) mutable {
      if (!ok) state->failed.store(true);
      if (state->waits.fetch_sub(1) != 1) return;
      auto failed = std::move(stale);
      if (state->failed.load()) failed.insert(failed.end(), seqs->begin(), seqs->end());
      settle_forwarded(link, ticket, std::move(failed));
    };
    const auto seq = core::take_commit_watermark();
    auto kept = core::take_keeper_wait();
    auto* store = broker_.store();
    if (seq != 0 && store) {
      state->waits.fetch_add(1);
      store->when_durable(seq, [done](std::error_code ec) mutable { done(!ec); });
    }
    if (kept) {
      state->waits.fetch_add(1);
      kept->on_done([done](bool committed) mutable { done(committed); });
    }
    done(true);
  });
}

void cluster_node::on_inbound_closed(inbound_handle& stream,
                                     const std::shared_ptr<peer_link>& origin) {
  if (!origin) return;
  std::lock_guard lock(origin->inbound_mutex);
  if (origin->inbound.stream == &stream) origin->inbound.stream = nullptr;
}

}  // namespace ringmq::cluster
