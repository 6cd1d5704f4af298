#include "cluster/route_table.hpp"

#include "broker/codec/topic.hpp"
#include "broker/core/stable_hash.hpp"

namespace ringmq::cluster {

std::uint64_t route_table::entry_hash(std::string_view filter, std::uint32_t count) noexcept {
  return core::hash_combine(core::fnv1a64(filter), count);
}

std::uint64_t route_table::digest(const std::vector<route_entry>& routes) {
  std::uint64_t d = 0;
  for (const auto& r : routes) {
    if (r.count != 0) d ^= entry_hash(r.filter, r.count);
  }
  return d;
}

void route_table::set_locked(origin_index origin, const std::string& filter,
                             std::uint32_t count) {
  auto parts = codec::parse_topic_filter(filter);
  if (!parts) return;
  auto& state = origins_[origin];
  auto it = state.routes.find(filter);
  if (it != state.routes.end()) {
    if (it->second == count) return;
    state.digest ^= entry_hash(filter, it->second);
  }
  if (count == 0) {
    if (it == state.routes.end()) return;
    state.routes.erase(it);
    if (parts->is_shared()) {
      trie_.erase_shared(parts->share_group, parts->filter, origin);
    } else {
      trie_.erase(parts->filter, origin);
    }
    return;
  }
  state.routes[filter] = count;
  state.digest ^= entry_hash(filter, count);
  if (parts->is_shared()) {
    trie_.insert_shared(parts->share_group, parts->filter, origin, count);
  } else {
    trie_.insert(parts->filter, origin, count);
  }
}

void route_table::set(origin_index origin, const std::string& filter, std::uint32_t count) {
  core::striped_lock::write_guard guard(lock_);
  set_locked(origin, filter, count);
}

void route_table::replace(origin_index origin, const std::vector<route_entry>& routes) {
  core::striped_lock::write_guard guard(lock_);
  std::map<std::string, std::uint32_t> wanted;
  for (const auto& r : routes) {
    if (r.count != 0) wanted[r.filter] = r.count;
  }
  // Remove what is no longer there, then set the rest (unchanged ones cost nothing).
  if (auto it = origins_.find(origin); it != origins_.end()) {
    std::vector<std::string> gone;
    for (const auto& [filter, count] : it->second.routes) {
      if (!wanted.contains(filter)) gone.push_back(filter);
    }
    for (const auto& filter : gone) set_locked(origin, filter, 0);
  }
  for (const auto& [filter, count] : wanted) set_locked(origin, filter, count);
}

void route_table::drop(origin_index origin) {
  core::striped_lock::write_guard guard(lock_);
  auto it = origins_.find(origin);
  if (it == origins_.end()) return;
  std::vector<std::string> filters;
  for (const auto& [filter, count] : it->second.routes) filters.push_back(filter);
  for (const auto& filter : filters) set_locked(origin, filter, 0);
  origins_.erase(origin);
}

std::vector<route_entry> route_table::routes_of(origin_index origin) const {
  core::striped_lock::read_guard guard(lock_);
  std::vector<route_entry> out;
  if (auto it = origins_.find(origin); it != origins_.end()) {
    for (const auto& [filter, count] : it->second.routes) out.push_back({filter, count});
  }
  return out;
}

std::uint64_t route_table::digest_of(origin_index origin) const {
  core::striped_lock::read_guard guard(lock_);
  auto it = origins_.find(origin);
  return it == origins_.end() ? 0 : it->second.digest;
}

std::size_t route_table::count_of(origin_index origin) const {
  core::striped_lock::read_guard guard(lock_);
  auto it = origins_.find(origin);
  return it == origins_.end() ? 0 : it->second.routes.size();
}

std::size_t route_table::size() const {
  core::striped_lock::read_guard guard(lock_);
  return trie_.size();
}

}  // namespace ringmq::cluster
