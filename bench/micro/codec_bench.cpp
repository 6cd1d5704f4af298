// ns per packet for the codec's hot paths: PUBLISH in both directions, CONNECT.

#include <benchmark/benchmark.h>

#include "broker/codec/decoder.hpp"
#include "broker/codec/encoder.hpp"

namespace {

using namespace ringmq::codec;

publish_packet make_publish(std::size_t payload, protocol_version v) {
  publish_packet p;
  p.topic = "sensors/building-7/floor-3/temperature";
  p.payload.assign(payload, 'x');
  p.qos = qos::at_least_once;
  p.packet_id = 4242;
  if (is_v5(v)) p.props.message_expiry_interval = 60;
  return p;
}

connect_packet make_connect() {
  connect_packet c;
  c.version = protocol_version::v5;
  c.client_id = "device-00042-abcdef";
  c.keep_alive = 60;
  c.username = "device-00042";
  c.password = "s3cr3t-p4ssw0rd";
  c.props.session_expiry_interval = 3600;
  c.props.receive_maximum = 100;
  will_message w;
  w.topic = "devices/device-00042/status";
  w.payload = "offline";
  w.qos = qos::at_least_once;
  c.will = w;
  return c;
}

void BM_EncodePublish(benchmark::State& state) {
  const auto v = static_cast<protocol_version>(state.range(1));
  const packet p = make_publish(state.range(0), v);
  std::string out;
  for (auto _ : state) {
    out.clear();
    encode(p, v, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * out.size());
}
BENCHMARK(BM_EncodePublish)->ArgsProduct({{16, 4096}, {4, 5}});

void BM_DecodePublish(benchmark::State& state) {
  const auto v = static_cast<protocol_version>(state.range(1));
  const std::string bytes = encode(make_publish(state.range(0), v), v);
  stream_decoder decoder;
  decoder.set_version(v);
  for (auto _ : state) {
    decoder.feed(bytes);
    auto p = decoder.next();
    benchmark::DoNotOptimize(p);
  }
  state.SetBytesProcessed(state.iterations() * bytes.size());
}
BENCHMARK(BM_DecodePublish)->ArgsProduct({{16, 4096}, {4, 5}});

void BM_EncodeConnect(benchmark::State& state) {
  const packet c = make_connect();
  std::string out;
  for (auto _ : state) {
    out.clear();
    encode(c, protocol_version::v5, out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_EncodeConnect);

void BM_DecodeConnect(benchmark::State& state) {
  const std::string bytes = encode(make_connect(), protocol_version::v5);
  for (auto _ : state) {
    auto p = decode_packet(bytes, protocol_version::v5);
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_DecodeConnect);

}  // namespace
