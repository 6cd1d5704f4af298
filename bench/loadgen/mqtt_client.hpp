#pragma once
// A small, fast MQTT client for load generation: one TCP connection on one
// io_context, packets encoded straight into a pending buffer that is written
// with one write in flight. Everything runs on the io_context's thread.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <string>

#include "broker/codec/decoder.hpp"
#include "broker/codec/encoder.hpp"

namespace ringmq::bench {

class mqtt_client : public std::enable_shared_from_this<mqtt_client> {
 public:
  struct handlers {
    std::function<void(const codec::connack_packet&)> on_connack;
    std::function<void(codec::packet&&)> on_packet;  // everything after CONNACK
    std::function<void(const std::string& why)> on_closed;
  };

  mqtt_client(boost::asio::io_context& io, codec::protocol_version version);

  // Connects (optionally from a given local address), sends CONNECT, then calls the handlers.
  void start(const boost::asio::ip::tcp::endpoint& broker, const std::string& bind_address,
             codec::connect_packet connect, handlers h);
  void send(const codec::packet& p);
  void send(const codec::publish_view& p);
  void close();
  bool open() const noexcept { return open_; }
  codec::protocol_version version() const noexcept { return version_; }
  // Bytes encoded but not yet written (for back-pressure in max-rate publishers).
  std::size_t backlog() const noexcept { return pending_.size(); }

 private:
  void read();
  void flush();
  void fail(const std::string& why);

  boost::asio::ip::tcp::socket socket_;
  codec::protocol_version version_;
  codec::stream_decoder decoder_;
  handlers handlers_;
  std::string pending_;
  std::string writing_;
  bool write_in_flight_ = false;
  bool open_ = false;
  bool connected_ = false;
};

}  // namespace ringmq::bench
