#pragma once
// A small blocking MQTT client for the security tests, over mqtt_socket: connect
// with credentials (from a chosen source address), subscribe and publish at QoS
// 1 returning the broker's reason codes, and read deliveries. Deliveries that
// arrive while an acknowledgement is awaited are kept for next_message().

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/broker_process.hpp"

namespace ringmq::testing {

class auth_client {
 public:
  struct options {
    codec::protocol_version version = codec::protocol_version::v5;
    std::string client_id;
    std::optional<std::string> username;
    std::optional<std::string> password;
    std::string source_address;  // empty: 127.0.0.1
    std::uint32_t session_expiry = 0;  // above 0: a persistent session (5.0)
  };

  auth_client(std::uint16_t port, options o) {
    if (!socket_.connect_tcp(port, o.source_address)) {
      error_ = socket_.error();
      return;
    }
    codec::connect_packet c;
    c.version = o.version;
    c.client_id = std::move(o.client_id);
    c.username = std::move(o.username);
    c.password = std::move(o.password);
    c.keep_alive = 60;
    if (o.session_expiry > 0) {
      c.clean_start = false;
      c.props.session_expiry_interval = o.session_expiry;
    }
    connack_ = socket_.handshake(c);
    if (!connack_) error_ = socket_.error();
  }

  // The CONNACK's code; nullopt when there was none (see error()).
  std::optional<codec::reason_code> connack_code() const {
    if (!connack_) return std::nullopt;
    return connack_->code;
  }
  bool connected() const { return connack_ && connack_->code == codec::reason_code::success; }
  const std::string& error() const { return error_; }

  // SUBSCRIBE at QoS 1; the SUBACK's codes (empty when none came).
  std::vector<std::uint8_t> subscribe(const std::vector<std::string>& filters) {
    codec::subscribe_packet s;
    s.packet_id = next_id();
    for (const auto& f : filters) s.subscriptions.push_back({f, {codec::qos::at_least_once}});
    if (!socket_.send(codec::packet{s})) return {};
    std::vector<std::uint8_t> codes;
    await([&](codec::packet& p) {
      auto* ack = std::get_if<codec::suback_packet>(&p);
      if (!ack || ack->packet_id != s.packet_id) return false;
      for (auto c : ack->codes) codes.push_back(static_cast<std::uint8_t>(c));
      return true;
    });
    return codes;
  }

  // PUBLISH at QoS 1; the PUBACK's code (nullopt when none came).
  std::optional<std::uint8_t> publish(const std::string& topic, const std::string& payload,
                                      bool retain = false) {
    codec::publish_packet p;
    p.topic = topic;
    p.payload = payload;
    p.qos = codec::qos::at_least_once;
    p.retain = retain;
    p.packet_id = next_id();
    if (!socket_.send(codec::packet{p})) return std::nullopt;
    std::optional<std::uint8_t> code;
    await([&](codec::packet& in) {
      auto* ack = std::get_if<codec::puback_packet>(&in);
      if (!ack || ack->packet_id != p.packet_id) return false;
      code = static_cast<std::uint8_t>(ack->code);
      return true;
    });
    return code;
  }

  // The next delivery (acknowledged), or nullopt after `timeout`.
  std::optional<codec::publish_packet> next_message(milliseconds timeout = milliseconds(5'000)) {
    if (pending_.empty()) {
      await([](codec::packet&) { return false; }, timeout, true);
    }
    if (pending_.empty()) return std::nullopt;
    auto m = std::move(pending_.front());
    pending_.pop_front();
    return m;
  }

  // "topic=payload" of the next delivery, "(nothing)" after `timeout`.
  std::string next(milliseconds timeout = milliseconds(5'000)) {
    const auto m = next_message(timeout);
    return m ? m->topic + "=" + m->payload : "(nothing)";
  }

  bool wait_closed(milliseconds timeout) { return socket_.wait_closed(timeout); }

 private:
  std::uint16_t next_id() { return next_id_ == 0xFFFF ? next_id_ = 1 : next_id_++; }

  // Reads packets until `done` accepts one, keeping (and acknowledging) deliveries;
  // with `first_delivery`, returns as soon as one delivery was kept.
  template <typename F>
  void await(F done, milliseconds timeout = milliseconds(5'000), bool first_delivery = false) {
    const auto deadline = steady::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
      if (left.count() <= 0) return;
      codec::packet p;
      if (socket_.receive(p, left) != mqtt_socket::read_result::packet) return;
      if (auto* m = std::get_if<codec::publish_packet>(&p)) {
        if (m->qos == codec::qos::at_least_once) {
          codec::puback_packet ack;
          ack.packet_id = m->packet_id;
          socket_.send(codec::packet{ack});
        }
        pending_.push_back(std::move(*m));
        if (first_delivery) return;
        continue;
      }
      if (done(p)) return;
    }
  }

  mqtt_socket socket_;
  std::optional<codec::connack_packet> connack_;
  std::string error_;
  std::uint16_t next_id_ = 1;
  std::deque<codec::publish_packet> pending_;
};

}  // namespace ringmq::testing
