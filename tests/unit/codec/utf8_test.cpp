// MQTT's UTF-8 rules (section 1.5.4): well-formed UTF-8 per RFC 3629, no surrogates
// ([MQTT-1.5.4-1]), no U+0000 ([MQTT-1.5.4-2]); other control characters and non-characters
// are allowed.

#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "broker/codec/utf8.hpp"

namespace ringmq::codec {
namespace {

struct utf8_case {
  std::string name;
  std::string text;
  bool valid;
};

void PrintTo(const utf8_case& c, std::ostream* os) {
  constexpr char digits[] = "0123456789ABCDEF";
  *os << c.name << " [";
  for (std::size_t i = 0; i < c.text.size(); ++i) {
    const auto byte = static_cast<std::uint8_t>(c.text[i]);
    *os << (i ? " " : "") << digits[byte >> 4] << digits[byte & 0x0F];
  }
  *os << "]";
}

class Utf8 : public ::testing::TestWithParam<utf8_case> {};

TEST_P(Utf8, Validates) {
  EXPECT_EQ(is_valid_mqtt_utf8(GetParam().text), GetParam().valid);
}

// std::string from bytes that may include NUL.
std::string bytes(std::string_view s) { return std::string(s); }
using namespace std::string_view_literals;

INSTANTIATE_TEST_SUITE_P(
    Utf8, Utf8,
    ::testing::Values(
        utf8_case{"empty", "", true},
        utf8_case{"ascii", "hello/world", true},
        utf8_case{"latin", "caf\xC3\xA9", true},
        utf8_case{"greek", "\xCE\x95\xCE\xBB\xCE\xBB\xCE\xAC\xCE\xB4\xCE\xB1", true},
        utf8_case{"japanese", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", true},
        utf8_case{"emoji", "\xF0\x9F\x98\x80", true},
        utf8_case{"mixed_lengths", "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z", true},
        // Boundaries of each encoded length.
        utf8_case{"u0001", "\x01", true},
        utf8_case{"u007f", "\x7F", true},
        utf8_case{"u0080", "\xC2\x80", true},
        utf8_case{"u07ff", "\xDF\xBF", true},
        utf8_case{"u0800", "\xE0\xA0\x80", true},
        utf8_case{"ud7ff_below_surrogates", "\xED\x9F\xBF", true},
        utf8_case{"ue000_above_surrogates", "\xEE\x80\x80", true},
        utf8_case{"ufeff_byte_order_mark", "\xEF\xBB\xBF", true},  // [MQTT-1.5.4-3]
        utf8_case{"uffff", "\xEF\xBF\xBF", true},
        utf8_case{"u10000", "\xF0\x90\x80\x80", true},
        utf8_case{"u10ffff", "\xF4\x8F\xBF\xBF", true},
        // The specification says a receiver MAY refuse these; this codec accepts them.
        utf8_case{"c0_control_u001f", "\x1F", true},
        utf8_case{"c1_control_u009f", "\xC2\x9F", true},
        utf8_case{"noncharacter_ufffe", "\xEF\xBF\xBE", true},
        utf8_case{"noncharacter_u1ffff", "\xF0\x9F\xBF\xBF", true},
        // U+0000, plain or overlong.
        utf8_case{"nul", bytes("\0"sv), false},
        utf8_case{"nul_inside", bytes("a\0b"sv), false},
        utf8_case{"nul_overlong_two_bytes", "\xC0\x80", false},
        utf8_case{"nul_overlong_three_bytes", "\xE0\x80\x80", false},
        // Overlong forms.
        utf8_case{"overlong_slash_two_bytes", "\xC0\xAF", false},
        utf8_case{"overlong_u007f", "\xC1\xBF", false},
        utf8_case{"overlong_slash_three_bytes", "\xE0\x80\xAF", false},
        utf8_case{"overlong_u07ff", "\xE0\x9F\xBF", false},
        utf8_case{"overlong_slash_four_bytes", "\xF0\x80\x80\xAF", false},
        utf8_case{"overlong_uffff", "\xF0\x8F\xBF\xBF", false},
        // Surrogates [MQTT-1.5.4-1], alone or as a CESU-8 pair.
        utf8_case{"surrogate_ud800", "\xED\xA0\x80", false},
        utf8_case{"surrogate_udbff", "\xED\xAF\xBF", false},
        utf8_case{"surrogate_udc00", "\xED\xB0\x80", false},
        utf8_case{"surrogate_udfff", "\xED\xBF\xBF", false},
        utf8_case{"surrogate_pair_cesu8", "\xED\xA0\xBD\xED\xB8\x80", false},
        utf8_case{"surrogate_after_text", "ok\xED\xA0\x80", false},
        // Beyond U+10FFFF and the lead bytes RFC 3629 removed.
        utf8_case{"u110000", "\xF4\x90\x80\x80", false},
        utf8_case{"u1fffff", "\xF7\xBF\xBF\xBF", false},
        utf8_case{"lead_f5", "\xF5\x80\x80\x80", false},
        utf8_case{"five_byte_form", "\xF8\x88\x80\x80\x80", false},
        utf8_case{"six_byte_form", "\xFC\x84\x80\x80\x80\x80", false},
        utf8_case{"byte_fe", "\xFE", false},
        utf8_case{"byte_ff", "\xFF", false},
        // Continuation bytes without a lead.
        utf8_case{"lone_continuation_80", "\x80", false},
        utf8_case{"lone_continuation_bf", "\xBF", false},
        utf8_case{"continuation_between_ascii", "a\x80z", false},
        utf8_case{"extra_continuation", "\xC3\xA9\xA9", false},
        // Truncated sequences, at the end or followed by something else.
        utf8_case{"truncated_two_byte", "\xC3", false},
        utf8_case{"truncated_three_byte_one_missing", "\xE2\x82", false},
        utf8_case{"truncated_three_byte_two_missing", "\xE2", false},
        utf8_case{"truncated_four_byte", "\xF0\x9F\x98", false},
        utf8_case{"truncated_then_ascii", "\xE2\x82z", false},
        utf8_case{"truncated_then_lead", "\xC3\xC3\xA9", false},
        utf8_case{"truncated_after_text", "caf\xC3", false}),
    [](const auto& info) { return info.param.name; });

// Encodes one code point by hand (surrogates included, to test that they are refused).
std::string encode_code_point(std::uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return out;
}

// Every code point in its shortest form: valid unless it is U+0000 or a surrogate.
TEST(Utf8Exhaustive, EveryCodePoint) {
  int wrong = 0;
  for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    const bool expected = cp != 0 && (cp < 0xD800 || cp > 0xDFFF);
    if (is_valid_mqtt_utf8(encode_code_point(cp)) != expected && ++wrong <= 5) {
      ADD_FAILURE() << "U+" << std::hex << cp << " expected " << expected;
    }
  }
  EXPECT_EQ(wrong, 0);
}

// Every byte from 0x80 up is only ever part of a sequence, never a character alone.
TEST(Utf8Exhaustive, NoHighByteStandsAlone) {
  for (int byte = 0x80; byte <= 0xFF; ++byte) {
    EXPECT_FALSE(is_valid_mqtt_utf8(std::string(1, static_cast<char>(byte)))) << byte;
  }
}

// The validator stops at the view's end: a valid view over a longer buffer stays valid.
TEST(Utf8Exhaustive, RespectsTheViewLength) {
  const std::string buffer = "ab\xE2\x82\xAC";
  EXPECT_TRUE(is_valid_mqtt_utf8(std::string_view(buffer).substr(0, 2)));
  EXPECT_FALSE(is_valid_mqtt_utf8(std::string_view(buffer).substr(0, 4)));
  EXPECT_TRUE(is_valid_mqtt_utf8(buffer));
}

}  // namespace
}  // namespace ringmq::codec
