#pragma once
// Measurement helpers of the load generator: a latency histogram and the
// per-publisher sequence tracking that finds lost and duplicated messages.

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace ringmq::bench {

// Log-linear histogram (like HdrHistogram with 2 significant digits): values
// in nanoseconds from 1 ns to ~1000 s, relative error below 1%.
class latency_histogram {
 public:
  void record(std::uint64_t ns) noexcept;
  void merge(const latency_histogram& other) noexcept;
  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t max() const noexcept { return max_; }
  // The value at quantile q in [0, 1].
  std::uint64_t quantile(double q) const noexcept;

 private:
  static constexpr int sub_buckets = 128;  // per power of two
  static constexpr int magnitudes = 40;
  static std::size_t index_of(std::uint64_t v) noexcept;
  static std::uint64_t value_of(std::size_t index) noexcept;

  std::array<std::uint64_t, sub_buckets * magnitudes> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

// Which sequence numbers of one publisher one subscriber has seen.
class sequence_tracker {
 public:
  // Returns false when `seq` was seen before (a duplicate).
  bool record(std::uint64_t seq);
  std::uint64_t unique() const noexcept { return unique_; }
  std::uint64_t duplicates() const noexcept { return duplicates_; }
  std::uint64_t reordered() const noexcept { return reordered_; }
  // How many of the sequence numbers [0, upto) were never seen.
  std::uint64_t missing_below(std::uint64_t upto) const noexcept;
  // How many sequence numbers `expected` has seen that this tracker has not.
  std::uint64_t missing_from(const sequence_tracker& expected) const noexcept;

 private:
  std::vector<std::uint64_t> seen_;
  std::uint64_t unique_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t reordered_ = 0;
  std::uint64_t highest_ = 0;
  bool any_ = false;
};

// The header every benchmark payload starts with; the rest is padding.
struct payload_header {
  static constexpr std::uint16_t magic = 0x5251;  // "RQ"
  static constexpr std::size_t size = 2 + 4 + 8 + 8;
  std::uint32_t publisher = 0;
  std::uint64_t seq = 0;
  std::uint64_t sent_ns = 0;

  void write(std::string& payload) const;
  // False when the payload is not one of ours.
  static bool read(std::string_view payload, payload_header& out) noexcept;
};

}  // namespace ringmq::bench
