#pragma once
// A small HTTP/1.1 server (Boost.Beast) for /metrics, /livez, /readyz and the
// admin API. Requests are bounded (header and body size, read and write
// timeouts) and answered by handlers registered per path prefix.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ringmq::http {

struct request {
  std::string method;  // "GET", "DELETE", "POST", ...
  std::string path;    // without the query string
  std::multimap<std::string, std::string> query;
  std::string authorization;  // the Authorization header, if any
  std::string body;
};

struct response {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Handlers may answer at once or later (from any thread) through `reply`.
using reply_function = std::function<void(response)>;
using handler = std::function<void(const request&, reply_function reply)>;

struct server_limits {
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 64 * 1024;
  std::uint32_t timeout_ms = 10'000;
  std::uint32_t max_connections = 256;
};

class server : public std::enable_shared_from_this<server> {
 public:
  server(boost::asio::io_context& io, std::string host, std::uint16_t port,
         server_limits limits = {});

  // Longest matching prefix wins; "/api/v1/clients" also serves "/api/v1/clients/x".
  void route(std::string prefix, handler h);

  void open();  // throws boost::system::system_error when the address is unusable
  void start();
  void stop();
  std::uint16_t port() const;

  // Decodes %XX and '+' in a URL component.
  static std::string url_decode(std::string_view s);

 private:
  class session;
  void accept();
  const handler* find(const std::string& path) const;

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::string host_;
  std::uint16_t port_;
  server_limits limits_;
  std::vector<std::pair<std::string, handler>> routes_;
  std::shared_ptr<std::atomic<std::uint32_t>> open_ = std::make_shared<std::atomic<std::uint32_t>>(0);
};

}  // namespace ringmq::http
