#pragma once
// A client that keeps its MQTT session state across connections, the way a
// real device library does, for tests that kill nodes under it:
//  - as a publisher it has one message in flight at a time; when its
//    connection breaks it connects to another node, resumes its session and
//    sends the message again with the same packet id (DUP), or the PUBREL when
//    the PUBREC had come: a QoS 2 message is delivered once only if the
//    broker kept the inbound packet id across the failover;
//  - as a subscriber it delivers a QoS 2 message to the application once per
//    packet id until the PUBREL releases it (MQTT 5.0 section 4.3.3, method B):
//    a broker that sends a message again under a new packet id after a
//    failover shows up as a duplicate.
// The ledger: what was acknowledged (by payload) and what was delivered, in
// order. Every wait is bounded.

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cluster_support.hpp"

namespace ringmq::testing {

class ledger_client {
 public:
  using qos = codec::qos;

  ledger_client(std::string client_id, codec::protocol_version version)
      : id_(std::move(client_id)), version_(version) {}

  const std::string& id() const noexcept { return id_; }
  bool connected() const noexcept { return connected_; }
  cluster_member* node() const noexcept { return node_; }
  const std::string& error() const noexcept { return error_; }
  // Connections that resumed no session (session present 0 after the first).
  int sessions_lost() const noexcept { return sessions_lost_; }
  // Successful CONNECTs so far, and the reason of the last DISCONNECT the
  // broker sent (5.0).
  int connections() const noexcept { return connections_; }
  std::optional<codec::reason_code> last_disconnect() const noexcept { return last_disconnect_; }

  // Connects with a persistent session (3.1.1 clean session 0; 5.0 session
  // expiry 600 s). False when the node refused or did not answer.
  bool connect(cluster_member& node) {
    socket_ = std::make_unique<mqtt_socket>();
    connected_ = false;
    node.aim(*socket_);
    if (!socket_->connect_tcp(node.mqtt_port())) {
      error_ = "tcp: " + socket_->error();
      return false;
    }
    codec::connect_packet c;
    c.version = version_;
    c.client_id = id_;
    c.clean_start = false;
    c.keep_alive = 60;
    if (version_ == codec::protocol_version::v5) c.props.session_expiry_interval = 600;
    auto ack = socket_->handshake(c, std::chrono::milliseconds(10'000));
    if (!ack) {
      error_ = "handshake: " + socket_->error();
      return false;
    }
    if (ack->code != codec::reason_code::success) {
      error_ = "CONNACK " + std::to_string(static_cast<int>(ack->code));
      return false;
    }
    if (ever_connected_ && !ack->session_present) ++sessions_lost_;
    ever_connected_ = true;
    ++connections_;
    connected_ = true;
    node_ = &node;
    return true;
  }

  // Connects to the first node of `nodes` that is running and accepts,
  // trying again until `deadline` (a takeover may need a moment).
  bool connect_any(const std::vector<cluster_member*>& nodes, steady::time_point deadline) {
    while (steady::now() < deadline) {
      for (auto* n : nodes) {
        if ((!check_running_ || n->running()) && connect(*n)) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // For a client used on another thread than the one that starts and stops
  // the nodes: it then only tries them (a stopped node refuses at TCP)
  // instead of looking at their processes.
  void skip_process_checks() noexcept { check_running_ = false; }

  bool subscribe(const std::string& filter, qos q) {
    codec::subscribe_packet s;
    s.packet_id = next_id();
    codec::subscribe_options o;
    o.max_qos = q;
    s.subscriptions.push_back({filter, o});
    if (!send(codec::packet{s})) return false;
    const auto deadline = steady::now() + std::chrono::milliseconds(10'000);
    std::optional<codec::suback_packet> ack;
    pump_until([&](codec::packet& p) {
      if (auto* a = std::get_if<codec::suback_packet>(&p)) ack = *a;
      return ack.has_value();
    }, deadline);
    return ack && !ack->codes.empty() && static_cast<int>(ack->codes[0]) < 0x80;
  }

  // ----- publishing

  enum class outcome { acknowledged, refused, broken };

  // Publishes `payload` until it is acknowledged, connecting to another node
  // of `nodes` whenever the connection breaks (its session resumed there) and
  // trying again a little later when the broker refuses it (5.0: a reason
  // code of 0x80 or above, a new packet id then). `between` runs after the
  // PUBLISH is written and before its acknowledgement is read (a test kills a
  // node there). False when it was not acknowledged by `deadline`.
  bool publish(const std::string& topic, const std::string& payload, qos q,
               const std::vector<cluster_member*>& nodes, steady::time_point deadline,
               const std::function<void()>& between = {}) {
    out_ = in_flight{topic, payload, q, next_id(), stage::publish, false};
    bool first = true;
    while (steady::now() < deadline) {
      // A resumed session gets the message in flight again (MQTT 5.0
      // section 4.4): the PUBLISH with DUP, or the PUBREL.
      if (!connected_ && !connect_any(nodes, deadline)) break;
      if (out_->step == stage::publish) {
        if (!send_publish()) continue;
      } else if (!send_pubrel()) {
        continue;
      }
      if (first && between) between();
      first = false;
      switch (await_out(deadline)) {
        case outcome::acknowledged:
          return true;
        case outcome::refused:
          ++refusals_;
          out_->packet_id = next_id();
          out_->dup = false;
          out_->step = stage::publish;
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          break;
        case outcome::broken:
          break;
      }
    }
    error_ = "not acknowledged in time: " + payload;
    return false;
  }
  int refusals() const noexcept { return refusals_; }
  // Acknowledgements by reason code (5.0; 3.1.1 has only success).
  const std::map<int, int>& ack_codes() const noexcept { return ack_codes_; }

  // ----- receiving

  // Reads what comes for `wait` (acknowledging it) and returns when nothing
  // came for that long, or the connection broke.
  void drain(std::chrono::milliseconds wait) {
    while (connected_) {
      codec::packet p;
      if (!read(p, wait)) return;
      handle(p);
    }
  }
  // Reads until `done()` holds or `deadline` passes, connecting to another
  // node of `nodes` when the connection breaks.
  bool receive_until(const std::function<bool()>& done, const std::vector<cluster_member*>& nodes,
                     steady::time_point deadline) {
    while (!done() && steady::now() < deadline) {
      if (!connected_ && !connect_any(nodes, deadline)) return done();
      codec::packet p;
      if (read(p, std::chrono::milliseconds(100))) handle(p);
    }
    return done();
  }

  // Every message delivered to the application, in order (payloads).
  const std::vector<std::string>& delivered() const noexcept { return delivered_; }
  // QoS 2 PUBLISHes that came again under a packet id not yet released (not
  // delivered again).
  int qos2_resends() const noexcept { return qos2_resends_; }

  void close() {
    if (socket_) socket_->close();
    connected_ = false;
  }

 private:
  enum class stage { publish, pubrel };
  struct in_flight {
    std::string topic;
    std::string payload;
    qos q;
    std::uint16_t packet_id;
    stage step;
    bool dup;
  };

  void note(codec::reason_code code) { ++ack_codes_[static_cast<int>(code)]; }

  std::uint16_t next_id() {
    if (++last_id_ == 0) last_id_ = 1;
    return last_id_;
  }

  bool send(const codec::packet& p) {
    if (!connected_ || !socket_->send(p)) {
      connected_ = false;
      return false;
    }
    return true;
  }

  bool send_publish() {
    codec::publish_packet p;
    p.topic = out_->topic;
    p.payload = out_->payload;
    p.qos = out_->q;
    p.packet_id = out_->packet_id;
    p.dup = out_->dup;
    out_->dup = true;  // anything after this is a resend
    return send(codec::packet{p});
  }
  bool send_pubrel() {
    codec::pubrel_packet r;
    r.packet_id = out_->packet_id;
    return send(codec::packet{r});
  }

  outcome await_out(steady::time_point deadline) {
    std::optional<outcome> result;
    pump_until([&](codec::packet& p) {
      if (!out_) return true;
      if (auto* a = std::get_if<codec::puback_packet>(&p); a && a->packet_id == out_->packet_id) {
        note(a->code);
        result = static_cast<int>(a->code) < 0x80 ? outcome::acknowledged : outcome::refused;
      } else if (auto* r = std::get_if<codec::pubrec_packet>(&p);
                 r && r->packet_id == out_->packet_id && out_->step == stage::publish) {
        note(r->code);
        if (static_cast<int>(r->code) >= 0x80) {
          result = outcome::refused;
        } else {
          out_->step = stage::pubrel;
          if (!send_pubrel()) return true;
        }
      } else if (auto* c = std::get_if<codec::pubcomp_packet>(&p);
                 c && c->packet_id == out_->packet_id && out_->step == stage::pubrel) {
        result = outcome::acknowledged;
      }
      return result.has_value();
    }, deadline);
    if (!result) return outcome::broken;
    if (*result == outcome::acknowledged) out_.reset();
    return *result;
  }

  // Reads packets, handling what is not for `wanted`, until it says so, the
  // connection breaks, or `deadline`.
  void pump_until(const std::function<bool(codec::packet&)>& wanted,
                  steady::time_point deadline) {
    while (connected_) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
      if (left.count() <= 0) return;
      codec::packet p;
      if (!read(p, left)) return;
      if (wanted(p)) return;
      handle(p);
    }
  }

  bool read(codec::packet& p, std::chrono::milliseconds timeout) {
    if (!connected_) return false;
    const auto r = socket_->receive(p, timeout);
    if (r == mqtt_socket::read_result::packet) return true;
    if (r != mqtt_socket::read_result::timeout) connected_ = false;
    return false;
  }

  void handle(codec::packet& p) {
    if (auto* pub = std::get_if<codec::publish_packet>(&p)) {
      if (pub->qos == qos::at_most_once) {
        delivered_.push_back(pub->payload);
      } else if (pub->qos == qos::at_least_once) {
        delivered_.push_back(pub->payload);
        codec::puback_packet a;
        a.packet_id = pub->packet_id;
        send(codec::packet{a});
      } else {
        if (unreleased_.insert(pub->packet_id).second) {
          delivered_.push_back(pub->payload);
        } else {
          ++qos2_resends_;
        }
        codec::pubrec_packet r;
        r.packet_id = pub->packet_id;
        send(codec::packet{r});
      }
    } else if (auto* rel = std::get_if<codec::pubrel_packet>(&p)) {
      unreleased_.erase(rel->packet_id);
      codec::pubcomp_packet c;
      c.packet_id = rel->packet_id;
      send(codec::packet{c});
    } else if (const auto* d = std::get_if<codec::disconnect_packet>(&p)) {
      last_disconnect_ = d->code;
      connected_ = false;
    }
  }

  std::string id_;
  codec::protocol_version version_;
  std::unique_ptr<mqtt_socket> socket_;
  cluster_member* node_ = nullptr;
  bool connected_ = false;
  bool check_running_ = true;
  bool ever_connected_ = false;
  int sessions_lost_ = 0;
  int connections_ = 0;
  std::optional<codec::reason_code> last_disconnect_;
  std::uint16_t last_id_ = 0;
  std::optional<in_flight> out_;
  int refusals_ = 0;
  std::map<int, int> ack_codes_;
  std::set<std::uint16_t> unreleased_;  // QoS 2 packet ids received, not yet released
  std::vector<std::string> delivered_;
  int qos2_resends_ = 0;
  std::string error_;
};

}  // namespace ringmq::testing
