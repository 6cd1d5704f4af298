#pragma once
// Slows down password guessing: after a few failed authentications from one
// address within a window, that address's CONNECTs are refused without
// looking at the credentials, for a period that doubles with every further
// failure (up to a maximum). Thread-safe; touched only on CONNECT.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/core/message.hpp"

namespace ringmq::core {

struct auth_throttle_settings {
  std::uint32_t max_failures = 5;           // failures tolerated within the window
  std::chrono::seconds window{60};
  std::chrono::seconds first_block{10};
  std::chrono::seconds max_block{300};
};

class auth_throttle {
 public:
  explicit auth_throttle(auth_throttle_settings settings = {}) : settings_(settings) {}

  // True when `address` may try to authenticate now.
  bool allowed(std::string_view address, time_point now);
  void failed(std::string_view address, time_point now);
  void succeeded(std::string_view address);
  // Forgets addresses that have been quiet for a window (call periodically).
  void prune(time_point now);
  std::size_t blocked(time_point now) const;

  // "10.1.2.3:5555" -> "10.1.2.3", "[::1]:5555" -> "[::1]".
  static std::string_view host_of(std::string_view peer) noexcept;

 private:
  struct record {
    std::uint32_t failures = 0;
    time_point window_start{};
    time_point blocked_until{};
    std::chrono::seconds next_block{};
  };

  auth_throttle_settings settings_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, record> records_;
};

}  // namespace ringmq::core
