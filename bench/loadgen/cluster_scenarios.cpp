#include "bench/loadgen/cluster_scenarios.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <functional>

#include "bench/loadgen/mqtt_client.hpp"

namespace ringmq::bench {
namespace {

using namespace std::chrono_literals;

std::uint16_t next_packet_id(std::uint16_t& last) {
  if (++last == 0) last = 1;
  return last;
}

bool subscribe_refused(const codec::suback_packet& ack) {
  return ack.codes.empty() || static_cast<std::uint8_t>(ack.codes[0]) >= 0x80;
}

// ---------------------------------------------------------------- failover

// What the clients of one failover run share. Per-session vectors are
// written only by the io thread that owns the session.
struct failover_run {
  explicit failover_run(shared_state& state) : s(state) {}
  shared_state& s;
  std::string base;  // topic prefix of the run
  std::vector<std::uint8_t> acknowledged;  // per session: its message's PUBACK arrived
  std::vector<std::uint64_t> served_ns;    // per session: from the kill; 0 = not served
  std::atomic<std::uint64_t> set_up{0};
  std::atomic<std::uint64_t> acks{0};
  std::atomic<std::uint64_t> refused{0};  // PUBACK with a failure reason code
  std::atomic<std::uint64_t> finished{0};
  std::atomic<std::uint64_t> no_session{0};
  std::atomic<std::uint64_t> attempts{0};
  std::atomic<std::uint32_t> next_resume{0};
  std::uint64_t killed_ns = 0;
  std::uint64_t give_up_ns = 0;
  std::function<void()> resume_next;  // starts the next waiting reconnection, if any

  std::string id(std::uint32_t i) const {
    return s.opts.topic_prefix + "-fo-" + std::to_string(i) + "-" + std::to_string(s.pid);
  }
  std::string topic(std::uint32_t i) const { return base + "/" + std::to_string(i); }
  // The hosts other than the first (whose broker is killed), round robin.
  const asio::ip::tcp::endpoint& survivor(std::uint32_t i) const {
    const auto n = s.brokers.size();
    return n == 1 ? s.brokers[0] : s.brokers[1 + i % (n - 1)];
  }
};

// One persistent session: made on the first host, resumed on another.
class failover_session : public std::enable_shared_from_this<failover_session> {
 public:
  failover_session(failover_run& r, asio::io_context& io, std::uint32_t index)
      : r_(r), io_(io), index_(index), retry_(io) {}

  // Connects to the first host, subscribes to the session's topic, leaves.
  void set_up() {
    client_ = std::make_shared<mqtt_client>(io_, r_.s.opts.version);
    mqtt_client::handlers h;
    h.on_connack = [self = shared_from_this()](const codec::connack_packet& ack) {
      if (ack.code != codec::reason_code::success) {
        return self->r_.s.fail("CONNACK refused while setting up " + self->r_.id(self->index_));
      }
      codec::subscribe_packet sub;
      sub.packet_id = 1;
      sub.subscriptions.push_back({self->r_.topic(self->index_), {codec::qos::at_least_once}});
      self->client_->send(codec::packet{std::move(sub)});
    };
    h.on_packet = [self = shared_from_this()](codec::packet&& p) {
      const auto* ack = std::get_if<codec::suback_packet>(&p);
      if (!ack) return;
      if (subscribe_refused(*ack)) return self->r_.s.fail("subscription refused");
      self->client_->send(codec::packet{codec::disconnect_packet{}});
      asio::post(self->io_, [self] { self->client_->close(); });
      self->r_.set_up.fetch_add(1);
    };
    h.on_closed = [self = shared_from_this()](const std::string& why) {
      self->r_.s.fail("setting up " + self->r_.id(self->index_) + ": " + why);
    };
    client_->start(r_.s.brokers[0], r_.s.bind_address(index_), r_.s.connect(r_.id(index_), false),
                   std::move(h));
  }

  void resume() {
    asio::post(io_, [self = shared_from_this()] { self->attempt(); });
  }

  // The run is over: whatever has not been served stays so.
  void stop() {
    asio::post(io_, [self = shared_from_this()] {
      self->retry_.cancel();
      if (self->client_) self->client_->close();
      self->finish();
    });
  }

 private:
  void attempt() {
    if (finished_) return;
    if (now_ns() >= r_.give_up_ns) return finish();
    r_.attempts.fetch_add(1, std::memory_order_relaxed);
    client_ = std::make_shared<mqtt_client>(io_, r_.s.opts.version);
    mqtt_client::handlers h;
    h.on_connack = [self = shared_from_this()](const codec::connack_packet& ack) {
      if (ack.code != codec::reason_code::success) return self->retry();
      self->release_slot();
      if (!ack.session_present) {
        self->r_.no_session.fetch_add(1);
        self->client_->close();
        return self->finish();
      }
    };
    h.on_packet = [self = shared_from_this()](codec::packet&& p) {
      auto* pub = std::get_if<codec::publish_packet>(&p);
      if (!pub) return;
      if (pub->qos == codec::qos::at_least_once) {
        self->client_->send(codec::packet{codec::puback_packet{.packet_id = pub->packet_id}});
      }
      payload_header h;
      if (!payload_header::read(pub->payload, h) || h.seq != self->index_) return;
      self->r_.served_ns[self->index_] = std::max<std::uint64_t>(1, now_ns() - self->r_.killed_ns);
      self->client_->send(codec::packet{codec::disconnect_packet{}});
      asio::post(self->io_, [self] { self->client_->close(); });
      self->finish();
    };
    h.on_closed = [self = shared_from_this()](const std::string&) { self->retry(); };
    client_->start(r_.survivor(index_), r_.s.bind_address(index_),
                   r_.s.connect(r_.id(index_), false), std::move(h));
  }

  // Refused, or closed before being served (the session is still moving): again shortly.
  void retry() {
    if (finished_) return;
    if (client_) client_->close();
    retry_.expires_after(20ms);
    retry_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->attempt();
    });
  }

  // A reconnection holds a slot until its first CONNACK, so that no more than
  // a bounded number of handshakes wait in the brokers' listen queues.
  void release_slot() {
    if (slot_released_) return;
    slot_released_ = true;
    r_.resume_next();
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    release_slot();
    r_.finished.fetch_add(1);
  }

  failover_run& r_;
  asio::io_context& io_;
  std::uint32_t index_;
  asio::steady_timer retry_;
  std::shared_ptr<mqtt_client> client_;
  bool finished_ = false;
  bool slot_released_ = false;
};

// Publishes one QoS 1 message to every session's topic, a window at a time.
class queue_filler : public std::enable_shared_from_this<queue_filler> {
 public:
  queue_filler(failover_run& r, asio::io_context& io, std::uint32_t sessions)
      : r_(r), io_(io), sessions_(sessions), index_of_(65536, kFree) {}

  void start(const asio::ip::tcp::endpoint& to) {
    client_ = std::make_shared<mqtt_client>(io_, r_.s.opts.version);
    mqtt_client::handlers h;
    h.on_connack = [self = shared_from_this()](const codec::connack_packet& ack) {
      if (ack.code != codec::reason_code::success) return self->r_.s.fail("publisher refused");
      self->pump();
    };
    h.on_packet = [self = shared_from_this()](codec::packet&& p) {
      auto* ack = std::get_if<codec::puback_packet>(&p);
      if (!ack || self->index_of_[ack->packet_id] == kFree) return;
      const auto i = self->index_of_[ack->packet_id];
      self->index_of_[ack->packet_id] = kFree;
      --self->inflight_;
      if (static_cast<std::uint8_t>(ack->code) >= 0x80) {
        self->r_.refused.fetch_add(1);
      } else {
        self->r_.acknowledged[i] = 1;
      }
      self->r_.acks.fetch_add(1);
      self->pump();
    };
    h.on_closed = [self = shared_from_this()](const std::string& why) {
      if (!self->closing_) self->r_.s.fail("publisher disconnected: " + why);
    };
    const auto id = r_.s.opts.topic_prefix + "-fo-pub-" + std::to_string(r_.s.pid);
    client_->start(to, {}, r_.s.connect(id, true), std::move(h));
  }

  void stop() {
    asio::post(io_, [self = shared_from_this()] {
      self->closing_ = true;
      self->client_->send(codec::packet{codec::disconnect_packet{}});
      asio::post(self->io_, [self] { self->client_->close(); });
    });
  }

 private:
  static constexpr std::uint32_t kFree = ~std::uint32_t{0};

  void pump() {
    while (next_ < sessions_ && inflight_ < std::max(1u, r_.s.opts.inflight)) {
      payload_header h{0, next_, now_ns()};
      h.write(payload_);
      const auto topic = r_.topic(next_);
      codec::publish_view v;
      v.topic = topic;
      v.payload = payload_;
      v.qos = codec::qos::at_least_once;
      do {
        v.packet_id = next_packet_id(last_id_);
      } while (index_of_[v.packet_id] != kFree);
      index_of_[v.packet_id] = next_++;
      ++inflight_;
      client_->send(v);
    }
  }

  failover_run& r_;
  asio::io_context& io_;
  std::uint32_t sessions_;
  std::shared_ptr<mqtt_client> client_;
  std::vector<std::uint32_t> index_of_;  // packet id -> session
  std::string payload_ = std::string(payload_header::size, 'x');
  std::uint32_t next_ = 0;
  std::uint32_t inflight_ = 0;
  std::uint16_t last_id_ = 0;
  bool closing_ = false;
};

double percentile_ms(std::vector<std::uint64_t> ns, double q) {
  if (ns.empty()) return 0;
  std::sort(ns.begin(), ns.end());
  const auto at = std::min(ns.size() - 1, static_cast<std::size_t>(q * static_cast<double>(ns.size())));
  return static_cast<double>(ns[at]) / 1e6;
}

// "[q0,q5,...,q100]" of the served times in ms: the failover's timeline (a CDF).
std::string served_cdf_ms(const std::vector<std::uint64_t>& ns) {
  std::ostringstream out;
  out << '[';
  for (int q = 0; q <= 100; q += 5) out << (q ? "," : "") << percentile_ms(ns, q / 100.0);
  return out.str() + "]";
}

}  // namespace

int run_failover(shared_state& s) {
  const auto& o = s.opts;
  raise_fd_limit();
  worker_threads workers(o.threads);
  failover_run r(s);
  const std::uint32_t n = o.connections;
  r.base = o.topic_prefix + "/fo/" + std::to_string(s.pid);
  r.acknowledged.assign(n, 0);
  r.served_ns.assign(n, 0);
  std::vector<std::shared_ptr<failover_session>> sessions;
  sessions.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    sessions.push_back(std::make_shared<failover_session>(r, workers.at(i), i));
  }

  // 1. The sessions, on the first host, in waves that the listen queue can hold.
  const auto t_setup = steady::now();
  constexpr std::uint32_t wave = 1000;
  for (std::uint32_t done = 0; done < n && s.failures.load() == 0;) {
    const auto count = std::min(wave, n - done);
    for (std::uint32_t i = done; i < done + count; ++i) sessions[i]->set_up();
    done += count;
    if (!wait_until([&] { return r.set_up.load() >= done; }, 60, s)) break;
  }
  const double setup_s = std::chrono::duration<double>(steady::now() - t_setup).count();
  // 2. One message for each, published on another host while they are offline.
  auto filler = std::make_shared<queue_filler>(r, workers.at(0), n);
  if (r.set_up.load() == n) {
    filler->start(r.survivor(0));
    wait_until([&] { return r.acks.load() >= n; }, 120, s);
    filler->stop();
  }
  const auto acknowledged =
      static_cast<std::uint64_t>(std::count(r.acknowledged.begin(), r.acknowledged.end(), 1));
  if (r.set_up.load() < n || r.acks.load() < n) {
    std::cerr << "ringmq-bench: failover: " << r.set_up.load() << " of " << n
              << " sessions set up, " << r.acks.load() << " messages answered: " << s.error()
              << "\n";
    workers.stop();
    return 1;
  }

  // 3. The first host's broker dies.
  r.killed_ns = now_ns();
  if (!o.kill_command.empty()) {
    const int status = std::system(o.kill_command.c_str());
    if (status != 0) std::cerr << "ringmq-bench: the kill command exited " << status << "\n";
  }
  const double kill_s = static_cast<double>(now_ns() - r.killed_ns) / 1e9;
  r.give_up_ns = r.killed_ns + static_cast<std::uint64_t>(o.reconnect_limit_s * 1e9);

  // 4. Every client comes back on another host, with a bounded number of
  // handshakes outstanding at a time.
  r.resume_next = [&] {
    const auto i = r.next_resume.fetch_add(1);
    if (i < n) sessions[i]->resume();
  };
  const std::uint32_t handshakes = std::min<std::uint32_t>(n, 1000);
  for (std::uint32_t i = 0; i < handshakes; ++i) r.resume_next();
  // Counted from the kill: the reconnections' own deadline, plus their last round trip.
  while (r.finished.load() < n && now_ns() < r.give_up_ns + 2'000'000'000ull) {
    std::this_thread::sleep_for(5ms);
  }
  r.next_resume = n;  // no more starts; those not begun are not served
  for (auto& c : sessions) c->stop();
  wait_until([&] { return r.finished.load() >= n; }, 5, s);
  std::this_thread::sleep_for(100ms);
  workers.stop();

  std::vector<std::uint64_t> served;
  std::uint64_t missing = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    if (r.served_ns[i]) {
      served.push_back(r.served_ns[i]);
    } else if (r.acknowledged[i]) {
      ++missing;
    }
  }
  report out;
  common_fields(out, o);
  out.add("hosts", s.brokers.size())
      .add("sessions", n)
      .add("setup_seconds", setup_s)
      .add("acknowledged", acknowledged)
      .add("refused", r.refused.load())
      .add("kill_seconds", kill_s)
      .add("served", served.size())
      .add("missing", missing)
      .add("no_session", r.no_session.load())
      .add("attempts", r.attempts.load())
      .add("first_ms", percentile_ms(served, 0))
      .add("p50_ms", percentile_ms(served, 0.5))
      .add("p99_ms", percentile_ms(served, 0.99))
      .add("max_ms", percentile_ms(served, 1))
      .add("served_cdf_ms", served_cdf_ms(served));
  const bool ok = missing == 0 && served.size() == acknowledged;
  out.add("ok", ok ? "true" : "false");
  if (!s.error().empty()) out.add_string("error", s.error());
  out.print();
  return missing > 0 ? 3 : ok ? 0 : 1;
}

// ------------------------------------------------------- route convergence

namespace {

// One subscriber and one publisher on (normally) different hosts, probing
// one fresh topic after the other.
class convergence_lane : public std::enable_shared_from_this<convergence_lane> {
 public:
  convergence_lane(shared_state& s, asio::io_context& io, std::uint32_t index,
                   std::uint32_t probes)
      : s_(s), io_(io), index_(index), probes_(probes), timer_(io) {
    base_ = s.opts.topic_prefix + "/rc/" + std::to_string(s.pid) + "/" + std::to_string(index);
  }

  void start() {
    const auto id = s_.opts.topic_prefix + "-rc-" + std::to_string(index_) + "-" +
                    std::to_string(s_.pid);
    sub_ = connect(s_.subscriber_broker(index_), id + "-sub",
                   [self = shared_from_this()](codec::packet&& p) { self->on_subscriber(p); });
    pub_ = connect(s_.publisher_broker(index_), id + "-pub", [](codec::packet&&) {});
  }

  void go() {
    asio::post(io_, [self = shared_from_this()] { self->probe(); });
  }

  void stop() {
    asio::post(io_, [self = shared_from_this()] {
      self->stopping_ = true;
      self->timer_.cancel();
      for (auto& c : {self->sub_, self->pub_}) {
        c->send(codec::packet{codec::disconnect_packet{}});
        asio::post(self->io_, [c] { c->close(); });
      }
    });
  }

  bool done() const { return done_.load(); }
  std::uint64_t delivered() const { return delivered_.load(); }
  std::uint64_t misses() const { return misses_.load(); }
  std::uint64_t late() const { return late_.load(); }
  const latency_histogram& latencies() const { return latencies_; }

 private:
  std::shared_ptr<mqtt_client> connect(const asio::ip::tcp::endpoint& to, const std::string& id,
                                       std::function<void(codec::packet&&)> on_packet) {
    auto c = std::make_shared<mqtt_client>(io_, s_.opts.version);
    mqtt_client::handlers h;
    h.on_connack = [this](const codec::connack_packet& ack) {
      if (ack.code != codec::reason_code::success) return s_.fail("CONNACK refused");
      s_.ready.fetch_add(1);
    };
    h.on_packet = std::move(on_packet);
    h.on_closed = [self = shared_from_this()](const std::string& why) {
      if (!self->stopping_) self->s_.fail("route-convergence lane disconnected: " + why);
    };
    c->start(to, s_.bind_address(index_), s_.connect(id, true), std::move(h));
    return c;
  }

  std::string topic() const { return base_ + "/" + std::to_string(probe_); }

  void probe() {
    if (stopping_) return;
    if (probe_ >= probes_) {
      done_ = true;
      return;
    }
    codec::subscribe_packet sub;
    sub.packet_id = subscribe_id_ = next_packet_id(last_sub_id_);
    sub.subscriptions.push_back({topic(), {qos_of(s_.opts.qos)}});
    sub_->send(codec::packet{std::move(sub)});
    awaiting_delivery_ = false;
  }

  void on_subscriber(const codec::packet& p) {
    if (const auto* ack = std::get_if<codec::suback_packet>(&p)) {
      if (ack->packet_id != subscribe_id_ || awaiting_delivery_) return;
      if (subscribe_refused(*ack)) return s_.fail("subscription refused");
      published_ns_ = now_ns();
      awaiting_delivery_ = true;
      payload_header h{index_, probe_, published_ns_};
      h.write(payload_);
      const auto t = topic();
      codec::publish_view v;
      v.topic = t;
      v.payload = payload_;
      v.qos = qos_of(s_.opts.qos);
      if (s_.opts.qos > 0) v.packet_id = next_packet_id(last_pub_id_);
      pub_->send(v);
      timer_.expires_after(std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::duration<double>(s_.opts.probe_timeout_s)));
      timer_.async_wait([self = shared_from_this(), probe = probe_](const boost::system::error_code& ec) {
        if (ec || probe != self->probe_ || !self->awaiting_delivery_) return;
        self->misses_.fetch_add(1);
        self->next();
      });
    } else if (const auto* pub = std::get_if<codec::publish_packet>(&p)) {
      if (pub->qos == codec::qos::at_least_once) {
        sub_->send(codec::packet{codec::puback_packet{.packet_id = pub->packet_id}});
      } else if (pub->qos == codec::qos::exactly_once) {
        sub_->send(codec::packet{codec::pubrec_packet{.packet_id = pub->packet_id}});
      }
      payload_header h;
      if (!payload_header::read(pub->payload, h) || h.publisher != index_) return;
      if (h.seq != probe_ || !awaiting_delivery_) {
        late_.fetch_add(1);
        return;
      }
      latencies_.record(now_ns() - published_ns_);
      delivered_.fetch_add(1);
      timer_.cancel();
      next();
    } else if (const auto* rel = std::get_if<codec::pubrel_packet>(&p)) {
      sub_->send(codec::packet{codec::pubcomp_packet{.packet_id = rel->packet_id}});
    }
  }

  // Leaves the probed topic (its route goes away) and probes the next one.
  void next() {
    awaiting_delivery_ = false;
    codec::unsubscribe_packet unsub;
    unsub.packet_id = next_packet_id(last_sub_id_);
    unsub.filters.push_back(topic());
    sub_->send(codec::packet{std::move(unsub)});
    ++probe_;
    probe();
  }

  shared_state& s_;
  asio::io_context& io_;
  std::uint32_t index_;
  std::uint32_t probes_;
  asio::steady_timer timer_;
  std::string base_;
  std::string payload_ = std::string(payload_header::size, 'x');
  std::shared_ptr<mqtt_client> sub_;
  std::shared_ptr<mqtt_client> pub_;
  std::uint32_t probe_ = 0;
  std::uint16_t subscribe_id_ = 0;
  std::uint16_t last_sub_id_ = 0;
  std::uint16_t last_pub_id_ = 0;
  std::uint64_t published_ns_ = 0;
  bool awaiting_delivery_ = false;
  bool stopping_ = false;
  std::atomic<bool> done_{false};
  std::atomic<std::uint64_t> delivered_{0};
  std::atomic<std::uint64_t> misses_{0};
  std::atomic<std::uint64_t> late_{0};
  latency_histogram latencies_;
};

}  // namespace

int run_route_convergence(shared_state& s) {
  const auto& o = s.opts;
  worker_threads workers(o.threads);
  const std::uint32_t lanes = std::max(1u, o.publishers);
  std::vector<std::shared_ptr<convergence_lane>> all;
  for (std::uint32_t i = 0; i < lanes; ++i) {
    all.push_back(std::make_shared<convergence_lane>(s, workers.at(i), i, o.messages));
    asio::post(workers.at(i), [lane = all.back()] { lane->start(); });
  }
  if (!wait_until([&] { return s.ready.load() >= 2 * lanes; }, 60, s)) {
    std::cerr << "ringmq-bench: lanes not connected: " << s.error() << "\n";
    return 1;
  }
  const auto t0 = steady::now();
  for (auto& l : all) l->go();
  const double bound = o.messages * (o.probe_timeout_s + 0.1) + 30;
  const bool finished = wait_until(
      [&] { return std::all_of(all.begin(), all.end(), [](auto& l) { return l->done(); }); },
      bound, s);
  const double seconds = std::chrono::duration<double>(steady::now() - t0).count();
  for (auto& l : all) l->stop();
  std::this_thread::sleep_for(100ms);
  workers.stop();

  latency_histogram latency;
  std::uint64_t delivered = 0, misses = 0, late = 0;
  for (auto& l : all) {
    latency.merge(l->latencies());
    delivered += l->delivered();
    misses += l->misses();
    late += l->late();
  }
  report out;
  common_fields(out, o);
  out.add("hosts", s.brokers.size())
      .add_string("placement", o.placement)
      .add("lanes", lanes)
      .add("probes", std::uint64_t{lanes} * o.messages)
      .add("delivered", delivered)
      .add("misses", misses)
      .add("late", late)
      .add("seconds", seconds);
  add_latency(out, latency);
  std::ostringstream cdf;  // "[q0,q5,...,q95,q99,q99.9,q100]" in us
  cdf << '[';
  for (double q : {0.0, .05, .1, .15, .2, .25, .3, .35, .4, .45, .5, .55, .6, .65, .7, .75, .8, .85,
                   .9, .95, .99, .999, 1.0}) {
    cdf << (q > 0 ? "," : "") << (q < 1 ? latency.quantile(q) : latency.max()) / 1000.0;
  }
  out.add("latency_cdf_us", cdf.str() + "]");
  const bool ok = finished && misses == 0 && s.failures.load() == 0;
  out.add("ok", ok ? "true" : "false");
  if (!s.error().empty()) out.add_string("error", s.error());
  out.print();
  return misses > 0 ? 3 : ok ? 0 : 1;
}

}  // namespace ringmq::bench
