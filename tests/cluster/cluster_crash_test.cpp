// Crash runs with real processes: persistent QoS 1 and QoS 2 subscribers,
// online or offline, on other nodes than their publisher; one node is killed
// (SIGKILL) at a moment the run's seed draws: the node that serves the
// subscribers' sessions, the publisher's node, or a node that only holds
// replicas. Clients keep their MQTT session state the way device libraries
// do (tests/cluster/ledger_client.hpp) and move to a surviving node when
// their connection breaks. The ledger: every message acknowledged to the
// publisher is delivered to every subscriber, a QoS 2 message once, each in
// the order it was published, and no reconnect finds its session gone.
//
// Each seed is one ctest test; a failing one replays with
//   build/bin/cluster_crash_tests --gtest_filter='*/SEED'
// (the scenario it drew is printed first).

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "cluster/ring.hpp"
#include "tests/cluster/ledger_client.hpp"

namespace ringmq::testing {
namespace {

using qos = codec::qos;
using namespace std::chrono_literals;

enum class victim { session_owner, publisher_node, replica };
enum class moment { before_publishing, publish_in_flight, after_publishing };

const char* name(victim v) {
  switch (v) {
    case victim::session_owner: return "the node serving the subscribers' sessions";
    case victim::publisher_node: return "the publisher's node";
    case victim::replica: return "a node holding only replicas";
  }
  return "?";
}
const char* name(moment m) {
  switch (m) {
    case moment::before_publishing: return "before the first message";
    case moment::publish_in_flight: return "while a PUBLISH is in flight";
    case moment::after_publishing: return "after the last message";
  }
  return "?";
}

// What one seed runs. The seed's low bits walk every combination of victim,
// subscribers online or offline and QoS on 3 nodes (seeds 0..11) and on 5
// (12..23); the rest (versions, when, which node) is drawn from it.
struct crash_case {
  int seed = 0;
  int nodes = 3;
  qos q = qos::at_least_once;
  victim kill = victim::session_owner;
  bool subscribers_online = true;
  moment when = moment::after_publishing;
  int messages = 40;
  int kill_at = 0;  // the message before which (or in whose flight) the node dies
  int subscriber_node = 1;
  int publisher_node = 2;
  int victim_node = 1;
  codec::protocol_version publisher_version = codec::protocol_version::v5;
  std::vector<int> survivors;  // in the order clients try them

  std::string describe() const {
    std::ostringstream s;
    s << "seed " << seed << ": " << nodes << " nodes, QoS " << static_cast<int>(q)
      << ", subscribers " << (subscribers_online ? "online" : "offline") << " on n"
      << subscriber_node << ", publisher ("
      << (publisher_version == codec::protocol_version::v5 ? "5.0" : "3.1.1") << ") on n"
      << publisher_node << "; SIGKILL n" << victim_node << " (" << name(kill) << ") "
      << name(when) << (when == moment::publish_in_flight
                            ? " (message " + std::to_string(kill_at) + ")"
                            : std::string());
    return s.str();
  }
};

std::vector<std::string> ids_of(int nodes) {
  std::vector<std::string> ids;
  for (int i = 1; i <= nodes; ++i) ids.push_back("n" + std::to_string(i));
  return ids;
}

int number_of(const std::string& id) { return std::stoi(id.substr(1)); }

crash_case draw(int seed) {
  crash_case c;
  c.seed = seed;
  c.kill = static_cast<victim>(seed % 3);
  c.subscribers_online = (seed / 3) % 2 == 0;
  c.q = (seed / 6) % 2 == 0 ? qos::at_least_once : qos::exactly_once;
  c.nodes = (seed / 12) % 2 == 0 ? 3 : 5;
  std::mt19937_64 rng(static_cast<std::uint64_t>(seed) * 7919 + 17);
  const auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
  c.when = static_cast<moment>(pick(3));
  c.kill_at = c.when == moment::before_publishing ? 0
              : c.when == moment::after_publishing ? c.messages
                                                    : 1 + pick(c.messages - 2);
  c.publisher_version = pick(2) ? codec::protocol_version::v5 : codec::protocol_version::v3_1_1;

  // The subscribers' sessions (sub-5, sub-311) have their replicas on the
  // first three members of their preference lists.
  std::vector<cluster::ring_member> members;
  for (const auto& id : ids_of(c.nodes)) members.push_back({id});
  const cluster::ring ring(members);
  const auto replicas = ring.preference_list("sub-5", 3);
  std::vector<int> all;
  for (int i = 1; i <= c.nodes; ++i) all.push_back(i);
  std::shuffle(all.begin(), all.end(), rng);
  c.subscriber_node = all[0];
  c.publisher_node = all[1];
  switch (c.kill) {
    case victim::session_owner: c.victim_node = c.subscriber_node; break;
    case victim::publisher_node: c.victim_node = c.publisher_node; break;
    case victim::replica: {
      // A replica of the subscribers' sessions that neither serves them nor
      // has the publisher: move the subscribers and the publisher off it.
      c.victim_node = number_of(replicas[static_cast<std::size_t>(pick(3))]);
      std::vector<int> others;
      for (int i : all) {
        if (i != c.victim_node) others.push_back(i);
      }
      c.subscriber_node = others[0];
      c.publisher_node = others[1];
      break;
    }
  }
  for (int i : all) {
    if (i != c.victim_node) c.survivors.push_back(i);
  }
  return c;
}

std::vector<std::string> replicated_sessions() {
  return {"cluster.replicate_sessions=true", "cluster.replication_factor=3"};
}

// What one subscriber's deliveries say against the publisher's ledger.
struct verdict {
  std::vector<std::string> missing;
  std::map<std::string, int> twice;  // QoS 2: delivered more than once
  std::string out_of_order;          // the first message delivered before one published earlier
};

verdict judge(const std::vector<std::string>& acknowledged,
              const std::vector<std::string>& delivered, qos q) {
  verdict v;
  std::map<std::string, int> count;
  for (const auto& d : delivered) ++count[d];
  for (const auto& a : acknowledged) {
    if (!count.contains(a)) v.missing.push_back(a);
  }
  if (q == qos::exactly_once) {
    for (const auto& [payload, n] : count) {
      if (n > 1) v.twice[payload] = n;
    }
  }
  // Per-publisher order: the first deliveries of the messages come in the
  // order they were published (QoS 1 may repeat one, never go back).
  std::set<std::string> seen;
  int last = -1;
  for (const auto& d : delivered) {
    if (!seen.insert(d).second) continue;
    const int index = std::stoi(d.substr(1));
    if (index < last && v.out_of_order.empty()) {
      v.out_of_order = d + " after m" + std::to_string(last);
    }
    last = std::max(last, index);
  }
  return v;
}

class CrashRun : public ::testing::TestWithParam<int> {};

TEST_P(CrashRun, NothingAcknowledgedIsLostAndQos2ArrivesOnce) {
  const auto run = draw(GetParam());
  std::cout << run.describe() << std::endl;
  test_cluster c(run.nodes, replicated_sessions());
  ASSERT_TRUE(c.started()) << c.describe();
  std::vector<cluster_member*> survivors;
  for (int i : run.survivors) survivors.push_back(&c.node(i));
  const auto deadline = steady::now() + 60s;

  ledger_client subscribers[] = {{"sub-5", codec::protocol_version::v5},
                                 {"sub-311", codec::protocol_version::v3_1_1}};
  for (auto& s : subscribers) {
    ASSERT_TRUE(s.connect(c.node(run.subscriber_node))) << s.id() << ": " << s.error();
    ASSERT_TRUE(s.subscribe("crash/#", run.q)) << s.id() << "\n" << c.describe();
    if (!run.subscribers_online) s.close();
  }
  ledger_client publisher("pub", run.publisher_version);
  ASSERT_TRUE(publisher.connect(c.node(run.publisher_node))) << publisher.error();

  bool killed = false;
  const auto kill = [&] {
    c.node(run.victim_node).kill();
    killed = true;
  };
  std::vector<std::string> acknowledged;
  for (int i = 0; i < run.messages; ++i) {
    if (i == run.kill_at && run.when == moment::before_publishing) kill();
    const auto payload = "m" + std::to_string(i);
    const bool in_flight_kill = i == run.kill_at && run.when == moment::publish_in_flight;
    ASSERT_TRUE(publisher.publish("crash/" + std::to_string(i), payload, run.q, survivors,
                                  deadline, in_flight_kill ? std::function<void()>(kill)
                                                           : std::function<void()>()))
        << publisher.error() << "\n" << run.describe() << "\n" << c.describe();
    acknowledged.push_back(payload);
    if (run.subscribers_online) {
      for (auto& s : subscribers) s.drain(0ms);
    }
  }
  if (!killed) kill();

  for (auto& s : subscribers) {
    const auto all_there = [&] {
      std::set<std::string> got(s.delivered().begin(), s.delivered().end());
      return std::all_of(acknowledged.begin(), acknowledged.end(),
                         [&](const auto& a) { return got.contains(a); });
    };
    s.receive_until(all_there, survivors, deadline);
    // Long enough for a second copy of anything to arrive too.
    s.drain(500ms);
  }

  EXPECT_EQ(publisher.sessions_lost(), 0) << "the publisher's session was gone after a reconnect";
  for (auto& s : subscribers) {
    const auto v = judge(acknowledged, s.delivered(), run.q);
    std::ostringstream missing, twice;
    for (const auto& m : v.missing) missing << m << ' ';
    for (const auto& [m, n] : v.twice) twice << m << " x" << n << ' ';
    EXPECT_TRUE(v.missing.empty()) << s.id() << " lost " << v.missing.size() << " of "
                                   << acknowledged.size() << " acknowledged: " << missing.str()
                                   << "\n" << run.describe() << "\n" << c.describe();
    EXPECT_TRUE(v.twice.empty()) << s.id() << " got QoS 2 messages twice: " << twice.str() << "\n"
                                 << run.describe() << "\n" << c.describe();
    EXPECT_TRUE(v.out_of_order.empty()) << s.id() << " out of order: " << v.out_of_order << "\n"
                                        << run.describe();
    EXPECT_EQ(s.sessions_lost(), 0) << s.id() << "'s session was gone after a reconnect\n"
                                    << run.describe();
  }
  std::cout << "acknowledged " << acknowledged.size() << ", refused and retried "
            << publisher.refusals() << ", delivered " << subscribers[0].delivered().size()
            << " and " << subscribers[1].delivered().size() << "; acknowledgements by reason code:";
  for (const auto& [code, n] : publisher.ack_codes()) std::cout << " 0x" << std::hex << code << std::dec << " x" << n;
  std::cout << std::endl;
  EXPECT_FALSE(publisher.ack_codes().contains(0x10))
      << "a message was acknowledged as having no subscribers\n" << run.describe();
}

INSTANTIATE_TEST_SUITE_P(Seeds, CrashRun, ::testing::Range(0, 24));

}  // namespace
}  // namespace ringmq::testing
