#pragma once
// Packets to bytes, exactly as the specification lays them out. Where the
// specification allows a shorter form (5.0 acknowledgements and DISCONNECT with
// reason code Success and no properties) the shortest form is written.

#include <cstddef>
#include <string>

#include "broker/codec/packets.hpp"

namespace ringmq::codec {

// The size of the whole encoded packet, fixed header included, without encoding it.
std::size_t encoded_size(const packet& p, protocol_version version);

// Appends the encoded packet to `out` (a byte buffer).
void encode(const packet& p, protocol_version version, std::string& out);

// Convenience: the encoded packet as a new buffer.
std::string encode(const packet& p, protocol_version version);

}  // namespace ringmq::codec
