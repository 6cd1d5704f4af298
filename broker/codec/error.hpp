#pragma once
// How the codec reports a violation: the precise MQTT reason code plus a short,
// static description for the log line (never allocated, never owned).

#include <boost/system/result.hpp>
#include <string_view>

#include "broker/codec/reason_code.hpp"

namespace ringmq::codec {

struct codec_error {
  reason_code code = reason_code::malformed_packet;
  std::string_view detail;  // points at a string literal

  friend bool operator==(const codec_error& a, const codec_error& b) noexcept {
    return a.code == b.code;
  }
};

// Throws std::system_error carrying the reason code; used only by result<T>::value().
[[noreturn]] void throw_exception_from_error(const codec_error& error,
                                             const boost::source_location& location);

template <class T>
using codec_result = boost::system::result<T, codec_error>;

inline codec_error malformed(std::string_view detail) {
  return {reason_code::malformed_packet, detail};
}
inline codec_error protocol_error(std::string_view detail) {
  return {reason_code::protocol_error, detail};
}

}  // namespace ringmq::codec
