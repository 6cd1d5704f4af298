#!/usr/bin/python3
"""Builds the seed corpus of tests/fuzz/fuzz_decoder.cpp from real client traffic.

The bytes are not made up here: they are what mosquitto_pub, mosquitto_sub and
Paho sent to the codec interoperability test (and what its capture server
answered), which writes every connection out when RINGMQ_CAPTURE_DIR is set:

    RINGMQ_CAPTURE_DIR=/tmp/ringmq-capture build/bin/codec_interop_tests
    /usr/bin/python3 tests/fuzz/make_seed_corpus.py --clean /tmp/ringmq-capture tests/fuzz/corpus

The capture directory holds <test>.client.bin (client to server) and
<test>.server.bin (server to client) for each test. This script splits them
into packets and writes, each prefixed with fuzz_decoder's control byte
(protocol version = 3 + byte % 3, chunk size = 1 + (byte >> 2) % 16):
  - one seed per distinct kind of packet: its type, protocol version and the
    features that take their own decoder paths (QoS, retain, properties, Will,
    credentials, Topic Alias, reason codes, ...), named like connect-v5-props;
  - a few whole connections as multi-packet streams, fed in small chunks so the
    stream decoder's reassembly is covered from the first run.
Client ids of some clients are random, so a rerun changes a few bytes but not
the set of names.
"""

import argparse
import os
import sys

PACKET_NAMES = {
    1: "connect", 2: "connack", 3: "publish", 4: "puback", 5: "pubrec", 6: "pubrel",
    7: "pubcomp", 8: "subscribe", 9: "suback", 10: "unsubscribe", 11: "unsuback",
    12: "pingreq", 13: "pingresp", 14: "disconnect", 15: "auth",
}
VERSION_TAGS = {3: "v31", 4: "v311", 5: "v5"}

# Whole connections kept as streams: (seed name, capture file, chunk size).
# Server streams carry no CONNECT, so only the control byte gives their version.
STREAMS = [
    ("stream-paho-v5-session", "Versions_Paho.FullSession_v5.client.bin", 1),
    ("stream-paho-v311-session", "Versions_Paho.FullSession_v311.client.bin", 7),
    ("stream-paho-v31-session", "Versions_Paho.FullSession_v31.client.bin", 16),
    ("stream-mosquitto-pub-v5-props", "MosquittoPubV5.EveryProperty.client.bin", 3),
    ("stream-mosquitto-sub-v5-qos2",
     "VersionsAndQos_MosquittoSub.ReceivesOneMessage_v5_qos2.client.bin", 2),
    ("stream-server-v5-session", "Versions_Paho.FullSession_v5.server.bin", 5),
    ("stream-server-v311-session", "Versions_Paho.FullSession_v311.server.bin", 4),
]


class Malformed(Exception):
    pass


def varint(data, pos):
    """A Variable Byte Integer at data[pos]: (value, position after it)."""
    value = 0
    for i in range(4):
        if pos + i >= len(data):
            raise Malformed("truncated variable byte integer")
        b = data[pos + i]
        value |= (b & 0x7F) << (7 * i)
        if b & 0x80 == 0:
            return value, pos + i + 1
    raise Malformed("variable byte integer longer than four bytes")


def u16(data, pos):
    if pos + 2 > len(data):
        raise Malformed("truncated two-byte integer")
    return (data[pos] << 8) | data[pos + 1]


def split_packets(stream):
    """The packets of a byte stream, each with its fixed header."""
    packets, pos = [], 0
    while pos < len(stream):
        length, body = varint(stream, pos + 1)
        if body + length > len(stream):
            raise Malformed("stream ends inside a packet")
        packets.append(stream[pos:body + length])
        pos = body + length
    return packets


def body_of(packet):
    _, body = varint(packet, 1)
    return packet[body:]


def has_properties(body, pos):
    """True when the Property Length at body[pos] is not zero."""
    if pos >= len(body):
        return False
    length, _ = varint(body, pos)
    return length > 0


def connect_version(packet):
    body = body_of(packet)
    name_length = u16(body, 0)
    return body[2 + name_length]


def seed_version(packet, version):
    """The version a packet is decoded in. Only CONNECT differs between 3.1 and 3.1.1,
    so every other 3.1 packet is a 3.1.1 seed (and deduplicated as one)."""
    if packet[0] >> 4 == 1:
        return connect_version(packet)
    return 4 if version == 3 else version


def describe(packet, version):
    """The seed name: packet type, version and the features that matter to the decoder."""
    kind = packet[0] >> 4
    flags = packet[0] & 0x0F
    body = body_of(packet)
    version = seed_version(packet, version)
    v5 = version == 5
    parts = [PACKET_NAMES.get(kind, "reserved"), VERSION_TAGS[version]]

    if kind == 1:  # CONNECT
        pos = 2 + u16(body, 0) + 1
        connect_flags = body[pos]
        pos += 3  # flags, keep alive
        if v5 and has_properties(body, pos):
            parts.append("props")
        if connect_flags & 0x04:
            parts.append("will")
        if connect_flags & 0x80:
            parts.append("auth")
        if not connect_flags & 0x02:
            parts.append("persistent")
    elif kind == 2:  # CONNACK
        if v5 and has_properties(body, 2):
            parts.append("props")
    elif kind == 3:  # PUBLISH
        qos = (flags >> 1) & 0x03
        parts.append("qos%d" % qos)
        if flags & 0x01:
            parts.append("retain")
        topic_length = u16(body, 0)
        if topic_length == 0:
            parts.append("alias-only")
        pos = 2 + topic_length + (2 if qos else 0)
        if v5:
            if has_properties(body, pos):
                parts.append("props")
            length, pos = varint(body, pos)
            pos += length
        if pos == len(body):
            parts.append("empty")
    elif kind in (4, 5, 6, 7, 14, 15):  # acknowledgements, DISCONNECT, AUTH
        code_at = 2 if kind <= 7 else 0
        if v5 and len(body) > code_at:
            if body[code_at] != 0:
                parts.append("code")
            if has_properties(body, code_at + 1):
                parts.append("props")
    elif kind in (8, 9, 10, 11):  # SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK
        pos = 2
        if v5:
            if has_properties(body, pos):
                parts.append("props")
            length, pos = varint(body, pos)
            pos += length
        count = 0
        while pos < len(body):  # topic filters, or reason codes
            if kind in (8, 10):
                pos += 2 + u16(body, pos) + (1 if kind == 8 else 0)
            else:
                pos += 1
            count += 1
        if count > 1:
            parts.append("multi")
    return "-".join(parts)


def control_byte(version, chunk):
    """The smallest first byte that makes fuzz_decoder use this version and chunk size."""
    for c in range(256):
        if 3 + c % 3 == version and 1 + (c >> 2) % 16 == chunk:
            return c
    raise ValueError("no control byte for version %d, chunk %d" % (version, chunk))


def stream_version(client_stream):
    packets = split_packets(client_stream)
    if not packets or packets[0][0] >> 4 != 1:
        raise Malformed("client stream does not start with CONNECT")
    return connect_version(packets[0])


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("capture_dir")
    parser.add_argument("corpus_dir")
    parser.add_argument("--clean", action="store_true",
                        help="remove every file in corpus_dir first")
    args = parser.parse_args(argv[1:])

    names = sorted(f for f in os.listdir(args.capture_dir) if f.endswith(".client.bin"))
    if not names:
        sys.stderr.write("no *.client.bin in %s: run codec_interop_tests with "
                         "RINGMQ_CAPTURE_DIR set\n" % args.capture_dir)
        return 1

    def read(name):
        with open(os.path.join(args.capture_dir, name), "rb") as f:
            return f.read()

    # Client packets first, then the server's answers: the first of a kind wins.
    seeds = {}
    versions = {}
    for direction in ("client", "server"):
        for name in names:
            stem = name[:-len(".client.bin")]
            try:
                version = versions.setdefault(stem, stream_version(read(name)))
                stream = read(stem + "." + direction + ".bin")
                for packet in split_packets(stream):
                    seeds.setdefault(describe(packet, version),
                                     bytes([control_byte(seed_version(packet, version), 16)])
                                     + packet)
            except (Malformed, IndexError, FileNotFoundError) as e:
                sys.stderr.write("skipping %s.%s.bin: %s\n" % (stem, direction, e))

    for seed_name, file_name, chunk in STREAMS:
        stem = file_name.split(".client.bin")[0].split(".server.bin")[0]
        try:
            version = versions.get(stem) or stream_version(read(stem + ".client.bin"))
            seeds[seed_name] = bytes([control_byte(version, chunk)]) + read(file_name)
        except (Malformed, FileNotFoundError) as e:
            sys.stderr.write("skipping stream %s: %s\n" % (seed_name, e))

    os.makedirs(args.corpus_dir, exist_ok=True)
    if args.clean:
        for old in os.listdir(args.corpus_dir):
            path = os.path.join(args.corpus_dir, old)
            if os.path.isfile(path):
                os.remove(path)
    for seed_name, data in sorted(seeds.items()):
        with open(os.path.join(args.corpus_dir, seed_name), "wb") as f:
            f.write(data)
    total = sum(len(d) for d in seeds.values())
    print("%d seeds, %d bytes in %s" % (len(seeds), total, args.corpus_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
