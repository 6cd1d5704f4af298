#include "broker/net/connection_tracker.hpp"

namespace ringmq::net {

std::uint64_t connection_tracker::add(std::weak_ptr<connection_handle> c) {
  std::lock_guard lock(mutex_);
  const auto id = ++next_id_;
  connections_.emplace(id, std::move(c));
  count_.store(connections_.size(), std::memory_order_relaxed);
  return id;
}

void connection_tracker::remove(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  connections_.erase(id);
  count_.store(connections_.size(), std::memory_order_relaxed);
}

std::vector<std::shared_ptr<connection_handle>> connection_tracker::all() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<connection_handle>> out;
  out.reserve(connections_.size());
  for (const auto& [id, weak] : connections_) {
    if (auto c = weak.lock()) out.push_back(std::move(c));
  }
  return out;
}

}  // namespace ringmq::net
