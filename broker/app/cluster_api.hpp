#pragma once
// The cluster's part of the admin API: GET /api/v1/cluster (members, liveness,
// epoch, ring, peer streams; ?client_id= adds who owns that client id) and
// POST /api/v1/cluster/forget {"node": "..."} (admin token).

#include "broker/app/admin_api.hpp"
#include "cluster/cluster_node.hpp"

namespace ringmq::app {

// `leave` starts this node's leaving (POST /api/v1/cluster/leave): an error
// text, or empty.
void register_cluster_api(http::server& server, cluster::cluster_node& cluster,
                          const admin_api_settings& settings,
                          std::function<std::string()> leave);

}  // namespace ringmq::app
