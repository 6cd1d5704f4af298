#include "broker/core/engine.hpp"

#include <algorithm>
#include <random>

#include "broker/codec/topic.hpp"
#include "broker/codec/utf8.hpp"
#include "broker/core/journal.hpp"
#include "broker/core/probe.hpp"

namespace ringmq::core {

namespace {

using codec::reason_code;

// Codes a server may put in a CONNACK (MQTT 5.0 section 3.2.2.2).
bool connack_code(reason_code c) noexcept {
  switch (static_cast<std::uint8_t>(c)) {
    case 0x80: case 0x81: case 0x82: case 0x83: case 0x84: case 0x85: case 0x86: case 0x87:
    case 0x88: case 0x89: case 0x8A: case 0x8C: case 0x90: case 0x95: case 0x97: case 0x99:
    case 0x9A: case 0x9B: case 0x9C: case 0x9D: case 0x9F:
      return true;
    default:
      return false;
  }
}

std::string random_client_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string id = "ringmq-";
  auto v = rng();
  for (int i = 0; i < 16; ++i, v >>= 4) id.push_back(hex[v & 0xF]);
  return id;
}

std::chrono::milliseconds keep_alive_grace(std::uint16_t keep_alive) {
  // [MQTT-3.1.2-22] (3.1.1: [MQTT-3.1.2-24]): one and a half times the Keep Alive.
  return std::chrono::milliseconds(std::uint64_t{keep_alive} * 1500);
}

}  // namespace

engine::engine(broker& b, std::shared_ptr<outbox> out, connection_info info, time_point now)
    : broker_(b),
      out_(std::move(out)),
      use_identity_as_username_(info.use_identity_as_username),
      connection_id_(b.next_connection_id()),
      connect_deadline_(now + b.settings().connect_timeout),
      last_packet_(now) {
  identity_->peer = std::move(info.peer);
  identity_->listener = std::move(info.listener);
  identity_->certificate_cn = std::move(info.certificate_cn);
}

engine::~engine() = default;

bool engine::closing() const { return out_->closing(); }

void engine::send(codec::packet&& p) { out_->send(p); }

ack_sequencer& engine::acks() {
  // Made on the first acknowledgement: a connection that never publishes or
  // subscribes (most idle devices) does without.
  if (!acks_) {
    acks_ = std::make_shared<ack_sequencer>(out_, broker_.store());
    // A QoS 2 message that could not be kept (a failed write, a peer that
    // did not settle it) is not received: its packet id goes, so that the
    // client's resend is routed again rather than taken for a duplicate.
    acks_->on_refused_pubrec([weak = std::weak_ptr<session>(session_)](std::uint16_t id) {
      if (auto s = weak.lock()) s->release_inbound_qos2(id);
    });
  }
  return *acks_;
}

void engine::acknowledge(codec::packet&& ack, bool close_on_failure) {
  // Everything this packet wrote must be durable first: in the store, and
  // what a session keeper (a cluster's replicated logs) was handed.
  const auto seq = take_commit_watermark();
  acks().send_after(std::move(ack), written{seq, take_keeper_wait()}, close_on_failure);
}

void engine::close(reason_code code, std::string reason, std::string server_reference) {
  if (out_->closing()) return;
  if (code == reason_code::malformed_packet || code == reason_code::protocol_error) {
    local_probe().protocol_errors.add();
  }
  close_reason_ = std::move(reason);
  close_code_ = code;
  if (connected_ && codec::is_v5(version_)) {
    codec::packet d{codec::disconnect_packet{}};
    auto& disconnect = std::get<codec::disconnect_packet>(d);
    disconnect.code = code;
    if (code != reason_code::success) disconnect.props.reason_string = close_reason_;
    if (!server_reference.empty()) disconnect.props.server_reference = std::move(server_reference);
    // [MQTT-3.14.2-3]: no Reason String that would make the packet larger than the client accepts.
    if (peer_max_packet_ && codec::encoded_size(d, version_) > peer_max_packet_) {
      disconnect.props.reason_string.reset();
    }
    out_->close(std::move(d));
  } else {
    out_->close();
  }
}

namespace {

// The message a client's PUBLISH makes; `number` 0: not numbered.
message_ptr message_of(codec::publish_packet&& p, const std::string& publisher,
                       std::uint64_t number, time_point now) {
  auto m = std::make_shared<message>();
  m->topic = std::move(p.topic);
  m->payload = std::move(p.payload);
  m->qos = p.qos;
  m->retain = p.retain;
  m->props = std::move(p.props);
  m->publisher = publisher;
  m->publish_number = number;
  m->publish_packet_id = number ? p.packet_id : 0;
  m->received_at = now;
  if (m->props.message_expiry_interval) {
    m->expires_at = now + std::chrono::seconds(*m->props.message_expiry_interval);
  }
  return m;
}

// Calls `then(true)` once everything `w` stands for is settled, on whatever
// thread completes it last: false when a session keeper could not commit its
// part. A local store that cannot write (a full disk, logged and shown by the
// store itself) does not keep a client from fetching what was stored before.
void when_written(storage::store* store, const written& w, std::function<void(bool)> then) {
  struct join {
    std::mutex mutex;
    int left = 0;
    bool ok = true;
    std::function<void(bool)> then;
  };
  auto j = std::make_shared<join>();
  j->left = (w.seq != 0 && store ? 1 : 0) + (w.kept ? 1 : 0);
  j->then = std::move(then);
  if (j->left == 0) {
    j->then(true);
    return;
  }
  auto one = [j](bool ok) {
    std::unique_lock lock(j->mutex);
    j->ok = j->ok && ok;
    if (--j->left > 0) return;
    auto then = std::move(j->then);
    const bool all = j->ok;
    lock.unlock();
    then(all);
  };
  if (w.seq != 0 && store) store->when_durable(w.seq, [one](std::error_code) { one(true); });
  if (w.kept) w.kept->on_done(one);
}

}  // namespace

void engine::refuse_connect(reason_code code, std::string reason, std::string server_reference) {
  close_reason_ = std::move(reason);
  close_code_ = code;
  codec::connack_packet ack;
  ack.code = connack_code(code) ? code : reason_code::unspecified_error;
  if (codec::is_v5(version_)) {
    ack.props.reason_string = close_reason_;
    if (!server_reference.empty()) ack.props.server_reference = std::move(server_reference);
  }
  codec::packet p{std::move(ack)};
  // [MQTT-3.2.2-19]: no Reason String that would make the CONNACK larger than the client accepts.
  if (peer_max_packet_ && codec::encoded_size(p, version_) > peer_max_packet_) {
    std::get<codec::connack_packet>(p).props.reason_string.reset();
  }
  out_->close(std::move(p));
}

void engine::on_packet(codec::packet&& p, time_point now) {
  if (out_->closing()) return;  // nothing more is read from a connection being closed
  if (pending_) {
    // The client may send before its CONNACK; those packets are handled
    // after it, in order. A client that floods meanwhile is closed.
    static constexpr std::size_t max_held = 64;
    if (pending_->held.size() >= max_held) {
      close(reason_code::quota_exceeded, "too many packets before CONNACK");
      return;
    }
    pending_->held.push_back(std::move(p));
    return;
  }
  // Only writes caused by this packet count for its acknowledgement.
  take_commit_watermark();
  take_keeper_wait();
  last_packet_ = now;
  const auto type = codec::type_of(p);
  if (!connected_ && type != codec::packet_type::connect) {
    // [MQTT-3.1.0-1]: the first packet must be CONNECT.
    close(reason_code::protocol_error, "first packet is not CONNECT");
    return;
  }
  switch (type) {
    case codec::packet_type::connect:
      if (connected_) {
        // [MQTT-3.1.0-2]: a second CONNECT is a Protocol Error.
        close(reason_code::protocol_error, "second CONNECT");
        return;
      }
      on_connect(std::get<codec::connect_packet>(std::move(p)), now);
      return;
    case codec::packet_type::publish: {
      auto& pub = std::get<codec::publish_packet>(p);
      if (routing_numbered_ && pub.qos == codec::qos::exactly_once) {
        // Behind a numbered message that is not settled yet (see
        // acknowledge_numbered): routed after it, in order.
        if (held_publishes_.size() >= broker_.settings().receive_maximum) {
          close(reason_code::receive_maximum_exceeded, "Receive Maximum exceeded");
          return;
        }
        held_publishes_.push_back(std::move(pub));
        return;
      }
      on_publish(std::move(pub), now);
      return;
    }
    case codec::packet_type::puback:
      session_->on_puback(std::get<codec::puback_packet>(p).packet_id, now);
      return;
    case codec::packet_type::pubrec: {
      const auto& rec = std::get<codec::pubrec_packet>(p);
      session_->on_pubrec(rec.packet_id, rec.code, now);
      return;
    }
    case codec::packet_type::pubrel:
      on_pubrel(std::get<codec::pubrel_packet>(p));
      return;
    case codec::packet_type::pubcomp:
      session_->on_pubcomp(std::get<codec::pubcomp_packet>(p).packet_id, now);
      return;
    case codec::packet_type::subscribe:
      on_subscribe(std::get<codec::subscribe_packet>(std::move(p)), now);
      return;
    case codec::packet_type::unsubscribe:
      on_unsubscribe(std::get<codec::unsubscribe_packet>(std::move(p)));
      return;
    case codec::packet_type::pingreq:
      send(codec::pingresp_packet{});
      return;
    case codec::packet_type::disconnect:
      on_disconnect(std::get<codec::disconnect_packet>(p), now);
      return;
    case codec::packet_type::auth:
      // No authentication method was agreed in CONNECT, so AUTH is unexpected.
      close(reason_code::protocol_error, "AUTH without an authentication method");
      return;
    case codec::packet_type::connack:
    case codec::packet_type::suback:
    case codec::packet_type::unsuback:
    case codec::packet_type::pingresp:
      close(reason_code::protocol_error, "packet only a server may send");
      return;
  }
}

void engine::on_connect(codec::connect_packet&& p, time_point now) {
  const auto& s = broker_.settings();
  version_ = p.version;
  out_->set_version(version_);
  if (codec::is_v5(version_)) peer_max_packet_ = p.props.maximum_packet_size.value_or(0);
  identity_->client_id = std::move(p.client_id);
  identity_->username = std::move(p.username);
  if (use_identity_as_username_ && identity_->certificate_cn) {
    identity_->username = identity_->certificate_cn;
  }

  if (const auto* reference = broker_.refusing_new_clients()) {
    // Leaving the cluster: the client is sent elsewhere before anything
    // else is looked at (3.x: "server unavailable").
    refuse_connect(reason_code::use_another_server, "this node is leaving the cluster", *reference);
    return;
  }

  if (p.props.authentication_method) {
    refuse_connect(reason_code::bad_authentication_method,
                   "authentication method not supported");
    return;
  }

  bool assigned = false;
  if (identity_->client_id.empty()) {
    if (version_ == codec::protocol_version::v3_1) {
      refuse_connect(reason_code::client_identifier_not_valid, "empty client id in MQTT 3.1");
      return;
    }
    if (!p.clean_start && version_ == codec::protocol_version::v3_1_1) {
      // 3.1.1 [MQTT-3.1.3-8]: zero-length id with Clean Session 0.
      refuse_connect(reason_code::client_identifier_not_valid,
                     "empty client id without clean session");
      return;
    }
    if (!s.allow_zero_length_clientid) {
      refuse_connect(reason_code::client_identifier_not_valid, "empty client id not allowed");
      return;
    }
    identity_->client_id = random_client_id();
    assigned = true;
  }
  if (identity_->client_id.size() > s.max_client_id_length) {
    refuse_connect(reason_code::client_identifier_not_valid, "client id too long");
    return;
  }

  keep_alive_ = p.keep_alive;
  std::optional<std::uint16_t> server_keep_alive;
  if (s.max_keepalive < 65535 && (keep_alive_ > s.max_keepalive || keep_alive_ == 0)) {
    if (codec::is_v5(version_)) {
      keep_alive_ = s.max_keepalive;
      server_keep_alive = keep_alive_;
    } else if (keep_alive_ > s.max_keepalive) {
      // 3.x cannot be told another Keep Alive; refused as mosquitto does.
      refuse_connect(reason_code::client_identifier_not_valid, "keep alive above max_keepalive");
      return;
    }
  }

  if (p.will) {
    if (p.will->retain && !s.retain_available) {
      refuse_connect(reason_code::retain_not_supported, "retained will not supported");
      return;
    }
  }

  const auto address = auth_throttle::host_of(identity_->peer);
  if (!broker_.throttle().allowed(address, now)) {
    // Too many recent failures from this address: the credentials are not even checked.
    local_probe().auth_failures.add();
    refuse_connect(codec::is_v5(version_) ? reason_code::connection_rate_exceeded
                                          : reason_code::not_authorized,
                   "too many failed authentications from this address");
    return;
  }
  const auto auth = broker_.authn().authenticate(*identity_, p.password);
  if (auth == reason_code::success) {
    broker_.throttle().succeeded(address);
  } else {
    broker_.throttle().failed(address, now);
    local_probe().auth_failures.add();
    refuse_connect(auth, auth == reason_code::bad_user_name_or_password
                             ? "bad user name or password"
                             : "not authorized");
    return;
  }
  if (p.will && !broker_.authz().allowed(*identity_, p.will->topic, access::publish)) {
    refuse_connect(reason_code::not_authorized, "will topic not authorized");
    return;
  }

  std::uint32_t requested_expiry = 0;
  if (codec::is_v5(version_)) {
    requested_expiry = p.props.session_expiry_interval.value_or(0);
  } else {
    requested_expiry = p.clean_start ? 0 : 0xFFFFFFFFu;
  }
  connect_expiry_ = requested_expiry;
  session_expiry_ = std::min(requested_expiry, s.max_session_expiry);

  pending_ = std::make_unique<pending_connect>();
  pending_->clean_start = p.clean_start;
  pending_->assigned_id = assigned;
  pending_->response_information = p.props.request_response_information.value_or(0) == 1;
  pending_->server_keep_alive = server_keep_alive;
  pending_->requested_expiry = requested_expiry;
  if (p.props.receive_maximum) pending_->peer.receive_maximum = *p.props.receive_maximum;
  if (p.props.maximum_packet_size) {
    pending_->peer.maximum_packet_size = *p.props.maximum_packet_size;
  }
  problem_information_ = p.props.request_problem_information.value_or(1) == 1;
  will_ = p.will ? std::make_unique<codec::will_message>(std::move(*p.will)) : nullptr;

  // No connection on another node may hold the client id once the CONNACK
  // is out: the cluster closes it first (docs/cluster.md, "Client ids").
  auto* cluster = broker_.cluster();
  claim_result result = claim_result::granted;
  if (!cluster) {
    finish_connect(result, now);
    return;
  }
  // The answer comes on another thread, maybe after the connection is gone.
  auto later = [this, back = on_this_connection()](claim_result r) {
    back([this, r] { finish_connect(r, clock::now()); });
  };
  if (cluster->claim(identity_->client_id, connection_id_, session_expiry_ > 0, result,
                     std::move(later))) {
    finish_connect(result, now);
  }
}

void engine::finish_connect(claim_result result, time_point now) {
  if (!pending_ || storing_session_) return;
  if (lost_ || out_->closing()) {  // on_connection_lost released the claim
    pending_.reset();
    return;
  }
  // Only what this CONNECT writes from here counts for its CONNACK.
  take_commit_watermark();
  take_keeper_wait();
  // A later CONNECT with this client id, on another node, won the race.
  const auto refuse_claimed = [this] {
    refuse_connect(codec::is_v5(version_) ? reason_code::server_busy
                                          : reason_code::server_unavailable,
                   "client id claimed by a newer connection on another node");
  };
  if (result == claim_result::refused) {
    pending_.reset();
    refuse_claimed();
    return;
  }
  if (result == claim_result::unavailable) {
    pending_.reset();
    refuse_connect(reason_code::server_unavailable,
                   "session unavailable: too few of its replicas answer");
    return;
  }

  session_registry::open_result opened;
  auto open = [&] {
    opened = broker_.sessions().open(identity_->client_id, pending_->clean_start, connection_id_);
  };
  if (auto* cluster = broker_.cluster()) {
    if (!cluster->confirm(identity_->client_id, connection_id_, open)) {
      pending_.reset();
      refuse_claimed();
      return;
    }
  } else {
    open();
  }
  session_ = opened.opened;
  if (opened.taken_over) {
    // [MQTT-3.1.4-3]: the existing connection is closed (5.0: DISCONNECT 0x8E).
    if (codec::is_v5(opened.taken_over->version())) {
      codec::disconnect_packet d;
      d.code = reason_code::session_taken_over;
      opened.taken_over->close(codec::packet{std::move(d)}, "session taken over");
    } else {
      opened.taken_over->close(std::nullopt, "session taken over");
    }
  }
  if (opened.replaced) broker_.end_session(opened.replaced, now);
  identity_->protocol = std::string(codec::to_string(version_));
  identity_->keep_alive = keep_alive_;
  identity_->connected_at_ms = unix_now_ms();
  // The identity first: the session record written next keeps the user name.
  session_->set_identity(identity_);
  session_->set_expiry_interval(session_expiry_);
  // [MQTT-3.1.3-9]: a delayed will of this session is not sent after all.
  session_->take_pending_will(now, true);
  // This connection's will is kept with a persistent session, so that it is
  // sent even if this node dies before the connection ends (a restart, or the
  // node that takes the session over, sends it).
  if (will_) {
    session_->arm_will(*make_will(now), will_delay());
  } else {
    session_->disarm_will();
  }
  session_present_ = opened.present;

  // The CONNACK (and what the session sends after it) waits until what this
  // CONNECT wrote is durable: the session record and the will, in the store
  // or on a write quorum of the session's replicas.
  const written w{take_commit_watermark(), take_keeper_wait()};
  if (!w.pending()) {
    complete_connect(now);
    return;
  }
  storing_session_ = true;
  when_written(broker_.store(), w, [this, back = on_this_connection()](bool stored) {
    back([this, stored] {
      if (!storing_session_) return;  // the connection was lost meanwhile
      storing_session_ = false;
      if (lost_ || out_->closing()) return;
      if (!stored) {
        pending_.reset();
        refuse_connect(reason_code::server_unavailable, "the session could not be stored");
        return;
      }
      complete_connect(clock::now());
    });
  });
}

std::function<void(std::function<void()>)> engine::on_this_connection() const {
  // Without a runner (an engine driven directly) it runs at once; once the
  // connection is gone, not at all.
  return [runner = runner_, alone = runner_.expired()](std::function<void()> f) {
    if (alone) {
      f();
    } else if (auto c = runner.lock()) {
      c->defer(std::move(f));
    }
  };
}

void engine::complete_connect(time_point now) {
  auto pending = std::move(pending_);
  const auto& s = broker_.settings();
  codec::connack_packet ack;
  ack.session_present = session_present_ && version_ != codec::protocol_version::v3_1;
  if (codec::is_v5(version_)) {
    if (pending->assigned_id) ack.props.assigned_client_identifier = identity_->client_id;
    if (pending->server_keep_alive) ack.props.server_keep_alive = *pending->server_keep_alive;
    if (session_expiry_ != pending->requested_expiry) {
      ack.props.session_expiry_interval = session_expiry_;
    }
    ack.props.receive_maximum = s.receive_maximum;
    if (s.max_topic_alias) ack.props.topic_alias_maximum = s.max_topic_alias;
    if (s.max_packet_size < codec::max_remaining_length + 5) {
      ack.props.maximum_packet_size = s.max_packet_size;
    }
    if (!s.retain_available) ack.props.retain_available = 0;
    if (pending->response_information) {
      ack.props.response_information = "response/" + identity_->client_id;
    }
  }
  send(std::move(ack));
  connected_ = true;
  broker_.on_client_connected();
  if (!session_->attach(connection_id_, out_, pending->peer, now)) {
    // Another connection with this client id won the session meanwhile.
    close(reason_code::session_taken_over, "session taken over");
    return;
  }
  for (auto& held : pending->held) {
    if (out_->closing()) break;
    on_packet(std::move(held), now);
  }
}

void engine::on_publish(codec::publish_packet&& p, time_point now) {
  const auto& s = broker_.settings();
  const bool v5 = codec::is_v5(version_);
  if (v5) {
    if (!p.props.subscription_identifiers.empty()) {
      // [MQTT-3.3.4-6]: a client does not send Subscription Identifiers.
      close(reason_code::protocol_error, "Subscription Identifier in PUBLISH from a client");
      return;
    }
    if (p.props.topic_alias) {
      const auto alias = *p.props.topic_alias;
      if (alias > s.max_topic_alias) {
        close(reason_code::topic_alias_invalid, "Topic Alias above Topic Alias Maximum");
        return;
      }
      if (!p.topic.empty()) {
        topic_aliases_[alias] = p.topic;
      } else {
        auto it = topic_aliases_.find(alias);
        if (it == topic_aliases_.end()) {
          close(reason_code::protocol_error, "unknown Topic Alias");
          return;
        }
        p.topic = it->second;
      }
      p.props.topic_alias.reset();
    }
  }
  if (p.retain && !s.retain_available) {
    close(reason_code::retain_not_supported, "retain not supported");
    return;
  }

  reason_code code = reason_code::success;
  bool route = true;
  if (v5 && p.props.payload_format_indicator.value_or(0) == 1 &&
      !codec::is_valid_mqtt_utf8(p.payload)) {
    code = reason_code::payload_format_invalid;
    route = false;
  } else if (!broker_.authz().allowed(*identity_, p.topic, access::publish)) {
    // 5.0 says so in the acknowledgement; 3.x is acknowledged as usual and the
    // message dropped (as mosquitto does), since 3.x has no way to say no.
    if (v5) code = reason_code::not_authorized;
    route = false;
    local_probe().dropped(drop_reason::not_authorized);
  }

  const auto qos = p.qos;
  const auto packet_id = p.packet_id;
  if (qos != codec::qos::at_most_once && route && !broker_.accepting_durable_work()) {
    // The store cannot keep what we would acknowledge (disk full): refuse
    // instead of losing it. 3.x has no code for it: the client resends after
    // reconnecting.
    local_probe().dropped(drop_reason::store_full);
    if (!v5) {
      close(reason_code::quota_exceeded, "store not writable");
      return;
    }
    code = reason_code::quota_exceeded;
    route = false;
  }
  if (qos != codec::qos::at_most_once && route && broker_.cluster() &&
      !broker_.cluster()->can_settle(p.topic)) {
    // A node with matching routes just died and its sessions are moving: the
    // message is refused whole, delivered nowhere, and the client sends it
    // again (3.x after reconnecting). Refusing only the part for that node
    // would deliver the retry twice to everyone else. (The cluster counts it
    // in ringmq_cluster_forwards_failed_total.) A numbered QoS 2 message
    // being sent again must keep its packet id: closed, not refused. (So
    // must one sent again whose number was never written, as when the node
    // it went to died first: parts of it may have been delivered, and only
    // under its packet id does it get the same number again.)
    const bool resend_of_numbered =
        qos == codec::qos::exactly_once &&
        (session_->inbound_number(packet_id) || (p.dup && session_->numbers_qos2()));
    if (!v5 || resend_of_numbered) {
      close(reason_code::quota_exceeded,
            "routes not settled (a node just started, a failed node's sessions are moving, "
            "or this node is cut off from its cluster)");
      return;
    }
    code = reason_code::quota_exceeded;
    route = false;
  }
  // The QoS 2 packet id and every copy the message makes in the store (queued
  // for persistent subscribers, retained) survive a crash together or not at
  // all. Were the id kept without the copies, the client's resend after a
  // restart would be taken for a duplicate and the message lost; the copies
  // without the id, and the resend would be delivered twice.
  std::optional<storage::store_group> together;
  if (qos == codec::qos::exactly_once && route && broker_.store()) {
    together.emplace(*broker_.store());
  }
  // A numbered QoS 2 message (replicated sessions, docs/cluster.md "Exactly
  // once"): its copies in other sessions are not written together with its
  // packet id, so a retransmission is routed again under its number (the
  // sessions that took it already know it), and a failure closes the
  // connection: the client sends it again under the same packet id.
  std::uint64_t number = 0;
  if (qos == codec::qos::exactly_once && route) {
    const auto begun = session_->begin_inbound_qos2(packet_id, session_->numbers_qos2());
    number = begun.number;
    if (!begun.added && number == 0) {
      // A retransmission of a message already received: acknowledge, do not route again.
      codec::pubrec_packet rec;
      rec.packet_id = packet_id;
      acknowledge(std::move(rec));
      return;
    }
    if (begun.added && session_->inbound_qos2_count() > s.receive_maximum) {
      close(reason_code::receive_maximum_exceeded, "Receive Maximum exceeded");
      return;
    }
  }

  local_probe().messages_received[static_cast<std::size_t>(qos)].add();
  if (route && number != 0) {
    // The number's write, taken apart from what routing writes (the copies).
    const written number_written{take_commit_watermark(), take_keeper_wait()};
    route_numbered(std::move(p), number, packet_id, number_written, now);
    return;
  }
  if (route) {
    const auto reached = broker_.publish(message_of(std::move(p), identity_->client_id, 0, now), now);
    if (v5 && reached == 0) code = reason_code::no_matching_subscribers;
  }
  together.reset();

  if (qos == codec::qos::at_least_once) {
    codec::puback_packet ack;
    ack.packet_id = packet_id;
    ack.code = code;
    acknowledge(std::move(ack));
  } else if (qos == codec::qos::exactly_once) {
    codec::pubrec_packet rec;
    rec.packet_id = packet_id;
    rec.code = code;
    if (number != 0) {
      acknowledge_numbered(std::move(rec));
    } else {
      acknowledge(std::move(rec));
    }
  }
}

void engine::route_numbered(codec::publish_packet&& p, std::uint64_t number,
                            std::uint16_t packet_id, const written& number_written,
                            time_point now) {
  // Routed only once its number is committed with its packet id in this
  // session's log. Were it routed first and that write failed (the session
  // moved, its replicas did not answer), the client's resend would get a new
  // number wherever the session is served next, and every session that took
  // it under the first number would take it again: twice. A resend of a
  // number this session knows waits for the same: everything written so far
  // for the session. The client's next QoS 2 messages wait meanwhile (in order).
  const bool v5 = codec::is_v5(version_);
  auto m = message_of(std::move(p), identity_->client_id, number, now);
  written w = number_written;
  if (!w.pending()) {
    w = session_->sync_point();
    take_commit_watermark();  // w has it; not the thread's next packet
    take_keeper_wait();
  }
  const auto route = [this, m = std::move(m), packet_id, v5](bool committed) {
    if (out_->closing()) return;
    if (!committed) {
      // Not kept: not routed, not acknowledged; the client sends it again
      // under its packet id, to wherever the session is served then.
      close(reason_code::unspecified_error, "the session could not store a QoS 2 message");
      return;
    }
    take_commit_watermark();  // the copies' writes are this message's alone
    take_keeper_wait();
    const auto reached = broker_.publish(m, clock::now());
    codec::pubrec_packet rec;
    rec.packet_id = packet_id;
    rec.code = v5 && reached == 0 ? reason_code::no_matching_subscribers : reason_code::success;
    acknowledge_numbered(std::move(rec));
  };
  if (!w.pending()) {
    route(true);
    return;
  }
  routing_numbered_ = true;
  when_written(broker_.store(), w,
               [this, back = on_this_connection(), route = std::move(route)](bool committed) mutable {
                 back([this, route = std::move(route), committed]() mutable {
                   routing_numbered_ = false;
                   route(committed);
                   // Unless the acknowledgement holds them in turn.
                   if (!routing_numbered_) route_held_publishes();
                 });
               });
}

void engine::acknowledge_numbered(codec::pubrec_packet&& rec) {
  const written w{take_commit_watermark(), take_keeper_wait()};
  acks().send_after(codec::packet{std::move(rec)}, w, /*close_on_failure=*/true);
  if (!w.pending()) return;
  // The client's next QoS 2 message is routed once this one is settled.
  // Were it routed now and this one failed where the next succeeded, the
  // client's resend of this one would reach those sessions after the next:
  // out of the order it was sent in.
  routing_numbered_ = true;
  when_written(broker_.store(), w, [this, back = on_this_connection()](bool) {
    back([this] {
      routing_numbered_ = false;
      route_held_publishes();
    });
  });
}

void engine::route_held_publishes() {
  while (!held_publishes_.empty() && !routing_numbered_ && !out_->closing()) {
    auto p = std::move(held_publishes_.front());
    held_publishes_.pop_front();
    take_commit_watermark();  // as for a packet just read
    take_keeper_wait();
    on_publish(std::move(p), clock::now());
  }
}

void engine::on_pubrel(const codec::pubrel_packet& p) {
  codec::pubcomp_packet comp;
  comp.packet_id = p.packet_id;
  if (!session_->release_inbound_qos2(p.packet_id) && codec::is_v5(version_)) {
    comp.code = reason_code::packet_identifier_not_found;
  }
  acknowledge(std::move(comp));
}

void engine::on_subscribe(codec::subscribe_packet&& p, time_point now) {
  const auto& s = broker_.settings();
  const bool v5 = codec::is_v5(version_);
  std::optional<std::uint32_t> identifier;
  if (!p.props.subscription_identifiers.empty()) identifier = p.props.subscription_identifiers[0];

  struct retained_request {
    std::string filter;
    codec::qos granted;
  };
  std::vector<retained_request> retained;
  codec::suback_packet ack;
  ack.packet_id = p.packet_id;
  for (auto& sub : p.subscriptions) {
    auto parts = codec::parse_topic_filter(sub.filter);
    if (!parts) {
      ack.codes.push_back(v5 ? reason_code::topic_filter_invalid : reason_code::unspecified_error);
      continue;
    }
    if (!broker_.authz().allowed(*identity_, sub.filter, access::subscribe)) {
      ack.codes.push_back(v5 ? reason_code::not_authorized : reason_code::unspecified_error);
      continue;
    }
    const stored_subscription stored{sub.options, identifier};
    const auto added =
        session_->add_subscription(sub.filter, stored, s.max_subscriptions_per_client);
    if (added == session::add_result::limit_reached) {
      ack.codes.push_back(v5 ? reason_code::quota_exceeded : reason_code::unspecified_error);
      continue;
    }
    const bool is_new = added == session::add_result::added;
    broker_.routes().subscribe(session_, sub.filter, stored);
    ack.codes.push_back(static_cast<reason_code>(sub.options.max_qos));
    // Retained messages are never sent for shared subscriptions.
    const auto handling = sub.options.retain_handling;
    if (!parts->is_shared() && (handling == 0 || (handling == 1 && is_new))) {
      retained.push_back({std::string(parts->filter), sub.options.max_qos});
    }
  }
  // Retained messages follow the SUBACK, which waits until the cluster's
  // peers route to this node: then a message published anywhere after the
  // SUBACK reaches the new subscription (docs/cluster.md, "Routes").
  auto send_retained = [&b = broker_, session = session_, identity = identity_,
                        retained = std::move(retained), identifier, now] {
    for (const auto& r : retained) {
      for (auto& m : b.retained().match(r.filter)) {
        if (!b.authz().allowed(*identity, m->topic, access::receive)) continue;
        outgoing out;
        out.qos = std::min(m->qos, r.granted);
        out.retain = true;  // 3.1.1 [MQTT-3.3.1-8]: sent because of a new subscription
        if (identifier) out.subscription_ids.push_back(*identifier);
        out.msg = std::move(m);
        session->deliver(std::move(out), now);
      }
    }
  };
  auto* cluster = broker_.cluster();
  if (!cluster) {
    acknowledge(std::move(ack));
    send_retained();
    return;
  }
  const auto seq = take_commit_watermark();
  auto kept = take_keeper_wait();
  const auto gate = acks().send_gated(std::move(ack), seq, kept ? 2 : 1);
  if (kept) {
    kept->on_done([acks = std::weak_ptr<ack_sequencer>(acks_), gate](bool committed) {
      if (auto a = acks.lock()) committed ? a->release(gate) : a->fail(gate);
    });
  }
  cluster->when_routes_synced(
      [acks = std::weak_ptr<ack_sequencer>(acks_), gate, send = std::move(send_retained)] {
        if (auto a = acks.lock()) {
          a->release(gate);
          send();
        }
      });
}

void engine::on_unsubscribe(codec::unsubscribe_packet&& p) {
  codec::unsuback_packet ack;
  ack.packet_id = p.packet_id;
  for (const auto& filter : p.filters) {
    if (!codec::parse_topic_filter(filter)) {
      ack.codes.push_back(reason_code::topic_filter_invalid);
      continue;
    }
    const bool existed = session_->remove_subscription(filter);
    if (existed) broker_.routes().unsubscribe(*session_, filter);
    ack.codes.push_back(existed ? reason_code::success : reason_code::no_subscription_existed);
  }
  acknowledge(std::move(ack));
}

void engine::on_disconnect(const codec::disconnect_packet& p, time_point) {
  if (codec::is_v5(version_) && p.props.session_expiry_interval) {
    // Section 3.14.2.2.2: a session that CONNECT said ends with the connection
    // cannot be made to persist. The rule is about what CONNECT carried, not the
    // interval the server granted (max_session_expiry may have lowered it to 0).
    if (connect_expiry_ == 0 && *p.props.session_expiry_interval != 0) {
      close(reason_code::protocol_error, "Session Expiry Interval set on DISCONNECT");
      return;
    }
    session_expiry_ =
        std::min(*p.props.session_expiry_interval, broker_.settings().max_session_expiry);
    session_->set_expiry_interval(session_expiry_);
  }
  // [MQTT-3.1.2-8], [MQTT-3.14.4-3]: only Normal disconnection (0x00) deletes the
  // will; 0x04 and the error codes a client may send leave it to be published.
  normal_disconnect_ = p.code == reason_code::success;
  close_reason_ = normal_disconnect_ ? "client disconnected" : "client disconnected with will";
  close_code_ = p.code;
  out_->close();
}

void engine::on_decode_error(const codec::codec_error& error, codec::protocol_version version,
                             time_point) {
  if (out_->closing()) return;
  const std::string reason(error.detail);
  if (!connected_) {
    version_ = version;
    out_->set_version(version);
    if (error.code == reason_code::unsupported_protocol_version || codec::is_v5(version)) {
      local_probe().protocol_errors.add();
      refuse_connect(error.code, reason);
    } else {
      close(error.code, reason);
    }
    return;
  }
  close(error.code, reason);
}

void engine::on_timer(time_point now) {
  if (out_->closing()) return;
  if (!connected_) {
    if (now >= connect_deadline_) close(reason_code::maximum_connect_time, "no CONNECT in time");
    return;
  }
  if (keep_alive_ > 0 && now >= last_packet_ + keep_alive_grace(keep_alive_)) {
    close(reason_code::keep_alive_timeout, "keep alive timeout");
  }
}

std::optional<time_point> engine::next_deadline() const {
  if (!connected_) return connect_deadline_;
  if (keep_alive_ > 0) return last_packet_ + keep_alive_grace(keep_alive_);
  return std::nullopt;
}

message_ptr engine::make_will(time_point now) const {
  auto m = std::make_shared<message>();
  m->topic = will_->topic;
  m->payload = will_->payload;
  m->qos = will_->qos;
  m->retain = will_->retain;
  m->props = will_->props;
  m->props.will_delay_interval.reset();  // a property of the will, not of the message
  m->publisher = identity_->client_id;
  m->received_at = now;
  if (m->props.message_expiry_interval) {
    m->expires_at = now + std::chrono::seconds(*m->props.message_expiry_interval);
  }
  return m;
}

std::uint32_t engine::will_delay() const {
  return codec::is_v5(version_) ? will_->props.will_delay_interval.value_or(0) : 0;
}

void engine::handle_will(time_point now, bool taken_over) {
  if (!will_) return;
  if (normal_disconnect_) {
    session_->disarm_will();
    return;
  }
  const std::uint32_t delay = will_delay();
  auto m = make_will(now);
  will_.reset();
  if (taken_over) {
    // MQTT 5.0 section 3.1.4: sent if it has no delay or the session ended with
    // the takeover; otherwise the new connection resumes the session in time.
    // (The new connection has put its own will in the store.)
    if (delay == 0 || session_->ended()) broker_.publish(m, now);
    return;
  }
  if (delay == 0 || session_expiry_ == 0) {
    session_->disarm_will();
    broker_.publish(m, now);
    return;
  }
  // Sent after the delay, or when the session ends if that comes first.
  session_->set_pending_will(std::move(m), now + std::chrono::seconds(std::min(delay,
                                                                             session_expiry_)));
}

void engine::on_connection_lost(time_point now) {
  if (lost_) return;
  lost_ = true;
  if (!out_->closing()) {
    close_reason_ = "connection lost";
    out_->close();
  }
  auto* cluster = broker_.cluster();
  if (pending_) {
    if (storing_session_) {
      // Its session was opened, its CONNACK not sent: the will goes as for a
      // connection lost (the session record says it was connected).
      storing_session_ = false;
      handle_will(now, session_->owner() != connection_id_);
    }
    // Its claim may still be on its way: the cluster lets go of it when it comes.
    if (cluster) cluster->release(identity_->client_id, connection_id_);
    return;
  }
  if (!connected_) return;
  broker_.on_client_disconnected();
  const bool taken_over = session_->owner() != connection_id_;
  for (auto& m : session_->detach(connection_id_, now)) {
    broker_.routes().redispatch(std::move(m), now);
  }
  handle_will(now, taken_over);
  if (!taken_over && session_expiry_ == 0 && broker_.sessions().remove(session_)) {
    broker_.end_session(session_, now);
  }
  // Last: a node waiting for this connection to go sees it gone, will and all.
  if (cluster) cluster->release(identity_->client_id, connection_id_);
}

}  // namespace ringmq::core
