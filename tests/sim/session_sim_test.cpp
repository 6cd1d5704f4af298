// Whole replicated sessions (real brokers, engines and session drivers)
// under seeded simulations (session_sim.hpp). A failing seed is printed with
// the command that replays it:  ./dev sim --sessions --seed <seed> --nodes <n>
// (RINGMQ_SESSION_SIM_RUNS sets the number of runs per cluster size,
// RINGMQ_SIM_FIRST_SEED the first seed).

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <random>
#include <string>

#include "tests/sim/session_sim.hpp"

namespace ringmq::sim::sessions {
namespace {

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::stoull(v) : fallback;
}

// Each seed also picks how hostile its network and its nodes are.
scenario varied(int nodes, std::uint64_t seed, bool membership = false) {
  scenario s;
  s.seed = seed;
  s.nodes = nodes;
  if (membership) {
    // Three members at first; the others join, then as many leave.
    s.joining = nodes - 3;
    s.leaving = nodes - 3;
  }
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ull + static_cast<std::uint64_t>(nodes));
  const auto between = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  s.drop = between(0, 0.1);
  s.duplicate = between(0, 0.05);
  s.max_delay = static_cast<int>(between(1, 15));
  s.max_persist_delay = static_cast<int>(between(0, 8));
  s.crash_per_tick = between(0, 0.004);
  s.power_loss = between(0, 1);
  s.partition_per_tick = between(0, 0.003);
  s.move_per_tick = between(0, 0.006);
  return s;
}

// The nodes' logs only when one seed is replayed (RINGMQ_SIM_LOG=1).
void quiet_nodes() {
  spdlog::set_level(std::getenv("RINGMQ_SIM_LOG") ? spdlog::level::debug : spdlog::level::off);
}

void run_seeds(int nodes, std::uint64_t first, std::uint64_t count, bool membership = false) {
  quiet_nodes();
  int failures = 0;
  std::uint64_t crashes = 0, power_losses = 0, partitions = 0, moves = 0, acknowledged = 0,
                delivered = 0, refused = 0, duplicates = 0, joins = 0, leaves = 0, drains = 0, moved = 0;
  for (std::uint64_t seed = first; seed < first + count; ++seed) {
    const auto o = run(varied(nodes, seed, membership));
    joins += o.joins;
    leaves += o.leaves;
    drains += o.drains;
    moved += o.sessions_moved;
    crashes += o.crashes;
    power_losses += o.power_losses;
    partitions += o.partitions;
    moves += o.moves;
    acknowledged += o.acknowledged;
    delivered += o.delivered;
    refused += o.refused_connects;
    duplicates += o.duplicates_dropped;
    if (!o.ok) {
      ADD_FAILURE() << "seed " << seed << " with " << nodes << " nodes: " << o.summary()
                    << "\nreplay: ./dev sim --sessions --seed " << seed << " --nodes " << nodes
                    << (membership ? " --members" : "");
      if (++failures >= 5) return;
    }
  }
  std::cout << count << " runs with " << nodes << " nodes: " << acknowledged
            << " QoS 2 messages acknowledged, " << delivered << " delivered, " << crashes
            << " crashes (" << power_losses << " losing unsynced writes), " << partitions
            << " partitions, " << moves << " clients moved while connected, " << refused
            << " CONNECTs refused, " << duplicates << " resends a session already had";
  if (membership) {
    std::cout << ", " << joins << " joins, " << leaves << " members gone (" << drains
              << " left gracefully, the others removed), " << moved
              << " sessions moved to another replica set";
  }
  std::cout << std::endl;
}

TEST(SessionSim, ThreeNodes) {
  run_seeds(3, env_or("RINGMQ_SIM_FIRST_SEED", 1), env_or("RINGMQ_SESSION_SIM_RUNS", 1000));
}

TEST(SessionSim, FiveNodes) {
  run_seeds(5, env_or("RINGMQ_SIM_FIRST_SEED", 1), env_or("RINGMQ_SESSION_SIM_RUNS", 1000));
}

// The member set changes under the same faults: two nodes join a cluster of
// three, then two members go for good, each either leaving gracefully (the
// ring stops placing sessions on it while it serves, and it stops once every
// session is on the others) or removed outright; owners move their sessions
// to the sets the ring gives them, and sessions of a gone owner are taken
// over from their logs. Restarts (with or without unsynced writes) run
// throughout.
TEST(SessionSim, MembersJoinAndLeave) {
  run_seeds(5, env_or("RINGMQ_SIM_FIRST_SEED", 1), env_or("RINGMQ_SESSION_SIM_RUNS", 1000) / 2,
            true);
}

// One seed, told in full: ./dev sim --sessions --seed S --nodes N.
TEST(SessionSim, OneSeed) {
  const char* seed = std::getenv("RINGMQ_SIM_SEED");
  if (!seed) GTEST_SKIP() << "RINGMQ_SIM_SEED not set";
  quiet_nodes();
  const auto nodes = static_cast<int>(env_or("RINGMQ_SIM_NODES", 3));
  const auto o = run(varied(nodes, std::stoull(seed), env_or("RINGMQ_SIM_MEMBERS", 0) != 0));
  std::cout << o.summary() << std::endl;
  EXPECT_TRUE(o.ok);
}

}  // namespace
}  // namespace ringmq::sim::sessions
