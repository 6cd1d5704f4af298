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
  for (auto& m : state.retained) {
    if (!m->expired(now)) retained_.set(m);
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

std::size_t broker::publish(const message_ptr& m, time_point now) {
  if (m->retain) {
    retained_.set(m);
    // $SYS values are republished at every start: not worth a disk write.
    if (journal_ && !m->topic.starts_with("$SYS/")) {
      if (m->payload.empty()) {
        journal_->retained_erase(m->topic);
      } else {
        journal_->retained_put(*m);
      }
    }
    local_probe().retained_stored.add();
  }
  const auto n = router_.publish(m, now);
  if (n == 0) local_probe().dropped(drop_reason::no_subscribers);
  return n;
}

void broker::end_session(const std::shared_ptr<session>& s, time_point now) {
  // Its records were erased when the registry let go of it.
  router_.unsubscribe_all(*s, s->take_subscriptions());
  if (auto will = s->take_pending_will(now, true)) publish(will, now);
}

void broker::sweep(time_point now) {
  throttle_.prune(now);
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
