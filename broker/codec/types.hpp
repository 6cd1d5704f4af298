#pragma once
// Small vocabulary types shared by every MQTT packet.

#include <cstdint>
#include <string_view>

namespace ringmq::codec {

// The protocol level byte of CONNECT: 3 = MQTT 3.1, 4 = MQTT 3.1.1, 5 = MQTT 5.0.
enum class protocol_version : std::uint8_t { v3_1 = 3, v3_1_1 = 4, v5 = 5 };

enum class qos : std::uint8_t { at_most_once = 0, at_least_once = 1, exactly_once = 2 };

enum class packet_type : std::uint8_t {
  connect = 1,
  connack = 2,
  publish = 3,
  puback = 4,
  pubrec = 5,
  pubrel = 6,
  pubcomp = 7,
  subscribe = 8,
  suback = 9,
  unsubscribe = 10,
  unsuback = 11,
  pingreq = 12,
  pingresp = 13,
  disconnect = 14,
  auth = 15,
};

std::string_view to_string(packet_type type) noexcept;
std::string_view to_string(protocol_version version) noexcept;

constexpr bool is_v5(protocol_version v) noexcept { return v == protocol_version::v5; }

// The largest Remaining Length four Variable Byte Integer bytes can express.
inline constexpr std::uint32_t max_remaining_length = 268'435'455;

}  // namespace ringmq::codec
