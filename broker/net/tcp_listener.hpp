#pragma once
// Accepts TCP connections for one `mqtt` listener and hands each to a worker,
// round robin. Refuses connections beyond the global or listener limit at once.

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "broker/core/broker.hpp"
#include "broker/net/connection.hpp"
#include "broker/net/connection_tracker.hpp"
#include "broker/net/worker_pool.hpp"

namespace ringmq::net {

struct listener_settings {
  std::string name;
  std::string host;
  std::uint16_t port = 0;
  std::uint32_t max_connections = 0;  // 0 = unlimited, for this listener
};

struct server_limits {
  std::uint32_t max_connections = 0;  // 0 = unlimited, for the node
};

class tcp_listener : public std::enable_shared_from_this<tcp_listener> {
 public:
  tcp_listener(boost::asio::io_context& accept_context, worker_pool& workers,
               core::broker& broker, connection_tracker& tracker,
               const listener_settings& settings, const server_limits& limits,
               const connection_settings& connection);

  // Binds and listens; throws boost::system::system_error when the address is unusable.
  void open();
  void start();
  void stop();
  // The bound port (useful with port 0).
  std::uint16_t port() const;
  const std::string& name() const noexcept { return settings_.name; }

 private:
  void accept();
  void on_accept(const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket);

  boost::asio::ip::tcp::acceptor acceptor_;
  worker_pool& workers_;
  core::broker& broker_;
  connection_tracker& tracker_;
  listener_settings settings_;
  server_limits limits_;
  connection_settings connection_;
  std::shared_ptr<std::atomic<std::uint32_t>> open_here_ = std::make_shared<std::atomic<std::uint32_t>>(0);
};

}  // namespace ringmq::net
