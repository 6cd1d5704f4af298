#pragma once
// MQTT 5.0 reason codes (section 2.4). One enum is both the wire value and the error:
// the decoder, the protocol engine and the logs all speak in these values.

#include <cstdint>
#include <string_view>
#include <system_error>

namespace ringmq::codec {

enum class reason_code : std::uint8_t {
  success = 0x00,  // also: normal disconnection, granted QoS 0
  granted_qos_1 = 0x01,
  granted_qos_2 = 0x02,
  disconnect_with_will_message = 0x04,
  no_matching_subscribers = 0x10,
  no_subscription_existed = 0x11,
  continue_authentication = 0x18,
  re_authenticate = 0x19,
  unspecified_error = 0x80,
  malformed_packet = 0x81,
  protocol_error = 0x82,
  implementation_specific_error = 0x83,
  unsupported_protocol_version = 0x84,
  client_identifier_not_valid = 0x85,
  bad_user_name_or_password = 0x86,
  not_authorized = 0x87,
  server_unavailable = 0x88,
  server_busy = 0x89,
  banned = 0x8A,
  server_shutting_down = 0x8B,
  bad_authentication_method = 0x8C,
  keep_alive_timeout = 0x8D,
  session_taken_over = 0x8E,
  topic_filter_invalid = 0x8F,
  topic_name_invalid = 0x90,
  packet_identifier_in_use = 0x91,
  packet_identifier_not_found = 0x92,
  receive_maximum_exceeded = 0x93,
  topic_alias_invalid = 0x94,
  packet_too_large = 0x95,
  message_rate_too_high = 0x96,
  quota_exceeded = 0x97,
  administrative_action = 0x98,
  payload_format_invalid = 0x99,
  retain_not_supported = 0x9A,
  qos_not_supported = 0x9B,
  use_another_server = 0x9C,
  server_moved = 0x9D,
  shared_subscriptions_not_supported = 0x9E,
  connection_rate_exceeded = 0x9F,
  maximum_connect_time = 0xA0,
  subscription_identifiers_not_supported = 0xA1,
  wildcard_subscriptions_not_supported = 0xA2,
};

// The name the specification gives the code, e.g. "Malformed Packet".
std::string_view to_string(reason_code code) noexcept;

// True for every code below 0x80 (the specification's "success" range).
constexpr bool is_success(reason_code code) noexcept {
  return static_cast<std::uint8_t>(code) < 0x80;
}

// True when `value` is a reason code defined by MQTT 5.0.
bool is_known_reason_code(std::uint8_t value) noexcept;

// std::error_code integration, so I/O layers can carry a reason code as an error.
const std::error_category& mqtt_category() noexcept;
inline std::error_code make_error_code(reason_code code) noexcept {
  return {static_cast<int>(code), mqtt_category()};
}

// MQTT 3.1 / 3.1.1 CONNACK return codes (section 3.2.2.3 of 3.1.1).
enum class connack_return_code : std::uint8_t {
  accepted = 0,
  unacceptable_protocol_version = 1,
  identifier_rejected = 2,
  server_unavailable = 3,
  bad_user_name_or_password = 4,
  not_authorized = 5,
};

// Maps a reason code to the closest 3.1.1 return code, and back.
connack_return_code to_connack_return_code(reason_code code) noexcept;
reason_code from_connack_return_code(connack_return_code code) noexcept;

}  // namespace ringmq::codec

template <>
struct std::is_error_code_enum<ringmq::codec::reason_code> : std::true_type {};
