#include "broker/codec/decoder.hpp"

#include <algorithm>
#include <cstring>

#include "broker/codec/topic.hpp"
#include "broker/codec/wire.hpp"

namespace ringmq::codec {
namespace {

using wire::reader;

// Fixed-header flag bits every packet but PUBLISH must carry (section 2.1.3).
constexpr std::uint8_t required_flags(packet_type type) noexcept {
  switch (type) {
    case packet_type::pubrel:
    case packet_type::subscribe:
    case packet_type::unsubscribe:
      return 0b0010;
    default:
      return 0;
  }
}

codec_result<std::uint16_t> read_packet_id(reader& in) {
  std::uint16_t id = 0;
  if (!in.read_u16(id)) return malformed("missing Packet Identifier");
  if (id == 0) return protocol_error("Packet Identifier 0");
  return id;
}

codec_result<properties> read_properties(reader& in, protocol_version v, property_context c) {
  if (!is_v5(v)) return properties{};
  return decode_properties(in, c);
}

codec_result<void> expect_end(const reader& in) {
  if (!in.empty()) return malformed("bytes after the end of the packet");
  return {};
}

codec_result<packet> decode_connect(std::string_view body) {
  reader in(body);
  connect_packet p;
  auto name = wire::read_utf8(in, "missing Protocol Name");
  if (!name) return name.error();
  std::uint8_t level = 0;
  if (!in.read_u8(level)) return malformed("missing Protocol Level");
  if (*name == "MQTT") {
    if (level != 4 && level != 5) {
      return codec_error{reason_code::unsupported_protocol_version, "unsupported protocol level"};
    }
  } else if (*name == "MQIsdp") {
    if (level != 3) {
      return codec_error{reason_code::unsupported_protocol_version, "unsupported protocol level"};
    }
  } else {
    // [MQTT-3.1.2-1]: not MQTT at all; the connection is closed without CONNACK.
    return protocol_error("unknown Protocol Name");
  }
  p.version = static_cast<protocol_version>(level);
  const auto v = p.version;

  std::uint8_t flags = 0;
  if (!in.read_u8(flags)) return malformed("missing Connect Flags");
  if (flags & 0x01) return malformed("reserved Connect Flag set");
  p.clean_start = flags & 0x02;
  const bool will_flag = flags & 0x04;
  const std::uint8_t will_qos = (flags >> 3) & 0x03;
  const bool will_retain = flags & 0x20;
  const bool password_flag = flags & 0x40;
  const bool username_flag = flags & 0x80;
  if (will_qos == 3) return malformed("Will QoS 3");
  if (!will_flag && (will_qos != 0 || will_retain)) {
    return malformed("Will QoS or Will Retain without Will Flag");
  }
  if (!is_v5(v) && password_flag && !username_flag) {
    return malformed("Password Flag without User Name Flag");
  }
  if (!in.read_u16(p.keep_alive)) return malformed("missing Keep Alive");

  auto props = read_properties(in, v, property_context::connect);
  if (!props) return props.error();
  p.props = std::move(*props);
  if (p.props.authentication_data && !p.props.authentication_method) {
    return protocol_error("Authentication Data without Authentication Method");
  }

  auto client_id = wire::read_utf8(in, "missing Client Identifier");
  if (!client_id) return client_id.error();
  p.client_id = *client_id;

  if (will_flag) {
    will_message will;
    will.qos = static_cast<qos>(will_qos);
    will.retain = will_retain;
    auto will_props = read_properties(in, v, property_context::will);
    if (!will_props) return will_props.error();
    will.props = std::move(*will_props);
    auto topic = wire::read_utf8(in, "missing Will Topic");
    if (!topic) return topic.error();
    if (auto ok = validate_topic_name(*topic); !ok) return ok.error();
    will.topic = *topic;
    std::string_view payload;
    if (!in.read_binary(payload)) return malformed("missing Will Payload");
    will.payload = payload;
    p.will = std::move(will);
  }
  if (username_flag) {
    auto username = wire::read_utf8(in, "missing User Name");
    if (!username) return username.error();
    p.username.emplace(*username);
  }
  if (password_flag) {
    std::string_view password;
    if (!in.read_binary(password)) return malformed("missing Password");
    p.password.emplace(password);
  }
  if (auto end = expect_end(in); !end) return end.error();
  return packet{std::move(p)};
}

// The Connect Reason Codes of 5.0 (section 3.2.2.2); [MQTT-3.2.2-8] allows no other value,
// so a CONNACK carrying, say, 0x8E (Session taken over) is refused like any other misplaced code.
bool valid_connack_code(std::uint8_t code) noexcept {
  switch (code) {
    case 0x00: case 0x80: case 0x81: case 0x82: case 0x83: case 0x84: case 0x85: case 0x86:
    case 0x87: case 0x88: case 0x89: case 0x8A: case 0x8C: case 0x90: case 0x95: case 0x97:
    case 0x99: case 0x9A: case 0x9B: case 0x9C: case 0x9D: case 0x9F:
      return true;
    default:
      return false;
  }
}

codec_result<packet> decode_connack(std::string_view body, protocol_version v) {
  reader in(body);
  connack_packet p;
  std::uint8_t flags = 0;
  std::uint8_t code = 0;
  if (!in.read_u8(flags) || !in.read_u8(code)) return malformed("CONNACK too short");
  if (flags & 0xFE) return malformed("reserved CONNACK flag set");
  p.session_present = flags & 0x01;
  if (is_v5(v)) {
    if (!valid_connack_code(code)) return protocol_error("invalid CONNACK reason code");
    p.code = static_cast<reason_code>(code);
    auto props = decode_properties(in, property_context::connack);
    if (!props) return props.error();
    p.props = std::move(*props);
  } else {
    if (code > 5) return malformed("invalid CONNACK return code");
    p.code = from_connack_return_code(static_cast<connack_return_code>(code));
  }
  if (p.session_present && p.code != reason_code::success) {
    return protocol_error("Session Present with a failure code");
  }
  if (auto end = expect_end(in); !end) return end.error();
  return packet{std::move(p)};
}

codec_result<packet> decode_publish(std::uint8_t flags, std::string_view body,
                                    protocol_version v) {
  reader in(body);
  publish_packet p;
  p.retain = flags & 0x01;
  const std::uint8_t q = (flags >> 1) & 0x03;
  p.dup = flags & 0x08;
  if (q == 3) return malformed("PUBLISH with QoS 3");
  if (p.dup && q == 0) return malformed("DUP set on a QoS 0 PUBLISH");
  p.qos = static_cast<qos>(q);
  auto topic = wire::read_utf8(in, "missing Topic Name");
  if (!topic) return topic.error();
  if (q > 0) {
    auto id = read_packet_id(in);
    if (!id) return id.error();
    p.packet_id = *id;
  }
  auto props = read_properties(in, v, property_context::publish);
  if (!props) return props.error();
  p.props = std::move(*props);
  if (topic->empty()) {
    // 5.0 allows an empty topic when a Topic Alias stands for it.
    if (!p.props.topic_alias) {
      if (is_v5(v)) return protocol_error("empty Topic Name without Topic Alias");
      return codec_error{reason_code::topic_name_invalid, "empty topic name"};
    }
  } else if (auto ok = validate_topic_name(*topic); !ok) {
    return ok.error();
  }
  p.topic = *topic;
  p.payload = in.rest();
  return packet{std::move(p)};
}

bool valid_publish_response_code(packet_type type, std::uint8_t code) noexcept {
  if (type == packet_type::pubrel || type == packet_type::pubcomp) {
    return code == 0x00 || code == 0x92;
  }
  switch (code) {
    case 0x00: case 0x10: case 0x80: case 0x83: case 0x87:
    case 0x90: case 0x91: case 0x97: case 0x99:
      return true;
    default:
      return false;
  }
}

template <packet_type Type>
codec_result<packet> decode_publish_response(std::string_view body, protocol_version v) {
  reader in(body);
  publish_response<Type> p;
  auto id = read_packet_id(in);
  if (!id) return id.error();
  p.packet_id = *id;
  if (is_v5(v) && !in.empty()) {
    std::uint8_t code = 0;
    in.read_u8(code);
    if (!valid_publish_response_code(Type, code)) return protocol_error("invalid reason code");
    p.code = static_cast<reason_code>(code);
    if (!in.empty()) {
      constexpr auto context = Type == packet_type::puback   ? property_context::puback
                               : Type == packet_type::pubrec ? property_context::pubrec
                               : Type == packet_type::pubrel ? property_context::pubrel
                                                             : property_context::pubcomp;
      auto props = decode_properties(in, context);
      if (!props) return props.error();
      p.props = std::move(*props);
    }
  }
  if (auto end = expect_end(in); !end) return end.error();
  return packet{std::move(p)};
}

codec_result<packet> decode_subscribe(std::string_view body, protocol_version v) {
  reader in(body);
  subscribe_packet p;
  auto id = read_packet_id(in);
  if (!id) return id.error();
  p.packet_id = *id;
  auto props = read_properties(in, v, property_context::subscribe);
  if (!props) return props.error();
  p.props = std::move(*props);
  if (in.empty()) return protocol_error("SUBSCRIBE without topic filters");
  while (!in.empty()) {
    auto filter = wire::read_utf8(in, "missing Topic Filter");
    if (!filter) return filter.error();
    std::uint8_t options = 0;
    if (!in.read_u8(options)) return malformed("missing Subscription Options");
    subscription s;
    s.filter = *filter;
    const std::uint8_t q = options & 0x03;
    if (q == 3) {
      // 5.0 (section 3.8.3.1) names Maximum QoS 3 a Protocol Error; 3.1.1 [MQTT-3-8.3-4]
      // names it malformed.
      if (is_v5(v)) return protocol_error("subscription QoS 3");
      return malformed("subscription QoS 3");
    }
    s.options.max_qos = static_cast<qos>(q);
    if (is_v5(v)) {
      if (options & 0xC0) return malformed("reserved Subscription Options bits set");
      s.options.no_local = options & 0x04;
      s.options.retain_as_published = options & 0x08;
      s.options.retain_handling = (options >> 4) & 0x03;
      if (s.options.retain_handling == 3) return protocol_error("Retain Handling 3");
      // [MQTT-3.8.3-4]: No Local on a shared subscription.
      if (s.options.no_local && filter->starts_with("$share/")) {
        return protocol_error("No Local on a shared subscription");
      }
    } else if (options & 0xFC) {
      return malformed("reserved Subscription Options bits set");
    }
    p.subscriptions.push_back(std::move(s));
  }
  return packet{std::move(p)};
}

bool valid_suback_code(std::uint8_t code, protocol_version v) noexcept {
  if (!is_v5(v)) return code <= 2 || code == 0x80;
  switch (code) {
    case 0x00: case 0x01: case 0x02: case 0x80: case 0x83: case 0x87:
    case 0x8F: case 0x91: case 0x97: case 0x9E: case 0xA1: case 0xA2:
      return true;
    default:
      return false;
  }
}

bool valid_unsuback_code(std::uint8_t code) noexcept {
  switch (code) {
    case 0x00: case 0x11: case 0x80: case 0x83: case 0x87: case 0x8F: case 0x91:
      return true;
    default:
      return false;
  }
}

codec_result<packet> decode_suback(std::string_view body, protocol_version v) {
  reader in(body);
  suback_packet p;
  auto id = read_packet_id(in);
  if (!id) return id.error();
  p.packet_id = *id;
  auto props = read_properties(in, v, property_context::suback);
  if (!props) return props.error();
  p.props = std::move(*props);
  if (in.empty()) return protocol_error("SUBACK without reason codes");
  while (!in.empty()) {
    std::uint8_t code = 0;
    in.read_u8(code);
    if (!valid_suback_code(code, v)) return protocol_error("invalid SUBACK reason code");
    p.codes.push_back(static_cast<reason_code>(code));
  }
  return packet{std::move(p)};
}

codec_result<packet> decode_unsubscribe(std::string_view body, protocol_version v) {
  reader in(body);
  unsubscribe_packet p;
  auto id = read_packet_id(in);
  if (!id) return id.error();
  p.packet_id = *id;
  auto props = read_properties(in, v, property_context::unsubscribe);
  if (!props) return props.error();
  p.props = std::move(*props);
  if (in.empty()) return protocol_error("UNSUBSCRIBE without topic filters");
  while (!in.empty()) {
    auto filter = wire::read_utf8(in, "missing Topic Filter");
    if (!filter) return filter.error();
    p.filters.emplace_back(*filter);
  }
  return packet{std::move(p)};
}

codec_result<packet> decode_unsuback(std::string_view body, protocol_version v) {
  reader in(body);
  unsuback_packet p;
  auto id = read_packet_id(in);
  if (!id) return id.error();
  p.packet_id = *id;
  if (is_v5(v)) {
    auto props = decode_properties(in, property_context::unsuback);
    if (!props) return props.error();
    p.props = std::move(*props);
    if (in.empty()) return protocol_error("UNSUBACK without reason codes");
    while (!in.empty()) {
      std::uint8_t code = 0;
      in.read_u8(code);
      if (!valid_unsuback_code(code)) return protocol_error("invalid UNSUBACK reason code");
      p.codes.push_back(static_cast<reason_code>(code));
    }
  }
  if (auto end = expect_end(in); !end) return end.error();
  return packet{std::move(p)};
}

bool valid_disconnect_code(std::uint8_t code) noexcept {
  switch (code) {
    case 0x00: case 0x04:
      return true;
    default:
      return code >= 0x80 && code != 0x84 && code != 0x85 && code != 0x86 && code != 0x88 &&
             code != 0x8A && code != 0x8C && code != 0x91 && code != 0x92 &&
             is_known_reason_code(code);
  }
}

// DISCONNECT and AUTH (5.0): the reason code and properties may be omitted.
template <class Packet>
codec_result<packet> decode_reason_and_properties(std::string_view body, protocol_version v,
                                                  property_context context,
                                                  bool (*valid)(std::uint8_t)) {
  reader in(body);
  Packet p;
  if (is_v5(v) && !in.empty()) {
    std::uint8_t code = 0;
    in.read_u8(code);
    if (!valid(code)) return protocol_error("invalid reason code");
    p.code = static_cast<reason_code>(code);
    if (!in.empty()) {
      auto props = decode_properties(in, context);
      if (!props) return props.error();
      p.props = std::move(*props);
    }
  }
  if (auto end = expect_end(in); !end) return end.error();
  return packet{std::move(p)};
}

bool valid_auth_code(std::uint8_t code) noexcept {
  return code == 0x00 || code == 0x18 || code == 0x19;
}

}  // namespace

codec_result<std::optional<fixed_header>> parse_fixed_header(std::string_view bytes) noexcept {
  if (bytes.size() < 2) return std::optional<fixed_header>{};
  fixed_header h;
  h.first_byte = static_cast<std::uint8_t>(bytes[0]);
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    if (1 + i >= bytes.size()) return std::optional<fixed_header>{};
    const auto b = static_cast<std::uint8_t>(bytes[1 + i]);
    value |= std::uint32_t{b & 0x7Fu} << (7 * i);
    if ((b & 0x80) == 0) {
      h.remaining_length = value;
      h.size = static_cast<std::uint8_t>(2 + i);
      return std::optional<fixed_header>{h};
    }
  }
  return malformed("Remaining Length longer than four bytes");
}

codec_result<packet> decode_body(const fixed_header& header, std::string_view body,
                                 protocol_version v) {
  const auto type = header.type();
  const auto flags = header.flags();
  if (type != packet_type::publish && flags != required_flags(type)) {
    return malformed("invalid fixed header flags");
  }
  switch (type) {
    case packet_type::connect: return decode_connect(body);
    case packet_type::connack: return decode_connack(body, v);
    case packet_type::publish: return decode_publish(flags, body, v);
    case packet_type::puback: return decode_publish_response<packet_type::puback>(body, v);
    case packet_type::pubrec: return decode_publish_response<packet_type::pubrec>(body, v);
    case packet_type::pubrel: return decode_publish_response<packet_type::pubrel>(body, v);
    case packet_type::pubcomp: return decode_publish_response<packet_type::pubcomp>(body, v);
    case packet_type::subscribe: return decode_subscribe(body, v);
    case packet_type::suback: return decode_suback(body, v);
    case packet_type::unsubscribe: return decode_unsubscribe(body, v);
    case packet_type::unsuback: return decode_unsuback(body, v);
    case packet_type::pingreq:
      if (!body.empty()) return malformed("PINGREQ with a body");
      return packet{pingreq_packet{}};
    case packet_type::pingresp:
      if (!body.empty()) return malformed("PINGRESP with a body");
      return packet{pingresp_packet{}};
    case packet_type::disconnect:
      return decode_reason_and_properties<disconnect_packet>(
          body, v, property_context::disconnect, valid_disconnect_code);
    case packet_type::auth:
      if (!is_v5(v)) return malformed("AUTH before MQTT 5.0");
      return decode_reason_and_properties<auth_packet>(body, v, property_context::auth,
                                                       valid_auth_code);
  }
  return malformed("reserved packet type 0");
}

codec_result<packet> decode_packet(std::string_view bytes, protocol_version version) {
  auto header = parse_fixed_header(bytes);
  if (!header) return header.error();
  if (!*header || (*header)->packet_size() > bytes.size()) return malformed("incomplete packet");
  if ((*header)->packet_size() != bytes.size()) return malformed("bytes after the packet");
  return decode_body(**header, bytes.substr((*header)->size), version);
}

std::optional<protocol_version> peek_connect_version(std::string_view body) noexcept {
  reader in(body);
  std::string_view name;
  std::uint8_t level = 0;
  if (!in.read_binary(name) || !in.read_u8(level)) return std::nullopt;
  if (level < 3 || level > 5) return std::nullopt;
  return static_cast<protocol_version>(level);
}

stream_decoder::stream_decoder(std::uint32_t max_packet_size)
    : max_packet_size_(max_packet_size) {}

std::span<char> stream_decoder::prepare(std::size_t size) {
  if (capacity_ - end_ < size) {
    const std::size_t pending = end_ - begin_;
    if (capacity_ - pending >= size && begin_ > 0) {
      // Enough room once the decoded bytes at the front are dropped.
      std::memmove(buffer_.get(), buffer_.get() + begin_, pending);
    } else {
      const std::size_t wanted = std::max(pending + size, capacity_ * 2);
      auto grown = std::make_unique_for_overwrite<char[]>(wanted);
      if (pending) std::memcpy(grown.get(), buffer_.get() + begin_, pending);
      buffer_ = std::move(grown);
      capacity_ = wanted;
    }
    begin_ = 0;
    end_ = pending;
  }
  return {buffer_.get() + end_, size};
}

void stream_decoder::feed(std::string_view bytes) {
  auto space = prepare(bytes.size());
  if (!bytes.empty()) std::memcpy(space.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

void stream_decoder::shrink(std::size_t keep) noexcept {
  if (begin_ == end_ && capacity_ > keep) {
    buffer_.reset();
    capacity_ = begin_ = end_ = 0;
  }
}

codec_result<std::optional<packet>> stream_decoder::next() {
  if (failed_) return *failed_;
  const std::string_view pending(buffer_.get() + begin_, end_ - begin_);
  auto header = parse_fixed_header(pending);
  if (!header) {
    failed_ = header.error();
    return *failed_;
  }
  if (!*header) return std::optional<packet>{};
  const auto& h = **header;
  if (connect_first_ && h.type() != packet_type::connect) {
    failed_ = protocol_error("first packet is not CONNECT");
    return *failed_;
  }
  if (h.packet_size() > max_packet_size_) {
    failed_ = codec_error{reason_code::packet_too_large, "packet larger than Maximum Packet Size"};
    return *failed_;
  }
  if (pending.size() < h.packet_size()) return std::optional<packet>{};
  const auto body = pending.substr(h.size, h.remaining_length);
  auto version = version_;
  if (h.type() == packet_type::connect) {
    if (auto peeked = peek_connect_version(body)) {
      version_ = version = *peeked;
      version_known_ = true;
    }
  }
  auto decoded = decode_body(h, body, version);
  if (h.type() == packet_type::connect) connect_first_ = false;
  begin_ += h.packet_size();
  if (begin_ == end_) begin_ = end_ = 0;
  if (!decoded) {
    failed_ = decoded.error();
    return *failed_;
  }
  return std::optional<packet>{std::move(*decoded)};
}

void throw_exception_from_error(const codec_error& error, const boost::source_location&) {
  throw std::system_error(make_error_code(error.code), std::string(error.detail));
}

}  // namespace ringmq::codec
