#pragma once
// A deliberately faulty MQTT broker for testing ringmq-bench. It routes just
// well enough for the bench's pairs and fan-in scenarios (a filter equal to the
// topic, or "prefix/+" one level below) with QoS 0, 1 and 2 on both sides, and,
// when asked, loses or duplicates exactly one message, so that a test can check
// that the bench notices. It listens on an ephemeral port of 127.0.0.1 and runs
// one background thread (POSIX sockets and poll()); ringmq::codec does the wire.
// It can listen on several ports that share one routing table, like the nodes
// of a cluster, and "kill" the first of them. Persistent sessions (clean start
// 0) keep their subscriptions and queue QoS 1/2 messages while offline; what
// was in flight when a connection closed is not kept. No retained messages, no
// keep-alive enforcement, no takeover.

#include <cstdint>
#include <memory>
#include <string>

namespace ringmq::testing {

enum class stub_fault {
  none,
  // The Nth routed message is acknowledged to its publisher but never forwarded.
  drop_one,
  // The Nth routed message is forwarded twice, as two PUBLISH packets with
  // different packet ids (not a retransmission: the DUP flag stays clear).
  duplicate_one,
  // The Nth persistent session to be resumed comes back (session present)
  // without the messages queued for it.
  lose_queue_of_one,
};

struct stub_options {
  stub_fault fault = stub_fault::none;
  // Which routed message the fault hits, counting from 1 the publishes that
  // matched at least one subscription (QoS 2 retransmissions are not counted).
  std::uint64_t fault_at = 1;
  // Ports to listen on (all on 127.0.0.1), sharing sessions and routes.
  int listeners = 1;
  // When a file appears at this path, the first port and every connection it
  // accepted close, as a killed node's would; the sessions survive.
  std::string kill_file;
};

class stub_broker {
 public:
  // Throws std::runtime_error when the listening socket cannot be set up.
  explicit stub_broker(stub_options options = {});
  ~stub_broker();
  stub_broker(const stub_broker&) = delete;
  stub_broker& operator=(const stub_broker&) = delete;

  // The first listener's port, or listener `i`'s.
  std::uint16_t port(int i = 0) const noexcept;
  // Connections that listener `i` accepted.
  std::uint64_t accepted(int i) const noexcept;
  // Persistent sessions resumed with session present.
  std::uint64_t resumed() const noexcept;

  // Publishes that matched at least one subscription.
  std::uint64_t routed() const noexcept;
  // PUBLISH packets sent to subscribers.
  std::uint64_t forwarded() const noexcept;
  // Whether the fault has hit a message yet.
  bool fault_applied() const noexcept;
  // Packets that a correct client never sends (an acknowledgement of an unknown
  // packet id, anything before CONNECT, undecodable bytes, ...). Each one also
  // closes the connection.
  std::uint64_t protocol_errors() const noexcept;
  // The first of them, described, for assertion messages.
  std::string first_protocol_error() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace ringmq::testing
