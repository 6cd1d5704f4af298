#include "bench/loadgen/stats.hpp"

#include <algorithm>
#include <bit>

namespace ringmq::bench {

// A value keeps its top 8 significant bits: 128 buckets per power of two, each
// at most 1/128 (0.8%) of its values wide. (Keeping 7 bits gave only 64 buckets
// per power of two and errors up to 1.6%, above the promised 1%.) Values below
// 256 are exact.
std::size_t latency_histogram::index_of(std::uint64_t v) noexcept {
  if (v < 2 * sub_buckets) return static_cast<std::size_t>(v);
  const int magnitude = std::bit_width(v) - 8;  // v >> magnitude is in [128, 256)
  const auto sub = static_cast<std::size_t>(v >> magnitude);
  const auto index = static_cast<std::size_t>(magnitude) * sub_buckets + sub;
  return std::min(index, std::size_t{sub_buckets * magnitudes - 1});
}

std::uint64_t latency_histogram::value_of(std::size_t index) noexcept {
  if (index < 2 * sub_buckets) return index;
  const auto magnitude = (index - sub_buckets) / sub_buckets;
  const auto sub = index - magnitude * sub_buckets;
  return static_cast<std::uint64_t>(sub) << magnitude;
}

void latency_histogram::record(std::uint64_t ns) noexcept {
  ++buckets_[index_of(ns)];
  ++count_;
  max_ = std::max(max_, ns);
}

void latency_histogram::merge(const latency_histogram& other) noexcept {
  for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

std::uint64_t latency_histogram::quantile(double q) const noexcept {
  if (count_ == 0) return 0;
  const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_ - 1)) + 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(value_of(i), max_);
  }
  return max_;
}

bool sequence_tracker::record(std::uint64_t seq) {
  const auto word = seq / 64;
  const auto bit = std::uint64_t{1} << (seq % 64);
  if (word >= seen_.size()) seen_.resize(std::max<std::size_t>(word + 1, seen_.size() * 2), 0);
  if (any_ && seq < highest_) ++reordered_;
  if (!any_ || seq > highest_) highest_ = seq;
  any_ = true;
  if (seen_[word] & bit) {
    ++duplicates_;
    return false;
  }
  seen_[word] |= bit;
  ++unique_;
  return true;
}

std::uint64_t sequence_tracker::missing_below(std::uint64_t upto) const noexcept {
  std::uint64_t present = 0;
  const auto full_words = std::min<std::uint64_t>(upto / 64, seen_.size());
  for (std::uint64_t w = 0; w < full_words; ++w) present += std::popcount(seen_[w]);
  if (upto % 64 && upto / 64 < seen_.size()) {
    const auto mask = (std::uint64_t{1} << (upto % 64)) - 1;
    present += std::popcount(seen_[upto / 64] & mask);
  }
  return upto - present;
}

std::uint64_t sequence_tracker::missing_from(const sequence_tracker& expected) const noexcept {
  std::uint64_t missing = 0;
  for (std::size_t w = 0; w < expected.seen_.size(); ++w) {
    const auto mine = w < seen_.size() ? seen_[w] : 0;
    missing += std::popcount(expected.seen_[w] & ~mine);
  }
  return missing;
}

void payload_header::write(std::string& payload) const {
  auto put = [&](std::size_t offset, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) payload[offset + i] = static_cast<char>(v >> (8 * i));
  };
  put(0, magic, 2);
  put(2, publisher, 4);
  put(6, seq, 8);
  put(14, sent_ns, 8);
}

bool payload_header::read(std::string_view payload, payload_header& out) noexcept {
  if (payload.size() < size) return false;
  auto get = [&](std::size_t offset, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) {
      v |= std::uint64_t{static_cast<std::uint8_t>(payload[offset + i])} << (8 * i);
    }
    return v;
  };
  if (get(0, 2) != magic) return false;
  out.publisher = static_cast<std::uint32_t>(get(2, 4));
  out.seq = get(6, 8);
  out.sent_ns = get(14, 8);
  return true;
}

}  // namespace ringmq::bench
