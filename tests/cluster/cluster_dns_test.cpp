// Peers found by DNS, as in Kubernetes with a headless service: a real DNS
// server (Debian's dnsmasq) answers one name with the address of every node,
// and the nodes, given only that name (cluster.dns, no seeds), form one
// cluster; a node added to the name later is found and joins.
//
// Runs inside a network namespace made by in_netns.sh, whose resolv.conf
// points at 127.0.0.53: the DNS server and the nodes live on that namespace's
// loopback, with the same peer port on each node's address.

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "tests/cluster/cluster_client.hpp"

namespace ringmq::testing {
namespace {

constexpr const char* service = "ringmq-headless.mq.svc.cluster.local";
constexpr int peer_port = 7946;

class ClusterDns : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("ringmq-dns-" + std::to_string(::getpid()));
    std::filesystem::create_directories(root_);
    write_hosts(3);
    dns_ = std::make_unique<background_process>(std::vector<std::string>{
        "dnsmasq", "--keep-in-foreground", "--no-daemon", "--no-resolv", "--no-hosts",
        "--listen-address=127.0.0.53", "--bind-interfaces", "--port=53", "--log-queries",
        "--addn-hosts=" + hosts_file(), "--local-ttl=1", "--user=root",
        "--pid-file=" + (root_ / "dnsmasq.pid").string()});
    ASSERT_TRUE(dns_->started()) << dns_->describe();
    ASSERT_TRUE(dns_->wait_for_err("started", milliseconds(5'000))) << dns_->describe();
  }

  void TearDown() override {
    members_.clear();
    dns_.reset();
    std::filesystem::remove_all(root_);
  }

  static std::string ip(int i) { return "127.0.0." + std::to_string(20 + i); }
  std::string hosts_file() const { return (root_ / "headless.hosts").string(); }

  // The headless service's records: one A record per node.
  void write_hosts(int nodes) {
    std::ofstream out(hosts_file());
    for (int i = 1; i <= nodes; ++i) out << ip(i) << " " << service << "\n";
  }

  cluster_member& start(int i) {
    members_.push_back(std::make_unique<cluster_member>(
        "n" + std::to_string(i), ip(i), (root_ / ("n" + std::to_string(i))).string(),
        std::vector<std::string>{"cluster.bind=" + ip(i) + ":" + std::to_string(peer_port),
                                 std::string("cluster.dns=") + service + ":" +
                                     std::to_string(peer_port)}));
    auto& m = *members_.back();
    EXPECT_TRUE(m.start()) << m.describe();
    return m;
  }

  bool all_see(std::uint64_t epoch) {
    for (auto& m : members_) {
      if (!m->wait_epoch(epoch, milliseconds(20'000)) || !m->wait_ready()) return false;
    }
    return true;
  }

  std::string describe() const {
    std::string out = "---- dnsmasq\n" + dns_->describe();
    for (const auto& m : members_) out += m->describe();
    return out;
  }

  std::filesystem::path root_;
  std::unique_ptr<background_process> dns_;
  std::vector<std::unique_ptr<cluster_member>> members_;
};

TEST_F(ClusterDns, NodesFindEachOtherThroughOneNameAndALaterOneJoins) {
  for (int i = 1; i <= 3; ++i) start(i);
  ASSERT_TRUE(all_see(3)) << describe();
  EXPECT_NE(dns_->err().find(std::string("query[A] ") + service), std::string::npos)
      << "the nodes asked the DNS server";
  // Messages cross the cluster formed this way.
  cluster_client sub, pub;
  ASSERT_TRUE(sub.connect(*members_[2], "dns-sub")) << sub.error();
  ASSERT_FALSE(sub.subscribe("dns/#").empty());
  ASSERT_TRUE(pub.connect(*members_[0], "dns-pub")) << pub.error();
  ASSERT_TRUE(pub.publish("dns/x", "found by name"));
  auto got = sub.receive();
  ASSERT_TRUE(got) << describe();
  EXPECT_EQ(got->payload, "found by name");

  // A fourth pod: the service's records grow (dnsmasq rereads them on SIGHUP).
  write_hosts(4);
  ASSERT_TRUE(dns_->signal(SIGHUP));
  start(4);
  ASSERT_TRUE(all_see(4)) << describe();
}

}  // namespace
}  // namespace ringmq::testing
