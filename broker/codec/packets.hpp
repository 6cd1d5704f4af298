#pragma once
// Every MQTT control packet of 3.1, 3.1.1 and 5.0 as a plain value type.
// The same structs serve all versions: fields a version lacks (properties,
// reason codes) are simply left at their defaults and not put on the wire.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "broker/codec/properties.hpp"
#include "broker/codec/reason_code.hpp"
#include "broker/codec/types.hpp"

namespace ringmq::codec {

struct will_message {
  std::string topic;
  std::string payload;
  codec::qos qos = qos::at_most_once;
  bool retain = false;
  properties props;  // Will Properties (5.0 only)

  friend bool operator==(const will_message&, const will_message&) = default;
};

struct connect_packet {
  protocol_version version = protocol_version::v3_1_1;
  bool clean_start = true;  // "Clean Session" before 5.0
  std::uint16_t keep_alive = 0;
  std::string client_id;
  std::optional<will_message> will;
  std::optional<std::string> username;
  std::optional<std::string> password;  // binary data
  properties props;

  friend bool operator==(const connect_packet&, const connect_packet&) = default;
};

// Before 5.0 the code is a CONNACK return code; the encoder maps reason codes
// to the closest one and the decoder maps them back.
struct connack_packet {
  bool session_present = false;
  reason_code code = reason_code::success;
  properties props;

  friend bool operator==(const connack_packet&, const connack_packet&) = default;
};

struct publish_packet {
  std::string topic;
  std::string payload;
  codec::qos qos = qos::at_most_once;
  bool retain = false;
  bool dup = false;
  std::uint16_t packet_id = 0;  // only for QoS 1 and 2
  properties props;

  friend bool operator==(const publish_packet&, const publish_packet&) = default;
};

// PUBACK, PUBREC, PUBREL and PUBCOMP share one layout.
template <packet_type Type>
struct publish_response {
  static constexpr packet_type type = Type;
  std::uint16_t packet_id = 0;
  reason_code code = reason_code::success;
  properties props;

  friend bool operator==(const publish_response&, const publish_response&) = default;
};
using puback_packet = publish_response<packet_type::puback>;
using pubrec_packet = publish_response<packet_type::pubrec>;
using pubrel_packet = publish_response<packet_type::pubrel>;
using pubcomp_packet = publish_response<packet_type::pubcomp>;

struct subscribe_options {
  codec::qos max_qos = qos::at_most_once;
  bool no_local = false;             // 5.0
  bool retain_as_published = false;  // 5.0
  std::uint8_t retain_handling = 0;  // 5.0: 0 send, 1 send if new, 2 never

  friend bool operator==(const subscribe_options&, const subscribe_options&) = default;
};

struct subscription {
  std::string filter;
  subscribe_options options;

  friend bool operator==(const subscription&, const subscription&) = default;
};

struct subscribe_packet {
  std::uint16_t packet_id = 0;
  std::vector<subscription> subscriptions;
  properties props;

  friend bool operator==(const subscribe_packet&, const subscribe_packet&) = default;
};

// Before 5.0 the codes are 0, 1, 2 (granted QoS) or 0x80 (failure).
struct suback_packet {
  std::uint16_t packet_id = 0;
  std::vector<reason_code> codes;
  properties props;

  friend bool operator==(const suback_packet&, const suback_packet&) = default;
};

struct unsubscribe_packet {
  std::uint16_t packet_id = 0;
  std::vector<std::string> filters;
  properties props;

  friend bool operator==(const unsubscribe_packet&, const unsubscribe_packet&) = default;
};

// Before 5.0 UNSUBACK carries no codes.
struct unsuback_packet {
  std::uint16_t packet_id = 0;
  std::vector<reason_code> codes;
  properties props;

  friend bool operator==(const unsuback_packet&, const unsuback_packet&) = default;
};

struct pingreq_packet {
  friend bool operator==(const pingreq_packet&, const pingreq_packet&) = default;
};
struct pingresp_packet {
  friend bool operator==(const pingresp_packet&, const pingresp_packet&) = default;
};

struct disconnect_packet {
  reason_code code = reason_code::success;
  properties props;

  friend bool operator==(const disconnect_packet&, const disconnect_packet&) = default;
};

// 5.0 only.
struct auth_packet {
  reason_code code = reason_code::success;
  properties props;

  friend bool operator==(const auth_packet&, const auth_packet&) = default;
};

using packet = std::variant<connect_packet, connack_packet, publish_packet, puback_packet,
                            pubrec_packet, pubrel_packet, pubcomp_packet, subscribe_packet,
                            suback_packet, unsubscribe_packet, unsuback_packet, pingreq_packet,
                            pingresp_packet, disconnect_packet, auth_packet>;

// The variant's alternatives are in packet-type order, so the index is the type minus one.
inline packet_type type_of(const packet& p) noexcept {
  return static_cast<packet_type>(p.index() + 1);
}

}  // namespace ringmq::codec
