// The client-id directory: at no time do two live connections on different
// nodes hold one client id. A client id's directory owner (the first alive
// member of its preference list) records which node holds it; a CONNECT
// claims it there, and the owner closes the previous holder's connection
// before granting (docs/cluster.md, "Client ids").
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cluster/cluster_node.hpp"
#include "cluster/session_replication.hpp"
#include "cluster/unary_call.hpp"

namespace ringmq::cluster {

namespace {

constexpr origin_index self_index = 0;
const std::string taken_over_reason = "session taken over by a connection on another node";

}  // namespace

origin_index cluster_node::directory_owner(const std::string& client_id) const {
  const auto& peers = peers_for_this_thread();
  if (peers.all.empty()) return self_index;
  const auto r = current_ring();
  std::optional<origin_index> found;
  r->first_usable(client_id, [&](const std::string& id) {
    if (id == settings_.node_id) {
      found = self_index;
      return true;
    }
    for (const auto& link : peers.all) {
      if (link->id() == id) {
        if (link->state() != liveness::alive) return false;
        found = link->index();
        return true;
      }
    }
    return false;
  });
  return found.value_or(self_index);
}

std::string cluster_node::directory_owner_of(const std::string& client_id) const {
  const auto owner = directory_owner(client_id);
  if (owner == self_index) return settings_.node_id;
  const auto table = peers();
  if (owner < table->by_index.size() && table->by_index[owner]) return table->by_index[owner]->id();
  return settings_.node_id;
}

bool cluster_node::claim(const std::string& client_id, std::uint64_t connection_id,
                         bool persistent, core::claim_result& result,
                         std::function<void(core::claim_result)> later) {
  if (!replication_ || !replication_->keeps(client_id)) {
    // Not replicated, or a session this node's store held from before
    // sessions were replicated.
    return claim_client_id(client_id, connection_id, result, std::move(later));
  }
  if (!persistent) {
    // A session that ends with its connection. If the client id has a
    // replicated session (its directory owner, a replica, keeps a log of it),
    // it is taken here first, so that the CONNECT resumes it (clean start 0)
    // or ends it (clean start 1), as MQTT says, wherever it was kept.
    auto replicated = std::make_shared<std::atomic<bool>>(false);
    auto shared_later =
        std::make_shared<std::function<void(core::claim_result)>>(std::move(later));
    auto then = [this, client_id, replicated, shared_later](core::claim_result r) {
      if (r != core::claim_result::granted || !replicated->load()) {
        (*shared_later)(r);
        return;
      }
      replication_->acquire(client_id, [shared_later](bool served) {
        (*shared_later)(served ? core::claim_result::granted : core::claim_result::unavailable);
      });
    };
    core::claim_result first = core::claim_result::granted;
    if (!claim_client_id(client_id, connection_id, first, then, replicated)) return false;
    if (first != core::claim_result::granted || !replicated->load()) {
      result = first;
      return true;
    }
    then(first);
    return false;
  }
  // A replicated session: no other connection holds the client id, then
  // this node wins the session's generation from its replicas and holds its
  // records (docs/cluster.md, "Replicated persistent sessions").
  auto shared_later = std::make_shared<std::function<void(core::claim_result)>>(std::move(later));
  auto then_acquire = [this, client_id, shared_later](core::claim_result r) {
    if (r != core::claim_result::granted) {
      (*shared_later)(r);
      return;
    }
    replication_->acquire(client_id, [shared_later](bool served) {
      (*shared_later)(served ? core::claim_result::granted : core::claim_result::unavailable);
    });
  };
  core::claim_result first = core::claim_result::granted;
  if (!claim_client_id(client_id, connection_id, first, then_acquire)) return false;
  if (first != core::claim_result::granted) {
    result = first;
    return true;
  }
  then_acquire(first);
  return false;
}

bool cluster_node::claim_client_id(const std::string& client_id, std::uint64_t connection_id,
                                   core::claim_result& result,
                                   std::function<void(core::claim_result)> later,
                                   std::shared_ptr<std::atomic<bool>> replicated) {
  const auto& peers = peers_for_this_thread();
  if (peers.all.empty()) {
    result = core::claim_result::granted;  // alone: the session registry decides locally
    if (replicated) replicated->store(has_replicated_session(client_id));
    return true;
  }
  const auto owner = directory_owner(client_id);
  const ticket t{boot_id_, connection_id};
  {
    std::lock_guard lock(directory_mutex_);
    pending_claims_[connection_id] = client_id;
  }
  // The answer may come at once (on this thread) or later (on another).
  struct answer {
    std::mutex mutex;
    bool returned = false;
    bool decided = false;
    bool granted = false;
    std::function<void(core::claim_result)> later;
  };
  auto a = std::make_shared<answer>();
  a->later = std::move(later);
  auto done = [a](bool granted) {
    std::unique_lock lock(a->mutex);
    if (!a->returned) {
      a->decided = true;
      a->granted = granted;
      return;
    }
    lock.unlock();
    a->later(granted ? core::claim_result::granted : core::claim_result::refused);
  };
  std::shared_ptr<peer_link> owner_link;
  if (owner != self_index && owner < peers.by_index.size()) owner_link = peers.by_index[owner];
  if (owner_link) {
    claim_remote(client_id, t, *owner_link, std::move(done), replicated);
  } else {
    if (replicated) replicated->store(has_replicated_session(client_id));
    claim_at_owner(client_id, self_index, t, std::move(done));
  }
  std::lock_guard lock(a->mutex);
  a->returned = true;
  if (!a->decided) return false;
  result = a->granted ? core::claim_result::granted : core::claim_result::refused;
  return true;
}

bool cluster_node::confirm(const std::string&, std::uint64_t connection_id,
                           const std::function<void()>& open_session) {
  // Under the directory lock: a kick for this connection sees it either still
  // pending (and revokes it) or with its session claimed (and closes it).
  std::lock_guard lock(directory_mutex_);
  pending_claims_.erase(connection_id);
  if (revoked_.erase(connection_id) > 0) return false;
  open_session();
  return true;
}

void cluster_node::release(const std::string& client_id, std::uint64_t connection_id) {
  {
    std::lock_guard lock(directory_mutex_);
    pending_claims_.erase(connection_id);
    revoked_.erase(connection_id);
  }
  resolve_kick_waiters(client_id, connection_id, true);
  const auto& peers = peers_for_this_thread();
  if (peers.all.empty()) return;
  const ticket t{boot_id_, connection_id};
  const auto owner = directory_owner(client_id);
  if (owner == self_index) {
    std::lock_guard lock(directory_mutex_);
    auto it = directory_.find(client_id);
    if (it != directory_.end() && it->second.node == self_index && it->second.t == t) {
      directory_.erase(it);
      superseded_.erase(client_id);
    }
    return;
  }
  if (owner >= peers.by_index.size() || !peers.by_index[owner]) return;
  v1::PeerFrame f;
  f.mutable_release()->set_client_id(client_id);
  f.mutable_release()->mutable_ticket()->set_boot_id(t.boot_id);
  f.mutable_release()->mutable_ticket()->set_connection(t.connection);
  peers.by_index[owner]->enqueue_frame(std::move(f));
}

void cluster_node::claim_at_owner(const std::string& client_id, origin_index claimant,
                                  ticket t, std::function<void(bool)> done) {
  std::optional<holder> current;
  bool stale = false;
  {
    std::lock_guard lock(directory_mutex_);
    if (auto b = busy_.find(client_id); b != busy_.end()) {
      // A takeover of this client id is in progress: this claim comes after it.
      b->second.push_back({claimant, t, std::move(done)});
      return;
    }
    // A claim from a node whose connections up to a later one were kicked
    // already is stale (it was slower than a newer claim): refused.
    if (auto k = superseded_.find(client_id); k != superseded_.end()) {
      for (const auto& h : k->second) {
        if (h.node == claimant && h.t.boot_id == t.boot_id && t.connection <= h.t.connection) {
          stale = true;
        }
      }
    }
    if (stale) {
    } else if (auto it = directory_.find(client_id); it != directory_.end()) {
      current = it->second;
    } else if (claimant != self_index) {
      // Connections made while this node was alone are known to the registry only.
      if (auto s = broker_.sessions().find(client_id); s && s->online()) {
        current = holder{self_index, {boot_id_, s->owner()}};
      }
    }
    if (stale) {
      // Nothing recorded: the newer claim holds.
    } else if (!current || current->node == claimant) {
      // Nobody else holds it (a holder on the claimant's own node is its
      // session registry's business: a local takeover). Claims of one node
      // may arrive out of order: the newest connection is the holder.
      if (!current || current->t.boot_id != t.boot_id || current->t.connection < t.connection) {
        directory_[client_id] = {claimant, t};
      }
    } else {
      busy_[client_id];
    }
  }
  if (stale) {
    spdlog::debug("cluster: directory: {} claim of connection {} refused: superseded", client_id,
                  t.connection);
    done(false);
    return;
  }
  if (!current || current->node == claimant) {
    spdlog::debug("cluster: directory: {} granted to node index {} connection {}", client_id,
                  claimant, t.connection);
    done(true);
    return;
  }
  spdlog::debug("cluster: directory: {} claimed by node index {} connection {}; kicking node "
                "index {} connection {}",
                client_id, claimant, t.connection, current->node, current->t.connection);
  kick_holder(client_id, *current, [this, client_id, claimant, t, done, kicked = *current](bool) {
    std::vector<queued_claim> queued;
    {
      std::lock_guard lock(directory_mutex_);
      directory_[client_id] = {claimant, t};
      // Remembered, so that a slower claim of what was kicked is refused (a few per id).
      auto& list = superseded_[client_id];
      list.push_back(kicked);
      if (list.size() > 4) list.erase(list.begin());
      if (auto b = busy_.find(client_id); b != busy_.end()) {
        queued = std::move(b->second);
        busy_.erase(b);
      }
    }
    done(true);
    for (auto& q : queued) claim_at_owner(client_id, q.claimant, q.t, std::move(q.done));
  });
}

void cluster_node::kick_holder(const std::string& client_id, holder h,
                               std::function<void(bool)> done) {
  if (h.node == self_index) {
    kick_local(client_id, h.t, std::move(done));
    return;
  }
  const auto table = peers();
  std::shared_ptr<peer_link> link;
  if (h.node < table->by_index.size()) link = table->by_index[h.node];
  auto channel = link ? link->channel() : nullptr;
  if (!link || link->dead() || !channel || stopping_) {
    done(false);  // a dead node holds nothing any more
    return;
  }
  v1::KickRequest request;
  request.set_cluster_name(settings_.name);
  request.set_client_id(client_id);
  request.mutable_ticket()->set_boot_id(h.t.boot_id);
  request.mutable_ticket()->set_connection(h.t.connection);
  ++calls_in_flight_;
  start_unary<v1::Peer, v1::KickResponse>(
      channel, settings_.claim_timeout, std::move(request),
      [](auto& peer, auto... args) { peer.Kick(args...); },
      [this, done = std::move(done), id = link->id()](const grpc::Status& status, const auto& c) {
        observe("rpc:kick", c.seconds());
        if (!status.ok()) {
          spdlog::warn("cluster: kick of client {} on {} failed: {}", c.request.client_id(), id,
                       status.error_message());
        }
        done(status.ok() && c.response.closed());
        --calls_in_flight_;
      });
}

void cluster_node::kick_local(const std::string& client_id, ticket t,
                              std::function<void(bool)> done) {
  if (t.boot_id != boot_id_) {
    done(false);  // a connection of an earlier run of this node: long gone
    return;
  }
  // Every connection of the client id on this node up to the one the owner
  // named goes (connection numbers grow): an older one it was replacing here
  // must not be left holding the client id. A newer one is not the owner's to
  // close yet: its own claim is on its way to the owner.
  bool revoked = false;
  std::uint64_t holder = 0;
  {
    // Under the directory lock, as confirm() opens sessions: a connection is
    // either still pending here (and refused when it confirms) or holds the session.
    std::lock_guard lock(directory_mutex_);
    for (const auto& [connection, client] : pending_claims_) {
      if (client == client_id && connection <= t.connection) {
        revoked_.insert(connection);
        revoked = true;
      }
    }
    if (auto s = broker_.sessions().find(client_id); s && s->owner() <= t.connection) {
      holder = s->owner();
    }
    if (holder != 0) kick_waiters_.emplace(client_id, kick_waiter{holder, std::move(done)});
  }
  spdlog::debug("cluster: kick of {} up to connection {}: revoked={} holder={}", client_id,
                t.connection, revoked, holder);
  if (holder == 0) {
    done(revoked);  // never under the lock: the answer may claim again
    return;
  }
  // Answered when the connection is gone (release), or after 2 s at most.
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::seconds(2));
  timer->async_wait([this, timer, client_id, holder](const boost::system::error_code& ec) {
    if (!ec) resolve_kick_waiters(client_id, holder, false);
  });
  retry_local_kick(client_id, holder, 0);
}

void cluster_node::retry_local_kick(const std::string& client_id, std::uint64_t connection,
                                    int attempts) {
  auto s = broker_.sessions().find(client_id);
  if (s && s->disconnect(codec::reason_code::session_taken_over, taken_over_reason, connection)) {
    return;  // its release answers
  }
  // Claimed by the connection but not attached yet (its worker is between
  // opening the session and attaching to it): that takes microseconds.
  if (!s || s->owner() != connection || attempts >= 400 || stopping_) {
    resolve_kick_waiters(client_id, connection, false);
    return;
  }
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::milliseconds(5));
  timer->async_wait([this, timer, client_id, connection, attempts](
                        const boost::system::error_code& ec) {
    if (!ec) retry_local_kick(client_id, connection, attempts + 1);
  });
}

void cluster_node::resolve_kick_waiters(const std::string& client_id, std::uint64_t connection,
                                        bool closed) {
  std::vector<std::function<void(bool)>> done;
  {
    std::lock_guard lock(directory_mutex_);
    if (kick_waiters_.empty()) return;
    auto [first, last] = kick_waiters_.equal_range(client_id);
    for (auto it = first; it != last;) {
      if (it->second.connection == connection) {
        done.push_back(std::move(it->second.done));
        it = kick_waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& d : done) d(closed);
}

void cluster_node::claim_remote(const std::string& client_id, ticket t, peer_link& owner,
                                std::function<void(bool)> done,
                                std::shared_ptr<std::atomic<bool>> replicated) {
  auto channel = owner.channel();
  if (!channel || stopping_) {
    done(true);
    return;
  }
  v1::ClaimRequest request;
  request.set_cluster_name(settings_.name);
  request.set_client_id(client_id);
  request.set_node(settings_.node_id);
  request.mutable_ticket()->set_boot_id(t.boot_id);
  request.mutable_ticket()->set_connection(t.connection);
  ++calls_in_flight_;
  start_unary<v1::Peer, v1::ClaimResponse>(
      channel, settings_.claim_timeout, std::move(request),
      [](auto& peer, auto... args) { peer.Claim(args...); },
      [this, done = std::move(done), id = owner.id(), replicated](const grpc::Status& status,
                                                                 const auto& c) {
        observe("rpc:claim", c.seconds());
        if (status.ok()) {
          if (replicated) replicated->store(c.response.replicated_session());
          done(c.response.granted());
        } else {
          // Availability wins for sessions without persistence: served anyway, counted.
          dropped_claim_timeout_.fetch_add(1);
          spdlog::warn("cluster: claim of client {} at its directory owner {} failed ({}); "
                       "serving it anyway",
                       c.request.client_id(), id, status.error_message());
          done(true);
        }
        --calls_in_flight_;
      });
}

void cluster_node::on_claim(const v1::ClaimRequest& request,
                            std::function<void(grpc::Status, bool)> done) {
  if (request.cluster_name() != settings_.name) {
    done({grpc::StatusCode::FAILED_PRECONDITION, "another cluster"}, false);
    return;
  }
  auto origin = link_by_id(request.node());
  if (!origin) {
    done({grpc::StatusCode::FAILED_PRECONDITION, request.node() + " is not a member"}, false);
    return;
  }
  origin->heard(now_ms());
  claim_at_owner(request.client_id(), origin->index(),
                 ticket{request.ticket().boot_id(), request.ticket().connection()},
                 [done = std::move(done)](bool granted) { done(grpc::Status::OK, granted); });
}

void cluster_node::on_kick(const v1::KickRequest& request,
                           std::function<void(grpc::Status, bool)> done) {
  if (request.cluster_name() != settings_.name) {
    done({grpc::StatusCode::FAILED_PRECONDITION, "another cluster"}, false);
    return;
  }
  kick_local(request.client_id(), ticket{request.ticket().boot_id(), request.ticket().connection()},
             [done = std::move(done)](bool closed) { done(grpc::Status::OK, closed); });
}

void cluster_node::on_release(peer_link& origin, const v1::Release& r) {
  const ticket t{r.ticket().boot_id(), r.ticket().connection()};
  std::lock_guard lock(directory_mutex_);
  auto it = directory_.find(r.client_id());
  if (it != directory_.end() && it->second.node == origin.index() && it->second.t == t) {
    directory_.erase(it);
    superseded_.erase(r.client_id());
  }
}

void cluster_node::on_register(peer_link& origin, const v1::Register& r) {
  std::lock_guard lock(directory_mutex_);
  for (const auto& e : r.entries()) {
    auto [it, added] = directory_.try_emplace(e.client_id());
    // A client id recorded for another node meanwhile keeps that record: it
    // was claimed later, and the registering node's connection is being closed.
    if (!added && it->second.node != origin.index()) continue;
    it->second = {origin.index(), {e.ticket().boot_id(), e.ticket().connection()}};
  }
}

void cluster_node::forget_holders_of(origin_index node, std::uint64_t except_boot) {
  std::lock_guard lock(directory_mutex_);
  for (auto it = directory_.begin(); it != directory_.end();) {
    if (it->second.node == node && (except_boot == 0 || it->second.t.boot_id != except_boot)) {
      it = directory_.erase(it);
    } else {
      ++it;
    }
  }
}

void cluster_node::register_with(peer_link& link, std::vector<v1::PeerFrame>& frames) {
  static constexpr int per_frame = 1000;
  for (const auto& s : broker_.sessions().all()) {
    if (!s->online()) continue;
    if (directory_owner(s->client_id()) != link.index()) continue;
    if (frames.empty() || frames.back().register_().entries_size() >= per_frame) {
      frames.emplace_back().mutable_register_();
    }
    auto* e = frames.back().mutable_register_()->add_entries();
    e->set_client_id(s->client_id());
    e->mutable_ticket()->set_boot_id(boot_id_);
    e->mutable_ticket()->set_connection(s->owner());
  }
}

void cluster_node::register_with_owners() {
  if (stopping_) return;
  for (const auto& link : all_links()) {
    if (link->dead()) continue;
    std::vector<v1::PeerFrame> frames;
    register_with(*link, frames);
    for (auto& f : frames) link->enqueue_frame(std::move(f));
  }
  // The client ids this node owns now and holds itself.
  std::vector<std::pair<std::string, std::uint64_t>> own;
  if (all_links().empty()) return;
  for (const auto& s : broker_.sessions().all()) {
    if (s->online() && directory_owner(s->client_id()) == self_index) {
      own.emplace_back(s->client_id(), s->owner());
    }
  }
  std::lock_guard lock(directory_mutex_);
  for (const auto& [client, connection] : own) {
    directory_.try_emplace(client, holder{self_index, {boot_id_, connection}});
  }
}

}  // namespace ringmq::cluster
