// The member set changes under persistent sessions, with real processes and
// clients that keep their MQTT session state (tests/cluster/ledger_client.hpp):
// a cluster of three grows to five, then two of the first three die and are
// removed (`ringmq ctl forget`), one at a time. Publishing goes on between
// the steps, to offline persistent subscribers whose queues move with their
// sessions. After each step every session is back on the replica set the ring
// gives it (the admin API says none is misplaced or moving); at the end the
// subscribers reconnect to a survivor and find every acknowledged message, a
// QoS 2 message once, and their sessions' three copies are on the three
// members left. The epoch rises only with the joins and removals.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <thread>
#include <set>
#include <sstream>

#include "tests/cluster/ledger_client.hpp"

namespace ringmq::testing {
namespace {

using qos = codec::qos;
using namespace std::chrono_literals;

std::uint64_t epoch_of(cluster_member& node) {
  return node.get_json("/api/v1/cluster").as_object().at("epoch").to_number<std::uint64_t>();
}

// Every running node serves only sessions that are on the ring's replica set.
bool placed(std::vector<cluster_member*> nodes, std::string& why) {
  for (auto* n : nodes) {
    const auto v = n->get_json("/api/v1/cluster").as_object();
    const auto& s = v.at("sessions").as_object();
    const auto misplaced = s.at("misplaced").to_number<std::uint64_t>();
    const auto moving = s.at("moving").to_number<std::uint64_t>();
    const auto short_of_r = s.at("under_replicated").to_number<std::uint64_t>();
    if (misplaced || moving || short_of_r) {
      why = n->id() + ": misplaced " + std::to_string(misplaced) + ", moving " +
            std::to_string(moving) + ", under-replicated " + std::to_string(short_of_r);
      return false;
    }
  }
  return true;
}

bool wait_placed(std::vector<cluster_member*> nodes, std::string& why) {
  const auto deadline = steady::now() + 30s;
  while (steady::now() < deadline) {
    if (placed(nodes, why)) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// The replica set the owner of `client` reports, as member ids.
std::set<std::string> replicas_of(std::vector<cluster_member*> nodes, const std::string& client,
                                  std::size_t& in_sync) {
  for (auto* n : nodes) {
    const auto v = n->get_json("/api/v1/cluster?client_id=" + client).as_object();
    const auto* session = v.at("client").as_object().if_contains("session");
    if (!session || !session->is_object()) continue;
    const auto& s = session->as_object();
    if (s.at("role").as_string() != "owner") continue;
    std::set<std::string> out;
    for (const auto& r : s.at("replicas").as_array()) out.insert(std::string(r.as_string()));
    in_sync = s.at("replicas_in_sync").to_number<std::size_t>();
    return out;
  }
  return {};
}

// Reconnects `s` to `node` and receives until every acknowledged message
// came (trying `up` when a node refuses): none missing, at QoS 2 none twice,
// and the session was there.
void expect_every_message(ledger_client& s, cluster_member& node,
                          const std::vector<std::string>& acknowledged,
                          const std::vector<cluster_member*>& up, steady::time_point deadline,
                          qos q) {
  const auto all_there = [&] {
    std::set<std::string> got(s.delivered().begin(), s.delivered().end());
    return std::all_of(acknowledged.begin(), acknowledged.end(),
                       [&](const auto& a) { return got.contains(a); });
  };
  ASSERT_TRUE(s.connect(node)) << s.id() << ": " << s.error();
  s.receive_until(all_there, up, deadline);
  s.drain(300ms);  // long enough for a second copy of anything to arrive too
  std::map<std::string, int> count;
  for (const auto& d : s.delivered()) ++count[d];
  std::ostringstream missing, twice;
  for (const auto& a : acknowledged) {
    if (!count.contains(a)) missing << a << ' ';
    if (q == qos::exactly_once && count[a] > 1) twice << a << " x" << count[a] << ' ';
  }
  EXPECT_TRUE(missing.str().empty()) << s.id() << " lost: " << missing.str();
  EXPECT_TRUE(twice.str().empty()) << s.id() << " got QoS 2 messages twice: " << twice.str();
  EXPECT_EQ(s.sessions_lost(), 0) << s.id() << "'s session was gone";
}

class ElasticRun : public ::testing::TestWithParam<qos> {};

TEST_P(ElasticRun, GrowToFiveThenReplaceTwoMembersLosingNothing) {
  const auto q = GetParam();
  test_cluster c(3, {"cluster.replicate_sessions=true", "cluster.replication_factor=3"});
  ASSERT_TRUE(c.started()) << c.describe();
  ASSERT_EQ(epoch_of(c.node(1)), 3u);
  const auto deadline = steady::now() + 120s;

  ledger_client subscribers[] = {{"sub-5", codec::protocol_version::v5},
                                 {"sub-311", codec::protocol_version::v3_1_1}};
  for (auto& s : subscribers) {
    ASSERT_TRUE(s.connect(c.node(1))) << s.id() << ": " << s.error();
    ASSERT_TRUE(s.subscribe("elastic/#", q)) << s.id() << "\n" << c.describe();
    s.close();  // offline: its queue is what moves
  }
  ledger_client publisher("pub", codec::protocol_version::v5);
  ASSERT_TRUE(publisher.connect(c.node(2))) << publisher.error();

  std::vector<cluster_member*> running{&c.node(1), &c.node(2), &c.node(3)};
  std::vector<std::string> acknowledged;
  int next = 0;
  const auto publish_some = [&](int count) {
    // The publisher moves to a running node when its own goes.
    for (int i = 0; i < count; ++i, ++next) {
      const auto payload = "m" + std::to_string(next);
      if (!publisher.publish("elastic/" + std::to_string(next), payload, q, running, deadline,
                             {})) {
        return false;
      }
      acknowledged.push_back(payload);
    }
    return true;
  };
  std::string why;

  ASSERT_TRUE(publish_some(15)) << publisher.error();
  for (int joined = 0; joined < 2; ++joined) {
    auto* n = c.add({"cluster.replicate_sessions=true", "cluster.replication_factor=3"});
    ASSERT_NE(n, nullptr) << c.describe();
    running.push_back(n);
    ASSERT_TRUE(publish_some(10)) << publisher.error();
  }
  ASSERT_TRUE(c.wait_converged(5)) << c.describe();
  ASSERT_TRUE(wait_placed(running, why)) << "after the joins: " << why << "\n" << c.describe();
  EXPECT_EQ(epoch_of(c.node(4)), 5u) << "two joins";

  // n1, then n3, die and are removed; the sessions they held move to the
  // members left before the next one goes.
  std::uint64_t epoch = 5;
  for (int victim : {1, 3}) {
    c.node(victim).kill();
    std::erase(running, &c.node(victim));
    ASSERT_TRUE(publish_some(10)) << publisher.error() << "\n" << c.describe();
    const auto r = run_ctl(*running.front(), {"forget", c.node(victim).id()});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    ++epoch;
    ASSERT_TRUE(c.wait_converged(epoch)) << c.describe();
    ASSERT_TRUE(wait_placed(running, why))
        << "after removing n" << victim << ": " << why << "\n" << c.describe();
    ASSERT_TRUE(publish_some(5)) << publisher.error();
  }
  for (auto* n : running) EXPECT_EQ(epoch_of(*n), 7u) << n->id() << ": 3 + 2 joins + 2 removals";
  std::uint64_t moved = 0;
  for (auto* n : running) {
    moved += n->get_json("/api/v1/cluster").as_object().at("sessions").as_object().at("moved")
                 .to_number<std::uint64_t>();
  }
  EXPECT_GT(moved, 0u) << "sessions moved to the sets the ring gave them";

  std::set<std::string> members;
  for (auto* n : running) members.insert(n->id());
  for (auto& s : subscribers) {
    std::size_t in_sync = 0;
    EXPECT_EQ(replicas_of(running, s.id(), in_sync), members) << s.id();
    EXPECT_EQ(in_sync, 3u) << s.id() << ": every copy holds the whole log";
    expect_every_message(s, *running.back(), acknowledged, running, deadline, q);
  }
  EXPECT_EQ(publisher.sessions_lost(), 0) << "the publisher's session was gone after a reconnect";
  std::cout << "acknowledged " << acknowledged.size() << ", refused and retried "
            << publisher.refusals() << std::endl;
}

INSTANTIATE_TEST_SUITE_P(Qos, ElasticRun, ::testing::Values(qos::at_least_once, qos::exactly_once),
                         [](const auto& info) {
                           return info.param == qos::at_least_once ? std::string("Qos1")
                                                                   : std::string("Qos2");
                         });

// A rolling restart: every node in turn stops (SIGTERM, no leave) and starts
// again with its data directory while QoS 1 / QoS 2 messages go on to
// offline persistent subscribers. The member set does not change (the epoch
// stays), each node is back and every session back on its copies before the
// next one goes, and nothing acknowledged is lost or duplicated.
TEST_P(ElasticRun, RollingRestartOfEveryNodeLosesNothing) {
  const auto q = GetParam();
  test_cluster c(3, {"cluster.replicate_sessions=true", "cluster.replication_factor=3"});
  ASSERT_TRUE(c.started()) << c.describe();
  const auto deadline = steady::now() + 120s;
  ledger_client subscribers[] = {{"roll-sub-5", codec::protocol_version::v5},
                                 {"roll-sub-311", codec::protocol_version::v3_1_1}};
  for (auto& s : subscribers) {
    ASSERT_TRUE(s.connect(c.node(1))) << s.id() << ": " << s.error();
    ASSERT_TRUE(s.subscribe("roll/#", q)) << s.id();
    s.close();
  }
  ledger_client publisher("roll-pub", codec::protocol_version::v5);
  ASSERT_TRUE(publisher.connect(c.node(2))) << publisher.error();
  std::vector<cluster_member*> all{&c.node(1), &c.node(2), &c.node(3)};
  std::vector<std::string> acknowledged;
  int next = 0;
  const auto publish_some = [&](const std::vector<cluster_member*>& up, int count) {
    for (int i = 0; i < count; ++i, ++next) {
      const auto payload = "m" + std::to_string(next);
      if (!publisher.publish("roll/" + std::to_string(next), payload, q, up, deadline, {})) {
        return false;
      }
      acknowledged.push_back(payload);
    }
    return true;
  };
  ASSERT_TRUE(publish_some(all, 10)) << publisher.error();
  std::string why;
  for (int i = 1; i <= 3; ++i) {
    auto& n = c.node(i);
    const auto status = n.stop();
    ASSERT_TRUE(status && status->clean()) << n.describe();
    std::vector<cluster_member*> up;
    for (auto* m : all) {
      if (m != &n) up.push_back(m);
    }
    ASSERT_TRUE(publish_some(up, 10)) << publisher.error() << "\n" << c.describe();
    ASSERT_TRUE(n.start()) << n.describe();  // no seeds: it remembers its members
    ASSERT_TRUE(c.wait_converged(3)) << "the epoch stays 3\n" << c.describe();
    ASSERT_TRUE(wait_placed(all, why)) << "after restarting n" << i << ": " << why;
    ASSERT_TRUE(publish_some(all, 5)) << publisher.error();
  }
  for (auto* n : all) EXPECT_EQ(epoch_of(*n), 3u) << n->id();
  for (auto& s : subscribers) expect_every_message(s, c.node(3), acknowledged, all, deadline, q);
  EXPECT_EQ(publisher.sessions_lost(), 0);
}

// A node told to leave (ringmq ctl leave) hands its sessions to the other
// members, then disconnects its clients (a Paho 5.0 client hears 0x9C with
// the configured Server Reference and finds its session on another node),
// leaves the member set and exits 0 -- not before, though SIGTERM comes at
// once, as Kubernetes sends it when it scales down.
TEST(ClusterLeave, ANodeLeavesWithItsSessionsAndStopsOnlyWhenNothingNeedsIt) {
  const std::string reference = "ringmq-1.example:1883";
  test_cluster c(4, {"cluster.replicate_sessions=true", "cluster.replication_factor=3",
                     "cluster.server_reference=" + reference});
  ASSERT_TRUE(c.started()) << c.describe();
  const auto deadline = steady::now() + 120s;
  auto& leaver = c.node(4);
  std::vector<cluster_member*> others{&c.node(1), &c.node(2), &c.node(3)};

  // Offline persistent subscribers served by the leaving node, with queues.
  ledger_client subscribers[] = {{"leave-sub-5", codec::protocol_version::v5},
                                 {"leave-sub-311", codec::protocol_version::v3_1_1}};
  for (auto& s : subscribers) {
    ASSERT_TRUE(s.connect(leaver)) << s.id() << ": " << s.error();
    ASSERT_TRUE(s.subscribe("leaving/#", qos::exactly_once)) << s.id();
    s.close();
  }
  ledger_client publisher("leave-pub", codec::protocol_version::v5);
  ASSERT_TRUE(publisher.connect(c.node(1))) << publisher.error();
  std::vector<std::string> acknowledged;
  for (int i = 0; i < 20; ++i) {
    const auto payload = "m" + std::to_string(i);
    ASSERT_TRUE(publisher.publish("leaving/" + std::to_string(i), payload, qos::exactly_once,
                                  others, deadline, {}))
        << publisher.error();
    acknowledged.push_back(payload);
  }

  // A Paho 5.0 client on the leaving node.
  const std::string python = "/usr/bin/python3";
  const std::string script = std::string(RINGMQ_INTEROP_CLIENTS_DIR) + "/paho_cluster_scenarios.py";
  const auto address = [](cluster_member& n) {
    return n.ip() + ":" + std::to_string(n.mqtt_port());
  };
  background_process paho({python, script, "leaving", "5", address(leaver), address(c.node(1)),
                           reference});
  ASSERT_TRUE(paho.wait_for_out("connected", milliseconds(20'000))) << paho.out() << paho.err();

  const auto r = run_ctl(leaver, {"leave"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("leaving"), std::string::npos) << r.out;
  EXPECT_TRUE(leaver.wait_for_log("leaving the cluster: new connections refused"));
  // SIGTERM at once: the node still waits until its sessions are elsewhere.
  const auto status = leaver.stop(milliseconds(90'000));
  ASSERT_TRUE(status && status->clean()) << leaver.describe();
  EXPECT_TRUE(leaver.log().find("every session is on the other members") != std::string::npos)
      << leaver.log();
  EXPECT_TRUE(leaver.log().find("left the cluster in") != std::string::npos) << leaver.log();

  const auto paho_status = paho.wait_exit(milliseconds(60'000));
  EXPECT_TRUE(paho_status && paho_status->clean()) << paho.out() << paho.err();

  // The member set: 4 joins, the drain and the leave.
  for (auto* n : others) {
    EXPECT_TRUE(n->wait_epoch(6)) << n->describe();
    const auto v = n->get_json("/api/v1/cluster").as_object();
    EXPECT_EQ(v.at("members").as_array().size(), 3u) << n->id();
  }
  std::string why;
  EXPECT_TRUE(wait_placed(others, why)) << why;
  for (auto& s : subscribers) {
    std::size_t in_sync = 0;
    const auto replicas = replicas_of(others, s.id(), in_sync);
    EXPECT_FALSE(replicas.contains(leaver.id())) << s.id();
    expect_every_message(s, c.node(2), acknowledged, others, deadline, qos::exactly_once);
  }
}

// A leaving node that stops answering for a while (a long pause: its peers
// find it dead and take over the sessions it served) still finishes: its
// moves end one way or the other, and it leaves and exits 0.
TEST(ClusterLeave, ALeavingNodeThatWasPausedStillFinishes) {
  test_cluster c(4, {"cluster.replicate_sessions=true", "cluster.replication_factor=3"});
  ASSERT_TRUE(c.started()) << c.describe();
  const auto deadline = steady::now() + 120s;
  auto& leaver = c.node(4);
  std::vector<cluster_member*> others{&c.node(1), &c.node(2), &c.node(3)};
  ledger_client subscribers[] = {{"paused-sub-1", codec::protocol_version::v5},
                                 {"paused-sub-2", codec::protocol_version::v5},
                                 {"paused-sub-3", codec::protocol_version::v3_1_1}};
  for (auto& s : subscribers) {
    ASSERT_TRUE(s.connect(leaver)) << s.id() << ": " << s.error();
    ASSERT_TRUE(s.subscribe("paused/#", qos::at_least_once)) << s.id();
    s.close();
  }
  ledger_client publisher("paused-pub", codec::protocol_version::v5);
  ASSERT_TRUE(publisher.connect(c.node(1))) << publisher.error();
  std::vector<std::string> acknowledged;
  for (int i = 0; i < 10; ++i) {
    const auto payload = "m" + std::to_string(i);
    ASSERT_TRUE(publisher.publish("paused/" + std::to_string(i), payload, qos::at_least_once,
                                  others, deadline, {}))
        << publisher.error();
    acknowledged.push_back(payload);
  }
  const auto r = run_ctl(leaver, {"leave"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  leaver.pause();
  std::this_thread::sleep_for(3s);  // longer than cluster.dead_timeout_ms (1.5 s)
  leaver.resume();
  const auto status = leaver.wait_exit(milliseconds(60'000));
  ASSERT_TRUE(status && status->clean()) << leaver.describe();
  for (auto& s : subscribers) {
    expect_every_message(s, c.node(3), acknowledged, others, deadline, qos::at_least_once);
  }
}

}  // namespace
}  // namespace ringmq::testing
