// The incremental decoder against the hand-written vectors: whatever way a byte
// stream is cut into reads, the same packets come out in the same order, and
// next() says "need more" exactly while the next packet is incomplete.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "broker/codec/decoder.hpp"
#include "tests/unit/codec/vectors.hpp"

namespace ringmq::codec {
namespace {

using vectors::b;
using vectors::describe;
using vectors::wire_vector;

// Every vector of one protocol family, back to back, as one connection would carry them.
struct stream {
  std::string name;
  protocol_version version;
  std::vector<const wire_vector*> items;
  std::string bytes;
  std::vector<std::size_t> ends;  // offset just past each packet
};

stream make_stream(std::string name, const std::vector<wire_vector>& list,
                   protocol_version version) {
  stream s{std::move(name), version, {}, {}, {}};
  for (const auto& v : list) {
    s.items.push_back(&v);
    s.bytes += v.bytes;
    s.ends.push_back(s.bytes.size());
  }
  return s;
}

// The 3.1 vectors ride on the 3.1.1 stream: the decoder reads both alike, and the
// "MQIsdp" CONNECTs in it switch the stream's version back and forth on the way.
const std::vector<stream>& streams() {
  static const std::vector<stream> all = {
      make_stream("v311", vectors::v311_vectors(), protocol_version::v3_1_1),
      make_stream("v5", vectors::v5_vectors(), protocol_version::v5),
  };
  return all;
}

const wire_vector& find_vector(const std::vector<wire_vector>& list, std::string_view name) {
  for (const auto& v : list) {
    if (v.name == name) return v;
  }
  ADD_FAILURE() << "no vector named " << name;
  return list.front();
}

enum class fill { feed, prepare_commit };

std::string_view to_string(fill how) { return how == fill::feed ? "feed" : "prepare/commit"; }

void push(stream_decoder& d, std::string_view bytes, fill how) {
  if (how == fill::feed) {
    d.feed(bytes);
    return;
  }
  // As a socket read does: ask for more room than the read turns out to fill.
  auto space = d.prepare(bytes.size() + 61);
  ASSERT_GE(space.size(), bytes.size());
  std::memset(space.data(), 0xFF, space.size());  // junk beyond the commit must stay unread
  std::memcpy(space.data(), bytes.data(), bytes.size());
  d.commit(bytes.size());
}

// Takes every packet the decoder can give after `fed` bytes of the stream and checks
// them in order; then checks that exactly the wholly received packets came out.
void drain(stream_decoder& d, const stream& s, std::size_t fed, std::size_t& decoded) {
  for (;;) {
    auto r = d.next();
    ASSERT_TRUE(r) << "error 0x" << std::hex << static_cast<unsigned>(r.error().code) << " ("
                   << r.error().detail << ") after " << std::dec << fed << " bytes";
    if (!r->has_value()) break;
    ASSERT_LT(decoded, s.items.size()) << "a packet out of nowhere: " << describe(**r);
    const auto& v = *s.items[decoded];
    EXPECT_TRUE(**r == v.expected) << v.name << "\n  decoded:  " << describe(**r)
                                   << "\n  expected: " << describe(v.expected);
    ++decoded;
  }
  const auto complete = static_cast<std::size_t>(
      std::upper_bound(s.ends.begin(), s.ends.end(), fed) - s.ends.begin());
  ASSERT_EQ(decoded, complete) << "after " << fed << " bytes";
  const std::size_t consumed = complete == 0 ? 0 : s.ends[complete - 1];
  EXPECT_EQ(d.buffered(), fed - consumed);
}

// Feeds `s` in chunks of the given sizes, draining after each chunk.
void run(const stream& s, const std::vector<std::size_t>& chunks, fill how) {
  SCOPED_TRACE(s.name + " via " + std::string(to_string(how)));
  stream_decoder d;
  d.set_version(s.version);
  std::size_t fed = 0;
  std::size_t decoded = 0;
  for (auto size : chunks) {
    ASSERT_NO_FATAL_FAILURE(push(d, std::string_view(s.bytes).substr(fed, size), how));
    fed += size;
    ASSERT_NO_FATAL_FAILURE(drain(d, s, fed, decoded));
  }
  ASSERT_EQ(fed, s.bytes.size());
  EXPECT_EQ(decoded, s.items.size());
  EXPECT_EQ(d.buffered(), 0u);
  auto r = d.next();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_value());
}

// Chunk sizes mixing tiny reads (split headers and length prefixes), medium ones and
// reads larger than the biggest packet.
std::vector<std::size_t> random_chunks(std::size_t total, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> kind(0, 9);
  std::uniform_int_distribution<std::size_t> tiny(1, 8);
  std::uniform_int_distribution<std::size_t> medium(1, 300);
  std::uniform_int_distribution<std::size_t> large(1, 50'000);
  std::vector<std::size_t> chunks;
  for (std::size_t left = total; left > 0;) {
    const int k = kind(rng);
    std::size_t n = k < 5 ? tiny(rng) : k < 9 ? medium(rng) : large(rng);
    n = std::min(n, left);
    chunks.push_back(n);
    left -= n;
  }
  return chunks;
}

constexpr fill both[] = {fill::feed, fill::prepare_commit};

TEST(StreamDecoder, OneByteAtATime) {
  for (const auto& s : streams()) {
    for (auto how : both) run(s, std::vector<std::size_t>(s.bytes.size(), 1), how);
  }
}

TEST(StreamDecoder, EverythingInOneRead) {
  for (const auto& s : streams()) {
    for (auto how : both) run(s, {s.bytes.size()}, how);
  }
}

TEST(StreamDecoder, OnePacketPerRead) {
  for (const auto& s : streams()) {
    std::vector<std::size_t> chunks;
    for (const auto* v : s.items) chunks.push_back(v->bytes.size());
    for (auto how : both) run(s, chunks, how);
  }
}

TEST(StreamDecoder, RandomSplits) {
  for (std::uint32_t seed : {1u, 2u, 7u, 42u, 1234u, 20240601u}) {
    SCOPED_TRACE(seed);
    for (const auto& s : streams()) {
      const auto chunks = random_chunks(s.bytes.size(), seed);
      for (auto how : both) run(s, chunks, how);
    }
  }
}

// Packets split right after their fixed header, then the rest: the decoder knows the
// size and waits for exactly that many bytes.
TEST(StreamDecoder, SplitAfterEachFixedHeader) {
  for (const auto& s : streams()) {
    std::vector<std::size_t> chunks;
    for (const auto* v : s.items) {
      auto h = parse_fixed_header(v->bytes);
      ASSERT_TRUE(h && h->has_value()) << v->name;
      chunks.push_back((*h)->size);
      if (v->bytes.size() > (*h)->size) chunks.push_back(v->bytes.size() - (*h)->size);
    }
    for (auto how : both) run(s, chunks, how);
  }
}

TEST(StreamDecoder, FreshDecoderNeedsBytes) {
  stream_decoder d;
  EXPECT_FALSE(d.version_known());
  auto r = d.next();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_value());
  d.feed("");
  r = d.next();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(d.buffered(), 0u);
}

// Bytes the caller prepared but did not commit are not part of the stream.
TEST(StreamDecoder, OnlyCommittedBytesAreRead) {
  stream_decoder d;
  auto space = d.prepare(16);
  ASSERT_GE(space.size(), 16u);
  std::memset(space.data(), 0xC0, space.size());  // would read as more PINGREQ headers
  space[1] = 0x00;
  d.commit(2);
  auto r = d.next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(type_of(**r), packet_type::pingreq);
  r = d.next();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(d.buffered(), 0u);
}

// ---- The protocol version comes from CONNECT ----

TEST(StreamDecoder, ConnectSetsTheVersion) {
  struct connect_case {
    const std::vector<wire_vector>* list;
    std::string_view name;
    protocol_version level;
  };
  const connect_case cases[] = {
      {&vectors::v311_vectors(), "connect_v31_minimal", protocol_version::v3_1},
      {&vectors::v311_vectors(), "connect_minimal", protocol_version::v3_1_1},
      {&vectors::v5_vectors(), "connect_minimal", protocol_version::v5},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto& connect = find_vector(*c.list, c.name);
    stream_decoder d;
    EXPECT_FALSE(d.version_known());
    d.feed(connect.bytes);
    auto r = d.next();
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->has_value());
    EXPECT_TRUE(**r == connect.expected);
    EXPECT_TRUE(d.version_known());
    EXPECT_EQ(d.version(), c.level);
  }
}

// After a 5.0 CONNECT the rest of the stream is read as 5.0: a PUBACK with a reason
// code is valid there and Malformed after a 3.1.1 CONNECT.
TEST(StreamDecoder, PacketsAfterConnectUseItsVersion) {
  const auto puback = b({0x40, 0x03, 0x00, 0x0A, 0x10});  // PUBACK 10, No matching subscribers
  {
    stream_decoder d;
    d.feed(find_vector(vectors::v5_vectors(), "connect_minimal").bytes + puback);
    ASSERT_TRUE(d.next());
    auto r = d.next();
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->has_value());
    EXPECT_TRUE((**r == packet{puback_packet{.packet_id = 10,
                                            .code = reason_code::no_matching_subscribers}}));
  }
  {
    stream_decoder d;
    d.set_version(protocol_version::v5);  // a stale guess: CONNECT overrides it
    d.feed(find_vector(vectors::v311_vectors(), "connect_minimal").bytes + puback);
    ASSERT_TRUE(d.next());
    EXPECT_EQ(d.version(), protocol_version::v3_1_1);
    auto r = d.next();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, reason_code::malformed_packet);
  }
}

// A client sets the version itself; nothing it receives changes it.
TEST(StreamDecoder, SetVersionWithoutConnect) {
  stream_decoder d;
  d.set_version(protocol_version::v5);
  EXPECT_EQ(d.version(), protocol_version::v5);
  d.feed(find_vector(vectors::v5_vectors(), "connack_server_capabilities").bytes);
  auto r = d.next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->has_value());
  EXPECT_TRUE(**r == find_vector(vectors::v5_vectors(), "connack_server_capabilities").expected);
  EXPECT_EQ(d.version(), protocol_version::v5);
}

// ---- Maximum Packet Size ----

// A PUBLISH declaring a Remaining Length of 209,715,200 (200 MiB = 100 * 128^3):
// 0x80 0x80 0x80 0x64. The decoder must refuse it from these five bytes alone.
const std::string huge_header = b({0x30, 0x80, 0x80, 0x80, 0x64});

TEST(StreamDecoder, MaximumPacketSizeIsEnforcedAtTheFixedHeader) {
  for (auto how : both) {
    SCOPED_TRACE(to_string(how));
    stream_decoder d(1024 * 1024);
    for (std::size_t i = 0; i + 1 < huge_header.size(); ++i) {
      ASSERT_NO_FATAL_FAILURE(push(d, huge_header.substr(i, 1), how));
      auto r = d.next();
      ASSERT_TRUE(r) << "error before the Remaining Length is complete, at byte " << i;
      EXPECT_FALSE(r->has_value());
    }
    ASSERT_NO_FATAL_FAILURE(push(d, huge_header.substr(4), how));
    auto r = d.next();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, reason_code::packet_too_large);
    EXPECT_EQ(static_cast<unsigned>(r.error().code), 0x95u);
    EXPECT_LT(d.capacity(), 1024u) << "the body of a refused packet must not be buffered";
  }
}

TEST(StreamDecoder, MaximumPacketSizeCountsTheWholePacket) {
  // publish_qos0 of 3.1.1 is 12 bytes: 2 of fixed header, 10 of body.
  const auto& v = find_vector(vectors::v311_vectors(), "publish_qos0");
  ASSERT_EQ(v.bytes.size(), 12u);
  {
    stream_decoder d(12);
    d.feed(v.bytes);
    auto r = d.next();
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->has_value());
    EXPECT_TRUE(**r == v.expected);
  }
  {
    stream_decoder d(11);
    d.feed(v.bytes.substr(0, 2));  // the fixed header alone is enough to refuse it
    auto r = d.next();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, reason_code::packet_too_large);
  }
}

// The limit can be lowered after the decoder was made (e.g. once CONNACK is sent).
TEST(StreamDecoder, MaximumPacketSizeChangesApplyToTheNextPacket) {
  const auto& small = find_vector(vectors::v5_vectors(), "publish_qos0");
  const auto& big = find_vector(vectors::v5_vectors(), "publish_payload_200");
  stream_decoder d;
  d.set_version(protocol_version::v5);
  d.set_max_packet_size(100);
  EXPECT_EQ(d.max_packet_size(), 100u);
  d.feed(small.bytes + big.bytes);
  auto r = d.next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->has_value());
  EXPECT_TRUE(**r == small.expected);
  r = d.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, reason_code::packet_too_large);
}

// ---- After an error the stream is unusable: the decoder stays failed ----

TEST(StreamDecoder, StaysFailedAfterAMalformedPacket) {
  stream_decoder d;
  const auto pingreq = b({0xC0, 0x00});
  d.feed(pingreq + b({0xC1, 0x00}) + pingreq);  // PINGREQ with a reserved flag set
  auto r = d.next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(type_of(**r), packet_type::pingreq);
  for (int i = 0; i < 3; ++i) {
    r = d.next();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, reason_code::malformed_packet);
    d.feed(pingreq);
  }
}

TEST(StreamDecoder, StaysFailedAfterABadRemainingLength) {
  stream_decoder d;
  d.feed(b({0x30, 0x80, 0x80, 0x80, 0x80, 0x01}));  // five length bytes
  for (int i = 0; i < 3; ++i) {
    auto r = d.next();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, reason_code::malformed_packet);
    d.feed(b({0xC0, 0x00}));
  }
}

TEST(StreamDecoder, StaysFailedAfterPacketTooLarge) {
  stream_decoder d(1024);
  d.feed(huge_header);
  for (int i = 0; i < 3; ++i) {
    auto r = d.next();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, reason_code::packet_too_large);
    d.feed(b({0xC0, 0x00}));
  }
  EXPECT_LT(d.capacity(), 1024u);
}

// ---- shrink() ----

TEST(StreamDecoder, ShrinkReleasesAnIdleBuffer) {
  const auto& big = find_vector(vectors::v311_vectors(), "publish_payload_20000");
  stream_decoder d;
  d.feed(big.bytes);
  ASSERT_GE(d.capacity(), big.bytes.size());
  auto r = d.next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(d.buffered(), 0u);

  const auto before = d.capacity();
  d.shrink(before);  // not larger than what may be kept: nothing to do
  EXPECT_EQ(d.capacity(), before);
  d.shrink(4096);
  EXPECT_EQ(d.capacity(), 0u);

  // The decoder works as before after giving its memory back.
  d.feed(big.bytes);
  r = d.next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->has_value());
  EXPECT_TRUE(**r == big.expected);
}

TEST(StreamDecoder, ShrinkKeepsPendingBytes) {
  const auto& big = find_vector(vectors::v311_vectors(), "publish_payload_20000");
  stream_decoder d;
  d.feed(std::string_view(big.bytes).substr(0, 10'000));
  auto r = d.next();
  ASSERT_TRUE(r);
  ASSERT_FALSE(r->has_value());
  const auto before = d.capacity();
  d.shrink(0);  // half a packet is waiting: the buffer must stay
  EXPECT_EQ(d.capacity(), before);
  EXPECT_EQ(d.buffered(), 10'000u);
  d.feed(std::string_view(big.bytes).substr(10'000));
  r = d.next();
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->has_value());
  EXPECT_TRUE(**r == big.expected);
}

// A multi-megabyte packet through small socket-sized reads, then the buffer given back.
TEST(StreamDecoder, LargePacketInSmallReads) {
  const std::string payload = vectors::pattern(2'097'149);
  // PUBLISH QoS 0, Remaining Length 2097152 (0x80 0x80 0x80 0x01), Topic Name "a"
  const std::string bytes = b({0x30, 0x80, 0x80, 0x80, 0x01, 0x00, 0x01, 'a'}) + payload;
  stream_decoder d;
  std::size_t fed = 0;
  while (fed < bytes.size()) {
    const auto n = std::min<std::size_t>(16 * 1024, bytes.size() - fed);
    push(d, std::string_view(bytes).substr(fed, n), fill::prepare_commit);
    fed += n;
    auto r = d.next();
    ASSERT_TRUE(r);
    if (fed < bytes.size()) {
      ASSERT_FALSE(r->has_value()) << fed;
    } else {
      ASSERT_TRUE(r->has_value());
      EXPECT_TRUE((**r == packet{publish_packet{.topic = "a", .payload = payload}}));
    }
  }
  d.shrink(64 * 1024);
  EXPECT_EQ(d.capacity(), 0u);
}

}  // namespace
}  // namespace ringmq::codec
