// The replicated session log under thousands of seeded simulations
// (session_log_sim.hpp). A failing seed is printed with the command that
// replays it:  ./dev sim --seed <seed> --nodes <n>  (RINGMQ_SIM_RUNS sets the
// number of runs, RINGMQ_SIM_FIRST_SEED the first seed).

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>

#include "tests/sim/session_log_sim.hpp"

namespace ringmq::sim {
namespace {

std::uint64_t env_or(const char *name, std::uint64_t fallback) {
  const char *v = std::getenv(name);
  return v ? std::stoull(v) : fallback;
}

scenario with_nodes(int nodes, int outsiders = 0) {
  scenario s;
  s.nodes = nodes;
  s.outsiders = outsiders;
  s.write_quorum = nodes / 2 + 1;
  s.prepare_quorum = nodes - s.write_quorum + 1;
  return s;
}

// Each seed also picks how hostile its network and its nodes are.
scenario varied(scenario s, std::uint64_t seed) {
  s.seed = seed;
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ull);
  const auto between = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  s.drop = between(0, 0.2);
  s.duplicate = between(0, 0.1);
  s.max_delay = static_cast<int>(between(2, 40));
  s.max_persist_delay = static_cast<int>(between(0, 15));
  s.crash_per_tick = between(0, 0.01);
  s.partition_per_tick = between(0, 0.006);
  s.window = static_cast<int>(between(1, 6));
  s.compact_every =
      between(0, 1) < 0.2 ? 0 : static_cast<int>(between(20, 400));
  return s;
}

void run_seeds(int nodes, std::uint64_t first, std::uint64_t count,
               int outsiders = 0, double move_per_tick = 0) {
  int failures = 0;
  std::uint64_t crashes = 0, partitions = 0, ownerships = 0, outside = 0,
                acknowledged = 0;
  std::uint64_t compactions = 0, snapshot_installs = 0, moves = 0;
  for (std::uint64_t seed = first; seed < first + count; ++seed) {
    auto s = varied(with_nodes(nodes, outsiders), seed);
    s.move_per_tick = move_per_tick;
    const auto o = run(s);
    moves += o.moves;
    crashes += o.crashes;
    partitions += o.partitions;
    ownerships += o.ownerships;
    outside += o.outsider_ownerships;
    compactions += o.compactions;
    snapshot_installs += o.snapshot_installs;
    acknowledged += o.acknowledged;
    if (!o.ok) {
      ADD_FAILURE() << "seed " << seed << " with " << nodes << " nodes and "
                    << outsiders << " outsiders: " << o.summary()
                    << "\nreplay: ./dev sim --seed " << seed << " --nodes "
                    << nodes << " --outsiders " << outsiders
                    << (move_per_tick > 0 ? " --moves" : "");
      if (++failures >= 5)
        return;
    }
  }
  std::cout << count << " runs with " << nodes << " replicas and " << outsiders
            << " other serving nodes: " << acknowledged
            << " messages acknowledged, " << crashes << " crashes, "
            << partitions << " partitions, " << ownerships
            << " owners installed (" << outside << " outside the replicas), "
            << compactions << " compactions, " << snapshot_installs
            << " laggards sent a snapshot, " << moves
            << " moves to another replica set\n";
}

TEST(SessionLogSim, ThreeNodesThroughCrashesPartitionsAndALossyNetwork) {
  run_seeds(3, env_or("RINGMQ_SIM_FIRST_SEED", 1),
            env_or("RINGMQ_SIM_RUNS", 3000));
}

TEST(SessionLogSim, FiveNodesThroughCrashesPartitionsAndALossyNetwork) {
  run_seeds(5, env_or("RINGMQ_SIM_FIRST_SEED", 1),
            env_or("RINGMQ_SIM_RUNS", 3000) / 2);
}

// The node a client connects to serves its session even when it holds no
// replica: it wins a generation from the replicas like any of them.
TEST(SessionLogSim, ThreeReplicasAndTwoServingNodesOutsideThem) {
  run_seeds(3, env_or("RINGMQ_SIM_FIRST_SEED", 1),
            env_or("RINGMQ_SIM_RUNS", 3000) / 2, 2);
}

// Members join and leave: owners move the session to other replica sets,
// and nodes that take it over (some holding no log, or an old one) choose
// sets of their own.
TEST(SessionLogSim, ReplicaSetsThatMoveAmongFiveNodes) {
  run_seeds(3, env_or("RINGMQ_SIM_FIRST_SEED", 1),
            env_or("RINGMQ_SIM_RUNS", 3000) / 2, 2, 0.004);
}

TEST(SessionLogSim, ReplicaSetsThatMoveAmongSevenNodes) {
  run_seeds(5, env_or("RINGMQ_SIM_FIRST_SEED", 1),
            env_or("RINGMQ_SIM_RUNS", 3000) / 4, 2, 0.004);
}

// One seed, told in full (for replaying a failure).
TEST(SessionLogSim, OneSeed) {
  const auto seed = env_or("RINGMQ_SIM_SEED", 0);
  if (seed == 0)
    return; // only when asked for
  auto s =
      varied(with_nodes(static_cast<int>(env_or("RINGMQ_SIM_NODES", 3)),
                        static_cast<int>(env_or("RINGMQ_SIM_OUTSIDERS", 0))),
             seed);
  s.move_per_tick = env_or("RINGMQ_SIM_MOVES", 0) ? 0.004 : 0;
  const auto o = run(s);
  std::cout << o.summary() << "\n";
  EXPECT_TRUE(o.ok);
}

} // namespace
} // namespace ringmq::sim
