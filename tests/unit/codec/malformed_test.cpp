// Malformed and forbidden input: every case is written by hand, byte by byte,
// and must be refused with exactly the reason code docs/conformance.md lists.
// Each case goes through decode_packet() and through a stream_decoder, fed
// whole and one byte at a time, so the two decoding paths cannot drift apart.

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "broker/codec/decoder.hpp"

namespace ringmq::codec {
namespace {

constexpr auto v31 = protocol_version::v3_1;
constexpr auto v311 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;

constexpr auto malformed_packet = reason_code::malformed_packet;
constexpr auto protocol_err = reason_code::protocol_error;
constexpr auto unsupported_version = reason_code::unsupported_protocol_version;
constexpr auto topic_name_invalid = reason_code::topic_name_invalid;
constexpr auto topic_alias_invalid = reason_code::topic_alias_invalid;

// Bytes from a readable spec: two-digit hex bytes and 'quoted ASCII', separated by spaces.
// Written this way so that every case shows its exact wire form.
std::string b(std::string_view spec) {
  std::string out;
  for (std::size_t i = 0; i < spec.size();) {
    const char c = spec[i];
    if (c == ' ') {
      ++i;
    } else if (c == '\'') {
      const auto close = spec.find('\'', i + 1);
      if (close == std::string_view::npos) throw std::invalid_argument("unterminated text");
      out.append(spec.substr(i + 1, close - i - 1));
      i = close + 1;
    } else {
      if (i + 1 >= spec.size() || !std::isxdigit(static_cast<unsigned char>(spec[i + 1]))) {
        throw std::invalid_argument("hex bytes take two digits");
      }
      out.push_back(static_cast<char>(std::stoi(std::string(spec.substr(i, 2)), nullptr, 16)));
      i += 2;
    }
  }
  return out;
}

// A Variable Byte Integer, for the lengths the helpers below prepend.
std::string vbi(std::size_t value) {
  std::string out;
  do {
    auto digit = static_cast<std::uint8_t>(value % 128);
    value /= 128;
    if (value > 0) digit |= 0x80;
    out.push_back(static_cast<char>(digit));
  } while (value > 0);
  return out;
}

// A whole packet: first byte, Remaining Length counted from the body, body.
std::string pkt(std::uint8_t first_byte, std::string_view body_spec) {
  const auto body = b(body_spec);
  return std::string(1, static_cast<char>(first_byte)) + vbi(body.size()) + body;
}

// A 5.0 property block: Property Length counted from the properties, then the properties.
std::string props(std::string_view spec) {
  const auto body = b(spec);
  return vbi(body.size()) + body;
}

// Packets whose property block sits in the middle of the body.
std::string pkt_with_props(std::uint8_t first_byte, std::string_view before,
                           std::string_view properties, std::string_view after = "") {
  const auto body = b(before) + props(properties) + b(after);
  return std::string(1, static_cast<char>(first_byte)) + vbi(body.size()) + body;
}

// CONNECT with protocol name "MQTT" and Keep Alive 60; `payload` starts at the Client Identifier.
std::string connect_v311(std::uint8_t flags, std::string_view payload) {
  const auto body = b("00 04 'MQTT' 04") + std::string(1, static_cast<char>(flags)) + b("00 3C") +
                    b(payload);
  return std::string(1, '\x10') + vbi(body.size()) + body;
}

std::string connect_v5(std::uint8_t flags, std::string_view properties,
                       std::string_view payload) {
  const auto body = b("00 04 'MQTT' 05") + std::string(1, static_cast<char>(flags)) + b("00 3C") +
                    props(properties) + b(payload);
  return std::string(1, '\x10') + vbi(body.size()) + body;
}

// A 5.0 CONNECT with a will (flags: Will Flag and Clean Start); the Will Properties are given,
// the Will Topic is "w/t" and the Will Payload "m".
std::string connect_v5_will(std::string_view will_properties) {
  const auto body = b("00 04 'MQTT' 05 06 00 3C 00 00 01 'c'") + props(will_properties) +
                    b("00 03 'w/t' 00 01 'm'");
  return std::string(1, '\x10') + vbi(body.size()) + body;
}

// How the stream decoder must react to a case's bytes.
enum class framing {
  exact,      // the bytes are one frame (or a broken fixed header): the stream reports the code
  truncated,  // fewer bytes than the Remaining Length: the stream waits for more, no error yet
  trailing,   // a whole frame and more: the stream decodes the frame and keeps the rest
};

struct malformed_case {
  std::string name;
  protocol_version version;
  std::string bytes;
  reason_code expected;
  framing frame = framing::exact;
};

void PrintTo(const malformed_case& c, std::ostream* os) {
  *os << c.name << " [";
  constexpr char digits[] = "0123456789ABCDEF";
  for (std::size_t i = 0; i < c.bytes.size(); ++i) {
    const auto byte = static_cast<std::uint8_t>(c.bytes[i]);
    *os << (i ? " " : "") << digits[byte >> 4] << digits[byte & 0x0F];
  }
  *os << "]";
}

std::string hex_code(reason_code code) {
  constexpr char digits[] = "0123456789ABCDEF";
  const auto raw = static_cast<std::uint8_t>(code);
  return std::string("0x") + digits[raw >> 4] + digits[raw & 0x0F] + " " +
         std::string(to_string(code));
}

// ---------------------------------------------------------------------------------------------
// Fixed header: packet type, reserved flags, Remaining Length, frame boundaries.

std::vector<malformed_case> fixed_header_cases() {
  return {
      {"reserved_type_0_v311", v311, b("00 00"), malformed_packet},
      {"reserved_type_0_v5", v5, b("00 00"), malformed_packet},
      {"reserved_type_0_with_flags", v5, b("0F 00"), malformed_packet},
      {"reserved_type_0_with_body", v311, pkt(0x00, "00 01"), malformed_packet},
      {"auth_type_15_in_v311", v311, b("F0 00"), malformed_packet},
      {"auth_type_15_in_v31", v31, b("F0 00"), malformed_packet},
      {"auth_type_15_with_body_in_v311", v311, pkt(0xF0, "18 00"), malformed_packet},
      // [MQTT-2.1.3-1]: every packet but PUBLISH has fixed flag bits.
      {"connect_flags_1_v311", v311, pkt(0x11, "00 04 'MQTT' 04 02 00 3C 00 01 'c'"),
       malformed_packet},
      {"connect_flags_8_v5", v5, pkt(0x18, "00 04 'MQTT' 05 02 00 3C 00 00 01 'c'"),
       malformed_packet},
      {"connack_flags_1_v311", v311, pkt(0x21, "00 00"), malformed_packet},
      {"connack_flags_8_v5", v5, pkt(0x28, "00 00 00"), malformed_packet},
      {"puback_flags_2_v311", v311, pkt(0x42, "00 01"), malformed_packet},
      {"puback_flags_1_v5", v5, pkt(0x41, "00 01"), malformed_packet},
      {"pubrec_flags_2_v311", v311, pkt(0x52, "00 01"), malformed_packet},
      {"pubrec_flags_f_v5", v5, pkt(0x5F, "00 01"), malformed_packet},
      {"pubrel_flags_0_v311", v311, pkt(0x60, "00 01"), malformed_packet},
      {"pubrel_flags_3_v311", v311, pkt(0x63, "00 01"), malformed_packet},
      {"pubrel_flags_a_v5", v5, pkt(0x6A, "00 01"), malformed_packet},
      {"pubcomp_flags_2_v311", v311, pkt(0x72, "00 01"), malformed_packet},
      {"pubcomp_flags_4_v5", v5, pkt(0x74, "00 01"), malformed_packet},
      {"subscribe_flags_0_v311", v311, pkt(0x80, "00 01 00 01 'a' 00"), malformed_packet},
      {"subscribe_flags_3_v311", v311, pkt(0x83, "00 01 00 01 'a' 00"), malformed_packet},
      {"subscribe_flags_a_v5", v5, pkt(0x8A, "00 01 00 00 01 'a' 00"), malformed_packet},
      {"suback_flags_2_v311", v311, pkt(0x92, "00 01 00"), malformed_packet},
      {"suback_flags_1_v5", v5, pkt(0x91, "00 01 00 00"), malformed_packet},
      {"unsubscribe_flags_0_v311", v311, pkt(0xA0, "00 01 00 01 'a'"), malformed_packet},
      {"unsubscribe_flags_6_v5", v5, pkt(0xA6, "00 01 00 00 01 'a'"), malformed_packet},
      {"unsuback_flags_1_v311", v311, pkt(0xB1, "00 01"), malformed_packet},
      {"unsuback_flags_2_v5", v5, pkt(0xB2, "00 01 00 00"), malformed_packet},
      {"pingreq_flags_1", v311, b("C1 00"), malformed_packet},
      {"pingreq_flags_8_v5", v5, b("C8 00"), malformed_packet},
      {"pingresp_flags_2", v311, b("D2 00"), malformed_packet},
      {"disconnect_flags_1_v311", v311, b("E1 00"), malformed_packet},
      {"disconnect_flags_4_v5", v5, b("E4 00"), malformed_packet},
      {"auth_flags_1_v5", v5, b("F1 00"), malformed_packet},
      {"auth_flags_f_v5", v5, b("FF 00"), malformed_packet},
      // A Variable Byte Integer has at most four bytes (section 1.5.5).
      {"remaining_length_fifth_byte_publish", v311, b("30 FF FF FF FF 7F"), malformed_packet},
      {"remaining_length_fifth_byte_pingreq", v311, b("C0 80 80 80 80 00"), malformed_packet},
      {"remaining_length_fifth_byte_disconnect_v5", v5, b("E0 81 81 81 81 01"),
       malformed_packet},
      // The frame promises more bytes than there are.
      {"only_the_first_byte", v311, b("C0"), malformed_packet, framing::truncated},
      {"remaining_length_unfinished", v311, b("30 80"), malformed_packet, framing::truncated},
      {"body_shorter_than_remaining_length_puback", v311, b("40 02 00"), malformed_packet,
       framing::truncated},
      {"body_shorter_than_remaining_length_publish_v5", v5, b("30 0A 00 03 'a/b' 00"),
       malformed_packet, framing::truncated},
      // decode_packet() takes exactly one packet: bytes after the frame are an error.
      {"bytes_after_pingreq", v311, b("C0 00 00"), malformed_packet, framing::trailing},
      {"bytes_after_puback", v5, b("40 02 00 01 FF"), malformed_packet, framing::trailing},
  };
}

// ---------------------------------------------------------------------------------------------
// Bodies longer or shorter than their packet type allows, inside a correct frame.

std::vector<malformed_case> body_length_cases() {
  return {
      {"puback_v311_three_bytes", v311, pkt(0x40, "00 01 00"), malformed_packet},
      {"pubrel_v311_four_bytes", v311, pkt(0x62, "00 01 00 00"), malformed_packet},
      {"unsuback_v311_with_reason_code", v311, pkt(0xB0, "00 01 00"), malformed_packet},
      {"connack_v311_three_bytes", v311, pkt(0x20, "00 00 00"), malformed_packet},
      {"connack_v5_byte_after_properties", v5, pkt(0x20, "00 00 00 FF"), malformed_packet},
      {"disconnect_v311_with_body", v311, pkt(0xE0, "00"), malformed_packet},
      {"puback_v5_byte_after_properties", v5, pkt(0x40, "00 01 00 00 FF"), malformed_packet},
      {"disconnect_v5_byte_after_properties", v5, pkt(0xE0, "00 00 00"), malformed_packet},
      {"auth_v5_byte_after_properties", v5, pkt(0xF0, "18 00 00"), malformed_packet},
      {"pingreq_with_body", v311, pkt(0xC0, "00"), malformed_packet},
      {"pingreq_with_body_v5", v5, pkt(0xC0, "00 00"), malformed_packet},
      {"pingresp_with_body", v311, pkt(0xD0, "00"), malformed_packet},
      {"puback_empty_body", v311, pkt(0x40, ""), malformed_packet},
      {"puback_one_byte", v5, pkt(0x40, "00"), malformed_packet},
      {"pubcomp_one_byte", v311, pkt(0x70, "01"), malformed_packet},
      {"connack_one_byte", v311, pkt(0x20, "00"), malformed_packet},
      {"connack_v5_without_property_length", v5, pkt(0x20, "00 00"), malformed_packet},
      {"publish_topic_length_past_end", v311, pkt(0x30, "00 05 'ab'"), malformed_packet},
      {"publish_topic_length_one_byte", v311, pkt(0x30, "00"), malformed_packet},
      {"publish_qos1_half_packet_id", v311, pkt(0x32, "00 01 'a' 00"), malformed_packet},
      {"publish_v5_without_property_length", v5, pkt(0x30, "00 01 'a'"), malformed_packet},
      {"subscribe_missing_options", v311, pkt(0x82, "00 01 00 01 'a'"), malformed_packet},
      {"subscribe_filter_past_end", v311, pkt(0x82, "00 01 00 05 'ab'"), malformed_packet},
      {"subscribe_v5_without_property_length", v5, pkt(0x82, "00 01"), malformed_packet},
      {"suback_v5_without_property_length", v5, pkt(0x90, "00 01"), malformed_packet},
      {"unsubscribe_filter_past_end", v311, pkt(0xA2, "00 01 00 04 'a'"), malformed_packet},
      {"unsubscribe_v5_without_property_length", v5, pkt(0xA2, "00 01"), malformed_packet},
      {"unsuback_v5_without_property_length", v5, pkt(0xB0, "00 01"), malformed_packet},
  };
}

// ---------------------------------------------------------------------------------------------
// PUBLISH: flags, Packet Identifier, Topic Name.

std::vector<malformed_case> publish_cases() {
  return {
      // [MQTT-3.3.1-4]
      {"publish_qos_3_v311", v311, pkt(0x36, "00 01 'a' 00 01"), malformed_packet},
      {"publish_qos_3_v5", v5, pkt(0x36, "00 01 'a' 00 01 00"), malformed_packet},
      {"publish_qos_3_dup_retain", v311, pkt(0x3F, "00 01 'a' 00 01"), malformed_packet},
      // [MQTT-3.3.1-2]
      {"publish_dup_on_qos_0_v311", v311, pkt(0x38, "00 01 'a'"), malformed_packet},
      {"publish_dup_on_qos_0_retain_v5", v5, pkt(0x39, "00 01 'a' 00"), malformed_packet},
      // [MQTT-2.2.1-3]
      {"publish_qos1_packet_id_0_v311", v311, pkt(0x32, "00 01 'a' 00 00"), protocol_err},
      {"publish_qos1_packet_id_0_v5", v5, pkt(0x32, "00 01 'a' 00 00 00"), protocol_err},
      {"publish_qos2_packet_id_0_v311", v311, pkt(0x34, "00 01 'a' 00 00 'x'"), protocol_err},
      {"publish_qos2_packet_id_0_v5", v5, pkt(0x34, "00 01 'a' 00 00 00"), protocol_err},
      // [MQTT-3.3.2-2]
      {"publish_topic_plus_v311", v311, pkt(0x30, "00 03 'a/+'"), topic_name_invalid},
      {"publish_topic_hash_v5", v5, pkt(0x30, "00 03 'a/#' 00"), topic_name_invalid},
      {"publish_topic_only_hash", v311, pkt(0x30, "00 01 '#'"), topic_name_invalid},
      {"publish_topic_plus_inside_level_v5", v5, pkt(0x30, "00 03 'a+b' 00"),
       topic_name_invalid},
      {"publish_qos1_topic_wildcard_v5", v5, pkt(0x32, "00 03 '+/a' 00 07 00"),
       topic_name_invalid},
      // An empty Topic Name: 5.0 allows it only with a Topic Alias.
      {"publish_empty_topic_v311", v311, pkt(0x30, "00 00 'x'"), topic_name_invalid},
      {"publish_empty_topic_v31", v31, pkt(0x30, "00 00 'x'"), topic_name_invalid},
      {"publish_empty_topic_without_alias_v5", v5, pkt(0x30, "00 00 00 'x'"), protocol_err},
      {"publish_qos1_empty_topic_without_alias_v5", v5, pkt(0x32, "00 00 00 07 00"),
       protocol_err},
      // [MQTT-3.3.2-8]
      {"publish_topic_alias_0", v5, pkt_with_props(0x30, "00 01 'a'", "23 00 00"),
       topic_alias_invalid},
      {"publish_empty_topic_topic_alias_0", v5, pkt_with_props(0x30, "00 00", "23 00 00"),
       topic_alias_invalid},
      // [MQTT-1.5.4-1], [MQTT-1.5.4-2] in the Topic Name.
      {"publish_topic_overlong_slash", v311, pkt(0x30, "00 02 C0 AF"), malformed_packet},
      {"publish_topic_overlong_nul", v311, pkt(0x30, "00 02 C0 80"), malformed_packet},
      {"publish_topic_overlong_three_bytes_v5", v5, pkt(0x30, "00 03 E0 80 AF 00"),
       malformed_packet},
      {"publish_topic_overlong_four_bytes_v5", v5, pkt(0x30, "00 04 F0 80 80 AF 00"),
       malformed_packet},
      {"publish_topic_surrogate_d800", v311, pkt(0x30, "00 03 ED A0 80"), malformed_packet},
      {"publish_topic_surrogate_dfff_v5", v5, pkt(0x30, "00 03 ED BF BF 00"), malformed_packet},
      {"publish_topic_nul", v311, pkt(0x30, "00 03 61 00 62"), malformed_packet},
      {"publish_topic_lone_continuation", v311, pkt(0x30, "00 01 80"), malformed_packet},
      {"publish_topic_truncated_sequence_v5", v5, pkt(0x30, "00 03 61 E2 82 00"),
       malformed_packet},
      {"publish_topic_above_10ffff", v311, pkt(0x30, "00 04 F4 90 80 80"), malformed_packet},
      {"publish_topic_byte_ff", v311, pkt(0x30, "00 02 61 FF"), malformed_packet},
  };
}

// ---------------------------------------------------------------------------------------------
// CONNECT.

std::vector<malformed_case> connect_cases() {
  return {
      // [MQTT-3.1.2-1]: not MQTT.
      {"connect_protocol_name_lowercase", v311, pkt(0x10, "00 04 'mqtt' 04 02 00 3C 00 01 'c'"),
       protocol_err},
      {"connect_protocol_name_unknown", v311, pkt(0x10, "00 04 'MQTX' 04 02 00 3C 00 01 'c'"),
       protocol_err},
      {"connect_protocol_name_empty", v311, pkt(0x10, "00 00 04 02 00 3C 00 01 'c'"),
       protocol_err},
      {"connect_protocol_name_mqisd", v311, pkt(0x10, "00 05 'MQIsd' 03 02 00 3C 00 01 'c'"),
       protocol_err},
      {"connect_protocol_name_invalid_utf8", v311,
       pkt(0x10, "00 04 'MQT' C0 04 02 00 3C 00 01 'c'"), malformed_packet},
      // [MQTT-3.1.2-2]: a level this name does not define.
      {"connect_mqtt_level_3", v311, pkt(0x10, "00 04 'MQTT' 03 02 00 3C 00 01 'c'"),
       unsupported_version},
      {"connect_mqtt_level_6", v5, pkt(0x10, "00 04 'MQTT' 06 02 00 3C 00 00 01 'c'"),
       unsupported_version},
      {"connect_mqtt_level_0", v311, pkt(0x10, "00 04 'MQTT' 00 02 00 3C 00 01 'c'"),
       unsupported_version},
      {"connect_mqtt_level_ff", v311, pkt(0x10, "00 04 'MQTT' FF 02 00 3C 00 01 'c'"),
       unsupported_version},
      {"connect_mqisdp_level_4", v311, pkt(0x10, "00 06 'MQIsdp' 04 02 00 3C 00 01 'c'"),
       unsupported_version},
      {"connect_mqisdp_level_5", v5, pkt(0x10, "00 06 'MQIsdp' 05 02 00 3C 00 00 01 'c'"),
       unsupported_version},
      // Fields cut short.
      {"connect_protocol_name_truncated", v311, pkt(0x10, "00 04 'MQ'"), malformed_packet},
      {"connect_missing_protocol_level", v311, pkt(0x10, "00 04 'MQTT'"), malformed_packet},
      {"connect_missing_connect_flags", v311, pkt(0x10, "00 04 'MQTT' 04"), malformed_packet},
      {"connect_half_keep_alive", v311, pkt(0x10, "00 04 'MQTT' 04 02 00"), malformed_packet},
      {"connect_missing_client_id", v311, pkt(0x10, "00 04 'MQTT' 04 02 00 3C"),
       malformed_packet},
      {"connect_client_id_past_end", v311, connect_v311(0x02, "00 05 'ab'"), malformed_packet},
      {"connect_v5_missing_properties", v5, pkt(0x10, "00 04 'MQTT' 05 02 00 3C"),
       malformed_packet},
      {"connect_v5_missing_client_id", v5, connect_v5(0x02, "", ""), malformed_packet},
      {"connect_will_missing_topic", v311, connect_v311(0x06, "00 01 'c'"), malformed_packet},
      {"connect_will_missing_payload", v311, connect_v311(0x06, "00 01 'c' 00 01 't'"),
       malformed_packet},
      {"connect_will_payload_past_end", v311,
       connect_v311(0x06, "00 01 'c' 00 01 't' 00 05 'ab'"), malformed_packet},
      {"connect_v5_will_missing_properties", v5, connect_v5(0x06, "", "00 01 'c'"),
       malformed_packet},
      {"connect_user_name_flag_without_user_name", v311, connect_v311(0x82, "00 01 'c'"),
       malformed_packet},
      {"connect_password_flag_without_password", v311, connect_v311(0xC2, "00 01 'c' 00 01 'u'"),
       malformed_packet},
      {"connect_v5_password_flag_without_password", v5, connect_v5(0x42, "", "00 01 'c'"),
       malformed_packet},
      // Bytes after the last field the flags announce.
      {"connect_trailing_byte_v311", v311, connect_v311(0x02, "00 01 'c' 00"), malformed_packet},
      {"connect_trailing_byte_v5", v5, connect_v5(0x02, "", "00 01 'c' FF"), malformed_packet},
      {"connect_trailing_byte_after_password", v311,
       connect_v311(0xC2, "00 01 'c' 00 01 'u' 00 01 'p' 00"), malformed_packet},
      {"connect_user_name_present_without_flag", v311, connect_v311(0x02, "00 01 'c' 00 01 'u'"),
       malformed_packet},
      // [MQTT-3.1.2-3]
      {"connect_reserved_flag_v311", v311, connect_v311(0x03, "00 01 'c'"), malformed_packet},
      {"connect_reserved_flag_v5", v5, connect_v5(0x01, "", "00 01 'c'"), malformed_packet},
      {"connect_reserved_flag_v31", v31, pkt(0x10, "00 06 'MQIsdp' 03 03 00 3C 00 01 'c'"),
       malformed_packet},
      // [MQTT-3.1.2-12]
      {"connect_will_qos_3_v311", v311, connect_v311(0x1E, "00 01 'c' 00 01 't' 00 01 'm'"),
       malformed_packet},
      {"connect_will_qos_3_v5", v5, connect_v5(0x1E, "", "00 01 'c' 00 00 01 't' 00 01 'm'"),
       malformed_packet},
      // [MQTT-3.1.2-11], [MQTT-3.1.2-13]
      {"connect_will_qos_1_without_will_flag", v311, connect_v311(0x0A, "00 01 'c'"),
       malformed_packet},
      {"connect_will_qos_2_without_will_flag_v5", v5, connect_v5(0x12, "", "00 01 'c'"),
       malformed_packet},
      {"connect_will_retain_without_will_flag", v311, connect_v311(0x22, "00 01 'c'"),
       malformed_packet},
      {"connect_will_retain_without_will_flag_v5", v5, connect_v5(0x22, "", "00 01 'c'"),
       malformed_packet},
      // 3.1.1 [MQTT-3.1.2-22]; 5.0 allows a password alone (see the accepted cases below).
      {"connect_password_without_user_name_v311", v311, connect_v311(0x42, "00 01 'c' 00 02 'pw'"),
       malformed_packet},
      {"connect_password_without_user_name_v31", v31,
       pkt(0x10, "00 06 'MQIsdp' 03 42 00 3C 00 01 'c' 00 02 'pw'"), malformed_packet},
      // [MQTT-3.1.3-4], [MQTT-3.1.3-12]: UTF-8 in the Client Identifier and User Name.
      {"connect_client_id_invalid_utf8", v311, connect_v311(0x02, "00 02 C3 28"),
       malformed_packet},
      {"connect_client_id_surrogate_v5", v5, connect_v5(0x02, "", "00 03 ED B0 80"),
       malformed_packet},
      {"connect_client_id_nul", v311, connect_v311(0x02, "00 01 00"), malformed_packet},
      {"connect_client_id_lone_continuation_v5", v5, connect_v5(0x02, "", "00 02 'a' BF"),
       malformed_packet},
      {"connect_user_name_overlong", v311, connect_v311(0x82, "00 01 'c' 00 02 C1 81"),
       malformed_packet},
      {"connect_user_name_above_10ffff_v5", v5,
       connect_v5(0x82, "", "00 01 'c' 00 04 F4 90 80 80"), malformed_packet},
      {"connect_user_name_truncated_sequence", v311, connect_v311(0x82, "00 01 'c' 00 02 'a' F0"),
       malformed_packet},
      // [MQTT-3.1.3-11] and section 4.7: the Will Topic is a Topic Name.
      {"connect_will_topic_plus_v311", v311, connect_v311(0x06, "00 01 'c' 00 03 'a/+' 00 00"),
       topic_name_invalid},
      {"connect_will_topic_hash_v5", v5, connect_v5(0x06, "", "00 01 'c' 00 00 01 '#' 00 00"),
       topic_name_invalid},
      {"connect_will_topic_empty_v311", v311, connect_v311(0x06, "00 01 'c' 00 00 00 00"),
       topic_name_invalid},
      {"connect_will_topic_invalid_utf8", v311, connect_v311(0x06, "00 01 'c' 00 02 E2 82 00 00"),
       malformed_packet},
      {"connect_will_topic_surrogate_v5", v5,
       connect_v5(0x06, "", "00 01 'c' 00 00 03 ED A0 80 00 00"), malformed_packet},
      // Section 3.1.2.11.10.
      {"connect_v5_auth_data_without_auth_method", v5,
       connect_v5(0x02, "16 00 01 'x'", "00 01 'c'"),
       protocol_err},
  };
}

// ---------------------------------------------------------------------------------------------
// CONNACK.

std::vector<malformed_case> connack_cases() {
  return {
      // [MQTT-3.2.2-1]
      {"connack_reserved_flags_v311", v311, pkt(0x20, "02 00"), malformed_packet},
      {"connack_reserved_flag_7_v5", v5, pkt(0x20, "80 00 00"), malformed_packet},
      // 3.1.1 defines return codes 0 to 5 only.
      {"connack_return_code_6_v311", v311, pkt(0x20, "00 06"), malformed_packet},
      {"connack_return_code_80_v311", v311, pkt(0x20, "00 80"), malformed_packet},
      // [MQTT-3.2.2-6]
      {"connack_session_present_with_failure_v311", v311, pkt(0x20, "01 05"), protocol_err},
      {"connack_session_present_with_failure_v5", v5, pkt(0x20, "01 87 00"), protocol_err},
      // [MQTT-3.2.2-8]: only the Connect Reason Codes.
      {"connack_v5_code_01", v5, pkt(0x20, "00 01 00"), protocol_err},
      {"connack_v5_code_04", v5, pkt(0x20, "00 04 00"), protocol_err},
      {"connack_v5_code_18", v5, pkt(0x20, "00 18 00"), protocol_err},
      {"connack_v5_code_8b_server_shutting_down", v5, pkt(0x20, "00 8B 00"), protocol_err},
      {"connack_v5_code_8e_session_taken_over", v5, pkt(0x20, "00 8E 00"), protocol_err},
      {"connack_v5_code_92", v5, pkt(0x20, "00 92 00"), protocol_err},
      {"connack_v5_code_a2", v5, pkt(0x20, "00 A2 00"), protocol_err},
      {"connack_v5_code_ff", v5, pkt(0x20, "00 FF 00"), protocol_err},
  };
}

// ---------------------------------------------------------------------------------------------
// PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH.

std::vector<malformed_case> acknowledgement_cases() {
  return {
      // Packet Identifier 0 ([MQTT-2.2.1-3], [MQTT-2.2.1-5], [MQTT-2.2.1-6]).
      {"puback_packet_id_0_v311", v311, pkt(0x40, "00 00"), protocol_err},
      {"puback_packet_id_0_v5", v5, pkt(0x40, "00 00"), protocol_err},
      {"pubrec_packet_id_0_v311", v311, pkt(0x50, "00 00"), protocol_err},
      {"pubrec_packet_id_0_v5_with_code", v5, pkt(0x50, "00 00 10"), protocol_err},
      {"pubrel_packet_id_0_v311", v311, pkt(0x62, "00 00"), protocol_err},
      {"pubrel_packet_id_0_v5", v5, pkt(0x62, "00 00 00 00"), protocol_err},
      {"pubcomp_packet_id_0_v311", v311, pkt(0x70, "00 00"), protocol_err},
      {"pubcomp_packet_id_0_v5", v5, pkt(0x70, "00 00"), protocol_err},
      {"subscribe_packet_id_0_v311", v311, pkt(0x82, "00 00 00 01 'a' 00"), protocol_err},
      {"subscribe_packet_id_0_v5", v5, pkt(0x82, "00 00 00 00 01 'a' 00"), protocol_err},
      {"suback_packet_id_0_v311", v311, pkt(0x90, "00 00 00"), protocol_err},
      {"suback_packet_id_0_v5", v5, pkt(0x90, "00 00 00 00"), protocol_err},
      {"unsubscribe_packet_id_0_v311", v311, pkt(0xA2, "00 00 00 01 'a'"), protocol_err},
      {"unsubscribe_packet_id_0_v5", v5, pkt(0xA2, "00 00 00 00 01 'a'"), protocol_err},
      {"unsuback_packet_id_0_v311", v311, pkt(0xB0, "00 00"), protocol_err},
      {"unsuback_packet_id_0_v5", v5, pkt(0xB0, "00 00 00 00"), protocol_err},
      // Reason codes a packet type does not define ([MQTT-3.4.2-1] and following).
      {"puback_v5_code_01", v5, pkt(0x40, "00 01 01"), protocol_err},
      {"puback_v5_code_8f", v5, pkt(0x40, "00 01 8F"), protocol_err},
      {"puback_v5_code_92", v5, pkt(0x40, "00 01 92"), protocol_err},
      {"pubrec_v5_code_04", v5, pkt(0x50, "00 01 04"), protocol_err},
      {"pubrec_v5_code_ff", v5, pkt(0x50, "00 01 FF 00"), protocol_err},
      {"pubrel_v5_code_80", v5, pkt(0x62, "00 01 80"), protocol_err},
      {"pubrel_v5_code_10", v5, pkt(0x62, "00 01 10 00"), protocol_err},
      {"pubcomp_v5_code_91", v5, pkt(0x70, "00 01 91"), protocol_err},
      {"suback_v311_code_03", v311, pkt(0x90, "00 01 03"), protocol_err},
      {"suback_v311_code_81", v311, pkt(0x90, "00 01 00 81"), protocol_err},
      {"suback_v311_code_87_only_in_5", v311, pkt(0x90, "00 01 87"), protocol_err},
      {"suback_v5_code_03", v5, pkt(0x90, "00 01 00 03"), protocol_err},
      {"suback_v5_code_11", v5, pkt(0x90, "00 01 00 11"), protocol_err},
      {"suback_v5_code_82", v5, pkt(0x90, "00 01 00 82"), protocol_err},
      {"suback_v5_second_code_90", v5, pkt(0x90, "00 01 00 00 90"), protocol_err},
      {"unsuback_v5_code_01", v5, pkt(0xB0, "00 01 00 01"), protocol_err},
      {"unsuback_v5_code_10", v5, pkt(0xB0, "00 01 00 10"), protocol_err},
      {"unsuback_v5_code_9e", v5, pkt(0xB0, "00 01 00 00 9E"), protocol_err},
      {"disconnect_v5_code_01", v5, pkt(0xE0, "01"), protocol_err},
      {"disconnect_v5_code_18", v5, pkt(0xE0, "18"), protocol_err},
      {"disconnect_v5_code_84", v5, pkt(0xE0, "84"), protocol_err},
      {"disconnect_v5_code_85", v5, pkt(0xE0, "85 00"), protocol_err},
      {"disconnect_v5_code_86", v5, pkt(0xE0, "86"), protocol_err},
      {"disconnect_v5_code_88", v5, pkt(0xE0, "88"), protocol_err},
      {"disconnect_v5_code_8a", v5, pkt(0xE0, "8A"), protocol_err},
      {"disconnect_v5_code_8c", v5, pkt(0xE0, "8C"), protocol_err},
      {"disconnect_v5_code_91", v5, pkt(0xE0, "91"), protocol_err},
      {"disconnect_v5_code_92", v5, pkt(0xE0, "92"), protocol_err},
      {"disconnect_v5_code_a3", v5, pkt(0xE0, "A3"), protocol_err},
      {"auth_v5_code_01", v5, pkt(0xF0, "01"), protocol_err},
      {"auth_v5_code_80", v5, pkt(0xF0, "80 00"), protocol_err},
      {"auth_v5_code_87", v5, pkt(0xF0, "87"), protocol_err},
      // Subscriptions and unsubscriptions without any topic filter ([MQTT-3.8.3-2],
      // [MQTT-3.10.3-2]); acknowledgements without any reason code.
      {"subscribe_no_filters_v311", v311, pkt(0x82, "00 01"), protocol_err},
      {"subscribe_no_filters_v5", v5, pkt(0x82, "00 01 00"), protocol_err},
      {"subscribe_no_filters_with_properties_v5", v5, pkt_with_props(0x82, "00 01", "0B 01"),
       protocol_err},
      {"unsubscribe_no_filters_v311", v311, pkt(0xA2, "00 01"), protocol_err},
      {"unsubscribe_no_filters_v5", v5, pkt(0xA2, "00 01 00"), protocol_err},
      {"suback_no_codes_v311", v311, pkt(0x90, "00 01"), protocol_err},
      {"suback_no_codes_v5", v5, pkt(0x90, "00 01 00"), protocol_err},
      {"unsuback_no_codes_v5", v5, pkt(0xB0, "00 01 00"), protocol_err},
      // Subscription Options ([MQTT-3.8.3-5] and section 3.8.3.1).
      {"subscribe_v311_no_local_bit_reserved", v311, pkt(0x82, "00 01 00 01 'a' 04"),
       malformed_packet},
      {"subscribe_v311_option_bit_7", v311, pkt(0x82, "00 01 00 01 'a' 80"), malformed_packet},
      {"subscribe_v5_option_bit_6", v5, pkt(0x82, "00 01 00 00 01 'a' 40"), malformed_packet},
      {"subscribe_v5_option_bits_6_7", v5, pkt(0x82, "00 01 00 00 01 'a' C1"), malformed_packet},
      {"subscribe_v5_second_filter_option_bit_7", v5,
       pkt(0x82, "00 01 00 00 01 'a' 00 00 01 'b' 81"), malformed_packet},
      {"subscribe_qos_3_v311", v311, pkt(0x82, "00 01 00 01 'a' 03"), malformed_packet},
      {"subscribe_qos_3_v5", v5, pkt(0x82, "00 01 00 00 01 'a' 03"), protocol_err},
      {"subscribe_second_filter_qos_3_v5", v5, pkt(0x82, "00 01 00 00 01 'a' 01 00 01 'b' 07"),
       protocol_err},
      {"subscribe_retain_handling_3_v5", v5, pkt(0x82, "00 01 00 00 01 'a' 30"), protocol_err},
      {"subscribe_retain_handling_3_qos_2_v5", v5, pkt(0x82, "00 01 00 00 03 'a/b' 32"),
       protocol_err},
      // [MQTT-3.8.3-4]
      {"subscribe_no_local_on_shared_v5", v5, pkt(0x82, "00 01 00 00 0A '$share/g/a' 04"),
       protocol_err},
      {"subscribe_no_local_on_shared_second_v5", v5,
       pkt(0x82, "00 01 00 00 01 'a' 04 00 0A '$share/g/#' 05"), protocol_err},
      // [MQTT-3.8.3-1], [MQTT-3.10.3-1]: Topic Filters are UTF-8 Encoded Strings.
      {"subscribe_filter_overlong_v311", v311, pkt(0x82, "00 01 00 02 C0 AF 00"),
       malformed_packet},
      {"subscribe_filter_nul_v5", v5, pkt(0x82, "00 01 00 00 03 'a' 00 'b' 00"),
       malformed_packet},
      {"subscribe_second_filter_surrogate_v5", v5,
       pkt(0x82, "00 01 00 00 01 'a' 00 00 03 ED A0 80 00"), malformed_packet},
      {"subscribe_filter_above_10ffff_v311", v311, pkt(0x82, "00 01 00 04 F5 80 80 80 00"),
       malformed_packet},
      {"unsubscribe_filter_byte_ff_v311", v311, pkt(0xA2, "00 01 00 01 FF"), malformed_packet},
      {"unsubscribe_filter_overlong_v5", v5, pkt(0xA2, "00 01 00 00 03 E0 9F BF"),
       malformed_packet},
      {"unsubscribe_second_filter_truncated_sequence_v5", v5,
       pkt(0xA2, "00 01 00 00 01 'a' 00 02 'b' C3"), malformed_packet},
  };
}

// ---------------------------------------------------------------------------------------------
// Properties (MQTT 5.0 section 2.2.2): identifiers, placement, repetition, values.

std::vector<malformed_case> property_cases() {
  return {
      // Section 2.2.2.2: an identifier that is not defined is a Malformed Packet...
      {"publish_unknown_property_00", v5, pkt_with_props(0x30, "00 01 'a'", "00 00"),
       malformed_packet},
      {"publish_unknown_property_04", v5, pkt_with_props(0x30, "00 01 'a'", "04 00"),
       malformed_packet},
      {"puback_unknown_property_7f", v5, pkt_with_props(0x40, "00 01 00", "7F 00"),
       malformed_packet},
      {"connect_unknown_property_2b", v5, connect_v5(0x02, "2B 00", "00 01 'c'"),
       malformed_packet},
      {"disconnect_unknown_property_two_byte_id", v5, pkt_with_props(0xE0, "00", "80 02 00"),
       malformed_packet},
      {"subscribe_unknown_property_20", v5, pkt_with_props(0x82, "00 01", "20 00", "00 01 'a' 00"),
       malformed_packet},
      // ...and so is one that the packet may not carry.
      {"publish_session_expiry_interval", v5,
       pkt_with_props(0x30, "00 01 'a'", "11 00 00 00 01"), malformed_packet},
      {"publish_reason_string", v5, pkt_with_props(0x30, "00 01 'a'", "1F 00 01 'r'"),
       malformed_packet},
      {"publish_receive_maximum", v5, pkt_with_props(0x30, "00 01 'a'", "21 00 01"),
       malformed_packet},
      {"publish_will_delay_interval", v5, pkt_with_props(0x30, "00 01 'a'", "18 00 00 00 01"),
       malformed_packet},
      {"publish_maximum_qos", v5, pkt_with_props(0x30, "00 01 'a'", "24 01"), malformed_packet},
      {"publish_authentication_method", v5, pkt_with_props(0x30, "00 01 'a'", "15 00 01 'm'"),
       malformed_packet},
      {"connect_topic_alias", v5, connect_v5(0x02, "23 00 01", "00 01 'c'"), malformed_packet},
      {"connect_will_delay_interval_outside_will", v5,
       connect_v5(0x02, "18 00 00 00 0A", "00 01 'c'"), malformed_packet},
      {"connect_payload_format_indicator", v5, connect_v5(0x02, "01 01", "00 01 'c'"),
       malformed_packet},
      {"connect_server_keep_alive", v5, connect_v5(0x02, "13 00 0A", "00 01 'c'"),
       malformed_packet},
      {"will_topic_alias", v5, connect_v5_will("23 00 01"), malformed_packet},
      {"will_session_expiry_interval", v5, connect_v5_will("11 00 00 00 01"), malformed_packet},
      {"will_subscription_identifier", v5, connect_v5_will("0B 01"), malformed_packet},
      {"connack_will_delay_interval", v5, pkt_with_props(0x20, "00 00", "18 00 00 00 01"),
       malformed_packet},
      {"connack_request_problem_information", v5, pkt_with_props(0x20, "00 00", "17 01"),
       malformed_packet},
      {"connack_topic_alias", v5, pkt_with_props(0x20, "00 00", "23 00 01"), malformed_packet},
      {"puback_topic_alias", v5, pkt_with_props(0x40, "00 01 00", "23 00 01"), malformed_packet},
      {"pubrec_content_type", v5, pkt_with_props(0x50, "00 01 00", "03 00 01 't'"),
       malformed_packet},
      {"pubrel_session_expiry_interval", v5, pkt_with_props(0x62, "00 01 00", "11 00 00 00 01"),
       malformed_packet},
      {"pubcomp_server_reference", v5, pkt_with_props(0x70, "00 01 00", "1C 00 01 's'"),
       malformed_packet},
      {"subscribe_reason_string", v5, pkt_with_props(0x82, "00 01", "1F 00 01 'r'", "00 01 'a' 00"),
       malformed_packet},
      {"subscribe_topic_alias", v5, pkt_with_props(0x82, "00 01", "23 00 01", "00 01 'a' 00"),
       malformed_packet},
      {"suback_subscription_identifier", v5, pkt_with_props(0x90, "00 01", "0B 01", "00"),
       malformed_packet},
      {"unsubscribe_subscription_identifier", v5,
       pkt_with_props(0xA2, "00 01", "0B 01", "00 01 'a'"), malformed_packet},
      {"unsuback_session_expiry_interval", v5,
       pkt_with_props(0xB0, "00 01", "11 00 00 00 01", "00"), malformed_packet},
      {"disconnect_will_delay_interval", v5, pkt_with_props(0xE0, "00", "18 00 00 00 01"),
       malformed_packet},
      {"disconnect_authentication_method", v5, pkt_with_props(0xE0, "00", "15 00 01 'm'"),
       malformed_packet},
      {"auth_session_expiry_interval", v5, pkt_with_props(0xF0, "18", "11 00 00 00 01"),
       malformed_packet},
      {"auth_server_reference", v5, pkt_with_props(0xF0, "18", "1C 00 01 's'"), malformed_packet},
      // "It is a Protocol Error to include ... more than once" (every property but User
      // Property, and Subscription Identifier in PUBLISH).
      {"publish_payload_format_indicator_twice", v5,
       pkt_with_props(0x30, "00 01 'a'", "01 00 01 01"), protocol_err},
      {"publish_message_expiry_interval_twice", v5,
       pkt_with_props(0x30, "00 01 'a'", "02 00 00 00 01 02 00 00 00 02"), protocol_err},
      {"publish_content_type_twice", v5,
       pkt_with_props(0x30, "00 01 'a'", "03 00 01 'x' 03 00 01 'y'"), protocol_err},
      {"publish_response_topic_twice", v5,
       pkt_with_props(0x30, "00 01 'a'", "08 00 01 'r' 08 00 01 's'"), protocol_err},
      {"publish_correlation_data_twice", v5,
       pkt_with_props(0x30, "00 01 'a'", "09 00 01 01 09 00 00"), protocol_err},
      {"publish_topic_alias_twice", v5, pkt_with_props(0x30, "00 01 'a'", "23 00 01 23 00 02"),
       protocol_err},
      {"connect_session_expiry_interval_twice", v5,
       connect_v5(0x02, "11 00 00 00 01 11 00 00 00 02", "00 01 'c'"), protocol_err},
      {"connect_receive_maximum_twice", v5, connect_v5(0x02, "21 00 01 21 00 02", "00 01 'c'"),
       protocol_err},
      {"connect_authentication_method_twice", v5,
       connect_v5(0x02, "15 00 01 'a' 15 00 01 'b'", "00 01 'c'"), protocol_err},
      {"connect_request_problem_information_twice", v5,
       connect_v5(0x02, "17 01 17 01", "00 01 'c'"), protocol_err},
      {"will_delay_interval_twice", v5, connect_v5_will("18 00 00 00 01 18 00 00 00 01"),
       protocol_err},
      {"connack_reason_string_twice", v5,
       pkt_with_props(0x20, "00 00", "1F 00 01 'a' 1F 00 01 'b'"), protocol_err},
      {"connack_maximum_qos_twice", v5, pkt_with_props(0x20, "00 00", "24 00 24 01"),
       protocol_err},
      {"puback_reason_string_twice", v5,
       pkt_with_props(0x40, "00 01 00", "1F 00 01 'a' 1F 00 01 'b'"), protocol_err},
      {"disconnect_session_expiry_interval_twice", v5,
       pkt_with_props(0xE0, "00", "11 00 00 00 00 11 00 00 00 00"), protocol_err},
      {"auth_authentication_method_twice", v5,
       pkt_with_props(0xF0, "18", "15 00 01 'a' 15 00 01 'a'"), protocol_err},
      {"subscribe_subscription_identifier_twice", v5,
       pkt_with_props(0x82, "00 01", "0B 01 0B 02", "00 01 'a' 00"), protocol_err},
      // Values out of range.
      {"publish_payload_format_indicator_2", v5, pkt_with_props(0x30, "00 01 'a'", "01 02"),
       protocol_err},
      {"will_payload_format_indicator_ff", v5, connect_v5_will("01 FF"), protocol_err},
      {"connect_request_problem_information_2", v5, connect_v5(0x02, "17 02", "00 01 'c'"),
       protocol_err},
      {"connect_request_response_information_2", v5, connect_v5(0x02, "19 02", "00 01 'c'"),
       protocol_err},
      {"connect_receive_maximum_0", v5, connect_v5(0x02, "21 00 00", "00 01 'c'"), protocol_err},
      {"connect_maximum_packet_size_0", v5, connect_v5(0x02, "27 00 00 00 00", "00 01 'c'"),
       protocol_err},
      {"connack_maximum_qos_2", v5, pkt_with_props(0x20, "00 00", "24 02"), protocol_err},
      {"connack_retain_available_2", v5, pkt_with_props(0x20, "00 00", "25 02"), protocol_err},
      {"connack_wildcard_subscription_available_5", v5, pkt_with_props(0x20, "00 00", "28 05"),
       protocol_err},
      {"connack_subscription_identifier_available_ff", v5,
       pkt_with_props(0x20, "00 00", "29 FF"), protocol_err},
      {"connack_shared_subscription_available_2", v5, pkt_with_props(0x20, "00 00", "2A 02"),
       protocol_err},
      {"connack_receive_maximum_0", v5, pkt_with_props(0x20, "00 00", "21 00 00"), protocol_err},
      {"connack_maximum_packet_size_0", v5, pkt_with_props(0x20, "00 00", "27 00 00 00 00"),
       protocol_err},
      {"publish_subscription_identifier_0", v5, pkt_with_props(0x30, "00 01 'a'", "0B 00"),
       protocol_err},
      {"subscribe_subscription_identifier_0", v5,
       pkt_with_props(0x82, "00 01", "0B 00", "00 01 'a' 00"), protocol_err},
      {"publish_subscription_identifier_five_bytes", v5,
       pkt_with_props(0x30, "00 01 'a'", "0B FF FF FF FF 7F"), malformed_packet},
      {"subscribe_subscription_identifier_five_bytes", v5,
       pkt_with_props(0x82, "00 01", "0B 80 80 80 80 01", "00 01 'a' 00"), malformed_packet},
      // [MQTT-3.3.2-14]
      {"publish_response_topic_plus", v5, pkt_with_props(0x30, "00 01 'a'", "08 00 03 'r/+'"),
       topic_name_invalid},
      {"publish_response_topic_hash", v5, pkt_with_props(0x30, "00 01 'a'", "08 00 01 '#'"),
       topic_name_invalid},
      {"will_response_topic_hash", v5, connect_v5_will("08 00 03 'r/#'"), topic_name_invalid},
      // Property Length and property values that do not fit.
      {"publish_property_length_beyond_packet", v5, pkt(0x30, "00 01 'a' 05 01 00"),
       malformed_packet},
      {"publish_property_length_five_bytes", v5, pkt(0x30, "00 01 'a' 80 80 80 80 00"),
       malformed_packet},
      {"connect_property_length_beyond_packet", v5,
       pkt(0x10, "00 04 'MQTT' 05 02 00 3C 10 00 01 'c'"), malformed_packet},
      {"puback_property_length_beyond_packet", v5, pkt(0x40, "00 01 00 05 1F 00"),
       malformed_packet},
      {"disconnect_property_length_beyond_packet", v5, pkt(0xE0, "00 7F"), malformed_packet},
      {"subscribe_property_length_beyond_packet", v5, pkt(0x82, "00 01 7F 00 01 'a' 00"),
       malformed_packet},
      {"publish_message_expiry_interval_truncated", v5,
       pkt_with_props(0x30, "00 01 'a'", "02 00 00"), malformed_packet},
      {"publish_topic_alias_truncated", v5, pkt_with_props(0x30, "00 01 'a'", "23 00"),
       malformed_packet},
      {"publish_correlation_data_truncated", v5, pkt_with_props(0x30, "00 01 'a'", "09 00 04 01"),
       malformed_packet},
      {"publish_payload_format_indicator_missing_value", v5,
       pkt_with_props(0x30, "00 01 'a'", "01"),
       malformed_packet},
      {"publish_subscription_identifier_unfinished", v5,
       pkt_with_props(0x30, "00 01 'a'", "0B 80"), malformed_packet},
      {"connect_topic_alias_maximum_truncated", v5, connect_v5(0x02, "22 00", "00 01 'c'"),
       malformed_packet},
      {"connack_response_information_truncated", v5,
       pkt_with_props(0x20, "00 00", "1A 00 05 'a'"), malformed_packet},
      {"pubrec_user_property_value_missing", v5,
       pkt_with_props(0x50, "00 01 00", "26 00 01 'a' 00"),
       malformed_packet},
      {"auth_authentication_data_truncated", v5, pkt_with_props(0xF0, "18", "16 00 05"),
       malformed_packet},
      // [MQTT-1.5.4-1], [MQTT-1.5.4-2], [MQTT-1.5.7-1] in string properties.
      {"publish_content_type_overlong", v5, pkt_with_props(0x30, "00 01 'a'", "03 00 02 C0 AF"),
       malformed_packet},
      {"publish_content_type_nul", v5, pkt_with_props(0x30, "00 01 'a'", "03 00 03 'a' 00 'b'"),
       malformed_packet},
      {"will_content_type_lone_continuation", v5, connect_v5_will("03 00 01 80"),
       malformed_packet},
      {"publish_response_topic_surrogate", v5,
       pkt_with_props(0x30, "00 01 'a'", "08 00 03 ED A0 80"), malformed_packet},
      {"publish_response_topic_above_10ffff", v5,
       pkt_with_props(0x30, "00 01 'a'", "08 00 04 F4 90 80 80"), malformed_packet},
      {"puback_reason_string_truncated_sequence", v5,
       pkt_with_props(0x40, "00 01 80", "1F 00 02 'a' C2"), malformed_packet},
      {"pubcomp_reason_string_lone_continuation", v5,
       pkt_with_props(0x70, "00 01 00", "1F 00 01 BF"), malformed_packet},
      {"disconnect_reason_string_surrogate", v5,
       pkt_with_props(0xE0, "80", "1F 00 03 ED B2 80"), malformed_packet},
      {"connect_user_property_name_overlong_nul", v5,
       connect_v5(0x02, "26 00 02 C0 80 00 00", "00 01 'c'"), malformed_packet},
      {"connect_user_property_value_surrogate", v5,
       connect_v5(0x02, "26 00 00 00 03 ED BF BF", "00 01 'c'"), malformed_packet},
      {"publish_user_property_name_byte_fe", v5,
       pkt_with_props(0x30, "00 01 'a'", "26 00 01 FE 00 01 'v'"), malformed_packet},
      {"subscribe_user_property_value_truncated_sequence", v5,
       pkt_with_props(0x82, "00 01", "26 00 01 'k' 00 02 'v' E0", "00 01 'a' 00"),
       malformed_packet},
      {"connack_assigned_client_identifier_overlong", v5,
       pkt_with_props(0x20, "00 00", "12 00 02 C1 BF"), malformed_packet},
      {"connack_server_reference_lone_continuation", v5,
       pkt_with_props(0x20, "00 00", "1C 00 01 80"), malformed_packet},
      {"auth_authentication_method_nul", v5, pkt_with_props(0xF0, "18", "15 00 01 00"),
       malformed_packet},
  };
}

std::vector<malformed_case> all_cases() {
  std::vector<malformed_case> all;
  for (auto part : {fixed_header_cases(), body_length_cases(), publish_cases(), connect_cases(),
                    connack_cases(), acknowledgement_cases(), property_cases()}) {
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

class MalformedPacket : public ::testing::TestWithParam<malformed_case> {};

TEST_P(MalformedPacket, DecodePacketRefusesWithTheExactCode) {
  const auto& c = GetParam();
  auto decoded = decode_packet(c.bytes, c.version);
  ASSERT_FALSE(decoded) << "decoded a " << to_string(type_of(*decoded)) << " packet";
  EXPECT_EQ(hex_code(decoded.error().code), hex_code(c.expected)) << decoded.error().detail;
}

TEST_P(MalformedPacket, StreamDecoderFedWhole) {
  const auto& c = GetParam();
  stream_decoder decoder;
  decoder.set_version(c.version);
  decoder.feed(c.bytes);
  auto next = decoder.next();
  switch (c.frame) {
    case framing::exact:
      ASSERT_FALSE(next) << "decoded without error";
      EXPECT_EQ(hex_code(next.error().code), hex_code(c.expected)) << next.error().detail;
      break;
    case framing::truncated:
      // Not an error on a stream: the rest of the packet may still arrive.
      ASSERT_TRUE(next) << next.error().detail;
      EXPECT_FALSE(next->has_value());
      EXPECT_EQ(decoder.buffered(), c.bytes.size());
      break;
    case framing::trailing:
      // On a stream the bytes after the frame belong to the next packet.
      ASSERT_TRUE(next) << next.error().detail;
      EXPECT_TRUE(next->has_value());
      EXPECT_GT(decoder.buffered(), 0u);
      break;
  }
}

TEST_P(MalformedPacket, StreamDecoderFedByteByByte) {
  const auto& c = GetParam();
  stream_decoder decoder;
  decoder.set_version(c.version);
  std::optional<codec_error> error;
  std::size_t packets = 0;
  for (std::size_t i = 0; i < c.bytes.size(); ++i) {
    decoder.feed(std::string_view(c.bytes).substr(i, 1));
    auto next = decoder.next();
    if (!next) {
      if (!error) error = next.error();
      // A failed decoder stays failed, with the same code, whatever arrives next.
      EXPECT_EQ(hex_code(next.error().code), hex_code(error->code)) << "at byte " << i;
      continue;
    }
    if (next->has_value()) ++packets;
  }
  switch (c.frame) {
    case framing::exact:
      EXPECT_EQ(packets, 0u);
      ASSERT_TRUE(error) << "no error after all " << c.bytes.size() << " bytes";
      EXPECT_EQ(hex_code(error->code), hex_code(c.expected)) << error->detail;
      break;
    case framing::truncated:
      EXPECT_FALSE(error) << error->detail;
      EXPECT_EQ(packets, 0u);
      break;
    case framing::trailing:
      EXPECT_FALSE(error) << error->detail;
      EXPECT_EQ(packets, 1u);
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(Malformed, MalformedPacket, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) { return info.param.name; });

// The table must keep covering what docs/conformance.md promises.
TEST(MalformedTable, HasAtLeast170HandWrittenCases) { EXPECT_GE(all_cases().size(), 170u); }

// ---------------------------------------------------------------------------------------------
// Counterparts: inputs next to the malformed ones above that must decode, so the table's
// refusals are known to come from the rule they test and not from a neighbouring mistake.

struct accepted_case {
  std::string name;
  protocol_version version;
  std::string bytes;
};

void PrintTo(const accepted_case& c, std::ostream* os) { *os << c.name; }

std::vector<accepted_case> accepted_cases() {
  return {
      // 5.0 dropped the rule that a password needs a user name (section 3.1.2.9).
      {"connect_v5_password_without_user_name", v5, connect_v5(0x42, "", "00 01 'c' 00 02 'pw'")},
      {"connect_v311_minimal", v311, connect_v311(0x02, "00 01 'c'")},
      {"connect_v31_minimal", v31, pkt(0x10, "00 06 'MQIsdp' 03 02 00 3C 00 01 'c'")},
      {"connect_v5_auth_method_and_data", v5,
       connect_v5(0x02, "15 00 01 'm' 16 00 01 'd'", "00 01 'c'")},
      {"connect_v5_will_with_properties", v5,
       connect_v5_will("01 01 02 00 00 00 0A 03 00 01 't' 08 00 03 'r/x' 09 00 01 01 "
                       "18 00 00 00 05")},
      // User Property may repeat, even with the same name (section 3.3.2.3.7).
      {"publish_user_property_repeated", v5,
       pkt_with_props(0x30, "00 01 'a'", "26 00 01 'k' 00 01 'v' 26 00 01 'k' 00 01 'v'")},
      // A server-sent PUBLISH carries one Subscription Identifier per matching subscription.
      {"publish_subscription_identifier_repeated", v5,
       pkt_with_props(0x30, "00 01 'a'", "0B 01 0B FF FF FF 7F")},
      {"publish_empty_topic_with_alias", v5, pkt_with_props(0x30, "00 00", "23 00 01")},
      {"publish_payload_format_indicator_1", v5, pkt_with_props(0x30, "00 01 'a'", "01 01")},
      {"publish_topic_multibyte_and_dollar", v311, pkt(0x30, "00 09 '$SYS/' C3 A9 2F 'x'")},
      {"publish_qos2_dup_retain", v311, pkt(0x3D, "00 01 'a' 00 01")},
      {"puback_v5_short_form", v5, pkt(0x40, "00 01")},
      {"puback_v5_code_without_properties", v5, pkt(0x40, "00 01 10")},
      {"pubrel_v5_code_92", v5, pkt(0x62, "00 01 92 00")},
      {"subscribe_v5_all_options", v5, pkt(0x82, "00 01 00 00 0A '$share/g/a' 2A")},
      {"subscribe_v5_no_local_not_shared", v5, pkt(0x82, "00 01 00 00 01 'a' 06")},
      {"subscribe_v311_qos_2", v311, pkt(0x82, "00 01 00 03 'a/#' 02")},
      // Filters are checked by the broker (SUBACK 0x8F per filter), not by the codec.
      {"subscribe_filter_with_misplaced_wildcard", v311, pkt(0x82, "00 01 00 02 'a#' 00")},
      {"suback_v311_failure_80", v311, pkt(0x90, "00 01 00 01 02 80")},
      {"suback_v5_all_codes", v5, pkt(0x90, "00 01 00 00 01 02 80 83 87 8F 91 97 9E A1 A2")},
      {"unsuback_v5_all_codes", v5, pkt(0xB0, "00 01 00 00 11 80 83 87 8F 91")},
      {"connack_v5_code_9f", v5, pkt(0x20, "00 9F 00")},
      {"connack_v311_session_present", v311, pkt(0x20, "01 00")},
      {"disconnect_v5_with_will", v5, pkt(0xE0, "04")},
      {"disconnect_v5_session_taken_over", v5, pkt(0xE0, "8E 00")},
      {"auth_v5_empty", v5, b("F0 00")},
      {"auth_v5_reauthenticate", v5, pkt_with_props(0xF0, "19", "15 00 01 'm'")},
      // [MQTT-1.5.5-1] binds the sender; a longer Variable Byte Integer still parses.
      {"connack_v5_remaining_length_not_minimal", v5, b("20 83 00 00 00 00")},
      {"publish_v5_property_identifier_not_minimal", v5,
       pkt_with_props(0x30, "00 01 'a'", "81 00 01")},
      // A Reason Code without Property Length, as DISCONNECT allows (section 3.14.2.2.1).
      {"auth_v5_code_without_properties", v5, pkt(0xF0, "18")},
  };
}

class MalformedCounterpart : public ::testing::TestWithParam<accepted_case> {};

TEST_P(MalformedCounterpart, DecodesEverywhere) {
  const auto& c = GetParam();
  auto decoded = decode_packet(c.bytes, c.version);
  ASSERT_TRUE(decoded) << hex_code(decoded.error().code) << ": " << decoded.error().detail;

  stream_decoder decoder;
  decoder.set_version(c.version);
  for (char byte : c.bytes) {
    auto next = decoder.next();
    ASSERT_TRUE(next) << next.error().detail;
    ASSERT_FALSE(next->has_value()) << "a packet before its last byte";
    decoder.feed(std::string_view(&byte, 1));
  }
  auto next = decoder.next();
  ASSERT_TRUE(next) << hex_code(next.error().code) << ": " << next.error().detail;
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ(**next, *decoded);
}

INSTANTIATE_TEST_SUITE_P(Malformed, MalformedCounterpart, ::testing::ValuesIn(accepted_cases()),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// Maximum Packet Size: the stream decoder refuses an oversized packet as soon as its fixed
// header is known, before buffering its body.

TEST(MalformedStream, PacketLargerThanMaximumIsPacketTooLarge) {
  stream_decoder decoder(16);
  decoder.feed(b("30 0F 00 01 'a'"));  // 17 bytes announced, 5 arrived
  auto next = decoder.next();
  ASSERT_FALSE(next);
  EXPECT_EQ(hex_code(next.error().code), hex_code(reason_code::packet_too_large));
}

TEST(MalformedStream, PacketOfExactlyTheMaximumDecodes) {
  stream_decoder decoder(16);
  const auto bytes = pkt(0x30, "00 01 'a' 'payload-abc'");
  ASSERT_EQ(bytes.size(), 16u);
  decoder.feed(bytes);
  auto next = decoder.next();
  ASSERT_TRUE(next) << next.error().detail;
  ASSERT_TRUE(next->has_value());
}

TEST(MalformedStream, PacketTooLargeIsReportedWhenTheHeaderCompletes) {
  stream_decoder decoder(200);
  const auto bytes = b("30 80 02 00 01 'a'");  // Remaining Length 256 in two bytes
  decoder.feed(bytes.substr(0, 2));
  auto first = decoder.next();
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->has_value());
  decoder.feed(bytes.substr(2, 1));
  auto second = decoder.next();
  ASSERT_FALSE(second);
  EXPECT_EQ(hex_code(second.error().code), hex_code(reason_code::packet_too_large));
  // Failed for good: a decoder cannot resynchronise inside a byte stream.
  decoder.feed(b("C0 00"));
  auto third = decoder.next();
  ASSERT_FALSE(third);
  EXPECT_EQ(hex_code(third.error().code), hex_code(reason_code::packet_too_large));
}

TEST(MalformedStream, MaximumCountsTheFixedHeader) {
  // Remaining Length 14 plus a 2-byte fixed header is 16: one byte over a maximum of 15.
  stream_decoder decoder;
  decoder.set_max_packet_size(15);
  decoder.feed(b("30 0E"));
  auto next = decoder.next();
  ASSERT_FALSE(next);
  EXPECT_EQ(hex_code(next.error().code), hex_code(reason_code::packet_too_large));
}

TEST(MalformedStream, ConnectTooLargeBeforeTheVersionIsKnown) {
  stream_decoder decoder(64);
  decoder.feed(b("10 FF 7F"));
  auto next = decoder.next();
  ASSERT_FALSE(next);
  EXPECT_EQ(hex_code(next.error().code), hex_code(reason_code::packet_too_large));
  EXPECT_FALSE(decoder.version_known());
}

TEST(MalformedStream, ErrorAfterAGoodPacketKeepsTheGoodOne) {
  stream_decoder decoder;
  decoder.feed(b("C0 00 C1 00"));
  auto first = decoder.next();
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ(type_of(**first), packet_type::pingreq);
  auto second = decoder.next();
  ASSERT_FALSE(second);
  EXPECT_EQ(hex_code(second.error().code), hex_code(reason_code::malformed_packet));
}

TEST(MalformedStream, BrokenConnectAnswersInItsOwnVersion) {
  // The broker replies to a refused CONNECT in the client's version, so the decoder learns
  // the level even when the rest of the CONNECT is refused.
  stream_decoder decoder;
  decoder.feed(connect_v5(0x01, "", "00 01 'c'"));
  auto next = decoder.next();
  ASSERT_FALSE(next);
  EXPECT_EQ(hex_code(next.error().code), hex_code(reason_code::malformed_packet));
  EXPECT_TRUE(decoder.version_known());
  EXPECT_EQ(decoder.version(), protocol_version::v5);
}

}  // namespace
}  // namespace ringmq::codec
