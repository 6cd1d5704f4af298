// Many sessions' logs on three nodes, each with its own store: ownership,
// commits reported to proposers, failover with the committed records, a
// replica that lost its disk, compaction, and what is under-replicated.
// Messages are delivered between the nodes that are up until none is left.

#include "cluster/replication/session_replicator.hpp"

#include <gtest/gtest.h>

#include <optional>

#include "storage/keys.hpp"

namespace ringmq::cluster::replication {
namespace {

using storage::column;

std::string session_key(std::string_view client, std::string_view rest = {}) {
  std::string k;
  storage::keys::append_string(k, client);
  k.append(rest);
  return k;
}

// One change: the queued message `id` of `client`.
std::string queue_change(std::string_view client, const std::string& id) {
  storage::write_batch b;
  b.put(column::queue, session_key(client, id), "message " + id);
  return encode_change(b);
}

class cluster3 {
 public:
  explicit cluster3(std::size_t compact_after = 64) {
    for (int i = 0; i < 3; ++i) {
      nodes_.emplace_back();
      start(i, compact_after);
    }
  }

  void start(int i, std::size_t compact_after = 64) {
    auto& n = nodes_[static_cast<std::size_t>(i)];
    if (!n.store) n.store = storage::make_memory_store();
    n.logs = std::make_unique<log_storage>(*n.store);
    session_replicator::hooks h;
    h.placement = [this](const std::string&) { return quorums(0, placement_, 0); };
    h.owned = [this, i](const std::string& client, session_records r, member) {
      owned_.push_back({i, client, std::move(r)});
    };
    h.fenced = [this, i](const std::string& client) { fenced_.push_back({i, client}); };
    session_replicator::settings s;
    s.self = static_cast<member>(i + 1);
    s.compact_after = compact_after;
    n.replicator = std::make_unique<session_replicator>(s, *n.logs, std::move(h));
    ASSERT_FALSE(n.replicator->load());
    n.up = true;
  }
  // The process is gone; with `lose_disk`, so is its store.
  void stop(int i, bool lose_disk = false) {
    auto& n = nodes_[static_cast<std::size_t>(i)];
    n.up = false;
    n.replicator.reset();
    n.logs.reset();
    if (lose_disk) n.store.reset();
  }
  void cut(int i) { nodes_[static_cast<std::size_t>(i)].reachable = false; }
  void join(int i) { nodes_[static_cast<std::size_t>(i)].reachable = true; }

  session_replicator& operator[](int i) { return *nodes_[static_cast<std::size_t>(i)].replicator; }

  // Writes are durable at once (memory stores); messages flow until none is left.
  void settle() {
    for (int round = 0; round < 1000; ++round) {
      bool moved = false;
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        auto& n = nodes_[i];
        if (!n.up) continue;
        for (auto seq : n.replicator->take_writes()) {
          n.replicator->on_durable(seq);
          moved = true;
        }
        for (auto& [to, batch] : n.replicator->take_outgoing()) {
          auto& peer = nodes_[to - 1];
          if (!peer.up || !peer.reachable || !n.reachable) continue;
          peer.replicator->on_messages(static_cast<member>(i + 1), std::move(batch));
          moved = true;
        }
      }
      if (!moved) return;
    }
    FAIL() << "messages still flowing after 1000 rounds";
  }
  void tick() {
    for (auto& n : nodes_) {
      if (n.up) n.replicator->on_tick();
    }
    settle();
  }

  // Proposes and settles; the outcome reported to the proposer.
  std::optional<bool> propose(int i, const std::string& client, const std::string& id) {
    std::optional<bool> result;
    if (!(*this)[i].propose(client, queue_change(client, id), [&](bool ok) { result = ok; })) {
      return std::nullopt;
    }
    settle();
    return result;
  }

  struct owned_event {
    int node;
    std::string client;
    session_records records;
  };
  std::vector<owned_event> owned_;
  std::vector<std::pair<int, std::string>> fenced_;
  std::vector<member> placement_{1, 2, 3};  // what the ring gives every session

 private:
  struct node {
    std::unique_ptr<storage::store> store;
    std::unique_ptr<log_storage> logs;
    std::unique_ptr<session_replicator> replicator;
    bool up = false;
    bool reachable = true;
  };
  std::vector<node> nodes_;
};

TEST(SessionReplicator, AnOwnersChangesCommitOnTheReplicas) {
  cluster3 c;
  c[0].acquire("dev-1");
  c.settle();
  ASSERT_EQ(c.owned_.size(), 1u);
  EXPECT_EQ(c.owned_[0].node, 0);
  EXPECT_TRUE(c.owned_[0].records.empty()) << "a new session";
  EXPECT_TRUE(c[0].serving("dev-1"));
  EXPECT_EQ(c.propose(0, "dev-1", "m1"), true);
  EXPECT_EQ(c.propose(0, "dev-1", "m2"), true);
  for (int i = 1; i < 3; ++i) {
    ASSERT_NE(c[i].log_of("dev-1"), nullptr);
    EXPECT_EQ(c[i].log_of("dev-1")->last_seq(), 2u);
    EXPECT_FALSE(c[i].serving("dev-1"));
  }
  EXPECT_EQ(c.propose(1, "dev-1", "not the owner"), std::nullopt);
  EXPECT_EQ(c[0].owned_sessions(), 1u);
  EXPECT_EQ(c[0].under_replicated(), 0u);
}

TEST(SessionReplicator, TheNextOwnerHasEveryCommittedChangeAndTheOldOneIsFenced) {
  cluster3 c;
  c[0].acquire("dev-1");
  c.settle();
  ASSERT_EQ(c.propose(0, "dev-1", "m1"), true);
  ASSERT_EQ(c.propose(0, "dev-1", "m2"), true);
  c.cut(0);
  c[1].acquire("dev-1");
  c.settle();
  ASSERT_EQ(c.owned_.size(), 2u);
  EXPECT_EQ(c.owned_[1].node, 1);
  EXPECT_EQ(c.owned_[1].records.size(), 2u);
  EXPECT_EQ(c.owned_[1].records.at({column::queue, session_key("dev-1", "m2")}), "message m2");
  // The cut-off owner still thinks it serves; its next change is refused.
  c.join(0);
  EXPECT_EQ(c.propose(0, "dev-1", "stale"), false);
  ASSERT_EQ(c.fenced_.size(), 1u);
  EXPECT_EQ(c.fenced_[0], (std::pair<int, std::string>{0, "dev-1"}));
  EXPECT_EQ(c.propose(1, "dev-1", "m3"), true);
}

TEST(SessionReplicator, ARestartedNodeKeepsItsLogsAndCanTakeOver) {
  cluster3 c;
  c[0].acquire("dev-1");
  c.settle();
  ASSERT_EQ(c.propose(0, "dev-1", "m1"), true);
  c.stop(2);
  c.start(2);
  ASSERT_NE(c[2].log_of("dev-1"), nullptr);
  EXPECT_EQ(c[2].log_of("dev-1")->last_seq(), 1u);
  c.stop(0);
  c[2].acquire("dev-1");
  c.settle();
  ASSERT_EQ(c.owned_.size(), 2u);
  EXPECT_EQ(c.owned_[1].node, 2);
  EXPECT_EQ(c.owned_[1].records.size(), 1u);
}

TEST(SessionReplicator, AReplicaThatMissedTheInstallIsSentItLater) {
  cluster3 c;
  c.cut(2);
  c[0].acquire("dev-1");
  c.settle();
  ASSERT_EQ(c.propose(0, "dev-1", "m1"), true) << "nodes 1 and 2 are a quorum";
  EXPECT_EQ(c[2].log_of("dev-1"), nullptr);
  c.join(2);
  c.tick();
  ASSERT_NE(c[2].log_of("dev-1"), nullptr) << "the install carries the replica set";
  EXPECT_EQ(c[2].log_of("dev-1")->last_seq(), 1u);
  EXPECT_EQ(c[2].log_of("dev-1")->settings().replicas, (std::vector<member>{1, 2, 3}));
}

TEST(SessionReplicator, ANodeThatLostItsDiskIsAnotherMember) {
  EXPECT_NE(member_number("n3", 1000), member_number("n3", 2000));
  EXPECT_EQ(member_number("n3", 1000), member_number("n3", 1000));
  EXPECT_NE(member_number("n3", 1000), member_number("n4", 1000));
  EXPECT_NE(member_number("", 0), 0u);
}

TEST(SessionReplicator, AnAcceptForALogThisNodeLacksAsksForTheInstall) {
  cluster3 c;
  accept a;
  a.gen = ballot{3, 1};
  a.prev = 7;
  c[2].on_messages(1, {addressed{"dev-1", a, {}, 0}});
  auto out = c[2].take_outgoing();
  ASSERT_EQ(out[1].size(), 1u);
  const auto& reply = std::get<accepted>(out[1][0].msg);
  EXPECT_FALSE(reply.ok);
  EXPECT_TRUE(reply.needs_install);
  EXPECT_EQ(c[2].log_of("dev-1"), nullptr) << "nothing is created without the replica set";
}

TEST(SessionReplicator, WhatIsShortOfTheReplicasIsUnderReplicatedUntilRepaired) {
  cluster3 c;
  c[0].acquire("dev-1");
  c[0].acquire("dev-2");
  c.settle();
  c.cut(2);
  ASSERT_EQ(c.propose(0, "dev-1", "m1"), true);
  EXPECT_EQ(c[0].under_replicated(), 1u) << "dev-1 is on two of three";
  c.join(2);
  c.tick();
  EXPECT_EQ(c[0].under_replicated(), 0u);
  EXPECT_EQ(c[2].log_of("dev-1")->last_seq(), 1u);
}

TEST(SessionReplicator, TheReplicaLagIsHowLongTheSessionFurthestBehindHasBeenSo) {
  cluster3 c;
  c[0].acquire("dev-1");
  c[0].acquire("dev-2");
  c.settle();
  EXPECT_EQ(c[0].replica_lag_ticks(), 0u);
  c.cut(2);
  ASSERT_EQ(c.propose(0, "dev-1", "m1"), true);
  EXPECT_EQ(c[0].replica_lag_ticks(), 1u) << "behind since this tick";
  c.tick();
  c.tick();
  ASSERT_EQ(c.propose(0, "dev-2", "m1"), true);  // behind for less long
  EXPECT_EQ(c[0].replica_lag_ticks(), 3u) << "the oldest counts";
  EXPECT_EQ(c[1].replica_lag_ticks(), 0u) << "a replica serves nothing";
  c.join(2);
  for (int i = 0; i < 5; ++i) c.tick();  // resends are spaced out
  EXPECT_EQ(c[0].replica_lag_ticks(), 0u) << "every replica holds everything again";
}

TEST(SessionReplicator, InstallsCountTheSessionDataTheyCarry) {
  cluster3 c;
  c[0].acquire("dev-1");
  c.settle();
  ASSERT_EQ(c.propose(0, "dev-1", "m1"), true);
  ASSERT_EQ(c.propose(0, "dev-1", "m2"), true);
  const auto sent_before = c[1].install_bytes_sent();
  const auto received_before = c[0].install_bytes_received();
  c[1].acquire("dev-1");  // a takeover installs the whole log on the others
  c.settle();
  const auto change_bytes = queue_change("dev-1", "m1").size() + queue_change("dev-1", "m2").size();
  EXPECT_EQ(c[1].install_bytes_sent() - sent_before, 2 * change_bytes) << "to two replicas";
  EXPECT_EQ(c[0].install_bytes_received() - received_before, change_bytes);
}

TEST(SessionReplicator, CommittedChangesAreFoldedIntoASnapshotEverywhere) {
  cluster3 c(/*compact_after=*/4);
  c[0].acquire("dev-1");
  c.settle();
  for (int i = 0; i < 10; ++i) ASSERT_EQ(c.propose(0, "dev-1", "m" + std::to_string(i)), true);
  c.tick();
  for (int i = 0; i < 3; ++i) {
    const auto* log = c[i].log_of("dev-1");
    EXPECT_GT(log->base_seq(), 0u) << "node " << i;
    EXPECT_LT(log->entries().size(), 5u) << "node " << i;
  }
  c.cut(0);
  c[1].acquire("dev-1");
  c.settle();
  ASSERT_EQ(c.owned_.size(), 2u);
  EXPECT_EQ(c.owned_[1].records.size(), 10u) << "snapshot and entries together";
}

TEST(SessionReplicator, ANewGenerationFailsTheChangesStillWaiting) {
  cluster3 c;
  c[0].acquire("dev-1");
  c.settle();
  c.cut(1);
  c.cut(2);
  std::optional<bool> result;
  ASSERT_TRUE(c[0].propose("dev-1", queue_change("dev-1", "m1"), [&](bool ok) { result = ok; }));
  c.settle();
  EXPECT_FALSE(result) << "no quorum: waiting";
  c[0].acquire("dev-1");  // the client connected again
  EXPECT_EQ(result, false);
}

TEST(SessionReplicator, APrepareFromAPeerCreatesTheLogOnlyOnAListedReplica) {
  cluster3 c;
  addressed stray{"dev-9", prepare{ballot{5, 99}}, {97, 98, 99}, 2};
  c[0].on_messages(99, {stray});
  EXPECT_EQ(c[0].log_of("dev-9"), nullptr) << "node 1 is not one of its replicas";
  EXPECT_TRUE(c[0].take_outgoing().empty());
}

}  // namespace
}  // namespace ringmq::cluster::replication

namespace ringmq::cluster::replication {
namespace {

// A session passes from owner to owner: its first owner dies, the next takes
// it over, and a third takes it from that one while it lives. Every owner's
// changes are reported committed to their proposers.
TEST(SessionReplicator, EachOwnerInTurnHasItsChangesReportedCommitted) {
  cluster3 c;
  c[0].acquire("dev-1");
  c.settle();
  EXPECT_EQ(c.propose(0, "dev-1", "a"), std::optional<bool>(true));
  c.stop(0);
  c[1].acquire("dev-1");
  c.settle();
  ASSERT_TRUE(c[1].serving("dev-1"));
  EXPECT_EQ(c.propose(1, "dev-1", "b"), std::optional<bool>(true));
  c[2].acquire("dev-1");
  c.settle();
  ASSERT_TRUE(c[2].serving("dev-1"));
  EXPECT_FALSE(c[1].serving("dev-1"));
  EXPECT_EQ(c.propose(2, "dev-1", "c"), std::optional<bool>(true));
  EXPECT_EQ(c.propose(2, "dev-1", "d"), std::optional<bool>(true));
}

TEST(SessionReplicator, AMoveKeepsTheChangesUnderWayAndServesThroughout) {
  cluster3 c;
  c[0].acquire("c");
  c.settle();
  ASSERT_EQ(c.propose(0, "c", "a"), std::optional<bool>(true));
  c.placement_ = {1, 2};  // a member left the ring: the session moves
  ASSERT_TRUE(c[0].move("c"));
  std::optional<bool> during;
  ASSERT_TRUE(c[0].propose("c", queue_change("c", "b"), [&](bool ok) { during = ok; }))
      << "a change made while moving waits for the new generation";
  c.settle();
  EXPECT_EQ(during, std::optional<bool>(true));
  EXPECT_EQ(c[0].log_of("c")->replicas(), (std::vector<member>{1, 2}));
  EXPECT_EQ(c.owned_.size(), 1u) << "served all along: not taken over again";
  EXPECT_EQ(c.propose(0, "c", "after"), std::optional<bool>(true));
}

TEST(SessionReplicator, AMoveThatFindsTheSessionServedElsewhereFailsWhatWasUnderWay) {
  cluster3 c;
  c[2].acquire("c");
  c.settle();
  ASSERT_EQ(c.propose(2, "c", "a"), std::optional<bool>(true));
  // Node 3 is cut off and does not hear that node 2 takes the session over.
  c.cut(2);
  c[1].acquire("c");
  c.settle();
  ASSERT_EQ(c.propose(1, "c", "b"), std::optional<bool>(true));
  std::optional<bool> stale;
  ASSERT_TRUE(c[2].propose("c", queue_change("c", "y"), [&](bool ok) { stale = ok; }));
  c.placement_ = {1, 3};
  ASSERT_TRUE(c[2].move("c"));  // its generation outranks node 2's: it wins
  c.join(2);
  c.settle();
  c.tick();
  EXPECT_EQ(stale, std::optional<bool>(false)) << "appended to a log that was not adopted";
  ASSERT_FALSE(c.owned_.empty());
  const auto& last = c.owned_.back();
  EXPECT_EQ(last.node, 2) << "taken over from the log, as any takeover";
  EXPECT_EQ(last.records.size(), 2u) << "a and b, not y";
}

}  // namespace
}  // namespace ringmq::cluster::replication
