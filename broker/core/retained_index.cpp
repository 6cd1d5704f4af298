#include "broker/core/retained_index.hpp"

#include <mutex>

namespace ringmq::core {

void retained_index::set(const message_ptr& m) {
  if (m->payload.empty()) {
    erase(m->topic);
    return;
  }
  std::vector<std::string_view> levels;
  split_levels(m->topic, levels);
  std::unique_lock lock(mutex_);
  node* n = &root_;
  for (auto level : levels) {
    auto& child = n->children[std::string(level)];
    if (!child) child = std::make_unique<node>();
    n = child.get();
  }
  if (!n->retained) ++size_;
  n->retained = m;
}

bool retained_index::erase(std::string_view topic) {
  std::vector<std::string_view> levels;
  split_levels(topic, levels);
  std::unique_lock lock(mutex_);
  // Remember the path so emptied nodes can be pruned bottom-up.
  std::vector<std::pair<node*, std::string_view>> path;
  node* n = &root_;
  for (auto level : levels) {
    auto it = n->children.find(level);
    if (it == n->children.end()) return false;
    path.emplace_back(n, level);
    n = it->second.get();
  }
  if (!n->retained) return false;
  n->retained.reset();
  --size_;
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    auto child = it->first->children.find(it->second);
    if (child->second->retained || !child->second->children.empty()) break;
    it->first->children.erase(child);
  }
  return true;
}

message_ptr retained_index::get(std::string_view topic) const {
  std::vector<std::string_view> levels;
  split_levels(topic, levels);
  std::shared_lock lock(mutex_);
  const node* n = &root_;
  for (auto level : levels) {
    auto it = n->children.find(level);
    if (it == n->children.end()) return nullptr;
    n = it->second.get();
  }
  return n->retained;
}

void retained_index::collect_all(const node& n, bool skip_dollar, std::vector<message_ptr>& out) {
  if (n.retained) out.push_back(n.retained);
  for (const auto& [level, child] : n.children) {
    if (skip_dollar && !level.empty() && level.front() == '$') continue;
    collect_all(*child, false, out);
  }
}

void retained_index::collect(const node& n, const std::vector<std::string_view>& filter,
                             std::size_t i, bool root, std::vector<message_ptr>& out) {
  if (i == filter.size()) {
    if (n.retained) out.push_back(n.retained);
    return;
  }
  const auto level = filter[i];
  if (level == "#") {
    // '#' also matches the parent level itself ("a/#" matches "a"), but not at the root.
    if (!root && n.retained) out.push_back(n.retained);
    for (const auto& [name, child] : n.children) {
      if (root && !name.empty() && name.front() == '$') continue;
      collect_all(*child, false, out);
    }
    return;
  }
  if (level == "+") {
    for (const auto& [name, child] : n.children) {
      if (root && !name.empty() && name.front() == '$') continue;
      collect(*child, filter, i + 1, false, out);
    }
    return;
  }
  if (auto it = n.children.find(level); it != n.children.end()) {
    collect(*it->second, filter, i + 1, false, out);
  }
}

std::vector<message_ptr> retained_index::match(std::string_view filter) const {
  std::vector<std::string_view> levels;
  split_levels(filter, levels);
  std::vector<message_ptr> out;
  std::shared_lock lock(mutex_);
  collect(root_, levels, 0, true, out);
  return out;
}

void retained_index::visit_all(const node& n,
                               const std::function<void(const message_ptr&)>& visit) {
  if (n.retained) visit(n.retained);
  for (const auto& [level, child] : n.children) visit_all(*child, visit);
}

void retained_index::for_each(const std::function<void(const message_ptr&)>& visit) const {
  std::shared_lock lock(mutex_);
  visit_all(root_, visit);
}

std::size_t retained_index::size() const {
  std::shared_lock lock(mutex_);
  return size_;
}

}  // namespace ringmq::core
