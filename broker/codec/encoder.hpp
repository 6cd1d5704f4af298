#pragma once
// Packets to bytes, exactly as the specification lays them out. Where the
// specification allows a shorter form (5.0 acknowledgements and DISCONNECT with
// reason code Success and no properties) the shortest form is written.

#include <cstddef>
#include <string>

#include "broker/codec/packets.hpp"

namespace ringmq::codec {

// A PUBLISH whose topic, payload and properties live elsewhere (the broker's
// shared message): encoding it copies the payload once, straight to the wire buffer.
struct publish_view {
  std::string_view topic;
  std::string_view payload;
  codec::qos qos = qos::at_most_once;
  bool retain = false;
  bool dup = false;
  std::uint16_t packet_id = 0;
  const properties* props = nullptr;  // 5.0 only; null = none
};

std::size_t encoded_size(const publish_view& p, protocol_version version);
void encode(const publish_view& p, protocol_version version, std::string& out);

// The size of the whole encoded packet, fixed header included, without encoding it.
std::size_t encoded_size(const packet& p, protocol_version version);

// Appends the encoded packet to `out` (a byte buffer).
void encode(const packet& p, protocol_version version, std::string& out);

// Convenience: the encoded packet as a new buffer.
std::string encode(const packet& p, protocol_version version);

}  // namespace ringmq::codec
