#pragma once
// The MQTT protocol engine of one network connection, Sans-I/O: decoded
// packets and clock ticks go in; encoded packets come out through the
// connection's outbox, and a close is requested through it. It knows no
// sockets and no threads, so every rule of the specification is a unit test.
//
// One engine per connection, driven by exactly one thread at a time (the
// connection's worker). State that outlives the connection is in the session.

#include <boost/container/devector.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "broker/codec/error.hpp"
#include "broker/codec/packets.hpp"
#include "broker/core/ack_sequencer.hpp"
#include "broker/core/auth.hpp"
#include "broker/core/broker.hpp"

namespace ringmq::core {

struct connection_info {
  std::string peer;      // "address:port"
  std::string listener;  // listener name
  std::optional<std::string> certificate_cn;
  bool use_identity_as_username = false;
};

// Runs a task later on the thread of a connection: how answers from other
// nodes (a CONNECT's claim) come back to its engine.
class task_runner {
 public:
  virtual void defer(std::function<void()> task) = 0;

 protected:
  ~task_runner() = default;
};

class engine {
 public:
  engine(broker& b, std::shared_ptr<outbox> out, connection_info info, time_point now);
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  // The connection that runs this engine; without one (tests), answers from
  // other nodes are handled on the thread that has them.
  void set_runner(std::weak_ptr<task_runner> runner) { runner_ = std::move(runner); }

  void on_packet(codec::packet&& p, time_point now);
  // The stream could not be decoded; `version` is the best known protocol version.
  void on_decode_error(const codec::codec_error& error, codec::protocol_version version,
                       time_point now);
  // Timers: the CONNECT deadline and Keep Alive.
  void on_timer(time_point now);
  std::optional<time_point> next_deadline() const;
  // The server closes the connection (shutdown, admin kick): 5.0 clients get
  // a DISCONNECT with `code`.
  // Closes the connection; 5.0 clients get a DISCONNECT with `code` (and a
  // Server Reference when `server_reference` is not empty).
  void shutdown(codec::reason_code code, std::string reason, std::string server_reference = {}) {
    close(code, std::move(reason), std::move(server_reference));
  }
  // The network connection is gone (closed by either side). Idempotent.
  void on_connection_lost(time_point now);

  // True once the engine asked for the connection to be closed.
  bool closing() const;
  bool connected() const noexcept { return connected_; }
  // True while a CONNECT waits for the cluster (its CONNACK not yet sent).
  bool connecting() const noexcept { return pending_ != nullptr; }
  codec::protocol_version version() const noexcept { return version_; }
  const client_identity& identity() const noexcept { return *identity_; }
  const std::shared_ptr<session>& current_session() const noexcept { return session_; }
  std::uint16_t keep_alive() const noexcept { return keep_alive_; }
  // Why the connection ended, for the log ("normal disconnect", "keep alive timeout", ...).
  const std::string& close_reason() const noexcept { return close_reason_; }
  // The reason code that went with it (sent to the client in 5.0), if any.
  std::optional<codec::reason_code> close_code() const noexcept { return close_code_; }

 private:
  void on_connect(codec::connect_packet&& p, time_point now);
  // The rest of CONNECT once no other node holds the client id.
  void finish_connect(claim_result result, time_point now);
  // Sends the CONNACK and attaches the session, once what CONNECT wrote is durable.
  void complete_connect(time_point now);
  // Runs what it is given on this connection's thread, from any thread.
  std::function<void(std::function<void()>)> on_this_connection() const;
  void on_publish(codec::publish_packet&& p, time_point now);
  void on_pubrel(const codec::pubrel_packet& p);
  void on_subscribe(codec::subscribe_packet&& p, time_point now);
  void on_unsubscribe(codec::unsubscribe_packet&& p);
  void on_disconnect(const codec::disconnect_packet& p, time_point now);

  void refuse_connect(codec::reason_code code, std::string reason,
                      std::string server_reference = {});
  // Closes the connection: a DISCONNECT with `code` first when 5.0 allows it.
  void close(codec::reason_code code, std::string reason, std::string server_reference = {});
  void send(codec::packet&& p);
  // Sends an acknowledgement once the store writes it depends on are durable.
  void acknowledge(codec::packet&& ack, bool close_on_failure = false);
  // The PUBREC of a numbered QoS 2 message (replicated sessions): closes the
  // connection on failure, and holds the client's next QoS 2 messages until
  // this one is settled.
  void acknowledge_numbered(codec::pubrec_packet&& rec);
  // Routes a numbered QoS 2 message once `number_written` (its number's
  // write) is committed, then acknowledges it.
  void route_numbered(codec::publish_packet&& p, std::uint64_t number, std::uint16_t packet_id,
                      const written& number_written, time_point now);
  void route_held_publishes();
  ack_sequencer& acks();
  // Publishes the will now, or parks it in the session for its delay.
  void handle_will(time_point now, bool taken_over);
  message_ptr make_will(time_point now) const;

  broker& broker_;
  std::shared_ptr<outbox> out_;
  bool use_identity_as_username_;  // the rest of connection_info is in identity_
  std::uint64_t connection_id_;
  time_point connect_deadline_;
  std::shared_ptr<ack_sequencer> acks_;

  bool connected_ = false;
  bool lost_ = false;
  bool normal_disconnect_ = false;
  bool problem_information_ = true;  // 5.0 Request Problem Information
  codec::protocol_version version_ = codec::protocol_version::v3_1_1;
  // Shared with the session once CONNECT is done, and not changed after that.
  std::shared_ptr<client_identity> identity_ = std::make_shared<client_identity>();
  std::shared_ptr<session> session_;
  std::uint16_t keep_alive_ = 0;
  time_point last_packet_{};
  std::uint32_t session_expiry_ = 0;
  std::uint32_t connect_expiry_ = 0;   // Session Expiry Interval as CONNECT gave it
  std::uint32_t peer_max_packet_ = 0;   // the client's Maximum Packet Size; 0 = none
  // Few clients set a will; its properties make it large, so it is held apart.
  std::unique_ptr<codec::will_message> will_;
  std::uint32_t will_delay() const;  // of will_, in seconds (0 before MQTT 5)
  std::unordered_map<std::uint16_t, std::string> topic_aliases_;  // inbound, per connection
  // What CONNECT said that is needed once its claim is granted, and the
  // packets the client sent meanwhile. Null outside of that wait.
  struct pending_connect {
    bool clean_start = false;
    bool assigned_id = false;
    bool response_information = false;
    std::optional<std::uint16_t> server_keep_alive;
    std::uint32_t requested_expiry = 0;
    peer_limits peer;
    std::vector<codec::packet> held;
  };
  std::unique_ptr<pending_connect> pending_;
  // A numbered QoS 2 message is being settled; the QoS 2 PUBLISH packets
  // that came meanwhile wait here (rarely any: a client with one in flight).
  bool routing_numbered_ = false;
  boost::container::devector<codec::publish_packet> held_publishes_;  // allocates nothing until used
  bool storing_session_ = false;  // CONNECT's writes are on their way to durability
  bool session_present_ = false;  // for the CONNACK
  std::weak_ptr<task_runner> runner_;
  std::string close_reason_;
  std::optional<codec::reason_code> close_code_;
};

}  // namespace ringmq::core
