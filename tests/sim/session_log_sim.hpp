#pragma once
// A deterministic simulation of one persistent session's replicated log
// (cluster/replication/session_log.hpp): simulated nodes run the real state
// machine over a simulated network that delays, drops, duplicates, reorders
// and partitions messages, and crash and restart (losing whatever was not
// durable yet). Simulated publishers, each connected to some node, send their
// messages in order and resend what is not acknowledged to another node.
// Everything follows from the seed: a failing seed replays exactly.
//
// The checker, over what happened (independent of the state machine):
//  - every acknowledged message is in the final committed log (none lost);
//  - no message is in it twice (a resend is not appended again: exactly once);
//  - each publisher's messages are in the order it sent them;
//  - every commit anywhere is a prefix of every later one (two owners never
//    commit different changes at one position).

#include <cstdint>
#include <string>
#include <vector>

namespace ringmq::sim {

struct scenario {
  std::uint64_t seed = 1;
  int nodes = 3;     // the replicas
  int outsiders = 0; // more nodes that serve the session (a client connected
                     // there) but hold no replica
  int write_quorum = 2;
  int prepare_quorum = 2;
  int publishers = 3;
  int messages_per_publisher = 25;
  int window = 3;     // messages a publisher has unacknowledged at once
  double drop = 0.05; // of every message on the network
  double duplicate = 0.02;
  int max_delay = 12;        // ticks
  int max_persist_delay = 6; // ticks until a write is durable
  double crash_per_tick = 0.004;
  double partition_per_tick = 0.003;
  int compact_every = 150; // ticks between snapshots on each node; 0: never
  // Replica sets that change: an owner moves the session to a random set of
  // `nodes` members out of all nodes now and then, and a node that takes the
  // session over may install it on a set of its own choosing (members
  // joining and leaving). Then every node is a member: the first `nodes`
  // hold the first set, and at most R - W nodes are down at once.
  double move_per_tick = 0;
  int fault_ticks = 3'000; // faults happen up to here, then the network heals
  int max_ticks = 20'000;
};

struct outcome {
  bool ok = true;
  std::vector<std::string> violations;
  // What happened, for the report.
  int acknowledged = 0;
  int committed_entries = 0;
  int crashes = 0;
  int partitions = 0;
  int ownerships = 0;          // times a node became owner
  int outsider_ownerships = 0; // of them, by a node outside the replica set
  int compactions = 0;
  int snapshot_installs =
      0; // a node's log replaced by a snapshot and what follows
  int moves = 0; // owners installed on another replica set
  int ticks = 0;
  std::string summary() const;
};

outcome run(const scenario &s);

} // namespace ringmq::sim
