#pragma once
// Byte-exact MQTT packets shared by the vector tests and the stream decoder tests.
//
// Every vector's bytes are written by hand from the field layouts of the MQTT 3.1.1
// and MQTT 5.0 OASIS standards (chapter 3 of each), never produced by our encoder:
// encoder and decoder are both checked against the standard, not against each other.
// The lists live next to their tests (vectors_v311_test.cpp, vectors_v5_test.cpp);
// this header only declares them and holds the helpers both kinds of tests use.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "broker/codec/decoder.hpp"
#include "broker/codec/encoder.hpp"
#include "broker/codec/packets.hpp"

namespace ringmq::codec::vectors {

struct wire_vector {
  std::string name;          // a test name: letters, digits and underscores only
  protocol_version version;  // the protocol version of the connection it travels on
  std::string bytes;         // the whole packet, fixed header included
  packet expected;
  // Set when `bytes` is a longer form the specification also allows (a Success reason
  // code spelled out, an empty property block, ...): the encoder must write this one.
  std::optional<std::string> shortest = std::nullopt;

  const std::string& encoded() const { return shortest ? *shortest : bytes; }
};

// MQTT 3.1 and 3.1.1 vectors, defined in vectors_v311_test.cpp.
const std::vector<wire_vector>& v311_vectors();
// MQTT 5.0 vectors, defined in vectors_v5_test.cpp.
const std::vector<wire_vector>& v5_vectors();

// Bytes as the specification's figures list them; chars are allowed for readability.
inline std::string b(std::initializer_list<std::uint8_t> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// A payload of `size` bytes that is not all one value, so an offset error shows.
inline std::string pattern(std::size_t size) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>(i % 251);
  return out;
}

inline std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i != 0) out += ' ';
    const auto c = static_cast<std::uint8_t>(bytes[i]);
    out += digits[c >> 4];
    out += digits[c & 0x0F];
  }
  return out;
}

// Where two byte strings part, with a little context: a 20 kB payload is not worth printing.
inline std::string byte_diff(std::string_view expected, std::string_view actual) {
  std::size_t at = 0;
  while (at < expected.size() && at < actual.size() && expected[at] == actual[at]) ++at;
  const std::size_t from = at > 16 ? at - 16 : 0;
  std::ostringstream out;
  out << "sizes " << expected.size() << " (expected) vs " << actual.size()
      << " (actual), first difference at byte " << at << "\n  expected[" << from
      << "..]: " << hex(expected.substr(std::min(from, expected.size()), 48))
      << "\n  actual  [" << from
      << "..]: " << hex(actual.substr(std::min(from, actual.size()), 48));
  return out.str();
}

// A readable dump of a packet for failure messages (gtest would print raw struct bytes).
inline std::string describe(const properties& p) {
  std::ostringstream out;
  auto num = [&](const char* name, const auto& v) {
    if (v) out << ' ' << name << '=' << static_cast<std::uint64_t>(*v);
  };
  auto str = [&](const char* name, const std::optional<std::string>& v) {
    if (v) out << ' ' << name << "=[" << hex(*v) << ']';
  };
  num("payload_format", p.payload_format_indicator);
  num("message_expiry", p.message_expiry_interval);
  str("content_type", p.content_type);
  str("response_topic", p.response_topic);
  str("correlation_data", p.correlation_data);
  for (auto id : p.subscription_identifiers) out << " subscription_id=" << id;
  num("session_expiry", p.session_expiry_interval);
  str("assigned_client_id", p.assigned_client_identifier);
  num("server_keep_alive", p.server_keep_alive);
  str("auth_method", p.authentication_method);
  str("auth_data", p.authentication_data);
  num("request_problem_info", p.request_problem_information);
  num("will_delay", p.will_delay_interval);
  num("request_response_info", p.request_response_information);
  str("response_info", p.response_information);
  str("server_reference", p.server_reference);
  str("reason_string", p.reason_string);
  num("receive_maximum", p.receive_maximum);
  num("topic_alias_maximum", p.topic_alias_maximum);
  num("topic_alias", p.topic_alias);
  num("maximum_qos", p.maximum_qos);
  num("retain_available", p.retain_available);
  for (const auto& up : p.user_properties) out << " user[" << up.name << '=' << up.value << ']';
  num("maximum_packet_size", p.maximum_packet_size);
  num("wildcard_available", p.wildcard_subscription_available);
  num("subscription_ids_available", p.subscription_identifier_available);
  num("shared_available", p.shared_subscription_available);
  return "{" + out.str() + " }";
}

inline std::string describe(const packet& p) {
  std::ostringstream out;
  auto rc = [](reason_code c) {
    return "0x" + hex(std::string(1, static_cast<char>(c)));
  };
  out << to_string(type_of(p));
  std::visit(
      [&]<class P>(const P& x) {
        if constexpr (std::is_same_v<P, connect_packet>) {
          out << " version=" << to_string(x.version) << " clean=" << x.clean_start
              << " keep_alive=" << x.keep_alive << " client_id=[" << hex(x.client_id) << ']';
          if (x.will) {
            out << " will{topic=[" << hex(x.will->topic) << "] payload=[" << hex(x.will->payload)
                << "] qos=" << static_cast<unsigned>(x.will->qos) << " retain=" << x.will->retain
                << " props=" << describe(x.will->props) << '}';
          }
          if (x.username) out << " username=[" << hex(*x.username) << ']';
          if (x.password) out << " password=[" << hex(*x.password) << ']';
        } else if constexpr (std::is_same_v<P, connack_packet>) {
          out << " session_present=" << x.session_present << " code=" << rc(x.code);
        } else if constexpr (std::is_same_v<P, publish_packet>) {
          out << " topic=[" << hex(x.topic) << "] qos=" << static_cast<unsigned>(x.qos)
              << " retain=" << x.retain << " dup=" << x.dup << " id=" << x.packet_id
              << " payload_size=" << x.payload.size();
          if (x.payload.size() <= 64) out << " payload=[" << hex(x.payload) << ']';
        } else if constexpr (std::is_same_v<P, subscribe_packet>) {
          out << " id=" << x.packet_id;
          for (const auto& s : x.subscriptions) {
            out << " [" << s.filter << " qos=" << static_cast<unsigned>(s.options.max_qos)
                << " nl=" << s.options.no_local << " rap=" << s.options.retain_as_published
                << " rh=" << static_cast<unsigned>(s.options.retain_handling) << ']';
          }
        } else if constexpr (std::is_same_v<P, suback_packet> ||
                             std::is_same_v<P, unsuback_packet>) {
          out << " id=" << x.packet_id << " codes=";
          for (auto c : x.codes) out << rc(c) << ',';
        } else if constexpr (std::is_same_v<P, unsubscribe_packet>) {
          out << " id=" << x.packet_id;
          for (const auto& f : x.filters) out << " [" << f << ']';
        } else if constexpr (std::is_same_v<P, disconnect_packet> ||
                             std::is_same_v<P, auth_packet>) {
          out << " code=" << rc(x.code);
        } else if constexpr (requires { x.packet_id; x.code; }) {  // PUBACK .. PUBCOMP
          out << " id=" << x.packet_id << " code=" << rc(x.code);
        }
        if constexpr (requires { x.props; }) out << " props=" << describe(x.props);
      },
      p);
  return out.str();
}

inline void PrintTo(const wire_vector& v, std::ostream* os) { *os << v.name; }

// The three assertions every vector must pass: the decoder reads the bytes into the
// expected struct, and the encoder writes that struct back as the shortest allowed
// form, with encoded_size() agreeing.
inline void check_vector(const wire_vector& v) {
  SCOPED_TRACE(v.name);
  const auto decoded = decode_packet(v.bytes, v.version);
  ASSERT_TRUE(decoded) << "decode failed with reason code 0x" << std::hex
                       << static_cast<unsigned>(decoded.error().code) << ": "
                       << decoded.error().detail;
  EXPECT_TRUE(*decoded == v.expected) << "decoded:  " << describe(*decoded)
                                      << "\nexpected: " << describe(v.expected);
  const auto encoded = encode(v.expected, v.version);
  EXPECT_TRUE(encoded == v.encoded()) << byte_diff(v.encoded(), encoded);
  EXPECT_EQ(encoded_size(v.expected, v.version), v.encoded().size());
  if (v.shortest) {
    // The shorter form means the same packet.
    const auto short_decoded = decode_packet(*v.shortest, v.version);
    ASSERT_TRUE(short_decoded) << "the shortest form does not decode";
    EXPECT_TRUE(*short_decoded == v.expected) << "shortest form: " << describe(*short_decoded);
  }
}

// Encodes, checks the size prediction and decodes back: the struct must survive intact.
inline void check_round_trip(const packet& p, protocol_version version) {
  SCOPED_TRACE(describe(p));
  const auto bytes = encode(p, version);
  EXPECT_EQ(encoded_size(p, version), bytes.size());
  const auto decoded = decode_packet(bytes, version);
  ASSERT_TRUE(decoded) << "decode failed with reason code 0x" << std::hex
                       << static_cast<unsigned>(decoded.error().code) << ": "
                       << decoded.error().detail << "\nbytes: " << hex(bytes.substr(0, 96));
  EXPECT_TRUE(*decoded == p) << "decoded: " << describe(*decoded);
}

}  // namespace ringmq::codec::vectors
