#pragma once
// A minimal MQTT server for codec interoperability tests. It listens on an
// ephemeral port of 127.0.0.1, decodes everything a client sends with
// codec::stream_decoder, records the exact bytes of every packet next to its
// decoded form, and answers just enough for a real client to carry on:
// CONNACK, SUBACK granting what was asked, PUBACK / PUBREC / PUBREL / PUBCOMP,
// UNSUBACK, PINGRESP, and one PUBLISH to a subscriber so that clients waiting
// for a message finish. It keeps no session and routes nothing.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broker/codec/decoder.hpp"
#include "broker/codec/packets.hpp"

namespace ringmq::testing {

struct captured_packet {
  std::string raw;  // the bytes on the wire, fixed header included
  codec::protocol_version version = codec::protocol_version::v3_1_1;  // used to decode it
  std::optional<codec::packet> decoded;
  std::optional<codec::codec_error> error;
};

struct captured_connection {
  std::vector<captured_packet> packets;  // client to server, in order
  std::string client_bytes;              // everything the client sent
  std::string server_bytes;              // everything the server sent
  std::vector<std::string> server_packets;  // the encoded packets the server sent, in order
  std::optional<codec::protocol_version> version;  // from CONNECT
  bool timed_out = false;  // the client went quiet without closing
};

// When the server sends its one PUBLISH to a subscriber.
enum class publish_trigger {
  never,
  after_suback,    // right after the first SUBACK
  after_pingreq,   // once both a SUBSCRIBE and a PINGREQ have come (keep-alive tests)
};

struct capture_options {
  publish_trigger trigger = publish_trigger::after_suback;
  std::string payload = "ringmq capture payload";
  // A connection with no traffic for this long is closed and marked timed out.
  std::chrono::milliseconds idle_timeout{10'000};
};

class capture_server {
 public:
  explicit capture_server(capture_options options = {});
  ~capture_server();
  capture_server(const capture_server&) = delete;
  capture_server& operator=(const capture_server&) = delete;

  std::uint16_t port() const noexcept { return port_; }

  // Waits until at least `count` connections have ended. False on timeout.
  bool wait_for_connections(std::size_t count, std::chrono::milliseconds timeout);
  // The connections that have ended, in the order they ended.
  std::vector<captured_connection> connections() const;

  // The topic the server publishes to for a subscription to `filter`: the
  // filter with every wildcard level replaced by a concrete one.
  static std::string topic_for_filter(std::string_view filter);

 private:
  void accept_loop();
  void serve(int fd);

  capture_options options_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: wakes every poll() when the server stops
  std::uint16_t port_ = 0;
  std::thread acceptor_;

  mutable std::mutex mutex_;
  std::condition_variable ended_;
  std::vector<captured_connection> connections_;
  std::vector<std::thread> workers_;
};

// Lower-case hex with a space every byte, for assertion messages.
std::string hex(std::string_view bytes);

}  // namespace ringmq::testing
