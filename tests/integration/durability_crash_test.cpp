// Crash tests: nothing the broker acknowledged is lost when the process is
// killed with SIGKILL. Persistent subscribers (3.1.1 Clean Session 0 at QoS 1,
// 5.0 with a Session Expiry Interval at QoS 2) subscribe and go offline;
// publishers send thousands of numbered QoS 1 and QoS 2 messages and retained
// messages, recording exactly which were acknowledged; the broker is killed
// at several points of the stream and started again on the same data
// directory. The subscribers come back with their client ids and must find
// their sessions (session present) and every acknowledged message: QoS 2
// exactly once, QoS 1 at least once, each publisher's messages in order. A
// wildcard subscription must find every acknowledged retained message.
//
// A second case kills the broker while subscribers are online and in the
// middle of QoS 1 and QoS 2 exchanges: in-flight messages and their packet
// ids survive, so a message the subscriber has completed (PUBCOMP) is never
// given to it again, and it receives all the others. A third kills the broker
// under a persistent QoS 2 publisher, which then resumes its session and sends
// again what was not acknowledged: every message arrives exactly once.
//
// "Acknowledged" for QoS 2 means PUBREC: from then on the publisher may not
// send the message again, so the broker must keep it (PUBCOMP only ends the
// packet id). The checks use that wider set.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cmath>
#include <thread>

#include "tests/support/durability_support.hpp"

namespace ringmq::testing::durability {
namespace {

using codec::protocol_version;
using codec::qos;

constexpr std::uint32_t stream_count = 4000;  // per publisher
constexpr std::uint32_t retained_count = 300;
constexpr std::size_t window = 48;
const std::string end_marker = "end-of-test";

std::vector<std::string> node_settings(const std::string& durability) {
  return {"storage.durability=" + durability,
          // Every message of the test fits in an offline session's queue.
          "mqtt.max_queued_messages=100000", "mqtt.max_inflight=64"};
}

stream_options stream(std::string client_id, protocol_version v, qos q, std::string name,
                      std::string topic, std::uint32_t count) {
  stream_options o;
  o.client_id = std::move(client_id);
  o.version = v;
  o.qos = q;
  o.name = std::move(name);
  o.topic = std::move(topic);
  o.count = count;
  o.window = window;
  return o;
}

// Publishes the end marker at QoS 2 to "crash/end": queued behind everything
// the sessions hold, so a subscriber that receives it has received the rest.
void publish_end_marker(std::uint16_t port) {
  mqtt_socket s;
  ASSERT_TRUE(s.connect_tcp(port)) << s.error();
  ASSERT_TRUE(s.handshake(clean_connect("crash-end", protocol_version::v5))) << s.error();
  codec::publish_packet p;
  p.topic = "crash/end";
  p.payload = end_marker;
  p.qos = qos::exactly_once;
  p.packet_id = 1;
  const auto code = publish_one(s, p);
  ASSERT_TRUE(code) << "marker not acknowledged: " << s.error();
  EXPECT_TRUE(codec::is_success(*code));
}

// Every accepted retained message is there after the restart, with its payload.
void expect_retained(std::uint16_t port, const stream_publisher& retained, node_process& node) {
  recording_subscriber check(clean_connect("crash-retained-check", protocol_version::v5));
  ASSERT_TRUE(check.connect(port)) << check.error();
  // SUBACK is sent once the retained messages are handed to the session, so
  // the marker published after it is delivered after all of them.
  ASSERT_TRUE(check.subscribe({{"keep/#", qos::at_least_once}, {"crash/end", qos::at_least_once}}))
      << check.error();
  publish_end_marker(port);
  ASSERT_EQ(check.pump_until_payload(end_marker, milliseconds(30'000)),
            recording_subscriber::pump_result::done)
      << "retained messages did not all arrive\n"
      << node.log_tail();
  std::vector<std::uint8_t> found(retained_count + 1, 0);
  std::size_t distinct = 0;
  for (const auto& d : check.deliveries()) {
    const auto n = number_of(d.payload, "keep");
    if (!n) continue;
    ASSERT_LE(*n, retained_count);
    EXPECT_TRUE(d.retain) << d.topic;
    EXPECT_EQ(d.topic, "keep/" + std::to_string(*n));
    if (!found[*n]) ++distinct;
    found[*n] = 1;
  }
  std::size_t missing = 0;
  std::string first_missing;
  for (std::uint32_t n = 1; n <= retained_count; ++n) {
    if (retained.states()[n] == ack_state::accepted && !found[n]) {
      if (missing++ == 0) first_missing = "keep/" + std::to_string(n);
    }
  }
  EXPECT_EQ(missing, 0u) << "acknowledged retained messages missing after the restart, first "
                         << first_missing;
  EXPECT_GE(distinct, retained.count(ack_state::accepted));
  check.disconnect();
}

std::string describe_stream(const stream_publisher& p) {
  return p.options().name + ": accepted " + std::to_string(p.count(ack_state::accepted)) +
         ", completed " + std::to_string(p.count(ack_state::completed)) + ", unacknowledged " +
         std::to_string(p.count(ack_state::none)) + " of " + std::to_string(p.options().count) +
         (p.error().empty() ? "" : " (" + p.error() + ")");
}

std::size_t acknowledged(const stream_publisher& p) {
  return p.count(ack_state::accepted) + p.count(ack_state::completed);
}

// ---------------------------------------------------------------------------
// Offline subscribers, broker killed at a point of the stream.

struct kill_point {
  std::string durability;
  double fraction;  // of each stream acknowledged before SIGKILL; 1 = right after the last ack
};

// For test listings: the default would print the bytes of the struct.
void PrintTo(const kill_point& p, std::ostream* os) {
  *os << p.durability << ", kill at " << p.fraction * 100 << "% of the acknowledgements";
}

std::string kill_point_name(const ::testing::TestParamInfo<kill_point>& info) {
  const auto& p = info.param;
  if (p.fraction >= 1.0) return p.durability + "_after_last_ack";
  return p.durability + "_at_" + std::to_string(static_cast<int>(std::lround(p.fraction * 100))) +
         "pct";
}

class DurabilityCrash : public ::testing::TestWithParam<kill_point> {};

TEST_P(DurabilityCrash, OfflineSubscribersGetEveryAcknowledgedMessage) {
  const auto point = GetParam();
  scratch_dir dir;
  ASSERT_FALSE(dir.path().empty());
  const auto data = dir / "data";
  const auto settings = node_settings(point.durability);

  recording_subscriber sub_q1(persistent_connect("crash-sub-q1", protocol_version::v3_1_1));
  recording_subscriber sub_q2(persistent_connect("crash-sub-q2", protocol_version::v5, 3600));

  std::unique_ptr<stream_publisher> p1;
  std::unique_ptr<stream_publisher> p2;
  std::unique_ptr<stream_publisher> keep;
  {
    node_process node(data, settings);
    ASSERT_TRUE(node.ready()) << node.describe();
    const std::pair<recording_subscriber*, qos> subscribers[] = {{&sub_q1, qos::at_least_once},
                                                                  {&sub_q2, qos::exactly_once}};
    for (auto [sub, q] : subscribers) {
      const auto ack = sub->connect(node.port());
      ASSERT_TRUE(ack) << sub->error();
      EXPECT_FALSE(ack->session_present);
      ASSERT_TRUE(sub->subscribe({{"crash/#", q}})) << sub->error();
      sub->disconnect();
    }
    p1 = std::make_unique<stream_publisher>(
        node.port(), stream("crash-pub-q1", protocol_version::v3_1_1, qos::at_least_once, "q1",
                            "crash/q1", stream_count));
    p2 = std::make_unique<stream_publisher>(
        node.port(), stream("crash-pub-q2", protocol_version::v5, qos::exactly_once, "q2",
                            "crash/q2", stream_count));
    auto retained = stream("crash-pub-keep", protocol_version::v5, qos::at_least_once, "keep",
                           "keep", retained_count);
    retained.retained = true;
    retained.window = 16;
    keep = std::make_unique<stream_publisher>(node.port(), retained);

    if (point.fraction < 1.0) {
      const auto threshold = static_cast<std::size_t>(stream_count * point.fraction);
      ASSERT_TRUE(p1->wait_accepted(threshold, milliseconds(60'000))) << node.log_tail();
      ASSERT_TRUE(p2->wait_accepted(threshold, milliseconds(60'000))) << node.log_tail();
    } else {
      for (auto* p : {p1.get(), p2.get(), keep.get()}) p->join();
      for (auto* p : {p1.get(), p2.get(), keep.get()}) {
        ASSERT_EQ(p->count(ack_state::none), 0u) << describe_stream(*p) << "\n"
                                                 << node.log_tail();
      }
    }
    node.kill();
    for (auto* p : {p1.get(), p2.get(), keep.get()}) p->join();
  }
  ASSERT_GT(acknowledged(*p1), 0u);
  ASSERT_GT(acknowledged(*p2), 0u);

  node_process node(data, settings);
  ASSERT_TRUE(node.ready()) << node.describe();
  publish_end_marker(node.port());
  for (auto* sub : {&sub_q1, &sub_q2}) {
    const auto ack = sub->connect(node.port());
    ASSERT_TRUE(ack) << sub->error();
    EXPECT_TRUE(ack->session_present);
    ASSERT_EQ(sub->pump_until_payload(end_marker, milliseconds(60'000)),
              recording_subscriber::pump_result::done)
        << "the end marker never arrived: " << sub->deliveries().size() << " deliveries, "
        << sub->error() << "\n"
        << node.log_tail();
  }
  const auto context = describe_stream(*p1) + "\n" + describe_stream(*p2) + "\n" +
                       describe_stream(*keep);
  const auto q1_at_q1 = check_stream(sub_q1.deliveries(), "q1", p1->states(), false);
  const auto q2_at_q1 = check_stream(sub_q1.deliveries(), "q2", p2->states(), false);
  const auto q1_at_q2 = check_stream(sub_q2.deliveries(), "q1", p1->states(), false);
  const auto q2_at_q2 = check_stream(sub_q2.deliveries(), "q2", p2->states(), true);
  EXPECT_EQ(q1_at_q1.problems, "") << "QoS 1 subscriber\n" << context;
  EXPECT_EQ(q2_at_q1.problems, "") << "QoS 1 subscriber\n" << context;
  EXPECT_EQ(q1_at_q2.problems, "") << "QoS 2 subscriber\n" << context;
  EXPECT_EQ(q2_at_q2.problems, "") << "QoS 2 subscriber\n" << context;
  for (const auto& d : sub_q2.deliveries()) {
    if (number_of(d.payload, "q2")) {
      ASSERT_EQ(d.qos, qos::exactly_once) << d.payload;
    }
  }
  expect_retained(node.port(), *keep, node);

  for (auto* sub : {&sub_q1, &sub_q2}) sub->disconnect();
  const auto status = node.stop();
  ASSERT_TRUE(status) << node.log_tail();
  EXPECT_TRUE(status->clean()) << node.log_tail();
  std::cout << "[ crash    ] " << kill_point_name({point, 0}) << ": " << context
            << "\n             delivered after restart: QoS 1 subscriber q1=" << q1_at_q1.delivered
            << " (+" << q1_at_q1.duplicates << " again) q2=" << q2_at_q1.delivered
            << "; QoS 2 subscriber q1=" << q1_at_q2.delivered << " q2=" << q2_at_q2.delivered
            << "\n";
}

INSTANTIATE_TEST_SUITE_P(KillPoints, DurabilityCrash,
                         ::testing::Values(kill_point{"sync", 0.1}, kill_point{"sync", 0.5},
                                           kill_point{"sync", 1.0}, kill_point{"batch", 0.1},
                                           kill_point{"batch", 0.5}, kill_point{"batch", 1.0}),
                         kill_point_name);

// ---------------------------------------------------------------------------
// Subscribers online, in the middle of QoS 1 and QoS 2 exchanges, when the broker dies.

class DurabilityCrashOnline : public ::testing::TestWithParam<std::string> {};

TEST_P(DurabilityCrashOnline, InflightMessagesAndPacketIdsSurvive) {
  scratch_dir dir;
  ASSERT_FALSE(dir.path().empty());
  const auto data = dir / "data";
  const auto settings = node_settings(GetParam());

  recording_subscriber sub_q1(persistent_connect("online-sub-q1", protocol_version::v3_1_1));
  recording_subscriber sub_q2(persistent_connect("online-sub-q2", protocol_version::v5, 3600));
  std::unique_ptr<stream_publisher> p1;
  std::unique_ptr<stream_publisher> p2;
  std::size_t before_kill_q2 = 0;
  std::size_t completed_before_kill = 0;
  {
    node_process node(data, settings);
    ASSERT_TRUE(node.ready()) << node.describe();
    const std::pair<recording_subscriber*, qos> subscribers[] = {{&sub_q1, qos::at_least_once},
                                                                  {&sub_q2, qos::exactly_once}};
    for (auto [sub, q] : subscribers) {
      const auto ack = sub->connect(node.port());
      ASSERT_TRUE(ack) << sub->error();
      ASSERT_TRUE(sub->subscribe({{"crash/#", q}})) << sub->error();
    }
    // The QoS 2 subscriber kills the broker itself, at the most delicate point
    // of an exchange: the PUBREL of a message has just arrived (and PUBCOMP
    // gone out), while the messages behind it are at every other stage.
    std::atomic<bool> killed{false};
    sub_q2.on_packet([&](const codec::packet& p) {
      if (killed || !std::holds_alternative<codec::pubrel_packet>(p)) return;
      std::size_t completed = 0;
      for (const auto& d : sub_q2.deliveries()) completed += d.completed ? 1 : 0;
      if (completed >= stream_count / 2) {
        killed = true;
        node.process().signal(SIGKILL);
      }
    });
    // The subscribers read and answer on their own threads until the broker dies.
    auto run = [](recording_subscriber* sub) {
      sub->pump([] { return false; }, milliseconds(90'000));
    };
    std::thread t1(run, &sub_q1);
    std::thread t2(run, &sub_q2);
    p1 = std::make_unique<stream_publisher>(
        node.port(), stream("online-pub-q1", protocol_version::v3_1_1, qos::at_least_once, "q1",
                            "crash/q1", stream_count));
    p2 = std::make_unique<stream_publisher>(
        node.port(), stream("online-pub-q2", protocol_version::v5, qos::exactly_once, "q2",
                            "crash/q2", stream_count));
    t2.join();
    node.kill();
    t1.join();
    p1->join();
    p2->join();
    sub_q2.on_packet(nullptr);
    ASSERT_TRUE(killed) << "the QoS 2 subscriber never completed " << stream_count / 2
                        << " messages\n"
                        << node.log_tail();
    for (const auto& d : sub_q2.deliveries()) {
      if (!number_of(d.payload, "q2")) continue;
      ++before_kill_q2;
      if (d.completed) ++completed_before_kill;
    }
  }
  // The kill must land in the middle of QoS 2 exchanges for the case to mean anything.
  ASSERT_GT(before_kill_q2, 0u);

  node_process node(data, settings);
  ASSERT_TRUE(node.ready()) << node.describe();
  publish_end_marker(node.port());
  for (auto* sub : {&sub_q1, &sub_q2}) {
    const auto ack = sub->connect(node.port());
    ASSERT_TRUE(ack) << sub->error();
    EXPECT_TRUE(ack->session_present);
    ASSERT_EQ(sub->pump_until_payload(end_marker, milliseconds(60'000)),
              recording_subscriber::pump_result::done)
        << "the end marker never arrived: " << sub->deliveries().size() << " deliveries, "
        << sub->resent_qos2() << " QoS 2 resends, " << sub->awaiting_pubrel()
        << " packet ids awaiting PUBREL " << sub->error() << "\n"
        << node.log_tail();
  }
  // The marker's own exchange ends too: then every QoS 2 exchange the broker started is over.
  EXPECT_EQ(sub_q2.pump([&] { return sub_q2.awaiting_pubrel() == 0; }, milliseconds(10'000)),
            recording_subscriber::pump_result::done)
      << sub_q2.awaiting_pubrel() << " QoS 2 packet ids still await PUBREL";
  const auto context = describe_stream(*p1) + "\n" + describe_stream(*p2);
  const auto q1_at_q1 = check_stream(sub_q1.deliveries(), "q1", p1->states(), false);
  const auto q2_at_q1 = check_stream(sub_q1.deliveries(), "q2", p2->states(), false);
  const auto q1_at_q2 = check_stream(sub_q2.deliveries(), "q1", p1->states(), false);
  const auto q2_at_q2 = check_stream(sub_q2.deliveries(), "q2", p2->states(), true);
  EXPECT_EQ(q1_at_q1.problems, "") << "QoS 1 subscriber\n" << context;
  EXPECT_EQ(q2_at_q1.problems, "") << "QoS 1 subscriber\n" << context;
  EXPECT_EQ(q1_at_q2.problems, "") << "QoS 2 subscriber\n" << context;
  EXPECT_EQ(q2_at_q2.problems, "") << "QoS 2 subscriber\n" << context;

  for (auto* sub : {&sub_q1, &sub_q2}) sub->disconnect();
  const auto status = node.stop();
  ASSERT_TRUE(status) << node.log_tail();
  EXPECT_TRUE(status->clean()) << node.log_tail();
  std::cout << "[ online   ] " << GetParam() << ": " << context
            << "\n             QoS 2 subscriber before the kill: " << before_kill_q2
            << " delivered, " << completed_before_kill << " completed; resent after restart: "
            << sub_q2.resent_qos2() << "; QoS 1 duplicates: " << q1_at_q1.duplicates << "\n";
}

INSTANTIATE_TEST_SUITE_P(Modes, DurabilityCrashOnline, ::testing::Values("sync", "batch"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// ---------------------------------------------------------------------------
// A persistent QoS 2 publisher in the middle of its stream when the broker dies.

class DurabilityCrashPublisher : public ::testing::TestWithParam<std::string> {};

TEST_P(DurabilityCrashPublisher, Qos2PublisherResumesItsSessionAndEachMessageArrivesOnce) {
  // After the restart the publisher resumes its session and sends again what
  // was not acknowledged, as a client must: PUBLISH (DUP) where no PUBREC
  // came, PUBREL where one did. The QoS 2 packet ids the broker had received
  // survive the restart, so a message it already had is not routed twice,
  // and its PUBREL finds the id.
  scratch_dir dir;
  ASSERT_FALSE(dir.path().empty());
  const auto data = dir / "data";
  const auto settings = node_settings(GetParam());

  recording_subscriber sub(persistent_connect("resume-sub", protocol_version::v5, 3600));
  auto options = stream("resume-pub", protocol_version::v5, qos::exactly_once, "q2", "crash/q2",
                        stream_count);
  options.session_expiry = 3600;
  std::unique_ptr<stream_publisher> pub;
  std::size_t before = 0;
  {
    node_process node(data, settings);
    ASSERT_TRUE(node.ready()) << node.describe();
    ASSERT_TRUE(sub.connect(node.port())) << sub.error();
    ASSERT_TRUE(sub.subscribe({{"crash/#", qos::exactly_once}})) << sub.error();
    sub.disconnect();
    pub = std::make_unique<stream_publisher>(node.port(), options);
    const bool reached = pub->wait_accepted(stream_count / 2, milliseconds(60'000));
    node.kill();
    pub->join();
    ASSERT_TRUE(reached) << node.log_tail();
    before = acknowledged(*pub);
  }

  node_process node(data, settings);
  ASSERT_TRUE(node.ready()) << node.describe();
  pub->resume(node.port());
  pub->join();
  EXPECT_TRUE(pub->resumed_session_present());
  ASSERT_EQ(pub->error(), "") << describe_stream(*pub) << "\n" << node.log_tail();
  ASSERT_EQ(pub->count(ack_state::completed), stream_count) << describe_stream(*pub);

  publish_end_marker(node.port());
  const auto ack = sub.connect(node.port());
  ASSERT_TRUE(ack) << sub.error();
  EXPECT_TRUE(ack->session_present);
  ASSERT_EQ(sub.pump_until_payload(end_marker, milliseconds(60'000)),
            recording_subscriber::pump_result::done)
      << sub.deliveries().size() << " deliveries\n"
      << node.log_tail();
  const auto check = check_stream(sub.deliveries(), "q2", pub->states(), true);
  EXPECT_EQ(check.problems, "");
  EXPECT_EQ(check.delivered, stream_count);
  sub.disconnect();
  const auto status = node.stop();
  ASSERT_TRUE(status) << node.log_tail();
  EXPECT_TRUE(status->clean()) << node.log_tail();
  std::cout << "[ resume   ] " << GetParam() << ": " << before
            << " acknowledged before the kill; after resuming " << describe_stream(*pub)
            << "; delivered " << check.delivered << " (+" << check.duplicates << " again)\n";
}

INSTANTIATE_TEST_SUITE_P(Modes, DurabilityCrashPublisher, ::testing::Values("sync", "batch"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace ringmq::testing::durability
