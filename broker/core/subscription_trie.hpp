#pragma once
// The subscription index: a trie over topic levels with separate children for
// '+' and '#', so matching a topic visits only the branches that can match
// (FlashMQ's layout). Shared subscriptions hang off the node of their filter as
// named groups. Nodes left empty by an erase are pruned.
//
// Not thread-safe: the router guards it (readers on their own stripe, writers
// on all stripes; see striped_lock.hpp).

#include <atomic>
#include <boost/unordered/unordered_flat_map.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/core/topic_levels.hpp"

namespace ringmq::core {

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
struct string_equal {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
};

template <class Key, class Value>
class subscription_trie {
 public:
  struct shared_group {
    std::string name;
    std::string filter;
    std::vector<std::pair<Key, Value>> members;
    // Round-robin position; concurrent matchers may race on it, which only
    // changes who gets a message, never whether someone does.
    mutable std::atomic<std::uint32_t> cursor{0};
  };

  // Adds or replaces `key`'s subscription to `filter`. Returns true when new.
  bool insert(std::string_view filter, const Key& key, Value value) {
    node* n = walk_create(filter);
    auto [it, added] = n->subscribers.try_emplace(key, std::move(value));
    if (!added) it->second = std::move(value);
    if (added) ++size_;
    return added;
  }

  bool insert_shared(std::string_view group, std::string_view filter, const Key& key,
                     Value value) {
    node* n = walk_create(filter);
    auto& g = n->groups[std::string(group)];
    if (!g) {
      g = std::make_unique<shared_group>();
      g->name = group;
      g->filter = filter;
    }
    for (auto& m : g->members) {
      if (m.first == key) {
        m.second = std::move(value);
        return false;
      }
    }
    g->members.emplace_back(key, std::move(value));
    ++size_;
    return true;
  }

  // Removes `key`'s subscription to `filter`; true when it existed.
  bool erase(std::string_view filter, const Key& key) {
    return erase_at(filter, [&](node& n) { return n.subscribers.erase(key) > 0; });
  }

  bool erase_shared(std::string_view group, std::string_view filter, const Key& key) {
    return erase_at(filter, [&](node& n) {
      auto it = n.groups.find(group);
      if (it == n.groups.end()) return false;
      auto& members = it->second->members;
      for (auto m = members.begin(); m != members.end(); ++m) {
        if (m->first == key) {
          members.erase(m);
          if (members.empty()) n.groups.erase(it);
          return true;
        }
      }
      return false;
    });
  }

  // Calls on_subscriber(key, value) for every plain subscription whose filter
  // matches `topic`, and on_group(group) for every matching shared group.
  template <class OnSubscriber, class OnGroup>
  void match(std::string_view topic, OnSubscriber&& on_subscriber, OnGroup&& on_group) const {
    thread_local std::vector<std::string_view> levels;
    levels.clear();
    split_levels(topic, levels);
    const bool dollar = !topic.empty() && topic.front() == '$';
    match_node(root_, levels, 0, dollar, on_subscriber, on_group);
  }

  // The shared group of exactly (group, filter), or null.
  const shared_group* find_group(std::string_view group, std::string_view filter) const {
    const node* n = find(filter);
    if (!n) return nullptr;
    auto it = n->groups.find(group);
    return it == n->groups.end() ? nullptr : it->second.get();
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0 && root_.is_empty(); }

 private:
  struct node {
    boost::unordered_flat_map<std::string, std::unique_ptr<node>, string_hash, string_equal>
        children;
    std::unique_ptr<node> plus;
    std::unique_ptr<node> hash;  // subscribers of ".../#" (a leaf: '#' is always last)
    boost::unordered_flat_map<Key, Value> subscribers;
    boost::unordered_flat_map<std::string, std::unique_ptr<shared_group>, string_hash,
                              string_equal>
        groups;

    bool is_empty() const noexcept {
      return children.empty() && !plus && !hash && subscribers.empty() && groups.empty();
    }
  };

  static std::unique_ptr<node>* child_slot(node& n, std::string_view level) {
    if (level == "+") return &n.plus;
    if (level == "#") return &n.hash;
    auto it = n.children.find(level);
    if (it == n.children.end()) return nullptr;
    return &it->second;
  }

  node* walk_create(std::string_view filter) {
    node* n = &root_;
    std::size_t start = 0;
    while (true) {
      const auto slash = filter.find('/', start);
      const auto level = filter.substr(start, slash == std::string_view::npos
                                                  ? std::string_view::npos
                                                  : slash - start);
      std::unique_ptr<node>* slot;
      if (level == "+") {
        slot = &n->plus;
      } else if (level == "#") {
        slot = &n->hash;
      } else {
        slot = &n->children[std::string(level)];
      }
      if (!*slot) *slot = std::make_unique<node>();
      n = slot->get();
      if (slash == std::string_view::npos) return n;
      start = slash + 1;
    }
  }

  const node* find(std::string_view filter) const {
    const node* n = &root_;
    std::size_t start = 0;
    while (true) {
      const auto slash = filter.find('/', start);
      const auto level = filter.substr(start, slash == std::string_view::npos
                                                  ? std::string_view::npos
                                                  : slash - start);
      auto* slot = child_slot(const_cast<node&>(*n), level);
      if (!slot || !*slot) return nullptr;
      n = slot->get();
      if (slash == std::string_view::npos) return n;
      start = slash + 1;
    }
  }

  // Finds the filter's node, applies `remove` there and prunes empty nodes on the way back.
  template <class Remove>
  bool erase_at(std::string_view filter, Remove&& remove) {
    thread_local std::vector<std::string_view> levels;
    levels.clear();
    split_levels(filter, levels);
    bool removed = false;
    erase_rec(root_, levels, 0, remove, removed);
    if (removed) --size_;
    return removed;
  }

  template <class Remove>
  static void erase_rec(node& n, const std::vector<std::string_view>& levels, std::size_t i,
                        Remove& remove, bool& removed) {
    if (i == levels.size()) {
      removed = remove(n);
      return;
    }
    const auto level = levels[i];
    if (level == "+" || level == "#") {
      auto& slot = level == "+" ? n.plus : n.hash;
      if (!slot) return;
      erase_rec(*slot, levels, i + 1, remove, removed);
      if (removed && slot->is_empty()) slot.reset();
      return;
    }
    auto it = n.children.find(level);
    if (it == n.children.end()) return;
    erase_rec(*it->second, levels, i + 1, remove, removed);
    if (removed && it->second->is_empty()) n.children.erase(it);
  }

  template <class OnSubscriber, class OnGroup>
  static void visit(const node& n, OnSubscriber& on_subscriber, OnGroup& on_group) {
    for (const auto& [key, value] : n.subscribers) on_subscriber(key, value);
    for (const auto& [name, group] : n.groups) on_group(*group);
  }

  template <class OnSubscriber, class OnGroup>
  static void match_node(const node& n, const std::vector<std::string_view>& levels,
                         std::size_t i, bool dollar, OnSubscriber& on_subscriber,
                         OnGroup& on_group) {
    // [MQTT-4.7.2-1]: wildcards in the first level never match a topic starting with '$'.
    const bool wildcards_allowed = !(i == 0 && dollar);
    if (wildcards_allowed && n.hash) visit(*n.hash, on_subscriber, on_group);
    if (i == levels.size()) {
      visit(n, on_subscriber, on_group);
      return;
    }
    if (wildcards_allowed && n.plus) {
      match_node(*n.plus, levels, i + 1, dollar, on_subscriber, on_group);
    }
    if (auto it = n.children.find(levels[i]); it != n.children.end()) {
      match_node(*it->second, levels, i + 1, dollar, on_subscriber, on_group);
    }
  }

  node root_;
  std::size_t size_ = 0;
};

}  // namespace ringmq::core
