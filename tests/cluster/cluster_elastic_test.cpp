// The member set changes under persistent sessions, with real processes,
// messages published all along (QoS 1 and QoS 2) and clients that keep their
// MQTT session state (tests/cluster/ledger_client.hpp): three nodes grow to
// five and leave back to three; five lose two dead members (one forgotten by
// the operator, one removed after cluster.dead_member_timeout_ms); three
// restart one by one. After each step every session is back on the replica
// set the ring gives it (the admin API says none is misplaced, moving or
// short of copies); at the end offline subscribers reconnect and find every
// acknowledged message, a QoS 2 message once, their sessions' three copies on
// the members left, and the epoch changed only with joins, leaves and
// removals.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
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
  // A node may refuse for a moment (0x88: too few of the session's replicas
  // answer yet, as when a sanitizer slows everything): tried again until the
  // deadline, then the others.
  std::vector<cluster_member*> any{&node};
  any.insert(any.end(), up.begin(), up.end());
  ASSERT_TRUE(s.connect(node) || s.connect_any(any, deadline)) << s.id() << ": " << s.error();
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

// QoS 1 or QoS 2 messages published one after another, on a thread of its
// own, until stop(): to whichever node of the list accepts (the test takes a
// node off the list before it stops or removes it). The acknowledged ones are
// the ledger the subscribers are checked against.
class continuous_load {
 public:
  continuous_load(qos q, std::string topic, std::vector<cluster_member*> up,
                  steady::time_point deadline)
      : q_(q), topic_(std::move(topic)), up_(std::move(up)), deadline_(deadline) {
    publisher_.skip_process_checks();
    thread_ = std::thread([this] { run(); });
  }
  ~continuous_load() { stop(); }

  void set_nodes(std::vector<cluster_member*> up) {
    std::lock_guard lock(mutex_);
    up_ = std::move(up);
  }
  // Waits until `more` messages were acknowledged after the call: the load
  // goes on through each step, not only between them.
  bool wait_progress(std::size_t more, milliseconds timeout = milliseconds(30'000)) {
    std::unique_lock lock(mutex_);
    const auto want = acknowledged_.size() + more;
    return changed_.wait_for(lock, timeout,
                             [&] { return acknowledged_.size() >= want || finished_; }) &&
           acknowledged_.size() >= want;
  }
  // Stops publishing; the messages acknowledged until then.
  std::vector<std::string> stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mutex_);
    return acknowledged_;
  }
  std::string error() const {
    std::lock_guard lock(mutex_);
    return error_;
  }
  int sessions_lost() const { return publisher_.sessions_lost(); }
  int refusals() const { return publisher_.refusals(); }

 private:
  static constexpr int max_messages = 5'000;
  static constexpr auto pace = milliseconds(5);

  void run() {
    for (int next = 0; next < max_messages && !stopping_; ++next) {
      std::vector<cluster_member*> up;
      {
        std::lock_guard lock(mutex_);
        up = up_;
      }
      const auto payload = "m" + std::to_string(next);
      if (!publisher_.publish(topic_ + "/" + std::to_string(next), payload, q_, up, deadline_)) {
        std::lock_guard lock(mutex_);
        error_ = publisher_.error();
        break;
      }
      {
        std::lock_guard lock(mutex_);
        acknowledged_.push_back(payload);
      }
      changed_.notify_all();
      std::this_thread::sleep_for(pace);
    }
    std::lock_guard lock(mutex_);
    finished_ = true;
    changed_.notify_all();
  }

  qos q_;
  std::string topic_;
  ledger_client publisher_{"load-pub", codec::protocol_version::v5};
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<cluster_member*> up_;
  std::vector<std::string> acknowledged_;
  std::string error_;
  bool finished_ = false;
  std::atomic<bool> stopping_{false};
  steady::time_point deadline_;
  std::thread thread_;
};

// Two offline persistent subscribers (5.0 and 3.1.1) of `filter`: their
// queues are what moves while the member set changes.
void subscribe_offline(ledger_client (&subscribers)[2], cluster_member& node,
                       const std::string& filter, qos q) {
  for (auto& s : subscribers) {
    ASSERT_TRUE(s.connect(node)) << s.id() << ": " << s.error();
    ASSERT_TRUE(s.subscribe(filter, q)) << s.id();
    s.close();
  }
}

// Publishes `count` messages on `topic`/i (payloads m0, m1, ...) through a
// publisher connected to one of `nodes`; the acknowledged payloads, all of
// them unless it failed (see error()).
std::vector<std::string> publish_acknowledged(ledger_client& publisher, const std::string& topic,
                                              int count, qos q,
                                              const std::vector<cluster_member*>& nodes,
                                              steady::time_point deadline) {
  std::vector<std::string> acknowledged;
  for (int i = 0; i < count; ++i) {
    const auto payload = "m" + std::to_string(i);
    if (!publisher.publish(topic + "/" + std::to_string(i), payload, q, nodes, deadline)) break;
    acknowledged.push_back(payload);
  }
  return acknowledged;
}

// Each subscriber's session is on the `members` given, three copies in sync
// (as its owner reports through the admin API).
void expect_on(const std::vector<cluster_member*>& nodes, ledger_client (&subscribers)[2]) {
  std::set<std::string> members;
  for (auto* n : nodes) members.insert(n->id());
  for (auto& s : subscribers) {
    std::size_t in_sync = 0;
    EXPECT_EQ(replicas_of(nodes, s.id(), in_sync), members) << s.id();
    EXPECT_EQ(in_sync, 3u) << s.id() << ": every copy holds the whole log";
  }
}

// Offline queues hold more than the load publishes (at most 5,000), so
// that nothing is dropped for a full queue.
const std::vector<std::string> replicated{"cluster.replicate_sessions=true",
                                          "cluster.replication_factor=3",
                                          "mqtt.max_queued_messages=10000"};

class ElasticRun : public ::testing::TestWithParam<qos> {};

// Three nodes grow to five (two joins) and shrink back to three (the two new
// ones leave with `ringmq ctl leave`), with messages published all along.
TEST_P(ElasticRun, GrowToFiveAndLeaveBackToThreeLosingNothing) {
  const auto q = GetParam();
  test_cluster c(3, replicated);
  ASSERT_TRUE(c.started()) << c.describe();
  ASSERT_EQ(epoch_of(c.node(1)), 3u);
  const auto deadline = steady::now() + 150s;
  ledger_client subscribers[] = {{"sub-5", codec::protocol_version::v5},
                                 {"sub-311", codec::protocol_version::v3_1_1}};
  subscribe_offline(subscribers, c.node(1), "elastic/#", q);
  std::vector<cluster_member*> first{&c.node(1), &c.node(2), &c.node(3)};
  continuous_load load(q, "elastic", first, deadline);
  ASSERT_TRUE(load.wait_progress(10)) << load.error();

  std::vector<cluster_member*> all = first;
  std::string why;
  for (int joined = 0; joined < 2; ++joined) {
    auto* n = c.add(replicated);
    ASSERT_NE(n, nullptr) << c.describe();
    all.push_back(n);
    ASSERT_TRUE(wait_placed(all, why)) << "after a join: " << why << "\n" << c.describe();
    ASSERT_TRUE(load.wait_progress(10)) << load.error();
  }
  EXPECT_EQ(epoch_of(c.node(4)), 5u) << "two joins";
  std::uint64_t epoch = 5;
  for (int leaver : {5, 4}) {
    auto& n = c.node(leaver);
    std::erase(all, &n);
    const auto r = run_ctl(n, {"leave"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const auto status = n.wait_exit(milliseconds(60'000));
    ASSERT_TRUE(status && status->clean()) << n.describe();
    epoch += 2;  // its drain and its leave
    ASSERT_TRUE(c.wait_converged(epoch)) << c.describe();
    ASSERT_TRUE(wait_placed(all, why)) << "after n" << leaver << " left: " << why;
    ASSERT_TRUE(load.wait_progress(10)) << load.error();
  }
  const auto acknowledged = load.stop();
  ASSERT_TRUE(load.error().empty()) << load.error() << "\n" << c.describe();
  for (auto* n : all) EXPECT_EQ(epoch_of(*n), 9u) << n->id() << ": 3 + 2 joins + 2 x (drain, leave)";
  expect_on(all, subscribers);
  for (auto& s : subscribers) expect_every_message(s, c.node(2), acknowledged, all, deadline, q);
  EXPECT_EQ(load.sessions_lost(), 0) << "the publisher's session was gone after a reconnect";
  std::cout << "acknowledged " << acknowledged.size() << ", refused and retried "
            << load.refusals() << std::endl;
}

// Five nodes lose two: n4 dies and the operator removes it at once (`ringmq
// ctl forget`); n5 dies and is removed by the others when it has been dead
// longer than cluster.dead_member_timeout_ms. The survivors copy the sessions
// again until each has its three copies, with messages published all along.
TEST_P(ElasticRun, DeadMembersAreReplacedAndEverySessionIsBackAtThreeCopies) {
  const auto q = GetParam();
  auto settings = replicated;
  // Above the dead timeout of every build (4.5 s where ThreadSanitizer slows
  // the nodes, see cluster_support.cpp), or the nodes refuse the setting.
  settings.push_back("cluster.dead_member_timeout_ms=6000");
  test_cluster c(5, settings);
  ASSERT_TRUE(c.started()) << c.describe();
  const auto deadline = steady::now() + 150s;
  ledger_client subscribers[] = {{"dead-sub-5", codec::protocol_version::v5},
                                 {"dead-sub-311", codec::protocol_version::v3_1_1}};
  subscribe_offline(subscribers, c.node(4), "dead/#", q);
  std::vector<cluster_member*> survivors{&c.node(1), &c.node(2), &c.node(3)};
  continuous_load load(q, "dead", survivors, deadline);
  ASSERT_TRUE(load.wait_progress(10)) << load.error();
  std::string why;

  c.node(4).kill();
  ASSERT_TRUE(load.wait_progress(10)) << load.error();
  const auto r = run_ctl(c.node(1), {"forget", c.node(4).id()});
  // A slow machine (a sanitizer build) may let n4 be dead for the whole
  // dead_member_timeout first: the others removed it themselves, with the
  // same event, and forget finds no such member.
  const bool removed_already =
      r.exit_code != 0 && (r.out + r.err).find("no member " + c.node(4).id()) != std::string::npos;
  ASSERT_TRUE(r.exit_code == 0 || removed_already) << r.out << r.err;
  ASSERT_TRUE(c.wait_converged(6)) << c.describe();
  std::vector<cluster_member*> up{&c.node(1), &c.node(2), &c.node(3), &c.node(5)};
  ASSERT_TRUE(wait_placed(up, why)) << "after forgetting n4: " << why << "\n" << c.describe();
  ASSERT_TRUE(load.wait_progress(10)) << load.error();

  c.node(5).kill();
  ASSERT_TRUE(c.wait_converged(7, milliseconds(30'000))) << "n5 removed\n" << c.describe();
  ASSERT_TRUE(wait_placed(survivors, why)) << "after n5 was removed: " << why;
  ASSERT_TRUE(load.wait_progress(10)) << load.error();

  const auto acknowledged = load.stop();
  ASSERT_TRUE(load.error().empty()) << load.error() << "\n" << c.describe();
  for (auto* n : survivors) EXPECT_EQ(epoch_of(*n), 7u) << n->id() << ": 5 + 2 removals";
  expect_on(survivors, subscribers);
  for (auto& s : subscribers) {
    expect_every_message(s, c.node(3), acknowledged, survivors, deadline, q);
  }
  EXPECT_EQ(load.sessions_lost(), 0);
}

// A rolling restart: every node in turn stops (SIGTERM, no leave) and starts
// again with its data directory, with messages published all along. The
// member set does not change (the epoch stays), each node is back and every
// session on its copies before the next one goes.
TEST_P(ElasticRun, RollingRestartOfEveryNodeLosesNothing) {
  const auto q = GetParam();
  test_cluster c(3, replicated);
  ASSERT_TRUE(c.started()) << c.describe();
  const auto deadline = steady::now() + 150s;
  ledger_client subscribers[] = {{"roll-sub-5", codec::protocol_version::v5},
                                 {"roll-sub-311", codec::protocol_version::v3_1_1}};
  subscribe_offline(subscribers, c.node(1), "roll/#", q);
  std::vector<cluster_member*> all{&c.node(1), &c.node(2), &c.node(3)};
  continuous_load load(q, "roll", all, deadline);
  ASSERT_TRUE(load.wait_progress(10)) << load.error();
  std::string why;
  for (int i = 1; i <= 3; ++i) {
    auto& n = c.node(i);
    std::vector<cluster_member*> up;
    for (auto* m : all) {
      if (m != &n) up.push_back(m);
    }
    load.set_nodes(up);
    // What the Helm chart's preStop hook runs: with every copy in sync it
    // lets the node stop.
    const auto pre_stop = run_ctl(n, {"pre-stop", "--timeout", "60"}, std::chrono::seconds(70));
    ASSERT_EQ(pre_stop.exit_code, 0) << pre_stop.out << pre_stop.err;
    EXPECT_NE(pre_stop.out.find("the node may stop now"), std::string::npos) << pre_stop.out;
    const auto status = n.stop(std::chrono::seconds(60));
    ASSERT_TRUE(status && status->clean()) << n.describe();
    ASSERT_TRUE(load.wait_progress(10)) << load.error() << "\n" << c.describe();
    ASSERT_TRUE(n.start()) << n.describe();  // no seeds: it remembers its members
    load.set_nodes(all);
    ASSERT_TRUE(c.wait_converged(3)) << "the epoch stays 3\n" << c.describe();
    ASSERT_TRUE(wait_placed(all, why)) << "after restarting n" << i << ": " << why;
    ASSERT_TRUE(load.wait_progress(10)) << load.error();
  }
  const auto acknowledged = load.stop();
  ASSERT_TRUE(load.error().empty()) << load.error();
  for (auto* n : all) EXPECT_EQ(epoch_of(*n), 3u) << n->id();
  expect_on(all, subscribers);
  for (auto& s : subscribers) expect_every_message(s, c.node(3), acknowledged, all, deadline, q);
  EXPECT_EQ(load.sessions_lost(), 0);
}

INSTANTIATE_TEST_SUITE_P(Qos, ElasticRun, ::testing::Values(qos::at_least_once, qos::exactly_once),
                         [](const auto& info) {
                           return info.param == qos::at_least_once ? std::string("Qos1")
                                                                   : std::string("Qos2");
                         });

// A node told to leave (ringmq ctl leave) hands its sessions to the other
// members, then disconnects its clients (a Paho 5.0 client hears 0x9C with
// the configured Server Reference and finds its session on another node),
// leaves the member set and exits 0 -- not before, though SIGTERM comes at
// once, as Kubernetes sends it when it scales down. New CONNECTs meanwhile
// are refused with 0x9C and the Server Reference.
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
  subscribe_offline(subscribers, leaver, "leaving/#", qos::exactly_once);
  ledger_client publisher("leave-pub", codec::protocol_version::v5);
  ASSERT_TRUE(publisher.connect(c.node(1))) << publisher.error();
  const auto acknowledged =
      publish_acknowledged(publisher, "leaving", 20, qos::exactly_once, others, deadline);
  ASSERT_EQ(acknowledged.size(), 20u) << publisher.error();

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
  // The Helm chart's preStop hook: it waits for the leave to end.
  background_process pre_stop({ringmq_binary(), "ctl", "--url",
                               "http://" + leaver.ip() + ":" + std::to_string(leaver.http_port()),
                               "pre-stop"});
  ASSERT_TRUE(pre_stop.wait_for_out("waiting: the node is leaving", milliseconds(20'000)))
      << pre_stop.out() << pre_stop.err();
  EXPECT_TRUE(leaver.wait_for_log("leaving the cluster: new connections refused"));
  // A client that still reaches the leaving node (the node hands sessions off
  // for 1.5 s at least) is sent elsewhere: 5.0 with 0x9C and the Server
  // Reference, 3.1.1 with "server unavailable".
  for (const auto version : {codec::protocol_version::v5, codec::protocol_version::v3_1_1}) {
    mqtt_socket late;
    leaver.aim(late);
    ASSERT_TRUE(late.connect_tcp(leaver.mqtt_port())) << late.error();
    codec::connect_packet connect;
    connect.version = version;
    connect.client_id = "late-client";
    connect.clean_start = true;
    const auto ack = late.handshake(connect, milliseconds(10'000));
    ASSERT_TRUE(ack) << late.error();
    if (version == codec::protocol_version::v5) {
      EXPECT_EQ(ack->code, codec::reason_code::use_another_server);
      EXPECT_EQ(ack->props.server_reference, std::optional<std::string>(reference));
    } else {
      EXPECT_EQ(ack->code, codec::reason_code::server_unavailable);
    }
  }
  // SIGTERM at once: the node still waits until its sessions are elsewhere.
  const auto status = leaver.stop(milliseconds(90'000));
  ASSERT_TRUE(status && status->clean()) << leaver.describe();
  const auto pre_stop_status = pre_stop.wait_exit(milliseconds(30'000));
  EXPECT_TRUE(pre_stop_status && pre_stop_status->clean()) << pre_stop.out() << pre_stop.err();
  EXPECT_NE(pre_stop.out().find("the node has left the cluster"), std::string::npos)
      << pre_stop.out() << pre_stop.err();
  EXPECT_TRUE(leaver.log().find("every session is on the other members") != std::string::npos)
      << leaver.log();
  EXPECT_TRUE(leaver.log().find("left the cluster in") != std::string::npos) << leaver.log();
  // The sessions it served while their clients were offline got new owners
  // before it departed (none was left for the others to find ownerless).
  EXPECT_TRUE(leaver.log().find("every session served elsewhere") != std::string::npos)
      << leaver.log();
  bool taken_over = false;
  for (auto* n : others) {
    taken_over |= n->log().find("(its owner is leaving)") != std::string::npos;
    EXPECT_EQ(n->log().find("(its owner is down)"), std::string::npos) << n->describe();
  }
  EXPECT_TRUE(taken_over) << "the offline subscribers' sessions were taken over from it";

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
  test_cluster c(4, replicated);
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
  const auto acknowledged =
      publish_acknowledged(publisher, "paused", 10, qos::at_least_once, others, deadline);
  ASSERT_EQ(acknowledged.size(), 10u) << publisher.error();
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

// A leaving node killed before it finished (a pod evicted mid-leave) resumes
// the leave when it starts again, and finishes it: exit 0, out of the
// member set, nothing lost.
TEST(ClusterLeave, ALeaveCutShortByAKillResumesAfterTheRestart) {
  test_cluster c(4, replicated);
  ASSERT_TRUE(c.started()) << c.describe();
  const auto deadline = steady::now() + 120s;
  auto& leaver = c.node(4);
  std::vector<cluster_member*> others{&c.node(1), &c.node(2), &c.node(3)};
  ledger_client subscribers[] = {{"resume-sub-5", codec::protocol_version::v5},
                                 {"resume-sub-311", codec::protocol_version::v3_1_1}};
  subscribe_offline(subscribers, leaver, "resume/#", qos::exactly_once);
  ledger_client publisher("resume-pub", codec::protocol_version::v5);
  ASSERT_TRUE(publisher.connect(c.node(1))) << publisher.error();
  const auto acknowledged =
      publish_acknowledged(publisher, "resume", 10, qos::exactly_once, others, deadline);
  ASSERT_EQ(acknowledged.size(), 10u) << publisher.error();
  const auto r = run_ctl(leaver, {"leave"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  leaver.kill();  // the hand-off takes 1.5 s at least: it is cut short
  ASSERT_TRUE(leaver.start()) << leaver.describe();
  EXPECT_TRUE(leaver.wait_for_log("resuming the leave")) << leaver.describe();
  const auto status = leaver.wait_exit(milliseconds(60'000));
  ASSERT_TRUE(status && status->clean()) << leaver.describe();
  for (auto* n : others) {
    EXPECT_TRUE(n->wait_epoch(6)) << n->describe();  // 4 joins, the drain, the leave
    EXPECT_EQ(n->get_json("/api/v1/cluster").as_object().at("members").as_array().size(), 3u);
  }
  for (auto& s : subscribers) {
    expect_every_message(s, c.node(2), acknowledged, others, deadline, qos::exactly_once);
  }
}

}  // namespace
}  // namespace ringmq::testing
