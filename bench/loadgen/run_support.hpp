#pragma once
// What every scenario of the load generator shares: the run's state and
// counters, worker threads, waiting, and the one-line JSON report.

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/loadgen/scenario.hpp"
#include "bench/loadgen/stats.hpp"
#include "broker/codec/packets.hpp"

namespace ringmq::bench {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

inline std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
          .count());
}

enum class phase : int { connecting, warmup, measuring, stopping };

// State shared by every client of a run; counters are atomics read by the
// coordinating thread while the workers run.
struct shared_state {
  options opts;
  std::vector<asio::ip::tcp::endpoint> brokers;  // --hosts, or --host and --port
  std::atomic<phase> now{phase::connecting};
  std::atomic<std::uint64_t> ready{0};
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> acked{0};           // QoS>0 publishes acknowledged (QoS 0: sent)
  std::atomic<std::uint64_t> received_unique{0}; // over all subscribers
  std::atomic<std::uint64_t> received_measured{0};
  std::atomic<std::uint64_t> sent_measured{0};
  std::atomic<std::uint64_t> disconnects{0};
  mutable std::mutex error_mutex;
  std::string first_error;  // under error_mutex: error() reads it
  std::uint32_t pid = static_cast<std::uint32_t>(getpid());

  void fail(const std::string& what) {
    failures.fetch_add(1);
    std::lock_guard lock(error_mutex);
    if (first_error.empty()) first_error = what;
  }
  // The first failure so far ("" if none); clients may still be failing.
  std::string error() const {
    std::lock_guard lock(error_mutex);
    return first_error;
  }
  // Where a scenario's clients connect (see --placement): publishers on the
  // first broker; subscribers on another one (cross), the same one (same), or
  // any (random, seeded by the subscriber's index so that runs repeat).
  const asio::ip::tcp::endpoint& publisher_broker(std::size_t) const { return brokers[0]; }
  const asio::ip::tcp::endpoint& subscriber_broker(std::size_t i) const {
    const auto n = brokers.size();
    if (n == 1 || opts.placement == "same") return brokers[0];
    if (opts.placement == "random") return brokers[(i * 2654435761u >> 7) % n];
    return brokers[1 + i % (n - 1)];
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

inline codec::qos qos_of(int q) { return static_cast<codec::qos>(q); }
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

inline long rss_kib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

inline void raise_fd_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

inline std::string json_escape(const std::string& s) {
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

inline void common_fields(report& r, const options& o) {
  r.add_string("scenario", o.scenario)
      .add_string("label", o.label)
      .add_string("protocol", codec::is_v5(o.version) ? "5.0" : "3.1.1")
      .add("qos", o.qos)
      .add("payload", std::max<std::size_t>(o.payload, payload_header::size));
}

inline void add_latency(report& r, const latency_histogram& h) {
  std::ostringstream l;
  l << "{\"count\":" << h.count() << ",\"p50\":" << h.quantile(0.5) / 1000.0
    << ",\"p90\":" << h.quantile(0.9) / 1000.0 << ",\"p99\":" << h.quantile(0.99) / 1000.0
    << ",\"p999\":" << h.quantile(0.999) / 1000.0 << ",\"max\":" << h.max() / 1000.0 << '}';
  r.add("latency_us", l.str());
}

}  // namespace ringmq::bench
