// The replicated session log's rules, one at a time, with a driver that
// delivers every message at once and makes every write durable at once
// (the simulations in tests/sim/ do the hostile rest).

#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "cluster/replication/session_log.hpp"

namespace ringmq::cluster::replication {
namespace {

class group {
 public:
  // n replicas (nodes 0..n-1), then `outsiders` nodes that may serve the
  // session without holding it (the nodes its client connects to).
  explicit group(int n, int outsiders = 0) {
    session_log::config c;
    for (int i = 0; i < n; ++i) c.replicas.push_back(static_cast<member>(i));
    c.write_quorum = static_cast<std::size_t>(n / 2 + 1);
    c.prepare_quorum = static_cast<std::size_t>(n - n / 2);
    for (int i = 0; i < n + outsiders; ++i) {
      c.self = static_cast<member>(i);
      logs_.emplace_back(c);
    }
    up_.assign(static_cast<std::size_t>(n + outsiders), true);
  }

  session_log& operator[](int i) { return logs_[static_cast<std::size_t>(i)]; }

  // Applies effects of node i: writes are durable at once, messages go to the
  // nodes that are up, until nothing moves.
  void run(int i, session_log::effects e) {
    std::deque<std::pair<int, session_log::effects>> work{{i, std::move(e)}};
    while (!work.empty()) {
      auto [who, fx] = std::move(work.front());
      work.pop_front();
      if (fx.became_owner) owners_.push_back(who);
      if (fx.fenced) fenced_.push_back(who);
      if (fx.persist) work.emplace_back(who, logs_[who].on_persisted(*fx.persist));
      for (auto& o : fx.send) {
        if (!up_[o.to] || !up_[who]) continue;
        work.emplace_back(static_cast<int>(o.to), logs_[o.to].on_message(who, o.msg));
      }
    }
  }

  void isolate(int i) { up_[static_cast<std::size_t>(i)] = false; }
  void rejoin(int i) { up_[static_cast<std::size_t>(i)] = true; }

  std::uint64_t propose(int i, const std::string& data) {
    session_log::effects e;
    const auto seq = logs_[static_cast<std::size_t>(i)].propose(data, e);
    run(i, std::move(e));
    return seq.value_or(0);
  }

  std::vector<int> owners_;
  std::vector<int> fenced_;

 private:
  std::vector<session_log> logs_;
  std::vector<bool> up_;
};

std::vector<std::string> data_of(const session_log& l) {
  std::vector<std::string> out;
  for (const auto& e : l.entries()) out.push_back(e.data);
  return out;
}

TEST(SessionLog, AnOwnerIsInstalledAndCommitsOnAWriteQuorum) {
  group g(3);
  g.run(0, g[0].acquire());
  ASSERT_TRUE(g[0].serving());
  EXPECT_EQ(g.owners_, std::vector<int>{0});
  EXPECT_EQ(g.propose(0, "a"), 1u);
  EXPECT_EQ(g.propose(0, "b"), 2u);
  EXPECT_EQ(g[0].committed(), 2u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(data_of(g[i]), (std::vector<std::string>{"a", "b"}));
}

TEST(SessionLog, OnlyAnOwnerProposes) {
  group g(3);
  session_log::effects e;
  EXPECT_FALSE(g[1].propose("x", e));
}

TEST(SessionLog, WithoutAQuorumNothingCommits) {
  group g(3);
  g.run(0, g[0].acquire());
  g.isolate(1);
  g.isolate(2);
  g.propose(0, "lonely");
  EXPECT_EQ(g[0].committed(), 0u) << "one of three is not a write quorum";
  g.rejoin(1);
  g.run(0, g[0].on_tick());
  EXPECT_EQ(g[0].committed(), 1u) << "the resend reaches a quorum";
}

TEST(SessionLog, ANewOwnerHasEveryCommittedEntryAndFencesTheOldOne) {
  group g(3);
  g.run(0, g[0].acquire());
  g.propose(0, "committed");
  ASSERT_EQ(g[0].committed(), 1u);
  // The owner is cut off; node 1 takes over with a higher generation.
  g.isolate(0);
  g.run(1, g[1].acquire());
  ASSERT_TRUE(g[1].serving());
  EXPECT_GT(g[1].generation(), g[0].generation());
  EXPECT_EQ(data_of(g[1]), std::vector<std::string>{"committed"});
  g.propose(1, "after");
  // The old owner comes back and tries to write: refused, and it is fenced.
  g.rejoin(0);
  g.propose(0, "stale");
  EXPECT_EQ(g.fenced_, std::vector<int>{0});
  EXPECT_FALSE(g[0].serving());
  EXPECT_EQ(data_of(g[1]), (std::vector<std::string>{"committed", "after"}));
  EXPECT_EQ(data_of(g[2]), (std::vector<std::string>{"committed", "after"}));
}

TEST(SessionLog, ANewOwnerTellsTheOneBeforeItAtOnce) {
  // Node 3 holds no replica, so no prepare reaches it: only the new owner's
  // word tells it, before it takes a change it could no longer commit.
  group g(3, 1);
  g.run(3, g[3].acquire());
  ASSERT_TRUE(g[3].serving());
  g.run(1, g[1].acquire());
  ASSERT_TRUE(g[1].serving());
  EXPECT_EQ(g.fenced_, std::vector<int>{3}) << "fenced without having to write first";
  EXPECT_FALSE(g[3].serving());
}

TEST(SessionLog, ANewOwnerNamesTheOneBeforeItToBeHandedOver) {
  group g(3, 1);
  g.run(3, g[3].acquire());
  ASSERT_TRUE(g[3].serving());
  auto e = g[1].acquire();
  member deposed = 0;
  // The owner's effects as they come, to see the one that installs it.
  std::deque<std::pair<int, session_log::effects>> work{{1, std::move(e)}};
  while (!work.empty()) {
    auto [who, fx] = std::move(work.front());
    work.pop_front();
    if (fx.became_owner && who == 1) deposed = fx.deposed;
    if (fx.persist) work.emplace_back(who, g[who].on_persisted(*fx.persist));
    for (auto& o : fx.send) work.emplace_back(static_cast<int>(o.to), g[o.to].on_message(who, o.msg));
  }
  ASSERT_TRUE(g[1].serving());
  EXPECT_EQ(deposed, 3u) << "the driver hands the session over to it once its routes are everywhere";
}

TEST(SessionLog, AHandoverFencesTheNodeBeforeAndSaysWhoServesNow) {
  group g(3, 1);
  g.run(3, g[3].acquire());
  g.run(1, g[1].acquire());
  const auto gen = g[1].generation();
  auto e = g[3].on_message(1, handover{gen});
  EXPECT_EQ(e.handed_over, 1u);
  EXPECT_FALSE(g[3].serving());
  EXPECT_EQ(g[3].newest_known(), gen) << "it knows of the newer generation, though it promised none";
  // A node that leads a newer generation than the one handed over keeps it.
  g.run(3, g[3].acquire());
  ASSERT_TRUE(g[3].serving());
  auto stale = g[3].on_message(1, handover{gen});
  EXPECT_EQ(stale.handed_over, 0u);
  EXPECT_TRUE(g[3].serving());
  // Asked for a handover, the owner says who asked; a node that does not
  // serve the session says nothing.
  EXPECT_EQ(g[3].on_message(1, handover_request{}).handover_asked, 1u);
  EXPECT_EQ(g[1].on_message(3, handover_request{}).handover_asked, 0u);
}

TEST(SessionLog, APrepareBelowThePromiseIsRefused) {
  group g(3);
  g.run(1, g[1].acquire());  // generation (1, node 1)
  const auto low = ballot{1, 0};
  const auto fx = g[2].on_message(0, prepare{low});
  ASSERT_EQ(fx.send.size(), 1u);
  const auto& p = std::get<promise>(fx.send[0].msg);
  EXPECT_FALSE(p.ok);
  EXPECT_EQ(p.promised, g[1].generation());
}

TEST(SessionLog, ALateInstallDoesNotCutBackTheLog) {
  group g(3);
  g.run(0, g[0].acquire());
  g.propose(0, "a");
  g.propose(0, "b");
  // An install of the same generation with less, delivered late (reordered).
  accept old_install;
  old_install.gen = g[0].generation();
  old_install.install = true;
  const auto fx = g[1].on_message(0, old_install);
  EXPECT_EQ(data_of(g[1]), (std::vector<std::string>{"a", "b"}));
  (void)fx;
}

TEST(SessionLog, ARestartedReplicaKeepsItsPromiseAndLog) {
  group g(3);
  g.run(0, g[0].acquire());
  g.propose(0, "a");
  session_log::config c = g[2].settings();
  session_log restarted(c, g[2].state());
  EXPECT_EQ(restarted.promised(), g[0].generation());
  EXPECT_EQ(data_of(restarted), std::vector<std::string>{"a"});
  // It refuses what its promise forbids, as before the restart.
  const auto fx = restarted.on_message(1, accept{ballot{0, 1}, false, 0, {}});
  EXPECT_FALSE(std::get<accepted>(fx.send.at(0).msg).ok);
}

TEST(SessionLog, OnlyWhatIsKnownCommittedIsFoldedIntoASnapshot) {
  group g(3);
  g.run(0, g[0].acquire());
  g.propose(0, "a");
  g.propose(0, "b");
  g.isolate(1);
  g.isolate(2);
  g.propose(0, "pending");
  ASSERT_EQ(g[0].committed(), 2u);
  session_log::effects e;
  EXPECT_FALSE(g[0].compact(3, "a,b,pending", e)) << "seq 3 is not committed";
  EXPECT_FALSE(e.persist);
  ASSERT_TRUE(g[0].compact(2, "a,b", e));
  EXPECT_TRUE(e.persist) << "the snapshot is written like any change";
  EXPECT_EQ(g[0].base_seq(), 2u);
  EXPECT_EQ(g[0].snapshot(), "a,b");
  EXPECT_EQ(data_of(g[0]), std::vector<std::string>{"pending"});
  EXPECT_EQ(g[0].last_seq(), 3u);
  EXPECT_FALSE(g[0].compact(2, "a,b", e)) << "already folded";
}

TEST(SessionLog, AReplicaLearnsTheCommitPointFromTheOwner) {
  group g(3);
  g.run(0, g[0].acquire());
  g.propose(0, "a");
  g.propose(0, "b");
  // The commit point of "b" travels with the next accept (or a tick).
  g.run(0, g[0].on_tick());
  EXPECT_EQ(g[1].known_commit(), 2u);
  session_log::effects e;
  ASSERT_TRUE(g[1].compact(2, "a,b", e));
  EXPECT_TRUE(g[1].entries().empty());
  EXPECT_EQ(g[1].last_seq(), 2u);
}

TEST(SessionLog, AReplicaBehindTheSnapshotGetsTheSnapshotAndTheRest) {
  group g(3);
  g.run(0, g[0].acquire());
  g.isolate(2);
  g.propose(0, "a");
  g.propose(0, "b");
  g.propose(0, "c");
  session_log::effects e;
  ASSERT_TRUE(g[0].compact(2, "a,b", e));
  g.run(0, std::move(e));
  g.rejoin(2);
  g.run(0, g[0].on_tick());
  EXPECT_EQ(g[2].base_seq(), 2u);
  EXPECT_EQ(g[2].snapshot(), "a,b");
  EXPECT_EQ(data_of(g[2]), std::vector<std::string>{"c"});
  // And it follows from there.
  g.propose(0, "d");
  EXPECT_EQ(data_of(g[2]), (std::vector<std::string>{"c", "d"}));
}

TEST(SessionLog, ANewOwnerAdoptsASnapshotWithItsEntries) {
  group g(3);
  g.run(0, g[0].acquire());
  g.propose(0, "a");
  g.propose(0, "b");
  g.run(0, g[0].on_tick());
  session_log::effects e;
  ASSERT_TRUE(g[1].compact(2, "a,b", e));
  g.isolate(0);
  g.run(1, g[1].acquire());
  ASSERT_TRUE(g[1].serving());
  g.propose(1, "c");
  EXPECT_EQ(g[1].committed(), 3u);
  EXPECT_EQ(g[2].snapshot(), "a,b") << "installed from the new owner's log";
  EXPECT_EQ(data_of(g[2]), std::vector<std::string>{"c"});
}

// ----- replica sets that change (members joined or left)

std::vector<member> members(std::initializer_list<int> ids) {
  std::vector<member> out;
  for (auto i : ids) out.push_back(static_cast<member>(i));
  return out;
}

TEST(SessionLog, AMoveInstallsOnBothSetsAndThenCommitsOnTheNewOne) {
  group g(3, 2);  // replicas 0, 1, 2; nodes 3 and 4 joined later
  g.run(0, g[0].acquire());
  g.propose(0, "before");
  g.run(0, g[0].acquire(members({0, 3, 4})));
  ASSERT_TRUE(g[0].serving());
  EXPECT_EQ(g[0].replicas(), members({0, 3, 4}));
  EXPECT_EQ(data_of(g[3]), std::vector<std::string>{"before"}) << "the new replicas have the log";
  EXPECT_EQ(g[1].replicas(), members({0, 3, 4})) << "the old ones name the new set";
  g.isolate(1);
  g.isolate(2);
  g.propose(0, "after");
  EXPECT_EQ(g[0].committed(), 2u) << "the old set's members are not needed any more";
  g.isolate(3);
  g.isolate(4);
  g.propose(0, "alone");
  EXPECT_EQ(g[0].committed(), 2u) << "the new set's quorum is";
}

TEST(SessionLog, AMoveNeedsAWriteQuorumOfTheOldSetToo) {
  group g(3, 2);
  g.run(0, g[0].acquire());
  g.propose(0, "a");
  g.isolate(1);
  g.isolate(2);
  g.run(0, g[0].acquire(members({0, 3, 4})));
  EXPECT_FALSE(g[0].serving()) << "without a prepare quorum of the old set it is not owner";
  g.rejoin(1);
  g.run(0, g[0].on_tick());
  ASSERT_TRUE(g[0].serving());
  EXPECT_EQ(g[0].replicas(), members({0, 3, 4}));
}

TEST(SessionLog, ACandidateOnAnOldSetFollowsToTheNewOne) {
  group g(3, 2);
  g.run(0, g[0].acquire());
  g.propose(0, "a");
  g.isolate(2);  // misses the move: its log still names 0, 1, 2
  g.run(0, g[0].acquire(members({0, 3, 4})));
  ASSERT_TRUE(g[0].serving());
  g.propose(0, "b");  // committed on 0, 3, 4 only
  ASSERT_EQ(g[0].committed(), 2u);
  g.isolate(0);
  g.rejoin(2);
  g.run(2, g[2].acquire());
  ASSERT_TRUE(g[2].serving());
  EXPECT_EQ(data_of(g[2]), (std::vector<std::string>{"a", "b"}))
      << "it prepared on 0, 1, 2, heard of 0, 3, 4 from node 1, and found b there";
  EXPECT_EQ(g[2].replicas(), members({0, 3, 4}));
}

TEST(SessionLog, ANodeWithoutALogAsksEveryoneAndFindsTheSession) {
  group g(3, 3);  // node 5 holds nothing and guesses a set without the log
  g.run(0, g[0].acquire(members({0, 3, 4})));
  g.propose(0, "kept");
  ASSERT_EQ(g[0].committed(), 1u);
  g.isolate(0);
  g.run(5, g[5].acquire(members({1, 2, 5}), members({0, 1, 2, 3, 4, 5})));
  ASSERT_TRUE(g[5].serving());
  EXPECT_EQ(data_of(g[5]), std::vector<std::string>{"kept"});
  EXPECT_EQ(g[5].replicas(), members({1, 2, 5})) << "and moved it to its target";
}

TEST(SessionLog, ANodeWithoutALogCreatesASessionOnlyWhenFewerThanAWriteQuorumAreUnheard) {
  group g(3, 2);
  g.isolate(3);
  g.isolate(4);
  g.run(0, g[0].acquire(members({0, 1, 2}), members({0, 1, 2, 3, 4})));
  EXPECT_FALSE(g[0].serving()) << "3 and 4 might hold the session";
  g.rejoin(3);
  g.run(0, g[0].on_tick());
  EXPECT_TRUE(g[0].serving()) << "only 4 is unheard: fewer than W = 2";
}

TEST(SessionLog, ChangesUnderWayWhenAMoveStartsCommitInTheNewGeneration) {
  group g(3, 2);
  g.run(0, g[0].acquire());
  g.isolate(1);
  g.isolate(2);
  const auto seq = g.propose(0, "pending");
  ASSERT_EQ(g[0].committed(), 0u);
  g.rejoin(1);
  g.rejoin(2);
  g.run(0, g[0].acquire(members({0, 3, 4})));
  ASSERT_TRUE(g[0].serving());
  EXPECT_GE(g[0].committed(), seq);
  EXPECT_EQ(data_of(g[3]), std::vector<std::string>{"pending"});
}

}  // namespace
}  // namespace ringmq::cluster::replication
