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
      // Saturates instead of wrapping (the counter bits of one millisecond).
      const auto next = physical > last ? physical : last == ~std::uint64_t{0} ? last : last + 1;
      if (last_.compare_exchange_weak(last, next, std::memory_order_relaxed)) return next;
    }
  }

  // How far ahead of this node's wall clock a timestamp from elsewhere may
  // be: beyond it, a peer's clock (or a forged frame) would drag this clock
  // along for as long, or past the end of its range.
  static constexpr std::uint64_t max_ahead_ms = 24ull * 60 * 60 * 1000;

  // Whether `ts` is within max_ahead_ms of the wall clock `wall_ms`.
  static constexpr bool plausible(std::uint64_t ts, std::uint64_t wall_ms) noexcept {
    return wall_ms_of(ts) <= wall_ms + max_ahead_ms;
  }

  // A timestamp received from another node: later local timestamps follow
  // it. The caller refuses what is not plausible() first (found by the gRPC
  // fuzzer: a version of 2^64 - 1 from a peer made this clock wrap to 0, so
  // every later retained write lost to the one before).
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
