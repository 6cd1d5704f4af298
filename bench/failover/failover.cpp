// ringmq-failover: how long the clients of a killed node wait to be served
// again, with replicated persistent sessions. Starts a cluster of real nodes
// on loopback (tests/support/cluster_support), creates N persistent sessions
// on node 1 with one QoS 1 message queued for each, kills node 1 (SIGKILL),
// and reconnects every client at once (spread over the other nodes, from a
// few threads): a client is served when its CONNACK says session present and
// its queued message has arrived. Prints one JSON line: how many were served,
// how many messages were missing, and the times from the kill (p50, p99, max).
//
// --scenario leave: node 1 leaves instead (ringmq ctl leave): the time until
// it has handed every session to the other members, and until it exited;
// then the clients reconnect to the others as above.
//
//   ringmq-failover [--scenario failover|leave] [--nodes 3] [--sessions 1000]
//                   [--replication 3] [--threads 8]

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cluster_support.hpp"

namespace {

using namespace std::chrono;
using ringmq::testing::cluster_member;
using ringmq::testing::mqtt_socket;
using ringmq::testing::test_cluster;
namespace codec = ringmq::codec;

codec::connect_packet connect_of(const std::string& id) {
  codec::connect_packet c;
  c.version = codec::protocol_version::v5;
  c.client_id = id;
  c.clean_start = false;
  c.keep_alive = 60;
  c.props.session_expiry_interval = 86'400;  // longer than setting up 100,000 takes
  return c;
}

bool open(mqtt_socket& s, cluster_member& node, const std::string& id,
          codec::connack_packet* ack = nullptr) {
  node.aim(s);
  s.set_version(codec::protocol_version::v5);
  if (!s.connect_tcp(node.mqtt_port())) return false;
  auto a = s.handshake(connect_of(id), milliseconds(10'000));
  if (!a || a->code != codec::reason_code::success) return false;
  if (ack) *ack = *a;
  return true;
}

template <class T>
bool wait_for(mqtt_socket& s, milliseconds timeout, T* out = nullptr) {
  const auto deadline = steady_clock::now() + timeout;
  while (steady_clock::now() < deadline) {
    codec::packet p;
    const auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
    if (s.receive(p, left) != mqtt_socket::read_result::packet) return false;
    if (auto* t = std::get_if<T>(&p)) {
      if (out) *out = std::move(*t);
      return true;
    }
  }
  return false;
}

// Runs `work(i)` for i in [0, n) on `threads` threads.
template <class Work>
void in_parallel(int n, int threads, Work work) {
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = next++; i < n; i = next++) work(i);
    });
  }
  for (auto& th : pool) th.join();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringmq-failover: time until a killed node's clients are served again"};
  int nodes = 3, sessions = 1000, replication = 3, threads = 8;
  std::string scenario = "failover";
  app.add_option("--scenario", scenario, "failover (SIGKILL node 1) or leave (it leaves)")
      ->check(CLI::IsMember({"failover", "leave"}));
  app.add_option("--nodes", nodes, "cluster size (at least 2)")->check(CLI::Range(2, 9));
  app.add_option("--sessions", sessions, "persistent sessions on the node that is killed");
  app.add_option("--replication", replication, "cluster.replication_factor");
  app.add_option("--threads", threads, "client threads");
  int reconnect_limit_s = 900;
  app.add_option("--reconnect-limit", reconnect_limit_s,
                 "seconds after the failure or leave when clients stop reconnecting (the rest "
                 "count as not served)");
  CLI11_PARSE(app, argc, argv);

  test_cluster c(nodes, {"cluster.replicate_sessions=true",
                         "cluster.replication_factor=" + std::to_string(replication),
                         "mqtt.max_connections=100000"});
  if (!c.started()) {
    std::fprintf(stderr, "the cluster did not start\n%s\n", c.describe().c_str());
    return 1;
  }
  const auto id = [](int i) { return "fo-" + std::to_string(i); };
  std::atomic<int> failures{0};
  in_parallel(sessions, threads, [&](int i) {
    mqtt_socket s;
    if (!open(s, c.node(1), id(i))) return void(++failures);
    codec::subscribe_packet sub;
    sub.packet_id = 1;
    codec::subscribe_options o;
    o.max_qos = codec::qos::at_least_once;
    sub.subscriptions.push_back({"fo/" + std::to_string(i), o});
    if (!s.send(codec::packet{sub}) || !wait_for<codec::suback_packet>(s, seconds(10))) ++failures;
  });
  // One message queued for each, acknowledged (so on a write quorum).
  in_parallel(threads, threads, [&](int t) {
    mqtt_socket pub;
    if (!open(pub, c.node(2), "fo-pub-" + std::to_string(t))) return void(++failures);
    std::uint16_t packet_id = 0;
    for (int i = t; i < sessions; i += threads) {
      codec::publish_packet p;
      p.topic = "fo/" + std::to_string(i);
      p.payload = "queued for " + id(i);
      p.qos = codec::qos::at_least_once;
      p.packet_id = ++packet_id ? packet_id : ++packet_id;
      codec::puback_packet ack;
      if (!pub.send(codec::packet{p}) || !wait_for(pub, seconds(10), &ack) ||
          static_cast<int>(ack.code) >= 0x80) {
        ++failures;
      }
    }
  });
  if (failures) {
    std::fprintf(stderr, "%d sessions or messages could not be set up\n", failures.load());
    return 1;
  }

  const auto killed = steady_clock::now();
  double handoff_s = 0, leave_s = 0;
  if (scenario == "leave") {
    const auto r = ringmq::testing::run_ctl(c.node(1), {"leave"});
    if (r.exit_code != 0) {
      std::fprintf(stderr, "ringmq ctl leave failed: %s%s\n", r.out.c_str(), r.err.c_str());
      return 1;
    }
    c.node(1).wait_for_log("every session is on the other members", minutes(30));
    handoff_s = duration<double>(steady_clock::now() - killed).count();
    const auto status = c.node(1).wait_exit(minutes(30));
    leave_s = duration<double>(steady_clock::now() - killed).count();
    if (!status || !status->clean()) {
      std::fprintf(stderr, "the leaving node did not exit 0\n%s\n", c.node(1).describe().c_str());
      return 1;
    }
    std::fprintf(stderr, "every session on the other members after %.1f s; node 1 exited 0 after %.1f s\n",
                 handoff_s, leave_s);
  } else {
    c.node(1).kill();
  }
  std::mutex m;
  std::vector<double> served_ms;
  std::atomic<int> missing{0}, not_present{0}, refused{0}, not_tried{0};
  const auto give_up = killed + seconds(reconnect_limit_s);
  in_parallel(sessions, threads, [&](int i) {
    if (steady_clock::now() > give_up) return void(++not_tried);
    auto& node = c.node(2 + i % (nodes - 1));
    mqtt_socket s;
    codec::connack_packet ack;
    const auto deadline = steady_clock::now() + seconds(30);
    while (!open(s, node, id(i), &ack)) {
      if (steady_clock::now() > deadline) return void(++refused);
      std::this_thread::sleep_for(milliseconds(20));
    }
    if (!ack.session_present) ++not_present;
    codec::publish_packet got;
    if (!wait_for(s, seconds(10), &got)) return void(++missing);
    const auto at = duration<double, std::milli>(steady_clock::now() - killed).count();
    std::lock_guard lock(m);
    served_ms.push_back(at);
  });
  std::printf(
      "{\"scenario\":\"%s\",\"nodes\":%d,\"replication\":%d,\"sessions\":%d,\"threads\":%d,"
      "\"handoff_s\":%.1f,\"leave_s\":%.1f,"
      "\"served\":%zu,\"missing\":%d,\"no_session\":%d,\"refused\":%d,\"p50_ms\":%.1f,"
      "\"p99_ms\":%.1f,\"max_ms\":%.1f,\"not_tried\":%d}\n",
      scenario.c_str(), nodes, replication, sessions, threads, handoff_s, leave_s,
      served_ms.size(), missing.load(), not_present.load(), refused.load(),
      percentile(served_ms, 0.5), percentile(served_ms, 0.99), percentile(served_ms, 1.0),
      not_tried.load());
  return served_ms.size() == static_cast<std::size_t>(sessions) ? 0 : 1;
}
