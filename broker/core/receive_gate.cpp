#include "broker/core/receive_gate.hpp"

#include "broker/core/probe.hpp"
#include "broker/core/session.hpp"

namespace ringmq::core {

bool receive_gate::allows(const session& target, const message& m) const {
  auto* authz = authz_.load(std::memory_order_acquire);
  if (!authz) return true;
  const auto who = target.identity();
  if (who) {
    if (authz->allowed(*who, m.topic, access::receive)) return true;
  } else {
    // Recovered from the store, not connected since the start: its client id is known.
    client_identity offline;
    offline.client_id = target.client_id();
    if (authz->allowed(offline, m.topic, access::receive)) return true;
  }
  local_probe().dropped(drop_reason::not_authorized);
  return false;
}

}  // namespace ringmq::core
