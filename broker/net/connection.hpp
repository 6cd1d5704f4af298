#pragma once
// One MQTT network connection: turns transport I/O into engine calls. It lives
// on one worker; everything here runs on that worker's thread. Reads decode as
// many packets as arrived; writes take whatever the outbox accumulated, one
// write in flight at a time.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "broker/codec/decoder.hpp"
#include "broker/core/engine.hpp"
#include "broker/core/overload.hpp"
#include "broker/core/probe.hpp"
#include "broker/net/connection_tracker.hpp"

namespace ringmq::net {

struct connection_settings {
  std::size_t read_chunk = 16 * 1024;
  std::chrono::milliseconds close_timeout{5'000};  // flushing the last packets of a closing connection
};

template <class Transport>
class connection final : public connection_handle,
                         public core::task_runner,
                         public std::enable_shared_from_this<connection<Transport>> {
 public:
  connection(Transport transport, core::broker& broker, connection_tracker& tracker,
             core::connection_info info, const connection_settings& settings)
      : transport_(std::move(transport)),
        broker_(broker),
        tracker_(tracker),
        settings_(settings),
        decoder_(broker.settings().max_packet_size),
        timer_(transport_.get_executor()),
        out_(std::make_shared<core::outbox>(codec::protocol_version::v3_1_1, nullptr,
                                            broker.settings().max_outbound_bytes)),
        engine_(std::in_place, broker, out_, std::move(info), core::clock::now()) {
    // Garbage is closed on its first byte, not at the connect timeout.
    decoder_.expect_connect_first();
  }

  void start() {
    auto self = this->shared_from_this();
    engine_->set_runner(this->weak_from_this());
    tracker_id_ = tracker_.add(self);
    std::weak_ptr<connection> weak = self;
    // Only the weak pointer is captured: small enough for std::function to
    // keep inline, one allocation less per connection.
    out_->set_wake([weak] {
      if (auto c = weak.lock()) {
        boost::asio::post(c->transport_.get_executor(), [weak] {
          if (auto c = weak.lock()) c->flush();
        });
      }
    });
    arm_timer();
    read();
  }

  void shutdown(codec::reason_code code, std::string server_reference = {}) override {
    boost::asio::post(transport_.get_executor(), [self = this->shared_from_this(), code,
                                                  reference = std::move(server_reference)] {
      if (self->closed_ || !self->engine_) return;
      self->engine_->shutdown(code,
                              code == codec::reason_code::server_shutting_down
                                  ? "server shutting down"
                                  : "server leaving the cluster",
                              reference);
      self->flush();
    });
  }

  void describe(std::function<void(connection_view)> done) override {
    boost::asio::post(transport_.get_executor(),
                      [self = this->shared_from_this(), done = std::move(done)] {
                        done(self->view());
                      });
  }

 private:
  connection_view view() const {
    connection_view v;
    v.id = tracker_id_;
    if (engine_) {
      v.peer = engine_->identity().peer;
      v.listener = engine_->identity().listener;
      v.connected = engine_->connected();
      v.client_id = engine_->identity().client_id;
      v.username = engine_->identity().username;
      v.protocol = std::string(codec::to_string(engine_->version()));
      v.keep_alive = engine_->keep_alive();
    }
    v.connected_at_ms = connected_at_ms_;
    return v;
  }

  // A task of the engine's (a CONNECT's claim answered by another node), from any thread.
  void defer(std::function<void()> task) override {
    boost::asio::post(transport_.get_executor(),
                      [self = this->shared_from_this(), task = std::move(task)] {
                        if (self->closed_) return;
                        const bool was_connected = self->engine_->connected();
                        task();
                        if (!was_connected && self->engine_->connected()) self->on_connected();
                        if (self->engine_->closing()) self->begin_close();
                      });
  }

  void read() {
    if constexpr (requires { transport_.async_wait_readable([](boost::system::error_code) {}); }) {
      // A quiet connection with nothing partial to keep waits without a
      // buffer (see on_readable). A busy one keeps its buffer and reads
      // directly: Asio then tries the read at once, where a wait would cost
      // an epoll_ctl per packet.
      if (decoder_.buffered() == 0 && !busy_) {
        transport_.async_wait_readable(
            [self = this->shared_from_this()](const boost::system::error_code& ec) {
              self->on_readable(ec);
            });
        return;
      }
    }
    auto buffer = decoder_.prepare(settings_.read_chunk);
    transport_.async_read_some(
        boost::asio::buffer(buffer.data(), buffer.size()),
        [self = this->shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
          self->on_read(ec, n);
        });
  }

  void on_readable(const boost::system::error_code& ec) {
    if (closed_) return;
    if (ec) {
      lost(ec.message());
      return;
    }
    auto buffer = decoder_.prepare(settings_.read_chunk);
    boost::system::error_code read_ec;
    const auto n =
        transport_.read_ready_some(boost::asio::buffer(buffer.data(), buffer.size()), read_ec);
    if (read_ec == boost::asio::error::would_block || read_ec == boost::asio::error::try_again) {
      // Woken without data after all: give the buffer back and wait again.
      decoder_.shrink(0);
      read();
      return;
    }
    on_read(read_ec, n);
  }

  void on_read(const boost::system::error_code& ec, std::size_t n) {
    if (closed_) return;
    if (ec) {
      lost(ec == boost::asio::error::eof ? "connection closed by client" : ec.message());
      return;
    }
    decoder_.commit(n);
    auto& probe = core::local_probe();
    probe.bytes_received.add(n);
    const auto now = core::clock::now();
    busy_ = now - last_data_ < busy_interval;
    last_data_ = now;
    const bool was_connected = engine_->connected();
    core::take_qos0_overload();  // what was signalled before belongs to someone else
    while (!engine_->closing()) {
      auto next = decoder_.next();
      if (!next) {
        engine_->on_decode_error(next.error(), decoder_.version(), now);
        break;
      }
      if (!*next) break;
      probe.packets_received.add();
      engine_->on_packet(std::move(**next), now);
    }
    if (!was_connected && engine_->connected()) on_connected();
    if (engine_->closing()) {
      begin_close();
      return;
    }
    // A quiet connection keeps no read buffer (memory per idle client matters).
    if (!busy_) decoder_.shrink(0);
    if (core::take_qos0_overload()) {
      pause_reading();
      return;
    }
    pause_ms_ = 0;
    read();
  }

  // QoS 0 copies of what this client published were dropped or queued too
  // deep (core/overload.hpp): read it again only after a moment, which
  // doubles while the overload lasts, up to a bound, so that TCP slows it to
  // what the slow side takes. What it sent is still read, in full, after the
  // pause; nothing it sent is lost here.
  void pause_reading() {
    core::local_probe().publisher_pauses.add();
    if (!pause_timer_) {
      pause_timer_ = std::make_unique<boost::asio::steady_timer>(transport_.get_executor());
    }
    pause_ms_ = pause_ms_ == 0 ? first_pause_ms : std::min<int>(pause_ms_ * 2, longest_pause_ms);
    pause_timer_->expires_after(std::chrono::milliseconds(pause_ms_));
    pause_timer_->async_wait([self = this->shared_from_this()](const boost::system::error_code&) {
      if (!self->closed_) self->read();
    });
  }

  void on_connected() {
    connected_at_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    const auto& id = engine_->identity();
    spdlog::info("client connected: client_id={} peer={} listener={} protocol={} keep_alive={}",
                 id.client_id, id.peer, id.listener, codec::to_string(engine_->version()),
                 engine_->keep_alive());
  }

  void flush() {
    if (writing_ || closed_) return;
    if (out_->closing() && !closing_started_) {
      // Closed from elsewhere (takeover, admin, shutdown): bound the final flush.
      begin_close();
      return;
    }
    out_->take(write_buffer_);
    if (write_buffer_.empty()) {
      if (out_->closing()) finish();
      return;
    }
    core::local_probe().packets_sent.add(out_->take_packet_count());
    writing_ = true;
    transport_.async_write(
        boost::asio::buffer(write_buffer_),
        [self = this->shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
          self->writing_ = false;
          if (self->closed_) return;
          if (ec) {
            self->lost(ec.message());
            return;
          }
          core::local_probe().bytes_sent.add(n);
          if (self->write_buffer_.capacity() > 64 * 1024) std::string().swap(self->write_buffer_);
          self->flush();
        });
  }

  // The engine decided to close: write what is queued (a CONNACK or
  // DISCONNECT with the reason), then close; a peer that does not read gets
  // `close_timeout` before the socket is closed anyway.
  void begin_close() {
    if (closing_started_) return;
    closing_started_ = true;
    timer_.expires_after(settings_.close_timeout);
    timer_.async_wait([self = this->shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->finish();
    });
    flush();
  }

  void arm_timer() {
    const auto deadline = engine_->next_deadline();
    if (!deadline || closing_started_) return;
    timer_.expires_at(*deadline);
    timer_.async_wait([self = this->shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->closed_ || self->closing_started_) return;
      self->engine_->on_timer(core::clock::now());
      if (self->engine_->closing()) {
        self->begin_close();
      } else {
        self->arm_timer();
      }
    });
  }

  void lost(const std::string& why) {
    if (!engine_->closing() || engine_->close_reason().empty()) reason_override_ = why;
    finish();
  }

  void finish() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    if (pause_timer_) pause_timer_->cancel();
    const bool was_connected = engine_->connected();
    engine_->on_connection_lost(core::clock::now());
    // Closed only now: a client that sees the close has its session ended (or
    // detached) and its will handled, so reconnecting at once cannot find the
    // session of a connection the broker has not finished with yet.
    transport_.close();
    tracker_.remove(tracker_id_);
    // Who closed: the client or the network (override), this connection's
    // engine, or someone else through the outbox (takeover, admin kick).
    std::string reason = reason_override_.empty() ? engine_->close_reason() : reason_override_;
    auto close_code = engine_->close_code();
    if (reason.empty()) {
      reason = out_->close_reason();
      close_code = out_->close_code();
    }
    // Fields are "key=value"; the free-text reason comes last (JSON logs parse them).
    char code[8] = "none";
    if (auto c = close_code) {
      std::snprintf(code, sizeof code, "0x%02X", static_cast<unsigned>(*c));
    }
    if (was_connected) {
      spdlog::info("client disconnected: client_id={} peer={} listener={} reason_code={} reason={}",
                   engine_->identity().client_id, engine_->identity().peer,
                   engine_->identity().listener, code, reason);
    } else {
      // Refusals (bad credentials, garbage, no CONNECT in time) are what an
      // operator looks for when something attacks the node: info, not debug.
      spdlog::info("connection refused: client_id={} peer={} listener={} reason_code={} reason={}",
                   engine_->identity().client_id, engine_->identity().peer,
                   engine_->identity().listener, code, reason);
    }
  }

  Transport transport_;
  core::broker& broker_;
  connection_tracker& tracker_;
  connection_settings settings_;
  codec::stream_decoder decoder_;
  boost::asio::steady_timer timer_;
  std::shared_ptr<core::outbox> out_;
  std::optional<core::engine> engine_;
  std::string write_buffer_;
  std::string reason_override_;
  std::uint64_t tracker_id_ = 0;
  std::int64_t connected_at_ms_ = 0;
  // Data twice within this interval makes a connection busy (see read()).
  static constexpr auto busy_interval = std::chrono::milliseconds(2);
  // How long a publisher feeding an overloaded subscriber or peer is not read:
  // the first pause, and the bound of the pauses that double after it.
  static constexpr int first_pause_ms = 5;
  static constexpr int longest_pause_ms = 20;
  // Made on the first pause: most connections never need one.
  std::unique_ptr<boost::asio::steady_timer> pause_timer_;
  std::uint8_t pause_ms_ = 0;  // the last pause, while the overload lasts
  core::time_point last_data_{};
  bool busy_ = false;
  bool writing_ = false;
  bool closing_started_ = false;
  bool closed_ = false;
};

}  // namespace ringmq::net
