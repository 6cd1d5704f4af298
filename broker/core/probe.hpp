#pragma once
// Hot-path counters. Every thread counts into its own probe (one writer, plain
// relaxed loads and stores, no locked instructions); a scrape sums all probes.
// Metric families and names live in broker/metrics, not here.

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace ringmq::core {

// A counter with exactly one writer: the thread that owns the probe.
class counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

enum class drop_reason : std::uint8_t {
  queue_full,        // max_queued_messages reached for a session
  slow_consumer,     // QoS 0 beyond the connection's outbound byte limit
  expired,           // Message Expiry Interval passed while queued
  too_large,         // larger than the client's Maximum Packet Size
  offline_qos0,      // QoS 0 for an offline session
  not_authorized,    // refused by the ACL at delivery time
  no_subscribers,    // published to a topic nobody subscribes to
  store_full,        // the store refused the write
  duplicate,         // a numbered QoS 2 message the session took before (a resend after a failure)
  count_
};
std::string_view to_string(drop_reason reason) noexcept;
inline constexpr std::size_t drop_reason_count = static_cast<std::size_t>(drop_reason::count_);

struct alignas(64) broker_probe {
  std::array<counter, 3> messages_received;  // by QoS
  std::array<counter, 3> messages_sent;      // by QoS
  std::array<counter, drop_reason_count> messages_dropped;
  counter bytes_received;
  counter bytes_sent;
  counter packets_received;
  counter packets_sent;
  counter auth_failures;
  counter connections_accepted;
  counter connections_refused;
  counter protocol_errors;
  counter retained_stored;
  counter publisher_pauses;  // reads paused for QoS 0 overload (see overload.hpp)

  void dropped(drop_reason r, std::uint64_t n = 1) noexcept {
    messages_dropped[static_cast<std::size_t>(r)].add(n);
  }
};

// The calling thread's probe, created on first use and kept for the process's life.
broker_probe& local_probe() noexcept;

// The sum over every thread's probe (values may be a few increments stale).
struct probe_totals {
  std::array<std::uint64_t, 3> messages_received{};
  std::array<std::uint64_t, 3> messages_sent{};
  std::array<std::uint64_t, drop_reason_count> messages_dropped{};
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t packets_received = 0;
  std::uint64_t packets_sent = 0;
  std::uint64_t auth_failures = 0;
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_refused = 0;
  std::uint64_t protocol_errors = 0;
  std::uint64_t retained_stored = 0;
  std::uint64_t publisher_pauses = 0;
};
probe_totals sum_probes() noexcept;

}  // namespace ringmq::core
