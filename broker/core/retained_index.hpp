#pragma once
// Retained messages by topic, in a tree of topic levels so a wildcard
// subscription walks only the branches its filter can match. Thread-safe:
// readers (SUBSCRIBE) share the lock, a retained PUBLISH takes it alone.

#include <boost/unordered/unordered_flat_map.hpp>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/message.hpp"
#include "broker/core/subscription_trie.hpp"

namespace ringmq::core {

class retained_index {
 public:
  // Stores `m` as the retained message of its topic; an empty payload clears it.
  // Returns the number of retained messages afterwards.
  void set(const message_ptr& m);
  // Removes the retained message of `topic`; true when there was one.
  bool erase(std::string_view topic);

  message_ptr get(std::string_view topic) const;
  // Every retained message whose topic matches `filter` (non-shared filter).
  std::vector<message_ptr> match(std::string_view filter) const;
  // Every retained message, for admin views and snapshots.
  void for_each(const std::function<void(const message_ptr&)>& visit) const;

  std::size_t size() const;

 private:
  struct node {
    boost::unordered_flat_map<std::string, std::unique_ptr<node>, string_hash, string_equal>
        children;
    message_ptr retained;
  };

  static void collect(const node& n, const std::vector<std::string_view>& filter, std::size_t i,
                      bool root, std::vector<message_ptr>& out);
  static void collect_all(const node& n, bool skip_dollar, std::vector<message_ptr>& out);
  static void visit_all(const node& n, const std::function<void(const message_ptr&)>& visit);

  mutable std::shared_mutex mutex_;
  node root_;
  std::size_t size_ = 0;
};

}  // namespace ringmq::core
