// MQTT 3.1 and 3.1.1 packets, byte for byte as the MQTT 3.1.1 OASIS standard
// (chapter 3) and, for "MQIsdp", the MQTT 3.1 specification lay them out.
// Each field carries its own comment; lengths were counted by hand.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "broker/codec/decoder.hpp"
#include "broker/codec/encoder.hpp"
#include "tests/unit/codec/vectors.hpp"

namespace ringmq::codec::vectors {

const std::vector<wire_vector>& v311_vectors() {
  static const std::vector<wire_vector> all = [] {
    constexpr auto v31 = protocol_version::v3_1;
    constexpr auto v311 = protocol_version::v3_1_1;
    std::vector<wire_vector> v;

    // ---- CONNECT (3.1.1 section 3.1) ----
    v.push_back({"connect_minimal", v311,
                 b({0x10, 0x0E}) +            // CONNECT, Remaining Length 14
                     b({0x00, 0x04}) + "MQTT" +  // Protocol Name
                     b({0x04}) +               // Protocol Level 4
                     b({0x02}) +               // Connect Flags: Clean Session
                     b({0x00, 0x3C}) +         // Keep Alive 60
                     b({0x00, 0x02}) + "c1",   // Client Identifier
                 connect_packet{.version = v311, .clean_start = true, .keep_alive = 60,
                                .client_id = "c1"}});
    v.push_back({"connect_clean_session_off", v311,
                 b({0x10, 0x13}) +               // CONNECT, Remaining Length 19
                     b({0x00, 0x04}) + "MQTT" +  // Protocol Name
                     b({0x04}) +                 // Protocol Level 4
                     b({0x00}) +                 // Connect Flags: none
                     b({0x00, 0x00}) +           // Keep Alive 0 (off)
                     b({0x00, 0x07}) + "persist",  // Client Identifier
                 connect_packet{.version = v311, .clean_start = false, .keep_alive = 0,
                                .client_id = "persist"}});
    v.push_back({"connect_empty_client_id", v311,
                 b({0x10, 0x0C}) +               // CONNECT, Remaining Length 12
                     b({0x00, 0x04}) + "MQTT" +  // Protocol Name
                     b({0x04}) +                 // Protocol Level 4
                     b({0x02}) +                 // Connect Flags: Clean Session
                     b({0x00, 0x3C}) +           // Keep Alive 60
                     b({0x00, 0x00}),            // Client Identifier: empty (3.1.3.1)
                 connect_packet{.version = v311, .clean_start = true, .keep_alive = 60,
                                .client_id = ""}});
    v.push_back({"connect_will_username_password", v311,
                 b({0x10, 0x36}) +               // CONNECT, Remaining Length 54
                     b({0x00, 0x04}) + "MQTT" +  // Protocol Name
                     b({0x04}) +                 // Protocol Level 4
                     // Connect Flags: User Name, Password, Will Retain, Will QoS 1, Will,
                     // Clean Session
                     b({0xEE}) +
                     b({0x00, 0x1E}) +                      // Keep Alive 30
                     b({0x00, 0x05}) + "dev-7" +            // Client Identifier
                     b({0x00, 0x0C}) + "status/dev-7" +     // Will Topic
                     b({0x00, 0x07}) + "offline" +          // Will Message
                     b({0x00, 0x05}) + "alice" +            // User Name
                     b({0x00, 0x05, 0x00, 0x01, 0xFE}) + "pw",  // Password: binary
                 connect_packet{.version = v311,
                                .clean_start = true,
                                .keep_alive = 30,
                                .client_id = "dev-7",
                                .will = will_message{.topic = "status/dev-7",
                                                     .payload = "offline",
                                                     .qos = qos::at_least_once,
                                                     .retain = true},
                                .username = "alice",
                                .password = b({0x00, 0x01, 0xFE}) + "pw"}});
    v.push_back({"connect_will_qos2_username_only", v311,
                 b({0x10, 0x16}) +               // CONNECT, Remaining Length 22
                     b({0x00, 0x04}) + "MQTT" +  // Protocol Name
                     b({0x04}) +                 // Protocol Level 4
                     b({0x96}) +        // Connect Flags: User Name, Will QoS 2, Will, Clean
                     b({0xFF, 0xFF}) +  // Keep Alive 65535
                     b({0x00, 0x02}) + "w2" +  // Client Identifier
                     b({0x00, 0x01}) + "t" +   // Will Topic
                     b({0x00, 0x00}) +         // Will Message: empty
                     b({0x00, 0x01}) + "u",    // User Name
                 connect_packet{.version = v311,
                                .clean_start = true,
                                .keep_alive = 65535,
                                .client_id = "w2",
                                .will = will_message{.topic = "t", .payload = "",
                                                     .qos = qos::exactly_once},
                                .username = "u"}});

    // ---- CONNECT, MQTT 3.1: Protocol Name "MQIsdp", Protocol Version 3 ----
    v.push_back({"connect_v31_minimal", v31,
                 b({0x10, 0x14}) +                 // CONNECT, Remaining Length 20
                     b({0x00, 0x06}) + "MQIsdp" +  // Protocol Name
                     b({0x03}) +                   // Protocol Version 3
                     b({0x02}) +                   // Connect Flags: Clean Session
                     b({0x00, 0x0A}) +             // Keep Alive 10
                     b({0x00, 0x06}) + "legacy",   // Client Identifier
                 connect_packet{.version = v31, .clean_start = true, .keep_alive = 10,
                                .client_id = "legacy"}});
    v.push_back({"connect_v31_will_username_password", v31,
                 b({0x10, 0x1D}) +                 // CONNECT, Remaining Length 29
                     b({0x00, 0x06}) + "MQIsdp" +  // Protocol Name
                     b({0x03}) +                   // Protocol Version 3
                     b({0xCE}) +  // Connect Flags: User Name, Password, Will QoS 1, Will, Clean
                     b({0x00, 0x3C}) +          // Keep Alive 60
                     b({0x00, 0x01}) + "c" +    // Client Identifier
                     b({0x00, 0x01}) + "w" +    // Will Topic
                     b({0x00, 0x03}) + "bye" +  // Will Message
                     b({0x00, 0x01}) + "u" +    // User Name
                     b({0x00, 0x01}) + "p",     // Password
                 connect_packet{.version = v31,
                                .clean_start = true,
                                .keep_alive = 60,
                                .client_id = "c",
                                .will = will_message{.topic = "w", .payload = "bye",
                                                     .qos = qos::at_least_once},
                                .username = "u",
                                .password = "p"}});

    // ---- CONNACK (3.2): flags byte, then the return code 0..5 ----
    v.push_back({"connack_accepted", v311,
                 b({0x20, 0x02,    // CONNACK, Remaining Length 2
                    0x00,          // Connect Acknowledge Flags
                    0x00}),        // Return Code 0: accepted
                 connack_packet{.session_present = false, .code = reason_code::success}});
    v.push_back({"connack_session_present", v311,
                 b({0x20, 0x02,    // CONNACK, Remaining Length 2
                    0x01,          // Session Present
                    0x00}),        // Return Code 0: accepted
                 connack_packet{.session_present = true, .code = reason_code::success}});
    v.push_back({"connack_unacceptable_protocol_version", v311,
                 b({0x20, 0x02, 0x00,
                    0x01}),  // Return Code 1: unacceptable protocol version
                 connack_packet{.code = reason_code::unsupported_protocol_version}});
    v.push_back({"connack_identifier_rejected", v311,
                 b({0x20, 0x02, 0x00,
                    0x02}),  // Return Code 2: identifier rejected
                 connack_packet{.code = reason_code::client_identifier_not_valid}});
    v.push_back({"connack_server_unavailable", v311,
                 b({0x20, 0x02, 0x00,
                    0x03}),  // Return Code 3: server unavailable
                 connack_packet{.code = reason_code::server_unavailable}});
    v.push_back({"connack_bad_user_name_or_password", v311,
                 b({0x20, 0x02, 0x00,
                    0x04}),  // Return Code 4: bad user name or password
                 connack_packet{.code = reason_code::bad_user_name_or_password}});
    v.push_back({"connack_not_authorized", v311,
                 b({0x20, 0x02, 0x00,
                    0x05}),  // Return Code 5: not authorized
                 connack_packet{.code = reason_code::not_authorized}});
    v.push_back({"connack_v31_accepted", v31,
                 b({0x20, 0x02,  // CONNACK, Remaining Length 2
                    0x00,        // reserved (3.1 has no Session Present)
                    0x00}),      // Return Code 0: accepted
                 connack_packet{.code = reason_code::success}});

    // ---- PUBLISH (3.3): flags DUP(3) QoS(2..1) RETAIN(0) ----
    v.push_back({"publish_qos0", v311,
                 b({0x30, 0x0A}) +              // PUBLISH QoS 0, Remaining Length 10
                     b({0x00, 0x03}) + "a/b" +  // Topic Name
                     "hello",                   // Payload
                 publish_packet{.topic = "a/b", .payload = "hello"}});
    v.push_back({"publish_qos1", v311,
                 b({0x32, 0x0C}) +              // PUBLISH QoS 1, Remaining Length 12
                     b({0x00, 0x03}) + "a/b" +  // Topic Name
                     b({0x00, 0x0A}) +          // Packet Identifier 10
                     "hello",                   // Payload
                 publish_packet{.topic = "a/b", .payload = "hello", .qos = qos::at_least_once,
                                .packet_id = 10}});
    v.push_back({"publish_qos2_retain_dup", v311,
                 b({0x3D, 0x06}) +            // PUBLISH DUP QoS 2 RETAIN, Remaining Length 6
                     b({0x00, 0x01}) + "x" +  // Topic Name
                     b({0xBE, 0xEF}) +        // Packet Identifier 0xBEEF
                     "y",                     // Payload
                 publish_packet{.topic = "x", .payload = "y", .qos = qos::exactly_once,
                                .retain = true, .dup = true, .packet_id = 0xBEEF}});
    v.push_back({"publish_qos1_dup", v311,
                 b({0x3A, 0x06}) +            // PUBLISH DUP QoS 1, Remaining Length 6
                     b({0x00, 0x01}) + "d" +  // Topic Name
                     b({0x00, 0x01}) +        // Packet Identifier 1
                     "p",                     // Payload
                 publish_packet{.topic = "d", .payload = "p", .qos = qos::at_least_once,
                                .dup = true, .packet_id = 1}});
    v.push_back({"publish_retain_empty_payload", v311,
                 b({0x31, 0x03}) +        // PUBLISH QoS 0 RETAIN, Remaining Length 3
                     b({0x00, 0x01}) + "r",  // Topic Name; no Payload (clears retained)
                 publish_packet{.topic = "r", .payload = "", .retain = true}});
    v.push_back({"publish_empty_payload", v311,
                 b({0x30, 0x05}) +              // PUBLISH QoS 0, Remaining Length 5
                     b({0x00, 0x03}) + "a/b",   // Topic Name; no Payload
                 publish_packet{.topic = "a/b"}});
    v.push_back({"publish_binary_payload", v311,
                 b({0x30, 0x0A}) +              // PUBLISH QoS 0, Remaining Length 10
                     b({0x00, 0x03}) + "bin" +  // Topic Name
                     b({0x00, 0xFF, 0x80, 0x7F, 0x0A}),  // Payload: any bytes, NUL included
                 publish_packet{.topic = "bin", .payload = b({0x00, 0xFF, 0x80, 0x7F, 0x0A})}});
    v.push_back({"publish_utf8_topic", v311,
                 b({0x30, 0x07}) +                           // PUBLISH, Remaining Length 7
                     b({0x00, 0x04, 't', '/', 0xC3, 0xA9}) +  // Topic Name "t/é" (UTF-8)
                     "1",                                      // Payload
                 publish_packet{.topic = "t/\xC3\xA9", .payload = "1"}});
    v.push_back({"publish_max_packet_id", v311,
                 b({0x32, 0x05}) +            // PUBLISH QoS 1, Remaining Length 5
                     b({0x00, 0x01}) + "m" +  // Topic Name
                     b({0xFF, 0xFF}),         // Packet Identifier 65535; no Payload
                 publish_packet{.topic = "m", .qos = qos::at_least_once, .packet_id = 65535}});
    v.push_back({"publish_payload_200", v311,
                 // PUBLISH QoS 0, Remaining Length 205 = 0x4D + 1 * 128: two bytes
                 b({0x30, 0xCD, 0x01}) +
                     b({0x00, 0x03}) + "big" +  // Topic Name
                     std::string(200, 'x'),     // Payload
                 publish_packet{.topic = "big", .payload = std::string(200, 'x')}});
    v.push_back({"publish_payload_20000", v311,
                 // PUBLISH QoS 1, Remaining Length 20007 = 39 + 28 * 128 + 1 * 16384: three bytes
                 b({0x32, 0xA7, 0x9C, 0x01}) +
                     b({0x00, 0x03}) + "big" +  // Topic Name
                     b({0x00, 0x01}) +          // Packet Identifier 1
                     pattern(20000),            // Payload
                 publish_packet{.topic = "big", .payload = pattern(20000),
                                .qos = qos::at_least_once, .packet_id = 1}});
    v.push_back({"publish_v31_qos1", v31,
                 b({0x32, 0x07}) +            // PUBLISH QoS 1, Remaining Length 7
                     b({0x00, 0x01}) + "a" +  // Topic Name
                     b({0x00, 0x2A}) +        // Message ID 42
                     "hi",                    // Payload
                 publish_packet{.topic = "a", .payload = "hi", .qos = qos::at_least_once,
                                .packet_id = 42}});

    // ---- PUBACK, PUBREC, PUBREL, PUBCOMP (3.4 - 3.7): Packet Identifier only ----
    v.push_back({"puback", v311,
                 b({0x40, 0x02,     // PUBACK, Remaining Length 2
                    0x00, 0x0A}),   // Packet Identifier 10
                 puback_packet{.packet_id = 10}});
    v.push_back({"pubrec", v311,
                 b({0x50, 0x02,     // PUBREC, Remaining Length 2
                    0x12, 0x34}),   // Packet Identifier 0x1234
                 pubrec_packet{.packet_id = 0x1234}});
    v.push_back({"pubrel", v311,
                 b({0x62, 0x02,     // PUBREL (flags 0010), Remaining Length 2
                    0x12, 0x34}),   // Packet Identifier 0x1234
                 pubrel_packet{.packet_id = 0x1234}});
    v.push_back({"pubcomp", v311,
                 b({0x70, 0x02,     // PUBCOMP, Remaining Length 2
                    0xFF, 0xFF}),   // Packet Identifier 65535
                 pubcomp_packet{.packet_id = 65535}});

    // ---- SUBSCRIBE (3.8): filter + Requested QoS byte, repeated ----
    v.push_back({"subscribe_three_filters", v311,
                 b({0x82, 0x12}) +                  // SUBSCRIBE (flags 0010), Remaining Length 18
                     b({0x00, 0x01}) +              // Packet Identifier 1
                     b({0x00, 0x03}) + "a/b" +      // Topic Filter
                     b({0x00}) +                    // Requested QoS 0
                     b({0x00, 0x03}) + "c/+" +      // Topic Filter
                     b({0x01}) +                    // Requested QoS 1
                     b({0x00, 0x01}) + "#" +        // Topic Filter
                     b({0x02}),                     // Requested QoS 2
                 subscribe_packet{
                     .packet_id = 1,
                     .subscriptions = {{"a/b", {.max_qos = qos::at_most_once}},
                                       {"c/+", {.max_qos = qos::at_least_once}},
                                       {"#", {.max_qos = qos::exactly_once}}}}});
    v.push_back({"subscribe_one_filter", v311,
                 b({0x82, 0x08}) +              // SUBSCRIBE, Remaining Length 8
                     b({0x12, 0x34}) +          // Packet Identifier 0x1234
                     b({0x00, 0x03}) + "x/y" +  // Topic Filter
                     b({0x01}),                 // Requested QoS 1
                 subscribe_packet{.packet_id = 0x1234,
                                  .subscriptions = {{"x/y", {.max_qos = qos::at_least_once}}}}});

    // ---- SUBACK (3.9): return codes 0x00, 0x01, 0x02, 0x80 ----
    v.push_back({"suback_all_return_codes", v311,
                 b({0x90, 0x06,               // SUBACK, Remaining Length 6
                    0x00, 0x01,               // Packet Identifier 1
                    0x00, 0x01, 0x02, 0x80}),  // granted QoS 0, 1, 2; failure
                 suback_packet{.packet_id = 1,
                               .codes = {reason_code::success, reason_code::granted_qos_1,
                                         reason_code::granted_qos_2,
                                         reason_code::unspecified_error}}});
    v.push_back({"suback_failure", v311,
                 b({0x90, 0x03,  // SUBACK, Remaining Length 3
                    0x00, 0x02,  // Packet Identifier 2
                    0x80}),      // Failure
                 suback_packet{.packet_id = 2, .codes = {reason_code::unspecified_error}}});

    // ---- UNSUBSCRIBE (3.10), UNSUBACK (3.11: no payload) ----
    v.push_back({"unsubscribe_two_filters", v311,
                 b({0xA2, 0x0C}) +              // UNSUBSCRIBE (flags 0010), Remaining Length 12
                     b({0x00, 0x02}) +          // Packet Identifier 2
                     b({0x00, 0x03}) + "a/b" +  // Topic Filter
                     b({0x00, 0x03}) + "c/+",   // Topic Filter
                 unsubscribe_packet{.packet_id = 2, .filters = {"a/b", "c/+"}}});
    v.push_back({"unsubscribe_one_filter", v311,
                 b({0xA2, 0x05}) +          // UNSUBSCRIBE, Remaining Length 5
                     b({0x00, 0x03}) +      // Packet Identifier 3
                     b({0x00, 0x01}) + "#",  // Topic Filter
                 unsubscribe_packet{.packet_id = 3, .filters = {"#"}}});
    v.push_back({"unsuback", v311,
                 b({0xB0, 0x02,     // UNSUBACK, Remaining Length 2
                    0x00, 0x02}),   // Packet Identifier 2
                 unsuback_packet{.packet_id = 2}});

    // ---- PINGREQ (3.12), PINGRESP (3.13), DISCONNECT (3.14): fixed header only ----
    v.push_back({"pingreq", v311, b({0xC0, 0x00}), pingreq_packet{}});
    v.push_back({"pingresp", v311, b({0xD0, 0x00}), pingresp_packet{}});
    v.push_back({"disconnect", v311, b({0xE0, 0x00}), disconnect_packet{}});
    // A Remaining Length of 0 spelled in two bytes still reads as 0 (decoders compute the
    // value, 2.2.3); the encoder writes the one-byte form.
    v.push_back({"pingreq_non_minimal_remaining_length", v311,
                 b({0xC0,          // PINGREQ
                    0x80, 0x00}),  // Remaining Length 0 in two bytes
                 pingreq_packet{}, b({0xC0, 0x00})});
    return v;
  }();
  return all;
}

namespace {

class V311Vectors : public ::testing::TestWithParam<wire_vector> {};

TEST_P(V311Vectors, DecodesAndEncodesExactly) { check_vector(GetParam()); }

INSTANTIATE_TEST_SUITE_P(V311, V311Vectors, ::testing::ValuesIn(v311_vectors()),
                         [](const auto& info) { return info.param.name; });

TEST(V311VectorList, CoversEveryPacketTypeBut5Only) {
  std::vector<bool> seen(16, false);
  for (const auto& v : v311_vectors()) seen[static_cast<int>(type_of(v.expected))] = true;
  for (int t = 1; t <= 14; ++t) {
    EXPECT_TRUE(seen[t]) << to_string(static_cast<packet_type>(t));
  }
  EXPECT_FALSE(seen[15]) << "AUTH does not exist before 5.0";
}

TEST(V311Codec, EncodeAppendsToTheBuffer) {
  std::string out = "prefix";
  encode(puback_packet{.packet_id = 10}, protocol_version::v3_1_1, out);
  EXPECT_EQ(out, "prefix" + b({0x40, 0x02, 0x00, 0x0A}));
}

// 3.1.1 has no reason codes in acknowledgements, properties or UNSUBACK codes: whatever
// a struct holds for 5.0 must not reach the wire.
TEST(V311Codec, FiveOnlyFieldsAreNotWritten) {
  constexpr auto v = protocol_version::v3_1_1;
  EXPECT_EQ(encode(puback_packet{.packet_id = 10, .code = reason_code::no_matching_subscribers,
                                 .props = {.reason_string = "x"}},
                   v),
            b({0x40, 0x02, 0x00, 0x0A}));
  EXPECT_EQ(encode(unsuback_packet{.packet_id = 2, .codes = {reason_code::success}}, v),
            b({0xB0, 0x02, 0x00, 0x02}));
  EXPECT_EQ(encode(disconnect_packet{.code = reason_code::server_shutting_down}, v),
            b({0xE0, 0x00}));
  EXPECT_EQ(encode(publish_packet{.topic = "a", .props = {.message_expiry_interval = 5}}, v),
            b({0x30, 0x03, 0x00, 0x01, 'a'}));
  // 5.0-only subscription options collapse to the Requested QoS byte.
  EXPECT_EQ(encode(subscribe_packet{.packet_id = 1,
                                    .subscriptions = {{"a",
                                                       {.max_qos = qos::at_least_once,
                                                        .no_local = true,
                                                        .retain_as_published = true,
                                                        .retain_handling = 2}}}},
                   v),
            b({0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x01}));
  // SUBACK codes above 2 can only be the 3.1.1 failure code 0x80.
  EXPECT_EQ(encode(suback_packet{.packet_id = 1, .codes = {reason_code::not_authorized}}, v),
            b({0x90, 0x03, 0x00, 0x01, 0x80}));
  // CONNACK reason codes map to the closest 3.1.1 return code.
  EXPECT_EQ(encode(connack_packet{.code = reason_code::banned}, v), b({0x20, 0x02, 0x00, 0x05}));
  EXPECT_EQ(encode(connack_packet{.code = reason_code::bad_authentication_method}, v),
            b({0x20, 0x02, 0x00, 0x04}));
  EXPECT_EQ(encode(connack_packet{.code = reason_code::server_busy}, v),
            b({0x20, 0x02, 0x00, 0x03}));
}

// ---- Remaining Length (2.2.3): one to four bytes, 7 bits each, least significant first ----

struct length_case {
  std::string header;  // first byte + Remaining Length bytes
  std::uint32_t value;
};

TEST(V311RemainingLength, BoundaryValues) {
  const std::vector<length_case> cases = {
      {b({0x30, 0x00}), 0},
      {b({0x30, 0x7F}), 127},
      {b({0x30, 0x80, 0x01}), 128},
      {b({0x30, 0xFF, 0x7F}), 16'383},
      {b({0x30, 0x80, 0x80, 0x01}), 16'384},
      {b({0x30, 0xFF, 0xFF, 0x7F}), 2'097'151},
      {b({0x30, 0x80, 0x80, 0x80, 0x01}), 2'097'152},
      {b({0x30, 0xFF, 0xFF, 0xFF, 0x7F}), 268'435'455},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.value);
    auto h = parse_fixed_header(c.header);
    ASSERT_TRUE(h);
    ASSERT_TRUE(h->has_value());
    EXPECT_EQ((*h)->remaining_length, c.value);
    EXPECT_EQ((*h)->size, c.header.size());
    EXPECT_EQ((*h)->type(), packet_type::publish);
    // Every prefix of the header asks for more bytes.
    for (std::size_t n = 0; n < c.header.size(); ++n) {
      auto partial = parse_fixed_header(std::string_view(c.header).substr(0, n));
      ASSERT_TRUE(partial);
      EXPECT_FALSE(partial->has_value()) << n << " bytes";
    }
  }
}

TEST(V311RemainingLength, NonMinimalEncodingIsAccepted) {
  for (const auto& header : {b({0xC0, 0x80, 0x00}), b({0xC0, 0x80, 0x80, 0x00}),
                             b({0xC0, 0x80, 0x80, 0x80, 0x00})}) {
    auto h = parse_fixed_header(header);
    ASSERT_TRUE(h);
    ASSERT_TRUE(h->has_value());
    EXPECT_EQ((*h)->remaining_length, 0u);
    EXPECT_EQ((*h)->size, header.size());
    auto p = decode_packet(header, protocol_version::v3_1_1);
    ASSERT_TRUE(p);
    EXPECT_EQ(type_of(*p), packet_type::pingreq);
  }
  // 0x85 0x80 0x00 is 5 in three bytes.
  auto p = decode_packet(b({0x30, 0x85, 0x80, 0x00, 0x00, 0x01, 'a', 'b', 'c'}),
                         protocol_version::v3_1_1);
  ASSERT_TRUE(p);
  EXPECT_TRUE((*p == packet{publish_packet{.topic = "a", .payload = "bc"}}));
}

TEST(V311RemainingLength, FifthByteIsMalformed) {
  auto h = parse_fixed_header(b({0x30, 0x80, 0x80, 0x80, 0x80, 0x01}));
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code, reason_code::malformed_packet);
}

// Whole PUBLISH packets whose Remaining Length sits on each boundary of the encoding:
// QoS 0, Topic Name "a" (3 bytes), the rest payload.
TEST(V311RemainingLength, WholePacketsOnEachBoundary) {
  const std::vector<length_case> cases = {
      {b({0x30, 0x03}), 3},  // the smallest PUBLISH with a one-byte topic
      {b({0x30, 0x7F}), 127},
      {b({0x30, 0x80, 0x01}), 128},
      {b({0x30, 0xFF, 0x7F}), 16'383},
      {b({0x30, 0x80, 0x80, 0x01}), 16'384},
      {b({0x30, 0xFF, 0xFF, 0x7F}), 2'097'151},
      {b({0x30, 0x80, 0x80, 0x80, 0x01}), 2'097'152},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.value);
    const auto payload = pattern(c.value - 3);
    const auto bytes = c.header + b({0x00, 0x01, 'a'}) + payload;
    const packet expected = publish_packet{.topic = "a", .payload = payload};
    auto p = decode_packet(bytes, protocol_version::v3_1_1);
    ASSERT_TRUE(p);
    EXPECT_TRUE(*p == expected);
    EXPECT_EQ(encoded_size(expected, protocol_version::v3_1_1), bytes.size());
    EXPECT_TRUE(encode(expected, protocol_version::v3_1_1) == bytes)
        << byte_diff(bytes, encode(expected, protocol_version::v3_1_1));
  }
  auto ping = decode_packet(b({0xC0, 0x00}), protocol_version::v3_1_1);  // Remaining Length 0
  ASSERT_TRUE(ping);
  EXPECT_EQ(type_of(*ping), packet_type::pingreq);
}

// ---- Round trips: struct -> encode -> decode == struct ----

std::vector<packet> v311_round_trip_packets(protocol_version version) {
  std::vector<packet> out;
  out.push_back(connect_packet{.version = version, .client_id = "rt"});
  out.push_back(connect_packet{.version = version, .clean_start = false, .keep_alive = 1,
                               .client_id = "rt", .username = "user"});
  for (int q = 0; q <= 2; ++q) {
    for (bool retain : {false, true}) {
      out.push_back(connect_packet{.version = version,
                                   .keep_alive = 600,
                                   .client_id = "will",
                                   .will = will_message{.topic = "w/t",
                                                        .payload = b({0x00, 0xFF}),
                                                        .qos = static_cast<qos>(q),
                                                        .retain = retain},
                                   .username = "u",
                                   .password = ""});
    }
  }
  for (int code = 0; code <= 5; ++code) {
    out.push_back(connack_packet{
        .code = from_connack_return_code(static_cast<connack_return_code>(code))});
  }
  out.push_back(connack_packet{.session_present = true});
  for (int q = 0; q <= 2; ++q) {
    for (bool retain : {false, true}) {
      for (bool dup : {false, true}) {
        if (q == 0 && dup) continue;  // DUP must be 0 for QoS 0 (3.3.1.1)
        const auto id = static_cast<std::uint16_t>(q == 0 ? 0 : 300 + q);
        out.push_back(publish_packet{.topic = "r/t",
                                     .payload = pattern(q * 100 + 7),
                                     .qos = static_cast<qos>(q),
                                     .retain = retain,
                                     .dup = dup,
                                     .packet_id = id});
      }
    }
  }
  out.push_back(publish_packet{.topic = std::string(65535, 't')});  // longest Topic Name
  out.push_back(puback_packet{.packet_id = 1});
  out.push_back(pubrec_packet{.packet_id = 2});
  out.push_back(pubrel_packet{.packet_id = 3});
  out.push_back(pubcomp_packet{.packet_id = 4});
  subscribe_packet sub{.packet_id = 9};
  for (int i = 0; i < 50; ++i) {
    sub.subscriptions.push_back({"f/" + std::to_string(i), {.max_qos = static_cast<qos>(i % 3)}});
  }
  out.push_back(sub);
  out.push_back(suback_packet{.packet_id = 9,
                              .codes = {reason_code::granted_qos_2, reason_code::unspecified_error,
                                        reason_code::success}});
  out.push_back(unsubscribe_packet{.packet_id = 10, .filters = {"a", "b/#", "+/c"}});
  out.push_back(unsuback_packet{.packet_id = 10});
  out.push_back(pingreq_packet{});
  out.push_back(pingresp_packet{});
  out.push_back(disconnect_packet{});
  return out;
}

TEST(V311RoundTrip, VariousPackets) {
  for (const auto& p : v311_round_trip_packets(protocol_version::v3_1_1)) {
    check_round_trip(p, protocol_version::v3_1_1);
  }
}

TEST(V311RoundTrip, VariousPacketsOnA31Connection) {
  for (const auto& p : v311_round_trip_packets(protocol_version::v3_1)) {
    check_round_trip(p, protocol_version::v3_1);
  }
}

}  // namespace
}  // namespace ringmq::codec::vectors
