// Abusive connections: a thousand connections that never send CONNECT, and
// connections beyond the node's and a listener's limit. Throughout, a
// well-behaved client from another address (steady_client, from 127.0.0.2) keeps
// doing QoS 1 round trips that must each finish within their deadline; the
// broker's memory must stay bounded and its log must say what happened.

#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "tests/integration/abuse_support.hpp"
#include "tests/integration/auth_client.hpp"
#include "tests/integration/transport_support.hpp"

namespace ringmq::testing {
namespace {

constexpr milliseconds wait_limit{10'000};
constexpr milliseconds probe_deadline{1'000};

TEST(AbuseConnections, ThousandSilentConnectionsAreClosedAtTheConnectTimeout) {
  constexpr std::size_t silent_count = 1'000;
  constexpr milliseconds connect_timeout{2'000};
  limit_asan_quarantine();
  broker_process broker({"mqtt.connect_timeout_ms=" + std::to_string(connect_timeout.count()),
                         "mqtt.sys_interval_s=0"});
  ASSERT_TRUE(broker.ready()) << broker.describe();
  steady_client probe(broker.port(), "probe", probe_deadline, "127.0.0.2");
  ASSERT_TRUE(probe.wait_running()) << probe.stop() << broker.describe();
  const auto rss_before = broker.resident_kib();
  rss_sampler rss(broker);

  struct silent {
    int fd = -1;
    steady::time_point opened;
    std::optional<milliseconds> lasted;
  };
  std::vector<silent> sockets(silent_count);
  for (auto& s : sockets) {
    s.opened = steady::now();
    s.fd = open_socket(broker.port(), "127.0.0.3");
    ASSERT_GE(s.fd, 0) << "connection " << (&s - sockets.data()) << ": " << std::strerror(errno);
  }
  // While they are all open, the probe carries on.
  EXPECT_TRUE(probe.wait_more_round_trips(5, wait_limit)) << probe.stop();

  // Every one is closed by the broker, at about the timeout after it opened.
  const auto deadline = steady::now() + connect_timeout + milliseconds(8'000);
  std::size_t open = silent_count;
  std::vector<pollfd> fds;
  while (open > 0) {
    fds.clear();
    for (auto& s : sockets) {
      if (!s.lasted) fds.push_back({s.fd, POLLIN, 0});
    }
    const int ready = ::poll(fds.data(), fds.size(), remaining_ms(deadline));
    if (ready <= 0) break;
    const auto now = steady::now();
    for (const auto& p : fds) {
      if (p.revents == 0) continue;
      auto& s = *std::find_if(sockets.begin(), sockets.end(),
                              [&](const silent& x) { return x.fd == p.fd; });
      char byte;
      if (::recv(s.fd, &byte, 1, 0) > 0) continue;  // the broker sends nothing: not expected
      s.lasted = std::chrono::duration_cast<milliseconds>(now - s.opened);
      --open;
    }
  }
  const auto rss_max = rss.stop();
  milliseconds shortest{1'000'000};
  milliseconds longest{0};
  for (auto& s : sockets) {
    if (s.lasted) {
      shortest = std::min(shortest, *s.lasted);
      longest = std::max(longest, *s.lasted);
    }
    ::close(s.fd);
  }
  ASSERT_EQ(open, 0u) << open << " connections still open" << broker.describe();
  EXPECT_GE(shortest.count(), connect_timeout.count() - 100);
  EXPECT_LE(longest.count(), connect_timeout.count() + 3'000);

  EXPECT_TRUE(probe.wait_more_round_trips(3, wait_limit));
  EXPECT_EQ(probe.stop(), "");
  EXPECT_LT(probe.slowest(), probe_deadline);
  // Each refusal is in the log with the address it came from.
  EXPECT_TRUE(broker.wait_for_log_count("reason=no CONNECT in time", silent_count, wait_limit))
      << count_of(broker.log(), "reason=no CONNECT in time");
  EXPECT_EQ(count_of(broker.log(), "peer=127.0.0.3:"), silent_count);
  EXPECT_EQ(count_of(broker.log(), "reason_code=0xA0 reason=no CONNECT in time"), silent_count);
  // A thousand idle connections cost the broker little, and nothing of it stays.
  EXPECT_LT(rss_max - rss_before, 32u * 1024) << "RSS grew from " << rss_before << " KiB to "
                                              << rss_max << " KiB";
  std::cout << "RSS before " << rss_before << " KiB, largest " << rss_max << " KiB; closed after "
            << shortest.count() << ".." << longest.count() << " ms; probe slowest "
            << probe.slowest().count() << " ms over " << probe.round_trips() << " round trips\n";
}

// Connects and completes CONNECT; the client (kept open) or why it failed.
std::unique_ptr<auth_client> connected_client(std::uint16_t port, const std::string& id) {
  auth_client::options o;
  o.client_id = id;
  o.source_address = "127.0.0.3";
  return std::make_unique<auth_client>(port, o);
}

// A connection beyond a limit: TCP connects (the kernel accepts), then the
// broker closes it at once, without reading a CONNECT. True when it did, well
// before any timeout.
bool closed_at_once(std::uint16_t port, std::string& why) {
  const auto began = steady::now();
  mqtt_socket s;
  if (!s.connect_tcp(port, "127.0.0.3")) {
    why = s.error();
    return false;
  }
  codec::connect_packet c;
  c.version = codec::protocol_version::v5;
  c.client_id = "one-too-many";
  if (s.handshake(c, milliseconds(5'000))) {
    why = "CONNACK received";
    return false;
  }
  const auto took = std::chrono::duration_cast<milliseconds>(steady::now() - began);
  if (!s.closed()) {
    why = "not closed: " + s.error();
    return false;
  }
  if (took > milliseconds(1'000)) {
    why = "closed after " + std::to_string(took.count()) + " ms";
    return false;
  }
  return true;
}

// The value of a counter once it reached `at_least` (scraped until then, bounded).
double metric_at_least(std::uint16_t http, const std::string& series, double at_least) {
  const auto deadline = steady::now() + wait_limit;
  auto v = metric_value(http, series).value_or(-1);
  while (v < at_least && steady::now() < deadline) v = metric_value(http, series).value_or(-1);
  return v;
}

TEST(AbuseConnections, ConnectionsBeyondTheLimitsAreClosedAtOnce) {
  constexpr std::size_t node_limit = 50;
  constexpr std::size_t listener_limit = 5;
  constexpr std::size_t handshaking = 10;
  broker_process broker({"mqtt.max_connections=" + std::to_string(node_limit),
                         "listeners=[{type: mqtt, name: main, bind: \"127.0.0.1:0\"}, "
                         "{type: mqtt, name: small, bind: \"127.0.0.1:0\", max_connections: " +
                             std::to_string(listener_limit) +
                             "}, {type: ws, name: web, bind: \"127.0.0.1:0\"}]",
                         "http.bind=127.0.0.1:0", "mqtt.sys_interval_s=0"});
  ASSERT_TRUE(broker.ready()) << broker.describe();
  const auto main_port = listener_port(broker, "main");
  const auto small_port = listener_port(broker, "small");
  const auto web_port = listener_port(broker, "web");
  const auto http = http_port_of(broker);
  ASSERT_TRUE(main_port && small_port && web_port && http) << broker.describe();
  const std::string refused = "ringmq_connections_refused_total";
  ASSERT_EQ(metric_value(http, refused), 0.0);

  steady_client probe(main_port, "probe", probe_deadline, "127.0.0.2");
  ASSERT_TRUE(probe.wait_running()) << probe.stop() << broker.describe();
  std::vector<std::unique_ptr<auth_client>> clients;

  // The small listener: five, then no more.
  for (std::size_t i = 0; i < listener_limit; ++i) {
    clients.push_back(connected_client(small_port, "small-" + std::to_string(i)));
    ASSERT_TRUE(clients.back()->connected()) << i << ": " << clients.back()->error();
  }
  std::string why;
  EXPECT_TRUE(closed_at_once(small_port, why)) << why << broker.describe();
  EXPECT_TRUE(broker.wait_for_log(
      "connection refused on listener small: listener connection limit reached", wait_limit))
      << broker.describe();
  EXPECT_EQ(metric_value(http, refused), 1.0);

  // WebSocket connections still in their handshake count for the node too:
  // each holds a socket and memory as long as a connected client.
  std::vector<int> silent;
  for (std::size_t i = 0; i < handshaking; ++i) {
    silent.push_back(open_socket(web_port, "127.0.0.3"));
    ASSERT_GE(silent.back(), 0) << std::strerror(errno);
  }
  EXPECT_EQ(metric_at_least(http, "ringmq_connections_accepted_total",
                            1 + listener_limit + handshaking),
            1 + listener_limit + handshaking);

  // The node: 50 in all (the probe, the small listener's five and the
  // handshakes count too).
  while (clients.size() + 1 + handshaking < node_limit) {
    clients.push_back(connected_client(main_port, "main-" + std::to_string(clients.size())));
    ASSERT_TRUE(clients.back()->connected()) << clients.size() << ": " << clients.back()->error()
                                             << broker.describe();
  }
  EXPECT_TRUE(closed_at_once(main_port, why)) << why << broker.describe();
  EXPECT_TRUE(broker.wait_for_log(
      "connection refused on listener main: node connection limit reached", wait_limit))
      << broker.describe();
  EXPECT_EQ(metric_value(http, refused), 2.0);
  // Whatever the listener.
  EXPECT_TRUE(closed_at_once(web_port, why)) << why << broker.describe();
  EXPECT_EQ(metric_value(http, refused), 3.0);

  // One leaves: there is room for one again.
  const std::string leaving = "main-" + std::to_string(listener_limit);
  clients[listener_limit].reset();
  ASSERT_TRUE(broker.wait_for_log("client disconnected: client_id=" + leaving, wait_limit))
      << broker.describe();
  auto again = connected_client(main_port, "main-again");
  EXPECT_TRUE(again->connected()) << again->error() << broker.describe();
  EXPECT_TRUE(closed_at_once(main_port, why)) << why;
  EXPECT_EQ(metric_value(http, refused), 4.0);

  EXPECT_TRUE(probe.wait_more_round_trips(3, wait_limit));
  EXPECT_EQ(probe.stop(), "");
  EXPECT_TRUE(broker.wait_for_log_count("connection limit reached", 4, wait_limit))
      << broker.log();
  EXPECT_EQ(count_of(broker.log(), "connection limit reached"), 4u) << broker.log();
  EXPECT_EQ(count_of(broker.log(), "node connection limit reached"), 3u) << broker.log();
  for (int fd : silent) ::close(fd);
}

}  // namespace
}  // namespace ringmq::testing
