#include "bench/loadgen/mqtt_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

namespace ringmq::bench {

mqtt_client::mqtt_client(boost::asio::io_context& io, codec::protocol_version version)
    : socket_(io), version_(version) {
  decoder_.set_version(version);
}

void mqtt_client::start(const boost::asio::ip::tcp::endpoint& broker,
                        const std::string& bind_address, codec::connect_packet connect,
                        handlers h) {
  handlers_ = std::move(h);
  boost::system::error_code ec;
  socket_.open(broker.protocol(), ec);
  if (!bind_address.empty() && !ec) {
    socket_.bind({boost::asio::ip::make_address(bind_address), 0}, ec);
  }
  if (ec) {
    fail("socket: " + ec.message());
    return;
  }
  socket_.async_connect(broker, [self = shared_from_this(), connect = std::move(connect)](
                                    const boost::system::error_code& ec) mutable {
    if (ec) {
      self->fail("connect: " + ec.message());
      return;
    }
    boost::system::error_code ignored;
    self->socket_.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
    self->open_ = true;
    self->send(codec::packet{std::move(connect)});
    self->read();
  });
}

void mqtt_client::send(const codec::packet& p) {
  codec::encode(p, version_, pending_);
  flush();
}

void mqtt_client::send(const codec::publish_view& p) {
  codec::encode(p, version_, pending_);
  flush();
}

void mqtt_client::flush() {
  if (write_in_flight_ || pending_.empty() || !open_) return;
  writing_.clear();
  writing_.swap(pending_);
  write_in_flight_ = true;
  boost::asio::async_write(socket_, boost::asio::buffer(writing_),
                           [self = shared_from_this()](const boost::system::error_code& ec,
                                                       std::size_t) {
                             self->write_in_flight_ = false;
                             if (ec) {
                               self->fail("write: " + ec.message());
                               return;
                             }
                             self->flush();
                           });
}

void mqtt_client::read() {
  auto buffer = decoder_.prepare(64 * 1024);
  socket_.async_read_some(
      boost::asio::buffer(buffer.data(), buffer.size()),
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
        if (ec) {
          self->fail(ec == boost::asio::error::eof ? "closed by broker" : ec.message());
          return;
        }
        self->decoder_.commit(n);
        while (self->open_) {
          auto next = self->decoder_.next();
          if (!next) {
            self->fail("undecodable data from broker: " + std::string(next.error().detail));
            return;
          }
          if (!*next) break;
          if (!self->connected_) {
            if (auto* ack = std::get_if<codec::connack_packet>(&**next)) {
              self->connected_ = true;
              if (self->handlers_.on_connack) self->handlers_.on_connack(*ack);
              continue;
            }
          }
          if (self->handlers_.on_packet) self->handlers_.on_packet(std::move(**next));
        }
        if (self->open_) self->read();
      });
}

void mqtt_client::fail(const std::string& why) {
  if (!open_ && !socket_.is_open()) {
    if (handlers_.on_closed) handlers_.on_closed(why);
    handlers_ = {};
    return;
  }
  open_ = false;
  boost::system::error_code ignored;
  socket_.close(ignored);
  auto h = std::move(handlers_.on_closed);
  handlers_ = {};
  if (h) h(why);
}

void mqtt_client::close() {
  if (!open_) return;
  open_ = false;
  boost::system::error_code ignored;
  socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  handlers_ = {};
}

}  // namespace ringmq::bench
