#include "broker/core/broker.hpp"

#include "broker/core/probe.hpp"

namespace ringmq::core {

broker::broker(const broker_settings& settings, std::size_t reader_stripes, authenticator* authn,
               authorizer* authz, storage::store* store)
    : settings_(settings),
      store_(store),
      journal_(store ? std::make_unique<core::journal>(*store) : nullptr),
      authn_(authn ? authn : &allow_all_),
      authz_(authz ? authz : &allow_all_),
      sessions_(settings.session, journal_.get(), &gate_),
      router_(reader_stripes) {
  gate_.set(authz);
  router_.set_gate(&gate_);
}

std::error_code broker::recover(time_point now) {
  if (!journal_) return {};
  recovered_state state;
  if (auto ec = journal_->load(state, now)) return ec;
  for (auto& r : state.retained) {
    hlc_.observe(r.version.hlc);
    // Expired messages are dropped; their version stays as a tombstone so
    // that a peer's older copy does not come back.
    if (r.msg->expired(now) && !r.msg->payload.empty()) {
      auto gone = std::make_shared<message>(*r.msg);
      gone->payload.clear();
      r.msg = std::move(gone);
    }
    retained_.apply(r.msg, r.version);
  }
  for (auto& r : state.sessions) {
    auto subscriptions = r.subscriptions;
    auto s = sessions_.restore(std::move(r), now);
    for (const auto& [filter, sub] : subscriptions) router_.subscribe(s, filter, sub);
  }
  return {};
}

void broker::set_auth(authenticator* authn, authorizer* authz) {
  authn_ = authn ? authn : &allow_all_;
  authz_ = authz ? authz : &allow_all_;
  gate_.set(authz);
}

void broker::refuse_new_clients(std::string server_reference) {
  std::call_once(refusal_once_, [&] {
    refusal_reference_ = std::move(server_reference);
    refusing_.store(true, std::memory_order_release);
  });
}

void broker::set_cluster(cluster_link* link) noexcept {
  cluster_ = link;
  router_.set_route_observer(link);
}

bool broker::apply_retained(const message_ptr& m, const retained_version& v) {
  if (!hybrid_clock::plausible(v.hlc, static_cast<std::uint64_t>(unix_now_ms()))) {
    // Later than any clock of the cluster can be: it would win over every
    // write to come, and drag this node's clock along. Not applied.
    return false;
  }
  hlc_.observe(v.hlc);
  // The store write happens under the index's lock: one topic's writes reach
  // the store in the order the index applied them.
  const bool applied = retained_.apply(m, v, [&] {
    if (!journal_) return;
    if (m->payload.empty()) {
      journal_->retained_tombstone(m->topic, v);
    } else {
      journal_->retained_put(*m, v);
    }
  });
  if (applied) local_probe().retained_stored.add();
  return applied;
}

std::size_t broker::publish(const message_ptr& m, time_point now) {
  // $SYS values are this node's own: kept and delivered here, never sent to
  // other nodes, and not worth a disk write (republished at every start).
  if (!retained_index::replicated(m->topic)) {
    if (m->retain) retained_.set(m);
    const auto n = router_.publish(m, now);
    if (n == 0) local_probe().dropped(drop_reason::no_subscribers);
    return n;
  }
  std::optional<retained_version> version;
  if (m->retain) {
    version.emplace(retained_version{hlc_.now(static_cast<std::uint64_t>(unix_now_ms())),
                                     settings_.node_id});
    apply_retained(m, *version);
  }
  thread_local std::vector<std::string> local_groups;
  local_groups.clear();
  bool groups_decided = false;
  const std::size_t remote =
      cluster_ ? cluster_->publish(m, version ? &*version : nullptr, local_groups, groups_decided)
               : 0;
  delivery_scope scope;
  if (groups_decided) scope.groups = &local_groups;
  const auto n = router_.publish(m, now, scope);
  if (n == 0 && remote == 0) local_probe().dropped(drop_reason::no_subscribers);
  return n + remote;
}

std::size_t broker::deliver_forwarded(const message_ptr& m, const delivery_scope& scope,
                                      const retained_version* retained, time_point now) {
  if (retained) apply_retained(m, *retained);
  if (!scope.plain && (!scope.groups || scope.groups->empty())) return 0;
  const auto n = router_.publish(m, now, scope);
  if (n == 0) local_probe().dropped(drop_reason::no_subscribers);
  return n;
}

void broker::end_session(const std::shared_ptr<session>& s, time_point now) {
  // Its records were erased when the registry let go of it.
  router_.unsubscribe_all(*s, s->take_subscriptions());
  if (auto will = s->take_pending_will(now, true)) publish(will, now);
}

namespace {

void close_taken_over(const std::shared_ptr<outbox>& connection) {
  if (!connection) return;
  // [MQTT-3.1.4-3] as for a takeover on this node (5.0: DISCONNECT 0x8E).
  if (codec::is_v5(connection->version())) {
    codec::disconnect_packet d;
    d.code = codec::reason_code::session_taken_over;
    connection->close(codec::packet{std::move(d)}, "session taken over on another node");
  } else {
    connection->close(std::nullopt, "session taken over on another node");
  }
}

}  // namespace

std::uint64_t broker::adopt_session(recovered_session&& r, time_point now) {
  auto subscriptions = r.subscriptions;
  std::shared_ptr<session> replaced;
  std::shared_ptr<outbox> connection;
  auto s = sessions_.restore(std::move(r), now, replaced, connection);
  close_taken_over(connection);
  if (replaced) router_.unsubscribe_all(*replaced, replaced->take_subscriptions());
  for (const auto& [filter, sub] : subscriptions) router_.subscribe(s, filter, sub);
  return s->serial();
}

bool broker::let_go_session(const std::string& client_id) {
  std::shared_ptr<outbox> connection;
  auto s = sessions_.forget(client_id, connection);
  if (!s) return false;
  close_taken_over(connection);
  router_.unsubscribe_all(*s, s->take_subscriptions());
  return true;
}

void broker::sweep(time_point now) {
  throttle_.prune(now);
  if (now - last_tombstone_purge_ >= std::chrono::minutes(1)) {
    last_tombstone_purge_ = now;
    const auto ttl_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(settings_.retained_tombstone_ttl)
            .count());
    const auto wall = static_cast<std::uint64_t>(unix_now_ms());
    if (wall > ttl_ms) {
      retained_.purge_tombstones(hybrid_clock::make(wall - ttl_ms, 0),
                                 [&](const std::string& topic) {
                                   if (journal_) journal_->retained_erase(topic);
                                 });
    }
  }
  auto result = sessions_.sweep(now);
  for (auto& s : result.expired) end_session(s, now);
  for (auto& will : result.due_wills) publish(will, now);
}

void broker::on_client_connected() noexcept {
  const auto now = ++connected_;
  ++total_;
  auto max = maximum_.load();
  while (now > max && !maximum_.compare_exchange_weak(max, now)) {
  }
}

void broker::on_client_disconnected() noexcept { --connected_; }

}  // namespace ringmq::core
