#include "broker/core/session.hpp"

#include <algorithm>

#include "broker/core/journal.hpp"
#include "broker/core/overload.hpp"
#include "broker/core/receive_gate.hpp"
#include "broker/core/probe.hpp"

namespace ringmq::core {

namespace {

std::size_t qos_index(codec::qos q) noexcept { return static_cast<std::size_t>(q); }

// MQTT's largest packet: 1 type byte, 4 length bytes, 268435455 bytes of body.
constexpr std::size_t protocol_max_packet = 1 + 4 + codec::max_remaining_length;

inflight_stage first_stage(codec::qos q) noexcept {
  return q == codec::qos::exactly_once ? inflight_stage::awaiting_pubrec
                                       : inflight_stage::awaiting_puback;
}

// Serials of session objects made in this process (session::serial).
std::atomic<std::uint64_t> last_serial{0};

}  // namespace

session::session(std::string client_id, const session_limits& limits, journal* journal,
                 const receive_gate* gate)
    : client_id_(std::move(client_id)),
      serial_(last_serial.fetch_add(1, std::memory_order_relaxed) + 1),
      limits_(limits),
      journal_(journal),
      gate_(gate) {}

session::~session() = default;

bool session::end() {
  std::lock_guard lock(mutex_);
  ended_.store(true, std::memory_order_relaxed);
  return ever_journaled_;
}

bool session::persistent() const {
  std::lock_guard lock(mutex_);
  return journaled();
}

std::shared_ptr<outbox> session::claim(std::uint64_t connection_id) {
  std::lock_guard lock(mutex_);
  owner_ = connection_id;
  online_.store(false, std::memory_order_relaxed);
  // Claimed: no longer counting down to expiry while the CONNECT completes.
  disconnected_at_.reset();
  held_.reset();
  return std::exchange(out_, nullptr);
}

bool session::attach(std::uint64_t connection_id, std::shared_ptr<outbox> out,
                     const peer_limits& peer, time_point now) {
  std::lock_guard lock(mutex_);
  if (owner_ != connection_id) return false;
  out_ = std::move(out);
  held_.reset();  // made when first needed (held()): most sessions never hold a packet
  peer_ = peer;
  disconnected_at_.reset();
  online_.store(true, std::memory_order_relaxed);
  // The records of what is resent may come from the previous connection and
  // not be durable yet: QoS 2 resends wait for everything written so far.
  const written before = holds_qos2() ? journal_->sync_point(key()) : written{};
  // [MQTT-4.4.0-1]: resend unacknowledged PUBLISH (DUP set) and PUBREL, in order.
  for (auto& f : inflight_) {
    if (f.at == stage::awaiting_pubcomp) {
      codec::pubrel_packet rel;
      rel.packet_id = f.packet_id;
      if (holds_qos2()) {
        held().send_after(codec::packet{std::move(rel)}, before);
      } else {
        out_->send(codec::packet{std::move(rel)});
      }
    } else {
      transmit(f.m, f.packet_id, true, now,
               f.m.qos == codec::qos::exactly_once ? before : written{});
    }
  }
  fill_window(now);
  return true;
}

ack_sequencer& session::held() {
  if (!held_) held_ = std::make_shared<ack_sequencer>(out_, &journal_->store(), true);
  return *held_;
}

std::vector<outgoing> session::detach(std::uint64_t connection_id, time_point now) {
  std::lock_guard lock(mutex_);
  std::vector<outgoing> shared;
  if (owner_ != connection_id) return shared;
  out_.reset();
  held_.reset();
  owner_ = 0;
  online_.store(false, std::memory_order_relaxed);
  disconnected_at_ = now;
  const bool record = journaled() && !ended();
  if (record) save_record(to_unix_ms(now));
  // Messages of shared subscriptions go back to the group: queued ones, and
  // QoS 1 ones sent but not acknowledged (MQTT 5.0 section 4.8.2 allows it). A
  // QoS 2 message whose delivery has started stays: it is completed with this
  // client when it reconnects, and never given to another ([MQTT-4.8.2-4],
  // [MQTT-4.8.2-5]).
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    if (!it->m.share.empty() && it->at == stage::awaiting_puback) {
      if (record) journal_->inflight_erase(key(), it->order);
      shared.push_back(std::move(it->m));
      it = inflight_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (!it->m.share.empty()) {
      if (record) journal_->queue_erase(key(), it->order);
      shared.push_back(std::move(it->m));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  return shared;
}

bool session::disconnect(codec::reason_code code, const std::string& why,
                         std::uint64_t connection) {
  std::lock_guard lock(mutex_);
  if (!out_) return false;
  if (connection != 0 && owner_ != connection) return false;
  if (codec::is_v5(out_->version())) {
    codec::disconnect_packet d;
    d.code = code;
    out_->close(codec::packet{std::move(d)}, why);
  } else {
    out_->close(std::nullopt, why);
  }
  return true;
}

std::uint64_t session::owner() const {
  std::lock_guard lock(mutex_);
  return owner_;
}

void session::set_expiry_interval(std::uint32_t seconds) {
  std::lock_guard lock(mutex_);
  const bool was = journaled();
  expiry_interval_ = seconds;
  if (!journal_ || ended()) return;
  if (journaled()) {
    if (!was) {
      // Becoming persistent: everything it holds so far goes to the store too.
      for (const auto& [filter, sub] : subscriptions_) {
        journal_->save_subscription(key(), filter, sub);
      }
    }
    save_record(disconnected_at_ ? to_unix_ms(*disconnected_at_) : 0);
    ever_journaled_ = true;
  } else if (was) {
    // No longer persistent: it ends with its connection, the store forgets it now.
    journal_->erase_session(key());
  }
}

std::uint32_t session::expiry_interval() const {
  std::lock_guard lock(mutex_);
  return expiry_interval_;
}

std::optional<time_point> session::expires_at() const {
  std::lock_guard lock(mutex_);
  // 0xFFFFFFFF means the session does not expire (MQTT 5.0 section 3.1.2.11.2).
  if (!disconnected_at_ || expiry_interval_ == 0xFFFFFFFFu) return std::nullopt;
  return *disconnected_at_ + std::chrono::seconds(expiry_interval_);
}

void session::set_pending_will(message_ptr will, time_point due) {
  std::lock_guard lock(mutex_);
  if (journaled() && !ended()) journal_->will_put(key(), *will, due);
  pending_will_ = std::move(will);
  pending_will_due_ = due;
  will_armed_ = false;  // the same record, replaced
}

message_ptr session::take_pending_will(time_point now, bool force) {
  std::lock_guard lock(mutex_);
  if (!pending_will_ || (!force && now < pending_will_due_)) return nullptr;
  if (journaled() && !ended()) journal_->will_erase(key());
  will_armed_ = false;
  return std::exchange(pending_will_, nullptr);
}

void session::arm_will(const message& will, std::uint32_t delay_s) {
  std::lock_guard lock(mutex_);
  if (!journaled() || ended()) return;
  journal_->will_arm(key(), will, delay_s);
  will_armed_ = true;
}

void session::disarm_will() {
  std::lock_guard lock(mutex_);
  if (!will_armed_) return;
  will_armed_ = false;
  if (journaled() && !ended()) journal_->will_erase(key());
}

std::optional<time_point> session::pending_will_due() const {
  std::lock_guard lock(mutex_);
  if (!pending_will_) return std::nullopt;
  return pending_will_due_;
}

std::size_t session::window() const noexcept {
  return std::min<std::size_t>(limits_.max_inflight, peer_.receive_maximum);
}

std::uint16_t session::next_packet_id() {
  // Ids in flight are few (the window), so a scan on wrap-around is cheap.
  while (true) {
    if (++last_packet_id_ == 0) last_packet_id_ = 1;
    const auto id = last_packet_id_;
    const bool used = std::any_of(inflight_.begin(), inflight_.end(),
                                  [id](const inflight& f) { return f.packet_id == id; });
    if (!used) return id;
  }
}

bool session::transmit(const outgoing& m, std::uint16_t packet_id, bool dup, time_point now,
                       const written& after) {
  auto& probe = local_probe();
  const auto version = out_->version();
  const codec::properties* props = nullptr;
  codec::properties adjusted;
  if (codec::is_v5(version)) {
    props = &m.msg->props;
    // Subscription identifiers and the remaining expiry are per delivery.
    if (!m.subscription_ids.empty() || m.msg->expires_at) {
      adjusted = m.msg->props;
      adjusted.subscription_identifiers = m.subscription_ids;
      if (m.msg->expires_at) adjusted.message_expiry_interval = m.msg->remaining_expiry(now);
      props = &adjusted;
    }
  }
  const codec::publish_view view{m.msg->topic, m.msg->payload, m.qos, m.retain, dup, packet_id,
                                 props};
  const std::size_t limit =
      peer_.maximum_packet_size ? peer_.maximum_packet_size : protocol_max_packet;
  if (codec::encoded_size(view, version) > limit) {
    // [MQTT-3.1.2-25]: discard a packet larger than the client accepts.
    probe.dropped(drop_reason::too_large);
    return false;
  }
  if (after.pending() && holds_qos2()) {
    codec::publish_packet p;
    p.topic = view.topic;
    p.payload = view.payload;
    p.qos = view.qos;
    p.retain = view.retain;
    p.dup = view.dup;
    p.packet_id = packet_id;
    if (props) p.props = *props;
    held().send_after(codec::packet{std::move(p)}, after);
    probe.messages_sent[qos_index(m.qos)].add();
    return true;
  }
  // A connection that is closing takes nothing more, but the session outlives
  // it: the message counts as sent and unacknowledged, so a resumed session
  // resends it ([MQTT-4.4.0-1]) instead of losing it.
  if (!out_->send(view)) return true;
  probe.messages_sent[qos_index(m.qos)].add();
  return true;
}

written session::add_inflight(outgoing&& m, std::uint16_t packet_id,
                                          std::optional<std::uint64_t> queued_as) {
  const auto at = first_stage(m.qos);
  // A message that was queued keeps its order number: queued messages only go
  // in flight when nothing newer was sent directly, so send order is kept.
  const auto order = queued_as ? *queued_as : next_order_++;
  written seq;
  if (journaled() && !ended()) {
    if (queued_as) {
      seq = journal_->queue_to_inflight(key(), order, order, packet_id, at, m);
    } else {
      seq = journal_->inflight_put(key(), order, packet_id, at, &m, taking_);
      taking_ = nullptr;
    }
  }
  inflight_.push_back({std::move(m), packet_id, at, order});
  return seq;
}

bool session::send_new(outgoing&& m, std::uint16_t packet_id,
                       std::optional<std::uint64_t> queued_as, time_point now) {
  if (m.qos == codec::qos::exactly_once && holds_qos2()) {
    // Recorded first, with its packet id; the PUBLISH leaves once that is
    // durable (see held_).
    const auto seq = add_inflight(std::move(m), packet_id, queued_as);
    if (transmit(inflight_.back().m, packet_id, false, now, seq)) return true;
    // Too large for the client: not sent after all.
    journal_->inflight_erase(key(), inflight_.back().order);
    inflight_.pop_back();
    return false;
  }
  if (!transmit(m, packet_id, false, now)) return false;
  add_inflight(std::move(m), packet_id, queued_as);
  return true;
}

void session::fill_window(time_point now) {
  if (!out_) return;
  const bool record = journaled() && !ended();
  while (!queue_.empty() && inflight_.size() < window()) {
    queued q = std::move(queue_.front());
    queue_.pop_front();
    if (q.m.msg->expired(now)) {
      if (record) journal_->queue_erase(key(), q.order);
      local_probe().dropped(drop_reason::expired);
      continue;
    }
    if (gate_ && !gate_->allows(*this, *q.m.msg)) {
      // The ACL changed while it waited (counted by the gate).
      if (record) journal_->queue_erase(key(), q.order);
      continue;
    }
    if (q.m.qos == codec::qos::at_most_once) {
      // Queued while offline (queue_qos0_offline): QoS 0 has no packet id and
      // no acknowledgement, so it must not take a place in the window.
      transmit(q.m, 0, false, now);
      continue;
    }
    const auto id = next_packet_id();
    if (!send_new(std::move(q.m), id, q.order, now)) {
      // Too large for the client: as if acknowledged.
      if (record) journal_->queue_erase(key(), q.order);
    }
  }
}

void session::enqueue(outgoing&& m) {
  if (limits_.max_queued_messages && queue_.size() >= limits_.max_queued_messages) {
    local_probe().dropped(drop_reason::queue_full);
    return;
  }
  const auto order = next_order_++;
  // QoS 0 queued for an offline client is not worth a disk write.
  if (journaled() && !ended() && m.qos != codec::qos::at_most_once) {
    journal_->queue_put(key(), order, m, taking_);
    taking_ = nullptr;
  }
  queue_.push_back({std::move(m), order});
}

void session::deliver(outgoing&& m, time_point now) {
  if (m.msg->expired(now)) {
    local_probe().dropped(drop_reason::expired);
    return;
  }
  std::lock_guard lock(mutex_);
  if (ended()) return;
  const dedup_window* taken = nullptr;
  if (m.msg->publish_number) {
    take_back_lost_locked();
    if (!take_numbered(*m.msg, taken)) {
      local_probe().dropped(drop_reason::duplicate);
      // Known already, but settled only if the session is really kept here
      // (its records with it): a node that no longer serves it must fail the
      // message, so that it goes where the session is now.
      if (journaled()) journal_->sync_point(key());
      return;
    }
  }
  if (!taken) {
    deliver_locked(std::move(m), now);
    return;
  }
  // The number is written in the change that writes the copy (the queue or
  // in flight): a session that moves to another node has both or neither.
  const auto publisher = m.msg->publisher;
  const dedup_note note{publisher, *taken, m.msg->publish_number, m.msg->publish_packet_id,
                        &note_lost_};
  taking_ = &note;
  deliver_locked(std::move(m), now);
  taking_ = nullptr;
}

void session::take_back_lost_locked() {
  if (!lost_takes_->any.load(std::memory_order_acquire)) return;
  std::vector<std::tuple<std::string, std::uint64_t, std::uint16_t>> takes;
  {
    std::lock_guard lock(lost_takes_->mutex);
    takes.swap(lost_takes_->takes);
    lost_takes_->any.store(false, std::memory_order_relaxed);
  }
  if (!numbered_) return;
  for (const auto& [publisher, number, id] : takes) {
    auto it = numbered_->taken.find(publisher);
    if (it != numbered_->taken.end()) it->second.window.forget(number, id);
  }
}

session::numbered_state& session::numbered() {
  if (!numbered_) numbered_ = std::make_unique<numbered_state>();
  return *numbered_;
}

bool session::take_numbered(const message& m, const dedup_window*& record) {
  auto& n = numbered();
  auto it = n.taken.find(m.publisher);
  if (it == n.taken.end()) {
    if (n.taken.size() >= max_numbered_publishers) {
      auto oldest = std::min_element(n.taken.begin(), n.taken.end(), [](const auto& a, const auto& b) {
        return a.second.used < b.second.used;
      });
      if (journaled() && !ended()) journal_->dedup_erase(key(), oldest->first);
      n.taken.erase(oldest);
    }
    it = n.taken.emplace(m.publisher, numbered_state::taken_from{}).first;
  }
  it->second.used = ++n.uses;
  if (!it->second.window.admit(m.publish_number, m.publish_packet_id)) return false;
  record = &it->second.window;
  return true;
}

void session::deliver_locked(outgoing&& m, time_point now) {
  if (m.qos == codec::qos::at_most_once) {
    if (!out_) {
      if (limits_.queue_qos0_offline) {
        enqueue(std::move(m));
      } else {
        local_probe().dropped(drop_reason::offline_qos0);
      }
      return;
    }
    if (const auto c = out_->congested(now); c != outbox::congestion::none) {
      local_probe().dropped(drop_reason::slow_consumer);
      // A slow reader slows its publishers down; one that stopped reading
      // (stuck) does not: it must not hold up everyone who publishes to it.
      if (c == outbox::congestion::slow) signal_qos0_overload();
      return;
    }
    transmit(m, 0, false, now);
    return;
  }
  // QoS 1/2 keep their order behind anything already queued.
  if (!out_ || !queue_.empty() || inflight_.size() >= window()) {
    enqueue(std::move(m));
    return;
  }
  send_new(std::move(m), next_packet_id(), std::nullopt, now);
}

session::inflight_list::iterator session::find_inflight(std::uint16_t packet_id,
                                                               stage at) {
  // Acknowledgements mostly arrive in order, so the match is usually the front.
  return std::find_if(inflight_.begin(), inflight_.end(), [&](const inflight& f) {
    return f.packet_id == packet_id && f.at == at;
  });
}

void session::on_puback(std::uint16_t packet_id, time_point now) {
  std::lock_guard lock(mutex_);
  auto it = find_inflight(packet_id, stage::awaiting_puback);
  if (it == inflight_.end()) return;  // unknown id: nothing to release
  if (journaled() && !ended()) journal_->inflight_erase(key(), it->order);
  inflight_.erase(it);
  fill_window(now);
}

void session::on_pubrec(std::uint16_t packet_id, codec::reason_code code, time_point now) {
  std::lock_guard lock(mutex_);
  auto it = find_inflight(packet_id, stage::awaiting_pubrec);
  const bool record = journaled() && !ended();
  codec::pubrel_packet rel;
  rel.packet_id = packet_id;
  // A persistent session's PUBREL waits until "awaiting PUBCOMP" is durable
  // (see held_): sent before, a crash brought the message back as "awaiting
  // PUBREC" and the restarted node sent it again to a client that had
  // already released its packet id, which delivered it twice.
  auto send = [&](const written& after) {
    if (holds_qos2()) {
      held().send_after(codec::packet{std::move(rel)}, after);
    } else if (out_) {
      out_->send(codec::packet{std::move(rel)});
    }
  };
  if (it == inflight_.end()) {
    // Already released (a duplicate PUBREC after reconnect) or never sent.
    if (find_inflight(packet_id, stage::awaiting_pubcomp) == inflight_.end()) {
      rel.code = codec::reason_code::packet_identifier_not_found;
    }
    send(record ? journal_->sync_point(key()) : written{});
    return;
  }
  if (!codec::is_success(code)) {
    // [MQTT-4.3.3]: a PUBREC with an error code ends the exchange; no PUBREL.
    if (record) journal_->inflight_erase(key(), it->order);
    inflight_.erase(it);
    fill_window(now);
    return;
  }
  it->at = stage::awaiting_pubcomp;
  // The message itself is no longer needed; only the id is kept.
  it->m.msg = nullptr;
  written seq;
  if (record) seq = journal_->inflight_put(key(), it->order, packet_id, it->at, nullptr);
  send(seq);
}

void session::on_pubcomp(std::uint16_t packet_id, time_point now) {
  std::lock_guard lock(mutex_);
  auto it = find_inflight(packet_id, stage::awaiting_pubcomp);
  if (it == inflight_.end()) return;
  if (journaled() && !ended()) journal_->inflight_erase(key(), it->order);
  inflight_.erase(it);
  fill_window(now);
}

session::inbound_begin session::begin_inbound_qos2(std::uint16_t packet_id, bool numbered_qos2) {
  std::lock_guard lock(mutex_);
  inbound_begin result;
  result.added = inbound_qos2_.insert(packet_id).second;
  if (!result.added) {
    if (numbered_) {
      auto it = numbered_->numbers.find(packet_id);
      if (it != numbered_->numbers.end()) result.number = it->second;
    }
    return result;
  }
  if (numbered_qos2) {
    auto& n = numbered();
    result.number = ++n.counter;
    n.numbers[packet_id] = result.number;
  }
  if (journaled() && !ended()) journal_->inbound_put(key(), packet_id, result.number);
  return result;
}

written session::sync_point() {
  std::lock_guard lock(mutex_);
  if (!journaled() || ended()) return {};
  return journal_->sync_point(key());
}

std::uint64_t session::inbound_number(std::uint16_t packet_id) const {
  std::lock_guard lock(mutex_);
  if (!numbered_) return 0;
  auto it = numbered_->numbers.find(packet_id);
  return it == numbered_->numbers.end() ? 0 : it->second;
}

bool session::numbers_qos2() const {
  std::lock_guard lock(mutex_);
  return journaled() && !ended() && journal_->keeper() && journal_->keeper()->keeps(client_id_);
}

bool session::release_inbound_qos2(std::uint16_t packet_id) {
  std::lock_guard lock(mutex_);
  if (numbered_) numbered_->numbers.erase(packet_id);
  const bool removed = inbound_qos2_.erase(packet_id) > 0;
  if (removed && journaled() && !ended()) journal_->inbound_erase(key(), packet_id);
  return removed;
}

std::size_t session::inbound_qos2_count() const {
  std::lock_guard lock(mutex_);
  return inbound_qos2_.size();
}

session::add_result session::add_subscription(const std::string& filter,
                                              const stored_subscription& sub, std::size_t limit) {
  std::lock_guard lock(mutex_);
  auto it = subscriptions_.find(filter);
  add_result result = add_result::replaced;
  if (it != subscriptions_.end()) {
    it->second = sub;
  } else {
    if (limit && subscriptions_.size() >= limit) return add_result::limit_reached;
    subscriptions_.emplace(filter, sub);
    result = add_result::added;
  }
  if (journaled() && !ended()) journal_->save_subscription(key(), filter, sub);
  return result;
}

bool session::remove_subscription(const std::string& filter) {
  std::lock_guard lock(mutex_);
  const bool removed = subscriptions_.erase(filter) > 0;
  if (removed && journaled() && !ended()) journal_->erase_subscription(key(), filter);
  return removed;
}

std::map<std::string, stored_subscription> session::subscriptions() const {
  std::lock_guard lock(mutex_);
  return subscriptions_;
}

std::size_t session::subscription_count() const {
  std::lock_guard lock(mutex_);
  return subscriptions_.size();
}

std::map<std::string, stored_subscription> session::take_subscriptions() {
  std::lock_guard lock(mutex_);
  return std::exchange(subscriptions_, {});
}

void session::save_record(std::int64_t disconnected_at_ms) {
  const auto who = identity();
  journal_->save_session(key(), expiry_interval_, disconnected_at_ms,
                         who ? who->username : std::nullopt);
}

void session::restore(recovered_session&& r, time_point now) {
  std::lock_guard lock(mutex_);
  // Until the client is back, the ACL knows it by the client id and the user
  // name of its last connection.
  auto who = std::make_shared<client_identity>();
  who->client_id = client_id_;
  who->username = std::move(r.username);
  identity_.store(std::move(who), std::memory_order_release);
  expiry_interval_ = r.expiry_interval;
  ever_journaled_ = true;
  // A session that was connected when the node stopped counts from the restart.
  disconnected_at_ = r.disconnected_at_ms ? from_unix_ms(r.disconnected_at_ms) : now;
  for (auto& [filter, sub] : r.subscriptions) subscriptions_.emplace(std::move(filter), sub);
  std::uint64_t highest = 0;
  for (auto& f : r.inflight) {
    if (f.stage != stage::awaiting_pubcomp && !f.delivery.msg) continue;  // nothing to resend
    highest = std::max(highest, f.order);
    last_packet_id_ = std::max(last_packet_id_, f.packet_id);
    inflight_.push_back({std::move(f.delivery), f.packet_id, f.stage, f.order});
  }
  for (auto& q : r.queue) {
    highest = std::max(highest, q.order);
    queue_.push_back({std::move(q.delivery), q.order});
  }
  next_order_ = highest + 1;
  for (auto id : r.inbound_qos2) inbound_qos2_.insert(id);
  if (r.publish_counter || !r.inbound_numbers.empty() || !r.taken.empty()) {
    auto& n = numbered();
    n.counter = r.publish_counter;
    for (const auto& [id, number] : r.inbound_numbers) {
      n.numbers[id] = number;
      n.counter = std::max(n.counter, number);
    }
    for (auto& [publisher, window] : r.taken) n.taken[publisher].window = window;
  }
  if (r.will && r.will_armed_delay_s) {
    // The connection it belonged to is gone without closing (this node
    // stopped, or the node it was on died): the will waits out its delay
    // from now, or from when that connection was recorded gone.
    const auto delay = std::chrono::seconds(std::min(*r.will_armed_delay_s, expiry_interval_));
    pending_will_due_ = *disconnected_at_ + delay;
    auto will = std::make_shared<message>(*r.will);
    will->received_at = pending_will_due_;
    will->expires_at.reset();
    if (will->props.message_expiry_interval) {
      will->expires_at =
          pending_will_due_ + std::chrono::seconds(*will->props.message_expiry_interval);
    }
    pending_will_ = std::move(will);
  } else if (r.will) {
    pending_will_ = std::move(r.will);
    pending_will_due_ = from_unix_ms(r.will_due_ms);
  }
}

void session::set_identity(std::shared_ptr<const client_identity> who) {
  identity_.store(std::move(who), std::memory_order_release);
}

std::size_t session::inflight_count() const {
  std::lock_guard lock(mutex_);
  return inflight_.size();
}

std::size_t session::queued_count() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

}  // namespace ringmq::core
