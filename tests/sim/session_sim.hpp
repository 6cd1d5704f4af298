#pragma once
// A deterministic simulation of whole replicated sessions: every simulated
// node runs the real broker (core::broker and a core::engine per client
// connection) and the real replicated-session driver
// (cluster::session_replication, over the real session_replicator and its
// logs in a store), polled on an io_context of its own. Between the nodes, a
// simulated network delays, drops, duplicates and reorders the logs'
// messages and cuts nodes off; nodes crash (keeping what their store made
// durable, or, like a power loss, only that) and restart. Simulated clients
// keep their MQTT session state the way device libraries do: persistent
// publishers send QoS 2 messages and resend what was not answered after
// reconnecting anywhere; persistent subscribers take QoS 2 messages once per
// packet id; now and then a client connects to another node while its old
// connection may still be open (a takeover). Everything follows from the
// seed: a failing seed replays exactly (./dev sim --sessions --seed S).
//
// What is not the code under test is modelled plainly: routes are one table
// every node reads at once (a dead node's routes are kept until its
// sessions are served elsewhere, as the cluster does), a forwarded message is
// settled by its node's keeper commits, liveness is what a node heard.
//
// The checker, over what the clients saw: every message acknowledged to its
// publisher (PUBREC) is delivered to every subscriber, none twice, each
// publisher's in the order sent; and no two nodes ever committed different
// changes at one position of a session's log.

#include <cstdint>
#include <string>
#include <vector>

namespace ringmq::sim::sessions {

struct scenario {
  std::uint64_t seed = 1;
  int nodes = 3;
  int replication_factor = 3;
  int publishers = 2;
  int subscribers = 2;
  int messages_per_publisher = 12;
  double drop = 0.03;             // of the logs' messages between nodes
  double duplicate = 0.02;
  int max_delay = 6;              // ticks (a tick is a millisecond of the nodes' time)
  int max_persist_delay = 4;      // ticks until a store write is durable
  double crash_per_tick = 0.002;
  double power_loss = 0.5;        // of crashes: what was not durable is lost
  double partition_per_tick = 0.0015;
  double move_per_tick = 0.003;   // a client connects to another node
  int fault_ticks = 1'500;        // faults happen up to here, then all heals
  // Members that change: the last `joining` nodes are not members at first
  // and join during the first half of the faults; `leaving` members are
  // removed for good in the second half (stopped and forgotten, as
  // cluster.dead_member_timeout_ms does). The ring follows the member set,
  // and owners move their sessions to the sets it gives them.
  int joining = 0;
  int leaving = 0;
  int max_ticks = 12'000;
};

struct outcome {
  bool ok = true;
  std::vector<std::string> violations;
  int acknowledged = 0;
  int delivered = 0;
  int crashes = 0;
  int power_losses = 0;
  int partitions = 0;
  int moves = 0;
  int refused_connects = 0;
  int duplicates_dropped = 0;  // numbered resends a session knew
  int joins = 0;
  int leaves = 0;
  int drains = 0;              // of the leaves, those drained first (graceful)
  int sessions_moved = 0;      // to another replica set, by their owners
  int ticks = 0;
  std::string summary() const;
};

outcome run(const scenario& s);

}  // namespace ringmq::sim::sessions
