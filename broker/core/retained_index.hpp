#pragma once
// Retained messages by topic, in a tree of topic levels so a wildcard
// subscription walks only the branches its filter can match. Thread-safe:
// readers (SUBSCRIBE) share the lock, writes take it alone.
//
// In a cluster every node holds every retained message. Each write carries a
// version (HLC timestamp, then origin node) and is applied only when newer
// than the version held for its topic, so nodes converge whatever order the
// writes reach them in; a clear leaves a tombstone with its version, so an
// older write arriving late cannot bring the message back (docs/cluster.md).
// `$SYS/` topics are this node's own and take part in none of it.

#include <boost/unordered/unordered_flat_map.hpp>
#include <compare>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/message.hpp"
#include "broker/core/subscription_trie.hpp"

namespace ringmq::core {

struct retained_version {
  std::uint64_t hlc = 0;  // 0: written before versions existed, or unversioned
  std::string origin;     // node id that accepted the write

  friend auto operator<=>(const retained_version&, const retained_version&) = default;
  friend bool operator==(const retained_version&, const retained_version&) = default;
};

class retained_index {
 public:
  // --- this node's own, unversioned writes ($SYS values) ---------------------
  // Stores `m` as the retained message of its topic; an empty payload clears it.
  void set(const message_ptr& m);
  // Removes the retained message of `topic`; true when there was one.
  bool erase(std::string_view topic);

  // --- replicated writes -------------------------------------------------------
  // Applies a set (or a clear, when `m`'s payload is empty) with version `v`
  // if `v` is above the version held for the topic. `on_applied` runs under
  // the index's lock when it is, so the store sees one topic's writes in the
  // order the index applied them. Returns true when applied.
  bool apply(const message_ptr& m, const retained_version& v,
             const std::function<void()>& on_applied = {});
  // The version held for `topic` (of its message or tombstone), if any.
  std::optional<retained_version> version_of(std::string_view topic) const;
  // Forgets tombstones whose HLC is below `hlc` (their TTL passed); calls
  // `on_purged(topic)` for each, under the lock. Returns how many.
  std::size_t purge_tombstones(std::uint64_t below_hlc,
                               const std::function<void(const std::string&)>& on_purged = {});

  // Order-independent digest of every replicated entry and tombstone, and
  // their number: equal on two nodes that hold the same retained state.
  std::uint64_t digest() const;
  std::size_t replicated_count() const;
  // Every replicated entry (`m` null for a tombstone), for snapshots.
  void for_each_versioned(const std::function<void(const std::string& topic, const message_ptr& m,
                                                   const retained_version& v)>& visit) const;

  // --- reads -----------------------------------------------------------------
  message_ptr get(std::string_view topic) const;
  // Every retained message whose topic matches `filter` (non-shared filter).
  std::vector<message_ptr> match(std::string_view filter) const;
  // Every retained message, for admin views.
  void for_each(const std::function<void(const message_ptr&)>& visit) const;

  std::size_t size() const;
  std::size_t tombstone_count() const;

  static bool replicated(std::string_view topic) noexcept { return !topic.starts_with("$SYS/"); }

 private:
  struct node {
    boost::unordered_flat_map<std::string, std::unique_ptr<node>, string_hash, string_equal>
        children;
    message_ptr retained;
    retained_version version;
  };

  static std::uint64_t entry_hash(std::string_view topic, const retained_version& v) noexcept;
  node* find_locked(std::string_view topic) const;
  void put_locked(const message_ptr& m, const retained_version& v);
  bool erase_locked(std::string_view topic);

  static void collect(const node& n, const std::vector<std::string_view>& filter, std::size_t i,
                      bool root, std::vector<message_ptr>& out);
  static void collect_all(const node& n, bool skip_dollar, std::vector<message_ptr>& out);
  static void visit_all(const node& n, const std::function<void(const message_ptr&)>& visit);

  mutable std::shared_mutex mutex_;
  node root_;
  std::size_t size_ = 0;
  boost::unordered_flat_map<std::string, retained_version, string_hash, string_equal> tombstones_;
  std::uint64_t digest_ = 0;
  std::size_t replicated_ = 0;
};

}  // namespace ringmq::core
