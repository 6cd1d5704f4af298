// MQTT 5.0 packets, byte for byte as the MQTT 5.0 OASIS standard (chapter 3) lays
// them out. Each field carries its own comment; lengths were counted by hand.
// Properties are listed in ascending identifier order, the order our encoder writes;
// a vector with another order checks that the decoder does not care.

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "broker/codec/decoder.hpp"
#include "broker/codec/encoder.hpp"
#include "tests/unit/codec/vectors.hpp"

namespace ringmq::codec::vectors {

const std::vector<wire_vector>& v5_vectors() {
  static const std::vector<wire_vector> all = [] {
    constexpr auto v5 = protocol_version::v5;
    std::vector<wire_vector> v;

    // ---- CONNECT (3.1) ----
    v.push_back({"connect_minimal", v5,
                 b({0x10, 0x0F}) +               // CONNECT, Remaining Length 15
                     b({0x00, 0x04}) + "MQTT" +  // Protocol Name
                     b({0x05}) +                 // Protocol Version 5
                     b({0x02}) +                 // Connect Flags: Clean Start
                     b({0x00, 0x3C}) +           // Keep Alive 60
                     b({0x00}) +                 // Property Length 0
                     b({0x00, 0x02}) + "c1",     // Client Identifier
                 connect_packet{.version = v5, .clean_start = true, .keep_alive = 60,
                                .client_id = "c1"}});
    v.push_back({"connect_empty_client_id_clean_start_off", v5,
                 b({0x10, 0x0D}) +               // CONNECT, Remaining Length 13
                     b({0x00, 0x04}) + "MQTT" +  // Protocol Name
                     b({0x05}) +                 // Protocol Version 5
                     b({0x00}) +                 // Connect Flags: none
                     b({0x00, 0x00}) +           // Keep Alive 0
                     b({0x00}) +                 // Property Length 0
                     b({0x00, 0x00}),            // Client Identifier: empty
                 connect_packet{.version = v5, .clean_start = false, .keep_alive = 0,
                                .client_id = ""}});
    v.push_back({"connect_properties_will_username_password", v5,
                 b({0x10, 0x7A}) +               // CONNECT, Remaining Length 122
                     b({0x00, 0x04}) + "MQTT" +  // Protocol Name
                     b({0x05}) +                 // Protocol Version 5
                     // Connect Flags: User Name, Password, Will QoS 2, Will Flag, Clean Start
                     b({0xD6}) +
                     b({0x00, 0x1E}) +                    // Keep Alive 30
                     b({0x1B}) +                          // Property Length 27
                     b({0x11, 0x00, 0x00, 0x0E, 0x10}) +  // Session Expiry Interval 3600
                     b({0x17, 0x00}) +                    // Request Problem Information 0
                     b({0x19, 0x01}) +                    // Request Response Information 1
                     b({0x21, 0x00, 0x14}) +              // Receive Maximum 20
                     b({0x22, 0x00, 0x0A}) +              // Topic Alias Maximum 10
                     b({0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v'}) +  // User Property k=v
                     b({0x27, 0x00, 0x10, 0x00, 0x00}) +  // Maximum Packet Size 1048576
                     b({0x00, 0x08}) + "client-5" +       // Client Identifier
                     b({0x2E}) +                          // Will Property Length 46
                     b({0x01, 0x01}) +                    // Payload Format Indicator 1
                     b({0x02, 0x00, 0x00, 0x00, 0x78}) +  // Message Expiry Interval 120
                     b({0x03, 0x00, 0x0A}) + "text/plain" +  // Content Type
                     b({0x08, 0x00, 0x06}) + "resp/t" +      // Response Topic
                     b({0x09, 0x00, 0x02, 0xC0, 0xDE}) +     // Correlation Data
                     b({0x18, 0x00, 0x00, 0x00, 0x1E}) +     // Will Delay Interval 30
                     b({0x26, 0x00, 0x01, 'w', 0x00, 0x01, '1'}) +  // User Property w=1
                     b({0x00, 0x06}) + "will/t" +  // Will Topic
                     b({0x00, 0x04}) + "gone" +    // Will Payload
                     b({0x00, 0x03}) + "bob" +     // User Name
                     b({0x00, 0x06}) + "s3cr3t",   // Password
                 connect_packet{
                     .version = v5,
                     .clean_start = true,
                     .keep_alive = 30,
                     .client_id = "client-5",
                     .will = will_message{.topic = "will/t",
                                          .payload = "gone",
                                          .qos = qos::exactly_once,
                                          .retain = false,
                                          .props = {.payload_format_indicator = 1,
                                                    .message_expiry_interval = 120,
                                                    .content_type = "text/plain",
                                                    .response_topic = "resp/t",
                                                    .correlation_data = b({0xC0, 0xDE}),
                                                    .will_delay_interval = 30,
                                                    .user_properties = {{"w", "1"}}}},
                     .username = "bob",
                     .password = "s3cr3t",
                     .props = {.session_expiry_interval = 3600,
                               .request_problem_information = 0,
                               .request_response_information = 1,
                               .receive_maximum = 20,
                               .topic_alias_maximum = 10,
                               .user_properties = {{"k", "v"}},
                               .maximum_packet_size = 1'048'576}}});
    v.push_back({"connect_will_retain_no_will_properties", v5,
                 b({0x10, 0x16}) +               // CONNECT, Remaining Length 22
                     b({0x00, 0x04}) + "MQTT" +  // Protocol Name
                     b({0x05}) +                 // Protocol Version 5
                     b({0x26}) +                 // Connect Flags: Will Retain, Will, Clean
                     b({0x00, 0x3C}) +           // Keep Alive 60
                     b({0x00}) +                 // Property Length 0
                     b({0x00, 0x01}) + "r" +     // Client Identifier
                     b({0x00}) +                 // Will Property Length 0
                     b({0x00, 0x02}) + "lw" +    // Will Topic
                     b({0x00, 0x01}) + "x",      // Will Payload
                 connect_packet{.version = v5,
                                .clean_start = true,
                                .keep_alive = 60,
                                .client_id = "r",
                                .will = will_message{.topic = "lw", .payload = "x",
                                                     .retain = true}}});
    v.push_back({"connect_authentication", v5,
                 b({0x10, 0x26}) +               // CONNECT, Remaining Length 38
                     b({0x00, 0x04}) + "MQTT" +  // Protocol Name
                     b({0x05}) +                 // Protocol Version 5
                     b({0x00}) +                 // Connect Flags: none
                     b({0x00, 0x3C}) +           // Keep Alive 60
                     b({0x15}) +                 // Property Length 21
                     b({0x15, 0x00, 0x0B}) + "SCRAM-SHA-1" +  // Authentication Method
                     b({0x16, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04}) +  // Authentication Data
                     b({0x00, 0x04}) + "auth",                        // Client Identifier
                 connect_packet{.version = v5,
                                .clean_start = false,
                                .keep_alive = 60,
                                .client_id = "auth",
                                .props = {.authentication_method = "SCRAM-SHA-1",
                                          .authentication_data = b({0x01, 0x02, 0x03, 0x04})}}});
    // 5.0 drops 3.1.1's rule that a Password needs a User Name (3.1.2.9).
    v.push_back({"connect_password_without_username", v5,
                 b({0x10, 0x13}) +               // CONNECT, Remaining Length 19
                     b({0x00, 0x04}) + "MQTT" +  // Protocol Name
                     b({0x05}) +                 // Protocol Version 5
                     b({0x42}) +                 // Connect Flags: Password, Clean Start
                     b({0x00, 0x3C}) +           // Keep Alive 60
                     b({0x00}) +                 // Property Length 0
                     b({0x00, 0x01}) + "p" +     // Client Identifier
                     b({0x00, 0x03}) + "tok",    // Password
                 connect_packet{.version = v5, .clean_start = true, .keep_alive = 60,
                                .client_id = "p", .password = "tok"}});

    // ---- CONNACK (3.2) ----
    v.push_back({"connack_success", v5,
                 b({0x20, 0x03,  // CONNACK, Remaining Length 3
                    0x00,        // Connect Acknowledge Flags
                    0x00,        // Reason Code Success
                    0x00}),      // Property Length 0
                 connack_packet{}});
    v.push_back({"connack_session_present", v5,
                 b({0x20, 0x03,  // CONNACK, Remaining Length 3
                    0x01,        // Session Present
                    0x00,        // Reason Code Success
                    0x00}),      // Property Length 0
                 connack_packet{.session_present = true}});
    v.push_back({"connack_not_authorized", v5,
                 b({0x20, 0x03,  // CONNACK, Remaining Length 3
                    0x00,        // Connect Acknowledge Flags
                    0x87,        // Reason Code Not authorized
                    0x00}),      // Property Length 0
                 connack_packet{.code = reason_code::not_authorized}});
    v.push_back({"connack_bad_password_reason_string", v5,
                 b({0x20, 0x0C,  // CONNACK, Remaining Length 12
                    0x00,        // Connect Acknowledge Flags
                    0x86,        // Reason Code Bad User Name or Password
                    0x09}) +     // Property Length 9
                     b({0x1F, 0x00, 0x06}) + "denied",  // Reason String
                 connack_packet{.code = reason_code::bad_user_name_or_password,
                                .props = {.reason_string = "denied"}}});
    v.push_back({"connack_server_capabilities", v5,
                 b({0x20, 0x3F,  // CONNACK, Remaining Length 63
                    0x00,        // Connect Acknowledge Flags
                    0x00,        // Reason Code Success
                    0x3C}) +     // Property Length 60
                     b({0x11, 0x00, 0x00, 0x0E, 0x10}) +        // Session Expiry Interval 3600
                     b({0x12, 0x00, 0x09}) + "auto-1a2b" +      // Assigned Client Identifier
                     b({0x13, 0x00, 0x78}) +                    // Server Keep Alive 120
                     b({0x1A, 0x00, 0x05}) + "resp/" +          // Response Information
                     b({0x21, 0x00, 0x64}) +                    // Receive Maximum 100
                     b({0x22, 0x00, 0x10}) +                    // Topic Alias Maximum 16
                     b({0x24, 0x01}) +                          // Maximum QoS 1
                     b({0x25, 0x00}) +                          // Retain Available 0
                     b({0x26, 0x00, 0x04}) + "node" + b({0x00, 0x02}) + "n1" +  // User Property
                     b({0x27, 0x00, 0x01, 0x00, 0x00}) +  // Maximum Packet Size 65536
                     b({0x28, 0x01}) +                    // Wildcard Subscription Available 1
                     b({0x29, 0x00}) +                    // Subscription Identifiers Available 0
                     b({0x2A, 0x01}),                     // Shared Subscription Available 1
                 connack_packet{.props = {.session_expiry_interval = 3600,
                                          .assigned_client_identifier = "auto-1a2b",
                                          .server_keep_alive = 120,
                                          .response_information = "resp/",
                                          .receive_maximum = 100,
                                          .topic_alias_maximum = 16,
                                          .maximum_qos = 1,
                                          .retain_available = 0,
                                          .user_properties = {{"node", "n1"}},
                                          .maximum_packet_size = 65536,
                                          .wildcard_subscription_available = 1,
                                          .subscription_identifier_available = 0,
                                          .shared_subscription_available = 1}}});
    v.push_back({"connack_authentication", v5,
                 b({0x20, 0x20,  // CONNACK, Remaining Length 32
                    0x00,        // Connect Acknowledge Flags
                    0x00,        // Reason Code Success
                    0x1D}) +     // Property Length 29
                     b({0x15, 0x00, 0x0B}) + "SCRAM-SHA-1" +   // Authentication Method
                     b({0x16, 0x00, 0x0C}) + "server-final",  // Authentication Data
                 connack_packet{.props = {.authentication_method = "SCRAM-SHA-1",
                                          .authentication_data = "server-final"}}});
    v.push_back({"connack_use_another_server", v5,
                 b({0x20, 0x20,  // CONNACK, Remaining Length 32
                    0x00,        // Connect Acknowledge Flags
                    0x9C,        // Reason Code Use another server
                    0x1D}) +     // Property Length 29
                     b({0x1C, 0x00, 0x12}) + "other.example:1883" +  // Server Reference
                     b({0x1F, 0x00, 0x05}) + "moved",                // Reason String
                 connack_packet{.code = reason_code::use_another_server,
                                .props = {.server_reference = "other.example:1883",
                                          .reason_string = "moved"}}});

    // ---- PUBLISH (3.3) ----
    v.push_back({"publish_qos0", v5,
                 b({0x30, 0x08}) +              // PUBLISH QoS 0, Remaining Length 8
                     b({0x00, 0x03}) + "a/b" +  // Topic Name
                     b({0x00}) +                // Property Length 0
                     "hi",                      // Payload
                 publish_packet{.topic = "a/b", .payload = "hi"}});
    v.push_back({"publish_qos1_message_properties", v5,
                 b({0x32, 0x4B}) +                // PUBLISH QoS 1, Remaining Length 75
                     b({0x00, 0x05}) + "req/x" +  // Topic Name
                     b({0x00, 0x05}) +            // Packet Identifier 5
                     b({0x3A}) +                  // Property Length 58
                     b({0x01, 0x01}) +            // Payload Format Indicator 1 (UTF-8)
                     b({0x02, 0x00, 0x00, 0x00, 0x3C}) +        // Message Expiry Interval 60
                     b({0x03, 0x00, 0x10}) + "application/json" +  // Content Type
                     b({0x08, 0x00, 0x08}) + "reply/me" +          // Response Topic
                     b({0x09, 0x00, 0x04, 0x00, 0x01, 0x02, 0x03}) +  // Correlation Data
                     b({0x26, 0x00, 0x01, 'a', 0x00, 0x01, '1'}) +    // User Property a=1
                     b({0x26, 0x00, 0x01, 'a', 0x00, 0x01, '2'}) +    // User Property a=2
                     R"({"v":1})",                                    // Payload
                 publish_packet{.topic = "req/x",
                                .payload = R"({"v":1})",
                                .qos = qos::at_least_once,
                                .packet_id = 5,
                                .props = {.payload_format_indicator = 1,
                                          .message_expiry_interval = 60,
                                          .content_type = "application/json",
                                          .response_topic = "reply/me",
                                          .correlation_data = b({0x00, 0x01, 0x02, 0x03}),
                                          .user_properties = {{"a", "1"}, {"a", "2"}}}}});
    v.push_back({"publish_topic_alias_empty_topic", v5,
                 b({0x30, 0x07}) +            // PUBLISH QoS 0, Remaining Length 7
                     b({0x00, 0x00}) +        // Topic Name: empty, the alias stands for it
                     b({0x03}) +              // Property Length 3
                     b({0x23, 0x00, 0x07}) +  // Topic Alias 7
                     "p",                     // Payload
                 publish_packet{.topic = "", .payload = "p", .props = {.topic_alias = 7}}});
    v.push_back({"publish_qos2_retain_sets_topic_alias", v5,
                 b({0x35, 0x0C}) +              // PUBLISH QoS 2 RETAIN, Remaining Length 12
                     b({0x00, 0x03}) + "t/1" +  // Topic Name
                     b({0x01, 0x00}) +          // Packet Identifier 256
                     b({0x03}) +                // Property Length 3
                     b({0x23, 0x00, 0x01}) +    // Topic Alias 1
                     "v",                       // Payload
                 publish_packet{.topic = "t/1", .payload = "v", .qos = qos::exactly_once,
                                .retain = true, .packet_id = 256, .props = {.topic_alias = 1}}});
    v.push_back({"publish_several_subscription_identifiers", v5,
                 b({0x30, 0x11}) +                      // PUBLISH QoS 0, Remaining Length 17
                     b({0x00, 0x03}) + "s/1" +          // Topic Name
                     b({0x0A}) +                        // Property Length 10
                     b({0x0B, 0x01}) +                  // Subscription Identifier 1
                     b({0x0B, 0x80, 0x01}) +            // Subscription Identifier 128
                     b({0x0B, 0xFF, 0xFF, 0xFF, 0x7F}) +  // Subscription Identifier 268435455
                     "m",                               // Payload
                 publish_packet{.topic = "s/1", .payload = "m",
                                .props = {.subscription_identifiers = {1, 128, 268'435'455}}}});
    v.push_back({"publish_qos1_dup", v5,
                 b({0x3A, 0x07}) +            // PUBLISH DUP QoS 1, Remaining Length 7
                     b({0x00, 0x01}) + "d" +  // Topic Name
                     b({0x00, 0x02}) +        // Packet Identifier 2
                     b({0x00}) +              // Property Length 0
                     "p",                     // Payload
                 publish_packet{.topic = "d", .payload = "p", .qos = qos::at_least_once,
                                .dup = true, .packet_id = 2}});
    v.push_back({"publish_retain_empty_payload", v5,
                 b({0x31, 0x04}) +            // PUBLISH QoS 0 RETAIN, Remaining Length 4
                     b({0x00, 0x01}) + "r" +  // Topic Name
                     b({0x00}),               // Property Length 0; no Payload
                 publish_packet{.topic = "r", .retain = true}});
    v.push_back({"publish_payload_200", v5,
                 // PUBLISH QoS 0, Remaining Length 206 = 0x4E + 1 * 128: two bytes
                 b({0x30, 0xCE, 0x01}) +
                     b({0x00, 0x03}) + "big" +  // Topic Name
                     b({0x00}) +                // Property Length 0
                     std::string(200, 'x'),     // Payload
                 publish_packet{.topic = "big", .payload = std::string(200, 'x')}});
    v.push_back({"publish_payload_20000", v5,
                 // PUBLISH QoS 2, Remaining Length 20008 = 40 + 28 * 128 + 1 * 16384: three bytes
                 b({0x34, 0xA8, 0x9C, 0x01}) +
                     b({0x00, 0x03}) + "big" +  // Topic Name
                     b({0x00, 0x02}) +          // Packet Identifier 2
                     b({0x00}) +                // Property Length 0
                     pattern(20000),            // Payload
                 publish_packet{.topic = "big", .payload = pattern(20000),
                                .qos = qos::exactly_once, .packet_id = 2}});
    // Properties may come in any order (2.2.2); the encoder writes ascending identifiers.
    v.push_back({"publish_properties_in_descending_order", v5,
                 b({0x30, 0x0F}) +                      // PUBLISH QoS 0, Remaining Length 15
                     b({0x00, 0x03}) + "a/b" +          // Topic Name
                     b({0x08}) +                        // Property Length 8
                     b({0x23, 0x00, 0x05}) +            // Topic Alias 5
                     b({0x02, 0x00, 0x00, 0x00, 0x0A}) +  // Message Expiry Interval 10
                     "z",                               // Payload
                 publish_packet{.topic = "a/b", .payload = "z",
                                .props = {.message_expiry_interval = 10, .topic_alias = 5}},
                 b({0x30, 0x0F}) + b({0x00, 0x03}) + "a/b" + b({0x08}) +
                     b({0x02, 0x00, 0x00, 0x00, 0x0A}) +  // Message Expiry Interval first
                     b({0x23, 0x00, 0x05}) + "z"});

    // ---- PUBACK (3.4): Reason Code and Property Length may each be left off ----
    v.push_back({"puback_success_short", v5,
                 b({0x40, 0x02,     // PUBACK, Remaining Length 2
                    0x00, 0x0A}),   // Packet Identifier 10; Reason Code Success implied
                 puback_packet{.packet_id = 10}});
    v.push_back({"puback_success_with_reason_code", v5,
                 b({0x40, 0x03,     // PUBACK, Remaining Length 3
                    0x00, 0x0A,     // Packet Identifier 10
                    0x00}),         // Reason Code Success; no Property Length
                 puback_packet{.packet_id = 10}, b({0x40, 0x02, 0x00, 0x0A})});
    v.push_back({"puback_success_with_empty_properties", v5,
                 b({0x40, 0x04,     // PUBACK, Remaining Length 4
                    0x00, 0x0A,     // Packet Identifier 10
                    0x00,           // Reason Code Success
                    0x00}),         // Property Length 0
                 puback_packet{.packet_id = 10}, b({0x40, 0x02, 0x00, 0x0A})});
    v.push_back({"puback_no_matching_subscribers", v5,
                 b({0x40, 0x03,     // PUBACK, Remaining Length 3
                    0x00, 0x0A,     // Packet Identifier 10
                    0x10}),         // Reason Code No matching subscribers
                 puback_packet{.packet_id = 10, .code = reason_code::no_matching_subscribers}});
    v.push_back({"puback_no_matching_subscribers_empty_properties", v5,
                 b({0x40, 0x04,     // PUBACK, Remaining Length 4
                    0x00, 0x0A,     // Packet Identifier 10
                    0x10,           // Reason Code No matching subscribers
                    0x00}),         // Property Length 0
                 puback_packet{.packet_id = 10, .code = reason_code::no_matching_subscribers},
                 b({0x40, 0x03, 0x00, 0x0A, 0x10})});
    v.push_back({"puback_quota_exceeded_reason_string", v5,
                 b({0x40, 0x10,     // PUBACK, Remaining Length 16
                    0x00, 0x0B,     // Packet Identifier 11
                    0x97,           // Reason Code Quota exceeded
                    0x0C}) +        // Property Length 12
                     b({0x1F, 0x00, 0x09}) + "slow down",  // Reason String
                 puback_packet{.packet_id = 11, .code = reason_code::quota_exceeded,
                               .props = {.reason_string = "slow down"}}});
    v.push_back({"puback_success_user_property", v5,
                 b({0x40, 0x0B,     // PUBACK, Remaining Length 11
                    0x00, 0x0C,     // Packet Identifier 12
                    0x00,           // Reason Code Success: needed before the properties
                    0x07,           // Property Length 7
                    0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v'}),  // User Property k=v
                 puback_packet{.packet_id = 12, .props = {.user_properties = {{"k", "v"}}}}});

    // ---- PUBREC (3.5) ----
    v.push_back({"pubrec_success_short", v5,
                 b({0x50, 0x02,     // PUBREC, Remaining Length 2
                    0x00, 0x0D}),   // Packet Identifier 13
                 pubrec_packet{.packet_id = 13}});
    v.push_back({"pubrec_packet_identifier_in_use", v5,
                 b({0x50, 0x03,     // PUBREC, Remaining Length 3
                    0x00, 0x0D,     // Packet Identifier 13
                    0x91}),         // Reason Code Packet Identifier in use
                 pubrec_packet{.packet_id = 13, .code = reason_code::packet_identifier_in_use}});
    v.push_back({"pubrec_payload_format_invalid_reason_string", v5,
                 b({0x50, 0x0B,     // PUBREC, Remaining Length 11
                    0x00, 0x0D,     // Packet Identifier 13
                    0x99,           // Reason Code Payload format invalid
                    0x07}) +        // Property Length 7
                     b({0x1F, 0x00, 0x04}) + "utf8",  // Reason String
                 pubrec_packet{.packet_id = 13, .code = reason_code::payload_format_invalid,
                               .props = {.reason_string = "utf8"}}});

    // ---- PUBREL (3.6) ----
    v.push_back({"pubrel_success_short", v5,
                 b({0x62, 0x02,     // PUBREL (flags 0010), Remaining Length 2
                    0x00, 0x0D}),   // Packet Identifier 13
                 pubrel_packet{.packet_id = 13}});
    v.push_back({"pubrel_success_with_reason_code", v5,
                 b({0x62, 0x03,     // PUBREL, Remaining Length 3
                    0x00, 0x0D,     // Packet Identifier 13
                    0x00}),         // Reason Code Success
                 pubrel_packet{.packet_id = 13}, b({0x62, 0x02, 0x00, 0x0D})});
    v.push_back({"pubrel_packet_identifier_not_found", v5,
                 b({0x62, 0x03,     // PUBREL, Remaining Length 3
                    0x00, 0x0D,     // Packet Identifier 13
                    0x92}),         // Reason Code Packet Identifier not found
                 pubrel_packet{.packet_id = 13,
                               .code = reason_code::packet_identifier_not_found}});
    v.push_back({"pubrel_reason_string", v5,
                 b({0x62, 0x0B,     // PUBREL, Remaining Length 11
                    0x00, 0x0D,     // Packet Identifier 13
                    0x92,           // Reason Code Packet Identifier not found
                    0x07}) +        // Property Length 7
                     b({0x1F, 0x00, 0x04}) + "gone",  // Reason String
                 pubrel_packet{.packet_id = 13,
                               .code = reason_code::packet_identifier_not_found,
                               .props = {.reason_string = "gone"}}});

    // ---- PUBCOMP (3.7) ----
    v.push_back({"pubcomp_success_short", v5,
                 b({0x70, 0x02,     // PUBCOMP, Remaining Length 2
                    0x00, 0x0D}),   // Packet Identifier 13
                 pubcomp_packet{.packet_id = 13}});
    v.push_back({"pubcomp_packet_identifier_not_found", v5,
                 b({0x70, 0x03,     // PUBCOMP, Remaining Length 3
                    0x00, 0x0D,     // Packet Identifier 13
                    0x92}),         // Reason Code Packet Identifier not found
                 pubcomp_packet{.packet_id = 13,
                                .code = reason_code::packet_identifier_not_found}});
    v.push_back({"pubcomp_user_property", v5,
                 b({0x70, 0x0B,     // PUBCOMP, Remaining Length 11
                    0x00, 0x0D,     // Packet Identifier 13
                    0x00,           // Reason Code Success
                    0x07,           // Property Length 7
                    0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v'}),  // User Property k=v
                 pubcomp_packet{.packet_id = 13, .props = {.user_properties = {{"k", "v"}}}}});

    // ---- SUBSCRIBE (3.8): options byte = Retain Handling(5..4) RAP(3) NL(2) QoS(1..0) ----
    v.push_back({"subscribe_options_and_identifier", v5,
                 b({0x82, 0x22}) +                 // SUBSCRIBE (flags 0010), Remaining Length 34
                     b({0x00, 0x10}) +             // Packet Identifier 16
                     b({0x02}) +                   // Property Length 2
                     b({0x0B, 0x2A}) +             // Subscription Identifier 42
                     b({0x00, 0x03}) + "a/+" +     // Topic Filter
                     b({0x0D}) +                   // QoS 1, No Local, Retain As Published, RH 0
                     b({0x00, 0x03}) + "b/#" +     // Topic Filter
                     b({0x12}) +                   // QoS 2, Retain Handling 1
                     b({0x00, 0x0A}) + "$share/g/c" +  // Topic Filter (shared)
                     b({0x20}) +                   // QoS 0, Retain Handling 2
                     b({0x00, 0x01}) + "d" +       // Topic Filter
                     b({0x00}),                    // QoS 0, nothing else
                 subscribe_packet{
                     .packet_id = 16,
                     .subscriptions = {{"a/+",
                                        {.max_qos = qos::at_least_once,
                                         .no_local = true,
                                         .retain_as_published = true,
                                         .retain_handling = 0}},
                                       {"b/#",
                                        {.max_qos = qos::exactly_once, .retain_handling = 1}},
                                       {"$share/g/c", {.retain_handling = 2}},
                                       {"d", {}}},
                     .props = {.subscription_identifiers = {42}}}});
    v.push_back({"subscribe_no_properties", v5,
                 b({0x82, 0x07}) +            // SUBSCRIBE, Remaining Length 7
                     b({0x00, 0x01}) +        // Packet Identifier 1
                     b({0x00}) +              // Property Length 0
                     b({0x00, 0x01}) + "x" +  // Topic Filter
                     b({0x01}),               // QoS 1
                 subscribe_packet{.packet_id = 1,
                                  .subscriptions = {{"x", {.max_qos = qos::at_least_once}}}}});
    v.push_back({"subscribe_largest_identifier_user_property", v5,
                 b({0x82, 0x13}) +                           // SUBSCRIBE, Remaining Length 19
                     b({0x00, 0x11}) +                       // Packet Identifier 17
                     b({0x0C}) +                             // Property Length 12
                     b({0x0B, 0xFF, 0xFF, 0xFF, 0x7F}) +     // Subscription Identifier 268435455
                     b({0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v'}) +  // User Property k=v
                     b({0x00, 0x01}) + "q" +                 // Topic Filter
                     b({0x2E}),  // QoS 2, No Local, Retain As Published, Retain Handling 2
                 subscribe_packet{.packet_id = 17,
                                  .subscriptions = {{"q",
                                                     {.max_qos = qos::exactly_once,
                                                      .no_local = true,
                                                      .retain_as_published = true,
                                                      .retain_handling = 2}}},
                                  .props = {.subscription_identifiers = {268'435'455},
                                            .user_properties = {{"k", "v"}}}}});

    // ---- SUBACK (3.9) ----
    v.push_back({"suback_granted_and_refused", v5,
                 b({0x90, 0x09,     // SUBACK, Remaining Length 9
                    0x00, 0x10,     // Packet Identifier 16
                    0x00,           // Property Length 0
                    0x00, 0x01, 0x02,  // Granted QoS 0, 1, 2
                    0x8F,           // Topic Filter invalid
                    0x9E,           // Shared Subscriptions not supported
                    0xA2}),         // Wildcard Subscriptions not supported
                 suback_packet{.packet_id = 16,
                               .codes = {reason_code::success, reason_code::granted_qos_1,
                                         reason_code::granted_qos_2,
                                         reason_code::topic_filter_invalid,
                                         reason_code::shared_subscriptions_not_supported,
                                         reason_code::wildcard_subscriptions_not_supported}}});
    v.push_back({"suback_failures_reason_string", v5,
                 b({0x90, 0x0E,     // SUBACK, Remaining Length 14
                    0x00, 0x11,     // Packet Identifier 17
                    0x05}) +        // Property Length 5
                     b({0x1F, 0x00, 0x02}) + "no" +  // Reason String
                     b({0x80,       // Unspecified error
                        0x83,       // Implementation specific error
                        0x87,       // Not authorized
                        0x91,       // Packet Identifier in use
                        0x97,       // Quota exceeded
                        0xA1}),     // Subscription Identifiers not supported
                 suback_packet{.packet_id = 17,
                               .codes = {reason_code::unspecified_error,
                                         reason_code::implementation_specific_error,
                                         reason_code::not_authorized,
                                         reason_code::packet_identifier_in_use,
                                         reason_code::quota_exceeded,
                                         reason_code::subscription_identifiers_not_supported},
                               .props = {.reason_string = "no"}}});

    // ---- UNSUBSCRIBE (3.10), UNSUBACK (3.11) ----
    v.push_back({"unsubscribe_user_property", v5,
                 b({0xA2, 0x1B}) +                  // UNSUBSCRIBE, Remaining Length 27
                     b({0x00, 0x12}) +              // Packet Identifier 18
                     b({0x07}) +                    // Property Length 7
                     b({0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v'}) +  // User Property k=v
                     b({0x00, 0x03}) + "a/+" +      // Topic Filter
                     b({0x00, 0x0A}) + "$share/g/c",  // Topic Filter
                 unsubscribe_packet{.packet_id = 18, .filters = {"a/+", "$share/g/c"},
                                    .props = {.user_properties = {{"k", "v"}}}}});
    v.push_back({"unsubscribe_no_properties", v5,
                 b({0xA2, 0x06}) +           // UNSUBSCRIBE, Remaining Length 6
                     b({0x00, 0x13}) +       // Packet Identifier 19
                     b({0x00}) +             // Property Length 0
                     b({0x00, 0x01}) + "#",  // Topic Filter
                 unsubscribe_packet{.packet_id = 19, .filters = {"#"}}});
    v.push_back({"unsuback_every_code", v5,
                 b({0xB0, 0x0A,     // UNSUBACK, Remaining Length 10
                    0x00, 0x12,     // Packet Identifier 18
                    0x00,           // Property Length 0
                    0x00,           // Success
                    0x11,           // No subscription existed
                    0x80,           // Unspecified error
                    0x83,           // Implementation specific error
                    0x87,           // Not authorized
                    0x8F,           // Topic Filter invalid
                    0x91}),         // Packet Identifier in use
                 unsuback_packet{.packet_id = 18,
                                 .codes = {reason_code::success,
                                           reason_code::no_subscription_existed,
                                           reason_code::unspecified_error,
                                           reason_code::implementation_specific_error,
                                           reason_code::not_authorized,
                                           reason_code::topic_filter_invalid,
                                           reason_code::packet_identifier_in_use}}});
    v.push_back({"unsuback_reason_string", v5,
                 b({0xB0, 0x0A,     // UNSUBACK, Remaining Length 10
                    0x00, 0x13,     // Packet Identifier 19
                    0x06}) +        // Property Length 6
                     b({0x1F, 0x00, 0x03}) + "bad" +  // Reason String
                     b({0x8F}),                       // Topic Filter invalid
                 unsuback_packet{.packet_id = 19, .codes = {reason_code::topic_filter_invalid},
                                 .props = {.reason_string = "bad"}}});

    // ---- PINGREQ (3.12), PINGRESP (3.13) ----
    v.push_back({"pingreq", v5, b({0xC0, 0x00}), pingreq_packet{}});
    v.push_back({"pingresp", v5, b({0xD0, 0x00}), pingresp_packet{}});

    // ---- DISCONNECT (3.14): Reason Code and Property Length may each be left off ----
    v.push_back({"disconnect_normal_short", v5,
                 b({0xE0, 0x00}),  // DISCONNECT, Remaining Length 0: Normal disconnection
                 disconnect_packet{}});
    v.push_back({"disconnect_normal_with_reason_code", v5,
                 b({0xE0, 0x01,    // DISCONNECT, Remaining Length 1
                    0x00}),        // Reason Code Normal disconnection
                 disconnect_packet{}, b({0xE0, 0x00})});
    v.push_back({"disconnect_normal_with_empty_properties", v5,
                 b({0xE0, 0x02,    // DISCONNECT, Remaining Length 2
                    0x00,          // Reason Code Normal disconnection
                    0x00}),        // Property Length 0
                 disconnect_packet{}, b({0xE0, 0x00})});
    v.push_back({"disconnect_with_will_message", v5,
                 b({0xE0, 0x01,    // DISCONNECT, Remaining Length 1
                    0x04}),        // Reason Code Disconnect with Will Message
                 disconnect_packet{.code = reason_code::disconnect_with_will_message}});
    v.push_back({"disconnect_with_will_message_empty_properties", v5,
                 b({0xE0, 0x02,    // DISCONNECT, Remaining Length 2
                    0x04,          // Reason Code Disconnect with Will Message
                    0x00}),        // Property Length 0
                 disconnect_packet{.code = reason_code::disconnect_with_will_message},
                 b({0xE0, 0x01, 0x04})});
    v.push_back({"disconnect_session_expiry", v5,
                 b({0xE0, 0x07,    // DISCONNECT, Remaining Length 7
                    0x00,          // Reason Code Normal disconnection
                    0x05,          // Property Length 5
                    0x11, 0x00, 0x01, 0x51, 0x80}),  // Session Expiry Interval 86400
                 disconnect_packet{.props = {.session_expiry_interval = 86400}}});
    v.push_back({"disconnect_use_another_server", v5,
                 b({0xE0, 0x1A,    // DISCONNECT, Remaining Length 26
                    0x9C,          // Reason Code Use another server
                    0x18}) +       // Property Length 24
                     b({0x1C, 0x00, 0x09}) + "b.example" +  // Server Reference
                     b({0x1F, 0x00, 0x09}) + "rebalance",   // Reason String
                 disconnect_packet{.code = reason_code::use_another_server,
                                   .props = {.server_reference = "b.example",
                                             .reason_string = "rebalance"}}});
    v.push_back({"disconnect_shutting_down_user_property", v5,
                 b({0xE0, 0x0A,    // DISCONNECT, Remaining Length 10
                    0x8B,          // Reason Code Server shutting down
                    0x08}) +       // Property Length 8
                     b({0x26, 0x00, 0x01}) + "n" + b({0x00, 0x02}) + "n1",  // User Property
                 disconnect_packet{.code = reason_code::server_shutting_down,
                                   .props = {.user_properties = {{"n", "n1"}}}}});
    v.push_back({"disconnect_session_taken_over", v5,
                 b({0xE0, 0x01,    // DISCONNECT, Remaining Length 1
                    0x8E}),        // Reason Code Session taken over
                 disconnect_packet{.code = reason_code::session_taken_over}});

    // ---- AUTH (3.15): empty only for Success without properties ----
    v.push_back({"auth_success_empty", v5,
                 b({0xF0, 0x00}),  // AUTH, Remaining Length 0: Success
                 auth_packet{}});
    v.push_back({"auth_success_with_empty_properties", v5,
                 b({0xF0, 0x02,    // AUTH, Remaining Length 2
                    0x00,          // Reason Code Success
                    0x00}),        // Property Length 0
                 auth_packet{}, b({0xF0, 0x00})});
    v.push_back({"auth_continue_authentication", v5,
                 b({0xF0, 0x1F,    // AUTH, Remaining Length 31
                    0x18,          // Reason Code Continue authentication
                    0x1D}) +       // Property Length 29
                     b({0x15, 0x00, 0x0B}) + "SCRAM-SHA-1" +   // Authentication Method
                     b({0x16, 0x00, 0x0C}) + "c=biws,r=abc",  // Authentication Data
                 auth_packet{.code = reason_code::continue_authentication,
                             .props = {.authentication_method = "SCRAM-SHA-1",
                                       .authentication_data = "c=biws,r=abc"}}});
    v.push_back({"auth_re_authenticate_reason_string", v5,
                 b({0xF0, 0x18,    // AUTH, Remaining Length 24
                    0x19,          // Reason Code Re-authenticate
                    0x16}) +       // Property Length 22
                     b({0x15, 0x00, 0x0B}) + "SCRAM-SHA-1" +  // Authentication Method
                     b({0x1F, 0x00, 0x05}) + "again",         // Reason String
                 auth_packet{.code = reason_code::re_authenticate,
                             .props = {.authentication_method = "SCRAM-SHA-1",
                                       .reason_string = "again"}}});
    // Unlike DISCONNECT, AUTH has no rule that lets the Property Length go without the
    // whole variable header (3.15.2.2.1): a reason code other than Success brings it.
    v.push_back({"auth_continue_without_properties", v5,
                 b({0xF0, 0x02,    // AUTH, Remaining Length 2
                    0x18,          // Reason Code Continue authentication
                    0x00}),        // Property Length 0
                 auth_packet{.code = reason_code::continue_authentication}});
    return v;
  }();
  return all;
}

namespace {

class V5Vectors : public ::testing::TestWithParam<wire_vector> {};

TEST_P(V5Vectors, DecodesAndEncodesExactly) { check_vector(GetParam()); }

INSTANTIATE_TEST_SUITE_P(V5, V5Vectors, ::testing::ValuesIn(v5_vectors()),
                         [](const auto& info) { return info.param.name; });

TEST(V5VectorList, CoversEveryPacketType) {
  std::set<packet_type> seen;
  for (const auto& v : v5_vectors()) seen.insert(type_of(v.expected));
  EXPECT_EQ(seen.size(), 15u);
}

// ---- Every property appears in some vector, and only where section 2.2.2.2 allows ----

using seen_properties = std::set<std::pair<property_id, property_context>>;

void collect(const properties& p, property_context c, seen_properties& out) {
  auto add = [&](property_id id, bool present) {
    if (present) out.insert({id, c});
  };
  add(property_id::payload_format_indicator, p.payload_format_indicator.has_value());
  add(property_id::message_expiry_interval, p.message_expiry_interval.has_value());
  add(property_id::content_type, p.content_type.has_value());
  add(property_id::response_topic, p.response_topic.has_value());
  add(property_id::correlation_data, p.correlation_data.has_value());
  add(property_id::subscription_identifier, !p.subscription_identifiers.empty());
  add(property_id::session_expiry_interval, p.session_expiry_interval.has_value());
  add(property_id::assigned_client_identifier, p.assigned_client_identifier.has_value());
  add(property_id::server_keep_alive, p.server_keep_alive.has_value());
  add(property_id::authentication_method, p.authentication_method.has_value());
  add(property_id::authentication_data, p.authentication_data.has_value());
  add(property_id::request_problem_information, p.request_problem_information.has_value());
  add(property_id::will_delay_interval, p.will_delay_interval.has_value());
  add(property_id::request_response_information, p.request_response_information.has_value());
  add(property_id::response_information, p.response_information.has_value());
  add(property_id::server_reference, p.server_reference.has_value());
  add(property_id::reason_string, p.reason_string.has_value());
  add(property_id::receive_maximum, p.receive_maximum.has_value());
  add(property_id::topic_alias_maximum, p.topic_alias_maximum.has_value());
  add(property_id::topic_alias, p.topic_alias.has_value());
  add(property_id::maximum_qos, p.maximum_qos.has_value());
  add(property_id::retain_available, p.retain_available.has_value());
  add(property_id::user_property, !p.user_properties.empty());
  add(property_id::maximum_packet_size, p.maximum_packet_size.has_value());
  add(property_id::wildcard_subscription_available,
      p.wildcard_subscription_available.has_value());
  add(property_id::subscription_identifier_available,
      p.subscription_identifier_available.has_value());
  add(property_id::shared_subscription_available, p.shared_subscription_available.has_value());
}

property_context context_of(const packet& p) {
  switch (type_of(p)) {
    case packet_type::connect: return property_context::connect;
    case packet_type::connack: return property_context::connack;
    case packet_type::publish: return property_context::publish;
    case packet_type::puback: return property_context::puback;
    case packet_type::pubrec: return property_context::pubrec;
    case packet_type::pubrel: return property_context::pubrel;
    case packet_type::pubcomp: return property_context::pubcomp;
    case packet_type::subscribe: return property_context::subscribe;
    case packet_type::suback: return property_context::suback;
    case packet_type::unsubscribe: return property_context::unsubscribe;
    case packet_type::unsuback: return property_context::unsuback;
    case packet_type::disconnect: return property_context::disconnect;
    case packet_type::auth: return property_context::auth;
    default: return property_context::connect;  // PINGREQ, PINGRESP: no properties
  }
}

TEST(V5VectorList, EveryPropertyAppearsWhereItIsAllowed) {
  seen_properties seen;
  for (const auto& v : v5_vectors()) {
    std::visit(
        [&](const auto& p) {
          if constexpr (requires { p.props; }) collect(p.props, context_of(v.expected), seen);
          if constexpr (requires { p.will; }) {
            if (p.will) collect(p.will->props, property_context::will, seen);
          }
        },
        v.expected);
  }
  std::set<property_id> ids;
  for (const auto& [id, context] : seen) {
    ids.insert(id);
    EXPECT_TRUE(property_allowed(id, context))
        << to_string(id) << " in context " << static_cast<int>(context);
  }
  // The 27 properties of MQTT 5.0 (section 2.2.2.2).
  const std::set<property_id> all = {
      property_id::payload_format_indicator,
      property_id::message_expiry_interval,
      property_id::content_type,
      property_id::response_topic,
      property_id::correlation_data,
      property_id::subscription_identifier,
      property_id::session_expiry_interval,
      property_id::assigned_client_identifier,
      property_id::server_keep_alive,
      property_id::authentication_method,
      property_id::authentication_data,
      property_id::request_problem_information,
      property_id::will_delay_interval,
      property_id::request_response_information,
      property_id::response_information,
      property_id::server_reference,
      property_id::reason_string,
      property_id::receive_maximum,
      property_id::topic_alias_maximum,
      property_id::topic_alias,
      property_id::maximum_qos,
      property_id::retain_available,
      property_id::user_property,
      property_id::maximum_packet_size,
      property_id::wildcard_subscription_available,
      property_id::subscription_identifier_available,
      property_id::shared_subscription_available,
  };
  for (auto id : all) EXPECT_TRUE(ids.count(id)) << to_string(id) << " has no vector";
  EXPECT_EQ(ids.size(), all.size());
}

// The same bytes mean different things by version: the decoder must follow the one
// it is given rather than guess.
TEST(V5Codec, AcknowledgementWithReasonCodeIsOnly5) {
  const auto bytes = b({0x40, 0x03, 0x00, 0x0A, 0x10});
  auto v5 = decode_packet(bytes, protocol_version::v5);
  ASSERT_TRUE(v5);
  EXPECT_TRUE((*v5 == packet{puback_packet{.packet_id = 10,
                                          .code = reason_code::no_matching_subscribers}}));
  auto v311 = decode_packet(bytes, protocol_version::v3_1_1);
  ASSERT_FALSE(v311);
  EXPECT_EQ(v311.error().code, reason_code::malformed_packet);
}

TEST(V5Codec, PublishPropertyLengthIsOnly5) {
  // In 3.1.1 the byte after the Topic Name is payload; in 5.0 it is the Property Length.
  const auto bytes = b({0x30, 0x05, 0x00, 0x01, 'a', 0x00, 'x'});
  auto v5 = decode_packet(bytes, protocol_version::v5);
  ASSERT_TRUE(v5);
  EXPECT_TRUE((*v5 == packet{publish_packet{.topic = "a", .payload = "x"}}));
  auto v311 = decode_packet(bytes, protocol_version::v3_1_1);
  ASSERT_TRUE(v311);
  EXPECT_TRUE((*v311 == packet{publish_packet{.topic = "a", .payload = b({0x00, 'x'})}}));
}

TEST(V5Codec, EncodeAppendsToTheBuffer) {
  std::string out = b({0xC0, 0x00});
  encode(disconnect_packet{.code = reason_code::server_busy}, protocol_version::v5, out);
  EXPECT_EQ(out, b({0xC0, 0x00, 0xE0, 0x01, 0x89}));
}

// A property block longer than 127 bytes needs a two-byte Property Length.
TEST(V5Codec, TwoBytePropertyLength) {
  const std::string reason(150, 'r');
  const auto bytes = b({0x40, 0x9E, 0x01,  // PUBACK, Remaining Length 158 = 0x1E + 128
                        0x00, 0x01,        // Packet Identifier 1
                        0x80,              // Reason Code Unspecified error
                        0x99, 0x01,        // Property Length 153 = 0x19 + 128
                        0x1F, 0x00, 0x96}) +  // Reason String, 150 bytes
                     reason;
  const packet expected = puback_packet{
      .packet_id = 1, .code = reason_code::unspecified_error, .props = {.reason_string = reason}};
  check_vector({"puback_two_byte_property_length", protocol_version::v5, bytes, expected});
}

// ---- Round trips: struct -> encode -> decode == struct ----

TEST(V5RoundTrip, EveryValidAcknowledgementCode) {
  constexpr auto v = protocol_version::v5;
  for (std::uint8_t c : {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99}) {
    const auto code = static_cast<reason_code>(c);
    check_round_trip(puback_packet{.packet_id = 1, .code = code}, v);
    check_round_trip(pubrec_packet{.packet_id = 2, .code = code,
                                   .props = {.reason_string = "why"}}, v);
  }
  for (std::uint8_t c : {0x00, 0x92}) {
    const auto code = static_cast<reason_code>(c);
    check_round_trip(pubrel_packet{.packet_id = 3, .code = code}, v);
    check_round_trip(pubcomp_packet{.packet_id = 4, .code = code,
                                    .props = {.user_properties = {{"a", ""}}}}, v);
  }
}

TEST(V5RoundTrip, EveryDisconnectCode) {
  // Table 3.14.2.1: the codes a DISCONNECT may carry.
  for (std::uint8_t c : {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E,
                         0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B,
                         0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2}) {
    const auto code = static_cast<reason_code>(c);
    check_round_trip(disconnect_packet{.code = code}, protocol_version::v5);
    check_round_trip(disconnect_packet{.code = code, .props = {.reason_string = "r"}},
                     protocol_version::v5);
  }
}

TEST(V5RoundTrip, EveryConnackCode) {
  // Section 3.2.2.2: the codes a CONNACK may carry.
  for (std::uint8_t c : {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
                         0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F}) {
    check_round_trip(connack_packet{.code = static_cast<reason_code>(c)}, protocol_version::v5);
  }
}

TEST(V5RoundTrip, EverySubscriptionOption) {
  subscribe_packet sub{.packet_id = 77, .props = {.subscription_identifiers = {16'384}}};
  for (int q = 0; q <= 2; ++q) {
    for (bool no_local : {false, true}) {
      for (bool rap : {false, true}) {
        for (std::uint8_t rh = 0; rh <= 2; ++rh) {
          sub.subscriptions.push_back({"t/" + std::to_string(sub.subscriptions.size()),
                                       {.max_qos = static_cast<qos>(q),
                                        .no_local = no_local,
                                        .retain_as_published = rap,
                                        .retain_handling = rh}});
        }
      }
    }
  }
  ASSERT_EQ(sub.subscriptions.size(), 36u);
  check_round_trip(sub, protocol_version::v5);
}

TEST(V5RoundTrip, VariousPackets) {
  constexpr auto v = protocol_version::v5;
  std::vector<packet> packets;
  packets.push_back(connect_packet{.version = v, .client_id = "rt"});
  packets.push_back(connect_packet{
      .version = v,
      .clean_start = false,
      .keep_alive = 65535,
      .client_id = "rt",
      .will = will_message{.topic = "w",
                           .payload = pattern(300),
                           .qos = qos::at_least_once,
                           .retain = true,
                           .props = {.payload_format_indicator = 0,
                                     .message_expiry_interval = 0xFFFFFFFF,
                                     .will_delay_interval = 0}},
      .password = pattern(10),
      .props = {.session_expiry_interval = 0xFFFFFFFF,
                .authentication_method = "m",
                .receive_maximum = 65535,
                .topic_alias_maximum = 0,
                .user_properties = {{"", ""}, {"k", std::string(200, 'v')}},
                .maximum_packet_size = 268'435'460}});
  packets.push_back(connack_packet{
      .session_present = true,
      .props = {.session_expiry_interval = 0, .server_keep_alive = 0, .maximum_qos = 0,
                .retain_available = 1}});
  for (int q = 0; q <= 2; ++q) {
    packets.push_back(publish_packet{
        .topic = "p/" + std::to_string(q),
        .payload = pattern(q * 1000),
        .qos = static_cast<qos>(q),
        .retain = q == 1,
        .dup = q == 2,
        .packet_id = static_cast<std::uint16_t>(q == 0 ? 0 : 65535),
        .props = {.payload_format_indicator = 0,
                  .subscription_identifiers = {1, 127, 128, 16383, 16384, 2'097'151, 2'097'152},
                  .topic_alias = 65535}});
  }
  packets.push_back(publish_packet{.topic = "", .props = {.topic_alias = 1}});
  packets.push_back(suback_packet{.packet_id = 1,
                                  .codes = std::vector(300, reason_code::granted_qos_1),
                                  .props = {.user_properties = {{"x", "y"}}}});
  packets.push_back(unsubscribe_packet{.packet_id = 2, .filters = {"a", "b"}});
  packets.push_back(unsuback_packet{.packet_id = 2,
                                    .codes = {reason_code::no_subscription_existed},
                                    .props = {.reason_string = std::string(1000, 'r')}});
  packets.push_back(pingreq_packet{});
  packets.push_back(pingresp_packet{});
  packets.push_back(auth_packet{.code = reason_code::continue_authentication,
                                .props = {.authentication_method = "m",
                                          .authentication_data = b({0x00, 0xFF})}});
  packets.push_back(auth_packet{.code = reason_code::re_authenticate});
  for (const auto& p : packets) check_round_trip(p, v);
}

}  // namespace
}  // namespace ringmq::codec::vectors
