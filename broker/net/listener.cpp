#include "broker/net/listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "broker/net/transport.hpp"

namespace ringmq::net {

// One place in the listener's and in the node's connection count, held from
// accept until the connection closes or its handshake fails (whoever owns the
// slot last releases it). Handshakes count: a TLS or WebSocket handshake holds
// a socket and memory too, and must not let a client past the node's limit.
class connection_slot {
 public:
  using counter = std::shared_ptr<std::atomic<std::uint32_t>>;
  connection_slot(counter listener, counter node)
      : listener_(std::move(listener)), node_(std::move(node)) {
    listener_->fetch_add(1);
    node_->fetch_add(1);
  }
  connection_slot(const connection_slot&) = delete;
  connection_slot& operator=(const connection_slot&) = delete;
  ~connection_slot() {
    listener_->fetch_sub(1);
    node_->fetch_sub(1);
  }

 private:
  counter listener_;
  counter node_;
};

namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

// A transport that holds its connection's slot until it is closed.
template <class Transport>
class counted : public Transport {
 public:
  counted(Transport t, std::shared_ptr<connection_slot> slot)
      : Transport(std::move(t)), slot_(std::move(slot)) {}
  counted(counted&&) noexcept = default;

  // Released at close, not when the connection object goes: the close is
  // logged right after, and a client reconnecting on that finds the room.
  void close() {
    Transport::close();
    slot_.reset();
  }

 private:
  std::shared_ptr<connection_slot> slot_;
};

// Closes the socket if the handshake has not finished in time. The timer's
// handler touches the socket only while the handshake still runs: a handler
// queued just before done() (or before the owner let go of the stream) must
// not close a launched connection's socket, or one already destroyed.
class handshake_deadline {
 public:
  template <class Executor>
  handshake_deadline(Executor ex, std::chrono::milliseconds limit, tcp::socket& socket)
      : timer_(ex) {
    timer_.expires_after(limit);
    timer_.async_wait([state = state_, &socket](const boost::system::error_code& ec) {
      if (ec || *state != running) return;
      *state = expired_state;
      boost::system::error_code ignored;
      socket.close(ignored);
    });
  }
  ~handshake_deadline() { done(); }
  void done() {
    if (*state_ == running) *state_ = finished;
    timer_.cancel();
  }
  // True when the handshake failed because its time was up (for the log).
  bool expired() const { return *state_ == expired_state; }

 private:
  enum state { running, finished, expired_state };
  std::shared_ptr<state> state_ = std::make_shared<state>(running);
  boost::asio::steady_timer timer_;
};

// The subprotocol a browser-style client offered that we speak, or "" if it offered none.
bool choose_subprotocol(const bhttp::request<bhttp::empty_body>& req, std::string& chosen) {
  auto it = req.find(bhttp::field::sec_websocket_protocol);
  if (it == req.end()) return true;  // many embedded clients omit it: accepted
  std::string_view offered(it->value().data(), it->value().size());
  while (!offered.empty()) {
    const auto comma = offered.find(',');
    auto token = offered.substr(0, comma);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    if (token == "mqtt" || token == "mqttv3.1") {
      chosen = std::string(token);
      return true;
    }
    if (comma == std::string_view::npos) break;
    offered.remove_prefix(comma + 1);
  }
  return false;  // offered only protocols that are not MQTT
}

// Reads the HTTP upgrade request, checks path and subprotocol, accepts the
// WebSocket, then calls `ready(stream)`.
template <class Next, class Ready>
void upgrade(std::unique_ptr<beast::websocket::stream<Next>> ws, const listener_settings& s,
             const std::string& peer, std::shared_ptr<handshake_deadline> deadline, Ready ready) {
  struct state {
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::empty_body> parser;
  };
  auto st = std::make_shared<state>();
  st->parser.header_limit(static_cast<std::uint32_t>(s.max_upgrade_request_bytes));
  auto* stream = ws.get();
  bhttp::async_read(
      stream->next_layer(), st->buffer, st->parser,
      [ws = std::move(ws), st, path = s.ws_path, name = s.name, peer, deadline,
       ready = std::move(ready)](beast::error_code ec, std::size_t) mutable {
        if (ec) {
          // Silent or garbage-sending peers are what an operator looks for
          // when the node is attacked (as for TLS); a peer that merely hung up is not.
          if (deadline->expired() || ec != bhttp::error::end_of_stream) {
            spdlog::info("WebSocket upgrade failed: listener={} peer={} reason={}", name, peer,
                         deadline->expired() ? "no upgrade request in time" : ec.message());
          } else {
            spdlog::debug("WebSocket upgrade failed: listener={} peer={} reason={}", name, peer,
                          ec.message());
          }
          return;
        }
        auto req = st->parser.release();
        std::string subprotocol;
        const auto target = std::string_view(req.target().data(), req.target().size());
        const auto target_path = target.substr(0, target.find('?'));
        const bool is_upgrade = beast::websocket::is_upgrade(req);
        const bool right_path = target_path == path;
        if (!is_upgrade || !right_path || !choose_subprotocol(req, subprotocol)) {
          // Not for us: a plain HTTP answer, then close. A client offering only
          // other subprotocols asked for the right thing in a language we do
          // not speak: 400, not 404.
          const auto status = !is_upgrade   ? bhttp::status::upgrade_required
                              : !right_path ? bhttp::status::not_found
                                            : bhttp::status::bad_request;
          auto res = std::make_shared<bhttp::response<bhttp::string_body>>(status, req.version());
          res->set(bhttp::field::server, "ringmq");
          res->body() = status == bhttp::status::bad_request
                            ? "MQTT over WebSocket needs the subprotocol mqtt (or mqttv3.1)\n"
                            : "MQTT over WebSocket is served at " + path + "\n";
          spdlog::info("WebSocket upgrade refused: listener={} peer={} status={} reason={}", name,
                       peer, static_cast<unsigned>(status),
                       !is_upgrade   ? "not a WebSocket upgrade request"
                       : !right_path ? "wrong path"
                                     : "no MQTT subprotocol offered");
          res->prepare_payload();
          res->keep_alive(false);
          auto* raw = ws.get();
          bhttp::async_write(raw->next_layer(), *res,
                             [ws = std::move(ws), res](beast::error_code, std::size_t) {});
          return;
        }
        auto* raw = ws.get();
        raw->set_option(beast::websocket::stream_base::decorator(
            [subprotocol](beast::websocket::response_type& res) {
              res.set(bhttp::field::server, "ringmq");
              if (!subprotocol.empty()) res.set(bhttp::field::sec_websocket_protocol, subprotocol);
            }));
        // MQTT packets are bounded by max_packet_size, not by the frame size.
        raw->read_message_max(0);
        raw->async_accept(req, [ws = std::move(ws), deadline, ready = std::move(ready)](
                                   beast::error_code ec) mutable {
          if (ec) return;
          deadline->done();
          ready(std::move(ws));
        });
      });
}

}  // namespace

listener::listener(boost::asio::io_context& accept_context, worker_pool& workers,
                   core::broker& broker, connection_tracker& tracker,
                   const listener_settings& settings, const server_limits& limits,
                   const connection_settings& connection)
    : acceptor_(accept_context),
      workers_(workers),
      broker_(broker),
      tracker_(tracker),
      settings_(settings),
      limits_(limits),
      connection_(connection) {}

void listener::open() {
  if (settings_.kind == transport_kind::tls || settings_.kind == transport_kind::wss) {
    std::string error;
    tls_ = make_tls_context(settings_.tls, error);
    if (!tls_) throw std::runtime_error("listener " + settings_.name + ": " + error);
  }
  const auto address = boost::asio::ip::make_address(settings_.host);
  const tcp::endpoint endpoint(address, settings_.port);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(boost::asio::socket_base::max_listen_connections);
}

bool listener::reload_tls(std::string& error) {
  if (!tls_) return true;
  auto fresh = make_tls_context(settings_.tls, error);
  if (!fresh) return false;
  // Accepting happens on this same thread, so the swap needs no lock; open
  // connections hold a reference to the context they started with.
  tls_ = std::move(fresh);
  return true;
}

void listener::start() { accept(); }

void listener::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

std::uint16_t listener::port() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void listener::accept() {
  // The socket is created on the worker that will own the connection.
  acceptor_.async_accept(workers_.next(), [self = shared_from_this()](
                                              const boost::system::error_code& ec,
                                              tcp::socket socket) {
    self->on_accept(ec, std::move(socket));
  });
}

void listener::on_accept(const boost::system::error_code& ec, tcp::socket socket) {
  if (ec == boost::asio::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    // Out of file descriptors and the like: log, keep accepting.
    spdlog::warn("accept failed on listener {}: {}", settings_.name, ec.message());
    accept();
    return;
  }
  const bool node_full =
      limits_.max_connections && limits_.open->load() >= limits_.max_connections;
  const bool listener_full =
      settings_.max_connections && open_->load() >= settings_.max_connections;
  if (node_full || listener_full) {
    core::local_probe().connections_refused.add();
    spdlog::warn("connection refused on listener {}: {} connection limit reached",
                 settings_.name, node_full ? "node" : "listener");
    boost::system::error_code ignored;
    socket.close(ignored);
    accept();
    return;
  }
  core::local_probe().connections_accepted.add();
  auto slot = std::make_shared<connection_slot>(open_, limits_.open);
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  core::connection_info info;
  info.peer = peer_address(socket);
  info.listener = settings_.name;
  info.use_identity_as_username = settings_.use_identity_as_username;
  handshake(std::move(socket), std::move(info), std::move(slot));
  accept();
}

namespace {

template <class Launch>
void start_handshake(tcp::socket socket, core::connection_info info,
                     std::shared_ptr<connection_slot> slot,
                     std::shared_ptr<ssl::context> ctx, const listener_settings& settings,
                     Launch launch) {
  auto executor = socket.get_executor();
  switch (settings.kind) {
    case transport_kind::tcp:
      return;  // no handshake (see listener::handshake)
    case transport_kind::tls: {
      auto stream = std::make_unique<ssl::stream<tcp::socket>>(std::move(socket), *ctx);
      auto deadline = std::make_shared<handshake_deadline>(executor, settings.handshake_timeout,
                                                           stream->next_layer());
      auto* raw = stream.get();
      raw->async_handshake(
          ssl::stream_base::server,
          [stream = std::move(stream), deadline, launch, info = std::move(info), ctx,
           slot = std::move(slot),
           name = settings.name](const boost::system::error_code& ec) mutable {
            deadline->done();
            if (ec) {
              spdlog::info("TLS handshake failed: listener={} peer={} reason={}", name,
                           info.peer,
                           deadline->expired() ? "no TLS handshake in time" : ec.message());
              return;
            }
            info.certificate_cn = peer_common_name(stream->native_handle());
            launch(tls_transport(std::move(stream)), std::move(info), std::move(slot));
          });
      return;
    }
    case transport_kind::ws: {
      using ws_stream = beast::websocket::stream<tcp::socket>;
      auto ws = std::make_unique<ws_stream>(std::move(socket));
      auto deadline = std::make_shared<handshake_deadline>(executor, settings.handshake_timeout,
                                                           ws->next_layer());
      const auto peer = info.peer;
      upgrade(std::move(ws), settings, peer, deadline,
              [launch, info = std::move(info),
               slot = std::move(slot)](std::unique_ptr<ws_stream> ws) mutable {
                launch(ws_transport<tcp::socket>(std::move(ws)), std::move(info),
                       std::move(slot));
              });
      return;
    }
    case transport_kind::wss: {
      using tls_stream = ssl::stream<tcp::socket>;
      using wss_stream = beast::websocket::stream<tls_stream>;
      auto ws = std::make_unique<wss_stream>(std::move(socket), *ctx);
      auto deadline = std::make_shared<handshake_deadline>(
          executor, settings.handshake_timeout, beast::get_lowest_layer(*ws));
      auto* raw = ws.get();
      raw->next_layer().async_handshake(
          ssl::stream_base::server,
          [ws = std::move(ws), deadline, launch, info = std::move(info), slot = std::move(slot),
           ctx, settings](const boost::system::error_code& ec) mutable {
            if (ec) {
              spdlog::info("TLS handshake failed: listener={} peer={} reason={}", settings.name,
                           info.peer,
                           deadline->expired() ? "no TLS handshake in time" : ec.message());
              return;
            }
            info.certificate_cn = peer_common_name(ws->next_layer().native_handle());
            const auto peer = info.peer;
            upgrade(std::move(ws), settings, peer, deadline,
                    [launch, info = std::move(info),
                     slot = std::move(slot)](std::unique_ptr<wss_stream> ws) mutable {
                      launch(ws_transport<tls_stream>(std::move(ws)), std::move(info),
                             std::move(slot));
                    });
          });
      return;
    }
  }
}

}  // namespace

void listener::handshake(tcp::socket socket, core::connection_info info,
                         std::shared_ptr<connection_slot> slot) {
  auto executor = socket.get_executor();
  auto& broker = broker_;
  auto& tracker = tracker_;
  const auto settings = connection_;
  // Starts a connection on its worker once its transport is ready. Until
  // then the slot is held by the handshake's handlers: a failed handshake
  // releases it with them.
  auto launch = [&broker, &tracker, settings](auto transport, core::connection_info info,
                                              std::shared_ptr<connection_slot> slot) {
    using transport_type = decltype(transport);
    auto c = std::make_shared<net::connection<counted<transport_type>>>(
        counted<transport_type>(std::move(transport), std::move(slot)), broker, tracker,
        std::move(info), settings);
    c->start();
  };
  if (settings_.kind == transport_kind::tcp) {
    boost::asio::post(executor, [launch, s = std::move(socket), info = std::move(info),
                                 slot = std::move(slot)]() mutable {
      launch(tcp_transport(std::move(s)), std::move(info), std::move(slot));
    });
    return;
  }
  // The handshake starts on the socket's own executor, where its deadline's
  // timer runs too: started here (the accepting thread), the timer could
  // close the socket while this thread was still setting up the first read.
  boost::asio::post(executor, [launch, socket = std::move(socket), info = std::move(info),
                               slot = std::move(slot), ctx = tls_,
                               settings = settings_]() mutable {
    start_handshake(std::move(socket), std::move(info), std::move(slot), ctx, settings, launch);
  });
}

}  // namespace ringmq::net
