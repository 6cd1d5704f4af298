#include "broker/core/retained_index.hpp"

#include <mutex>

#include "broker/core/stable_hash.hpp"

namespace ringmq::core {

std::uint64_t retained_index::entry_hash(std::string_view topic,
                                         const retained_version& v) noexcept {
  return hash_combine(hash_combine(fnv1a64(topic), v.hlc), fnv1a64(v.origin));
}

retained_index::node* retained_index::find_locked(std::string_view topic) const {
  std::vector<std::string_view> levels;
  split_levels(topic, levels);
  const node* n = &root_;
  for (auto level : levels) {
    auto it = n->children.find(level);
    if (it == n->children.end()) return nullptr;
    n = it->second.get();
  }
  return const_cast<node*>(n);
}

void retained_index::put_locked(const message_ptr& m, const retained_version& v) {
  const bool counted = replicated(m->topic);
  if (auto t = tombstones_.find(m->topic); t != tombstones_.end()) {
    digest_ ^= entry_hash(m->topic, t->second);
    --replicated_;
    tombstones_.erase(t);
  }
  std::vector<std::string_view> levels;
  split_levels(m->topic, levels);
  node* n = &root_;
  for (auto level : levels) {
    auto& child = n->children[std::string(level)];
    if (!child) child = std::make_unique<node>();
    n = child.get();
  }
  if (n->retained) {
    if (counted) {
      digest_ ^= entry_hash(m->topic, n->version);
      --replicated_;
    }
  } else {
    ++size_;
  }
  n->retained = m;
  n->version = v;
  if (counted) {
    digest_ ^= entry_hash(m->topic, v);
    ++replicated_;
  }
}

bool retained_index::erase_locked(std::string_view topic) {
  std::vector<std::string_view> levels;
  split_levels(topic, levels);
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
  if (replicated(topic)) {
    digest_ ^= entry_hash(topic, n->version);
    --replicated_;
  }
  n->retained.reset();
  n->version = {};
  --size_;
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    auto child = it->first->children.find(it->second);
    if (child->second->retained || !child->second->children.empty()) break;
    it->first->children.erase(child);
  }
  return true;
}

void retained_index::set(const message_ptr& m) {
  if (m->payload.empty()) {
    erase(m->topic);
    return;
  }
  std::unique_lock lock(mutex_);
  put_locked(m, {});
}

bool retained_index::erase(std::string_view topic) {
  std::unique_lock lock(mutex_);
  return erase_locked(topic);
}

bool retained_index::apply(const message_ptr& m, const retained_version& v,
                           const std::function<void()>& on_applied) {
  std::unique_lock lock(mutex_);
  const node* held = find_locked(m->topic);
  if (held && held->retained) {
    if (!(v > held->version)) return false;
  } else if (auto t = tombstones_.find(m->topic); t != tombstones_.end()) {
    if (!(v > t->second)) return false;
  }
  if (m->payload.empty()) {
    erase_locked(m->topic);
    auto [t, added] = tombstones_.try_emplace(m->topic, v);
    if (!added) {
      digest_ ^= entry_hash(m->topic, t->second);
      --replicated_;
      t->second = v;
    }
    digest_ ^= entry_hash(m->topic, v);
    ++replicated_;
  } else {
    put_locked(m, v);
  }
  if (on_applied) on_applied();
  return true;
}

std::optional<retained_version> retained_index::version_of(std::string_view topic) const {
  std::shared_lock lock(mutex_);
  if (const node* n = find_locked(topic); n && n->retained) return n->version;
  if (auto t = tombstones_.find(topic); t != tombstones_.end()) return t->second;
  return std::nullopt;
}

std::size_t retained_index::purge_tombstones(
    std::uint64_t below_hlc, const std::function<void(const std::string&)>& on_purged) {
  std::unique_lock lock(mutex_);
  std::vector<std::string> expired;
  for (const auto& [topic, v] : tombstones_) {
    if (v.hlc < below_hlc) expired.push_back(topic);
  }
  for (const auto& topic : expired) {
    auto it = tombstones_.find(topic);
    digest_ ^= entry_hash(topic, it->second);
    --replicated_;
    tombstones_.erase(it);
    if (on_purged) on_purged(topic);
  }
  return expired.size();
}

std::uint64_t retained_index::digest() const {
  std::shared_lock lock(mutex_);
  return digest_;
}

std::size_t retained_index::replicated_count() const {
  std::shared_lock lock(mutex_);
  return replicated_;
}

std::size_t retained_index::tombstone_count() const {
  std::shared_lock lock(mutex_);
  return tombstones_.size();
}

void retained_index::for_each_versioned(
    const std::function<void(const std::string&, const message_ptr&, const retained_version&)>&
        visit) const {
  std::shared_lock lock(mutex_);
  const std::function<void(const node&)> walk = [&](const node& n) {
    if (n.retained && replicated(n.retained->topic)) visit(n.retained->topic, n.retained, n.version);
    for (const auto& [level, child] : n.children) walk(*child);
  };
  walk(root_);
  for (const auto& [topic, v] : tombstones_) visit(topic, nullptr, v);
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
