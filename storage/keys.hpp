#pragma once
// Order-preserving key encoding: big-endian integers and length-prefixed
// strings, so byte order equals logical order and one client's records form a
// contiguous prefix.

#include <cstdint>
#include <string>
#include <string_view>

namespace ringmq::storage::keys {

inline void append_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}

inline void append_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

// A string as a component that may be followed by more: two-byte length, then bytes.
inline void append_string(std::string& out, std::string_view s) {
  append_u16(out, static_cast<std::uint16_t>(s.size()));
  out.append(s);
}

inline std::uint64_t read_u64(std::string_view in, std::size_t offset) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(in[offset + i]);
  return v;
}

inline std::uint16_t read_u16(std::string_view in, std::size_t offset) {
  return static_cast<std::uint16_t>((static_cast<std::uint8_t>(in[offset]) << 8) |
                                    static_cast<std::uint8_t>(in[offset + 1]));
}

// Reads a length-prefixed string at `offset`, advancing it; false if truncated.
inline bool read_string(std::string_view in, std::size_t& offset, std::string_view& out) {
  if (in.size() < offset + 2) return false;
  const auto n = read_u16(in, offset);
  if (in.size() < offset + 2 + n) return false;
  out = in.substr(offset + 2, n);
  offset += 2 + n;
  return true;
}

}  // namespace ringmq::storage::keys
