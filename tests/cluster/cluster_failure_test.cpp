// Nodes failing, coming back and arriving: SIGKILL of a node leaves the
// others serving each other and drops its routes; a restarted node syncs
// again from its peers; a new node receives routes and retained messages and
// serves them; peers of another cluster and peers without the cluster's
// certificates are refused.

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <sstream>
#include <fstream>

#include "tests/cluster/cluster_client.hpp"
#include "tests/integration/child_process.hpp"
#include "tests/support/tcp_proxy.hpp"
#include "tests/integration/observability_http.hpp"

namespace ringmq::testing {
namespace {

using qos = codec::qos;

// The routes node `of` has, as `at` holds them (-1 when `of` is not a peer of `at`).
int routes_held(cluster_member& at, const std::string& of) {
  const auto v = at.get_json("/api/v1/cluster");
  if (!v.is_object()) return -1;
  for (const auto& p : v.as_object().at("peers").as_array()) {
    if (p.as_object().at("id").as_string() == of) return p.as_object().at("routes").to_number<int>();
  }
  return -1;
}

bool delivers(cluster_member& from, cluster_member& to, const std::string& topic) {
  cluster_client sub, pub;
  if (!sub.connect(to, "probe-sub-" + to.id() + "-" + topic)) return false;
  if (sub.subscribe(topic).empty()) return false;
  if (!pub.connect(from, "probe-pub-" + from.id() + "-" + topic)) return false;
  if (!pub.publish(topic, "probe")) return false;
  auto got = sub.receive(milliseconds(3'000));
  return got && got->payload == "probe";
}

TEST(ClusterFailure, AKilledNodeLeavesTheOthersWorkingAndItsRoutesGo) {
  test_cluster c(3);
  ASSERT_TRUE(c.started()) << c.describe();
  cluster_client on_n2;
  ASSERT_TRUE(on_n2.connect(c.node(2), "lives-on-n2")) << on_n2.error();
  for (int i = 0; i < 20; ++i) ASSERT_FALSE(on_n2.subscribe("n2/topic/" + std::to_string(i)).empty());
  ASSERT_EQ(routes_held(c.node(1), "n2"), 20);

  c.node(2).kill();
  ASSERT_TRUE(c.node(1).wait_for_log("peer dead: node=n2", milliseconds(10'000)))
      << c.node(1).describe();
  ASSERT_TRUE(c.node(3).wait_for_log("peer dead: node=n2", milliseconds(10'000)));
  // Its routes go once every live node has taken over the persistent
  // sessions it is first live replica of (docs/cluster.md, "A dead owner's
  // routes"): at once here, it had none.
  // (Each node drops them once it heard that from every other: waited for on
  // both, as the last "took over" message may still be on its way to one.)
  for (int i : {1, 3}) {
    ASSERT_TRUE(c.node(i).wait_for_log("took over the sessions of n2; its routes dropped",
                                       milliseconds(10'000)))
        << c.node(i).describe();
  }
  EXPECT_EQ(routes_held(c.node(1), "n2"), 0) << "a dead node's routes are dropped";
  EXPECT_EQ(routes_held(c.node(3), "n2"), 0);
  EXPECT_TRUE(delivers(c.node(1), c.node(3), "after/kill/a")) << c.describe();
  EXPECT_TRUE(delivers(c.node(3), c.node(1), "after/kill/b")) << c.describe();
  // The survivors are ready: a dead member does not hold readiness back.
  EXPECT_TRUE(c.node(1).wait_ready());
  // It stays a member (only a leave removes it): the epoch does not change.
  EXPECT_EQ(c.node(1).get_json("/api/v1/cluster").as_object().at("epoch").to_number<int>(), 3);
}

TEST(ClusterFailure, ARestartedNodeSyncsAgain) {
  test_cluster c(3);
  ASSERT_TRUE(c.started()) << c.describe();
  c.node(2).kill();
  ASSERT_TRUE(c.node(1).wait_for_log("peer dead: node=n2", milliseconds(10'000)));
  // Meanwhile a retained message is set on n1 and a subscription made on n3.
  cluster_client pub;
  ASSERT_TRUE(pub.connect(c.node(1), "while-down")) << pub.error();
  ASSERT_TRUE(pub.publish("config/mode", "eco", qos::at_least_once, true));
  cluster_client sub3;
  ASSERT_TRUE(sub3.connect(c.node(3), "sub-on-n3")) << sub3.error();
  ASSERT_FALSE(sub3.subscribe("from/n2/#").empty());

  ASSERT_TRUE(c.node(2).start()) << c.node(2).describe();  // no seeds: it remembers its members
  ASSERT_TRUE(c.wait_converged(3)) << c.describe();
  // It has the retained message set while it was down...
  cluster_client late;
  ASSERT_TRUE(late.connect(c.node(2), "late-on-n2")) << late.error();
  ASSERT_FALSE(late.subscribe("config/#").empty());
  auto retained = late.receive();
  ASSERT_TRUE(retained) << c.node(2).describe();
  EXPECT_EQ(retained->payload, "eco");
  // ...and routes to the subscription made while it was down.
  cluster_client pub2;
  ASSERT_TRUE(pub2.connect(c.node(2), "pub-on-n2")) << pub2.error();
  ASSERT_TRUE(pub2.publish("from/n2/x", "hello from the restarted node"));
  auto got = sub3.receive();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->payload, "hello from the restarted node");
  EXPECT_TRUE(delivers(c.node(1), c.node(2), "to/restarted"));
}

TEST(ClusterFailure, AFourthNodeJoinsReceivesEverythingAndServes) {
  test_cluster c(3);
  ASSERT_TRUE(c.started()) << c.describe();
  cluster_client pub;
  ASSERT_TRUE(pub.connect(c.node(1), "before-join")) << pub.error();
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(pub.publish("catalog/" + std::to_string(i), "item " + std::to_string(i),
                            qos::at_least_once, true));
  }
  cluster_client sub2;
  ASSERT_TRUE(sub2.connect(c.node(2), "sub-on-n2")) << sub2.error();
  ASSERT_FALSE(sub2.subscribe("orders/#").empty());

  auto* n4 = c.add();
  ASSERT_NE(n4, nullptr) << c.describe();
  ASSERT_TRUE(c.wait_converged(4)) << c.describe();
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(c.node(i).get_json("/api/v1/cluster").as_object().at("epoch").to_number<int>(), 4);
  }
  // Every retained message, by snapshot.
  cluster_client reader;
  ASSERT_TRUE(reader.connect(*n4, "reader-on-n4")) << reader.error() << c.describe();
  ASSERT_FALSE(reader.subscribe("catalog/#").empty());
  std::set<std::string> items;
  while (auto m = reader.receive(milliseconds(1'000))) {
    items.insert(m->payload);
    if (items.size() == 50) break;
  }
  EXPECT_EQ(items.size(), 50u);
  // The routes of the others: a publish on n4 reaches n2's subscriber.
  cluster_client pub4;
  ASSERT_TRUE(pub4.connect(*n4, "pub-on-n4")) << pub4.error();
  ASSERT_TRUE(pub4.publish("orders/1", "from the new node"));
  auto got = sub2.receive();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->payload, "from the new node");
  EXPECT_TRUE(delivers(c.node(3), *n4, "to/n4"));
}

TEST(ClusterFailure, SharedGroupMessagesGoToLiveNodesOnly) {
  test_cluster c(3);
  ASSERT_TRUE(c.started()) << c.describe();
  cluster_client on2, on3;
  ASSERT_TRUE(on2.connect(c.node(2), "member-on-n2")) << on2.error();
  ASSERT_TRUE(on3.connect(c.node(3), "member-on-n3")) << on3.error();
  ASSERT_FALSE(on2.subscribe("$share/g/work/#").empty());
  ASSERT_FALSE(on3.subscribe("$share/g/work/#").empty());
  c.node(3).kill();
  ASSERT_TRUE(c.node(1).wait_for_log("peer dead: node=n3", milliseconds(10'000)));
  cluster_client pub;
  ASSERT_TRUE(pub.connect(c.node(1), "work-pub")) << pub.error();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(pub.publish("work/" + std::to_string(i), "job"));
  int got = 0;
  while (on2.receive(milliseconds(1'000))) ++got;
  EXPECT_EQ(got, 20) << "every message to the member on the live node";
}

TEST(ClusterFailure, AForgottenMemberLeavesTheMemberSet) {
  test_cluster c(3);
  ASSERT_TRUE(c.started()) << c.describe();
  cluster_client sub;
  ASSERT_TRUE(sub.connect(c.node(2), "on-doomed-node")) << sub.error();
  ASSERT_FALSE(sub.subscribe("doomed/#").empty());
  c.node(2).kill();
  // Forgotten at once, without waiting for it to be found dead.
  const auto r = run_ctl(c.node(1), {"forget", "n2"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("forgot n2"), std::string::npos) << r.out;
  ASSERT_TRUE(c.node(3).wait_epoch(4)) << c.node(3).describe();
  for (int i : {1, 3}) {
    const auto v = c.node(i).get_json("/api/v1/cluster").as_object();
    EXPECT_EQ(v.at("epoch").to_number<int>(), 4) << "n" << i;
    EXPECT_EQ(v.at("members").as_array().size(), 2u) << "n" << i;
    EXPECT_EQ(v.at("peers").as_array().size(), 1u) << "n" << i;
  }
  EXPECT_TRUE(c.node(1).wait_ready());
  EXPECT_TRUE(delivers(c.node(1), c.node(3), "after/forget"));
  // The refusal of a wrong target is clear.
  const auto again = run_ctl(c.node(1), {"forget", "n2"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("no member n2"), std::string::npos) << again.err;
}

TEST(ClusterFailure, AMemberDeadLongerThanTheDeadMemberTimeoutIsRemoved) {
  // Above the dead timeout of every build (4.5 s where ThreadSanitizer slows
  // the nodes, see cluster_support.cpp), or the node refuses the setting.
  test_cluster c(3, {"cluster.dead_member_timeout_ms=6000"});
  ASSERT_TRUE(c.started()) << c.describe();
  c.node(2).kill();
  // Whichever node finds it first removes it; the other hears of the leave.
  ASSERT_TRUE(c.node(1).wait_epoch(4, milliseconds(15'000))) << c.node(1).describe();
  ASSERT_TRUE(c.node(3).wait_epoch(4)) << c.node(3).describe();
  EXPECT_TRUE(c.node(1).log().find("removing member n2") != std::string::npos ||
              c.node(3).log().find("removing member n2") != std::string::npos)
      << c.node(1).describe() << c.node(3).describe();
  for (int i : {1, 3}) {
    const auto v = c.node(i).get_json("/api/v1/cluster").as_object();
    EXPECT_EQ(v.at("epoch").to_number<int>(), 4) << "n" << i << ": one leave, whoever added it";
    EXPECT_EQ(v.at("members").as_array().size(), 2u) << "n" << i;
  }
  EXPECT_TRUE(c.node(1).wait_ready());
  EXPECT_TRUE(delivers(c.node(1), c.node(3), "after/removal"));
}

// A stream between two live nodes breaks again and again while QoS 2
// messages cross it: every message arrives exactly once, in order (the
// sender writes again what was not acknowledged; the receiver skips what it
// had). n1 reaches n2 through a relay the test cuts.
TEST(ClusterFailure, BrokenStreamsLoseAndDuplicateNothing) {
  // A subscriber that falls behind under load must not have its queue overflow
  // (mqtt.max_queued_messages drops by design): only the cluster is tested here.
  test_cluster c(1, {"mqtt.max_queued_messages=100000"});
  ASSERT_TRUE(c.started()) << c.describe();
  const auto n2_ip = c.ip_of(2);
  const auto n2_port = free_tcp_port_on(n2_ip);
  ASSERT_NE(n2_port, 0);
  tcp_proxy relay(c.ip_of(8), n2_ip, n2_port);
  ASSERT_TRUE(relay.listening());
  auto* n2 = c.add({"cluster.bind=" + n2_ip + ":" + std::to_string(n2_port),
                    "cluster.advertise=" + relay.address()});
  ASSERT_NE(n2, nullptr) << c.describe();
  ASSERT_TRUE(c.wait_converged(2)) << c.describe();
  ASSERT_GT(relay.accepted(), 0u) << "n1 reaches n2 through the relay";

  cluster_client sub, pub;
  ASSERT_TRUE(sub.connect(*n2, "resend-sub")) << sub.error();
  ASSERT_FALSE(sub.subscribe("resend/#", qos::exactly_once).empty());
  ASSERT_TRUE(pub.connect(c.node(1), "resend-pub")) << pub.error();
  constexpr int total = 2'000;
  std::thread publisher([&] {
    for (int i = 0; i < total; ++i) {
      if (!pub.publish("resend/x", std::to_string(i), qos::exactly_once)) return;
    }
  });
  int next = 0;
  int cuts = 0;
  int next_cut = 250;
  std::size_t accepted_at_cut = 0;
  std::string problem;
  while (next < total && problem.empty()) {
    auto got = sub.receive(milliseconds(10'000));
    if (!got) {
      problem = "nothing after " + std::to_string(next);
      break;
    }
    if (got->payload != std::to_string(next)) {
      problem = "got " + got->payload + " when " + std::to_string(next) + " was next";
      break;
    }
    ++next;
    // Every 250 messages or so, once n1 has its new stream to n2, cut it again.
    if (next >= next_cut && relay.accepted() > accepted_at_cut) {
      accepted_at_cut = relay.accepted();
      if (relay.cut() > 0) ++cuts;
      next_cut = next + 250;
    }
  }
  publisher.join();
  const auto cluster_lines = [](cluster_member& m) {
    const auto body = http_request_to(m.ip(), m.http_port(), "GET", "/metrics").body;
    std::string out;
    std::istringstream lines(body);
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with("ringmq_cluster_") && line.find("_bucket") == std::string::npos) {
        out += m.id() + " " + line + "\n";
      }
    }
    return out;
  };
  EXPECT_EQ(problem, "") << cluster_lines(c.node(1)) << cluster_lines(*n2) << c.describe();
  EXPECT_GE(cuts, 2) << "the stream was cut while messages crossed it";
  EXPECT_FALSE(sub.receive(milliseconds(300))) << "a message came twice";
  const auto metrics = http_request_to(c.node(1).ip(), c.node(1).http_port(), "GET", "/metrics");
  std::cout << "resends: "
            << metrics.body.substr(metrics.body.find("\nringmq_cluster_resent_messages_total ") + 1, 45)
            << "\n";
}

// A peer that is there but does not answer (SIGSTOP): a SUBACK waits for it
// at most cluster.route_sync_timeout_ms, logged and counted.
TEST(ClusterFailure, ASubackWaitsForAPausedPeerOnlyUntilTheTimeout) {
  test_cluster c(3, {"cluster.route_sync_timeout_ms=300", "cluster.dead_timeout_ms=5000"});
  ASSERT_TRUE(c.started()) << c.describe();
  c.node(2).pause();
  cluster_client sub;
  ASSERT_TRUE(sub.connect(c.node(1), "waits-for-paused")) << sub.error();
  const auto t0 = steady::now();
  ASSERT_FALSE(sub.subscribe("paused/peer/#").empty()) << "the SUBACK came";
  const auto waited = std::chrono::duration_cast<milliseconds>(steady::now() - t0);
  EXPECT_GE(waited.count(), 250) << "it waited for n2";
  EXPECT_LT(waited.count(), 3'000) << "but not beyond the timeout (give or take a tick)";
  EXPECT_TRUE(c.node(1).wait_for_log("route sync timed out"));
  EXPECT_NE(c.node(1).log().find("peers=n2"), std::string::npos) << "the log names the peer";
  const auto metrics = http_request_to(c.node(1).ip(), c.node(1).http_port(), "GET", "/metrics");
  EXPECT_NE(metrics.body.find("ringmq_cluster_route_sync_timeouts_total 1"), std::string::npos);
  // n3 did acknowledge: a publish there reaches the subscription.
  cluster_client pub;
  ASSERT_TRUE(pub.connect(c.node(3), "pub-on-n3")) << pub.error();
  ASSERT_TRUE(pub.publish("paused/peer/x", "via n3"));
  EXPECT_TRUE(sub.receive());
  c.node(2).resume();
  ASSERT_TRUE(c.wait_converged(3)) << c.describe();
}

// A persistent session on n2 subscribed to `filter` at QoS 1, its route known on n1.
bool persistent_subscriber_on_n2(test_cluster& c, cluster_client& sub, const std::string& id,
                                 const std::string& filter) {
  codec::properties keep;
  keep.session_expiry_interval = 600;
  return sub.connect(c.node(2), id, codec::protocol_version::v5, false, keep) &&
         !sub.subscribe(filter, qos::at_least_once).empty() && routes_held(c.node(1), "n2") == 1;
}

// A QoS 1 message forwarded to another node is acknowledged to its publisher
// only once that node has kept it: not while it is paused, at once after.
TEST(ClusterFailure, AForwardedMessageIsAcknowledgedOnlyOnceItsNodeKeptIt) {
  test_cluster c(2, {"cluster.suspect_timeout_ms=10000", "cluster.dead_timeout_ms=20000"});
  ASSERT_TRUE(c.started()) << c.describe();
  cluster_client sub;
  ASSERT_TRUE(persistent_subscriber_on_n2(c, sub, "kept-sub", "kept/#")) << sub.error();
  cluster_client pub;
  ASSERT_TRUE(pub.connect(c.node(1), "kept-pub")) << pub.error();

  c.node(2).pause();
  ASSERT_TRUE(pub.send_publish("kept/1", "while paused"));
  EXPECT_FALSE(pub.puback(milliseconds(500)))
      << "acknowledged before the node it is queued on had it";
  c.node(2).resume();
  const auto code = pub.puback(milliseconds(10'000));
  ASSERT_TRUE(code) << c.describe();
  EXPECT_EQ(*code, codec::reason_code::success);
  auto got = sub.receive(milliseconds(5'000));
  ASSERT_TRUE(got) << c.describe();
  EXPECT_EQ(got->payload, "while paused");
}

// A node dies holding a forwarded message it never settled: a 5.0 publisher
// is told it was not accepted (0x97), a 3.1.1 one loses its connection, so
// that both publish it again rather than believe it delivered.
TEST(ClusterFailure, AForwardedMessageItsNodeDiedWithIsFailedBackToItsPublisher) {
  test_cluster c(2);
  ASSERT_TRUE(c.started()) << c.describe();
  cluster_client sub;
  ASSERT_TRUE(persistent_subscriber_on_n2(c, sub, "lost-sub", "lost/#")) << sub.error();
  cluster_client v5, v311;
  ASSERT_TRUE(v5.connect(c.node(1), "lost-pub-5")) << v5.error();
  ASSERT_TRUE(v311.connect(c.node(1), "lost-pub-311", codec::protocol_version::v3_1_1))
      << v311.error();

  c.node(2).pause();
  ASSERT_TRUE(v5.send_publish("lost/5", "never kept"));
  ASSERT_TRUE(v311.send_publish("lost/311", "never kept"));
  c.node(2).kill();
  const auto code = v5.puback(milliseconds(15'000));
  ASSERT_TRUE(code) << c.describe();
  EXPECT_EQ(*code, codec::reason_code::quota_exceeded);
  EXPECT_FALSE(v311.puback(milliseconds(5'000))) << "no PUBACK for what was not kept";
  EXPECT_TRUE(v311.closed_now()) << "3.1.1 has no code for it: the connection is closed";
  EXPECT_TRUE(c.node(1).wait_for_log("peer dead: node=n2"));
  const auto metrics = http_request_to(c.node(1).ip(), c.node(1).http_port(), "GET", "/metrics");
  EXPECT_NE(metrics.body.find("ringmq_cluster_forwards_failed_total 2"), std::string::npos)
      << metrics.body;
}

// A restarted node is not ready while a live peer has not sent it its routes.
TEST(ClusterFailure, ARestartedNodeIsReadyOnlyOnceItHasThePeersRoutes) {
  test_cluster c(2, {"cluster.dead_timeout_ms=20000", "cluster.suspect_timeout_ms=10000"});
  ASSERT_TRUE(c.started()) << c.describe();
  c.node(2).kill();
  c.node(1).pause();
  ASSERT_TRUE(c.node(2).start()) << c.node(2).describe();
  ASSERT_TRUE(c.node(2).wait_for_log("not ready: routes of n1 not received yet"))
      << c.node(2).describe();
  const auto before = http_request_to(c.node(2).ip(), c.node(2).http_port(), "GET", "/readyz");
  EXPECT_EQ(before.status, 503) << before.describe();
  EXPECT_NE(before.body.find("routes of n1"), std::string::npos) << before.body;
  c.node(1).resume();
  EXPECT_TRUE(c.node(2).wait_ready()) << c.node(2).describe();
  const auto after = http_request_to(c.node(2).ip(), c.node(2).http_port(), "GET", "/readyz");
  EXPECT_EQ(after.status, 200) << after.describe();
}

TEST(ClusterFailure, APeerOfAnotherClusterIsRefused) {
  test_cluster c(2);
  ASSERT_TRUE(c.started()) << c.describe();
  const auto root = std::filesystem::temp_directory_path() / ("ringmq-other-" + std::to_string(::getpid()));
  cluster_member stranger("x1", c.ip_of(9), root.string(), {"cluster.name=other-plant"});
  ASSERT_TRUE(stranger.start({c.node(1).cluster_address()})) << stranger.describe();
  EXPECT_TRUE(stranger.wait_for_log("refused this node", milliseconds(10'000)))
      << stranger.describe();
  EXPECT_TRUE(c.node(1).wait_for_log("of cluster \"other-plant\"", milliseconds(10'000)));
  EXPECT_EQ(c.node(1).get_json("/api/v1/cluster").as_object().at("members").as_array().size(),
            2u) << "the stranger is not a member";
  stranger.stop();
  std::filesystem::remove_all(root);
}

// Mutual TLS between nodes: a cluster CA signs every node's certificate.
class ClusterTls : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("ringmq-cluster-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    const auto d = dir_.string();
    {
      std::ofstream script(d + "/make-certs.sh");
      script << "set -e\ncd '" << d << "'\n"
             << "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=cluster-ca "
                "-keyout ca.key -out ca.crt\n"
             << "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=rogue-ca "
                "-keyout rogue.key -out rogue.crt\n"
             << "printf 'subjectAltName=DNS:ringmq-peer\\nextendedKeyUsage=serverAuth,clientAuth\\n'"
                " > ext\n"
             << "for who in peer other; do\n"
             << "  openssl req -newkey rsa:2048 -nodes -subj /CN=ringmq-peer -keyout $who.key "
                "-out $who.csr\n"
             << "done\n"
             << "openssl x509 -req -in peer.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
                "-extfile ext -out peer.crt\n"
             << "openssl x509 -req -in other.csr -CA rogue.crt -CAkey rogue.key -CAcreateserial "
                "-days 2 -extfile ext -out other.crt\n";
    }
    ASSERT_EQ(std::system(("bash " + d + "/make-certs.sh >" + d + "/openssl.log 2>&1").c_str()), 0)
        << "openssl failed; see " << d << "/openssl.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::vector<std::string> tls(const std::string& who) const {
    const auto d = dir_.string();
    return {"cluster.tls_cert_file=" + d + "/" + who + ".crt",
            "cluster.tls_key_file=" + d + "/" + who + ".key", "cluster.tls_ca_file=" + d + "/ca.crt",
            "cluster.tls_server_name=ringmq-peer"};
  }
  std::filesystem::path dir_;
};

TEST_F(ClusterTls, NodesTalkOverMutualTlsAndRefuseForeignCertificates) {
  test_cluster c(3, tls("peer"));
  ASSERT_TRUE(c.started()) << c.describe();
  EXPECT_NE(c.node(1).log().find("tls=mutual"), std::string::npos);
  EXPECT_TRUE(delivers(c.node(1), c.node(3), "tls/check")) << c.describe();
  // A node whose certificate another CA signed is not let in.
  const auto root = dir_ / "rogue-data";
  cluster_member rogue("rogue", c.ip_of(9), root.string(), tls("other"));
  ASSERT_TRUE(rogue.start({c.node(1).cluster_address()})) << rogue.describe();
  // It cannot exchange member sets with any node: after several attempts it still knows only itself.
  EXPECT_FALSE(c.node(1).wait_for_log("members=n1,n2,n3,rogue", milliseconds(3'000)));
  EXPECT_EQ(c.node(1).get_json("/api/v1/cluster").as_object().at("members").as_array().size(), 3u);
  rogue.stop();
}

}  // namespace
}  // namespace ringmq::testing
