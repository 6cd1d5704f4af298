#pragma once
// The $SYS/broker/... topics mosquitto operators know, published retained and
// periodically so a subscriber sees current values at once.

#include <chrono>

#include "broker/core/broker.hpp"

namespace ringmq::core {

// Publishes every $SYS topic with current values.
void publish_sys_topics(broker& b, time_point now, std::chrono::seconds uptime);

}  // namespace ringmq::core
