#pragma once
// Overload protection for QoS 0. A QoS 0 copy that a slow subscriber's
// outbox, or a peer's queue, cannot take is dropped; without more, the broker
// would go on reading the publisher many times faster than the slow side
// takes, discarding most of it. So whoever drops a copy (or queues it behind
// too much) signals it here, on the thread that handles the PUBLISH, and the
// connection that read the PUBLISH pauses its reading for a moment: TCP then
// slows the publisher down, as an overloaded broker should.

#include <chrono>

namespace ringmq::core {

// A backlog that has lasted longer than this is a reader (or peer) that
// stopped, not one that is slow: it is dropped for without slowing anyone,
// so that one stuck subscriber cannot hold up every publisher.
inline constexpr std::chrono::seconds overload_stuck_after{2};

// A QoS 0 copy of the message being handled on this thread was dropped, or
// queued behind more than a short wait's worth.
void signal_qos0_overload() noexcept;

// Whether that happened on this thread since the last call; clears it.
bool take_qos0_overload() noexcept;

}  // namespace ringmq::core
