#pragma once
// One configured listener: accepts TCP connections, performs the transport's
// handshake (TLS, WebSocket upgrade, both) within a time limit, and hands
// the ready connection to a worker, round robin. Connections beyond the
// node's or the listener's limit are closed at once.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "broker/core/broker.hpp"
#include "broker/net/connection.hpp"
#include "broker/net/connection_tracker.hpp"
#include "broker/net/tls.hpp"
#include "broker/net/worker_pool.hpp"

namespace ringmq::net {

enum class transport_kind { tcp, tls, ws, wss };

struct listener_settings {
  std::string name;
  std::string host;
  std::uint16_t port = 0;
  transport_kind kind = transport_kind::tcp;
  std::uint32_t max_connections = 0;  // 0 = unlimited, for this listener
  tls_settings tls;                   // tls, wss
  bool use_identity_as_username = false;
  std::string ws_path = "/mqtt";      // ws, wss
  std::chrono::milliseconds handshake_timeout{10'000};
  std::size_t max_upgrade_request_bytes = 8 * 1024;
};

// A connection's place in its listener's and its node's count (listener.cpp).
class connection_slot;

struct server_limits {
  std::uint32_t max_connections = 0;  // 0 = unlimited, for the node
  // The node's open connections, from accept (handshakes included) to close;
  // copies of one server_limits share it, so every listener sees the total.
  std::shared_ptr<std::atomic<std::uint32_t>> open =
      std::make_shared<std::atomic<std::uint32_t>>(0);
};

class listener : public std::enable_shared_from_this<listener> {
 public:
  listener(boost::asio::io_context& accept_context, worker_pool& workers, core::broker& broker,
           connection_tracker& tracker, const listener_settings& settings,
           const server_limits& limits, const connection_settings& connection);

  // Loads certificates and binds; throws std::runtime_error saying what is wrong.
  void open();
  void start();
  void stop();
  // Rereads certificate, key and CA (SIGHUP); open connections keep theirs.
  // False (and the old files kept) when the new ones are unusable.
  bool reload_tls(std::string& error);

  std::uint16_t port() const;
  const std::string& name() const noexcept { return settings_.name; }
  std::uint32_t open_connections() const noexcept { return open_->load(); }

 private:
  void accept();
  void on_accept(const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket);
  void handshake(boost::asio::ip::tcp::socket socket, core::connection_info info,
                 std::shared_ptr<connection_slot> slot);

  boost::asio::ip::tcp::acceptor acceptor_;
  worker_pool& workers_;
  core::broker& broker_;
  connection_tracker& tracker_;
  listener_settings settings_;
  server_limits limits_;
  connection_settings connection_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  std::shared_ptr<std::atomic<std::uint32_t>> open_ =
      std::make_shared<std::atomic<std::uint32_t>>(0);
};

}  // namespace ringmq::net
