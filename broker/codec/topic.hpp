#pragma once
// Topic Name and Topic Filter rules (MQTT 5.0 section 4.7, 4.8.2): levels
// separated by '/', '+' matching one level, '#' matching the rest, both only
// alone in their level, and shared subscriptions "$share/{group}/{filter}".

#include <string_view>

#include "broker/codec/error.hpp"

namespace ringmq::codec {

// A topic name of a PUBLISH or a will: non-empty, no '+' or '#'.
// Failure: Topic Name invalid (0x90).
codec_result<void> validate_topic_name(std::string_view name);

struct topic_filter_parts {
  std::string_view share_group;  // empty unless "$share/{group}/..."
  std::string_view filter;       // the filter that is matched against topic names

  bool is_shared() const noexcept { return !share_group.empty(); }
};

// A subscription's filter, with a shared subscription split into group and filter.
// Failure: Topic Filter invalid (0x8F).
codec_result<topic_filter_parts> parse_topic_filter(std::string_view filter);

// True when the filter contains '+' or '#'.
bool has_wildcards(std::string_view filter) noexcept;

}  // namespace ringmq::codec
