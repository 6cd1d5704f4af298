#include "broker/codec/utf8.hpp"

#include <cstdint>

namespace ringmq::codec {

bool is_valid_mqtt_utf8(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const std::uint8_t*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const std::uint8_t lead = *p;
    if (lead < 0x80) {  // ASCII fast path; only NUL is forbidden
      if (lead == 0) return false;
      ++p;
      continue;
    }
    std::uint32_t cp = 0;
    int extra = 0;
    std::uint32_t min = 0;
    if ((lead & 0xE0) == 0xC0) {
      cp = lead & 0x1F;
      extra = 1;
      min = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      cp = lead & 0x0F;
      extra = 2;
      min = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      cp = lead & 0x07;
      extra = 3;
      min = 0x10000;
    } else {
      return false;  // continuation byte without lead, or 0xF8..0xFF
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      const std::uint8_t c = p[i];
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (cp < min) return false;                      // overlong
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;  // UTF-16 surrogate halves
    if (cp > 0x10FFFF) return false;
    p += extra + 1;
  }
  return true;
}

}  // namespace ringmq::codec
