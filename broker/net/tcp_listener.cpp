#include "broker/net/tcp_listener.hpp"

#include <spdlog/spdlog.h>

#include "broker/net/transport.hpp"

namespace ringmq::net {

namespace {

// Counts this listener's connections for its own limit.
class counted_tcp_transport : public tcp_transport {
 public:
  counted_tcp_transport(boost::asio::ip::tcp::socket socket,
                        std::shared_ptr<std::atomic<std::uint32_t>> counter)
      : tcp_transport(std::move(socket)), counter_(std::move(counter)) {
    counter_->fetch_add(1);
  }
  counted_tcp_transport(counted_tcp_transport&& other) noexcept = default;
  ~counted_tcp_transport() {
    if (counter_) counter_->fetch_sub(1);
  }

 private:
  std::shared_ptr<std::atomic<std::uint32_t>> counter_;
};

}  // namespace

tcp_listener::tcp_listener(boost::asio::io_context& accept_context, worker_pool& workers,
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

void tcp_listener::open() {
  using boost::asio::ip::tcp;
  const auto address = boost::asio::ip::make_address(settings_.host);
  const tcp::endpoint endpoint(address, settings_.port);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(boost::asio::socket_base::max_listen_connections);
}

void tcp_listener::start() { accept(); }

void tcp_listener::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

std::uint16_t tcp_listener::port() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void tcp_listener::accept() {
  // The socket is created on the worker that will own the connection.
  acceptor_.async_accept(workers_.next(),
                         [self = shared_from_this()](const boost::system::error_code& ec,
                                                     boost::asio::ip::tcp::socket socket) {
                           self->on_accept(ec, std::move(socket));
                         });
}

void tcp_listener::on_accept(const boost::system::error_code& ec,
                             boost::asio::ip::tcp::socket socket) {
  if (ec == boost::asio::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    // Out of file descriptors and the like: log, keep accepting.
    spdlog::warn("accept failed on listener {}: {}", settings_.name, ec.message());
    accept();
    return;
  }
  const bool node_full = limits_.max_connections && tracker_.size() >= limits_.max_connections;
  const bool listener_full =
      settings_.max_connections && open_here_->load() >= settings_.max_connections;
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
  boost::system::error_code ignored;
  socket.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
  core::connection_info info;
  info.peer = peer_address(socket);
  info.listener = settings_.name;
  auto executor = socket.get_executor();
  // Start on the connection's own worker.
  boost::asio::post(executor, [this, self = shared_from_this(), s = std::move(socket),
                               info = std::move(info)]() mutable {
    auto c = std::make_shared<connection<counted_tcp_transport>>(
        counted_tcp_transport(std::move(s), open_here_), broker_, tracker_, std::move(info),
        connection_);
    c->start();
  });
  accept();
}

}  // namespace ringmq::net
