#include "broker/http/server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace ringmq::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

std::string server::url_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(s[i + 1]) &&
               std::isxdigit(s[i + 2])) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

namespace {

void parse_target(std::string_view target, request& r) {
  const auto q = target.find('?');
  r.path = server::url_decode(target.substr(0, q));
  if (q == std::string_view::npos) return;
  auto rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    if (!pair.empty()) {
      r.query.emplace(server::url_decode(pair.substr(0, eq)),
                      eq == std::string_view::npos ? "" : server::url_decode(pair.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
}

}  // namespace

// One HTTP connection: read a request, answer it, repeat while keep-alive.
class server::session : public std::enable_shared_from_this<server::session> {
 public:
  session(std::shared_ptr<server> owner, tcp::socket socket)
      : owner_(std::move(owner)), stream_(std::move(socket)) {
    owner_->open_->fetch_add(1);
  }
  ~session() { owner_->open_->fetch_sub(1); }

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(owner_->limits_.max_header_bytes));
    parser_->body_limit(owner_->limits_.max_body_bytes);
    stream_.expires_after(std::chrono::milliseconds(owner_->limits_.timeout_ms));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->on_read(ec);
                      });
  }

  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == boost::asio::error::operation_aborted) {
      close();
      return;
    }
    if (ec) {
      // Too large, malformed: answer once, then close.
      response r;
      r.status = ec == bhttp::error::body_limit || ec == bhttp::error::header_limit ? 413 : 400;
      r.content_type = "application/json";
      r.body = std::string(R"({"error":")") +
               (r.status == 413 ? "request too large" : "malformed request") + "\"}";
      keep_alive_ = false;
      write(std::move(r));
      return;
    }
    const auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    request req;
    req.method = std::string(msg.method_string());
    parse_target(std::string_view(msg.target().data(), msg.target().size()), req);
    if (auto it = msg.find(bhttp::field::authorization); it != msg.end()) {
      req.authorization = std::string(it->value());
    }
    req.body = msg.body();
    const handler* h = owner_->find(req.path);
    if (!h) {
      response r;
      r.status = 404;
      r.content_type = "application/json";
      r.body = R"({"error":"not found"})";
      write(std::move(r));
      return;
    }
    auto executor = stream_.get_executor();
    (*h)(req, [self = shared_from_this(), executor](response r) {
      // Replies may come from any thread: continue on this connection's executor.
      boost::asio::dispatch(executor, [self, r = std::move(r)]() mutable {
        self->write(std::move(r));
      });
    });
  }

  void write(response r) {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->version(11);
    res->result(r.status);
    res->set(bhttp::field::server, "ringmq");
    res->set(bhttp::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) res->set(k, v);
    res->keep_alive(keep_alive_);
    res->body() = std::move(r.body);
    res->prepare_payload();
    stream_.expires_after(std::chrono::milliseconds(owner_->limits_.timeout_ms));
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                         if (ec || !self->keep_alive_) {
                           self->close();
                           return;
                         }
                         self->read();
                       });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  std::shared_ptr<server> owner_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bool keep_alive_ = false;
};

server::server(boost::asio::io_context& io, std::string host, std::uint16_t port,
               server_limits limits)
    : io_(io), acceptor_(io), host_(std::move(host)), port_(port), limits_(limits) {}

void server::route(std::string prefix, handler h) {
  routes_.emplace_back(std::move(prefix), std::move(h));
}

const handler* server::find(const std::string& path) const {
  const handler* best = nullptr;
  std::size_t best_length = 0;
  for (const auto& [prefix, h] : routes_) {
    const bool matches = path == prefix ||
                         (path.starts_with(prefix) && (prefix.ends_with('/') ||
                                                       path[prefix.size()] == '/'));
    if (matches && prefix.size() >= best_length) {
      best = &h;
      best_length = prefix.size();
    }
  }
  return best;
}

void server::open() {
  const tcp::endpoint endpoint(boost::asio::ip::make_address(host_), port_);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen();
}

void server::start() { accept(); }

void server::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

std::uint16_t server::port() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void server::accept() {
  acceptor_.async_accept(io_, [self = shared_from_this()](boost::system::error_code ec,
                                                          tcp::socket socket) {
    if (ec == boost::asio::error::operation_aborted || !self->acceptor_.is_open()) return;
    if (!ec) {
      if (self->open_->load() >= self->limits_.max_connections) {
        boost::system::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<session>(self, std::move(socket))->start();
      }
    }
    self->accept();
  });
}

}  // namespace ringmq::http
