#pragma once
// An application message as the broker routes it: built once from a PUBLISH
// (or a will, or the admin API), then shared read-only by every subscriber's
// queue, so fan-out never copies the payload.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "broker/codec/properties.hpp"
#include "broker/codec/types.hpp"

namespace ringmq::core {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;

struct message {
  std::string topic;
  std::string payload;
  codec::qos qos = codec::qos::at_most_once;
  bool retain = false;
  // The properties that travel with the message (payload format, expiry, content
  // type, response topic, correlation data, user properties); never a topic alias
  // or subscription identifier, which belong to one hop.
  codec::properties props;
  std::string publisher;  // client id of the sender, for No Local
  // A QoS 2 message from a replicated persistent session: its number in the
  // publisher's sequence and its packet id. The same pair again is a resend
  // (the publisher's node failed mid-way) that a session takes only once.
  std::uint64_t publish_number = 0;  // 0: not numbered
  std::uint16_t publish_packet_id = 0;
  time_point received_at{};
  std::optional<time_point> expires_at;  // from Message Expiry Interval

  bool expired(time_point now) const noexcept { return expires_at && now >= *expires_at; }

  // Seconds left of the Message Expiry Interval, as forwarded to a subscriber.
  std::uint32_t remaining_expiry(time_point now) const noexcept;
};

using message_ptr = std::shared_ptr<const message>;

}  // namespace ringmq::core
