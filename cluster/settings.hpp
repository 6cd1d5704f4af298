#pragma once
// How this node takes part in its cluster (from the cluster section of the
// configuration; docs/cluster.md, "Configuration").

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace ringmq::cluster {

struct tls_settings {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  std::string server_name;  // checked in peers' certificates; empty = the address dialled

  bool enabled() const noexcept { return !cert_file.empty(); }
};

struct cluster_settings {
  std::string name = "ringmq";
  std::string node_id;
  std::string bind;       // empty: this node is a cluster of one, with no peer server
  std::string advertise;  // empty: the address bound
  std::vector<std::string> seeds;
  std::string dns;  // name:port resolved to every address
  std::uint32_t vnodes = 128;
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds suspect_timeout{2'000};
  std::chrono::milliseconds dead_timeout{5'000};
  // A member dead this long is removed (a leave of its incarnation, as
  // `ringmq ctl forget` does); 0: never.
  std::chrono::milliseconds dead_member_timeout{600'000};
  std::chrono::milliseconds digest_interval{10'000};
  std::chrono::milliseconds route_sync_timeout{5'000};
  std::chrono::milliseconds claim_timeout{3'000};
  std::chrono::milliseconds dns_interval{5'000};
  std::uint64_t peer_queue_bytes = 64ull << 20;
  tls_settings tls;
  // Replicated persistent sessions (docs/cluster.md): off while being built.
  bool replicate_sessions = true;
  std::uint32_t replication_factor = 3;
  std::uint32_t write_quorum = 0;  // 0: a majority of the replicas
};

// How long a dead peer's routes are kept with replicated sessions: its
// sessions' replicas notice the death (up to the orphan check, 0.5 s), take
// them over (bounded by the claim timeout) and announce their routes.
inline std::chrono::milliseconds departed_route_grace(const cluster_settings& s) {
  return s.claim_timeout + std::chrono::milliseconds(1'500);
}

}  // namespace ringmq::cluster
