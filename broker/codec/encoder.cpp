#include "broker/codec/encoder.hpp"

#include "broker/codec/wire.hpp"

namespace ringmq::codec {
namespace {

using wire::varint_size;

constexpr std::uint8_t first_byte(packet_type type, std::uint8_t flags = 0) noexcept {
  return static_cast<std::uint8_t>((static_cast<std::uint8_t>(type) << 4) | flags);
}

std::size_t props_size(const properties& p, protocol_version v) noexcept {
  if (!is_v5(v)) return 0;
  const auto body = properties_body_size(p);
  return varint_size(static_cast<std::uint32_t>(body)) + body;
}

void put_props(const properties& p, protocol_version v, std::string& out) {
  if (is_v5(v)) encode_properties(p, out);
}

publish_view view_of(const publish_packet& p) noexcept {
  return {p.topic, p.payload, p.qos, p.retain, p.dup, p.packet_id, &p.props};
}

// Each packet type knows its Remaining Length and how to write its body.
struct body_sizer {
  protocol_version v;

  std::size_t operator()(const connect_packet& p) const {
    const auto pv = p.version;
    std::size_t n = 2 + (pv == protocol_version::v3_1 ? 6 : 4) + 1 + 1 + 2;
    n += props_size(p.props, pv);
    n += 2 + p.client_id.size();
    if (p.will) {
      n += props_size(p.will->props, pv);
      n += 2 + p.will->topic.size() + 2 + p.will->payload.size();
    }
    if (p.username) n += 2 + p.username->size();
    if (p.password) n += 2 + p.password->size();
    return n;
  }
  std::size_t operator()(const connack_packet& p) const { return 2 + props_size(p.props, v); }
  std::size_t operator()(const publish_packet& p) const { return (*this)(view_of(p)); }
  std::size_t operator()(const publish_view& p) const {
    static const properties none;
    return 2 + p.topic.size() + (p.qos != qos::at_most_once ? 2 : 0) +
           props_size(p.props ? *p.props : none, v) + p.payload.size();
  }
  template <packet_type T>
  std::size_t operator()(const publish_response<T>& p) const {
    if (!is_v5(v)) return 2;
    if (p.props.empty()) return p.code == reason_code::success ? 2 : 3;
    return 3 + props_size(p.props, v);
  }
  std::size_t operator()(const subscribe_packet& p) const {
    std::size_t n = 2 + props_size(p.props, v);
    for (const auto& s : p.subscriptions) n += 2 + s.filter.size() + 1;
    return n;
  }
  std::size_t operator()(const suback_packet& p) const {
    return 2 + props_size(p.props, v) + p.codes.size();
  }
  std::size_t operator()(const unsubscribe_packet& p) const {
    std::size_t n = 2 + props_size(p.props, v);
    for (const auto& f : p.filters) n += 2 + f.size();
    return n;
  }
  std::size_t operator()(const unsuback_packet& p) const {
    if (!is_v5(v)) return 2;
    return 2 + props_size(p.props, v) + p.codes.size();
  }
  std::size_t operator()(const pingreq_packet&) const { return 0; }
  std::size_t operator()(const pingresp_packet&) const { return 0; }
  std::size_t operator()(const disconnect_packet& p) const { return reason_and_props(p); }
  std::size_t operator()(const auth_packet& p) const {
    // AUTH may drop its whole variable header (Success, no properties) but, unlike
    // DISCONNECT (3.14.2.2.1), has no form with a Reason Code and no Property Length
    // (MQTT 5.0 section 3.15.2.1): any other code is followed by Property Length 0.
    if (is_v5(v) && p.props.empty() && p.code != reason_code::success) return 2;
    return reason_and_props(p);
  }

  template <class P>
  std::size_t reason_and_props(const P& p) const {
    if (!is_v5(v)) return 0;
    if (p.props.empty()) return p.code == reason_code::success ? 0 : 1;
    return 1 + props_size(p.props, v);
  }
};

std::uint8_t suback_code_v3(reason_code code) noexcept {
  const auto raw = static_cast<std::uint8_t>(code);
  return raw <= 2 ? raw : 0x80;
}

std::uint8_t subscription_options_byte(const subscribe_options& o, protocol_version v) noexcept {
  std::uint8_t b = static_cast<std::uint8_t>(o.max_qos);
  if (is_v5(v)) {
    if (o.no_local) b |= 0x04;
    if (o.retain_as_published) b |= 0x08;
    b |= static_cast<std::uint8_t>((o.retain_handling & 0x03) << 4);
  }
  return b;
}

struct body_writer {
  protocol_version v;
  std::string& out;
  std::size_t remaining;

  void header(std::uint8_t first) const {
    wire::writer w(out);
    w.u8(first);
    w.varint(static_cast<std::uint32_t>(remaining));
  }

  void operator()(const connect_packet& p) const {
    const auto pv = p.version;
    header(first_byte(packet_type::connect));
    wire::writer w(out);
    w.binary(pv == protocol_version::v3_1 ? "MQIsdp" : "MQTT");
    w.u8(static_cast<std::uint8_t>(pv));
    std::uint8_t flags = 0;
    if (p.clean_start) flags |= 0x02;
    if (p.will) {
      flags |= 0x04;
      flags |= static_cast<std::uint8_t>(static_cast<std::uint8_t>(p.will->qos) << 3);
      if (p.will->retain) flags |= 0x20;
    }
    if (p.password) flags |= 0x40;
    if (p.username) flags |= 0x80;
    w.u8(flags);
    w.u16(p.keep_alive);
    put_props(p.props, pv, out);
    w.binary(p.client_id);
    if (p.will) {
      put_props(p.will->props, pv, out);
      w.binary(p.will->topic);
      w.binary(p.will->payload);
    }
    if (p.username) w.binary(*p.username);
    if (p.password) w.binary(*p.password);
  }
  void operator()(const connack_packet& p) const {
    header(first_byte(packet_type::connack));
    wire::writer w(out);
    w.u8(p.session_present ? 1 : 0);
    w.u8(is_v5(v) ? static_cast<std::uint8_t>(p.code)
                  : static_cast<std::uint8_t>(to_connack_return_code(p.code)));
    put_props(p.props, v, out);
  }
  void operator()(const publish_packet& p) const { (*this)(view_of(p)); }
  void operator()(const publish_view& p) const {
    static const properties none;
    std::uint8_t flags = static_cast<std::uint8_t>(static_cast<std::uint8_t>(p.qos) << 1);
    if (p.dup) flags |= 0x08;
    if (p.retain) flags |= 0x01;
    header(first_byte(packet_type::publish, flags));
    wire::writer w(out);
    w.binary(p.topic);
    if (p.qos != qos::at_most_once) w.u16(p.packet_id);
    put_props(p.props ? *p.props : none, v, out);
    w.raw(p.payload);
  }
  template <packet_type T>
  void operator()(const publish_response<T>& p) const {
    header(first_byte(T, T == packet_type::pubrel ? 0b0010 : 0));
    wire::writer w(out);
    w.u16(p.packet_id);
    if (remaining > 2) w.u8(static_cast<std::uint8_t>(p.code));
    if (remaining > 3) encode_properties(p.props, out);
  }
  void operator()(const subscribe_packet& p) const {
    header(first_byte(packet_type::subscribe, 0b0010));
    wire::writer w(out);
    w.u16(p.packet_id);
    put_props(p.props, v, out);
    for (const auto& s : p.subscriptions) {
      w.binary(s.filter);
      w.u8(subscription_options_byte(s.options, v));
    }
  }
  void operator()(const suback_packet& p) const {
    header(first_byte(packet_type::suback));
    wire::writer w(out);
    w.u16(p.packet_id);
    put_props(p.props, v, out);
    for (auto c : p.codes) w.u8(is_v5(v) ? static_cast<std::uint8_t>(c) : suback_code_v3(c));
  }
  void operator()(const unsubscribe_packet& p) const {
    header(first_byte(packet_type::unsubscribe, 0b0010));
    wire::writer w(out);
    w.u16(p.packet_id);
    put_props(p.props, v, out);
    for (const auto& f : p.filters) w.binary(f);
  }
  void operator()(const unsuback_packet& p) const {
    header(first_byte(packet_type::unsuback));
    wire::writer w(out);
    w.u16(p.packet_id);
    if (!is_v5(v)) return;
    put_props(p.props, v, out);
    for (auto c : p.codes) w.u8(static_cast<std::uint8_t>(c));
  }
  void operator()(const pingreq_packet&) const { header(first_byte(packet_type::pingreq)); }
  void operator()(const pingresp_packet&) const { header(first_byte(packet_type::pingresp)); }
  void operator()(const disconnect_packet& p) const {
    reason_and_props(first_byte(packet_type::disconnect), p);
  }
  void operator()(const auth_packet& p) const { reason_and_props(first_byte(packet_type::auth), p); }

  template <class P>
  void reason_and_props(std::uint8_t first, const P& p) const {
    header(first);
    wire::writer w(out);
    if (remaining > 0) w.u8(static_cast<std::uint8_t>(p.code));
    if (remaining > 1) encode_properties(p.props, out);
  }
};

}  // namespace

std::size_t encoded_size(const packet& p, protocol_version version) {
  const auto remaining = std::visit(body_sizer{version}, p);
  return 1 + varint_size(static_cast<std::uint32_t>(remaining)) + remaining;
}

void encode(const packet& p, protocol_version version, std::string& out) {
  const auto remaining = std::visit(body_sizer{version}, p);
  out.reserve(out.size() + 1 + varint_size(static_cast<std::uint32_t>(remaining)) + remaining);
  std::visit(body_writer{version, out, remaining}, p);
}

std::size_t encoded_size(const publish_view& p, protocol_version version) {
  const auto remaining = body_sizer{version}(p);
  return 1 + varint_size(static_cast<std::uint32_t>(remaining)) + remaining;
}

void encode(const publish_view& p, protocol_version version, std::string& out) {
  const auto remaining = body_sizer{version}(p);
  out.reserve(out.size() + 1 + varint_size(static_cast<std::uint32_t>(remaining)) + remaining);
  body_writer{version, out, remaining}(p);
}

std::string encode(const packet& p, protocol_version version) {
  std::string out;
  encode(p, version, out);
  return out;
}

}  // namespace ringmq::codec
