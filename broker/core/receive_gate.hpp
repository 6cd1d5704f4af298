#pragma once
// Whether a session may receive a message under the ACL in force. Asked twice:
// when the router picks the session (an unauthorized copy is never queued) and
// again when a queued message leaves the queue, so that an ACL reloaded while
// the message waited (a revoked read right) applies to it too.

#include <atomic>

#include "broker/core/auth.hpp"
#include "broker/core/message.hpp"

namespace ringmq::core {

class session;

class receive_gate {
 public:
  // Null: everyone may receive everything (no ACL configured: the check costs nothing).
  void set(authorizer* authz) noexcept { authz_.store(authz, std::memory_order_release); }

  // Counts a refusal as a drop (not_authorized).
  bool allows(const session& target, const message& m) const;

 private:
  std::atomic<authorizer*> authz_{nullptr};
};

}  // namespace ringmq::core
