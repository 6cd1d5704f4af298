#include "broker/codec/properties.hpp"

#include "broker/codec/topic.hpp"
#include "broker/codec/wire.hpp"

namespace ringmq::codec {
namespace {

constexpr std::uint32_t bit(property_context c) noexcept {
  return 1u << static_cast<unsigned>(c);
}

using ctx = property_context;

// Contexts each property may appear in (MQTT 5.0, section 2.2.2.2).
constexpr std::uint32_t allowed_contexts(property_id id) noexcept {
  switch (id) {
    case property_id::payload_format_indicator:
    case property_id::message_expiry_interval:
    case property_id::content_type:
    case property_id::response_topic:
    case property_id::correlation_data:
      return bit(ctx::publish) | bit(ctx::will);
    case property_id::subscription_identifier:
      return bit(ctx::publish) | bit(ctx::subscribe);
    case property_id::session_expiry_interval:
      return bit(ctx::connect) | bit(ctx::connack) | bit(ctx::disconnect);
    case property_id::assigned_client_identifier:
    case property_id::server_keep_alive:
    case property_id::response_information:
    case property_id::maximum_qos:
    case property_id::retain_available:
    case property_id::wildcard_subscription_available:
    case property_id::subscription_identifier_available:
    case property_id::shared_subscription_available:
      return bit(ctx::connack);
    case property_id::authentication_method:
    case property_id::authentication_data:
      return bit(ctx::connect) | bit(ctx::connack) | bit(ctx::auth);
    case property_id::request_problem_information:
    case property_id::request_response_information:
      return bit(ctx::connect);
    case property_id::will_delay_interval:
      return bit(ctx::will);
    case property_id::server_reference:
      return bit(ctx::connack) | bit(ctx::disconnect);
    case property_id::reason_string:
      return bit(ctx::connack) | bit(ctx::puback) | bit(ctx::pubrec) | bit(ctx::pubrel) |
             bit(ctx::pubcomp) | bit(ctx::suback) | bit(ctx::unsuback) | bit(ctx::disconnect) |
             bit(ctx::auth);
    case property_id::receive_maximum:
    case property_id::topic_alias_maximum:
    case property_id::maximum_packet_size:
      return bit(ctx::connect) | bit(ctx::connack);
    case property_id::topic_alias:
      return bit(ctx::publish);
    case property_id::user_property:
      return 0xFFFFFFFFu;
  }
  return 0;
}

// A byte property restricted to 0 or 1; anything else is a Protocol Error.
codec_result<void> set_flag(std::optional<std::uint8_t>& field, wire::reader& in) {
  std::uint8_t v = 0;
  if (!in.read_u8(v)) return malformed("truncated property");
  if (field) return protocol_error("duplicate property");
  if (v > 1) return protocol_error("property value must be 0 or 1");
  field = v;
  return {};
}

codec_result<void> set_u16(std::optional<std::uint16_t>& field, wire::reader& in,
                           bool zero_allowed) {
  std::uint16_t v = 0;
  if (!in.read_u16(v)) return malformed("truncated property");
  if (field) return protocol_error("duplicate property");
  if (v == 0 && !zero_allowed) return protocol_error("property value must not be 0");
  field = v;
  return {};
}

codec_result<void> set_u32(std::optional<std::uint32_t>& field, wire::reader& in,
                           bool zero_allowed) {
  std::uint32_t v = 0;
  if (!in.read_u32(v)) return malformed("truncated property");
  if (field) return protocol_error("duplicate property");
  if (v == 0 && !zero_allowed) return protocol_error("property value must not be 0");
  field = v;
  return {};
}

codec_result<void> set_utf8(std::optional<std::string>& field, wire::reader& in) {
  auto text = wire::read_utf8(in, "truncated property");
  if (!text) return text.error();
  if (field) return protocol_error("duplicate property");
  field.emplace(*text);
  return {};
}

codec_result<void> set_binary(std::optional<std::string>& field, wire::reader& in) {
  std::string_view data;
  if (!in.read_binary(data)) return malformed("truncated property");
  if (field) return protocol_error("duplicate property");
  field.emplace(data);
  return {};
}

codec_result<void> read_one(properties& p, property_id id, wire::reader& in,
                            property_context context) {
  switch (id) {
    case property_id::payload_format_indicator: return set_flag(p.payload_format_indicator, in);
    case property_id::message_expiry_interval:
      return set_u32(p.message_expiry_interval, in, true);
    case property_id::content_type: return set_utf8(p.content_type, in);
    case property_id::response_topic: {
      if (auto r = set_utf8(p.response_topic, in); !r) return r;
      // [MQTT-3.3.2-14]: the Response Topic is a Topic Name, so no wildcards (0x90, as for
      // the Topic Name of a PUBLISH).
      return validate_topic_name(*p.response_topic);
    }
    case property_id::correlation_data: return set_binary(p.correlation_data, in);
    case property_id::subscription_identifier: {
      std::uint32_t v = 0;
      if (!in.read_varint(v)) return malformed("bad Subscription Identifier");
      if (v == 0) return protocol_error("Subscription Identifier 0");
      if (context == ctx::subscribe && !p.subscription_identifiers.empty()) {
        return protocol_error("duplicate property");
      }
      p.subscription_identifiers.push_back(v);
      return {};
    }
    case property_id::session_expiry_interval:
      return set_u32(p.session_expiry_interval, in, true);
    case property_id::assigned_client_identifier: return set_utf8(p.assigned_client_identifier, in);
    case property_id::server_keep_alive: return set_u16(p.server_keep_alive, in, true);
    case property_id::authentication_method: return set_utf8(p.authentication_method, in);
    case property_id::authentication_data: return set_binary(p.authentication_data, in);
    case property_id::request_problem_information:
      return set_flag(p.request_problem_information, in);
    case property_id::will_delay_interval: return set_u32(p.will_delay_interval, in, true);
    case property_id::request_response_information:
      return set_flag(p.request_response_information, in);
    case property_id::response_information: return set_utf8(p.response_information, in);
    case property_id::server_reference: return set_utf8(p.server_reference, in);
    case property_id::reason_string: return set_utf8(p.reason_string, in);
    case property_id::receive_maximum: return set_u16(p.receive_maximum, in, false);
    case property_id::topic_alias_maximum: return set_u16(p.topic_alias_maximum, in, true);
    case property_id::topic_alias: {
      std::uint16_t v = 0;
      if (!in.read_u16(v)) return malformed("truncated property");
      if (p.topic_alias) return protocol_error("duplicate property");
      if (v == 0) return codec_error{reason_code::topic_alias_invalid, "Topic Alias 0"};
      p.topic_alias = v;
      return {};
    }
    case property_id::maximum_qos: return set_flag(p.maximum_qos, in);
    case property_id::retain_available: return set_flag(p.retain_available, in);
    case property_id::user_property: {
      auto name = wire::read_utf8(in, "truncated User Property");
      if (!name) return name.error();
      auto value = wire::read_utf8(in, "truncated User Property");
      if (!value) return value.error();
      p.user_properties.push_back({std::string(*name), std::string(*value)});
      return {};
    }
    case property_id::maximum_packet_size: return set_u32(p.maximum_packet_size, in, false);
    case property_id::wildcard_subscription_available:
      return set_flag(p.wildcard_subscription_available, in);
    case property_id::subscription_identifier_available:
      return set_flag(p.subscription_identifier_available, in);
    case property_id::shared_subscription_available:
      return set_flag(p.shared_subscription_available, in);
  }
  return malformed("unknown property identifier");
}

std::size_t utf8_size(const std::optional<std::string>& s) noexcept {
  return s ? 1 + 2 + s->size() : 0;
}

}  // namespace

bool property_allowed(property_id id, property_context context) noexcept {
  return (allowed_contexts(id) & bit(context)) != 0;
}

std::string_view to_string(property_id id) noexcept {
  switch (id) {
    case property_id::payload_format_indicator: return "Payload Format Indicator";
    case property_id::message_expiry_interval: return "Message Expiry Interval";
    case property_id::content_type: return "Content Type";
    case property_id::response_topic: return "Response Topic";
    case property_id::correlation_data: return "Correlation Data";
    case property_id::subscription_identifier: return "Subscription Identifier";
    case property_id::session_expiry_interval: return "Session Expiry Interval";
    case property_id::assigned_client_identifier: return "Assigned Client Identifier";
    case property_id::server_keep_alive: return "Server Keep Alive";
    case property_id::authentication_method: return "Authentication Method";
    case property_id::authentication_data: return "Authentication Data";
    case property_id::request_problem_information: return "Request Problem Information";
    case property_id::will_delay_interval: return "Will Delay Interval";
    case property_id::request_response_information: return "Request Response Information";
    case property_id::response_information: return "Response Information";
    case property_id::server_reference: return "Server Reference";
    case property_id::reason_string: return "Reason String";
    case property_id::receive_maximum: return "Receive Maximum";
    case property_id::topic_alias_maximum: return "Topic Alias Maximum";
    case property_id::topic_alias: return "Topic Alias";
    case property_id::maximum_qos: return "Maximum QoS";
    case property_id::retain_available: return "Retain Available";
    case property_id::user_property: return "User Property";
    case property_id::maximum_packet_size: return "Maximum Packet Size";
    case property_id::wildcard_subscription_available: return "Wildcard Subscription Available";
    case property_id::subscription_identifier_available:
      return "Subscription Identifier Available";
    case property_id::shared_subscription_available: return "Shared Subscription Available";
  }
  return "Unknown property";
}

bool properties::empty() const noexcept { return properties_body_size(*this) == 0; }

codec_result<properties> decode_properties(wire::reader& in, property_context context) {
  std::uint32_t length = 0;
  if (!in.read_varint(length)) return malformed("bad Property Length");
  std::string_view block;
  if (!in.read_bytes(length, block)) return malformed("Property Length exceeds packet");
  properties props;
  wire::reader body(block);
  while (!body.empty()) {
    // Identifiers are Variable Byte Integers; every defined one fits in one byte.
    std::uint32_t raw_id = 0;
    if (!body.read_varint(raw_id)) return malformed("bad property identifier");
    const auto id = static_cast<property_id>(raw_id);
    if (raw_id > 0xFF || allowed_contexts(id) == 0) return malformed("unknown property identifier");
    if (!property_allowed(id, context)) return malformed("property not allowed in this packet");
    if (auto r = read_one(props, id, body, context); !r) return r.error();
  }
  return props;
}

std::size_t properties_body_size(const properties& p) noexcept {
  std::size_t n = 0;
  if (p.payload_format_indicator) n += 2;
  if (p.message_expiry_interval) n += 5;
  n += utf8_size(p.content_type);
  n += utf8_size(p.response_topic);
  n += utf8_size(p.correlation_data);
  for (auto id : p.subscription_identifiers) n += 1 + wire::varint_size(id);
  if (p.session_expiry_interval) n += 5;
  n += utf8_size(p.assigned_client_identifier);
  if (p.server_keep_alive) n += 3;
  n += utf8_size(p.authentication_method);
  n += utf8_size(p.authentication_data);
  if (p.request_problem_information) n += 2;
  if (p.will_delay_interval) n += 5;
  if (p.request_response_information) n += 2;
  n += utf8_size(p.response_information);
  n += utf8_size(p.server_reference);
  n += utf8_size(p.reason_string);
  if (p.receive_maximum) n += 3;
  if (p.topic_alias_maximum) n += 3;
  if (p.topic_alias) n += 3;
  if (p.maximum_qos) n += 2;
  if (p.retain_available) n += 2;
  for (const auto& up : p.user_properties) n += 1 + 2 + up.name.size() + 2 + up.value.size();
  if (p.maximum_packet_size) n += 5;
  if (p.wildcard_subscription_available) n += 2;
  if (p.subscription_identifier_available) n += 2;
  if (p.shared_subscription_available) n += 2;
  return n;
}

void encode_properties(const properties& p, std::string& out) {
  wire::writer w(out);
  w.varint(static_cast<std::uint32_t>(properties_body_size(p)));
  auto id = [&](property_id i) { w.u8(static_cast<std::uint8_t>(i)); };
  auto u8 = [&](property_id i, const std::optional<std::uint8_t>& v) {
    if (v) id(i), w.u8(*v);
  };
  auto u16 = [&](property_id i, const std::optional<std::uint16_t>& v) {
    if (v) id(i), w.u16(*v);
  };
  auto u32 = [&](property_id i, const std::optional<std::uint32_t>& v) {
    if (v) id(i), w.u32(*v);
  };
  auto str = [&](property_id i, const std::optional<std::string>& v) {
    if (v) id(i), w.binary(*v);
  };
  u8(property_id::payload_format_indicator, p.payload_format_indicator);
  u32(property_id::message_expiry_interval, p.message_expiry_interval);
  str(property_id::content_type, p.content_type);
  str(property_id::response_topic, p.response_topic);
  str(property_id::correlation_data, p.correlation_data);
  for (auto v : p.subscription_identifiers) id(property_id::subscription_identifier), w.varint(v);
  u32(property_id::session_expiry_interval, p.session_expiry_interval);
  str(property_id::assigned_client_identifier, p.assigned_client_identifier);
  u16(property_id::server_keep_alive, p.server_keep_alive);
  str(property_id::authentication_method, p.authentication_method);
  str(property_id::authentication_data, p.authentication_data);
  u8(property_id::request_problem_information, p.request_problem_information);
  u32(property_id::will_delay_interval, p.will_delay_interval);
  u8(property_id::request_response_information, p.request_response_information);
  str(property_id::response_information, p.response_information);
  str(property_id::server_reference, p.server_reference);
  str(property_id::reason_string, p.reason_string);
  u16(property_id::receive_maximum, p.receive_maximum);
  u16(property_id::topic_alias_maximum, p.topic_alias_maximum);
  u16(property_id::topic_alias, p.topic_alias);
  u8(property_id::maximum_qos, p.maximum_qos);
  u8(property_id::retain_available, p.retain_available);
  for (const auto& up : p.user_properties) {
    id(property_id::user_property);
    w.binary(up.name);
    w.binary(up.value);
  }
  u32(property_id::maximum_packet_size, p.maximum_packet_size);
  u8(property_id::wildcard_subscription_available, p.wildcard_subscription_available);
  u8(property_id::subscription_identifier_available, p.subscription_identifier_available);
  u8(property_id::shared_subscription_available, p.shared_subscription_available);
}

properties filter_properties(const properties& p, property_context c) {
  properties out;
  auto keep = [&](property_id id) { return property_allowed(id, c); };
  if (keep(property_id::payload_format_indicator)) out.payload_format_indicator = p.payload_format_indicator;
  if (keep(property_id::message_expiry_interval)) out.message_expiry_interval = p.message_expiry_interval;
  if (keep(property_id::content_type)) out.content_type = p.content_type;
  if (keep(property_id::response_topic)) out.response_topic = p.response_topic;
  if (keep(property_id::correlation_data)) out.correlation_data = p.correlation_data;
  if (keep(property_id::subscription_identifier)) out.subscription_identifiers = p.subscription_identifiers;
  if (keep(property_id::session_expiry_interval)) out.session_expiry_interval = p.session_expiry_interval;
  if (keep(property_id::assigned_client_identifier)) out.assigned_client_identifier = p.assigned_client_identifier;
  if (keep(property_id::server_keep_alive)) out.server_keep_alive = p.server_keep_alive;
  if (keep(property_id::authentication_method)) out.authentication_method = p.authentication_method;
  if (keep(property_id::authentication_data)) out.authentication_data = p.authentication_data;
  if (keep(property_id::request_problem_information)) out.request_problem_information = p.request_problem_information;
  if (keep(property_id::will_delay_interval)) out.will_delay_interval = p.will_delay_interval;
  if (keep(property_id::request_response_information)) out.request_response_information = p.request_response_information;
  if (keep(property_id::response_information)) out.response_information = p.response_information;
  if (keep(property_id::server_reference)) out.server_reference = p.server_reference;
  if (keep(property_id::reason_string)) out.reason_string = p.reason_string;
  if (keep(property_id::receive_maximum)) out.receive_maximum = p.receive_maximum;
  if (keep(property_id::topic_alias_maximum)) out.topic_alias_maximum = p.topic_alias_maximum;
  if (keep(property_id::topic_alias)) out.topic_alias = p.topic_alias;
  if (keep(property_id::maximum_qos)) out.maximum_qos = p.maximum_qos;
  if (keep(property_id::retain_available)) out.retain_available = p.retain_available;
  out.user_properties = p.user_properties;
  if (keep(property_id::maximum_packet_size)) out.maximum_packet_size = p.maximum_packet_size;
  if (keep(property_id::wildcard_subscription_available)) out.wildcard_subscription_available = p.wildcard_subscription_available;
  if (keep(property_id::subscription_identifier_available)) out.subscription_identifier_available = p.subscription_identifier_available;
  if (keep(property_id::shared_subscription_available)) out.shared_subscription_available = p.shared_subscription_available;
  return out;
}

}  // namespace ringmq::codec
