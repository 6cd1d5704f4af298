// The engine and broker against the cluster seam (cluster_link.hpp), with a
// scripted cluster that answers when the test says so: a CONNECT waits for
// its claim and handles what the client sent meanwhile after the CONNACK,
// refused and revoked claims are refused CONNECTs, a SUBACK waits for the
// peers and retained messages follow it, route changes reach the cluster,
// and a message is delivered to the shared groups the cluster gives this node.

#include <functional>
#include <optional>

#include "tests/unit/core/engine_harness.hpp"

namespace ringmq::core {
namespace {

using namespace harness;

class scripted_cluster final : public cluster_link {
 public:
  // --- what the test sets ---
  bool answer_claims_at_once = true;
  claim_result answer = claim_result::granted;
  bool revoke_at_confirm = false;
  bool hold_route_syncs = false;
  std::optional<std::vector<std::string>> groups_for_this_node;  // set: the cluster decides
  std::size_t remote_nodes = 0;

  // --- what the broker did ---
  std::vector<std::pair<std::string, int>> route_changes;
  std::vector<std::function<void(claim_result)>> claims_waiting;
  std::vector<bool> claims_persistent;  // what each claim was told
  std::vector<std::function<void()>> syncs_waiting;
  std::vector<std::string> released;
  std::vector<std::pair<message_ptr, std::optional<retained_version>>> published;

  void local_route_added(const std::string& filter) override {
    route_changes.emplace_back(filter, +1);
  }
  void local_route_removed(const std::string& filter) override {
    route_changes.emplace_back(filter, -1);
  }
  std::size_t publish(const message_ptr& m, const retained_version* retained,
                      std::vector<std::string>& local_groups, bool& groups_decided) override {
    published.emplace_back(m, retained ? std::optional(*retained) : std::nullopt);
    if (groups_for_this_node) {
      groups_decided = true;
      local_groups = *groups_for_this_node;
    }
    return remote_nodes;
  }
  void when_routes_synced(std::function<void()> done) override {
    if (hold_route_syncs) {
      syncs_waiting.push_back(std::move(done));
    } else {
      done();
    }
  }
  bool claim(const std::string&, std::uint64_t, bool persistent, claim_result& result,
             std::function<void(claim_result)> later) override {
    claims_persistent.push_back(persistent);
    if (answer_claims_at_once) {
      result = answer;
      return true;
    }
    claims_waiting.push_back(std::move(later));
    return false;
  }
  bool confirm(const std::string&, std::uint64_t, const std::function<void()>& open) override {
    if (revoke_at_confirm) return false;
    open();
    return true;
  }
  void release(const std::string& client_id, std::uint64_t) override {
    released.push_back(client_id);
  }
};

class EngineCluster : public ::testing::Test {
 protected:
  void SetUp() override { b.broker().set_cluster(&cluster); }
  scripted_cluster cluster;  // outlives the bench: clients release their claims at the end
  harness::bench b;
};

TEST_F(EngineCluster, TheClusterHearsOfEachLocalRouteAsItComesAndGoes) {
  auto& a = b.connected("a");
  auto& c = b.connected("c");
  a.subscribe("plant/#");
  a.subscribe("plant/#");  // the same filter again replaces it: nothing new
  c.subscribe("plant/#");
  c.subscribe("$share/g/jobs/+");
  a.unsubscribe({"plant/#"});
  EXPECT_EQ(cluster.route_changes,
            (std::vector<std::pair<std::string, int>>{
                {"plant/#", +1}, {"plant/#", +1}, {"$share/g/jobs/+", +1}, {"plant/#", -1}}));
  c.disconnect();  // a clean session ends with its connection: its routes go
  c.lose();
  ASSERT_EQ(cluster.route_changes.size(), 6u);
  EXPECT_EQ(cluster.route_changes[4].second + cluster.route_changes[5].second, -2);
}

TEST_F(EngineCluster, AConnectWaitsForItsClaimAndThenHandlesWhatCameMeanwhile) {
  cluster.answer_claims_at_once = false;
  auto& c = b.add(v5);
  c.send(c.connect_packet("waiting"));
  // A client may send before its CONNACK (MQTT allows it).
  c.send(codec::subscribe_packet{7, {make_subscription("t/#", qos::at_least_once)}, {}});
  c.publish("t/1", "early", qos::at_least_once, 9);
  c.expect_nothing();
  EXPECT_TRUE(c.engine().connecting());
  ASSERT_EQ(cluster.claims_waiting.size(), 1u);
  cluster.claims_waiting[0](claim_result::granted);
  EXPECT_EQ(c.expect<codec::connack_packet>().code, reason_code::success);
  EXPECT_EQ(c.expect<codec::suback_packet>().packet_id, 7);
  // Its own message comes back to it (it subscribed first), then the PUBACK.
  auto got = c.received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(std::get<codec::publish_packet>(got[0]).payload, "early");
  EXPECT_EQ(std::get<codec::puback_packet>(got[1]).packet_id, 9);
  EXPECT_FALSE(c.engine().connecting());
}

TEST_F(EngineCluster, AClaimLostToANewerConnectionIsRefused) {
  cluster.answer = claim_result::refused;
  auto& v5c = b.add(v5);
  EXPECT_EQ(v5c.connect("lost-race").code, reason_code::server_busy);
  EXPECT_TRUE(v5c.closing());
  auto& v311 = b.add(v3_1_1);
  EXPECT_EQ(v311.connect("lost-race-311").code, reason_code::server_unavailable)
      << "3.1.1 has no Server busy: return code 3";
}

TEST_F(EngineCluster, APersistentSessionWithoutAQuorumIsServerUnavailable) {
  cluster.answer = claim_result::unavailable;
  auto& v5c = b.add(v5);
  codec::properties expiry;
  expiry.session_expiry_interval = 600;
  EXPECT_EQ(v5c.connect("partitioned", false, expiry).code, reason_code::server_unavailable);
  EXPECT_TRUE(v5c.closing());
  EXPECT_EQ(b.broker().sessions().find("partitioned"), nullptr) << "no second copy is served";
  auto& v311 = b.add(v3_1_1);
  EXPECT_EQ(v311.connect("partitioned-311", false).code, reason_code::server_unavailable)
      << "3.1.1: return code 3";
  EXPECT_EQ(cluster.claims_persistent, (std::vector<bool>{true, true}));
}

TEST_F(EngineCluster, OnlyPersistentSessionsAreClaimedAsPersistent) {
  auto& v5c = b.add(v5);
  EXPECT_EQ(v5c.connect("no-expiry", false).code, reason_code::success);
  auto& v311 = b.add(v3_1_1);
  EXPECT_EQ(v311.connect("clean-311", true).code, reason_code::success);
  EXPECT_EQ(cluster.claims_persistent, (std::vector<bool>{false, false}));
}

TEST_F(EngineCluster, AClaimRevokedBeforeTheSessionOpensIsRefused) {
  cluster.revoke_at_confirm = true;
  auto& c = b.add(v5);
  EXPECT_EQ(c.connect("revoked").code, reason_code::server_busy);
  EXPECT_EQ(b.broker().sessions().find("revoked"), nullptr) << "no session was opened";
}

TEST_F(EngineCluster, AFloodBeforeTheConnackCloses) {
  cluster.answer_claims_at_once = false;
  auto& c = b.add(v5);
  c.send(c.connect_packet("flood"));
  for (int i = 0; i < 64; ++i) c.publish("t", "x");
  EXPECT_FALSE(c.closing());
  c.publish("t", "one too many");
  EXPECT_TRUE(c.closing());
}

TEST_F(EngineCluster, AConnectionLostWhileItsClaimIsPendingLetsGoOfIt) {
  cluster.answer_claims_at_once = false;
  auto& c = b.add(v5);
  c.send(c.connect_packet("gone-early"));
  c.lose();
  EXPECT_EQ(cluster.released, std::vector<std::string>{"gone-early"});
  // The answer comes after all: nothing is sent, nothing opened.
  cluster.claims_waiting.at(0)(claim_result::granted);
  c.expect_nothing();
  EXPECT_EQ(b.broker().sessions().find("gone-early"), nullptr);
}

TEST_F(EngineCluster, ASubackWaitsForThePeersAndRetainedMessagesFollowIt) {
  auto& pub = b.connected("pub");
  pub.publish("config/mode", "eco", qos::at_most_once, 0, true);
  cluster.hold_route_syncs = true;
  auto& c = b.connected("sub");
  c.send(codec::subscribe_packet{3, {make_subscription("config/#", qos::at_least_once)}, {}});
  c.expect_nothing();
  ASSERT_EQ(cluster.syncs_waiting.size(), 1u);
  cluster.syncs_waiting[0]();
  EXPECT_EQ(c.expect<codec::suback_packet>().packet_id, 3);
  auto retained = c.expect<codec::publish_packet>();
  EXPECT_EQ(retained.payload, "eco");
  EXPECT_TRUE(retained.retain);
}

TEST_F(EngineCluster, OnlyTheSharedGroupsTheClusterChoseAreServedHere) {
  auto& g = b.connected("member-g");
  auto& h = b.connected("member-h");
  g.subscribe("$share/g/jobs/#");
  h.subscribe("$share/h/jobs/#");
  cluster.groups_for_this_node = std::vector<std::string>{"$share/g/jobs/#"};
  auto& pub = b.connected("jobs-pub");
  pub.publish("jobs/1", "work");
  EXPECT_EQ(payloads(g.publishes()), std::vector<std::string>{"work"});
  h.expect_nothing();  // group h's message went to a member on another node
}

TEST_F(EngineCluster, NoMatchingSubscribersOnlyWhenNoNodeMatched) {
  auto& pub = b.connected("lonely");
  cluster.remote_nodes = 1;
  pub.publish("far/away", "x", qos::at_least_once, 1);
  EXPECT_EQ(pub.expect<codec::puback_packet>().code, reason_code::success);
  cluster.remote_nodes = 0;
  pub.publish("far/away", "x", qos::at_least_once, 2);
  EXPECT_EQ(pub.expect<codec::puback_packet>().code, reason_code::no_matching_subscribers);
}

TEST_F(EngineCluster, RetainedWritesCarryIncreasingVersionsOfThisNode) {
  auto& pub = b.connected("retainer");
  pub.publish("a", "1", qos::at_most_once, 0, true);
  pub.publish("a", "2", qos::at_most_once, 0, true);
  pub.publish("b", "", qos::at_most_once, 0, true);  // a clear is a versioned write too
  ASSERT_EQ(cluster.published.size(), 3u);
  for (const auto& [m, v] : cluster.published) {
    ASSERT_TRUE(v);
    EXPECT_EQ(v->origin, b.broker().settings().node_id);
  }
  EXPECT_LT(cluster.published[0].second->hlc, cluster.published[1].second->hlc);
  EXPECT_LT(cluster.published[1].second->hlc, cluster.published[2].second->hlc);
  EXPECT_EQ(b.broker().retained().version_of("a"), cluster.published[1].second);
  EXPECT_EQ(b.broker().retained().tombstone_count(), 1u);
  // $SYS values stay on this node.
  auto sys = std::make_shared<message>();
  sys->topic = "$SYS/broker/uptime";
  sys->payload = "1";
  sys->retain = true;
  b.broker().publish(sys, b.clock.now);
  EXPECT_EQ(cluster.published.size(), 3u);
}

}  // namespace
}  // namespace ringmq::core
