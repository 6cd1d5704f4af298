#pragma once
// A blocking MQTT client for the cluster tests, on the codec-based
// mqtt_socket: connect to one node, subscribe, publish with the whole QoS
// exchange, receive (acknowledging what needs it). Every wait is bounded.

#include <gtest/gtest.h>

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/cluster_support.hpp"

namespace ringmq::testing {

class cluster_client {
 public:
  using qos = codec::qos;

  // Connects to `node`; `props` are the CONNECT properties (5.0).
  bool connect(cluster_member& node, std::string client_id,
               codec::protocol_version version = codec::protocol_version::v5,
               bool clean_start = true, codec::properties props = {},
               std::optional<codec::will_message> will = {}) {
    node.aim(socket_);
    if (!socket_.connect_tcp(node.mqtt_port())) {
      error_ = socket_.error();
      return false;
    }
    codec::connect_packet c;
    c.version = version;
    c.client_id = std::move(client_id);
    c.clean_start = clean_start;
    c.keep_alive = 60;
    c.props = std::move(props);
    c.will = std::move(will);
    auto ack = socket_.handshake(c, milliseconds(10'000));
    if (!ack) {
      error_ = socket_.error();
      return false;
    }
    connack_ = *ack;
    if (ack->code != codec::reason_code::success) {
      error_ = "CONNACK " + std::to_string(static_cast<int>(ack->code));
      return false;
    }
    return true;
  }

  const codec::connack_packet& connack() const { return connack_; }

  // SUBSCRIBE and wait for the SUBACK; returns its codes (empty on failure).
  std::vector<codec::reason_code> subscribe(const std::string& filter, qos q = qos::at_least_once,
                                            std::optional<std::uint32_t> identifier = {},
                                            codec::subscribe_options options = {}) {
    codec::subscribe_packet s;
    s.packet_id = next_id();
    options.max_qos = q;
    s.subscriptions.push_back({filter, options});
    if (identifier) s.props.subscription_identifiers.push_back(*identifier);
    if (!socket_.send(codec::packet{s})) return {};
    auto ack = wait_for<codec::suback_packet>(milliseconds(10'000));
    if (!ack) return {};
    return ack->codes;
  }

  bool unsubscribe(const std::string& filter) {
    codec::unsubscribe_packet u;
    u.packet_id = next_id();
    u.filters.push_back(filter);
    if (!socket_.send(codec::packet{u})) return false;
    return wait_for<codec::unsuback_packet>(milliseconds(10'000)).has_value();
  }

  // PUBLISH and complete its exchange (PUBACK, or PUBREC/PUBREL/PUBCOMP).
  // Returns the reason code of the acknowledgement (success for QoS 0).
  std::optional<codec::reason_code> publish(const std::string& topic, const std::string& payload,
                                            qos q = qos::at_least_once, bool retain = false,
                                            codec::properties props = {}) {
    codec::publish_packet p;
    p.topic = topic;
    p.payload = payload;
    p.qos = q;
    p.retain = retain;
    p.props = std::move(props);
    if (q != qos::at_most_once) p.packet_id = next_id();
    if (!socket_.send(codec::packet{p})) return std::nullopt;
    if (q == qos::at_most_once) return codec::reason_code::success;
    if (q == qos::at_least_once) {
      auto ack = wait_for<codec::puback_packet>(milliseconds(10'000));
      if (!ack) return std::nullopt;
      return ack->code;
    }
    auto rec = wait_for<codec::pubrec_packet>(milliseconds(10'000));
    if (!rec) return std::nullopt;
    codec::pubrel_packet rel;
    rel.packet_id = rec->packet_id;
    if (!socket_.send(codec::packet{rel})) return std::nullopt;
    if (!wait_for<codec::pubcomp_packet>(milliseconds(10'000))) return std::nullopt;
    return rec->code;
  }

  // A QoS 1 PUBLISH without waiting for its PUBACK (see puback()).
  bool send_publish(const std::string& topic, const std::string& payload) {
    codec::publish_packet p;
    p.topic = topic;
    p.payload = payload;
    p.qos = qos::at_least_once;
    p.packet_id = next_id();
    return socket_.send(codec::packet{p});
  }
  // The next PUBACK within `timeout`: its reason code, or nullopt (none came,
  // or the broker closed the connection: see closed()).
  std::optional<codec::reason_code> puback(milliseconds timeout) {
    auto ack = wait_for<codec::puback_packet>(timeout);
    if (!ack) return std::nullopt;
    return ack->code;
  }

  // The next PUBLISH from the broker within `timeout` (acknowledged as its QoS asks).
  std::optional<codec::publish_packet> receive(milliseconds timeout = milliseconds(5'000)) {
    if (!received_.empty()) {
      auto p = std::move(received_.front());
      received_.pop_front();
      return p;
    }
    const auto deadline = steady::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
      if (left.count() <= 0) return std::nullopt;
      codec::packet p;
      if (socket_.receive(p, left) != mqtt_socket::read_result::packet) return std::nullopt;
      if (auto* pub = std::get_if<codec::publish_packet>(&p)) {
        acknowledge(*pub);
        return std::move(*pub);
      }
      if (auto* rel = std::get_if<codec::pubrel_packet>(&p)) {
        codec::pubcomp_packet c;
        c.packet_id = rel->packet_id;
        socket_.send(codec::packet{c});
      }
      if (auto* d = std::get_if<codec::disconnect_packet>(&p)) disconnect_ = *d;
    }
  }

  // Waits for the broker to close the connection; the DISCONNECT it sent, if any.
  std::optional<codec::disconnect_packet> wait_closed(milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    while (!socket_.closed()) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
      if (left.count() <= 0) break;
      codec::packet p;
      const auto r = socket_.receive(p, left);
      if (r != mqtt_socket::read_result::packet) break;
      if (auto* d = std::get_if<codec::disconnect_packet>(&p)) disconnect_ = *d;
    }
    return disconnect_;
  }
  // True when the broker has closed the connection by now (reads what is there, no wait).
  bool closed_now() {
    wait_closed(milliseconds(0));
    return socket_.closed();
  }
  const std::optional<codec::disconnect_packet>& disconnect() const { return disconnect_; }

  void close() { socket_.close(); }
  const std::string& error() const { return error_; }
  mqtt_socket& socket() { return socket_; }

 private:
  std::uint16_t next_id() {
    if (++last_id_ == 0) last_id_ = 1;
    return last_id_;
  }

  void acknowledge(const codec::publish_packet& p) {
    if (p.qos == qos::at_least_once) {
      codec::puback_packet a;
      a.packet_id = p.packet_id;
      socket_.send(codec::packet{a});
    } else if (p.qos == qos::exactly_once) {
      codec::pubrec_packet r;
      r.packet_id = p.packet_id;
      socket_.send(codec::packet{r});
    }
  }

  // Waits for a packet of type T, keeping PUBLISHes that come meanwhile and
  // answering PUBREL.
  template <class T>
  std::optional<T> wait_for(milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
      if (left.count() <= 0) {
        error_ = "timed out";
        return std::nullopt;
      }
      codec::packet p;
      if (socket_.receive(p, left) != mqtt_socket::read_result::packet) {
        error_ = "no packet";
        return std::nullopt;
      }
      if (auto* t = std::get_if<T>(&p)) return std::move(*t);
      if (auto* pub = std::get_if<codec::publish_packet>(&p)) {
        acknowledge(*pub);
        received_.push_back(std::move(*pub));
      } else if (auto* rel = std::get_if<codec::pubrel_packet>(&p)) {
        codec::pubcomp_packet c;
        c.packet_id = rel->packet_id;
        socket_.send(codec::packet{c});
      } else if (auto* d = std::get_if<codec::disconnect_packet>(&p)) {
        disconnect_ = *d;
      }
    }
  }

  mqtt_socket socket_;
  codec::connack_packet connack_;
  std::deque<codec::publish_packet> received_;
  std::optional<codec::disconnect_packet> disconnect_;
  std::uint16_t last_id_ = 0;
  std::string error_;
};

}  // namespace ringmq::testing
