#pragma once
// The load generator's two kinds of client: a subscriber that checks every
// message's publisher and sequence number, and a publisher at a fixed rate or
// as fast as its window allows.

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <optional>

#include "bench/loadgen/mqtt_client.hpp"
#include "bench/loadgen/run_support.hpp"

namespace ringmq::bench {

class subscriber : public std::enable_shared_from_this<subscriber> {
 public:
  subscriber(shared_state& s, asio::io_context& io, std::string id, std::string filter,
             std::size_t publishers, bool clean)
      : s_(s), io_(io), id_(std::move(id)), filter_(std::move(filter)), clean_(clean),
        trackers_(publishers) {}

  void start(const asio::ip::tcp::endpoint& to, std::size_t index, bool subscribe) {
    client_ = std::make_shared<mqtt_client>(io_, s_.opts.version);
    mqtt_client::handlers h;
    h.on_connack = [self = shared_from_this(), subscribe](const codec::connack_packet& ack) {
      if (ack.code != codec::reason_code::success) {
        self->s_.fail("subscriber CONNACK refused: " + std::string(codec::to_string(ack.code)));
        return;
      }
      if (!subscribe) {
        self->s_.ready.fetch_add(1);
        return;
      }
      codec::subscribe_packet sub;
      sub.packet_id = 1;
      sub.subscriptions.push_back({self->filter_, {qos_of(self->s_.opts.qos)}});
      self->client_->send(codec::packet{std::move(sub)});
    };
    h.on_packet = [self = shared_from_this()](codec::packet&& p) { self->on_packet(std::move(p)); };
    h.on_closed = [self = shared_from_this()](const std::string& why) {
      if (!self->closing_) {
        self->s_.disconnects.fetch_add(1);
        self->s_.fail("subscriber " + self->id_ + " disconnected: " + why);
      }
    };
    client_->start(to, s_.bind_address(index), s_.connect(id_, clean_), std::move(h));
  }

  void disconnect() {
    asio::post(io_, [self = shared_from_this()] {
      self->closing_ = true;
      self->client_->send(codec::packet{codec::disconnect_packet{}});
      // The DISCONNECT is written before the socket closes: close after the write.
      asio::post(self->io_, [self] { self->client_->close(); });
    });
  }

  const std::vector<sequence_tracker>& trackers() const { return trackers_; }
  const latency_histogram& latencies() const { return latencies_; }
  std::uint64_t received() const { return received_.load(); }

 private:
  void on_packet(codec::packet&& p) {
    if (auto* pub = std::get_if<codec::publish_packet>(&p)) {
      on_publish(*pub);
    } else if (std::holds_alternative<codec::suback_packet>(p)) {
      const auto& ack = std::get<codec::suback_packet>(p);
      if (ack.codes.empty() || static_cast<std::uint8_t>(ack.codes[0]) >= 0x80) {
        s_.fail("subscription refused for " + filter_);
      } else {
        s_.ready.fetch_add(1);
      }
    } else if (auto* rel = std::get_if<codec::pubrel_packet>(&p)) {
      codec::pubcomp_packet comp;
      comp.packet_id = rel->packet_id;
      client_->send(codec::packet{comp});
    }
  }

  void on_publish(const codec::publish_packet& p) {
    payload_header h;
    if (payload_header::read(p.payload, h) && h.publisher < trackers_.size()) {
      if (trackers_[h.publisher].record(h.seq)) {
        received_.fetch_add(1, std::memory_order_relaxed);
        s_.received_unique.fetch_add(1, std::memory_order_relaxed);
      }
      if (s_.now.load(std::memory_order_relaxed) == phase::measuring) {
        s_.received_measured.fetch_add(1, std::memory_order_relaxed);
        latencies_.record(now_ns() - h.sent_ns);
      }
    }
    if (p.qos == codec::qos::at_least_once) {
      codec::puback_packet ack;
      ack.packet_id = p.packet_id;
      client_->send(codec::packet{ack});
    } else if (p.qos == codec::qos::exactly_once) {
      codec::pubrec_packet rec;
      rec.packet_id = p.packet_id;
      client_->send(codec::packet{rec});
    }
  }

  shared_state& s_;
  asio::io_context& io_;
  std::string id_;
  std::string filter_;
  bool clean_;
  bool closing_ = false;
  std::shared_ptr<mqtt_client> client_;
  std::vector<sequence_tracker> trackers_;
  latency_histogram latencies_;
  std::atomic<std::uint64_t> received_{0};
};

class publisher : public std::enable_shared_from_this<publisher> {
 public:
  publisher(shared_state& s, asio::io_context& io, std::uint32_t index, std::string topic,
            double rate)
      : s_(s), io_(io), index_(index), topic_(std::move(topic)), rate_(rate), timer_(io),
        inflight_(65536, kFree) {
    payload_.assign(std::max<std::size_t>(s.opts.payload, payload_header::size), 'x');
  }

  void start(const asio::ip::tcp::endpoint& to, std::size_t bind_index) {
    client_ = std::make_shared<mqtt_client>(io_, s_.opts.version);
    mqtt_client::handlers h;
    h.on_connack = [self = shared_from_this()](const codec::connack_packet& ack) {
      if (ack.code != codec::reason_code::success) {
        self->s_.fail("publisher CONNACK refused");
        return;
      }
      self->s_.ready.fetch_add(1);
    };
    h.on_packet = [self = shared_from_this()](codec::packet&& p) { self->on_packet(p); };
    h.on_closed = [self = shared_from_this()](const std::string& why) {
      if (!self->closing_) {
        self->s_.disconnects.fetch_add(1);
        self->s_.fail("publisher disconnected: " + why);
      }
    };
    const auto id = s_.opts.topic_prefix + "-pub-" + std::to_string(index_) + "-" +
                    std::to_string(s_.pid);
    client_->start(to, s_.bind_address(bind_index), s_.connect(id, true), std::move(h));
  }

  // Starts publishing; with `limit` set, publishes exactly that many messages.
  void go(std::optional<std::uint64_t> limit = std::nullopt) {
    asio::post(io_, [self = shared_from_this(), limit] {
      self->limit_ = limit;
      self->started_ = steady::now();
      if (self->rate_ > 0) {
        self->tick();
      } else {
        self->pump();
      }
    });
  }

  void stop() {
    asio::post(io_, [self = shared_from_this()] {
      self->closing_ = true;
      self->timer_.cancel();
      self->client_->send(codec::packet{codec::disconnect_packet{}});
      asio::post(self->io_, [self] { self->client_->close(); });
    });
  }

  const sequence_tracker& acked() const { return acked_; }
  std::uint64_t inflight() const { return inflight_count_.load(); }
  std::uint64_t published() const { return published_.load(); }

 private:
  static constexpr std::uint64_t kFree = ~std::uint64_t{0};

  bool may_publish() const {
    if (closing_ || s_.now.load(std::memory_order_relaxed) == phase::stopping) return false;
    if (limit_ && next_seq_ >= *limit_) return false;
    return client_->open();
  }

  bool window_open() const {
    return s_.opts.qos == 0 || inflight_count_.load(std::memory_order_relaxed) < s_.opts.inflight;
  }

  void publish_one() {
    payload_header h{index_, next_seq_, now_ns()};
    h.write(payload_);
    codec::publish_view v;
    v.topic = topic_;
    v.payload = payload_;
    v.qos = qos_of(s_.opts.qos);
    if (s_.opts.qos > 0) {
      do {
        if (++last_id_ == 0) last_id_ = 1;
      } while (inflight_[last_id_] != kFree);
      v.packet_id = last_id_;
      inflight_[last_id_] = next_seq_;
      inflight_count_.fetch_add(1, std::memory_order_relaxed);
    }
    client_->send(v);
    if (s_.opts.qos == 0) {
      acked_.record(next_seq_);
      s_.acked.fetch_add(1, std::memory_order_relaxed);
    }
    if (s_.now.load(std::memory_order_relaxed) == phase::measuring) {
      s_.sent_measured.fetch_add(1, std::memory_order_relaxed);
    }
    published_.fetch_add(1, std::memory_order_relaxed);
    ++next_seq_;
  }

  // As fast as possible: QoS 0 keeps the socket's backlog filled, QoS 1/2 the window.
  void pump() {
    if (!may_publish()) return;
    if (s_.opts.qos == 0) {
      for (int i = 0; i < 64 && client_->backlog() < 256 * 1024 && may_publish(); ++i) {
        publish_one();
      }
      asio::post(io_, [self = shared_from_this()] { self->pump(); });
      return;
    }
    while (window_open() && may_publish()) publish_one();
  }

  // A fixed rate: every millisecond, publish what is due by now.
  void tick() {
    if (!may_publish()) return;
    const double elapsed = std::chrono::duration<double>(steady::now() - started_).count();
    const auto due = static_cast<std::uint64_t>(elapsed * rate_) + 1;
    while (next_seq_ < due && window_open() && may_publish()) publish_one();
    timer_.expires_after(std::chrono::milliseconds(1));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->tick();
    });
  }

  void complete(std::uint16_t id) {
    const auto seq = inflight_[id];
    if (seq == kFree) return;
    inflight_[id] = kFree;
    inflight_count_.fetch_sub(1, std::memory_order_relaxed);
    acked_.record(seq);
    s_.acked.fetch_add(1, std::memory_order_relaxed);
    if (rate_ == 0) pump();
  }

  void on_packet(const codec::packet& p) {
    if (auto* ack = std::get_if<codec::puback_packet>(&p)) {
      complete(ack->packet_id);
    } else if (auto* rec = std::get_if<codec::pubrec_packet>(&p)) {
      codec::pubrel_packet rel;
      rel.packet_id = rec->packet_id;
      client_->send(codec::packet{rel});
    } else if (auto* comp = std::get_if<codec::pubcomp_packet>(&p)) {
      complete(comp->packet_id);
    }
  }

  shared_state& s_;
  asio::io_context& io_;
  std::uint32_t index_;
  std::string topic_;
  double rate_;
  asio::steady_timer timer_;
  std::shared_ptr<mqtt_client> client_;
  std::string payload_;
  std::vector<std::uint64_t> inflight_;  // packet id -> sequence number
  std::atomic<std::uint64_t> inflight_count_{0};
  std::atomic<std::uint64_t> published_{0};
  std::uint16_t last_id_ = 0;
  std::uint64_t next_seq_ = 0;
  std::optional<std::uint64_t> limit_;
  steady::time_point started_;
  sequence_tracker acked_;
  bool closing_ = false;
};


}  // namespace ringmq::bench
