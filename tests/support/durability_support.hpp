#pragma once
// Test support for the durability tests: one store that outlives several
// ringmq processes (started on a data directory the test owns, killed with
// SIGKILL or stopped with SIGTERM, started again), and MQTT clients on the
// codec that know exactly which messages the broker acknowledged and which
// it delivered:
//  - node_process: ringmq on a given data directory; no cleanup of the directory,
//    no failure when it dies, so a test can kill it and start another on the store;
//  - stream_publisher: publishes numbered payloads ("<name>:<n>") with a window
//    of unacknowledged messages on its own thread, recording per message whether
//    it was accepted (PUBACK, PUBREC) and completed (PUBCOMP);
//  - recording_subscriber: a persistent-session subscriber that records what it
//    is given, answering QoS 2 the way the specification asks of a receiver
//    (a packet id awaiting PUBREL marks a resent PUBLISH, not a new message), and
//    that keeps that state across reconnections, as a real client with a
//    persistent session does.
// Every wait has a deadline and wakes on the event; nothing sleeps a fixed time.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "broker/codec/packets.hpp"
#include "tests/support/broker_process.hpp"

namespace ringmq::testing::durability {

// A fresh directory under the temporary directory, removed with everything in it.
class scratch_dir {
 public:
  explicit scratch_dir(std::string_view tag = "ringmq-durability");
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  ~scratch_dir();
  const std::string& path() const noexcept { return path_; }
  std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// ringmq on `data_dir` with `--set listeners[0].bind=127.0.0.1:0 --set
// http.bind=` (overridable) and the given overrides. The constructor waits
// until it has started or exited.
class node_process {
 public:
  node_process(std::string data_dir, std::vector<std::string> overrides = {},
               milliseconds start_timeout = milliseconds(30'000));
  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;
  // Kills whatever still runs (SIGKILL). A test that wants a clean exit calls stop().
  ~node_process();

  bool ready() const noexcept { return port_ != 0; }
  std::uint16_t port() const noexcept { return port_; }
  // The HTTP port, from "http listening: address=..." (0 without http.bind).
  std::uint16_t http_port() const noexcept { return http_port_; }
  steady::time_point spawned_at() const noexcept { return spawned_at_; }
  background_process& process() noexcept { return *process_; }

  // SIGKILL, then waits for the exit: nothing of the process survives but its files.
  void kill();
  // SIGTERM, then waits for the exit; nullopt when it still runs at the deadline.
  std::optional<exit_status> stop(milliseconds timeout = milliseconds(15'000));
  std::optional<exit_status> wait_exit(milliseconds timeout) {
    return process_->wait_exit(timeout);
  }

  std::string log() const { return process_->err(); }
  bool wait_for_log(std::string_view text, milliseconds timeout = milliseconds(10'000)) {
    return process_->wait_for_err(text, timeout);
  }
  std::string describe() const { return process_->describe(); }
  // The last `lines` lines of the log, for failure messages that would be huge otherwise.
  std::string log_tail(std::size_t lines = 40) const;

 private:
  std::unique_ptr<background_process> process_;
  steady::time_point spawned_at_;
  std::uint16_t port_ = 0;
  std::uint16_t http_port_ = 0;
  bool signalled_ = false;
};

// "<name>:<n>" and back.
std::string numbered_payload(std::string_view name, std::uint32_t n);
// The number of a payload of `name`; nullopt for any other payload.
std::optional<std::uint32_t> number_of(std::string_view payload, std::string_view name);

// What the broker said about one published message.
enum class ack_state : std::uint8_t {
  none,       // no acknowledgement (not sent, or the broker died first)
  refused,    // PUBACK / PUBREC with a code of 0x80 or above
  accepted,   // PUBACK, or PUBREC with a success code: the broker owns the message
  completed,  // QoS 2: PUBCOMP as well
};

struct stream_options {
  std::string client_id;
  codec::protocol_version version = codec::protocol_version::v5;
  codec::qos qos = codec::qos::at_least_once;
  std::string name;   // payload prefix; also the default topic suffix
  std::string topic;  // every message goes to this topic...
  bool retained = false;  // ...or, when true, message n to "<topic>/<n>" with RETAIN set
  std::uint32_t count = 1000;
  std::size_t window = 32;  // messages sent and not yet acknowledged
  milliseconds time_limit{60'000};
  // 0: Clean Start. Otherwise a persistent session (with this Session Expiry
  // Interval in 5.0) that resume() continues after the connection was lost.
  std::uint32_t session_expiry = 0;
};

// Publishes messages 1..count on its own thread until all are acknowledged or
// the connection ends.
class stream_publisher {
 public:
  stream_publisher(std::uint16_t port, stream_options options);
  stream_publisher(const stream_publisher&) = delete;
  stream_publisher& operator=(const stream_publisher&) = delete;
  ~stream_publisher();

  // Messages accepted so far (PUBACK / PUBREC with a success code).
  std::size_t accepted() const { return accepted_.load(); }
  bool wait_accepted(std::size_t n, milliseconds timeout);
  // Waits for the thread to end (every message acknowledged, or the connection lost).
  void join();
  // A persistent publisher after join(): connects again to its session, sends
  // what was not acknowledged again as a client must (PUBLISH with DUP set,
  // PUBREL for what the broker had received) and finishes the stream.
  void resume(std::uint16_t port);
  // After resume() and join(): whether the CONNACK said the session was there.
  bool resumed_session_present() const noexcept { return session_present_; }
  // After join(): state of message n at index n (index 0 unused).
  const std::vector<ack_state>& states() const noexcept { return states_; }
  std::size_t count(ack_state s) const;
  const std::string& error() const noexcept { return error_; }
  const stream_options& options() const noexcept { return options_; }

 private:
  struct outstanding {
    std::uint32_t number;
    bool released;  // QoS 2: PUBREC received, PUBREL sent
    bool resent;    // sent again after resume()
  };
  void run(std::uint16_t port, bool resuming);
  codec::publish_packet message(std::uint32_t n, std::uint16_t packet_id) const;

  stream_options options_;
  std::vector<ack_state> states_;
  // Packet id -> message, for everything sent and not finished; kept across resume().
  std::map<std::uint16_t, outstanding> outstanding_;
  std::uint32_t next_ = 1;
  std::uint16_t last_id_ = 0;
  bool session_present_ = false;
  std::atomic<std::size_t> accepted_{0};
  std::mutex mutex_;
  std::condition_variable changed_;
  bool finished_ = false;
  std::string error_;
  std::thread thread_;
};

// Publishes one message and waits for the end of its exchange (PUBACK;
// PUBREC, PUBREL, PUBCOMP). Returns the code of the PUBACK or PUBREC, or
// nullopt when the connection closed or nothing came in time.
std::optional<codec::reason_code> publish_one(mqtt_socket& s, const codec::publish_packet& p,
                                              milliseconds timeout = milliseconds(5'000));

// A client that connects with a fixed client id and a persistent session.
codec::connect_packet persistent_connect(std::string client_id, codec::protocol_version v,
                                         std::uint32_t session_expiry = 3600);
// A Clean Start client.
codec::connect_packet clean_connect(std::string client_id, codec::protocol_version v);

// One PUBLISH as the application saw it.
struct delivery {
  std::string topic;
  std::string payload;
  codec::qos qos = codec::qos::at_most_once;
  bool dup = false;
  bool retain = false;
  bool completed = false;  // QoS 2: PUBREL received and PUBCOMP sent
};

class recording_subscriber {
 public:
  explicit recording_subscriber(codec::connect_packet connect);
  recording_subscriber(const recording_subscriber&) = delete;
  recording_subscriber& operator=(const recording_subscriber&) = delete;

  // Connects (again); nullopt with error() on failure.
  std::optional<codec::connack_packet> connect(std::uint16_t port);
  // SUBSCRIBE and wait for a SUBACK granting what was asked.
  bool subscribe(const std::vector<std::pair<std::string, codec::qos>>& filters);

  enum class pump_result { done, closed, timeout, error };
  // Reads and answers packets until `done()` holds, the connection closes or the deadline.
  pump_result pump(const std::function<bool()>& done, milliseconds timeout);
  // Until a delivery with `payload` arrived.
  pump_result pump_until_payload(std::string_view payload, milliseconds timeout);
  // Called after each packet from the broker is handled (and answered), on
  // the thread that pumps: lets a test act at an exact point of an exchange.
  void on_packet(std::function<void(const codec::packet&)> hook) { hook_ = std::move(hook); }
  void disconnect();  // DISCONNECT, then close
  void drop();        // close without DISCONNECT

  const std::vector<delivery>& deliveries() const noexcept { return deliveries_; }
  // QoS 2 PUBLISH packets whose packet id was awaiting PUBREL: resent, not delivered again.
  std::size_t resent_qos2() const noexcept { return resent_qos2_; }
  std::size_t awaiting_pubrel() const noexcept { return awaiting_pubrel_.size(); }
  const std::string& error() const noexcept { return error_; }
  mqtt_socket* socket() noexcept { return socket_.get(); }

 private:
  bool handle(codec::packet& p);

  codec::connect_packet connect_;
  std::unique_ptr<mqtt_socket> socket_;
  std::vector<delivery> deliveries_;
  // QoS 2 packet id -> index of its delivery, until PUBREL.
  std::map<std::uint16_t, std::size_t> awaiting_pubrel_;
  std::size_t resent_qos2_ = 0;
  std::uint16_t next_packet_id_ = 1;
  std::string error_;
  std::function<void(const codec::packet&)> hook_;
};

// Checks what a subscriber got of one stream against what its publisher had
// acknowledged: every accepted message arrived; numbers increase (a number
// seen before is a duplicate, allowed unless `exactly_once`; an older number
// not seen before is an order violation). Empty when all is well, else what went wrong.
struct stream_check {
  std::size_t delivered = 0;   // distinct numbers
  std::size_t duplicates = 0;
  std::size_t missing = 0;     // accepted but never delivered
  std::string problems;
};
stream_check check_stream(const std::vector<delivery>& got, std::string_view name,
                          const std::vector<ack_state>& acked, bool exactly_once);

// GET http://127.0.0.1:<port><path>; the status code, or 0 when there was no answer.
int http_get_status(std::uint16_t port, std::string_view path, milliseconds timeout);

}  // namespace ringmq::testing::durability
