#pragma once
// A hybrid logical clock: timestamps that follow the wall clock, never go
// backwards, and move past every timestamp the node has seen from others, so
// a write that follows one it knew of is always ordered after it, whatever
// the clocks of the two nodes say. A timestamp is the wall-clock millisecond
// in the high 48 bits and a counter in the low 16 (docs/cluster.md,
// "Retained messages"). Thread-safe.

#include <atomic>
#include <cstdint>

namespace ringmq::core {

class hybrid_clock {
 public:
  static constexpr int logical_bits = 16;
  static constexpr std::uint64_t logical_mask = (std::uint64_t{1} << logical_bits) - 1;

  static constexpr std::uint64_t make(std::uint64_t wall_ms, std::uint64_t logical) noexcept {
    return (wall_ms << logical_bits) | (logical & logical_mask);
  }
  static constexpr std::uint64_t wall_ms_of(std::uint64_t ts) noexcept {
    return ts >> logical_bits;
  }

  // A timestamp above every one this clock returned or observed, and at least
  // the wall clock `wall_ms`.
  std::uint64_t now(std::uint64_t wall_ms) noexcept {
    const auto physical = make(wall_ms, 0);
    auto last = last_.load(std::memory_order_relaxed);
    while (true) {
      const auto next = physical > last ? physical : last + 1;
      if (last_.compare_exchange_weak(last, next, std::memory_order_relaxed)) return next;
    }
  }

  // A timestamp received from another node: later local timestamps follow it.
  void observe(std::uint64_t ts) noexcept {
    auto last = last_.load(std::memory_order_relaxed);
    while (ts > last && !last_.compare_exchange_weak(last, ts, std::memory_order_relaxed)) {
    }
  }

  std::uint64_t last() const noexcept { return last_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> last_{0};
};

}  // namespace ringmq::core
