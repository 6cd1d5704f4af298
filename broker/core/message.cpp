#include "broker/core/message.hpp"

namespace ringmq::core {

std::uint32_t message::remaining_expiry(time_point now) const noexcept {
  if (!expires_at || now >= *expires_at) return 0;
  // Rounded up, so a message with any time left is never forwarded with 0 ("no expiry").
  const auto left = std::chrono::ceil<std::chrono::seconds>(*expires_at - now).count();
  return static_cast<std::uint32_t>(left);
}

}  // namespace ringmq::core
