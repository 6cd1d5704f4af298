#include "broker/codec/topic.hpp"

namespace ringmq::codec {
namespace {

constexpr std::string_view share_prefix = "$share/";

codec_error bad_filter(std::string_view detail) {
  return {reason_code::topic_filter_invalid, detail};
}

// Checks the wildcard placement of a plain (non-shared) filter.
codec_result<void> validate_plain_filter(std::string_view filter) {
  if (filter.empty()) return bad_filter("empty topic filter");
  for (std::size_t i = 0; i < filter.size(); ++i) {
    const char c = filter[i];
    if (c != '+' && c != '#') continue;
    const bool starts_level = i == 0 || filter[i - 1] == '/';
    const bool ends_level = i + 1 == filter.size() || filter[i + 1] == '/';
    if (!starts_level || !ends_level) return bad_filter("wildcard not alone in its level");
    if (c == '#' && i + 1 != filter.size()) return bad_filter("'#' not the last level");
  }
  return {};
}

}  // namespace

codec_result<void> validate_topic_name(std::string_view name) {
  if (name.empty()) return codec_error{reason_code::topic_name_invalid, "empty topic name"};
  if (name.find_first_of("+#") != std::string_view::npos) {
    return codec_error{reason_code::topic_name_invalid, "wildcard in topic name"};
  }
  return {};
}

codec_result<topic_filter_parts> parse_topic_filter(std::string_view filter) {
  if (!filter.starts_with(share_prefix)) {
    if (auto r = validate_plain_filter(filter); !r) return r.error();
    return topic_filter_parts{{}, filter};
  }
  const auto rest = filter.substr(share_prefix.size());
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) return bad_filter("shared subscription without filter");
  const auto group = rest.substr(0, slash);
  if (group.empty()) return bad_filter("empty share name");
  if (group.find_first_of("+#") != std::string_view::npos) {
    return bad_filter("wildcard in share name");
  }
  const auto inner = rest.substr(slash + 1);
  if (auto r = validate_plain_filter(inner); !r) return r.error();
  return topic_filter_parts{group, inner};
}

bool has_wildcards(std::string_view filter) noexcept {
  return filter.find_first_of("+#") != std::string_view::npos;
}

}  // namespace ringmq::codec
