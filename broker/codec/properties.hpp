#pragma once
// MQTT 5.0 properties (section 2.2.2), typed. One struct holds every property;
// which ones a packet may carry is checked against a table when decoding, so a
// property in the wrong packet is reported as Malformed Packet (section 2.2.2.2).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/codec/error.hpp"

namespace ringmq::codec {

enum class property_id : std::uint8_t {
  payload_format_indicator = 0x01,
  message_expiry_interval = 0x02,
  content_type = 0x03,
  response_topic = 0x08,
  correlation_data = 0x09,
  subscription_identifier = 0x0B,
  session_expiry_interval = 0x11,
  assigned_client_identifier = 0x12,
  server_keep_alive = 0x13,
  authentication_method = 0x15,
  authentication_data = 0x16,
  request_problem_information = 0x17,
  will_delay_interval = 0x18,
  request_response_information = 0x19,
  response_information = 0x1A,
  server_reference = 0x1C,
  reason_string = 0x1F,
  receive_maximum = 0x21,
  topic_alias_maximum = 0x22,
  topic_alias = 0x23,
  maximum_qos = 0x24,
  retain_available = 0x25,
  user_property = 0x26,
  maximum_packet_size = 0x27,
  wildcard_subscription_available = 0x28,
  subscription_identifier_available = 0x29,
  shared_subscription_available = 0x2A,
};

// Where a property block appears: a packet type, or the Will Properties of CONNECT.
enum class property_context : std::uint8_t {
  connect,
  connack,
  publish,
  will,
  puback,
  pubrec,
  pubrel,
  pubcomp,
  subscribe,
  suback,
  unsubscribe,
  unsuback,
  disconnect,
  auth,
};

struct user_property {
  std::string name;
  std::string value;
  friend bool operator==(const user_property&, const user_property&) = default;
};

struct properties {
  std::optional<std::uint8_t> payload_format_indicator;
  std::optional<std::uint32_t> message_expiry_interval;
  std::optional<std::string> content_type;
  std::optional<std::string> response_topic;
  std::optional<std::string> correlation_data;
  std::vector<std::uint32_t> subscription_identifiers;  // several only in server-sent PUBLISH
  std::optional<std::uint32_t> session_expiry_interval;
  std::optional<std::string> assigned_client_identifier;
  std::optional<std::uint16_t> server_keep_alive;
  std::optional<std::string> authentication_method;
  std::optional<std::string> authentication_data;
  std::optional<std::uint8_t> request_problem_information;
  std::optional<std::uint32_t> will_delay_interval;
  std::optional<std::uint8_t> request_response_information;
  std::optional<std::string> response_information;
  std::optional<std::string> server_reference;
  std::optional<std::string> reason_string;
  std::optional<std::uint16_t> receive_maximum;
  std::optional<std::uint16_t> topic_alias_maximum;
  std::optional<std::uint16_t> topic_alias;
  std::optional<std::uint8_t> maximum_qos;
  std::optional<std::uint8_t> retain_available;
  std::vector<user_property> user_properties;
  std::optional<std::uint32_t> maximum_packet_size;
  std::optional<std::uint8_t> wildcard_subscription_available;
  std::optional<std::uint8_t> subscription_identifier_available;
  std::optional<std::uint8_t> shared_subscription_available;

  bool empty() const noexcept;
  friend bool operator==(const properties&, const properties&) = default;
};

// True when the property may appear in that context (the table of section 2.2.2.2).
bool property_allowed(property_id id, property_context context) noexcept;

std::string_view to_string(property_id id) noexcept;

// Size of the encoded properties without the Property Length prefix.
std::size_t properties_body_size(const properties& props) noexcept;

namespace wire {
class reader;
}

// Decodes a property block (Property Length, then the properties) from `in`.
codec_result<properties> decode_properties(wire::reader& in, property_context context);

// Appends Property Length followed by the properties, in ascending identifier order.
void encode_properties(const properties& props, std::string& out);

// Returns a copy of `props` keeping only what `context` allows; used before
// forwarding properties received in one packet type into another.
properties filter_properties(const properties& props, property_context context);

}  // namespace ringmq::codec
