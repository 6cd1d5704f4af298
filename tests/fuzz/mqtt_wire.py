"""MQTT framing for the fuzzers and their own clients: variable byte integers,
packets, strings, a minimal CONNECT, and where a v5 packet's properties are."""

import struct

PACKET_CONNECT = 1


def encode_varint(value):
    """An MQTT Variable Byte Integer (values above 268435455 give 5+ bytes: invalid on purpose)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def decode_varint(data, pos, end):
    """(value, position after it) of a varint at data[pos], or None if malformed or truncated."""
    value = 0
    for i in range(4):
        if pos + i >= end:
            return None
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    return None


def split_packets(data):
    """[(start, body_start, end)] of the complete, well-framed packets at the front of data."""
    packets = []
    pos = 0
    while pos < len(data):
        length = decode_varint(data, pos + 1, len(data))
        if length is None or length[1] + length[0] > len(data):
            break
        packets.append((pos, length[1], length[1] + length[0]))
        pos = length[1] + length[0]
    return packets


def packet(first_byte, body):
    return bytes([first_byte]) + encode_varint(len(body)) + body


def mqtt_string(text):
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack(">H", len(raw)) + raw


def minimal_connect(version, client_id):
    """A clean CONNECT of protocol level `version` (3, 4 or 5) with keep alive 60."""
    name = b"MQIsdp" if version == 3 else b"MQTT"
    body = mqtt_string(name) + bytes([version, 0x02]) + struct.pack(">H", 60)
    if version == 5:
        body += b"\x00"  # no properties
    return packet(0x10, body + mqtt_string(client_id))


def property_offset(data, start, body, end):
    """Where the v5 Property Length of the packet data[start:end] is, or None if it has none."""
    kind, flags = data[start] >> 4, data[start] & 0x0F
    pos = body
    if kind == PACKET_CONNECT:
        if pos + 2 > end:
            return None
        pos += 2 + struct.unpack(">H", data[pos:pos + 2])[0]
        if pos >= end or data[pos] != 5:
            return None
        pos += 4  # level, flags, keep alive
    elif kind == 3:  # PUBLISH: topic, packet id at QoS > 0
        if pos + 2 > end:
            return None
        pos += 2 + struct.unpack(">H", data[pos:pos + 2])[0] + (2 if flags & 0x06 else 0)
    elif kind in (4, 5, 6, 7):  # PUBACK..PUBCOMP: id, reason code, properties
        pos += 3
    elif kind in (8, 9, 10, 11):  # (UN)SUBSCRIBE/(UN)SUBACK: id, properties
        pos += 2
    elif kind == 2:  # CONNACK: flags, reason code
        pos += 2
    elif kind in (14, 15):  # DISCONNECT, AUTH: reason code, properties
        pos += 1
    else:
        return None
    return pos if pos < end else None

