#include "bench/loadgen/scenario.hpp"

#include <sys/resource.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "bench/loadgen/mqtt_client.hpp"
#include "bench/loadgen/stats.hpp"

namespace ringmq::bench {

namespace {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
          .count());
}

enum class phase : int { connecting, warmup, measuring, stopping };

// State shared by every client of a run; counters are atomics read by the
// coordinating thread while the workers run.
struct shared_state {
  options opts;
  asio::ip::tcp::endpoint broker;
  std::atomic<phase> now{phase::connecting};
  std::atomic<std::uint64_t> ready{0};
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> acked{0};           // QoS>0 publishes acknowledged (QoS 0: sent)
  std::atomic<std::uint64_t> received_unique{0}; // over all subscribers
  std::atomic<std::uint64_t> received_measured{0};
  std::atomic<std::uint64_t> sent_measured{0};
  std::atomic<std::uint64_t> disconnects{0};
  std::mutex error_mutex;
  std::string first_error;
  std::uint32_t pid = static_cast<std::uint32_t>(getpid());

  void fail(const std::string& what) {
    failures.fetch_add(1);
    std::lock_guard lock(error_mutex);
    if (first_error.empty()) first_error = what;
  }
  std::string bind_address(std::size_t i) const {
    if (opts.bind_addresses.empty()) return {};
    return opts.bind_addresses[i % opts.bind_addresses.size()];
  }
  codec::connect_packet connect(const std::string& id, bool clean) const {
    codec::connect_packet c;
    c.version = opts.version;
    c.client_id = id;
    c.clean_start = clean;
    c.keep_alive = 0;  // no PINGREQ traffic in a benchmark
    if (codec::is_v5(opts.version)) {
      c.props.receive_maximum = 65535;
      if (!clean) c.props.session_expiry_interval = 3600;
    }
    return c;
  }
};

codec::qos qos_of(int q) { return static_cast<codec::qos>(q); }

class subscriber : public std::enable_shared_from_this<subscriber> {
 public:
  subscriber(shared_state& s, asio::io_context& io, std::string id, std::string filter,
             std::size_t publishers, bool clean)
      : s_(s), io_(io), id_(std::move(id)), filter_(std::move(filter)), clean_(clean),
        trackers_(publishers) {}

  void start(std::size_t index, bool subscribe) {
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
    client_->start(s_.broker, s_.bind_address(index), s_.connect(id_, clean_), std::move(h));
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

  void start(std::size_t bind_index) {
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
    client_->start(s_.broker, s_.bind_address(bind_index), s_.connect(id, true), std::move(h));
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

// Worker threads running one io_context each.
class worker_threads {
 public:
  explicit worker_threads(std::uint32_t n) {
    for (std::uint32_t i = 0; i < std::max(1u, n); ++i) {
      contexts_.push_back(std::make_unique<asio::io_context>(1));
      guards_.emplace_back(contexts_.back()->get_executor());
    }
    for (auto& c : contexts_) threads_.emplace_back([ctx = c.get()] { ctx->run(); });
  }
  ~worker_threads() { stop(); }
  asio::io_context& at(std::size_t i) { return *contexts_[i % contexts_.size()]; }
  void stop() {
    guards_.clear();
    for (auto& c : contexts_) c->stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
};

// Waits (polling; this is a load generator, not a test) until `done` or the deadline.
template <class Done>
bool wait_until(Done done, double seconds, shared_state& s) {
  const auto deadline = steady::now() + std::chrono::duration<double>(seconds);
  while (!done()) {
    if (s.failures.load() > 0 || steady::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

long rss_kib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

void raise_fd_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out.push_back(c);
  }
  return out;
}

struct report {
  std::ostringstream fields;
  bool first = true;
  template <class T>
  report& add(const char* key, const T& value) {
    fields << (first ? "" : ",") << '"' << key << "\":" << value;
    first = false;
    return *this;
  }
  report& add_string(const char* key, const std::string& value) {
    fields << (first ? "" : ",") << '"' << key << "\":\"" << json_escape(value) << '"';
    first = false;
    return *this;
  }
  void print() const { std::cout << '{' << fields.str() << "}\n" << std::flush; }
};

void common_fields(report& r, const options& o) {
  r.add_string("scenario", o.scenario)
      .add_string("label", o.label)
      .add_string("protocol", codec::is_v5(o.version) ? "5.0" : "3.1.1")
      .add("qos", o.qos)
      .add("payload", std::max<std::size_t>(o.payload, payload_header::size));
}

void add_latency(report& r, const latency_histogram& h) {
  std::ostringstream l;
  l << "{\"count\":" << h.count() << ",\"p50\":" << h.quantile(0.5) / 1000.0
    << ",\"p90\":" << h.quantile(0.9) / 1000.0 << ",\"p99\":" << h.quantile(0.99) / 1000.0
    << ",\"p999\":" << h.quantile(0.999) / 1000.0 << ",\"max\":" << h.max() / 1000.0 << '}';
  r.add("latency_us", l.str());
}

int run_idle(shared_state& s) {
  const auto& o = s.opts;
  raise_fd_limit();
  worker_threads workers(o.threads);
  const long rss_before = o.broker_pid ? rss_kib(o.broker_pid) : -1;
  std::vector<std::shared_ptr<subscriber>> clients;
  const auto t0 = steady::now();
  // Connect in waves so the listen backlog never overflows.
  constexpr std::uint32_t wave = 512;
  for (std::uint32_t i = 0; i < o.connections; ++i) {
    auto c = std::make_shared<subscriber>(s, workers.at(i),
                                          o.topic_prefix + "-idle-" + std::to_string(i) + "-" +
                                              std::to_string(s.pid),
                                          "", 0, true);
    c->start(i, false);
    clients.push_back(std::move(c));
    if ((i + 1) % wave == 0 &&
        !wait_until([&] { return s.ready.load() + wave / 2 >= i + 1; }, 30, s)) {
      break;
    }
  }
  const bool all = wait_until([&] { return s.ready.load() >= o.connections; }, 60, s);
  const double connect_s = std::chrono::duration<double>(steady::now() - t0).count();
  // Let the broker settle, then hold the connections for the duration.
  std::this_thread::sleep_for(std::chrono::duration<double>(o.duration_s));
  const long rss_after = o.broker_pid ? rss_kib(o.broker_pid) : -1;
  const auto still_open = o.connections - std::min<std::uint64_t>(s.disconnects.load(), o.connections);

  report r;
  common_fields(r, o);
  r.add("connections", o.connections)
      .add("connected", s.ready.load())
      .add("held", still_open)
      .add("connect_seconds", connect_s)
      .add("connect_rate", connect_s > 0 ? s.ready.load() / connect_s : 0);
  if (o.broker_pid) {
    r.add("broker_rss_before_kib", rss_before)
        .add("broker_rss_after_kib", rss_after)
        .add("rss_per_connection_bytes",
             s.ready.load() ? (rss_after - rss_before) * 1024.0 / s.ready.load() : 0);
  }
  const bool ok = all && still_open == o.connections;
  r.add("ok", ok ? "true" : "false");
  if (!s.first_error.empty()) r.add_string("error", s.first_error);
  r.print();
  for (auto& c : clients) c->disconnect();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  workers.stop();
  return ok ? 0 : 1;
}

int run_persistent(shared_state& s) {
  const auto& o = s.opts;
  worker_threads workers(o.threads);
  const auto topic = o.topic_prefix + "/persist/" + std::to_string(s.pid);
  std::vector<std::shared_ptr<subscriber>> subs;
  auto sub_id = [&](std::uint32_t i) {
    return o.topic_prefix + "-persist-" + std::to_string(i) + "-" + std::to_string(s.pid);
  };
  // 1. Persistent subscribers subscribe, then go offline.
  for (std::uint32_t i = 0; i < o.subscribers; ++i) {
    auto c = std::make_shared<subscriber>(s, workers.at(i), sub_id(i), topic, 1, false);
    c->start(i, true);
    subs.push_back(c);
  }
  if (!wait_until([&] { return s.ready.load() >= o.subscribers; }, 30, s)) {
    std::cerr << "ringmq-bench: subscribers not ready: " << s.first_error << "\n";
    return 1;
  }
  for (auto& c : subs) c->disconnect();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  s.ready = 0;
  // 2. The publisher fills their queues.
  auto pub = std::make_shared<publisher>(s, workers.at(0), 0, topic, 0);
  pub->start(0);
  if (!wait_until([&] { return s.ready.load() >= 1; }, 30, s)) return 1;
  s.now = phase::warmup;
  pub->go(o.messages);
  if (!wait_until([&] { return pub->acked().unique() >= o.messages; }, 120, s)) {
    std::cerr << "ringmq-bench: publishes not acknowledged: " << s.first_error << "\n";
    return 1;
  }
  pub->stop();
  // 3. They come back and drain.
  s.ready = 0;
  s.now = phase::measuring;
  std::vector<std::shared_ptr<subscriber>> back;
  const auto t0 = steady::now();
  for (std::uint32_t i = 0; i < o.subscribers; ++i) {
    auto c = std::make_shared<subscriber>(s, workers.at(i), sub_id(i), topic, 1, false);
    c->start(i, false);
    back.push_back(c);
  }
  const std::uint64_t expected = std::uint64_t{o.subscribers} * o.messages;
  const bool complete =
      wait_until([&] { return s.received_unique.load() >= expected; }, o.drain_s + 60, s);
  const double drain_s = std::chrono::duration<double>(steady::now() - t0).count();
  s.now = phase::stopping;
  for (auto& c : back) c->disconnect();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  workers.stop();

  std::uint64_t lost = 0;
  std::uint64_t dups = 0;
  for (auto& c : back) {
    lost += c->trackers()[0].missing_from(pub->acked());
    dups += c->trackers()[0].duplicates();
  }
  report r;
  common_fields(r, o);
  const bool ok = complete && lost == 0 && (o.qos < 2 || dups == 0);
  r.add("subscribers", o.subscribers)
      .add("messages", o.messages)
      .add("received", s.received_unique.load())
      .add("drain_seconds", drain_s)
      .add("throughput", drain_s > 0 ? s.received_unique.load() / drain_s : 0)
      .add("lost", lost)
      .add("duplicates", dups)
      .add("ok", ok ? "true" : "false");
  if (!s.first_error.empty()) r.add_string("error", s.first_error);
  r.print();
  return ok ? 0 : 3;
}

// Creates persistent sessions with one subscription each, in waves of
// connections that subscribe and disconnect (a store to restart from).
int run_sessions(shared_state& s) {
  const auto& o = s.opts;
  raise_fd_limit();
  worker_threads workers(o.threads);
  const auto t0 = steady::now();
  constexpr std::uint32_t wave = 2000;
  std::uint32_t created = 0;
  while (created < o.connections && s.failures.load() == 0) {
    const auto n = std::min(wave, o.connections - created);
    s.ready = 0;
    std::vector<std::shared_ptr<subscriber>> batch;
    for (std::uint32_t i = 0; i < n; ++i) {
      const auto index = created + i;
      auto c = std::make_shared<subscriber>(
          s, workers.at(index), o.topic_prefix + "-session-" + std::to_string(index),
          o.topic_prefix + "/session/" + std::to_string(index), 0, false);
      c->start(index, true);
      batch.push_back(std::move(c));
    }
    if (!wait_until([&] { return s.ready.load() >= n; }, 60, s)) break;
    for (auto& c : batch) c->disconnect();
    created += n;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  workers.stop();
  const double seconds = std::chrono::duration<double>(steady::now() - t0).count();
  report r;
  common_fields(r, o);
  r.add("sessions", created).add("seconds", seconds).add("ok", created == o.connections ? "true" : "false");
  if (!s.first_error.empty()) r.add_string("error", s.first_error);
  r.print();
  return created == o.connections ? 0 : 1;
}

}  // namespace

int run(const options& input) {
  shared_state s;
  s.opts = input;
  auto& o = s.opts;
  if (o.scenario == "latency" && o.rate == 0) o.rate = 10000;
  if (o.scenario == "fanout") o.publishers = 1;
  if (o.scenario == "pairs" || o.scenario == "latency") o.subscribers = o.publishers;
  try {
    s.broker = {asio::ip::make_address(o.host), o.port};
  } catch (const std::exception& e) {
    std::cerr << "ringmq-bench: bad --host: " << e.what() << "\n";
    return 1;
  }
  if (o.scenario == "idle") return run_idle(s);
  if (o.scenario == "persistent") return run_persistent(s);
  if (o.scenario == "sessions") return run_sessions(s);

  const bool pairs = o.scenario == "pairs" || o.scenario == "latency";
  const auto base = o.topic_prefix + "/" + o.scenario + "/" + std::to_string(s.pid);
  auto topic_of = [&](std::uint32_t p) {
    return o.scenario == "fanout" ? base : base + "/" + std::to_string(p);
  };
  worker_threads workers(o.threads);

  std::vector<std::shared_ptr<subscriber>> subs;
  for (std::uint32_t i = 0; i < o.subscribers; ++i) {
    const std::string filter = pairs ? topic_of(i) : o.scenario == "fanin" ? base + "/+" : base;
    auto c = std::make_shared<subscriber>(
        s, workers.at(i),
        o.topic_prefix + "-sub-" + std::to_string(i) + "-" + std::to_string(s.pid), filter,
        o.publishers, !o.persistent_subscribers);
    c->start(i, true);
    subs.push_back(std::move(c));
  }
  if (!wait_until([&] { return s.ready.load() >= o.subscribers; }, 60, s)) {
    std::cerr << "ringmq-bench: subscribers not ready: " << s.first_error << "\n";
    return 1;
  }
  std::vector<std::shared_ptr<publisher>> pubs;
  const double per_publisher = o.rate > 0 ? o.rate / o.publishers : 0;
  for (std::uint32_t p = 0; p < o.publishers; ++p) {
    auto c = std::make_shared<publisher>(s, workers.at(p + (pairs ? 0 : 1)), p, topic_of(p),
                                         per_publisher);
    c->start(o.subscribers + p);
    pubs.push_back(std::move(c));
  }
  if (!wait_until([&] { return s.ready.load() >= o.subscribers + o.publishers; }, 60, s)) {
    std::cerr << "ringmq-bench: publishers not ready: " << s.first_error << "\n";
    return 1;
  }

  s.now = phase::warmup;
  for (auto& p : pubs) p->go();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup_s));
  s.now = phase::measuring;
  const auto t0 = steady::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.duration_s));
  s.now = phase::stopping;
  const double measured = std::chrono::duration<double>(steady::now() - t0).count();

  // Wait for what is still in flight: every acknowledged message must arrive.
  auto expected = [&] {
    std::uint64_t total = 0;
    for (auto& p : pubs) total += p->published();
    return total * (pairs ? 1 : o.subscribers);
  };
  auto settled = [&] {
    for (auto& p : pubs) {
      if (p->inflight() > 0) return false;
    }
    return s.received_unique.load() >= expected();
  };
  wait_until(settled, o.drain_s, s);
  for (auto& p : pubs) p->stop();
  for (auto& c : subs) c->disconnect();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  workers.stop();

  std::uint64_t lost = 0;
  std::uint64_t dups = 0;
  std::uint64_t reordered = 0;
  latency_histogram latency;
  for (std::size_t i = 0; i < subs.size(); ++i) {
    const auto& trackers = subs[i]->trackers();
    for (std::size_t p = 0; p < pubs.size(); ++p) {
      if (pairs && p != i) continue;
      lost += trackers[p].missing_from(pubs[p]->acked());
      dups += trackers[p].duplicates();
      reordered += trackers[p].reordered();
    }
    latency.merge(subs[i]->latencies());
  }
  std::uint64_t published = 0;
  std::uint64_t unacknowledged = 0;
  for (auto& p : pubs) {
    published += p->published();
    unacknowledged += p->inflight();
  }

  // A broker that stops acknowledging must not look healthy: publishes still
  // unacknowledged after the drain fail a QoS 1/2 run like lost messages do.
  const bool delivery_ok =
      (o.qos == 0 || (lost == 0 && unacknowledged == 0)) && (o.qos < 2 || dups == 0);
  report r;
  common_fields(r, o);
  r.add("publishers", o.publishers)
      .add("subscribers", o.subscribers)
      .add("rate_target", o.rate)
      .add("inflight", o.inflight)
      .add("duration_s", measured)
      .add("published", published)
      .add("received", s.received_unique.load())
      .add("throughput", s.received_measured.load() / measured)
      .add("publish_rate", s.sent_measured.load() / measured)
      .add("lost", lost)
      .add("unacknowledged", unacknowledged)
      .add("duplicates", dups)
      .add("reordered", reordered)
      .add("disconnects", s.disconnects.load());
  add_latency(r, latency);
  r.add("ok", delivery_ok && s.failures.load() == 0 ? "true" : "false");
  if (!s.first_error.empty()) r.add_string("error", s.first_error);
  r.print();
  if (!delivery_ok) return 3;
  return s.failures.load() == 0 ? 0 : 1;
}

}  // namespace ringmq::bench
