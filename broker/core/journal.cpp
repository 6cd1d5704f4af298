#include "broker/core/journal.hpp"

#include <chrono>
#include <unordered_map>

#include "broker/codec/properties.hpp"
#include "broker/codec/wire.hpp"
#include "ringmq/storage/v1/records.pb.h"
#include "storage/keys.hpp"

namespace ringmq::core {

namespace {

namespace v1 = ringmq::storage::v1;
using storage::column;
using storage::write_batch;

thread_local storage::commit_seq watermark = 0;
thread_local std::shared_ptr<keeper_wait> kept_watermark;

// Every per-session key starts with the client id as a length-prefixed
// component, so one erase_prefix removes a session's records from a column.
std::string client_key(const std::string& client) {
  std::string k;
  storage::keys::append_string(k, client);
  return k;
}

// dedup column: client + publisher (both length-prefixed).
std::string dedup_key(const std::string& client, const std::string& publisher) {
  auto key = client_key(client);
  storage::keys::append_string(key, publisher);
  return key;
}

std::string ordered_key(const std::string& client, std::uint64_t order) {
  auto k = client_key(client);
  storage::keys::append_u64(k, order);
  return k;
}

void to_record(const message& m, v1::MessageRecord& r) {
  r.set_topic(m.topic);
  r.set_payload(m.payload);
  r.set_qos(static_cast<std::uint32_t>(m.qos));
  r.set_retain(m.retain);
  if (!m.props.empty()) {
    std::string props;
    codec::encode_properties(m.props, props);
    r.set_properties(std::move(props));
  }
  r.set_publisher(m.publisher);
  if (m.expires_at) r.set_expires_at_ms(to_unix_ms(*m.expires_at));
  r.set_received_at_ms(to_unix_ms(m.received_at));
}

message_ptr from_record(const v1::MessageRecord& r) {
  auto m = std::make_shared<message>();
  m->topic = r.topic();
  m->payload = r.payload();
  m->qos = static_cast<codec::qos>(std::min<std::uint32_t>(r.qos(), 2));
  m->retain = r.retain();
  if (!r.properties().empty()) {
    codec::wire::reader in(r.properties());
    if (auto props = codec::decode_properties(in, codec::property_context::publish)) {
      m->props = std::move(*props);
    }
  }
  m->publisher = r.publisher();
  m->received_at = from_unix_ms(r.received_at_ms());
  if (r.expires_at_ms() != 0) m->expires_at = from_unix_ms(r.expires_at_ms());
  return m;
}

void to_record(const outgoing& o, v1::DeliveryRecord& r) {
  to_record(*o.msg, *r.mutable_message());
  r.set_qos(static_cast<std::uint32_t>(o.qos));
  r.set_retain(o.retain);
  for (auto id : o.subscription_ids) r.add_subscription_ids(id);
  r.set_share(o.share);
}

outgoing from_record(const v1::DeliveryRecord& r) {
  outgoing o;
  o.msg = from_record(r.message());
  o.qos = static_cast<codec::qos>(std::min<std::uint32_t>(r.qos(), 2));
  o.retain = r.retain();
  o.subscription_ids.assign(r.subscription_ids().begin(), r.subscription_ids().end());
  o.share = r.share();
  return o;
}

std::string inflight_value(std::uint16_t packet_id, inflight_stage stage, const outgoing* m) {
  v1::InflightRecord r;
  r.set_packet_id(packet_id);
  r.set_stage(static_cast<v1::InflightRecord::Stage>(stage));
  // Once PUBREC arrived only the packet id matters: the message is not kept.
  if (m && m->msg && stage != inflight_stage::awaiting_pubcomp) {
    to_record(*m, *r.mutable_delivery());
  }
  return r.SerializeAsString();
}

// The order number at the end of a per-session key.
std::uint64_t trailing_order(std::string_view key) {
  return key.size() >= 8 ? storage::keys::read_u64(key, key.size() - 8) : 0;
}

}  // namespace

storage::commit_seq take_commit_watermark() noexcept { return std::exchange(watermark, 0); }

void raise_commit_watermark(storage::commit_seq seq) noexcept {
  if (seq > watermark) watermark = seq;
}

std::shared_ptr<keeper_wait> take_keeper_wait() noexcept { return std::exchange(kept_watermark, nullptr); }

std::shared_ptr<keeper_wait> thread_keeper_wait() {
  if (!kept_watermark) kept_watermark = std::make_shared<keeper_wait>();
  return kept_watermark;
}

std::int64_t unix_now_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t to_unix_ms(time_point t) noexcept {
  const auto delta = std::chrono::duration_cast<std::chrono::milliseconds>(t - clock::now());
  return unix_now_ms() + delta.count();
}

time_point from_unix_ms(std::int64_t ms) noexcept {
  return clock::now() + std::chrono::milliseconds(ms - unix_now_ms());
}

storage::commit_seq journal::append(storage::write_batch&& batch) {
  const auto seq = store_.append(std::move(batch));
  raise_commit_watermark(seq);
  return seq;
}

written journal::append(const session_key& client, storage::write_batch&& batch) {
  if (!keeper_ || !keeper_->keeps(client)) return {append(std::move(batch)), nullptr};
  // Its own wait (for a QoS 2 PUBLISH that waits for just this change) and
  // the thread's (for the acknowledgement of the packet being handled).
  auto own = std::make_shared<keeper_wait>();
  if (!kept_watermark) kept_watermark = std::make_shared<keeper_wait>();
  own->add();
  kept_watermark->add();
  keeper_->append(client, client.writer, std::move(batch),
                  [own, all = kept_watermark](bool committed) {
                    own->finish(committed);
                    all->finish(committed);
                  });
  return {0, std::move(own)};
}

written journal::sync_point(const session_key& client) {
  if (!keeper_ || !keeper_->keeps(client)) return {store_.last_appended(), nullptr};
  // An empty change commits after every change before it.
  return append(client, write_batch{});
}

void journal::save_session(const session_key& client, std::uint32_t expiry_interval,
                           std::int64_t disconnected_at_ms,
                           const std::optional<std::string>& username) {
  v1::SessionRecord r;
  r.set_client_id(client.client);
  r.set_expiry_interval_s(expiry_interval);
  r.set_disconnected_at_ms(disconnected_at_ms);
  if (username) r.set_username(*username);
  write_batch b;
  b.put(column::sessions, client_key(client), r.SerializeAsString());
  append(client, std::move(b));
}

void journal::erase_session(const session_key& client) {
  const auto prefix = client_key(client);
  write_batch b;
  b.erase(column::sessions, prefix);
  for (auto c : {column::subscriptions, column::queue, column::inflight, column::inbound_qos2,
                 column::dedup}) {
    b.erase_prefix(c, prefix);
  }
  b.erase(column::wills, prefix);
  append(client, std::move(b));
}

void journal::save_subscription(const session_key& client, const std::string& filter,
                                const stored_subscription& sub) {
  v1::SubscriptionRecord r;
  r.set_filter(filter);
  r.set_max_qos(static_cast<std::uint32_t>(sub.options.max_qos));
  r.set_no_local(sub.options.no_local);
  r.set_retain_as_published(sub.options.retain_as_published);
  r.set_retain_handling(sub.options.retain_handling);
  r.set_identifier(sub.identifier.value_or(0));
  write_batch b;
  b.put(column::subscriptions, client_key(client) + filter, r.SerializeAsString());
  append(client, std::move(b));
}

void journal::erase_subscription(const session_key& client, const std::string& filter) {
  write_batch b;
  b.erase(column::subscriptions, client_key(client) + filter);
  append(client, std::move(b));
}

void journal::queue_put(const session_key& client, std::uint64_t order, const outgoing& m,
                        const dedup_note* taken) {
  v1::DeliveryRecord r;
  to_record(m, r);
  write_batch b;
  b.put(column::queue, ordered_key(client, order), r.SerializeAsString());
  if (taken) dedup_put(b, client, taken->publisher, taken->window);
  note_lost(append(client, std::move(b)), taken);
}

void journal::queue_erase(const session_key& client, std::uint64_t order) {
  write_batch b;
  b.erase(column::queue, ordered_key(client, order));
  append(client, std::move(b));
}

written journal::queue_to_inflight(const session_key& client, std::uint64_t queue_order,
                                   std::uint64_t inflight_order, std::uint16_t packet_id,
                                   inflight_stage stage, const outgoing& m) {
  write_batch b;
  b.erase(column::queue, ordered_key(client, queue_order));
  b.put(column::inflight, ordered_key(client, inflight_order),
        inflight_value(packet_id, stage, &m));
  return append(client, std::move(b));
}

written journal::inflight_put(const session_key& client, std::uint64_t order,
                              std::uint16_t packet_id, inflight_stage stage, const outgoing* m,
                              const dedup_note* taken) {
  write_batch b;
  b.put(column::inflight, ordered_key(client, order), inflight_value(packet_id, stage, m));
  if (taken) dedup_put(b, client, taken->publisher, taken->window);
  return note_lost(append(client, std::move(b)), taken);
}

written journal::note_lost(written w, const dedup_note* taken) {
  if (taken && taken->on_lost && w.kept) {
    w.kept->on_done([lost = *taken->on_lost, publisher = taken->publisher,
                     number = taken->number, id = taken->packet_id](bool committed) {
      if (!committed) lost(publisher, number, id);
    });
  }
  return w;
}

void journal::inflight_erase(const session_key& client, std::uint64_t order) {
  write_batch b;
  b.erase(column::inflight, ordered_key(client, order));
  append(client, std::move(b));
}

void journal::inbound_put(const session_key& client, std::uint16_t packet_id,
                          std::uint64_t number) {
  auto key = client_key(client);
  storage::keys::append_u16(key, packet_id);
  write_batch b;
  if (number == 0) {
    b.put(column::inbound_qos2, std::move(key), {});
  } else {
    v1::InboundRecord r;
    r.set_number(number);
    auto value = r.SerializeAsString();
    b.put(column::inbound_qos2, std::move(key), value);
    // Packet id 0 is never a real one: its record is the publisher's counter.
    auto counter = client_key(client);
    storage::keys::append_u16(counter, 0);
    b.put(column::inbound_qos2, std::move(counter), std::move(value));
  }
  append(client, std::move(b));
}

void journal::dedup_put(write_batch& b, const std::string& client, const std::string& publisher,
                        const dedup_window& w) {
  v1::DedupRecord r;
  r.set_top(w.top());
  r.set_packet_ids(w.encode_ids());
  b.put(column::dedup, dedup_key(client, publisher), r.SerializeAsString());
}

void journal::dedup_put(const session_key& client, const std::string& publisher,
                        const dedup_window& w) {
  write_batch b;
  dedup_put(b, client, publisher, w);
  append(client, std::move(b));
}

void journal::dedup_erase(const session_key& client, const std::string& publisher) {
  write_batch b;
  b.erase(column::dedup, dedup_key(client, publisher));
  append(client, std::move(b));
}

void journal::inbound_erase(const session_key& client, std::uint16_t packet_id) {
  auto key = client_key(client);
  storage::keys::append_u16(key, packet_id);
  write_batch b;
  b.erase(column::inbound_qos2, std::move(key));
  append(client, std::move(b));
}

void journal::will_put(const session_key& client, const message& will, time_point due) {
  v1::WillRecord r;
  to_record(will, *r.mutable_message());
  r.set_due_at_ms(to_unix_ms(due));
  write_batch b;
  b.put(column::wills, client_key(client), r.SerializeAsString());
  append(client, std::move(b));
}

void journal::will_arm(const session_key& client, const message& will, std::uint32_t delay_s) {
  v1::WillRecord r;
  to_record(will, *r.mutable_message());
  r.set_armed(true);
  r.set_armed_delay_s(delay_s);
  write_batch b;
  b.put(column::wills, client_key(client), r.SerializeAsString());
  append(client, std::move(b));
}

void journal::will_erase(const session_key& client) {
  write_batch b;
  b.erase(column::wills, client_key(client));
  append(client, std::move(b));
}

void journal::retained_put(const message& m, const retained_version& v) {
  v1::MessageRecord r;
  to_record(m, r);
  r.set_retained_hlc(v.hlc);
  r.set_retained_origin(v.origin);
  write_batch b;
  b.put(column::retained, m.topic, r.SerializeAsString());
  append(std::move(b));
}

void journal::retained_tombstone(const std::string& topic, const retained_version& v) {
  v1::MessageRecord r;
  r.set_topic(topic);
  r.set_retain(true);
  r.set_retained_hlc(v.hlc);
  r.set_retained_origin(v.origin);
  write_batch b;
  b.put(column::retained, topic, r.SerializeAsString());
  append(std::move(b));
}

void journal::retained_erase(const std::string& topic) {
  write_batch b;
  b.erase(column::retained, topic);
  append(std::move(b));
}

std::error_code journal::load(recovered_state& out, time_point) {
  std::error_code ec;
  std::error_code bad;  // a record that does not parse: the store is damaged
  // Sessions first; every other per-session record attaches to one of them.
  std::unordered_map<std::string, std::size_t> index;
  auto corrupt = [&] {
    bad = storage::storage_errc::corruption;
    return false;
  };
  ec = store_.scan(column::sessions, {}, [&](std::string_view key, std::string_view value) {
    v1::SessionRecord r;
    if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) return corrupt();
    recovered_session s;
    s.client_id = r.client_id();
    s.expiry_interval = r.expiry_interval_s();
    s.disconnected_at_ms = r.disconnected_at_ms();
    if (r.has_username()) s.username = r.username();
    index.emplace(std::string(key), out.sessions.size());
    out.sessions.push_back(std::move(s));
    return true;
  });
  if (ec || bad) return ec ? ec : bad;
  // The session a per-session key belongs to (its leading client id component).
  auto owner = [&](std::string_view key, std::size_t& offset) -> recovered_session* {
    std::string_view client;
    offset = 0;
    if (!storage::keys::read_string(key, offset, client)) return nullptr;
    auto it = index.find(std::string(key.substr(0, offset)));
    return it == index.end() ? nullptr : &out.sessions[it->second];
  };
  ec = store_.scan(column::subscriptions, {}, [&](std::string_view key, std::string_view value) {
    std::size_t offset = 0;
    auto* s = owner(key, offset);
    if (!s) return true;  // left over from a session that ended mid-write: ignored
    v1::SubscriptionRecord r;
    if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) return corrupt();
    stored_subscription sub;
    sub.options.max_qos = static_cast<codec::qos>(std::min<std::uint32_t>(r.max_qos(), 2));
    sub.options.no_local = r.no_local();
    sub.options.retain_as_published = r.retain_as_published();
    sub.options.retain_handling = static_cast<std::uint8_t>(r.retain_handling());
    if (r.identifier()) sub.identifier = r.identifier();
    s->subscriptions.emplace_back(std::string(key.substr(offset)), sub);
    return true;
  });
  if (ec || bad) return ec ? ec : bad;
  ec = store_.scan(column::queue, {}, [&](std::string_view key, std::string_view value) {
    std::size_t offset = 0;
    auto* s = owner(key, offset);
    if (!s) return true;
    v1::DeliveryRecord r;
    if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) return corrupt();
    s->queue.push_back({trailing_order(key), from_record(r)});
    return true;
  });
  if (ec || bad) return ec ? ec : bad;
  ec = store_.scan(column::inflight, {}, [&](std::string_view key, std::string_view value) {
    std::size_t offset = 0;
    auto* s = owner(key, offset);
    if (!s) return true;
    v1::InflightRecord r;
    if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) return corrupt();
    recovered_inflight f;
    f.order = trailing_order(key);
    f.packet_id = static_cast<std::uint16_t>(r.packet_id());
    f.stage = static_cast<inflight_stage>(r.stage());
    if (r.has_delivery()) f.delivery = from_record(r.delivery());
    s->inflight.push_back(std::move(f));
    return true;
  });
  if (ec || bad) return ec ? ec : bad;
  ec = store_.scan(column::inbound_qos2, {}, [&](std::string_view key, std::string_view value) {
    std::size_t offset = 0;
    auto* s = owner(key, offset);
    if (!s || key.size() < offset + 2) return true;
    const auto id = storage::keys::read_u16(key, offset);
    v1::InboundRecord r;
    if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) return corrupt();
    if (id == 0) {
      s->publish_counter = r.number();
      return true;
    }
    s->inbound_qos2.push_back(id);
    if (r.number()) s->inbound_numbers.emplace_back(id, r.number());
    return true;
  });
  if (ec || bad) return ec ? ec : bad;
  ec = store_.scan(column::dedup, {}, [&](std::string_view key, std::string_view value) {
    std::size_t offset = 0;
    auto* s = owner(key, offset);
    if (!s) return true;
    std::string_view publisher;
    if (!storage::keys::read_string(key, offset, publisher)) return corrupt();
    v1::DedupRecord r;
    if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) return corrupt();
    dedup_window w;
    if (!w.decode(r.top(), r.packet_ids())) return corrupt();
    s->taken.emplace_back(std::string(publisher), w);
    return true;
  });
  if (ec || bad) return ec ? ec : bad;
  ec = store_.scan(column::wills, {}, [&](std::string_view key, std::string_view value) {
    std::size_t offset = 0;
    auto* s = owner(key, offset);
    if (!s) return true;
    v1::WillRecord r;
    if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) return corrupt();
    s->will = from_record(r.message());
    s->will_due_ms = r.due_at_ms();
    if (r.armed()) s->will_armed_delay_s = r.armed_delay_s();
    return true;
  });
  if (ec || bad) return ec ? ec : bad;
  ec = store_.scan(column::retained, {}, [&](std::string_view, std::string_view value) {
    v1::MessageRecord r;
    if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) return corrupt();
    out.retained.push_back({from_record(r), {r.retained_hlc(), r.retained_origin()}});
    return true;
  });
  return ec ? ec : bad;
}

}  // namespace ringmq::core
