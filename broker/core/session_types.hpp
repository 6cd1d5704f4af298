#pragma once
// Small value types shared by the session, the router and the journal.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "broker/codec/packets.hpp"
#include "broker/core/message.hpp"

namespace ringmq::core {

// One subscription as the session remembers it (the router indexes the same).
struct stored_subscription {
  codec::subscribe_options options;
  std::optional<std::uint32_t> identifier;
};

// One message on its way to a session.
struct outgoing {
  message_ptr msg;
  codec::qos qos = codec::qos::at_most_once;  // min(published, granted)
  bool retain = false;                        // the RETAIN flag as sent
  std::vector<std::uint32_t> subscription_ids;
  std::string share;  // "$share/{group}/{filter}" when delivered through a shared subscription
};

// Where an outbound QoS 1/2 message is in its exchange.
enum class inflight_stage : std::uint8_t { awaiting_puback, awaiting_pubrec, awaiting_pubcomp };

}  // namespace ringmq::core
