#pragma once
// Splitting topics into levels without allocating, and the reference rule for
// whether a filter matches a topic (used by tests and by the retained index).

#include <string_view>
#include <vector>

namespace ringmq::core {

// Appends the '/'-separated levels of `topic` to `out` (empty levels kept:
// "/a" has levels "" and "a").
void split_levels(std::string_view topic, std::vector<std::string_view>& out);

// True when `filter` (no "$share/" prefix) matches `topic` (MQTT 5.0 section 4.7),
// including the rule that '+' and '#' in the first level do not match '$' topics.
bool topic_matches(std::string_view filter, std::string_view topic) noexcept;

}  // namespace ringmq::core
