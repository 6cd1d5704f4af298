// A network partition between real nodes, made with nft inside a network
// namespace of the test's own (tests/cluster/in_netns.sh): each node runs as
// a user of its own, and the cut drops every packet a node's sockets send to
// a node on the other side. The side without a quorum of a session's
// replicas refuses to serve it (CONNACK Server unavailable) rather than
// serve a second copy; the majority takes over what the minority held; after
// healing every session has one owner and nothing acknowledged is missing.

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "tests/cluster/cluster_client.hpp"
#include "tests/cluster/ledger_client.hpp"

namespace ringmq::testing {
namespace {

using qos = codec::qos;
using namespace std::chrono_literals;

bool run(const std::string& command) { return std::system(command.c_str()) == 0; }

// Drops everything the nodes of `side` send to the others and back.
class partition {
 public:
  partition(test_cluster& c, std::vector<int> side) : c_(c), side_(std::move(side)) {}
  ~partition() { heal(); }

  bool cut() {
    if (!run("nft add table inet ringmq_cut") ||
        !run("nft add chain inet ringmq_cut out "
             "'{ type filter hook output priority 0; policy accept; }'")) {
      return false;
    }
    cut_ = true;
    for (int i = 1; i <= c_.size(); ++i) {
      for (int j = 1; j <= c_.size(); ++j) {
        if (on_side(i) == on_side(j)) continue;
        const auto rule = "nft add rule inet ringmq_cut out meta skuid " +
                          std::to_string(*c_.node(i).uid()) + " ip daddr " + c_.node(j).ip() +
                          " drop";
        if (!run(rule)) return false;
      }
    }
    return true;
  }
  void heal() {
    if (cut_) run("nft delete table inet ringmq_cut");
    cut_ = false;
  }

 private:
  bool on_side(int i) const { return std::find(side_.begin(), side_.end(), i) != side_.end(); }

  test_cluster& c_;
  std::vector<int> side_;
  bool cut_ = false;
};

codec::properties expiry(std::uint32_t seconds) {
  codec::properties p;
  p.session_expiry_interval = seconds;
  return p;
}

// Asks every node what its log of `client` says: the nodes that serve it.
std::vector<std::string> owners_of(test_cluster& c, const std::string& client) {
  std::vector<std::string> owners;
  for (int i = 1; i <= c.size(); ++i) {
    const auto v = c.node(i).get_json("/api/v1/cluster?client_id=" + client);
    if (!v.is_object()) continue;
    const auto* session = v.as_object().at("client").as_object().if_contains("session");
    if (!session || !session->is_object()) continue;
    if (session->as_object().at("role").as_string() == "owner") owners.push_back(c.node(i).id());
  }
  return owners;
}

bool eventually_one_owner(test_cluster& c, const std::string& client,
                          std::vector<std::string>& owners) {
  const auto deadline = steady::now() + 15s;
  while (steady::now() < deadline) {
    owners = owners_of(c, client);
    if (owners.size() == 1) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

TEST(ClusterPartition, TheMinorityRefusesSessionsItHasNoQuorumForAndHealingLosesNothing) {
  if (!run("nft list tables >/dev/null 2>&1")) GTEST_SKIP() << "nft does not work here";
  test_cluster c(3, {"cluster.replicate_sessions=true", "cluster.replication_factor=3"},
                 {.separate_users = true});
  ASSERT_TRUE(c.started()) << c.describe();

  // Two persistent subscribers on n1; one stays connected there through the
  // partition, the other moves to the majority.
  ledger_client stays("stays", codec::protocol_version::v5);
  ledger_client moves("moves", codec::protocol_version::v5);
  for (auto* s : {&stays, &moves}) {
    ASSERT_TRUE(s->connect(c.node(1))) << s->error();
    ASSERT_TRUE(s->subscribe("part/#", qos::exactly_once)) << c.describe();
  }

  partition cut(c, {1});
  ASSERT_TRUE(cut.cut()) << "nft refused the rules";
  ASSERT_TRUE(c.node(1).wait_for_log_count("peer dead: node=", 2, 10s)) << c.describe();
  ASSERT_TRUE(c.node(2).wait_for_log("peer dead: node=n1", 10s)) << c.describe();
  ASSERT_TRUE(c.node(3).wait_for_log("peer dead: node=n1", 10s)) << c.describe();

  // The minority: no persistent session is served there.
  cluster_client v5, v311;
  EXPECT_FALSE(v5.connect(c.node(1), "minority-5", codec::protocol_version::v5, false,
                          expiry(600)));
  EXPECT_EQ(v5.connack().code, codec::reason_code::server_unavailable) << v5.error();
  EXPECT_FALSE(v311.connect(c.node(1), "minority-311", codec::protocol_version::v3_1_1, false));
  EXPECT_EQ(v311.connack().code, codec::reason_code::server_unavailable)
      << "3.1.1 return code 3: " << v311.error();
  cluster_client clean;
  EXPECT_TRUE(clean.connect(c.node(1), "minority-clean"))
      << "a session that ends with its connection needs no replicas: " << clean.error();
  // A message published there for the sessions it held is never acknowledged:
  // their changes cannot reach a write quorum.
  cluster_client minority_pub;
  ASSERT_TRUE(minority_pub.connect(c.node(1), "minority-pub")) << minority_pub.error();
  ASSERT_TRUE(minority_pub.send_publish("part/minority", "from the minority"));
  const auto minority_ack = minority_pub.puback(2s);
  EXPECT_TRUE(!minority_ack || static_cast<int>(*minority_ack) >= 0x80)
      << "the minority acknowledged a message it cannot keep";

  // The majority: "moves" connects there and gets its session; both
  // sessions take messages there.
  std::vector<cluster_member*> majority{&c.node(2), &c.node(3)};
  moves.close();
  ASSERT_TRUE(moves.connect_any(majority, steady::now() + 15s)) << moves.error();
  ledger_client publisher("publisher", codec::protocol_version::v5);
  ASSERT_TRUE(publisher.connect(c.node(3))) << publisher.error();
  std::vector<std::string> acknowledged;
  for (int i = 0; i < 20; ++i) {
    const auto payload = "m" + std::to_string(i);
    ASSERT_TRUE(publisher.publish("part/" + std::to_string(i), payload, qos::exactly_once,
                                  majority, steady::now() + 20s))
        << publisher.error() << "\n" << c.describe();
    acknowledged.push_back(payload);
  }

  cut.heal();
  ASSERT_TRUE(c.wait_converged(3, 20s)) << c.describe();

  // "stays" was taken over by the majority while its connection was on n1:
  // n1 found itself cut off from the others and closed it before they could
  // (0x9C Use another server); the client comes back.
  std::vector<cluster_member*> anywhere{&c.node(1), &c.node(2), &c.node(3)};
  for (auto* s : {&stays, &moves}) {
    const auto all_there = [&] {
      std::set<std::string> got(s->delivered().begin(), s->delivered().end());
      return std::all_of(acknowledged.begin(), acknowledged.end(),
                         [&](const auto& a) { return got.contains(a); });
    };
    EXPECT_TRUE(s->receive_until(all_there, anywhere, steady::now() + 30s))
        << s->id() << " is missing acknowledged messages\n" << c.describe();
    s->drain(300ms);
    std::set<std::string> once(s->delivered().begin(), s->delivered().end());
    EXPECT_EQ(once.size(), s->delivered().size()) << s->id() << " got a QoS 2 message twice";
    EXPECT_EQ(s->sessions_lost(), 0) << s->id();
  }
  EXPECT_EQ(stays.connections(), 2) << "closed once by the minority node, then back";
  EXPECT_EQ(stays.last_disconnect(), codec::reason_code::use_another_server)
      << "the minority node found itself cut off before the majority could take its sessions";

  for (const std::string client : {"stays", "moves", "publisher"}) {
    std::vector<std::string> owners;
    EXPECT_TRUE(eventually_one_owner(c, client, owners))
        << client << " is served by " << owners.size() << " nodes\n" << c.describe();
  }
}

// What `node` says of its link to `peer`: how many streams it opened to it,
// and whether one is open (or opening) now.
struct stream_view {
  std::int64_t opened = 0;
  bool open = false;
};
stream_view stream_to(cluster_member& node, const std::string& peer) {
  const auto v = node.get_json("/api/v1/cluster");
  if (!v.is_object()) return {};
  for (const auto& p : v.as_object().at("peers").as_array()) {
    const auto& o = p.as_object();
    if (o.at("id").as_string() != peer) continue;
    return {o.at("streams_opened").to_number<std::int64_t>(), o.at("stream").as_string() == "open"};
  }
  return {};
}

// A node that finds a cut-off peer dead closes its stream to it and opens a
// new one at once; that stream starts with a snapshot of the node's routes
// and waits, unanswered, until the cut heals. A subscription made meanwhile
// must reach the peer too: a route change was once sent to alive peers only,
// so the peer got the old snapshot and never the change, and forwarded
// nothing to the new subscriber.
TEST(ClusterPartition, ASubscriptionMadeWhileAPeerIsCutOffReachesItWhenTheCutHeals) {
  if (!run("nft list tables >/dev/null 2>&1")) GTEST_SKIP() << "nft does not work here";
  test_cluster c(3, {}, {.separate_users = true});
  ASSERT_TRUE(c.started()) << c.describe();
  const auto before_cut = stream_to(c.node(2), "n1").opened;
  ASSERT_GT(before_cut, 0) << c.describe();

  partition cut(c, {1});
  ASSERT_TRUE(cut.cut()) << "nft refused the rules";
  ASSERT_TRUE(c.node(2).wait_for_log("peer dead: node=n1", 10s)) << c.describe();
  const auto reopened = [&] {
    const auto s = stream_to(c.node(2), "n1");
    return s.open && s.opened > before_cut;
  };
  const auto deadline = steady::now() + 10s;
  while (!reopened() && steady::now() < deadline) std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(reopened()) << "n2 opened no new stream to n1 during the cut\n" << c.describe();

  cluster_client subscriber;
  ASSERT_TRUE(subscriber.connect(c.node(2), "late-subscriber")) << subscriber.error();
  const auto granted = subscriber.subscribe("healed/#", qos::at_least_once);
  ASSERT_EQ(granted.size(), 1u);
  ASSERT_EQ(granted[0], codec::reason_code::granted_qos_1);

  cut.heal();
  ASSERT_TRUE(c.wait_converged(3, 20s)) << c.describe();
  // Until then n1 takes no QoS 1 message: it was cut off (docs/cluster.md).
  ASSERT_TRUE(c.node(1).wait_for_log("cluster: the peers answer again", 10s)) << c.describe();

  cluster_client publisher;
  ASSERT_TRUE(publisher.connect(c.node(1), "healed-publisher")) << publisher.error();
  ASSERT_EQ(publisher.publish("healed/x", "after the cut"), codec::reason_code::success)
      << c.describe();
  const auto got = subscriber.receive(5s);
  ASSERT_TRUE(got.has_value()) << "n1 did not forward to a subscription n2 made while it was "
                                  "cut off\n"
                               << c.describe();
  EXPECT_EQ(got->payload, "after the cut");
}

}  // namespace
}  // namespace ringmq::testing
