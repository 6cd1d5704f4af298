#pragma once
// UTF-8 validation as MQTT requires it (section 1.5.4): well-formed UTF-8
// (no overlong forms, no surrogates U+D800..U+DFFF, nothing above U+10FFFF)
// and no U+0000. Control characters and non-characters are allowed: the
// specification says a receiver "MAY" reject them, and rejecting them would
// break clients that send them today.

#include <string_view>

namespace ringmq::codec {

bool is_valid_mqtt_utf8(std::string_view text) noexcept;

}  // namespace ringmq::codec
