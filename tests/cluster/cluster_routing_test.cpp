// Three real ringmq processes on loopback behave like one broker: messages
// cross nodes at every QoS with their MQTT 5 properties, a SUBACK means the
// other nodes route to the subscription, wildcards and shared groups work
// across nodes, retained messages are everywhere, and one client id is never
// connected to two nodes at once (docs/cluster.md).

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/cluster/cluster_client.hpp"
#include "tests/integration/observability_http.hpp"

namespace ringmq::testing {
namespace {

using codec::protocol_version;
using codec::reason_code;
using qos = codec::qos;

class ClusterRouting : public ::testing::Test {
 protected:
  void SetUp() override {
    // Subscribers that fall behind under load keep everything (the queue
    // limit drops by design; these tests are about the cluster).
    cluster_ = std::make_unique<test_cluster>(3, std::vector<std::string>{"mqtt.max_queued_messages=100000"});
    ASSERT_TRUE(cluster_->started()) << cluster_->describe();
  }
  cluster_member& n(int i) { return cluster_->node(i); }
  std::unique_ptr<test_cluster> cluster_;
};

TEST_F(ClusterRouting, ThreeNodesAgreeOnOneMemberSet) {
  std::set<std::string> digests;
  for (int i = 1; i <= 3; ++i) {
    const auto v = n(i).get_json("/api/v1/cluster");
    ASSERT_TRUE(v.is_object()) << n(i).describe();
    const auto& o = v.as_object();
    EXPECT_EQ(o.at("epoch").to_number<int>(), 3);
    EXPECT_EQ(o.at("members").as_array().size(), 3u);
    EXPECT_EQ(o.at("peers").as_array().size(), 2u);
    digests.insert(std::string(o.at("digest").as_string()));
    // Every slot of the ring has an owner, and each member holds about a third.
    int slots = 0;
    for (const auto& m : o.at("ring").as_object().at("members").as_array()) {
      slots += m.as_object().at("slots").to_number<int>();
      EXPECT_NEAR(m.as_object().at("share").to_number<double>(), 1.0 / 3, 0.05);
    }
    EXPECT_EQ(slots, o.at("ring").as_object().at("slots").to_number<int>());
  }
  EXPECT_EQ(digests.size(), 1u) << "the same member set everywhere";
}

// Publisher on n1, subscriber on n3, at QoS 0, 1 and 2, in MQTT 3.1.1 and 5.0.
TEST_F(ClusterRouting, MessagesCrossNodesAtEveryQoSInBothVersions) {
  for (auto version : {protocol_version::v3_1_1, protocol_version::v5}) {
    const bool v5 = version == protocol_version::v5;
    const std::string prefix = v5 ? "v5/" : "v311/";
    cluster_client sub, pub;
    ASSERT_TRUE(sub.connect(n(3), prefix + "sub", version)) << sub.error();
    ASSERT_TRUE(pub.connect(n(1), prefix + "pub", version)) << pub.error();
    ASSERT_EQ(sub.subscribe(prefix + "plant/+/temp", qos::exactly_once),
              std::vector<reason_code>{static_cast<reason_code>(2)});
    for (auto q : {qos::at_most_once, qos::at_least_once, qos::exactly_once}) {
      const auto payload = "reading at qos " + std::to_string(static_cast<int>(q));
      const auto ack = pub.publish(prefix + "plant/7/temp", payload, q);
      ASSERT_TRUE(ack) << pub.error();
      EXPECT_EQ(*ack, reason_code::success) << "a v5 publisher is told the message was routed";
      auto got = sub.receive();
      ASSERT_TRUE(got) << "qos " << static_cast<int>(q) << "\n" << cluster_->describe();
      EXPECT_EQ(got->topic, prefix + "plant/7/temp");
      EXPECT_EQ(got->payload, payload);
      EXPECT_EQ(got->qos, q);
      EXPECT_FALSE(got->dup);
    }
  }
}

TEST_F(ClusterRouting, Mqtt5PropertiesArriveIntactAndExpiryCountsDown) {
  cluster_client sub, pub;
  ASSERT_TRUE(sub.connect(n(2), "props-sub")) << sub.error();
  ASSERT_TRUE(pub.connect(n(1), "props-pub")) << pub.error();
  ASSERT_FALSE(sub.subscribe("req/#", qos::at_least_once, 42).empty());
  codec::properties props;
  props.payload_format_indicator = 1;
  props.content_type = "application/json";
  props.response_topic = "reply/props-pub";
  props.correlation_data = std::string("\x00\x01\xff", 3);
  props.message_expiry_interval = 120;
  props.user_properties = {{"site", "plant-7"}, {"line", "3"}, {"site", "again"}};
  ASSERT_TRUE(pub.publish("req/valve", R"({"open":true})", qos::at_least_once, false, props));
  auto got = sub.receive();
  ASSERT_TRUE(got) << cluster_->describe();
  EXPECT_EQ(got->props.payload_format_indicator, 1);
  EXPECT_EQ(got->props.content_type, "application/json");
  EXPECT_EQ(got->props.response_topic, "reply/props-pub");
  EXPECT_EQ(got->props.correlation_data, std::string("\x00\x01\xff", 3));
  EXPECT_EQ(got->props.user_properties, props.user_properties) << "in order, duplicates kept";
  ASSERT_TRUE(got->props.message_expiry_interval);
  EXPECT_LE(*got->props.message_expiry_interval, 120u);
  EXPECT_GE(*got->props.message_expiry_interval, 115u);
  // The subscription identifier is the receiving node's, from the subscriber's SUBSCRIBE.
  EXPECT_EQ(got->props.subscription_identifiers, std::vector<std::uint32_t>{42});

  // No Local and QoS downgrade are applied on the receiving node too.
  cluster_client both;
  ASSERT_TRUE(both.connect(n(3), "both-ways")) << both.error();
  codec::subscribe_options no_local;
  no_local.no_local = true;
  ASSERT_FALSE(both.subscribe("echo/#", qos::at_most_once, std::nullopt, no_local).empty());
  ASSERT_FALSE(sub.subscribe("echo/#", qos::at_most_once).empty());
  ASSERT_TRUE(both.publish("echo/x", "mine", qos::exactly_once));
  auto downgraded = sub.receive();
  ASSERT_TRUE(downgraded);
  EXPECT_EQ(downgraded->qos, qos::at_most_once) << "granted QoS 0";
  EXPECT_FALSE(both.receive(milliseconds(300))) << "No Local: not back to its publisher";
}

// The guarantee of docs/cluster.md: once a client has its SUBACK, a message
// published afterwards on another node reaches it. Fresh topics every time,
// so nothing is routed before the subscription exists.
TEST_F(ClusterRouting, SubscribeThenPublishElsewhereNeverMisses) {
  cluster_client sub, pub1, pub2;
  ASSERT_TRUE(sub.connect(n(3), "race-sub")) << sub.error();
  ASSERT_TRUE(pub1.connect(n(1), "race-pub-1")) << pub1.error();
  ASSERT_TRUE(pub2.connect(n(2), "race-pub-2")) << pub2.error();
  constexpr int iterations = 10'000;
  int misses = 0;
  for (int i = 0; i < iterations; ++i) {
    const auto topic = "race/" + std::to_string(i);
    ASSERT_EQ(sub.subscribe(topic, qos::at_most_once).size(), 1u) << "iteration " << i;
    // At once after the SUBACK, from the other two nodes in turn.
    auto& pub = i % 2 ? pub1 : pub2;
    ASSERT_TRUE(pub.publish(topic, std::to_string(i), qos::at_most_once));
    auto got = sub.receive(milliseconds(2'000));
    if (!got || got->payload != std::to_string(i)) ++misses;
    ASSERT_TRUE(sub.unsubscribe(topic));
  }
  EXPECT_EQ(misses, 0) << "of " << iterations;
  const auto metrics = http_request_to(n(3).ip(), n(3).http_port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("ringmq_cluster_route_sync_timeouts_total 0"), std::string::npos)
      << "no SUBACK went out on a timeout";
}

// Per publisher and topic, messages arrive in the order they were published,
// whichever nodes the publishers and the subscriber are on.
TEST_F(ClusterRouting, EachPublishersOrderIsKeptAcrossNodes) {
  cluster_client sub;
  ASSERT_TRUE(sub.connect(n(3), "order-sub")) << sub.error();
  ASSERT_FALSE(sub.subscribe("order/#", qos::at_least_once).empty());
  cluster_client a, b;
  ASSERT_TRUE(a.connect(n(1), "order-a")) << a.error();
  ASSERT_TRUE(b.connect(n(2), "order-b")) << b.error();
  constexpr int per_publisher = 1'000;
  // Both publish at once (MQTT orders messages of one publisher, topic and QoS).
  std::thread ta([&] {
    for (int i = 0; i < per_publisher; ++i) a.publish("order/a", "a" + std::to_string(i));
  });
  std::thread tb([&] {
    for (int i = 0; i < per_publisher; ++i) b.publish("order/b", "b" + std::to_string(i));
  });
  // Read while they publish: a subscriber that does not read has its queue
  // fill up (mqtt.max_queued_messages), on one node as on several.
  int next_a = 0, next_b = 0;
  std::string problem;
  while (problem.empty() && (next_a < per_publisher || next_b < per_publisher)) {
    auto got = sub.receive(milliseconds(5'000));
    if (!got) {
      problem = "nothing more after a" + std::to_string(next_a) + ", b" + std::to_string(next_b);
      break;
    }
    auto& next = got->payload[0] == 'a' ? next_a : next_b;
    if (got->payload.substr(1) != std::to_string(next)) {
      problem = "got " + got->payload + " when " + got->payload.substr(0, 1) +
                std::to_string(next) + " was next";
    }
    ++next;
  }
  ta.join();
  tb.join();
  EXPECT_EQ(problem, "");
}

TEST_F(ClusterRouting, WildcardsAndSharedGroupsSpanNodes) {
  // Wildcards on every node, a publisher on n1.
  std::vector<std::unique_ptr<cluster_client>> wild;
  for (int i = 1; i <= 3; ++i) {
    wild.push_back(std::make_unique<cluster_client>());
    ASSERT_TRUE(wild.back()->connect(n(i), "wild-" + std::to_string(i)));
    ASSERT_FALSE(wild.back()->subscribe(i == 2 ? "fleet/#" : "fleet/+/gps").empty());
  }
  // Two members of one shared group on n2 and n3, one on n1.
  std::vector<std::unique_ptr<cluster_client>> workers;
  for (int i : {1, 2, 3, 3}) {
    workers.push_back(std::make_unique<cluster_client>());
    ASSERT_TRUE(workers.back()->connect(n(i), "worker-" + std::to_string(workers.size())));
    ASSERT_FALSE(workers.back()->subscribe("$share/crunch/fleet/+/gps").empty());
  }
  cluster_client pub;
  ASSERT_TRUE(pub.connect(n(1), "fleet-pub")) << pub.error();
  constexpr int messages = 200;
  for (int m = 0; m < messages; ++m) {
    ASSERT_TRUE(pub.publish("fleet/truck-" + std::to_string(m % 7) + "/gps", std::to_string(m),
                            qos::at_least_once));
  }
  for (auto& w : wild) {
    std::set<std::string> got;
    while (auto p = w->receive(milliseconds(2'000))) {
      got.insert(p->payload);
      if (got.size() == messages) break;
    }
    EXPECT_EQ(got.size(), static_cast<std::size_t>(messages)) << "a wildcard subscriber missed";
  }
  // Exactly one delivery per message in the group, spread over the nodes.
  std::map<std::string, int> deliveries;
  std::vector<int> per_worker;
  for (auto& w : workers) {
    int count = 0;
    while (auto p = w->receive(milliseconds(500))) {
      ++deliveries[p->payload];
      ++count;
    }
    per_worker.push_back(count);
  }
  EXPECT_EQ(deliveries.size(), static_cast<std::size_t>(messages)) << "some message got no member";
  for (const auto& [payload, count] : deliveries) {
    EXPECT_EQ(count, 1) << "message " << payload << " went to " << count << " members";
  }
  for (std::size_t i = 0; i < per_worker.size(); ++i) {
    EXPECT_GT(per_worker[i], messages / 10) << "worker " << i << " on its node got too few";
  }
}

TEST_F(ClusterRouting, RetainedMessagesAreEverywhereAndClearedEverywhere) {
  cluster_client pub;
  ASSERT_TRUE(pub.connect(n(1), "retainer")) << pub.error();
  ASSERT_TRUE(pub.publish("site/gate", "closed", qos::at_least_once, true));
  // A subscriber arriving later on n2 and n3 is answered from its own node.
  for (int i : {2, 3}) {
    cluster_client late;
    ASSERT_TRUE(late.connect(n(i), "late-" + std::to_string(i))) << late.error();
    bool seen = false;
    // Replication is asynchronous: the retained write reaches n2/n3 within a
    // batch; a fresh subscription is retried until it is there (bounded).
    for (int attempt = 0; attempt < 100 && !seen; ++attempt) {
      ASSERT_FALSE(late.subscribe("site/#").empty());
      if (auto got = late.receive(milliseconds(50))) {
        EXPECT_EQ(got->payload, "closed");
        EXPECT_TRUE(got->retain);
        seen = true;
      }
      late.unsubscribe("site/#");
    }
    EXPECT_TRUE(seen) << "n" << i << " never had the retained message";
  }
  // Cleared on n3: gone from every node.
  cluster_client clearer;
  ASSERT_TRUE(clearer.connect(n(3), "clearer")) << clearer.error();
  ASSERT_TRUE(clearer.publish("site/gate", "", qos::at_least_once, true));
  for (int i = 1; i <= 3; ++i) {
    bool gone = false;
    for (int attempt = 0; attempt < 100 && !gone; ++attempt) {
      const auto v = n(i).get_json("/api/v1/retained?filter=site%2F%23");
      gone = v.is_object() && v.as_object().at("data").as_array().empty();
      if (!gone) std::this_thread::sleep_for(milliseconds(20));
    }
    EXPECT_TRUE(gone) << "n" << i << " still has the cleared message";
    cluster_client check;
    ASSERT_TRUE(check.connect(n(i), "check-" + std::to_string(i))) << check.error();
    ASSERT_FALSE(check.subscribe("site/#").empty());
    EXPECT_FALSE(check.receive(milliseconds(200))) << "n" << i;
  }
}

// A client id moving between nodes: the old connection is closed (5.0:
// DISCONNECT 0x8E) before the new one has its CONNACK.
TEST_F(ClusterRouting, AClientIdIsNeverConnectedToTwoNodes) {
  std::unique_ptr<cluster_client> previous;
  for (int hop = 0; hop < 9; ++hop) {
    auto& node = n(1 + hop % 3);
    auto next = std::make_unique<cluster_client>();
    ASSERT_TRUE(next->connect(node, "wanderer")) << "hop " << hop << ": " << next->error();
    if (previous) {
      // The new CONNACK is here: the old connection must already be closing.
      const auto d = previous->wait_closed(milliseconds(2'000));
      EXPECT_TRUE(previous->socket().closed()) << "hop " << hop;
      ASSERT_TRUE(d) << "hop " << hop << ": no DISCONNECT";
      EXPECT_EQ(d->code, reason_code::session_taken_over);
    }
    previous = std::move(next);
  }
  // The last one is alive and works.
  ASSERT_FALSE(previous->subscribe("wander/#").empty());
  cluster_client pub;
  ASSERT_TRUE(pub.connect(n(2), "wander-pub")) << pub.error();
  ASSERT_TRUE(pub.publish("wander/x", "still here"));
  auto got = previous->receive();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->payload, "still here");
}

TEST_F(ClusterRouting, ConcurrentClaimsOfOneClientIdLeaveOneConnection) {
  // Four connections of one client id start on three nodes at once.
  std::vector<std::unique_ptr<cluster_client>> clients;
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int i = 0; i < 4; ++i) clients.push_back(std::make_unique<cluster_client>());
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { ok[i] = clients[i]->connect(n(1 + i % 3), "contested"); });
  }
  for (auto& t : threads) t.join();
  // Whatever the order, at most one is left open a moment later.
  int open = 0;
  for (int i = 0; i < 4; ++i) {
    if (!ok[i]) continue;
    clients[i]->wait_closed(milliseconds(1'500));
    if (!clients[i]->socket().closed()) ++open;
  }
  EXPECT_EQ(open, 1) << cluster_->describe();
}

TEST_F(ClusterRouting, ATakeoverStormOfOneClientIdAcrossNodesLeavesOneConnection) {
  // Waves of nine connections of one client id with a persistent session, three
  // per node at once: each wave leaves at most one of them open, the last one
  // works, and a pair of other clients across the nodes is served throughout.
  constexpr int waves = 6;
  constexpr int per_wave = 9;
  cluster_client watcher;
  ASSERT_TRUE(watcher.connect(n(3), "storm-watcher")) << watcher.error();
  ASSERT_FALSE(watcher.subscribe("storm/#").empty());
  cluster_client bystander;
  ASSERT_TRUE(bystander.connect(n(1), "storm-bystander")) << bystander.error();
  codec::properties expiry;
  expiry.session_expiry_interval = 600;
  std::vector<std::unique_ptr<cluster_client>> last;
  for (int wave = 0; wave < waves; ++wave) {
    std::vector<std::unique_ptr<cluster_client>> clients;
    std::vector<std::thread> threads;
    std::vector<int> ok(per_wave, 0);
    for (int i = 0; i < per_wave; ++i) clients.push_back(std::make_unique<cluster_client>());
    for (int i = 0; i < per_wave; ++i) {
      threads.emplace_back([&, i] {
        ok[i] = clients[i]->connect(n(1 + i % 3), "storm-device", codec::protocol_version::v5,
                                    false, expiry);
      });
    }
    for (auto& t : threads) t.join();
    int open = 0;
    for (int i = 0; i < per_wave; ++i) {
      if (!ok[i]) continue;
      clients[i]->wait_closed(milliseconds(1'500));
      if (!clients[i]->socket().closed()) ++open;
    }
    EXPECT_LE(open, 1) << "wave " << wave << "\n" << cluster_->describe();
    // The others are served while it goes on.
    ASSERT_EQ(bystander.publish("storm/bystander", "wave " + std::to_string(wave)),
              codec::reason_code::success)
        << cluster_->describe();
    auto got = watcher.receive(milliseconds(5'000));
    ASSERT_TRUE(got) << "wave " << wave;
    EXPECT_EQ(got->payload, "wave " + std::to_string(wave));
    last = std::move(clients);
  }
  // One more connection after the storm gets the session and works.
  cluster_client device;
  ASSERT_TRUE(device.connect(n(2), "storm-device", codec::protocol_version::v5, false, expiry))
      << device.error();
  EXPECT_TRUE(device.connack().session_present);
  ASSERT_FALSE(device.subscribe("storm/device").empty());
  ASSERT_EQ(bystander.publish("storm/device", "to the device"), codec::reason_code::success);
  auto got = device.receive(milliseconds(5'000));
  ASSERT_TRUE(got) << cluster_->describe();
  EXPECT_EQ(got->payload, "to the device");
}

}  // namespace
}  // namespace ringmq::testing
