#pragma once
// A small blocking HTTP/1.1 client over POSIX sockets for the observability
// tests (admin API, /metrics, Prometheus' query API), and the helpers to find
// ringmq's HTTP port. One request per connection (Connection: close), every
// wait bounded by a deadline.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/broker_process.hpp"

namespace ringmq::testing {

struct http_reply {
  int status = 0;  // 0: no answer (see error)
  std::string headers;
  std::string body;
  std::string error;

  std::string describe() const {
    if (status == 0) return "no answer: " + error;
    return "HTTP " + std::to_string(status) + "\n" + headers + "\n" + body;
  }
  // The body as JSON; a null value when it is not JSON.
  boost::json::value json() const {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    return ec ? boost::json::value() : v;
  }
  // True when the body is {"error": "<some text>"}.
  bool is_json_error() const {
    const auto v = json();
    if (!v.is_object()) return false;
    const auto* e = v.as_object().if_contains("error");
    return e && e->is_string() && !e->as_string().empty();
  }
};

// The body of a "Transfer-Encoding: chunked" message (Go's HTTP server, hence
// Prometheus, sends larger answers that way).
inline std::string dechunk(std::string_view in) {
  std::string out;
  for (;;) {
    const auto line_end = in.find("\r\n");
    if (line_end == std::string_view::npos) break;
    const auto size = std::stoul(std::string(in.substr(0, line_end)), nullptr, 16);
    if (size == 0 || in.size() < line_end + 2 + size) break;
    out.append(in.substr(line_end + 2, size));
    in.remove_prefix(std::min(in.size(), line_end + 2 + size + 2));
  }
  return out;
}

// Sends `bytes` as they are to 127.0.0.1:port and reads until the server
// closes or the deadline passes. Send errors are not fatal: a server may answer
// (413) and close before reading everything.
inline http_reply http_exchange_with(const std::string& host, std::uint16_t port,
                                     const std::string& bytes,
                                     milliseconds timeout = milliseconds(5'000)) {
  http_reply r;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    r.error = std::string("socket: ") + std::strerror(errno);
    return r;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    r.error = "not an IPv4 address: " + host;
    ::close(fd);
    return r;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    r.error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return r;
  }
  std::string_view rest(bytes);
  while (!rest.empty()) {
    const auto n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  std::string in;
  const auto deadline = steady::now() + timeout;
  char buffer[16 * 1024];
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now()).count();
    if (left <= 0) {
      r.error = "timed out";
      break;
    }
    pollfd pfd{fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    const auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // closed (or reset after the answer)
    in.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const auto header_end = in.find("\r\n\r\n");
  if (header_end == std::string::npos) {
    if (r.error.empty()) r.error = "no complete answer: " + in;
    return r;
  }
  r.headers = in.substr(0, header_end);
  r.body = in.substr(header_end + 4);
  static const std::regex status_line(R"(^HTTP/1\.[01] (\d{3}))");
  std::smatch m;
  if (std::regex_search(r.headers, m, status_line)) r.status = std::stoi(m[1].str());
  static const std::regex chunked(R"(\r\ntransfer-encoding:\s*chunked)", std::regex::icase);
  if (std::regex_search(r.headers, chunked)) r.body = dechunk(r.body);
  return r;
}

inline http_reply http_exchange(std::uint16_t port, const std::string& bytes,
                                milliseconds timeout = milliseconds(5'000)) {
  return http_exchange_with("127.0.0.1", port, bytes, timeout);
}

// One request to host:port; `headers` are extra "Name: value" lines.
inline http_reply http_request_to(const std::string& host, std::uint16_t port,
                                  const std::string& method, const std::string& target,
                                  const std::string& body = {},
                                  const std::vector<std::string>& headers = {},
                                  milliseconds timeout = milliseconds(5'000)) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + host + ":" +
                    std::to_string(port) + "\r\nConnection: close\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  if (!body.empty() || method == "POST") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n";
  }
  req += "\r\n" + body;
  return http_exchange_with(host, port, req, timeout);
}

// One request to 127.0.0.1:port.
inline http_reply http_request(std::uint16_t port, const std::string& method,
                               const std::string& target, const std::string& body = {},
                               const std::vector<std::string>& headers = {},
                               milliseconds timeout = milliseconds(5'000)) {
  return http_request_to("127.0.0.1", port, method, target, body, headers, timeout);
}

inline std::string bearer(const std::string& token) { return "Authorization: Bearer " + token; }

// The port of ringmq's HTTP server, from its "http listening: address=H:P" log line.
inline std::uint16_t http_port_of(const broker_process& broker) {
  static const std::regex listening(R"(http listening: address=\S+:(\d+))");
  const auto log = broker.log();
  std::smatch m;
  if (!std::regex_search(log, m, listening)) return 0;
  return static_cast<std::uint16_t>(std::stoi(m[1].str()));
}

// A TCP port nothing listens on at `ip` right now (the kernel's choice of an
// ephemeral port, released at once), for servers that need a port up front.
inline std::uint16_t free_tcp_port_on(const std::string& ip) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  ::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  socklen_t len = sizeof addr;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}
inline std::uint16_t free_tcp_port() { return free_tcp_port_on("127.0.0.1"); }

// Percent-encodes a query or path component.
inline std::string url_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
  return out;
}

}  // namespace ringmq::testing
