#include "bench/loadgen/scenario.hpp"

#include <algorithm>
#include <cstdlib>

#include "bench/loadgen/clients.hpp"
#include "bench/loadgen/cluster_scenarios.hpp"

namespace ringmq::bench {

namespace {

int run_idle(shared_state& s) {
  const auto& o = s.opts;
  raise_fd_limit();
  worker_threads workers(o.threads);
  const long rss_before = o.broker_pid ? rss_kib(o.broker_pid) : -1;
  std::vector<std::shared_ptr<subscriber>> clients;
  const auto t0 = steady::now();
  // Connect in waves so the listen backlog never overflows.
  constexpr std::uint32_t wave = 512;
  for (std::uint32_t i = 0; i < o.connections; ++i) {
    auto c = std::make_shared<subscriber>(s, workers.at(i),
                                          o.topic_prefix + "-idle-" + std::to_string(i) + "-" +
                                              std::to_string(s.pid),
                                          "", 0, true);
    c->start(s.brokers[i % s.brokers.size()], i, false);
    clients.push_back(std::move(c));
    if ((i + 1) % wave == 0 &&
        !wait_until([&] { return s.ready.load() + wave / 2 >= i + 1; }, 30, s)) {
      break;
    }
  }
  const bool all = wait_until([&] { return s.ready.load() >= o.connections; }, 60, s);
  const double connect_s = std::chrono::duration<double>(steady::now() - t0).count();
  // Let the broker settle, then hold the connections for the duration.
  std::this_thread::sleep_for(std::chrono::duration<double>(o.duration_s));
  const long rss_after = o.broker_pid ? rss_kib(o.broker_pid) : -1;
  const auto still_open = o.connections - std::min<std::uint64_t>(s.disconnects.load(), o.connections);

  report r;
  common_fields(r, o);
  r.add("connections", o.connections)
      .add("connected", s.ready.load())
      .add("held", still_open)
      .add("connect_seconds", connect_s)
      .add("connect_rate", connect_s > 0 ? s.ready.load() / connect_s : 0);
  if (o.broker_pid) {
    r.add("broker_rss_before_kib", rss_before)
        .add("broker_rss_after_kib", rss_after)
        .add("rss_per_connection_bytes",
             s.ready.load() ? (rss_after - rss_before) * 1024.0 / s.ready.load() : 0);
  }
  const bool ok = all && still_open == o.connections;
  r.add("ok", ok ? "true" : "false");
  if (!s.error().empty()) r.add_string("error", s.error());
  r.print();
  for (auto& c : clients) c->disconnect();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  workers.stop();
  return ok ? 0 : 1;
}

int run_persistent(shared_state& s) {
  const auto& o = s.opts;
  worker_threads workers(o.threads);
  const auto topic = o.topic_prefix + "/persist/" + std::to_string(s.pid);
  std::vector<std::shared_ptr<subscriber>> subs;
  auto sub_id = [&](std::uint32_t i) {
    return o.topic_prefix + "-persist-" + std::to_string(i) + "-" + std::to_string(s.pid);
  };
  // 1. Persistent subscribers subscribe, then go offline.
  for (std::uint32_t i = 0; i < o.subscribers; ++i) {
    auto c = std::make_shared<subscriber>(s, workers.at(i), sub_id(i), topic, 1, false);
    c->start(s.subscriber_broker(i), i, true);
    subs.push_back(c);
  }
  if (!wait_until([&] { return s.ready.load() >= o.subscribers; }, 30, s)) {
    std::cerr << "ringmq-bench: subscribers not ready: " << s.error() << "\n";
    return 1;
  }
  for (auto& c : subs) c->disconnect();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  s.ready = 0;
  // 2. The publisher fills their queues.
  auto pub = std::make_shared<publisher>(s, workers.at(0), 0, topic, 0);
  pub->start(s.publisher_broker(0), 0);
  if (!wait_until([&] { return s.ready.load() >= 1; }, 30, s)) return 1;
  s.now = phase::warmup;
  pub->go(o.messages);
  if (!wait_until([&] { return pub->acked().unique() >= o.messages; }, 120, s)) {
    std::cerr << "ringmq-bench: publishes not acknowledged: " << s.error() << "\n";
    return 1;
  }
  pub->stop();
  // 3. They come back and drain.
  s.ready = 0;
  s.now = phase::measuring;
  std::vector<std::shared_ptr<subscriber>> back;
  const auto t0 = steady::now();
  for (std::uint32_t i = 0; i < o.subscribers; ++i) {
    auto c = std::make_shared<subscriber>(s, workers.at(i), sub_id(i), topic, 1, false);
    c->start(s.subscriber_broker(i), i, false);
    back.push_back(c);
  }
  const std::uint64_t expected = std::uint64_t{o.subscribers} * o.messages;
  const bool complete =
      wait_until([&] { return s.received_unique.load() >= expected; }, o.drain_s + 60, s);
  const double drain_s = std::chrono::duration<double>(steady::now() - t0).count();
  s.now = phase::stopping;
  for (auto& c : back) c->disconnect();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  workers.stop();

  std::uint64_t lost = 0;
  std::uint64_t dups = 0;
  for (auto& c : back) {
    lost += c->trackers()[0].missing_from(pub->acked());
    dups += c->trackers()[0].duplicates();
  }
  report r;
  common_fields(r, o);
  const bool ok = complete && lost == 0 && (o.qos < 2 || dups == 0);
  r.add("subscribers", o.subscribers)
      .add("messages", o.messages)
      .add("received", s.received_unique.load())
      .add("drain_seconds", drain_s)
      .add("throughput", drain_s > 0 ? s.received_unique.load() / drain_s : 0)
      .add("lost", lost)
      .add("duplicates", dups)
      .add("ok", ok ? "true" : "false");
  if (!s.error().empty()) r.add_string("error", s.error());
  r.print();
  return ok ? 0 : 3;
}

// Creates persistent sessions with one subscription each, in waves of
// connections that subscribe and disconnect (a store to restart from).
int run_sessions(shared_state& s) {
  const auto& o = s.opts;
  raise_fd_limit();
  worker_threads workers(o.threads);
  const auto t0 = steady::now();
  constexpr std::uint32_t wave = 2000;
  std::uint32_t created = 0;
  while (created < o.connections && s.failures.load() == 0) {
    const auto n = std::min(wave, o.connections - created);
    s.ready = 0;
    std::vector<std::shared_ptr<subscriber>> batch;
    for (std::uint32_t i = 0; i < n; ++i) {
      const auto index = created + i;
      auto c = std::make_shared<subscriber>(
          s, workers.at(index), o.topic_prefix + "-session-" + std::to_string(index),
          o.topic_prefix + "/session/" + std::to_string(index), 0, false);
      c->start(s.brokers[index % s.brokers.size()], index, true);
      batch.push_back(std::move(c));
    }
    if (!wait_until([&] { return s.ready.load() >= n; }, 60, s)) break;
    for (auto& c : batch) c->disconnect();
    created += n;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  workers.stop();
  const double seconds = std::chrono::duration<double>(steady::now() - t0).count();
  report r;
  common_fields(r, o);
  r.add("sessions", created).add("seconds", seconds).add("ok", created == o.connections ? "true" : "false");
  if (!s.error().empty()) r.add_string("error", s.error());
  r.print();
  return created == o.connections ? 0 : 1;
}

// "address:port" or "address" (then the default port).
asio::ip::tcp::endpoint parse_endpoint(const std::string& text, std::uint16_t default_port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return {asio::ip::make_address(text), default_port};
  const auto port = std::stoul(text.substr(colon + 1));
  if (port == 0 || port > 65535) throw std::invalid_argument("port out of range in " + text);
  return {asio::ip::make_address(text.substr(0, colon)), static_cast<std::uint16_t>(port)};
}

}  // namespace

int run(const options& input) {
  shared_state s;
  s.opts = input;
  auto& o = s.opts;
  if (o.scenario == "latency" && o.rate == 0) o.rate = 10000;
  if (o.scenario == "fanout") o.publishers = 1;
  if (o.scenario == "pairs" || o.scenario == "latency") o.subscribers = o.publishers;
  try {
    if (o.hosts.empty()) o.hosts.push_back(o.host + ":" + std::to_string(o.port));
    for (const auto& h : o.hosts) s.brokers.push_back(parse_endpoint(h, o.port));
  } catch (const std::exception& e) {
    std::cerr << "ringmq-bench: bad --host or --hosts: " << e.what() << "\n";
    return 1;
  }
  if (o.scenario == "failover") return run_failover(s);
  if (o.scenario == "route-convergence") return run_route_convergence(s);
  if (o.scenario == "idle") return run_idle(s);
  if (o.scenario == "persistent") return run_persistent(s);
  if (o.scenario == "sessions") return run_sessions(s);

  const bool pairs = o.scenario == "pairs" || o.scenario == "latency";
  const auto base = o.topic_prefix + "/" + o.scenario + "/" + std::to_string(s.pid);
  auto topic_of = [&](std::uint32_t p) {
    return o.scenario == "fanout" ? base : base + "/" + std::to_string(p);
  };
  worker_threads workers(o.threads);

  std::vector<std::shared_ptr<subscriber>> subs;
  for (std::uint32_t i = 0; i < o.subscribers; ++i) {
    const std::string filter = pairs ? topic_of(i) : o.scenario == "fanin" ? base + "/+" : base;
    auto c = std::make_shared<subscriber>(
        s, workers.at(i),
        o.topic_prefix + "-sub-" + std::to_string(i) + "-" + std::to_string(s.pid), filter,
        o.publishers, !o.persistent_subscribers);
    c->start(s.subscriber_broker(i), i, true);
    subs.push_back(std::move(c));
  }
  if (!wait_until([&] { return s.ready.load() >= o.subscribers; }, 60, s)) {
    std::cerr << "ringmq-bench: subscribers not ready: " << s.error() << "\n";
    return 1;
  }
  std::vector<std::shared_ptr<publisher>> pubs;
  const double per_publisher = o.rate > 0 ? o.rate / o.publishers : 0;
  for (std::uint32_t p = 0; p < o.publishers; ++p) {
    auto c = std::make_shared<publisher>(s, workers.at(p + (pairs ? 0 : 1)), p, topic_of(p),
                                         per_publisher);
    c->start(s.publisher_broker(p), o.subscribers + p);
    pubs.push_back(std::move(c));
  }
  if (!wait_until([&] { return s.ready.load() >= o.subscribers + o.publishers; }, 60, s)) {
    std::cerr << "ringmq-bench: publishers not ready: " << s.error() << "\n";
    return 1;
  }

  s.now = phase::warmup;
  for (auto& p : pubs) p->go();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup_s));
  s.now = phase::measuring;
  const auto t0 = steady::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.duration_s));
  s.now = phase::stopping;
  const double measured = std::chrono::duration<double>(steady::now() - t0).count();

  // Wait for what is still in flight: every acknowledged message must arrive.
  auto expected = [&] {
    std::uint64_t total = 0;
    for (auto& p : pubs) total += p->published();
    return total * (pairs ? 1 : o.subscribers);
  };
  auto settled = [&] {
    for (auto& p : pubs) {
      if (p->inflight() > 0) return false;
    }
    return s.received_unique.load() >= expected();
  };
  wait_until(settled, o.drain_s, s);
  for (auto& p : pubs) p->stop();
  for (auto& c : subs) c->disconnect();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  workers.stop();

  std::uint64_t lost = 0;
  std::uint64_t dups = 0;
  std::uint64_t reordered = 0;
  latency_histogram latency;
  for (std::size_t i = 0; i < subs.size(); ++i) {
    const auto& trackers = subs[i]->trackers();
    for (std::size_t p = 0; p < pubs.size(); ++p) {
      if (pairs && p != i) continue;
      lost += trackers[p].missing_from(pubs[p]->acked());
      dups += trackers[p].duplicates();
      reordered += trackers[p].reordered();
    }
    latency.merge(subs[i]->latencies());
  }
  std::uint64_t published = 0;
  std::uint64_t unacknowledged = 0;
  for (auto& p : pubs) {
    published += p->published();
    unacknowledged += p->inflight();
  }

  // A broker that stops acknowledging must not look healthy: publishes still
  // unacknowledged after the drain fail a QoS 1/2 run like lost messages do.
  const bool delivery_ok =
      (o.qos == 0 || (lost == 0 && unacknowledged == 0)) && (o.qos < 2 || dups == 0);
  report r;
  common_fields(r, o);
  r.add("publishers", o.publishers)
      .add("subscribers", o.subscribers)
      .add("rate_target", o.rate)
      .add("inflight", o.inflight)
      .add("duration_s", measured)
      .add("published", published)
      .add("received", s.received_unique.load())
      .add("throughput", s.received_measured.load() / measured)
      .add("publish_rate", s.sent_measured.load() / measured)
      .add("lost", lost)
      .add("unacknowledged", unacknowledged)
      .add("duplicates", dups)
      .add("reordered", reordered)
      .add("disconnects", s.disconnects.load());
  add_latency(r, latency);
  r.add("ok", delivery_ok && s.failures.load() == 0 ? "true" : "false");
  if (!s.error().empty()) r.add_string("error", s.error());
  r.print();
  if (!delivery_ok) return 3;
  return s.failures.load() == 0 ? 0 : 1;
}

}  // namespace ringmq::bench
