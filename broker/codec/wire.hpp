#pragma once
// Primitive MQTT data types (section 1.5): big-endian integers, Variable Byte
// Integers, length-prefixed strings and binary data. Internal to the codec.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "broker/codec/error.hpp"
#include "broker/codec/utf8.hpp"

namespace ringmq::codec::wire {

// Reads from a byte range that must hold exactly one packet body. Every read
// checks the remaining length first, so a short or lying packet is "malformed".
class reader {
 public:
  explicit reader(std::string_view bytes) noexcept : data_(bytes) {}

  std::size_t remaining() const noexcept { return data_.size() - pos_; }
  bool empty() const noexcept { return remaining() == 0; }
  std::size_t position() const noexcept { return pos_; }

  bool read_u8(std::uint8_t& out) noexcept {
    if (remaining() < 1) return false;
    out = static_cast<std::uint8_t>(data_[pos_++]);
    return true;
  }
  bool read_u16(std::uint16_t& out) noexcept {
    if (remaining() < 2) return false;
    out = static_cast<std::uint16_t>((byte(0) << 8) | byte(1));
    pos_ += 2;
    return true;
  }
  bool read_u32(std::uint32_t& out) noexcept {
    if (remaining() < 4) return false;
    out = (std::uint32_t{byte(0)} << 24) | (std::uint32_t{byte(1)} << 16) |
          (std::uint32_t{byte(2)} << 8) | std::uint32_t{byte(3)};
    pos_ += 4;
    return true;
  }
  // Variable Byte Integer: at most four bytes (a fifth continuation is malformed).
  bool read_varint(std::uint32_t& out) noexcept {
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      std::uint8_t b = 0;
      if (!read_u8(b)) return false;
      value |= std::uint32_t{b & 0x7Fu} << (7 * i);
      if ((b & 0x80u) == 0) {
        out = value;
        return true;
      }
    }
    return false;
  }
  // Two-byte length prefix followed by that many bytes.
  bool read_binary(std::string_view& out) noexcept {
    std::uint16_t length = 0;
    if (!read_u16(length) || remaining() < length) return false;
    out = data_.substr(pos_, length);
    pos_ += length;
    return true;
  }
  bool read_bytes(std::size_t count, std::string_view& out) noexcept {
    if (remaining() < count) return false;
    out = data_.substr(pos_, count);
    pos_ += count;
    return true;
  }
  std::string_view rest() noexcept {
    auto out = data_.substr(pos_);
    pos_ = data_.size();
    return out;
  }

 private:
  std::uint32_t byte(std::size_t offset) const noexcept {
    return static_cast<std::uint8_t>(data_[pos_ + offset]);
  }

  std::string_view data_;
  std::size_t pos_ = 0;
};

// Reads a UTF-8 Encoded String and validates it per section 1.5.4.
inline codec_result<std::string_view> read_utf8(reader& in, std::string_view what) {
  std::string_view text;
  if (!in.read_binary(text)) return malformed(what);
  if (!is_valid_mqtt_utf8(text)) return malformed("invalid UTF-8 string");
  return text;
}

constexpr std::size_t varint_size(std::uint32_t value) noexcept {
  return value < 128u ? 1 : value < 16'384u ? 2 : value < 2'097'152u ? 3 : 4;
}

// Appends to a std::string used as a byte buffer.
class writer {
 public:
  explicit writer(std::string& out) noexcept : out_(out) {}

  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(std::uint16_t v) {
    out_.push_back(static_cast<char>(v >> 8));
    out_.push_back(static_cast<char>(v & 0xFF));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v & 0xFFFF));
  }
  void varint(std::uint32_t v) {
    do {
      std::uint8_t b = v & 0x7F;
      v >>= 7;
      if (v != 0) b |= 0x80;
      u8(b);
    } while (v != 0);
  }
  // Strings longer than 65535 bytes cannot be encoded; callers validate first.
  void binary(std::string_view v) {
    u16(static_cast<std::uint16_t>(v.size()));
    out_.append(v);
  }
  void raw(std::string_view v) { out_.append(v); }

 private:
  std::string& out_;
};

}  // namespace ringmq::codec::wire
