#pragma once
// A bench for the protocol engine: a broker, a clock that moves only when the
// test says so, and test clients. A test client is what a network connection
// would be without the network: an outbox whose wake function does nothing and
// an engine on the shared broker. Packets go in through the engine; what the
// broker sends is drained from the outbox and decoded as a client would
// (stream_decoder with the client's protocol version), so every assertion is
// about packets on the wire.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "broker/codec/decoder.hpp"
#include "broker/codec/packets.hpp"
#include "broker/core/broker.hpp"
#include "broker/core/engine.hpp"
#include "broker/core/outbox.hpp"
#include "broker/core/probe.hpp"

namespace ringmq::core::harness {

using namespace std::chrono_literals;
using codec::protocol_version;
using codec::qos;
using codec::reason_code;

constexpr auto v3_1 = protocol_version::v3_1;
constexpr auto v3_1_1 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;

// Time for the engine and the broker: the `now` every call receives. It starts
// far from the clock's epoch so that nothing can mistake it for "unset".
struct fake_clock {
  time_point now = time_point{} + std::chrono::hours(24 * 365);
  void advance(std::chrono::milliseconds d) { now += d; }
};

inline std::string describe(const codec::packet& p) {
  std::string s(codec::to_string(codec::type_of(p)));
  if (const auto* pub = std::get_if<codec::publish_packet>(&p)) {
    s += " topic=" + pub->topic + " payload=" + pub->payload +
         " qos=" + std::to_string(static_cast<int>(pub->qos)) +
         " id=" + std::to_string(pub->packet_id);
  }
  return s;
}

// Decodes everything an outbox holds, as the client at the other end would.
inline std::vector<codec::packet> drain(outbox& out, protocol_version version) {
  std::string bytes;
  out.take(bytes);
  codec::stream_decoder decoder;
  decoder.set_version(version);
  decoder.feed(bytes);
  std::vector<codec::packet> packets;
  while (true) {
    auto next = decoder.next();
    if (!next) {
      ADD_FAILURE() << "the broker sent bytes a client cannot decode: " << next.error().detail;
      break;
    }
    if (!*next) break;
    packets.push_back(std::move(**next));
  }
  EXPECT_EQ(decoder.buffered(), 0u) << "the broker sent part of a packet";
  return packets;
}

inline codec::publish_packet make_publish(std::string topic, std::string payload,
                                          qos q = qos::at_most_once, std::uint16_t id = 0,
                                          bool retain = false) {
  codec::publish_packet p;
  p.topic = std::move(topic);
  p.payload = std::move(payload);
  p.qos = q;
  p.packet_id = q == qos::at_most_once ? 0 : id;
  p.retain = retain;
  return p;
}

inline codec::subscription make_subscription(std::string filter, qos q = qos::at_most_once) {
  codec::subscription s;
  s.filter = std::move(filter);
  s.options.max_qos = q;
  return s;
}

inline codec::will_message make_will(std::string topic, std::string payload,
                                     qos q = qos::at_most_once, bool retain = false) {
  codec::will_message w;
  w.topic = std::move(topic);
  w.payload = std::move(payload);
  w.qos = q;
  w.retain = retain;
  return w;
}

// The payloads of `got`, in order.
inline std::vector<std::string> payloads(const std::vector<codec::publish_packet>& got) {
  std::vector<std::string> out;
  for (const auto& p : got) out.push_back(p.payload);
  return out;
}

// How many messages were dropped for `r` so far, by every thread.
inline std::uint64_t dropped(drop_reason r) {
  return sum_probes().messages_dropped[static_cast<std::size_t>(r)];
}

// One network connection of a client, without the network.
class client {
 public:
  client(core::broker& b, fake_clock& clock, protocol_version version, std::string peer)
      : clock_(clock),
        version_(version),
        out_(std::make_shared<outbox>(version, [] {}, b.settings().max_outbound_bytes)),
        engine_(b, out_, connection_info{std::move(peer), "test", std::nullopt, false},
                clock.now) {}

  // The connection goes away with the test, like a socket that closes.
  ~client() { engine_.on_connection_lost(clock_.now); }

  client(const client&) = delete;
  client& operator=(const client&) = delete;

  core::engine& engine() noexcept { return engine_; }
  outbox& out() noexcept { return *out_; }
  protocol_version version() const noexcept { return version_; }
  bool closing() const { return engine_.closing(); }
  const std::shared_ptr<session>& current_session() const { return engine_.current_session(); }

  // --- packets in -------------------------------------------------------------------
  void send(codec::packet p) { engine_.on_packet(std::move(p), clock_.now); }

  codec::connect_packet connect_packet(std::string id, bool clean = true) const {
    codec::connect_packet c;
    c.version = version_;
    c.client_id = std::move(id);
    c.clean_start = clean;
    return c;
  }

  // Sends CONNECT and returns the CONNACK; packets sent after it (a resumed
  // session's messages) stay for received().
  codec::connack_packet connect(std::string id, bool clean = true, codec::properties props = {},
                                std::uint16_t keep_alive = 0) {
    auto c = connect_packet(std::move(id), clean);
    c.props = std::move(props);
    c.keep_alive = keep_alive;
    return connect(std::move(c));
  }
  codec::connack_packet connect(codec::connect_packet c) {
    send(std::move(c));
    return expect<codec::connack_packet>();
  }
  // A 5.0 CONNECT with a Session Expiry Interval.
  codec::connack_packet connect_persistent(std::string id, std::uint32_t expiry,
                                           bool clean = false) {
    codec::properties props;
    props.session_expiry_interval = expiry;
    return connect(std::move(id), clean, std::move(props));
  }

  void publish(codec::publish_packet p) { send(std::move(p)); }
  void publish(std::string topic, std::string payload, qos q = qos::at_most_once,
               std::uint16_t id = 0, bool retain = false) {
    send(make_publish(std::move(topic), std::move(payload), q, id, retain));
  }

  codec::suback_packet subscribe(std::vector<codec::subscription> subs, std::uint16_t id = 1,
                                 codec::properties props = {}) {
    codec::subscribe_packet s;
    s.packet_id = id;
    s.subscriptions = std::move(subs);
    s.props = std::move(props);
    send(std::move(s));
    return expect<codec::suback_packet>();
  }
  codec::suback_packet subscribe(std::string filter, qos q = qos::at_most_once,
                                 std::uint16_t id = 1) {
    return subscribe({make_subscription(std::move(filter), q)}, id);
  }

  codec::unsuback_packet unsubscribe(std::vector<std::string> filters, std::uint16_t id = 1) {
    codec::unsubscribe_packet u;
    u.packet_id = id;
    u.filters = std::move(filters);
    send(std::move(u));
    return expect<codec::unsuback_packet>();
  }

  template <class Ack>
  void ack(std::uint16_t id, reason_code code = reason_code::success) {
    Ack a;
    a.packet_id = id;
    a.code = code;
    send(std::move(a));
  }
  void puback(std::uint16_t id, reason_code code = reason_code::success) {
    ack<codec::puback_packet>(id, code);
  }
  void pubrec(std::uint16_t id, reason_code code = reason_code::success) {
    ack<codec::pubrec_packet>(id, code);
  }
  void pubrel(std::uint16_t id) { ack<codec::pubrel_packet>(id); }
  void pubcomp(std::uint16_t id) { ack<codec::pubcomp_packet>(id); }

  void disconnect(reason_code code = reason_code::success, codec::properties props = {}) {
    codec::disconnect_packet d;
    d.code = code;
    d.props = std::move(props);
    send(std::move(d));
  }

  // --- other events -------------------------------------------------------------------
  void lose() { engine_.on_connection_lost(clock_.now); }
  void tick() { engine_.on_timer(clock_.now); }
  void decode_error(reason_code code, protocol_version as_version) {
    engine_.on_decode_error(codec::codec_error{code, "test"}, as_version, clock_.now);
  }

  // --- packets out --------------------------------------------------------------------
  // Every packet sent since the last look.
  std::vector<codec::packet> received() {
    pull();
    std::vector<codec::packet> all(std::make_move_iterator(inbox_.begin()),
                                   std::make_move_iterator(inbox_.end()));
    inbox_.clear();
    return all;
  }

  // The next packet, which must be a T (a failure and a default T otherwise).
  template <class T>
  T expect() {
    pull();
    if (inbox_.empty()) {
      ADD_FAILURE() << "expected " << codec::to_string(codec::type_of(codec::packet{T{}}))
                    << ", got nothing";
      return T{};
    }
    auto p = std::move(inbox_.front());
    inbox_.pop_front();
    if (auto* t = std::get_if<T>(&p)) return std::move(*t);
    ADD_FAILURE() << "expected " << codec::to_string(codec::type_of(codec::packet{T{}}))
                  << ", got " << describe(p);
    return T{};
  }

  // Everything pending, which must all be PUBLISH packets.
  std::vector<codec::publish_packet> publishes() {
    std::vector<codec::publish_packet> out;
    for (auto& p : received()) {
      if (auto* pub = std::get_if<codec::publish_packet>(&p)) {
        out.push_back(std::move(*pub));
      } else {
        ADD_FAILURE() << "expected only PUBLISH, got " << describe(p);
      }
    }
    return out;
  }

  // Nothing was sent since the last look.
  void expect_nothing() {
    for (const auto& p : received()) ADD_FAILURE() << "unexpected " << describe(p);
  }

 private:
  void pull() {
    for (auto& p : drain(*out_, version_)) inbox_.push_back(std::move(p));
  }

  fake_clock& clock_;
  protocol_version version_;
  std::shared_ptr<outbox> out_;
  core::engine engine_;
  std::deque<codec::packet> inbox_;
};

// A broker, its clock, and the clients connected to it.
class bench {
 public:
  explicit bench(const broker_settings& s = {}, storage::store* store = nullptr)
      : broker_(s, 2, nullptr, nullptr, store) {}

  core::broker& broker() noexcept { return broker_; }
  void advance(std::chrono::milliseconds d) { clock.advance(d); }
  void sweep() { broker_.sweep(clock.now); }

  // A new network connection (not yet connected: send CONNECT through it).
  client& add(protocol_version v = v5) {
    clients_.push_back(std::make_unique<client>(broker_, clock, v,
                                                "127.0.0.1:" + std::to_string(clients_.size())));
    return *clients_.back();
  }
  // A new connection that has sent CONNECT and got a successful CONNACK.
  client& connected(std::string id, protocol_version v = v5, bool clean = true) {
    auto& c = add(v);
    const auto ack = c.connect(std::move(id), clean);
    EXPECT_EQ(ack.code, reason_code::success);
    return c;
  }
  // A 5.0 connection whose session outlives it by `expiry` seconds.
  client& persistent(std::string id, std::uint32_t expiry = 3600, bool clean = false) {
    auto& c = add(v5);
    const auto ack = c.connect_persistent(std::move(id), expiry, clean);
    EXPECT_EQ(ack.code, reason_code::success);
    return c;
  }

  fake_clock clock;

 private:
  core::broker broker_;  // outlives the clients, which end their connections on destruction
  std::deque<std::unique_ptr<client>> clients_;
};

}  // namespace ringmq::core::harness
