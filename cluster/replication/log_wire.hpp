#pragma once
// The replicated logs' messages between nodes: one batch of addressed
// messages (many sessions') per peer and moment, as bytes the peer protocol
// carries in its SessionLog frame. Pure data: no network.

#include <string>
#include <string_view>
#include <vector>

#include "cluster/replication/session_replicator.hpp"

namespace ringmq::cluster::replication {

std::string encode_batch(const std::vector<addressed>& batch);
// False, with `out` unspecified, for bytes that are not a batch.
bool decode_batch(std::string_view data, std::vector<addressed>& out);

}  // namespace ringmq::cluster::replication
