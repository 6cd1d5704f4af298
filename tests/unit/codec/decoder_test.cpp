#include <gtest/gtest.h>

#include "broker/codec/decoder.hpp"
#include "broker/codec/encoder.hpp"

namespace ringmq::codec {
namespace {

TEST(Decoder, PingreqRoundTrip) {
  const std::string bytes("\xC0\x00", 2);
  auto p = decode_packet(bytes, protocol_version::v3_1_1);
  ASSERT_TRUE(p);
  EXPECT_EQ(type_of(*p), packet_type::pingreq);
  EXPECT_EQ(encode(*p, protocol_version::v3_1_1), bytes);
}

}  // namespace
}  // namespace ringmq::codec
