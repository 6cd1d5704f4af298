// ns per topic match in the subscription trie at 10k, 100k and 1M subscriptions, and ns per
// routed PUBLISH (match, fold per session, deliver and encode) for fan-out 1 and 100.
//
// The subscriptions are an IoT fleet: most devices' telemetry is consumed by one exact
// subscription each, a fifth of the devices are also watched whole by a backend
// ("devices/<id>/+"), a few dashboards watch every device's status ("devices/+/status") and a
// few '#' subscriptions cover other trees. So a device's telemetry has 1 match, a watched
// device's status has 5 (1 + 4 dashboards), and an unknown topic has none.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "broker/core/broker.hpp"
#include "broker/core/subscription_trie.hpp"

namespace {

using namespace ringmq;

// Key: a subscriber id; value: the granted QoS (what a real route carries, at minimum).
using trie = core::subscription_trie<std::uint32_t, std::uint8_t>;

std::string device_name(std::uint32_t id) { return "dev-" + std::to_string(id); }

struct iot_index {
  trie subscriptions;
  std::uint32_t watched = 0;  // devices [0, watched) also have "devices/<id>/+"
  std::uint32_t devices = 0;  // devices [0, devices) have "devices/<id>/telemetry"
};

constexpr std::uint32_t status_dashboards = 4;

std::unique_ptr<iot_index> build_index(std::uint32_t total) {
  auto index = std::make_unique<iot_index>();
  auto& t = index->subscriptions;
  const std::vector<std::string> fixed{"alerts/#", "alerts/#", "$SYS/#", "fleet/+/#"};
  std::uint32_t key = 0;
  for (std::uint32_t i = 0; i < status_dashboards; ++i) t.insert("devices/+/status", key++, 1);
  for (const auto& f : fixed) t.insert(f, key++, 0);
  index->watched = total / 5;
  index->devices = total - index->watched - key;
  for (std::uint32_t id = 0; id < index->devices; ++id) {
    t.insert("devices/" + device_name(id) + "/telemetry", key++, 1);
  }
  for (std::uint32_t id = 0; id < index->watched; ++id) {
    t.insert("devices/" + device_name(id) + "/+", key++, 1);
  }
  return index;
}

// Built once per size and kept for the process: 1M subscriptions take a few hundred MB and a
// second or two to build, which must not be repeated for every benchmark run.
const iot_index& index_of(std::uint32_t total) {
  static std::map<std::uint32_t, std::unique_ptr<iot_index>> built;
  auto& slot = built[total];
  if (!slot) slot = build_index(total);
  return *slot;
}

enum class topic_kind { none, one, several };

// Random devices, so consecutive matches touch different nodes as real traffic does.
std::vector<std::string> make_topics(const iot_index& index, topic_kind kind) {
  std::mt19937 rng(42);
  std::vector<std::string> topics;
  for (int i = 0; i < 4096; ++i) {
    switch (kind) {
      case topic_kind::none: {  // an unwatched device's topic nobody subscribes to
        std::uniform_int_distribution<std::uint32_t> id(index.watched, index.devices - 1);
        topics.push_back("devices/" + device_name(id(rng)) + "/config");
        break;
      }
      case topic_kind::one: {  // an unwatched device's telemetry: its exact subscription
        std::uniform_int_distribution<std::uint32_t> id(index.watched, index.devices - 1);
        topics.push_back("devices/" + device_name(id(rng)) + "/telemetry");
        break;
      }
      case topic_kind::several: {  // a watched device's status: "devices/<id>/+" and 4 dashboards
        std::uniform_int_distribution<std::uint32_t> id(0, index.watched - 1);
        topics.push_back("devices/" + device_name(id(rng)) + "/status");
        break;
      }
    }
  }
  return topics;
}

std::size_t expected_matches(topic_kind kind) {
  switch (kind) {
    case topic_kind::none: return 0;
    case topic_kind::one: return 1;
    case topic_kind::several: return 1 + status_dashboards;
  }
  return 0;
}

void trie_match(benchmark::State& state, topic_kind kind) {
  const auto& index = index_of(static_cast<std::uint32_t>(state.range(0)));
  const auto topics = make_topics(index, kind);
  const auto expected = expected_matches(kind);
  std::size_t i = 0;
  std::size_t checked_matches = 0;
  for (auto _ : state) {
    std::size_t matches = 0;
    index.subscriptions.match(
        topics[i++ & 4095], [&](std::uint32_t, std::uint8_t) { ++matches; },
        [&](const trie::shared_group&) { ++matches; });
    benchmark::DoNotOptimize(matches);
    checked_matches = matches;
    if (matches != expected) {
      state.SkipWithError("unexpected number of matches");
      break;
    }
  }
  state.counters["subscriptions"] = static_cast<double>(index.subscriptions.size());
  state.counters["matches"] = static_cast<double>(checked_matches);
}

void BM_TrieMatchNone(benchmark::State& state) { trie_match(state, topic_kind::none); }
void BM_TrieMatchOne(benchmark::State& state) { trie_match(state, topic_kind::one); }
void BM_TrieMatchSeveral(benchmark::State& state) { trie_match(state, topic_kind::several); }

BENCHMARK(BM_TrieMatchNone)->ArgName("subs")->Arg(10'000)->Arg(100'000)->Arg(1'000'000);
BENCHMARK(BM_TrieMatchOne)->ArgName("subs")->Arg(10'000)->Arg(100'000)->Arg(1'000'000);
BENCHMARK(BM_TrieMatchSeveral)->ArgName("subs")->Arg(10'000)->Arg(100'000)->Arg(1'000'000);

// --- routing through core::broker ------------------------------------------------------------

// A broker with `fanout` attached subscribers of one topic (exact, '+' and '#' filters mixed)
// and 10k unrelated device subscriptions of one offline persistent session, so the match runs
// in a trie of realistic shape. Outboxes have a no-op wake: nothing is written anywhere.
struct routing_fixture {
  static constexpr const char* topic = "plant/line-1/press-7/temperature";

  core::broker_settings settings;
  std::unique_ptr<core::broker> node;
  std::vector<std::shared_ptr<core::session>> subscribers;
  std::vector<std::shared_ptr<core::outbox>> outboxes;
  std::shared_ptr<core::session> background;
  std::string drained;

  routing_fixture(std::size_t fanout, codec::qos granted) {
    const auto now = core::clock::now();
    node = std::make_unique<core::broker>(settings, 1);
    const char* filters[] = {topic, "plant/+/press-7/temperature", "plant/line-1/#",
                             "plant/line-1/+/temperature"};
    core::stored_subscription sub;
    sub.options.max_qos = granted;
    for (std::size_t i = 0; i < fanout; ++i) {
      const auto connection = node->next_connection_id();
      auto opened = node->sessions().open("subscriber-" + std::to_string(i), true, connection);
      auto out = std::make_shared<core::outbox>(codec::protocol_version::v3_1_1, [] {},
                                                settings.max_outbound_bytes);
      opened.opened->attach(connection, out, core::peer_limits{}, now);
      node->routes().subscribe(opened.opened, filters[i % 4], sub);
      subscribers.push_back(opened.opened);
      outboxes.push_back(std::move(out));
    }
    auto opened = node->sessions().open("backend", false, node->next_connection_id());
    background = opened.opened;
    background->set_expiry_interval(0xFFFFFFFFu);
    for (std::uint32_t id = 0; id < 10'000; ++id) {
      node->routes().subscribe(background, "devices/" + device_name(id) + "/telemetry", sub);
    }
  }

  void drain() {
    for (auto& out : outboxes) out->take(drained);
  }
};

core::message_ptr make_message(codec::qos q) {
  auto m = std::make_shared<core::message>();
  m->topic = routing_fixture::topic;
  m->payload.assign(64, 'x');
  m->qos = q;
  m->publisher = "sensor-7";
  return m;
}

// QoS 0: match, one encode per subscriber into its outbox. QoS 1: the same, plus each
// subscriber's PUBACK (the message leaves the session's window), which a QoS 1 delivery costs.
void BM_RouterPublish(benchmark::State& state) {
  const auto fanout = static_cast<std::size_t>(state.range(0));
  const auto q = static_cast<codec::qos>(state.range(1));
  routing_fixture f(fanout, q);
  const auto m = make_message(q);
  const auto now = core::clock::now();
  std::uint16_t packet_id = 0;
  std::size_t n = 0;
  for (auto _ : state) {
    const auto reached = f.node->publish(m, now);
    benchmark::DoNotOptimize(reached);
    if (reached != fanout) {
      state.SkipWithError("the message did not reach every subscriber");
      break;
    }
    if (q == codec::qos::at_least_once) {
      // Every subscriber got this message with the same id: each session numbers its own.
      if (++packet_id == 0) packet_id = 1;
      for (auto& s : f.subscribers) s->on_puback(packet_id, now);
    }
    if ((++n & 63) == 0) f.drain();
  }
  for (const auto& s : f.subscribers) {
    if (s->inflight_count() != 0 || s->queued_count() != 0) {
      state.SkipWithError("deliveries were left unacknowledged");
      break;
    }
  }
  state.counters["deliveries/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * fanout), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RouterPublish)->ArgNames({"fanout", "qos"})->ArgsProduct({{1, 100}, {0, 1}});

}  // namespace
