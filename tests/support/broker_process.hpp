#pragma once
// Test support for driving a real ringmq process:
//  - background_process: any program (ringmq, mosquitto_sub, ...) running while a
//    test acts on it, its stdout and stderr read continuously into buffers that
//    the test can wait on with a deadline;
//  - broker_process: ringmq on an ephemeral port with a private data directory,
//    stopped with SIGTERM at the end of the test, which fails unless it exits 0;
//  - mqtt_socket: a blocking MQTT client over a plain TCP socket, built on the
//    codec, for the byte-level misbehaviour no real client library produces.
// Every wait takes a deadline and wakes on the event itself (pipe data, a pidfd,
// a readable socket); nothing here sleeps for a fixed time.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "broker/codec/decoder.hpp"
#include "broker/codec/packets.hpp"
#include "broker/codec/types.hpp"

namespace ringmq::testing {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How a process ended.
struct exit_status {
  int exit_code = -1;  // valid when signal == 0
  int signal = 0;

  bool clean() const noexcept { return signal == 0 && exit_code == 0; }
  std::string describe() const;
};

class background_process {
 public:
  // Starts argv[0] (looked up in PATH unless it contains a '/'), in its own
  // process group, stdin from /dev/null. `set_env` is added to the environment.
  explicit background_process(std::vector<std::string> argv,
                              std::map<std::string, std::string> set_env = {});
  background_process(const background_process&) = delete;
  background_process& operator=(const background_process&) = delete;
  // Kills whatever is still running in the process group (SIGKILL) and reaps it.
  ~background_process();

  bool started() const noexcept { return pid_ > 0; }
  const std::string& start_error() const noexcept { return start_error_; }
  pid_t pid() const noexcept { return pid_; }
  const std::string& command() const noexcept { return command_; }

  // Sends `sig` to the process (not its group); false once it has been reaped.
  bool signal(int sig);

  // Waits until `ready(stdout, stderr)` holds, the process has exited and its
  // output is drained, or the deadline passes. Returns the last value of `ready`.
  bool wait_for(const std::function<bool(const std::string& out, const std::string& err)>& ready,
                milliseconds timeout);
  bool wait_for_out(std::string_view text, milliseconds timeout);
  bool wait_for_err(std::string_view text, milliseconds timeout);
  // Waits for the exit; nullopt when it is still running at the deadline.
  std::optional<exit_status> wait_exit(milliseconds timeout);

  std::string out() const;
  std::string err() const;
  std::optional<exit_status> status() const;
  // The command, how it ended (or that it runs) and both outputs, for failure messages.
  std::string describe() const;

 private:
  void reader_loop(int out_fd, int err_fd, int pidfd, int wake_fd);

  std::string command_;
  std::string start_error_;
  pid_t pid_ = -1;
  int wake_read_ = -1;
  int wake_write_ = -1;  // written to by the destructor to stop the reader
  std::thread reader_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string out_;
  std::string err_;
  std::optional<exit_status> status_;
  bool drained_ = false;  // exited and both pipes at EOF
};

// The ringmq executable the integration tests run, from RINGMQ_BINARY.
std::string ringmq_binary();

// ringmq started with `--set listeners[0].bind=127.0.0.1:0 --set http.bind=`,
// a fresh temporary node.data_dir, and the given extra "key=value" overrides.
class broker_process {
 public:
  explicit broker_process(std::vector<std::string> overrides = {},
                          milliseconds start_timeout = milliseconds(10'000));
  broker_process(const broker_process&) = delete;
  broker_process& operator=(const broker_process&) = delete;
  // Stops the broker if the test did not, failing the test unless it exits 0,
  // then removes the data directory.
  ~broker_process();

  // True once the "started" line appeared and the port is known.
  bool ready() const noexcept { return port_ != 0; }
  std::uint16_t port() const noexcept { return port_; }
  std::string port_string() const { return std::to_string(port_); }
  const std::string& data_dir() const noexcept { return data_dir_; }
  pid_t pid() const noexcept { return process_->pid(); }
  background_process& process() noexcept { return *process_; }

  // The broker's log so far (it logs to stderr).
  std::string log() const { return process_->err(); }
  // Waits until the log contains `text`.
  bool wait_for_log(std::string_view text, milliseconds timeout = milliseconds(10'000));
  // Waits until the log contains `text` at least `count` times.
  bool wait_for_log_count(std::string_view text, std::size_t count,
                          milliseconds timeout = milliseconds(10'000));

  // Sends SIGTERM, once: a second one makes ringmq exit at once.
  bool terminate();
  // terminate() and wait for the exit; nullopt when it did not exit in time
  // (the destructor then kills it). Calling it again returns the first result.
  std::optional<exit_status> stop(milliseconds timeout = milliseconds(15'000));
  // Resident memory of the broker process in KiB, from /proc; 0 when unknown.
  std::uint64_t resident_kib() const;

  std::string describe() const { return process_->describe(); }

 private:
  std::string data_dir_;
  std::unique_ptr<background_process> process_;
  std::uint16_t port_ = 0;
  bool terminated_ = false;
  bool stopped_ = false;
  std::optional<exit_status> stop_result_;
};

// Counts non-overlapping occurrences of `needle` in `haystack`.
std::size_t count_of(std::string_view haystack, std::string_view needle);

// A blocking MQTT client over a plain TCP socket to 127.0.0.1. Packets are
// encoded and decoded with the codec in the version given to set_version()
// (3.1.1 until then).
class mqtt_socket {
 public:
  mqtt_socket() = default;
  mqtt_socket(const mqtt_socket&) = delete;
  mqtt_socket& operator=(const mqtt_socket&) = delete;
  ~mqtt_socket();

  // `source_address`: the local IPv4 address to connect from (any 127.x.y.z
  // works on loopback, so tests can look like different hosts); empty: any.
  bool connect_tcp(std::uint16_t port, const std::string& source_address = {});
  // The IPv4 address connect_tcp() connects to (127.0.0.1 until set): a
  // cluster test's nodes each listen on their own loopback address.
  void set_host(std::string host) { host_ = std::move(host); }
  void set_version(codec::protocol_version v) noexcept;
  codec::protocol_version version() const noexcept { return version_; }

  bool send_bytes(std::string_view bytes);
  bool send(const codec::packet& p);

  enum class read_result { packet, timeout, closed, malformed };
  // The next packet from the broker, waiting at most `timeout`.
  read_result receive(codec::packet& into, milliseconds timeout);
  // Waits until the broker closes the connection, discarding whatever it
  // sends (kept in last_packets()). True when it closed before the deadline.
  bool wait_closed(milliseconds timeout);
  bool closed() const noexcept { return closed_; }
  const std::vector<codec::packet>& last_packets() const noexcept { return discarded_; }

  // CONNECT and wait for the CONNACK; nullopt (with why in error()) on anything else.
  std::optional<codec::connack_packet> handshake(const codec::connect_packet& connect,
                                                 milliseconds timeout = milliseconds(5'000));
  const std::string& error() const noexcept { return error_; }
  void close();

  // After a burst of PUBLISHes: sends a QoS 1 PUBLISH to `topic` and waits
  // for its PUBACK, which the broker sends only once everything this
  // connection sent before it has been handled. False on anything else.
  bool confirm_handled(const std::string& topic, milliseconds timeout);

 private:
  int fd_ = -1;
  bool closed_ = false;
  std::string host_ = "127.0.0.1";
  codec::protocol_version version_ = codec::protocol_version::v3_1_1;
  codec::stream_decoder decoder_;
  std::vector<codec::packet> discarded_;
  std::string error_;
};

// A well-behaved MQTT 5 client running on its own thread for the length of a
// test: it subscribes to its topic with QoS 1 and keeps publishing QoS 1
// messages to it, one at a time, checking that each is acknowledged and
// delivered back, in order, within `max_round_trip`. Misbehaving clients must
// not disturb it. With a `source_address` (127.0.0.2, ...) it connects from
// there, so that nothing done to the misbehaving clients' address applies to it.
class steady_client {
 public:
  steady_client(std::uint16_t port, std::string client_id,
                milliseconds max_round_trip = milliseconds(2'000), std::string source_address = {});
  ~steady_client();

  // True once the client is connected and subscribed (waits at most `timeout`).
  bool wait_running(milliseconds timeout = milliseconds(5'000));
  // Waits until at least `count` round trips completed since start.
  bool wait_round_trips(std::size_t count, milliseconds timeout);
  // Waits until `count` more round trips than now completed.
  bool wait_more_round_trips(std::size_t count, milliseconds timeout);
  // The longest round trip so far.
  milliseconds slowest() const;
  // Stops after the round trip in progress; returns an empty string when every
  // message arrived in time and nothing went wrong, else what went wrong.
  std::string stop();
  std::size_t round_trips() const;

 private:
  void run();
  bool round_trip(mqtt_socket& s, std::uint32_t n);

  std::uint16_t port_;
  std::string client_id_;
  milliseconds max_round_trip_;
  std::string source_address_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool running_ = false;
  bool stop_ = false;
  bool finished_ = false;
  std::size_t round_trips_ = 0;
  milliseconds slowest_{0};
  std::string failure_;
  std::thread thread_;
};

}  // namespace ringmq::testing
