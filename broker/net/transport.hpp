#pragma once
// The byte stream under an MQTT connection. A transport offers the three
// operations a connection needs; TLS and WebSocket transports add their
// handshakes before the connection starts.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <string>

namespace ringmq::net {

class tcp_transport {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;

  explicit tcp_transport(boost::asio::ip::tcp::socket socket) : socket_(std::move(socket)) {
    // read_ready_some() must answer "would block" rather than wait.
    boost::system::error_code ignored;
    socket_.non_blocking(true, ignored);
  }

  executor_type get_executor() { return socket_.get_executor(); }

  // Readiness without a buffer: a connection waiting for its next packet
  // holds no read memory, which is most of what an idle client costs.
  template <class Handler>
  void async_wait_readable(Handler&& handler) {
    socket_.async_wait(boost::asio::ip::tcp::socket::wait_read, std::forward<Handler>(handler));
  }

  // After async_wait_readable: what the socket has, without blocking.
  template <class Buffer>
  std::size_t read_ready_some(const Buffer& buffer, boost::system::error_code& ec) {
    return socket_.read_some(buffer, ec);
  }

  template <class Buffer, class Handler>
  void async_read_some(const Buffer& buffer, Handler&& handler) {
    socket_.async_read_some(buffer, std::forward<Handler>(handler));
  }

  template <class Buffer, class Handler>
  void async_write(const Buffer& buffer, Handler&& handler) {
    boost::asio::async_write(socket_, buffer, std::forward<Handler>(handler));
  }

  void close() {
    boost::system::error_code ignored;
    socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  boost::asio::ip::tcp::socket& socket() { return socket_; }

 private:
  boost::asio::ip::tcp::socket socket_;
};

// "address:port" of the remote end, for logs and the admin API.
inline std::string peer_address(const boost::asio::ip::tcp::socket& socket) {
  boost::system::error_code ec;
  const auto ep = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  const auto address = ep.address();
  if (address.is_v6()) return "[" + address.to_string() + "]:" + std::to_string(ep.port());
  return address.to_string() + ":" + std::to_string(ep.port());
}

}  // namespace ringmq::net

#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace ringmq::net {

// MQTT over TLS: the handshake is done before the connection starts.
class tls_transport {
 public:
  using stream_type = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;
  using executor_type = stream_type::executor_type;

  explicit tls_transport(std::unique_ptr<stream_type> stream) : stream_(std::move(stream)) {}

  executor_type get_executor() { return stream_->get_executor(); }

  template <class Buffer, class Handler>
  void async_read_some(const Buffer& buffer, Handler&& handler) {
    stream_->async_read_some(buffer, std::forward<Handler>(handler));
  }

  template <class Buffer, class Handler>
  void async_write(const Buffer& buffer, Handler&& handler) {
    boost::asio::async_write(*stream_, buffer, std::forward<Handler>(handler));
  }

  void close() {
    boost::system::error_code ignored;
    stream_->lowest_layer().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    stream_->lowest_layer().close(ignored);
  }

 private:
  // Heap-allocated: an ssl::stream must not move while operations are pending.
  std::unique_ptr<stream_type> stream_;
};

// MQTT over WebSocket (binary frames). Packets may span frames or share one:
// the connection sees a byte stream either way. Pings are answered by Beast.
template <class NextLayer>
class ws_transport {
 public:
  using stream_type = boost::beast::websocket::stream<NextLayer>;
  using executor_type = typename stream_type::executor_type;

  explicit ws_transport(std::unique_ptr<stream_type> stream) : stream_(std::move(stream)) {
    stream_->binary(true);
  }

  executor_type get_executor() { return stream_->get_executor(); }

  template <class Buffer, class Handler>
  void async_read_some(const Buffer& buffer, Handler&& handler) {
    stream_->async_read_some(buffer, std::forward<Handler>(handler));
  }

  template <class Buffer, class Handler>
  void async_write(const Buffer& buffer, Handler&& handler) {
    stream_->async_write(buffer, std::forward<Handler>(handler));
  }

  void close() {
    boost::system::error_code ignored;
    auto& socket = boost::beast::get_lowest_layer(*stream_);
    socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

 private:
  std::unique_ptr<stream_type> stream_;
};

}  // namespace ringmq::net
