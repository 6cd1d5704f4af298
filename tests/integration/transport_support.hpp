#pragma once
// Support for the transport and abuse tests:
//  - test_pki: a CA, server and client certificates made with the openssl
//    command line in a private directory, as an operator would make them;
//  - listener_port(): the port of a named listener, from ringmq's log;
//  - metric_value(): one series of ringmq's /metrics;
//  - ws_socket: a raw WebSocket client (RFC 6455 framing, masked as clients
//    must) carrying MQTT packets built with the codec, for what no library
//    does on purpose: packets split over frames, several packets in a frame;
//  - open_socket(): a plain TCP connection from a chosen source address.
// Every wait has a deadline and wakes on the event (a readable socket).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "broker/codec/encoder.hpp"
#include "tests/integration/auth_files.hpp"
#include "tests/integration/child_process.hpp"
#include "tests/integration/observability_http.hpp"
#include "tests/support/broker_process.hpp"

namespace ringmq::testing {

// ---------------------------------------------------------------------------
// Certificates

// Keys are P-256 (fast to make); serials are fixed so that a test can tell
// certificates apart in `openssl s_client` output.
class test_pki {
 public:
  explicit test_pki(const scratch_dir& dir) : dir_(dir) {
    dir_.write("server.ext",
               "basicConstraints=CA:FALSE\n"
               "keyUsage=critical,digitalSignature,keyEncipherment\n"
               "extendedKeyUsage=serverAuth\n"
               "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    dir_.write("client.ext",
               "basicConstraints=CA:FALSE\n"
               "keyUsage=critical,digitalSignature\n"
               "extendedKeyUsage=clientAuth\n");
    make_ca("ca", "ringmq-test-ca") && make_ca("other-ca", "ringmq-other-ca") &&
        make_cert("server", "ca", "/CN=localhost", "0x1001", "server.ext") &&
        make_cert("device-7", "ca", "/CN=device-7", "0x2007", "client.ext") &&
        make_cert("device-8", "ca", "/CN=device-8", "0x2008", "client.ext") &&
        make_cert("rogue-7", "other-ca", "/CN=device-7", "0x3007", "client.ext");
  }

  // Empty when every file was made, else the failed command and its output.
  const std::string& error() const noexcept { return error_; }

  std::string ca() const { return dir_.file("ca.crt"); }
  std::string cert(std::string_view name) const { return dir_.file(std::string(name) + ".crt"); }
  std::string key(std::string_view name) const { return dir_.file(std::string(name) + ".key"); }

  // Another server certificate (from the test CA) under `name`.
  bool make_server_cert(const std::string& name, const std::string& subject,
                        const std::string& serial) {
    return make_cert(name, "ca", subject, serial, "server.ext");
  }

 private:
  bool run(const std::vector<std::string>& argv) {
    child_options options;
    options.timeout = milliseconds(10'000);
    const auto r = run_child(argv, options);
    if (!r.succeeded() && error_.empty()) error_ = r.describe();
    return r.succeeded();
  }

  bool make_ca(const std::string& name, const std::string& cn) {
    return run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key(name), "-out", cert(name),
                "-subj", "/CN=" + cn, "-days", "2", "-addext",
                "basicConstraints=critical,CA:TRUE", "-addext",
                "keyUsage=critical,keyCertSign,cRLSign"});
  }

  bool make_cert(const std::string& name, const std::string& ca, const std::string& subject,
                 const std::string& serial, const std::string& extensions) {
    const auto csr = dir_.file(name + ".csr");
    return run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key(name), "-out", csr,
                "-subj", subject}) &&
           run({"openssl", "x509", "-req", "-in", csr, "-CA", cert(ca), "-CAkey", key(ca),
                "-set_serial", serial, "-days", "2", "-out", cert(name), "-extfile",
                dir_.file(extensions)});
  }

  const scratch_dir& dir_;
  std::string error_;
};

// ---------------------------------------------------------------------------
// The broker

// The port of the listener called `name`, from its "listening: listener=NAME
// address=HOST:PORT" log line; 0 when there is none.
inline std::uint16_t listener_port(const broker_process& broker, const std::string& name) {
  static const std::regex listening(R"(listening: listener=(\S+) address=\S+:(\d+))");
  const auto log = broker.log();
  for (std::sregex_iterator it(log.begin(), log.end(), listening), end; it != end; ++it) {
    if ((*it)[1].str() == name) return static_cast<std::uint16_t>(std::stoi((*it)[2].str()));
  }
  return 0;
}

// The value of one series of /metrics (`series` exactly as exposed, labels
// included: `ringmq_messages_dropped_total{reason="slow_consumer"}`); nullopt
// when the scrape failed or the series is missing.
inline std::optional<double> metric_value(std::uint16_t http_port, const std::string& series) {
  const auto reply = http_request(http_port, "GET", "/metrics");
  if (reply.status != 200) return std::nullopt;
  std::string_view body(reply.body);
  while (!body.empty()) {
    const auto end = body.find('\n');
    const auto line = body.substr(0, end);
    if (line.size() > series.size() + 1 && line.substr(0, series.size()) == series &&
        line[series.size()] == ' ') {
      return std::strtod(std::string(line.substr(series.size() + 1)).c_str(), nullptr);
    }
    if (end == std::string_view::npos) break;
    body.remove_prefix(end + 1);
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Sockets

inline int remaining_ms(steady::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1'000'000));
}

// A TCP connection to 127.0.0.1:port from `source_address` (empty: any);
// the descriptor, or -1 with errno set.
inline int open_socket(std::uint16_t port, const std::string& source_address = {}) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (!source_address.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source_address.c_str(), &local.sin_addr) != 1 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
      return -1;
    }
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

// Waits until the peer closes `fd` (EOF or reset), discarding what it sends.
// True when it closed before the deadline.
inline bool wait_peer_closed(int fd, milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  char buffer[4096];
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    const auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
  }
}

// A raw WebSocket client over TCP: the HTTP upgrade, then frames.
class ws_socket {
 public:
  enum opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close_frame = 0x8,
    ping = 0x9,
    pong = 0xA
  };
  struct frame {
    std::uint8_t op = 0;
    bool fin = true;
    std::string payload;
  };
  struct http_answer {
    int status = 0;  // 0: no complete answer
    std::string head;  // status line and headers
    std::string body;  // what came after the headers before the close (non-101 answers)
  };

  ws_socket() = default;
  ws_socket(const ws_socket&) = delete;
  ws_socket& operator=(const ws_socket&) = delete;
  ~ws_socket() { close(); }

  bool connect(std::uint16_t port) {
    close();
    fd_ = open_socket(port);
    if (fd_ < 0) error_ = std::string("connect: ") + std::strerror(errno);
    return fd_ >= 0;
  }
  int fd() const noexcept { return fd_; }
  const std::string& error() const noexcept { return error_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send_raw(std::string_view bytes) {
    while (!bytes.empty()) {
      const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error_ = std::string("send: ") + std::strerror(errno);
        return false;
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // A GET for `target` with the upgrade headers (unless `upgrade` is false)
  // and `extra_headers` ("Name: value" lines). Reads the answer's head; for a
  // 101 the socket then carries frames, otherwise the body is read until the
  // server closes.
  http_answer request(const std::string& target, const std::vector<std::string>& extra_headers,
                      bool upgrade = true, milliseconds timeout = milliseconds(5'000)) {
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (upgrade) {
      req +=
          "Upgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    }
    for (const auto& h : extra_headers) req += h + "\r\n";
    req += "\r\n";
    http_answer a;
    if (!send_raw(req)) return a;
    const auto deadline = steady::now() + timeout;
    std::size_t head_end;
    while ((head_end = in_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill(deadline)) return a;
    }
    a.head = in_.substr(0, head_end);
    in_.erase(0, head_end + 4);
    static const std::regex status_line(R"(^HTTP/1\.[01] (\d{3}))");
    std::smatch m;
    if (std::regex_search(a.head, m, status_line)) a.status = std::stoi(m[1].str());
    if (a.status != 101) {
      while (fill(deadline)) {
      }
      a.body = std::move(in_);
      in_.clear();
    }
    return a;
  }

  // One frame, masked with a fresh key as a client must [RFC 6455 5.3].
  bool send_frame(std::uint8_t op, std::string_view payload, bool fin = true) {
    std::string f;
    f.push_back(static_cast<char>((fin ? 0x80 : 0x00) | op));
    const auto size = payload.size();
    if (size < 126) {
      f.push_back(static_cast<char>(0x80 | size));
    } else if (size <= 0xFFFF) {
      f.push_back(static_cast<char>(0x80 | 126));
      f.push_back(static_cast<char>(size >> 8));
      f.push_back(static_cast<char>(size & 0xFF));
    } else {
      f.push_back(static_cast<char>(0x80 | 127));
      for (int shift = 56; shift >= 0; shift -= 8) {
        f.push_back(static_cast<char>((static_cast<std::uint64_t>(size) >> shift) & 0xFF));
      }
    }
    char mask[4];
    for (auto& b : mask) b = static_cast<char>(random_() & 0xFF);
    f.append(mask, 4);
    for (std::size_t i = 0; i < size; ++i) f.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
    return send_raw(f);
  }

  // The next frame from the server; nullopt on timeout or close (closed() tells).
  std::optional<frame> read_frame(milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    for (;;) {
      if (auto f = parse_frame()) return f;
      if (!fill(deadline)) return std::nullopt;
    }
  }

  // Sends MQTT bytes as binary messages, one per part (cut at the given offsets).
  bool send_mqtt_split(std::string_view bytes, const std::vector<std::size_t>& cuts) {
    std::size_t at = 0;
    for (auto cut : cuts) {
      if (!send_frame(binary, bytes.substr(at, cut - at))) return false;
      at = cut;
    }
    return send_frame(binary, bytes.substr(at));
  }

  void set_version(codec::protocol_version v) { decoder_.set_version(v); }

  // The next MQTT packet carried by binary frames; control frames met on the
  // way are kept in control_frames().
  std::optional<codec::packet> receive_mqtt(milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    for (;;) {
      auto next = decoder_.next();
      if (!next) {
        error_ = "undecodable MQTT from the server: " + std::string(next.error().detail);
        return std::nullopt;
      }
      if (*next) return std::move(**next);
      auto f = read_frame(milliseconds(remaining_ms(deadline)));
      if (!f) return std::nullopt;
      if (f->op == binary || f->op == continuation) {
        decoder_.feed(f->payload);
      } else {
        control_.push_back(std::move(*f));
      }
    }
  }
  std::vector<frame>& control_frames() { return control_; }

  bool closed() const noexcept { return closed_; }
  // True when the server masked a frame, which RFC 6455 forbids.
  bool server_masked() const noexcept { return server_masked_; }

 private:
  // Reads what is available into in_; false on timeout or close.
  bool fill(steady::time_point deadline) {
    if (closed_ || fd_ < 0) return false;
    for (;;) {
      pollfd pfd{fd_, POLLIN, 0};
      const int ready = ::poll(&pfd, 1, remaining_ms(deadline));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) {
        error_ = "timed out";
        return false;
      }
      char buffer[16 * 1024];
      const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        closed_ = true;
        error_ = n == 0 ? "closed by the server" : std::string("recv: ") + std::strerror(errno);
        return false;
      }
      in_.append(buffer, static_cast<std::size_t>(n));
      return true;
    }
  }

  std::optional<frame> parse_frame() {
    if (in_.size() < 2) return std::nullopt;
    const auto b0 = static_cast<std::uint8_t>(in_[0]);
    const auto b1 = static_cast<std::uint8_t>(in_[1]);
    std::size_t at = 2;
    std::uint64_t size = b1 & 0x7F;
    if (size == 126) {
      if (in_.size() < 4) return std::nullopt;
      size = (static_cast<std::uint64_t>(static_cast<std::uint8_t>(in_[2])) << 8) |
             static_cast<std::uint8_t>(in_[3]);
      at = 4;
    } else if (size == 127) {
      if (in_.size() < 10) return std::nullopt;
      size = 0;
      for (int i = 0; i < 8; ++i) size = (size << 8) | static_cast<std::uint8_t>(in_[2 + i]);
      at = 10;
    }
    const bool masked = (b1 & 0x80) != 0;  // servers must not mask; kept readable anyway
    char mask[4] = {0, 0, 0, 0};
    if (masked) {
      if (in_.size() < at + 4) return std::nullopt;
      std::memcpy(mask, in_.data() + at, 4);
      at += 4;
    }
    if (in_.size() < at + size) return std::nullopt;
    frame f;
    f.op = b0 & 0x0F;
    f.fin = (b0 & 0x80) != 0;
    f.payload = in_.substr(at, size);
    if (masked) {
      for (std::size_t i = 0; i < f.payload.size(); ++i) f.payload[i] ^= mask[i % 4];
    }
    server_masked_ = server_masked_ || masked;
    in_.erase(0, at + size);
    return f;
  }

  int fd_ = -1;
  bool closed_ = false;
  bool server_masked_ = false;
  std::string in_;
  std::string error_;
  codec::stream_decoder decoder_;
  std::vector<frame> control_;
  std::minstd_rand random_{std::random_device{}()};
};

}  // namespace ringmq::testing
