// Restart with many sessions: 20,000 persistent sessions (3.1.1 Clean Session
// 0), each with its own subscription, are made over raw sockets in waves (the
// open-files limit is 20,000 per process); the broker is killed with SIGKILL
// and started again on the same store. It must be ready (/readyz 200) within
// a few seconds, say it recovered every session, and serve them: a session
// picked at random is present and receives what is published to its filter.
// A recovered session also keeps the user name the ACL knows it by.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include "broker/codec/encoder.hpp"
#include "tests/support/durability_support.hpp"

namespace ringmq::testing::durability {
namespace {

using codec::protocol_version;
using codec::qos;

constexpr int session_count = 20'000;
constexpr int wave = 2'000;  // connections open at once
// A bound an operator can rely on, for the optimised build; an unoptimised
// AddressSanitizer build replays the store several times slower.
#if defined(__SANITIZE_ADDRESS__)
constexpr auto ready_within = std::chrono::seconds(20);
#else
constexpr auto ready_within = std::chrono::seconds(5);
#endif

std::string client_id(int i) { return "fleet-" + std::to_string(i); }
std::string filter_of(int i) { return "fleet/" + std::to_string(i) + "/cmd"; }

// CONNECT (Clean Session 0), SUBSCRIBE and DISCONNECT for session `i`, in one write.
std::string session_bytes(int i) {
  codec::connect_packet c = persistent_connect(client_id(i), protocol_version::v3_1_1);
  codec::subscribe_packet s;
  s.packet_id = 1;
  codec::subscription sub;
  sub.filter = filter_of(i);
  sub.options.max_qos = qos::at_least_once;
  s.subscriptions.push_back(sub);
  auto bytes = codec::encode(codec::packet{c}, protocol_version::v3_1_1);
  bytes += codec::encode(codec::packet{s}, protocol_version::v3_1_1);
  return bytes;
}

// CONNACK (accepted, no session) then SUBACK granting QoS 1 to packet id 1.
const std::string expected_answer("\x20\x02\x00\x00\x90\x03\x00\x01\x01", 9);

// Makes sessions [first, last): every connection sends its packets at once,
// then all are read together until each has its SUBACK (sent once the
// subscription is durable). The DISCONNECT is sent only after it.
std::string make_sessions(std::uint16_t port, int first, int last) {
  struct conn {
    int fd = -1;
    std::string got;
  };
  std::vector<conn> conns(static_cast<std::size_t>(last - first));
  auto close_all = [&] {
    for (auto& c : conns) {
      if (c.fd >= 0) ::close(c.fd);
    }
  };
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = first; i < last; ++i) {
    auto& c = conns[static_cast<std::size_t>(i - first)];
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd < 0 || ::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close_all();
      return "connect " + client_id(i) + ": " + std::strerror(errno);
    }
    const auto bytes = session_bytes(i);
    if (::send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(bytes.size())) {
      close_all();
      return "send " + client_id(i) + ": " + std::strerror(errno);
    }
  }
  const auto deadline = steady::now() + std::chrono::seconds(30);
  std::size_t done = 0;
  std::vector<pollfd> fds;
  std::vector<std::size_t> index;
  while (done < conns.size()) {
    fds.clear();
    index.clear();
    for (std::size_t k = 0; k < conns.size(); ++k) {
      if (conns[k].got.size() < expected_answer.size()) {
        fds.push_back({conns[k].fd, POLLIN, 0});
        index.push_back(k);
      }
    }
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now()).count();
    if (left <= 0 || ::poll(fds.data(), fds.size(), static_cast<int>(left)) <= 0) {
      close_all();
      return std::to_string(conns.size() - done) + " sessions of " + client_id(first) +
             ".. got no SUBACK in time";
    }
    for (std::size_t j = 0; j < fds.size(); ++j) {
      if (fds[j].revents == 0) continue;
      auto& c = conns[index[j]];
      char buffer[64];
      const auto n = ::recv(c.fd, buffer, sizeof buffer, 0);
      if (n <= 0) {
        close_all();
        return client_id(first + static_cast<int>(index[j])) + ": connection closed";
      }
      c.got.append(buffer, static_cast<std::size_t>(n));
      if (c.got.size() >= expected_answer.size()) {
        if (c.got != expected_answer) {
          close_all();
          return client_id(first + static_cast<int>(index[j])) + ": unexpected answer";
        }
        static const std::string disconnect("\xE0\x00", 2);
        ::send(c.fd, disconnect.data(), disconnect.size(), MSG_NOSIGNAL);
        ++done;
      }
    }
  }
  close_all();
  return "";
}

TEST(DurabilityRestart, TwentyThousandSessionsAreBackAndReadyWithinSeconds) {
  scratch_dir dir;
  ASSERT_FALSE(dir.path().empty());
  const auto data = dir / "data";
  const std::vector<std::string> settings{"http.bind=127.0.0.1:0"};

  const auto began = steady::now();
  {
    node_process node(data, settings);
    ASSERT_TRUE(node.ready()) << node.describe();
    for (int first = 0; first < session_count; first += wave) {
      const auto problem = make_sessions(node.port(), first, std::min(first + wave, session_count));
      ASSERT_EQ(problem, "") << node.log_tail();
    }
    node.kill();
  }
  const auto made = steady::now();

  node_process node(data, settings);
  ASSERT_TRUE(node.ready()) << node.describe();
  ASSERT_NE(node.http_port(), 0) << node.log_tail();
  int status = 0;
  while (steady::now() - node.spawned_at() < ready_within) {
    status = http_get_status(node.http_port(), "/readyz", milliseconds(1'000));
    if (status == 200) break;
  }
  const auto ready_after = steady::now() - node.spawned_at();
  EXPECT_EQ(status, 200) << node.log_tail();
  EXPECT_LT(ready_after, ready_within);
  EXPECT_TRUE(node.wait_for_log("recovered from the store: sessions=" +
                                std::to_string(session_count) + " subscriptions=" +
                                std::to_string(session_count)))
      << node.log_tail();

  // A few sessions, anywhere in the range: present, and their subscription works.
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(0, session_count - 1);
  mqtt_socket publisher;
  ASSERT_TRUE(publisher.connect_tcp(node.port())) << publisher.error();
  ASSERT_TRUE(publisher.handshake(clean_connect("fleet-pub", protocol_version::v5)));
  for (int k = 0; k < 3; ++k) {
    const int i = pick(rng);
    codec::publish_packet p;
    p.topic = filter_of(i);
    p.payload = numbered_payload("cmd", static_cast<std::uint32_t>(i));
    p.qos = qos::at_least_once;
    p.packet_id = static_cast<std::uint16_t>(k + 1);
    const auto code = publish_one(publisher, p);
    ASSERT_TRUE(code && *code == codec::reason_code::success) << client_id(i);
    recording_subscriber sub(persistent_connect(client_id(i), protocol_version::v3_1_1));
    const auto ack = sub.connect(node.port());
    ASSERT_TRUE(ack) << sub.error();
    EXPECT_TRUE(ack->session_present) << client_id(i);
    EXPECT_EQ(sub.pump_until_payload(p.payload, milliseconds(5'000)),
              recording_subscriber::pump_result::done)
        << client_id(i);
    sub.disconnect();
  }
  const auto stopped = node.stop();
  ASSERT_TRUE(stopped && stopped->clean()) << node.log_tail();

  const auto log = node.log();
  const auto line = log.find("recovered from the store:");
  std::cout << "[ restart  ] " << session_count << " sessions made in "
            << std::chrono::duration_cast<milliseconds>(made - began).count() << " ms; ready "
            << std::chrono::duration_cast<milliseconds>(ready_after).count()
            << " ms after the restart; "
            << (line == std::string::npos ? "" : log.substr(line, log.find('\n', line) - line))
            << "\n";
}

// A persistent session keeps the user name of its last connection in the
// store: after a restart, before the client is back, the ACL's user lines
// apply to what is routed to it (alice may read alice/#; anonymous may not).
TEST(DurabilityRestart, RecoveredSessionsKeepTheirUserNameForTheAcl) {
  scratch_dir dir;
  ASSERT_FALSE(dir.path().empty());
  const auto data = dir / "data";
  const auto acl = dir / "acl";
  {
    std::ofstream out(acl);
    out << "user alice\ntopic read alice/#\n\nuser admin\ntopic readwrite #\n";
  }
  const std::vector<std::string> settings{"auth.acl_file=" + acl};
  auto alice_connect = [] {
    auto c = persistent_connect("alice-phone", protocol_version::v3_1_1);
    c.username = "alice";
    return c;
  };
  {
    node_process node(data, settings);
    ASSERT_TRUE(node.ready()) << node.describe();
    recording_subscriber alice(alice_connect());
    ASSERT_TRUE(alice.connect(node.port())) << alice.error();
    ASSERT_TRUE(alice.subscribe({{"alice/#", qos::at_least_once}})) << alice.error();
    alice.disconnect();
    ASSERT_TRUE(node.wait_for_log("client disconnected: client_id=alice-phone")) << node.log_tail();
    node.kill();
  }

  node_process node(data, settings);
  ASSERT_TRUE(node.ready()) << node.describe();
  mqtt_socket admin;
  ASSERT_TRUE(admin.connect_tcp(node.port())) << admin.error();
  auto admin_connect = clean_connect("console", protocol_version::v5);
  admin_connect.username = "admin";
  ASSERT_TRUE(admin.handshake(admin_connect)) << admin.error();
  codec::publish_packet p;
  p.topic = "alice/inbox";
  p.payload = numbered_payload("while-away", 1);
  p.qos = qos::at_least_once;
  p.packet_id = 1;
  const auto code = publish_one(admin, p);
  ASSERT_TRUE(code);
  // Routed to alice's recovered session, not refused as "no subscribers".
  EXPECT_EQ(*code, codec::reason_code::success);

  recording_subscriber alice(alice_connect());
  const auto ack = alice.connect(node.port());
  ASSERT_TRUE(ack) << alice.error();
  EXPECT_TRUE(ack->session_present);
  EXPECT_EQ(alice.pump_until_payload(p.payload, milliseconds(5'000)),
            recording_subscriber::pump_result::done)
      << node.log_tail();
  alice.disconnect();
  const auto stopped = node.stop();
  EXPECT_TRUE(stopped && stopped->clean()) << node.log_tail();
}

}  // namespace
}  // namespace ringmq::testing::durability
