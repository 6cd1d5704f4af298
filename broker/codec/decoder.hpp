#pragma once
// Turning bytes into packets. Two levels:
//  - decode_packet(): one complete packet (fixed header included) -> packet or error;
//  - stream_decoder: an incremental frame decoder for a byte stream that may
//    arrive one byte at a time or many packets at once. It enforces the
//    maximum packet size as soon as the fixed header is known, before the body
//    is buffered, so an oversized packet never costs its size in memory.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "broker/codec/error.hpp"
#include "broker/codec/packets.hpp"

namespace ringmq::codec {

struct fixed_header {
  std::uint8_t first_byte = 0;  // packet type (high nibble) and flags (low nibble)
  std::uint32_t remaining_length = 0;
  std::uint8_t size = 0;  // bytes taken by the fixed header itself: 2..5

  packet_type type() const noexcept { return static_cast<packet_type>(first_byte >> 4); }
  std::uint8_t flags() const noexcept { return first_byte & 0x0F; }
  std::size_t packet_size() const noexcept { return size + std::size_t{remaining_length}; }
};

// Parses a fixed header from the start of `bytes`. Returns nullopt when more
// bytes are needed; Malformed Packet when the Remaining Length takes more than
// four bytes.
codec_result<std::optional<fixed_header>> parse_fixed_header(std::string_view bytes) noexcept;

// Decodes the body of a packet whose fixed header is known. `version` is the
// connection's protocol version; for CONNECT the version is read from the packet.
codec_result<packet> decode_body(const fixed_header& header, std::string_view body,
                                 protocol_version version);

// Decodes exactly one whole packet; trailing bytes are Malformed Packet.
codec_result<packet> decode_packet(std::string_view bytes, protocol_version version);

// The protocol level found in a CONNECT packet body, when it is readable.
// Used to answer a broken CONNECT in the client's own protocol version.
std::optional<protocol_version> peek_connect_version(std::string_view body) noexcept;

class stream_decoder {
 public:
  // `max_packet_size` counts the whole packet, fixed header included, as
  // MQTT 5.0's Maximum Packet Size does.
  explicit stream_decoder(std::uint32_t max_packet_size = max_remaining_length + 5);

  // Before CONNECT the version is unknown; a decoded CONNECT sets it (servers).
  // Clients set it themselves.
  void set_version(protocol_version version) noexcept { version_ = version; }
  protocol_version version() const noexcept { return version_; }
  bool version_known() const noexcept { return version_known_; }

  // Servers: until a CONNECT has been decoded, any other packet type fails as
  // soon as its first byte arrives [MQTT-3.1.0-1], instead of after the body
  // it announces, which garbage may never complete.
  void expect_connect_first() noexcept { connect_first_ = true; }

  void set_max_packet_size(std::uint32_t size) noexcept { max_packet_size_ = size; }
  std::uint32_t max_packet_size() const noexcept { return max_packet_size_; }

  // Zero-copy filling: read into prepare(n), then commit() the bytes read.
  std::span<char> prepare(std::size_t size);
  void commit(std::size_t size) noexcept { end_ += size; }
  // Copying alternative to prepare/commit.
  void feed(std::string_view bytes);

  // The next complete packet, nullopt when more bytes are needed, or the error
  // that makes the rest of the stream undecodable. After an error the decoder
  // stays failed: the connection must be closed.
  codec_result<std::optional<packet>> next();

  // Bytes received but not yet decoded.
  std::size_t buffered() const noexcept { return end_ - begin_; }
  // Memory held by the buffer (for limits and metrics).
  std::size_t capacity() const noexcept { return capacity_; }
  // Gives the buffer's memory back when it is idle and larger than `keep`.
  void shrink(std::size_t keep) noexcept;

 private:
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::uint32_t max_packet_size_;
  protocol_version version_ = protocol_version::v3_1_1;
  bool version_known_ = false;
  bool connect_first_ = false;
  std::optional<codec_error> failed_;
};

}  // namespace ringmq::codec
