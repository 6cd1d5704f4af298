#pragma once
// Support for the abuse tests:
//  - probe_client: a well-behaved MQTT 5 client on its own thread, from its own
//    source address (127.0.0.2 by default, so that nothing done to the abusers'
//    address applies to it), doing QoS 1 round trips (publish to its own topic,
//    PUBACK and delivery back) every 10 ms, each within a deadline;
//  - rss_sampler: the broker's resident memory sampled on a thread, for the
//    largest value seen while something is being done to it;
//  - limit_asan_quarantine(): keeps those memory figures meaningful in the
//    AddressSanitizer build.

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "tests/support/broker_process.hpp"

namespace ringmq::testing {

// Under AddressSanitizer freed memory waits in a quarantine (256 MB by
// default) instead of being reused, so a broker that frees as much as it
// allocates would still grow by everything that passed through it. A small
// quarantine, inherited by the brokers started afterwards, keeps memory
// bounds checkable there too. Nothing to do in other builds.
#if defined(__SANITIZE_ADDRESS__)
#define RINGMQ_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RINGMQ_TEST_ASAN 1
#endif
#endif

inline void limit_asan_quarantine() {
#ifndef RINGMQ_TEST_ASAN
  return;
#endif
  const char* current = std::getenv("ASAN_OPTIONS");
  std::string options = current ? current : "";
  if (options.find("quarantine_size_mb") != std::string::npos) return;
  options += (options.empty() ? "" : ":") + std::string("quarantine_size_mb=1");
  ::setenv("ASAN_OPTIONS", options.c_str(), 1);
}

class probe_client {
 public:
  probe_client(std::uint16_t port, std::string client_id, std::string source_address = "127.0.0.2",
               milliseconds max_round_trip = milliseconds(2'000))
      : port_(port),
        client_id_(std::move(client_id)),
        source_address_(std::move(source_address)),
        max_round_trip_(max_round_trip) {
    thread_ = std::thread([this] { run(); });
  }
  ~probe_client() { stop(); }
  probe_client(const probe_client&) = delete;
  probe_client& operator=(const probe_client&) = delete;

  // True once connected and subscribed.
  bool wait_running(milliseconds timeout = milliseconds(5'000)) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return running_ || finished_; });
    return running_;
  }
  // True once `count` more round trips than now have completed.
  bool wait_more_round_trips(std::size_t count, milliseconds timeout) {
    std::unique_lock lock(mutex_);
    const auto target = round_trips_ + count;
    changed_.wait_for(lock, timeout, [&] { return round_trips_ >= target || finished_; });
    return round_trips_ >= target;
  }
  std::size_t round_trips() const {
    std::lock_guard lock(mutex_);
    return round_trips_;
  }
  milliseconds slowest() const {
    std::lock_guard lock(mutex_);
    return slowest_;
  }
  // Stops after the round trip in progress; "" when all went well, else what went wrong.
  std::string stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      changed_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mutex_);
    return failure_;
  }

 private:
  void fail(std::string why) {
    std::lock_guard lock(mutex_);
    if (failure_.empty()) failure_ = "probe " + client_id_ + ": " + std::move(why);
    finished_ = true;
    changed_.notify_all();
  }

  void run() {
    mqtt_socket s;
    if (!s.connect_tcp(port_, source_address_)) return fail(s.error());
    codec::connect_packet c;
    c.version = codec::protocol_version::v5;
    c.client_id = client_id_;
    c.keep_alive = 60;
    const auto ack = s.handshake(c);
    if (!ack || ack->code != codec::reason_code::success) {
      return fail("CONNECT refused or unanswered: " + s.error());
    }
    codec::subscribe_packet sub;
    sub.packet_id = 1;
    sub.subscriptions.push_back({"probe/" + client_id_, {codec::qos::at_least_once}});
    codec::packet p;
    if (!s.send(codec::packet{sub}) ||
        s.receive(p, max_round_trip_) != mqtt_socket::read_result::packet ||
        !std::holds_alternative<codec::suback_packet>(p)) {
      return fail("no SUBACK: " + s.error());
    }
    {
      std::lock_guard lock(mutex_);
      running_ = true;
      changed_.notify_all();
    }
    for (std::uint32_t n = 1;; ++n) {
      const auto began = steady::now();
      if (auto why = round_trip(s, n); !why.empty()) {
        return fail("message " + std::to_string(n) + ": " + why +
                    (s.error().empty() ? "" : " (" + s.error() + ")"));
      }
      const auto took = std::chrono::duration_cast<milliseconds>(steady::now() - began);
      std::unique_lock lock(mutex_);
      ++round_trips_;
      slowest_ = std::max(slowest_, took);
      changed_.notify_all();
      // A pace, not a wait for something: a probe that spins would take a
      // core from the broker it is measuring (cut short by stop()).
      if (changed_.wait_for(lock, pause_, [&] { return stop_; })) break;
    }
    s.send(codec::packet{codec::disconnect_packet{}});
    std::lock_guard lock(mutex_);
    finished_ = true;
    changed_.notify_all();
  }

  // One QoS 1 round trip; "" when it completed in time.
  std::string round_trip(mqtt_socket& s, std::uint32_t n) {
    codec::publish_packet pub;
    pub.topic = "probe/" + client_id_;
    pub.payload = "p" + std::to_string(n);
    pub.qos = codec::qos::at_least_once;
    pub.packet_id = static_cast<std::uint16_t>(n % 60'000 + 2);
    if (!s.send(codec::packet{pub})) return "PUBLISH not sent";
    bool acked = false;
    bool delivered = false;
    const auto deadline = steady::now() + max_round_trip_;
    while (!acked || !delivered) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
      codec::packet p;
      const auto r = s.receive(p, std::max(left, milliseconds(0)));
      if (r == mqtt_socket::read_result::timeout) {
        return std::string("no ") + (acked ? "delivery" : "PUBACK") + " within " +
               std::to_string(max_round_trip_.count()) + " ms";
      }
      if (r != mqtt_socket::read_result::packet) return "connection lost";
      if (auto* ack = std::get_if<codec::puback_packet>(&p)) {
        if (ack->packet_id != pub.packet_id) return "PUBACK for another packet";
        acked = true;
      } else if (auto* in = std::get_if<codec::publish_packet>(&p)) {
        if (in->payload != pub.payload) return "got " + in->payload + ", not " + pub.payload;
        codec::puback_packet back;
        back.packet_id = in->packet_id;
        s.send(codec::packet{back});
        delivered = true;
      } else {
        return "unexpected " + std::string(codec::to_string(codec::type_of(p)));
      }
    }
    return {};
  }

  std::uint16_t port_;
  std::string client_id_;
  std::string source_address_;
  milliseconds max_round_trip_;
  milliseconds pause_{10};
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool running_ = false;
  bool stop_ = false;
  bool finished_ = false;
  std::size_t round_trips_ = 0;
  milliseconds slowest_{0};
  std::string failure_;
  std::thread thread_;
};

// The broker's VmRSS sampled every `period` until stopped; the largest value seen.
class rss_sampler {
 public:
  explicit rss_sampler(const broker_process& broker, milliseconds period = milliseconds(20))
      : broker_(broker), period_(period) {
    thread_ = std::thread([this] {
      std::unique_lock lock(mutex_);
      do {
        max_kib_ = std::max(max_kib_, broker_.resident_kib());
      } while (!stopped_.wait_for(lock, period_, [&] { return stop_; }));
    });
  }
  ~rss_sampler() { stop(); }

  // Stops sampling; the largest VmRSS seen, in KiB.
  std::uint64_t stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    stopped_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mutex_);
    max_kib_ = std::max(max_kib_, broker_.resident_kib());
    return max_kib_;
  }

 private:
  const broker_process& broker_;
  milliseconds period_;
  std::mutex mutex_;
  std::condition_variable stopped_;
  bool stop_ = false;
  std::uint64_t max_kib_ = 0;
  std::thread thread_;
};

}  // namespace ringmq::testing
