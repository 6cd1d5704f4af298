// ns per PUBLISH through the protocol engine: a connected client's decoded PUBLISH goes in, the
// engine routes it to the one attached subscriber, whose PUBLISH is encoded into its outbox (and
// for QoS 1 the publisher's PUBACK into the publisher's). Outboxes have a no-op wake and are
// drained every 64 publishes, as a connection's worker would, so they never grow.
//
// QoS 1 includes the subscriber's PUBACK going back through its engine: without it the
// session's window would fill and the benchmark would measure queueing instead of delivery.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>

#include "broker/core/engine.hpp"

namespace {

using namespace ringmq;

constexpr const char* topic = "sensors/building-7/floor-3/temperature";

struct client {
  std::shared_ptr<core::outbox> out;
  std::unique_ptr<core::engine> engine;
};

struct engine_fixture {
  core::broker_settings settings;
  core::broker node{settings, 1};
  client publisher;
  client subscriber;
  std::string drained;

  engine_fixture(codec::protocol_version v, core::time_point now) {
    publisher = connect("publisher", v, now);
    subscriber = connect("subscriber", v, now);
    codec::subscribe_packet s;
    s.packet_id = 1;
    codec::subscription sub;
    sub.filter = topic;
    sub.options.max_qos = codec::qos::at_least_once;
    s.subscriptions.push_back(sub);
    subscriber.engine->on_packet(codec::packet{std::move(s)}, now);
    drain();
  }

  client connect(const std::string& id, codec::protocol_version v, core::time_point now) {
    client c;
    c.out = std::make_shared<core::outbox>(v, [] {}, settings.max_outbound_bytes);
    c.engine = std::make_unique<core::engine>(
        node, c.out, core::connection_info{"127.0.0.1:50000", "bench"}, now);
    codec::connect_packet p;
    p.version = v;
    p.client_id = id;
    p.keep_alive = 60;
    c.engine->on_packet(codec::packet{std::move(p)}, now);
    return c;
  }

  void drain() {
    publisher.out->take(drained);
    subscriber.out->take(drained);
  }
};

codec::publish_packet make_publish(codec::qos q) {
  codec::publish_packet p;
  p.topic = topic;
  p.payload.assign(64, 'x');
  p.qos = q;
  return p;
}

void BM_EnginePublish(benchmark::State& state) {
  const auto q = static_cast<codec::qos>(state.range(0));
  const auto v = static_cast<codec::protocol_version>(state.range(1));
  const auto now = core::clock::now();
  engine_fixture f(v, now);
  if (!f.publisher.engine->connected() || !f.subscriber.engine->connected()) {
    state.SkipWithError("CONNECT was refused");
    return;
  }
  const auto tmpl = make_publish(q);
  std::uint16_t inbound_id = 0;   // the publisher's packet ids
  std::uint16_t outbound_id = 0;  // the subscriber's session numbers its deliveries 1, 2, ...
  auto next = [](std::uint16_t& id) {
    if (++id == 0) id = 1;
    return id;
  };
  std::size_t n = 0;
  for (auto _ : state) {
    // A copy, as the decoder hands the engine a fresh packet for every PUBLISH.
    codec::publish_packet p = tmpl;
    if (q != codec::qos::at_most_once) p.packet_id = next(inbound_id);
    f.publisher.engine->on_packet(codec::packet{std::move(p)}, now);
    if (q == codec::qos::at_least_once) {
      codec::puback_packet ack;
      ack.packet_id = next(outbound_id);
      f.subscriber.engine->on_packet(codec::packet{std::move(ack)}, now);
    }
    if ((++n & 63) == 0) {
      // Checked here rather than per publish: a drop would show as an outbox with no PUBLISH.
      if (f.subscriber.out->pending_bytes() == 0) {
        state.SkipWithError("the subscriber received nothing");
        break;
      }
      f.drain();
    }
  }
  const auto& s = f.subscriber.engine->current_session();
  if (s->inflight_count() != 0 || s->queued_count() != 0) {
    state.SkipWithError("deliveries were left unacknowledged");
  }
  if (f.publisher.engine->closing() || f.subscriber.engine->closing()) {
    const std::string reason = "a connection was closed: " +
                               f.publisher.engine->close_reason() +
                               f.subscriber.engine->close_reason();
    state.SkipWithError(reason.c_str());
  }
}
BENCHMARK(BM_EnginePublish)->ArgNames({"qos", "version"})->ArgsProduct({{0, 1}, {4, 5}});

}  // namespace
