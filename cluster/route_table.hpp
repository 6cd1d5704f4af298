#pragma once
// The cluster's route table: for every topic filter subscribed anywhere,
// which nodes have it, with a count per node (not per client): 1 for a plain
// filter, the number of members on that node for a shared group
// ("$share/g/f"). Each origin's entries come only from that origin (its
// snapshot, then its deltas), so each origin also has a digest to compare
// with what the origin says it has (docs/cluster.md, "Routes").
//
// Thread-safe: matching reads under the calling thread's stripe of a striped
// lock, changes take every stripe.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/core/striped_lock.hpp"
#include "broker/core/subscription_trie.hpp"

namespace ringmq::cluster {

using origin_index = std::uint32_t;

struct route_entry {
  std::string filter;
  std::uint32_t count = 0;

  friend bool operator==(const route_entry&, const route_entry&) = default;
};

class route_table {
 public:
  using trie = core::subscription_trie<origin_index, std::uint32_t>;
  using shared_group = trie::shared_group;

  explicit route_table(std::size_t stripes) : lock_(stripes) {}

  // Sets `origin`'s count for `filter`; 0 removes it. Invalid filters are ignored.
  void set(origin_index origin, const std::string& filter, std::uint32_t count);
  // Replaces every route of `origin` with `routes`.
  void replace(origin_index origin, const std::vector<route_entry>& routes);
  // Drops every route of `origin`.
  void drop(origin_index origin);

  std::vector<route_entry> routes_of(origin_index origin) const;
  // Digest of `origin`'s routes (XOR of a hash per filter and count) and their number.
  std::uint64_t digest_of(origin_index origin) const;
  std::size_t count_of(origin_index origin) const;
  static std::uint64_t digest(const std::vector<route_entry>& routes);
  static std::uint64_t entry_hash(std::string_view filter, std::uint32_t count) noexcept;

  // Calls on_plain(origin) for every origin with a plain filter matching
  // `topic` (an origin may be reported more than once), and
  // on_group(group) for every matching shared group; group.members are
  // (origin, members there).
  template <class OnPlain, class OnGroup>
  void match(std::string_view topic, OnPlain&& on_plain, OnGroup&& on_group) const {
    core::striped_lock::read_guard guard(lock_);
    trie_.match(
        topic, [&](origin_index origin, std::uint32_t) { on_plain(origin); },
        [&](const shared_group& g) { on_group(g); });
  }

  std::size_t size() const;

 private:
  void set_locked(origin_index origin, const std::string& filter, std::uint32_t count);

  struct origin_state {
    std::map<std::string, std::uint32_t> routes;
    std::uint64_t digest = 0;
  };

  mutable core::striped_lock lock_;
  trie trie_;
  std::map<origin_index, origin_state> origins_;
};

}  // namespace ringmq::cluster
