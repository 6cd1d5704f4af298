// The load generator's measurements: the latency histogram, the per-publisher
// sequence tracking that finds lost and duplicated messages, and the payload
// header that carries sequence numbers and send times.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bench/loadgen/stats.hpp"

namespace ringmq::bench {
namespace {

// The sorted values' element at 0-based rank floor(q * (n - 1)): the definition that
// latency_histogram::quantile() approximates.
std::uint64_t exact_quantile(std::vector<std::uint64_t> values, double q) {
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(q * static_cast<double>(values.size() - 1));
  return values[rank];
}

void expect_within_one_percent(std::uint64_t actual, std::uint64_t expected, const char* what) {
  const double error = std::abs(static_cast<double>(actual) - static_cast<double>(expected));
  EXPECT_LE(error, 0.01 * static_cast<double>(expected))
      << what << ": got " << actual << ", expected " << expected;
}

void check_quantiles(const std::vector<std::uint64_t>& values) {
  latency_histogram h;
  for (auto v : values) h.record(v);
  ASSERT_EQ(h.count(), values.size());
  EXPECT_EQ(h.max(), *std::max_element(values.begin(), values.end()));
  for (double q : {0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0}) {
    SCOPED_TRACE(q);
    expect_within_one_percent(h.quantile(q), exact_quantile(values, q), "quantile");
  }
}

TEST(LatencyHistogram, EmptyReportsZero) {
  latency_histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.quantile(0.0), 0u);
  EXPECT_EQ(h.quantile(0.5), 0u);
  EXPECT_EQ(h.quantile(1.0), 0u);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  latency_histogram h;
  for (std::uint64_t v = 0; v < 100; ++v) h.record(v);
  EXPECT_EQ(h.quantile(0.0), 0u);
  EXPECT_EQ(h.quantile(0.5), 49u);
  EXPECT_EQ(h.quantile(1.0), 99u);
  EXPECT_EQ(h.max(), 99u);
}

TEST(LatencyHistogram, QuantilesOfUniformValuesWithinOnePercent) {
  std::vector<std::uint64_t> values;
  for (std::uint64_t v = 1; v <= 100'000; ++v) values.push_back(v * 37);
  check_quantiles(values);
}

TEST(LatencyHistogram, QuantilesOfLogNormalLatenciesWithinOnePercent) {
  // Network latencies: a median around 50 us with a long tail reaching milliseconds.
  std::mt19937_64 random(42);
  std::lognormal_distribution<double> latency(std::log(50'000.0), 1.0);
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 200'000; ++i) values.push_back(static_cast<std::uint64_t>(latency(random)));
  check_quantiles(values);
}

TEST(LatencyHistogram, QuantilesOfBimodalValuesWithinOnePercent) {
  // Most messages fast, some waiting behind a slow path: the quantiles straddle a gap.
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 9'000; ++i) values.push_back(20'000 + i);
  for (int i = 0; i < 1'000; ++i) values.push_back(5'000'000 + 1'000 * i);
  check_quantiles(values);
}

TEST(LatencyHistogram, EveryValueIsReportedWithinOnePercent) {
  // A second, much larger value keeps max() from clamping the answer, so quantile(0)
  // shows the bucket's own error; values sweep the sub-buckets of many powers of two.
  std::mt19937_64 random(7);
  std::vector<std::uint64_t> values;
  for (std::uint64_t v = 1; v < 20'000; ++v) values.push_back(v);
  for (int shift = 15; shift < 40; ++shift) {
    const auto low = std::uint64_t{1} << shift;
    for (int i = 0; i < 500; ++i) values.push_back(low + random() % low);
  }
  int failures = 0;
  for (auto v : values) {
    latency_histogram h;
    h.record(v);
    h.record(v * 1000);
    const auto got = h.quantile(0.0);
    const double error = std::abs(static_cast<double>(got) - static_cast<double>(v));
    if (error > 0.01 * static_cast<double>(v) && ++failures <= 5) {
      ADD_FAILURE() << "value " << v << " reported as " << got;
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(LatencyHistogram, MaxIsExactAndCapsQuantiles) {
  latency_histogram h;
  h.record(1'000);
  h.record(123'457);
  EXPECT_EQ(h.max(), 123'457u);
  EXPECT_LE(h.quantile(1.0), 123'457u);
  expect_within_one_percent(h.quantile(1.0), 123'457, "quantile(1)");
  // Equal values: every quantile is the value itself, never a bucket bound above it.
  latency_histogram same;
  for (int i = 0; i < 10; ++i) same.record(77'777);
  EXPECT_LE(same.quantile(0.5), 77'777u);
  EXPECT_EQ(same.max(), 77'777u);
  expect_within_one_percent(same.quantile(0.5), 77'777, "quantile(0.5)");
}

TEST(LatencyHistogram, MergeEqualsRecordingEverythingInOne) {
  std::mt19937_64 random(3);
  std::uniform_int_distribution<std::uint64_t> fast(1'000, 100'000);
  std::uniform_int_distribution<std::uint64_t> slow(1'000'000, 90'000'000);
  latency_histogram a;
  latency_histogram b;
  latency_histogram all;
  for (int i = 0; i < 10'000; ++i) {
    const auto v = fast(random);
    a.record(v);
    all.record(v);
  }
  for (int i = 0; i < 3'000; ++i) {
    const auto v = slow(random);
    b.record(v);
    all.record(v);
  }
  latency_histogram merged;
  merged.merge(a);
  merged.merge(b);
  EXPECT_EQ(merged.count(), 13'000u);
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_EQ(merged.max(), b.max());
  for (double q : {0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0}) {
    EXPECT_EQ(merged.quantile(q), all.quantile(q)) << "q " << q;
  }
}

TEST(LatencyHistogram, MergingAnEmptyHistogramChangesNothing) {
  latency_histogram h;
  h.record(5'000);
  h.record(7'000);
  latency_histogram empty;
  h.merge(empty);
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.max(), 7'000u);
  empty.merge(h);
  EXPECT_EQ(empty.count(), 2u);
  EXPECT_EQ(empty.max(), 7'000u);
  expect_within_one_percent(empty.quantile(1.0), 7'000, "quantile(1)");
}

TEST(SequenceTracker, CountsUniqueAndDuplicates) {
  sequence_tracker t;
  EXPECT_TRUE(t.record(0));
  EXPECT_TRUE(t.record(1));
  EXPECT_FALSE(t.record(1));
  EXPECT_TRUE(t.record(2));
  EXPECT_FALSE(t.record(0));
  EXPECT_FALSE(t.record(2));
  EXPECT_EQ(t.unique(), 3u);
  EXPECT_EQ(t.duplicates(), 3u);
}

TEST(SequenceTracker, InOrderIsNotReordered) {
  sequence_tracker t;
  for (std::uint64_t s = 0; s < 1'000; ++s) t.record(s);
  EXPECT_EQ(t.reordered(), 0u);
  EXPECT_EQ(t.duplicates(), 0u);
  EXPECT_EQ(t.missing_below(1'000), 0u);
}

TEST(SequenceTracker, CountsArrivalsBehindTheHighestSeen) {
  sequence_tracker t;
  t.record(0);
  t.record(2);
  t.record(1);  // behind 2
  t.record(5);
  t.record(3);  // behind 5
  t.record(4);  // behind 5
  t.record(6);
  EXPECT_EQ(t.reordered(), 3u);
  EXPECT_EQ(t.duplicates(), 0u);
  EXPECT_EQ(t.unique(), 7u);
  EXPECT_EQ(t.missing_below(7), 0u);
}

TEST(SequenceTracker, MissingBelowCountsGapsAndTheUnseenTail) {
  sequence_tracker t;
  EXPECT_EQ(t.missing_below(0), 0u);
  EXPECT_EQ(t.missing_below(10), 10u);
  for (std::uint64_t s = 0; s < 200; ++s) {
    if (s != 3 && s != 64 && s != 130) t.record(s);
  }
  EXPECT_EQ(t.missing_below(3), 0u);
  EXPECT_EQ(t.missing_below(4), 1u);
  EXPECT_EQ(t.missing_below(64), 1u);   // a whole word
  EXPECT_EQ(t.missing_below(65), 2u);   // one bit into the next
  EXPECT_EQ(t.missing_below(200), 3u);
  EXPECT_EQ(t.missing_below(1'000), 3u + 800u);  // beyond everything recorded
}

TEST(SequenceTracker, DuplicatesDoNotHideMissingMessages) {
  sequence_tracker t;
  t.record(0);
  t.record(0);
  t.record(2);
  EXPECT_EQ(t.unique(), 2u);
  EXPECT_EQ(t.missing_below(3), 1u);
}

TEST(SequenceTracker, LargeSequenceNumbersGrowTheBitmap) {
  sequence_tracker t;
  EXPECT_TRUE(t.record(1'000'003));
  EXPECT_FALSE(t.record(1'000'003));
  EXPECT_TRUE(t.record(5));
  EXPECT_EQ(t.unique(), 2u);
  EXPECT_EQ(t.reordered(), 1u);
  EXPECT_EQ(t.missing_below(1'000'004), 1'000'002u);
}

TEST(SequenceTracker, MissingFromComparesWithWhatWasAcknowledged) {
  sequence_tracker acked;
  sequence_tracker received;
  for (std::uint64_t s = 0; s < 300; ++s) acked.record(s);
  EXPECT_EQ(received.missing_from(acked), 300u);  // nothing received at all
  for (std::uint64_t s = 0; s < 300; ++s) {
    if (s % 100 != 7) received.record(s);
  }
  EXPECT_EQ(received.missing_from(acked), 3u);
  // Received but never acknowledged (still in flight at the end) is not missing the other way.
  received.record(7);
  received.record(1'000);
  EXPECT_EQ(received.missing_from(acked), 2u);
  EXPECT_EQ(acked.missing_from(received), 1u);
}

TEST(SequenceTracker, MissingFromAnEmptyExpectationIsZero) {
  sequence_tracker expected;
  sequence_tracker received;
  EXPECT_EQ(received.missing_from(expected), 0u);
  received.record(9);
  EXPECT_EQ(received.missing_from(expected), 0u);
}

TEST(PayloadHeader, RoundTrips) {
  payload_header h;
  h.publisher = 0xDEADBEEF;
  h.seq = 0x0123456789ABCDEFull;
  h.sent_ns = 0xFEDCBA9876543210ull;
  std::string payload(64, 'x');
  h.write(payload);
  EXPECT_EQ(payload.size(), 64u);
  EXPECT_EQ(payload.substr(payload_header::size), std::string(64 - payload_header::size, 'x'));

  payload_header back;
  ASSERT_TRUE(payload_header::read(payload, back));
  EXPECT_EQ(back.publisher, h.publisher);
  EXPECT_EQ(back.seq, h.seq);
  EXPECT_EQ(back.sent_ns, h.sent_ns);
}

TEST(PayloadHeader, RoundTripsAtTheMinimumSize) {
  payload_header h{7, 42, 1'000'000};
  std::string payload(payload_header::size, '\0');
  h.write(payload);
  payload_header back;
  ASSERT_TRUE(payload_header::read(payload, back));
  EXPECT_EQ(back.publisher, 7u);
  EXPECT_EQ(back.seq, 42u);
  EXPECT_EQ(back.sent_ns, 1'000'000u);
}

TEST(PayloadHeader, RejectsForeignPayloads) {
  payload_header out{1, 2, 3};
  EXPECT_FALSE(payload_header::read("", out));
  EXPECT_FALSE(payload_header::read("hello", out));
  EXPECT_FALSE(payload_header::read("a message from someone else's client", out));
  EXPECT_FALSE(payload_header::read(std::string(100, '\0'), out));

  // One of ours, cut short.
  std::string ours(payload_header::size, '\0');
  payload_header{9, 9, 9}.write(ours);
  const std::string_view cut = std::string_view(ours).substr(0, payload_header::size - 1);
  EXPECT_FALSE(payload_header::read(cut, out));

  // One of ours with the magic damaged.
  ours[0] ^= 0x01;
  EXPECT_FALSE(payload_header::read(ours, out));

  // A rejected payload leaves the output alone.
  EXPECT_EQ(out.publisher, 1u);
  EXPECT_EQ(out.seq, 2u);
  EXPECT_EQ(out.sent_ns, 3u);
}

}  // namespace
}  // namespace ringmq::bench
