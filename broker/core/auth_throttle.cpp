#include "broker/core/auth_throttle.hpp"

#include <algorithm>

namespace ringmq::core {

std::string_view auth_throttle::host_of(std::string_view peer) noexcept {
  const auto colon = peer.rfind(':');
  if (colon == std::string_view::npos) return peer;
  return peer.substr(0, colon);
}

bool auth_throttle::allowed(std::string_view address, time_point now) {
  std::lock_guard lock(mutex_);
  auto it = records_.find(std::string(address));
  return it == records_.end() || now >= it->second.blocked_until;
}

void auth_throttle::failed(std::string_view address, time_point now) {
  std::lock_guard lock(mutex_);
  auto& r = records_[std::string(address)];
  if (now - r.window_start > settings_.window) {
    r.failures = 0;
    r.window_start = now;
  }
  if (++r.failures < settings_.max_failures) return;
  // Blocked; every failure after that (once the block ends) doubles the next block.
  if (r.next_block.count() == 0) r.next_block = settings_.first_block;
  r.blocked_until = now + r.next_block;
  r.next_block = std::min(r.next_block * 2, settings_.max_block);
}

void auth_throttle::succeeded(std::string_view address) {
  std::lock_guard lock(mutex_);
  records_.erase(std::string(address));
}

void auth_throttle::prune(time_point now) {
  std::lock_guard lock(mutex_);
  for (auto it = records_.begin(); it != records_.end();) {
    const auto& r = it->second;
    if (now >= r.blocked_until && now - r.window_start > settings_.window) {
      it = records_.erase(it);
    } else {
      ++it;
    }
  }
}

std::size_t auth_throttle::blocked(time_point now) const {
  std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(std::count_if(records_.begin(), records_.end(),
                                                [&](const auto& e) { return now < e.second.blocked_until; }));
}

}  // namespace ringmq::core
