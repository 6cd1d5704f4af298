#pragma once
// Messages between the broker's own types and the peer protocol's.

#include <optional>

#include "broker/core/message.hpp"
#include "broker/core/retained_index.hpp"

namespace ringmq::cluster::v1 {
class ClusterMessage;
class RetainedVersion;
}  // namespace ringmq::cluster::v1

namespace ringmq::cluster {

// `now`: the Message Expiry Interval that is left travels, not a point in time.
void to_wire(const core::message& m, core::time_point now, v1::ClusterMessage& out);
// Null when the properties cannot be decoded (a peer sent garbage).
std::shared_ptr<core::message> from_wire(const v1::ClusterMessage& in, core::time_point now);

void to_wire(const core::retained_version& v, v1::RetainedVersion& out);
core::retained_version from_wire(const v1::RetainedVersion& in);

}  // namespace ringmq::cluster
