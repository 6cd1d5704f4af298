#include "broker/core/topic_levels.hpp"

namespace ringmq::core {

void split_levels(std::string_view topic, std::vector<std::string_view>& out) {
  std::size_t start = 0;
  while (true) {
    const auto slash = topic.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(topic.substr(start));
      return;
    }
    out.push_back(topic.substr(start, slash - start));
    start = slash + 1;
  }
}

bool topic_matches(std::string_view filter, std::string_view topic) noexcept {
  if (!topic.empty() && topic.front() == '$' && !filter.empty() &&
      (filter.front() == '+' || filter.front() == '#')) {
    return false;
  }
  std::size_t f = 0;
  std::size_t t = 0;
  while (true) {
    const auto f_end = std::min(filter.find('/', f), filter.size());
    const auto f_level = filter.substr(f, f_end - f);
    if (f_level == "#") return true;
    const bool topic_done = t > topic.size();
    if (topic_done) return false;
    const auto t_end = std::min(topic.find('/', t), topic.size());
    const auto t_level = topic.substr(t, t_end - t);
    if (f_level != "+" && f_level != t_level) return false;
    const bool filter_last = f_end == filter.size();
    const bool topic_last = t_end == topic.size();
    if (filter_last && topic_last) return true;
    if (filter_last) return false;
    f = f_end + 1;
    t = t_end + 1;
    if (topic_last) {
      // Topic exhausted: only a final "/#" in the filter still matches ("a/#" matches "a").
      return filter.substr(f) == "#";
    }
  }
}

}  // namespace ringmq::core
