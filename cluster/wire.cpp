#include "cluster/wire.hpp"

#include <algorithm>

#include "broker/codec/properties.hpp"
#include "broker/codec/wire.hpp"
#include "ringmq/cluster/v1/cluster.pb.h"

namespace ringmq::cluster {

void to_wire(const core::message& m, core::time_point now, v1::ClusterMessage& out) {
  out.set_topic(m.topic);
  out.set_payload(m.payload);
  out.set_qos(static_cast<std::uint32_t>(m.qos));
  out.set_retain(m.retain);
  if (!m.props.empty()) {
    std::string props;
    codec::encode_properties(m.props, props);
    out.set_properties(std::move(props));
  }
  out.set_publisher(m.publisher);
  if (m.publish_number) {
    out.set_publish_number(m.publish_number);
    out.set_publish_packet_id(m.publish_packet_id);
  }
  if (m.expires_at) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*m.expires_at - now);
    out.set_expires_in_ms(static_cast<std::uint64_t>(std::max<std::int64_t>(left.count(), 0)));
  }
}

std::shared_ptr<core::message> from_wire(const v1::ClusterMessage& in, core::time_point now) {
  auto m = std::make_shared<core::message>();
  m->topic = in.topic();
  m->payload = in.payload();
  m->qos = static_cast<codec::qos>(std::min<std::uint32_t>(in.qos(), 2));
  m->retain = in.retain();
  if (!in.properties().empty()) {
    codec::wire::reader r(in.properties());
    auto props = codec::decode_properties(r, codec::property_context::publish);
    if (!props) return nullptr;
    m->props = std::move(*props);
  }
  m->publisher = in.publisher();
  m->publish_number = in.publish_number();
  m->publish_packet_id = static_cast<std::uint16_t>(in.publish_packet_id());
  m->received_at = now;
  if (in.has_expires_in_ms()) {
    // No more than MQTT's largest Message Expiry Interval (2^32 - 1 s): a
    // larger value from a peer would overflow the clock's nanoseconds (found
    // by the gRPC fuzzer).
    constexpr std::uint64_t max_expiry_ms = 4'294'967'295ull * 1000;
    const auto in_ms = std::min<std::uint64_t>(in.expires_in_ms(), max_expiry_ms);
    m->expires_at = now + std::chrono::milliseconds(in_ms);
  }
  return m;
}

void to_wire(const core::retained_version& v, v1::RetainedVersion& out) {
  out.set_hlc(v.hlc);
  out.set_origin(v.origin);
}

core::retained_version from_wire(const v1::RetainedVersion& in) {
  return {in.hlc(), in.origin()};
}

}  // namespace ringmq::cluster
