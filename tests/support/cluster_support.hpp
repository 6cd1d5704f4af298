#pragma once
// Test support for clusters of real ringmq processes on loopback:
//  - cluster_member: one node on its own 127.x.y.z address, with its own data
//    directory; the ports the kernel picks at its first start are kept across
//    restarts (as a pod keeps its ports), so clients and peers find it again;
//  - test_cluster: n1..nN, n1 started alone and the others with n1 as their
//    seed, waited for until every node is ready with the same member set.
// Timings are shortened (heartbeats every 100 ms, dead after 1.5 s) so that
// failures are noticed quickly; every wait is bounded and wakes on a log line.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "tests/integration/child_process.hpp"
#include "tests/support/broker_process.hpp"

namespace ringmq::testing {

class cluster_member {
 public:
  cluster_member(std::string id, std::string ip, std::string data_dir,
                 std::vector<std::string> overrides = {});
  cluster_member(const cluster_member&) = delete;
  cluster_member& operator=(const cluster_member&) = delete;
  // Kills the process if it still runs.
  ~cluster_member();

  // Runs the node as user `uid` (and group), with its data directory handed
  // to it: packets of its sockets then carry that uid, so a test can cut the
  // network between nodes by owner (nft `meta skuid`) though every node's
  // outbound connections leave from the same loopback address. Before start().
  void run_as(unsigned uid);
  // One more --set for the next start() (a changed setting after a restart).
  void add_override(std::string setting) { overrides_.push_back(std::move(setting)); }
  std::optional<unsigned> uid() const noexcept { return uid_; }

  // Starts the node (with `seeds`, "host:port" peer addresses) and waits for
  // "ringmq started". False when it did not start in time (describe() says why).
  bool start(const std::vector<std::string>& seeds = {},
             milliseconds timeout = milliseconds(15'000));
  // Waits until the node's latest readiness is "ready".
  bool wait_ready(milliseconds timeout = milliseconds(15'000));
  // Waits until the node logged a member set of `epoch` events (the epoch of a
  // cluster that only grew is its number of members).
  bool wait_epoch(std::uint64_t epoch, milliseconds timeout = milliseconds(15'000));
  void kill();
  // SIGSTOP / SIGCONT: a node that is there but does not answer (a long pause).
  void pause();
  void resume();
  std::optional<exit_status> stop(milliseconds timeout = milliseconds(20'000));
  // Waits for a process that is to stop by itself (a node that leaves).
  std::optional<exit_status> wait_exit(milliseconds timeout);
  bool running() const;
  // True when the process ended without kill() or stop() (it crashed or gave up).
  bool exited_by_itself() const;

  const std::string& id() const noexcept { return id_; }
  const std::string& ip() const noexcept { return ip_; }
  const std::string& data_dir() const noexcept { return data_dir_; }
  std::uint16_t mqtt_port() const noexcept { return mqtt_port_; }
  std::uint16_t http_port() const noexcept { return http_port_; }
  std::uint16_t cluster_port() const noexcept { return cluster_port_; }
  std::string cluster_address() const { return ip_ + ":" + std::to_string(cluster_port_); }

  // The current process's log (stderr).
  std::string log() const;
  bool wait_for_log(std::string_view text, milliseconds timeout = milliseconds(10'000));
  bool wait_for_log_count(std::string_view text, std::size_t count,
                          milliseconds timeout = milliseconds(10'000));
  // Every run's log and how the last one ended, for failure messages.
  std::string describe() const;

  // GET of its admin API as JSON (null on any failure).
  boost::json::value get_json(const std::string& target) const;
  // A connected mqtt_socket aimed at this node (not yet connected).
  void aim(mqtt_socket& s) const { s.set_host(ip_); }

 private:
  std::string id_;
  std::string ip_;
  std::string data_dir_;
  std::vector<std::string> overrides_;
  std::unique_ptr<background_process> process_;
  std::string earlier_logs_;
  std::uint16_t mqtt_port_ = 0;
  std::uint16_t http_port_ = 0;
  std::uint16_t cluster_port_ = 0;
  bool ended_by_test_ = false;
  std::optional<unsigned> uid_;
};

struct cluster_options {
  // Each node n<i> runs as user 40000 + i (see cluster_member::run_as).
  bool separate_users = false;
};

class test_cluster {
 public:
  // Starts `size` nodes and waits until all are ready with one member set.
  // `overrides` apply to every node.
  explicit test_cluster(int size, std::vector<std::string> overrides = {},
                        cluster_options options = {});
  test_cluster(const test_cluster&) = delete;
  test_cluster& operator=(const test_cluster&) = delete;
  // Stops every node that runs, failing the test unless each exits 0.
  ~test_cluster();

  bool started() const noexcept { return started_; }
  // 1-based: node(1) is n1.
  cluster_member& node(int i) { return *members_.at(static_cast<std::size_t>(i - 1)); }
  int size() const noexcept { return static_cast<int>(members_.size()); }
  // Starts one more node with n1 as its seed and waits until every running
  // node sees it; returns it, or null when it did not start.
  cluster_member* add(std::vector<std::string> overrides = {});
  // Waits until every running node is ready and has the member set of `epoch` events.
  bool wait_converged(std::uint64_t epoch, milliseconds timeout = milliseconds(20'000));
  // True when every running node is ready, has the member set of `epoch`
  // events and an open, synced stream with every other running node.
  bool converged(std::uint64_t epoch) const;
  std::string describe() const;
  // The loopback address of node i (127.x.y.i, x.y from the test process).
  std::string ip_of(int i) const;

 private:
  std::string root_;
  std::string prefix_;
  std::vector<std::string> overrides_;
  std::vector<std::unique_ptr<cluster_member>> members_;
  bool started_ = false;
};

// The shortened timings every test cluster runs with (and the admin token
// "cluster-test-token").
std::vector<std::string> fast_cluster_timings();

// ringmq ctl against a node's admin API, with the admin token of the test clusters.
// `timeout`: how long the command may take before it is killed (a pre-stop
// waits for the node's sessions to move, slow in a sanitizer build).
child_result run_ctl(cluster_member& node, std::vector<std::string> args,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace ringmq::testing
