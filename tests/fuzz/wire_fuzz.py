#!/usr/bin/python3
"""Over-the-wire mutation fuzzer for the ringmq broker.

fuzz_decoder (libFuzzer) covers the MQTT codec on its own. This fuzzer covers
what sits around it in a running broker: the TCP and WebSocket listeners, the
Upgrade handshake and frame reassembly, the connection state machine, session
takeover, Wills, persistence and the shutdown path. It starts a broker, sends
it thousands of mutated byte streams, one fresh connection each, and watches
for the two failures a remote client must never be able to cause: a crash and
a hang.

How it works:
  1. It starts the broker (the --ringmq binary) as a child process with one MQTT
     listener and one WebSocket listener on ephemeral loopback ports, no HTTP
     server and a data directory of its own. Ports are read from the broker's
     "listening: listener=... address=HOST:PORT" log lines.
  2. Seeds: every file of tests/fuzz/corpus (fuzz_decoder's seed corpus; its
     first byte, the libFuzzer control byte, names the protocol version and is
     dropped; packets that are not a CONNECT get a CONNECT of that version in
     front), plus client sessions captured at start-up: Paho clients (MQTT 3.1,
     3.1.1 and 5.0: CONNECT with a Will and credentials, SUBSCRIBE with options,
     PUBLISH at QoS 0/1/2 with properties, UNSUBSCRIBE, PINGREQ, DISCONNECT)
     talk to the broker through a recording proxy that keeps what they sent.
  3. Each sequence is a seed with a few mutations from a random.Random(seed)
     schedule: bit flips, byte replace/insert/delete, chunk duplicate/delete/
     swap, splicing two seeds, truncation, remaining lengths overwritten with
     huge or invalid varints, oversized property lengths and bogus properties,
     a packet repeated many times, a second CONNECT, random packet types.
     The same --seed gives the same sequences (the captured seeds are the same
     bytes from run to run; their digest is printed to check).
  4. Sequences alternate between TCP and WebSocket. The WebSocket client is
     built here: an HTTP/1.1 Upgrade (Sec-WebSocket-Protocol: mqtt, a random
     Sec-WebSocket-Key whose Accept is checked), then the bytes in masked
     binary frames, often split into several frames or a fragmented message;
     a few sequences get a mutated frame header or a mutated Upgrade request.
     Each connection writes its bytes (sometimes in several writes), reads what
     comes back until the broker closes or it has been idle briefly, then
     closes (sometimes with a reset). A few connections run at once.
  5. After every --probe-every sequences and at the end: the broker process
     must be alive (else: a crash), and a well-behaved Paho 3.1.1 client,
     connected since the start and subscribed to its own topic at QoS 1, must
     get its own QoS 1 PUBLISH back within 100 ms. A late probe is counted as
     slow and retried a second later; if the retry is not back within 1 s
     either, the broker hangs. Fresh connections to both listeners must also
     still get a CONNACK. The probe's connection must never drop.
  6. On a crash or hang, the last batch of sequences is saved as JSON lines
     (replayable with --replay) next to the broker log, and the log's tail is
     printed; on a hang, gdb's backtraces of the broker are saved if gdb exists.
  7. At the end one summary line; the exit status is 0 only with no crash and
     no hang, and when the broker then stops cleanly (exit code 0) on SIGTERM.

Run:  /usr/bin/python3 tests/fuzz/wire_fuzz.py --ringmq build/bin/ringmq --sequences 10000 --seed 1
Replay a saved batch:  ... --ringmq build/bin/ringmq --replay ARTIFACTS/crash-batch-....jsonl
"""

import argparse
import base64
import ctypes
import errno
import hashlib
import json
import os
import queue
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCodes
from paho.mqtt.subscribeoptions import SubscribeOptions

CORPUS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
HOST = "127.0.0.1"
WS_PATH = "/mqtt"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Timing. A connection that says nothing for IDLE_S is done with: the broker
# answers a loopback client in well under a millisecond, so 50 ms of silence
# means it is waiting for bytes that will not come.
IDLE_S = 0.05
CONNECTION_BUDGET_S = 1.0   # longest one sequence may keep reading (a flood of PUBLISHes)
SOCKET_TIMEOUT_S = 1.0      # connect / write: a stuck broker must not stall the fuzzer
WORKERS = 8                 # concurrent fuzz connections: the per-connection wait is mostly idle
PROBE_DEADLINE_S = 0.1      # round trip of the probe's own QoS 1 message
PROBE_RETRY_AFTER_S = 1.0   # a hiccup (the machine busy elsewhere) passes in a second...
PROBE_RETRY_DEADLINE_S = 1.0  # ...a hang does not: the retry gets this long
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0       # above node.shutdown_timeout_ms (10 s)

MAX_SEQUENCE = 64 * 1024    # bigger streams only cost time: the broker reads them the same way
LARGE_VARINTS = [
    b"\xff\xff\xff\x7f",            # 268435455, the largest valid remaining length
    b"\xff\xff\xff\xff\x7f",        # five bytes: invalid
    b"\x80\x80\x80\x80\x01",        # five bytes, value 2^28
    b"\xff\xff\xff\xff",            # never terminated
    b"\x80\x80\x80\x00",            # non-minimal encoding of 0
    b"\xff\x7f",                    # 16383
]
INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x7F, 0x80, 0x81, 0xFE, 0xFF, 0x3F, 0x40, 0xC0, 0x10, 0x30]
# Properties that are bogus on their own or carry a length the packet cannot hold.
BOGUS_PROPERTIES = [
    b"\x26\xff\xff",                      # User Property, key 65535 bytes long
    b"\x26\x00\x01k\xff\xff",             # User Property, value 65535 bytes long
    b"\x08\xff\xff",                      # Response Topic 65535 bytes long
    b"\x09\x7f\xff",                      # Correlation Data 32767 bytes long
    b"\x0b\xff\xff\xff\x7f",              # Subscription Identifier 268435455
    b"\x0b\x00",                          # Subscription Identifier 0 (invalid)
    b"\x23\x00\x00",                      # Topic Alias 0 (invalid)
    b"\x23\xff\xff",                      # Topic Alias 65535
    b"\x01\x02",                          # Payload Format Indicator 2 (invalid)
    b"\x02\xff\xff\xff\xff",              # Message Expiry Interval max
    b"\x11\x00\x00\x00\x00\x11\x00\x00\x00\x01",  # Session Expiry Interval twice
    b"\x21\x00\x00",                      # Receive Maximum 0 (invalid)
    b"\x27\x00\x00\x00\x00",              # Maximum Packet Size 0 (invalid)
    b"\x15\x00\x04toke",                  # Authentication Method (enhanced auth)
    b"\x16\x00\x01x",                     # Authentication Data without a method
    b"\xff",                              # unknown property identifier
    b"\x80\x80\x80\x80\x01",              # identifier as an overlong varint
]

PACKET_CONNECT = 1


# --------------------------------------------------------------------------
# MQTT framing helpers


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


# --------------------------------------------------------------------------
# Mutations. Each takes (rng, data, seeds) and returns new bytes.


def mutate_bit_flip(rng, data, seeds):
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def random_byte(rng):
    return rng.choice(INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256)


def mutate_byte_replace(rng, data, seeds):
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        out[rng.randrange(len(out))] = random_byte(rng)
    return bytes(out)


def mutate_byte_insert(rng, data, seeds):
    at = rng.randrange(len(data) + 1)
    inserted = bytes(random_byte(rng) for _ in range(rng.randint(1, 8)))
    return data[:at] + inserted + data[at:]


def mutate_byte_delete(rng, data, seeds):
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.randint(1, 4):]


def random_chunk(rng, data):
    start = rng.randrange(len(data))
    return start, min(len(data), start + rng.randint(1, 64))


def mutate_chunk_duplicate(rng, data, seeds):
    if not data:
        return data
    start, end = random_chunk(rng, data)
    at = rng.randrange(len(data) + 1)
    return data[:at] + data[start:end] * rng.randint(1, 4) + data[at:]


def mutate_chunk_delete(rng, data, seeds):
    if not data:
        return data
    start, end = random_chunk(rng, data)
    return data[:start] + data[end:]


def mutate_chunk_swap(rng, data, seeds):
    if len(data) < 4:
        return data
    a, b = sorted(rng.sample(range(len(data)), 2))
    n = rng.randint(1, max(1, min(32, b - a)))
    if a + n > b:
        return data
    return data[:a] + data[b:b + n] + data[a + n:b] + data[a:a + n] + data[b + n:]


def mutate_splice(rng, data, seeds):
    """This sequence's front with another seed's tail, at a byte or at a packet boundary."""
    other = rng.choice(seeds)
    mine, theirs = split_packets(data), split_packets(other)
    if rng.random() < 0.5 and mine and theirs:
        cut = mine[rng.randrange(len(mine))][2]
        return data[:cut] + other[theirs[rng.randrange(len(theirs))][0]:]
    return data[:rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1):]


def mutate_truncate(rng, data, seeds):
    return data[:rng.randrange(len(data))] if data else data


def random_packet(rng, data):
    packets = split_packets(data)
    return packets[rng.randrange(len(packets))] if packets else None


def mutate_remaining_length(rng, data, seeds):
    """A packet claims a huge or malformed remaining length; its bytes stay as they were."""
    chosen = random_packet(rng, data)
    if chosen is None:
        return data
    start, body, _ = chosen
    value = rng.choice(LARGE_VARINTS + [encode_varint(rng.randrange(1 << 28))])
    return data[:start + 1] + value + data[body:]


def mutate_property_length(rng, data, seeds):
    """A v5 packet's Property Length says too much, or its properties gain a bogus one."""
    candidates = [(s, b, e, off) for s, b, e in split_packets(data)
                  for off in [property_offset(data, s, b, e)] if off is not None]
    if not candidates:
        return mutate_remaining_length(rng, data, seeds)
    start, body, end, off = rng.choice(candidates)
    old = decode_varint(data, off, end)
    if old is None:
        return data
    if rng.random() < 0.5:
        # The lengths around stay, so the decoder must notice the properties overrun the packet.
        value = rng.choice(LARGE_VARINTS + [encode_varint(end - old[1] + rng.randint(1, 1000))])
        return data[:off] + value + data[old[1]:]
    # A bogus property, framed correctly, so that the property decoder has to judge it.
    bogus = rng.choice(BOGUS_PROPERTIES)
    new_body = (data[body:off] + encode_varint(old[0] + len(bogus)) + bogus + data[old[1]:end])
    return data[:start] + packet(data[start], new_body) + data[end:]


def mutate_repeat_packet(rng, data, seeds):
    chosen = random_packet(rng, data)
    if chosen is None:
        return data
    start, _, end = chosen
    times = rng.choice([2, 3, 10, 50, 200, 1000])
    times = max(1, min(times, MAX_SEQUENCE // max(1, end - start)))
    return data[:end] + data[start:end] * times + data[end:]


def mutate_second_connect(rng, data, seeds):
    """A CONNECT (this sequence's own or another seed's) after some packet."""
    connects = [s for s in seeds if s and s[0] >> 4 == PACKET_CONNECT]
    source = data if data and data[0] >> 4 == PACKET_CONNECT and rng.random() < 0.5 else rng.choice(connects)
    first = split_packets(source)
    if not first:
        return data
    connect = source[first[0][0]:first[0][2]]
    boundaries = [e for _, _, e in split_packets(data)] or [len(data)]
    at = rng.choice(boundaries)
    return data[:at] + connect + data[at:]


def mutate_type_nibble(rng, data, seeds):
    chosen = random_packet(rng, data)
    if chosen is None:
        return data
    start = chosen[0]
    flags = data[start] & 0x0F if rng.random() < 0.7 else rng.randrange(16)
    return data[:start] + bytes([rng.randrange(16) << 4 | flags]) + data[start + 1:]


MUTATIONS = [
    (mutate_bit_flip, 3), (mutate_byte_replace, 3), (mutate_byte_insert, 2),
    (mutate_byte_delete, 2), (mutate_chunk_duplicate, 2), (mutate_chunk_delete, 2),
    (mutate_chunk_swap, 1), (mutate_splice, 2), (mutate_truncate, 2),
    (mutate_remaining_length, 2), (mutate_property_length, 3), (mutate_repeat_packet, 1),
    (mutate_second_connect, 2), (mutate_type_nibble, 2),
]
MUTATION_FUNCTIONS = [m for m, _ in MUTATIONS]
MUTATION_WEIGHTS = [w for _, w in MUTATIONS]


def mutate(rng, seed, seeds):
    """A few stacked mutations of seed: (bytes, names of the mutations)."""
    data, names = seed, []
    for mutation in rng.choices(MUTATION_FUNCTIONS, MUTATION_WEIGHTS, k=rng.choice([1, 1, 2, 2, 3, 4, 6])):
        data = mutation(rng, data, seeds)[:MAX_SEQUENCE]
        names.append(mutation.__name__[len("mutate_"):])
    return data, names


# --------------------------------------------------------------------------
# WebSocket client frames


def mask_bytes(data, key):
    if not data:
        return b""
    repeated = (key * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(data), "big")


def encode_frame(frame):
    """Bytes of a client frame dict: fin, rsv, opcode, masked, key, payload, length, length_form."""
    length = frame.get("length", len(frame["payload"]))
    form = frame.get("length_form") or (0 if length < 126 else 126 if length < 65536 else 127)
    first = (0x80 if frame["fin"] else 0) | frame.get("rsv", 0) << 4 | frame["opcode"]
    mask_bit = 0x80 if frame["masked"] else 0
    if form == 0:
        header = bytes([first, mask_bit | length])
    elif form == 126:
        header = bytes([first, mask_bit | 126]) + struct.pack(">H", length & 0xFFFF)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack(">Q", length & (2**64 - 1))
    if not frame["masked"]:
        return header + frame["payload"]
    return header + frame["key"] + mask_bytes(frame["payload"], frame["key"])


def split_points(rng, size, most):
    return sorted(rng.sample(range(1, size), min(size - 1, rng.randint(1, most)))) if size > 1 else []


def pieces_of(data, points):
    bounds = [0] + points + [len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def mutate_frame_header(rng, frame):
    """One header field of a frame made wrong in a way a server must refuse or survive."""
    choice = rng.randrange(7)
    if choice == 0:
        frame["rsv"] = rng.randint(1, 7)
    elif choice == 1:
        frame["opcode"] = rng.choice([0x0, 0x1, 0x3, 0x7, 0x8, 0x9, 0xA, 0xB, 0xF])
    elif choice == 2:
        frame["masked"] = False  # client frames must be masked
    elif choice == 3:
        frame["length"] = rng.choice([2**63 - 1, 2**64 - 1, 2**32, len(frame["payload"]) + 1,
                                      len(frame["payload"]) + 100000])
    elif choice == 4:
        frame["length_form"] = rng.choice([126, 127])  # non-minimal length encoding
    elif choice == 5:
        frame["fin"] = not frame["fin"]
    else:
        frame["opcode"] = 0x9  # a ping that is too long for a control frame
        frame["payload"] = frame["payload"] + bytes(126)


def ws_frames(rng, data):
    """The bytes of data as masked binary frames: one, several messages or one fragmented message."""
    pieces = pieces_of(data, split_points(rng, len(data), 6) if rng.random() < 0.5 else [])
    fragmented = len(pieces) > 1 and rng.random() < 0.5
    frames = []
    for i, piece in enumerate(pieces):
        opcode = 0x0 if fragmented and i > 0 else 0x2
        fin = not fragmented or i == len(pieces) - 1
        frames.append({"fin": fin, "opcode": opcode, "masked": True,
                       "key": rng.randbytes(4), "payload": piece})
    if rng.random() < 0.05:
        # A ping between frames (even inside a fragmented message) is legal; the server answers it.
        frames.insert(rng.randrange(len(frames) + 1),
                      {"fin": True, "opcode": 0x9, "masked": True, "key": rng.randbytes(4), "payload": b"hi"})
    if rng.random() < 0.1:
        mutate_frame_header(rng, rng.choice(frames))
    return b"".join(encode_frame(f) for f in frames)


def upgrade_request(key, subprotocol="mqtt", path=WS_PATH):
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if subprotocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def mutated_upgrade(rng, key):
    """An Upgrade request the server must refuse or parse carefully."""
    choice = rng.randrange(4)
    if choice == 0:
        return upgrade_request(key, subprotocol=rng.choice([None, "mqttv3.1", "mqtt5", "", "x, mqtt"]))
    if choice == 1:
        return upgrade_request(key, path=rng.choice(["/", "/mqtt/", "/mqtt?x=1", "/" + "a" * 5000]))
    request = upgrade_request(key)
    for _ in range(rng.randint(1, 4)):
        request = rng.choice([mutate_bit_flip, mutate_byte_insert, mutate_byte_delete,
                              mutate_chunk_duplicate])(rng, request, [])
    return request


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


# --------------------------------------------------------------------------
# Jobs: one fuzz connection each, fully decided before it is sent (so a batch replays).


def make_job(rng, index, payload, mutations):
    """Everything about one connection, drawn from rng: transport, framing, writes, close."""
    job = {"index": index, "transport": "tcp" if index % 2 == 0 else "ws",
           "mutations": mutations, "mqtt": payload.hex()}
    wire = payload
    if job["transport"] == "ws":
        key = base64.b64encode(rng.randbytes(16)).decode()
        good = rng.random() >= 0.03
        job["ws_key"] = key
        job["upgrade"] = (upgrade_request(key) if good else mutated_upgrade(rng, key)).hex()
        job["upgrade_valid"] = good
        wire = ws_frames(rng, payload)
    job["wire"] = wire.hex()
    # Several writes reach the broker as several reads now and then: its reassembly runs.
    job["writes"] = split_points(rng, len(wire), 3) if rng.random() < 0.15 else []
    job["reset"] = rng.random() < 0.2  # close with RST instead of FIN
    return job


def generate_jobs(rng, seeds, count):
    """The first sequences are the seeds as they are, then mutated seeds."""
    jobs = []
    for index in range(count):
        if index < len(seeds):
            payload, names = seeds[index], []
        else:
            payload, names = mutate(rng, rng.choice(seeds), seeds)
        jobs.append(make_job(rng, index, payload, names))
    return jobs


# --------------------------------------------------------------------------
# Sending one job


def recv_until_header_end(sock, deadline, idle):
    """The HTTP response head (bytes up to and with CRLFCRLF), or what came before the peer stopped."""
    data = b""
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        sock.settimeout(max(0.001, min(idle, deadline - time.monotonic())))
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data


def check_upgrade_response(head, key):
    """None if this is a correct 101 for key; else why not (a non-101 status is 'refused')."""
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 101"):
        return "refused"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"sec-websocket-accept", b"").decode(errors="replace") != accept_key(key):
        return "wrong Sec-WebSocket-Accept"
    if headers.get(b"sec-websocket-protocol") != b"mqtt":
        return "subprotocol mqtt not echoed"
    return None


def server_close_frame(buffer, pos):
    """(saw a close frame, next frame position) over the unmasked server frames from pos."""
    while pos + 2 <= len(buffer):
        opcode, length, header = buffer[pos] & 0x0F, buffer[pos + 1] & 0x7F, 2
        if length == 126:
            if pos + 4 > len(buffer):
                break
            length, header = struct.unpack(">H", buffer[pos + 2:pos + 4])[0], 4
        elif length == 127:
            if pos + 10 > len(buffer):
                break
            length, header = struct.unpack(">Q", buffer[pos + 2:pos + 10])[0], 10
        if opcode == 0x8:
            return True, pos
        if pos + header + length > len(buffer):
            break
        pos += header + length
    return False, pos


def drain(sock, websocket):
    """Reads until the broker closes, sends a WebSocket close, or stays silent for IDLE_S."""
    deadline = time.monotonic() + CONNECTION_BUDGET_S
    received, frame_pos = bytearray(), 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "budget"
        sock.settimeout(min(IDLE_S, left))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return "idle"
        if not chunk:
            return "closed"
        if websocket:
            received += chunk
            closed, frame_pos = server_close_frame(received, frame_pos)
            if closed:
                return "ws-close"


def write(sock, wire, points):
    """wire in one write, or in several with a short pause so they arrive as separate reads."""
    for i, piece in enumerate(pieces_of(wire, points)):
        if i:
            time.sleep(0.002)
        sock.sendall(piece)


def run_job(job, ports):
    """Sends one job on a fresh connection: an outcome name for the statistics."""
    websocket = job["transport"] == "ws"
    try:
        sock = socket.create_connection((HOST, ports[job["transport"]]), timeout=SOCKET_TIMEOUT_S)
    except socket.timeout:
        return "connect-timeout", None
    except OSError:
        return "connect-error", None
    anomaly = None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if websocket:
            sock.sendall(bytes.fromhex(job["upgrade"]))
            # A valid request deserves a patient wait; a mutated one may leave the server waiting too.
            wait = SOCKET_TIMEOUT_S if job["upgrade_valid"] else IDLE_S
            head = recv_until_header_end(sock, time.monotonic() + wait, wait)
            problem = check_upgrade_response(head, job["ws_key"])
            if problem and job["upgrade_valid"]:  # a correct request must get a correct 101
                anomaly = f"sequence {job['index']}: WebSocket upgrade: {problem if head else 'no answer'}"
            if problem == "refused":  # no WebSocket: nothing to send the frames to
                return "ws-" + ("refused" if head else "no-answer"), anomaly
        sock.settimeout(SOCKET_TIMEOUT_S)
        write(sock, bytes.fromhex(job["wire"]), job["writes"])
        return drain(sock, websocket), anomaly
    except socket.timeout:
        return "write-timeout", anomaly
    except OSError as e:  # the broker closed first: reset, broken pipe
        return "error-" + (errno.errorcode.get(e.errno, "?") if e.errno else type(e).__name__), anomaly
    finally:
        if job["reset"]:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


# --------------------------------------------------------------------------
# The broker process


def die_with_parent():
    """In the child before exec: a killed fuzzer must not leave a broker behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Broker:
    """The broker as a child process; `settings` are more "key=value" overrides (last wins)."""

    def __init__(self, binary, workdir, settings=(), node_id="wire-fuzz"):
        self.binary = binary
        self.settings = list(settings)
        self.node_id = node_id
        self.log_path = os.path.join(workdir, "broker.log")
        self.data_dir = os.path.join(workdir, "data")
        self.proc = None
        self.ports = {}

    def start(self):
        overrides = ["listeners[0].type=mqtt", f"listeners[0].bind={HOST}:0",
                     "listeners[1].type=ws", f"listeners[1].bind={HOST}:0",
                     f"listeners[1].path={WS_PATH}", "http.bind=", f"node.id={self.node_id}",
                     f"node.data_dir={self.data_dir}"] + self.settings
        shutil.rmtree(self.data_dir, ignore_errors=True)  # an earlier run's sessions would change this one
        argv = [self.binary]
        for override in overrides:
            argv += ["--set", override]
        # RINGMQ_* variables of the caller would configure this broker too.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RINGMQ_")}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=env, preexec_fn=die_with_parent)
        self.wait_started()

    def wait_started(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            log = self.log_text()
            if " started: " in log:
                for kind, port in re.findall(r"listening: listener=(\w+):\S+ address=\S+:(\d+)", log):
                    self.ports[{"mqtt": "tcp"}.get(kind, kind)] = int(port)  # keyed by transport
                if {"tcp", "ws"} <= self.ports.keys():
                    return
                raise RuntimeError("broker started without both listeners:\n" + self.log_tail())
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited at start ({describe_status(self.proc.returncode)}):\n"
                                   + self.log_tail())
            time.sleep(0.02)
        raise RuntimeError("broker did not start in time:\n" + self.log_tail())

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def log_tail(self, lines=40):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, then the exit status (SIGKILL and None if it does not stop in time)."""
        if not self.alive():
            return self.proc.returncode
        self.proc.send_signal(signal.SIGCONT)  # a stopped process would never see the SIGTERM
        self.proc.terminate()
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def peak_memory(self):
        """VmHWM of the running broker: a claimed length it allocates up front shows up here."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                return next((line.split(":", 1)[1].strip() for line in f if line.startswith("VmHWM")), None)
        except OSError:
            return None

    def save_stacks(self, path):
        """Every thread's backtrace, when gdb is there: what a hang is waiting for."""
        gdb = shutil.which("gdb")
        if not gdb or not self.alive():
            return False
        try:
            with open(path, "wb") as out:
                subprocess.run([gdb, "-p", str(self.proc.pid), "-batch", "-nx",
                                "-ex", "thread apply all bt"], stdin=subprocess.DEVNULL,
                               stdout=out, stderr=subprocess.STDOUT, timeout=60)
            return True
        except (OSError, subprocess.TimeoutExpired):
            return False


def describe_status(code):
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by signal {-code} ({signal.Signals(-code).name})"
    return f"exit code {code}"


# --------------------------------------------------------------------------
# Seeds


def load_corpus(directory):
    """The codec corpus as broker input: control byte dropped, a CONNECT in front where missing."""
    seeds = []
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            raw = f.read()
        if len(raw) < 2:
            continue
        version, data = 3 + raw[0] % 3, raw[1:]
        if data[0] >> 4 != PACKET_CONNECT:
            data = minimal_connect(version, f"wire-fuzz-{name}") + data
        seeds.append(data)
    return seeds


class RecordingProxy:
    """Relays one client connection at a time to the broker and keeps what the client sent."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.server = socket.create_server((HOST, 0))
        self.server.settimeout(10)
        self.port = self.server.getsockname()[1]
        self.recorded = bytearray()
        self.thread = None

    def begin(self):
        self.recorded = bytearray()
        self.thread = threading.Thread(target=self.relay_one, daemon=True)
        self.thread.start()

    def end(self):
        self.thread.join(10)
        return bytes(self.recorded)

    def relay_one(self):
        client, _ = self.server.accept()
        upstream = socket.create_connection((HOST, self.upstream_port), timeout=10)
        try:
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 10)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        self.recorded += data
                        upstream.sendall(data)
                    else:
                        client.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def close(self):
        self.server.close()


class PahoSession:
    """A Paho client whose callbacks set events the capture script waits on."""

    def __init__(self, protocol, client_id):
        extra = {} if protocol == mqtt.MQTTv5 else {"clean_session": True}
        self.client = mqtt.Client(client_id=client_id, protocol=protocol, reconnect_on_failure=False, **extra)
        self.v5 = protocol == mqtt.MQTTv5
        self.connected, self.subscribed, self.unsubscribed = (threading.Event() for _ in range(3))
        self.messages = queue.Queue()
        self.client.on_connect = lambda *args: self.connected.set()
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_unsubscribe = lambda *args: self.unsubscribed.set()
        self.client.on_message = lambda client, userdata, message: self.messages.put(message)

    def wait(self, event, what):
        if not event.wait(5):
            raise RuntimeError(f"capture: no {what} from the broker")
        event.clear()


def v5_properties(packet_type, **values):
    props = Properties(packet_type)
    for name, value in values.items():
        setattr(props, name, value)
    return props


def capture_session(proxy, protocol, tag):
    """Runs one full client session through the proxy; returns the client's bytes."""
    session = PahoSession(protocol, f"wire-fuzz-capture-{tag}")
    client, v5 = session.client, session.v5
    base = f"wire-fuzz/capture/{tag}"
    proxy.begin()
    client.username_pw_set("wire-fuzz", "not-checked")
    client.will_set(f"{base}/will", b"gone", qos=1, retain=False,
                    properties=v5_properties(PacketTypes.WILLMESSAGE, WillDelayInterval=0,
                                             ContentType="text/plain",
                                             UserProperty=[("k", "v")]) if v5 else None)
    connect_extra = {}
    if v5:
        connect_extra = {"clean_start": True, "properties": v5_properties(
            PacketTypes.CONNECT, SessionExpiryInterval=30, ReceiveMaximum=16,
            TopicAliasMaximum=4, RequestProblemInformation=1, UserProperty=[("who", "fuzz")])}
    client.connect(HOST, proxy.port, keepalive=30, **connect_extra)
    client.loop_start()
    try:
        session.wait(session.connected, "CONNACK")
        run_capture_flow(session, base)
    finally:
        client.loop_stop()
    return proxy.end()


def run_capture_flow(session, base):
    client, v5 = session.client, session.v5
    if v5:
        client.subscribe([(f"{base}/#", SubscribeOptions(qos=2, retainAsPublished=True)),
                          (f"{base}/+/x", SubscribeOptions(qos=1, noLocal=True, retainHandling=2))],
                         properties=v5_properties(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7))
    else:
        client.subscribe([(f"{base}/#", 2), (f"{base}/+/x", 1)])
    session.wait(session.subscribed, "SUBACK")
    for qos in (0, 1, 2):
        props = None
        if v5:
            props = v5_properties(PacketTypes.PUBLISH, MessageExpiryInterval=60, ContentType="text/plain",
                                  PayloadFormatIndicator=1, ResponseTopic=f"{base}/reply",
                                  CorrelationData=b"corr", UserProperty=[("q", str(qos))], TopicAlias=1 + qos)
        info = client.publish(f"{base}/q{qos}", f"message at QoS {qos}".encode(), qos=qos, properties=props)
        info.wait_for_publish(5)
        session.messages.get(timeout=5)
        time.sleep(0.02)  # the client's PUBACK/PUBREC/PUBCOMP go out before the next step
    for payload in (b"retained", b""):  # set and clear a retained message
        client.publish(f"{base}/retained", payload, qos=1, retain=True).wait_for_publish(5)
    client.unsubscribe([f"{base}/#", f"{base}/+/x"])
    session.wait(session.unsubscribed, "UNSUBACK")
    client._send_pingreq()  # no public call for it; the keep alive timer is too slow to wait for
    time.sleep(0.05)
    if v5:
        client.disconnect(reasoncode=ReasonCodes(PacketTypes.DISCONNECT, "Normal disconnection"),
                          properties=v5_properties(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
    else:
        client.disconnect()
    time.sleep(0.02)


def capture_sessions(mqtt_port):
    proxy = RecordingProxy(mqtt_port)
    try:
        return [capture_session(proxy, protocol, tag)
                for protocol, tag in ((mqtt.MQTTv31, "v31"), (mqtt.MQTTv311, "v311"), (mqtt.MQTTv5, "v5"))]
    finally:
        proxy.close()


# --------------------------------------------------------------------------
# Probe


class Probe:
    """A well-behaved client that must keep getting its own QoS 1 messages back, fast."""

    def __init__(self, port):
        tag = os.urandom(6).hex()  # no mutated CONNECT can take this client id over
        self.topic = f"wire-fuzz/probe/{tag}"
        self.client = mqtt.Client(client_id=f"wire-fuzz-probe-{tag}", clean_session=True,
                                  protocol=mqtt.MQTTv311, reconnect_on_failure=False)
        self.port = port
        self.lock = threading.Condition()
        self.arrivals = {}
        self.sent = 0
        self.dropped = None
        self.closing = False
        self.client.on_message = self.on_message
        self.client.on_disconnect = self.on_disconnect

    def start(self):
        ready = threading.Event()
        self.client.on_connect = lambda *args: ready.set()
        self.client.on_subscribe = lambda *args: ready.set()
        self.client.connect(HOST, self.port, keepalive=60)
        self.client.loop_start()
        if not ready.wait(10):
            raise RuntimeError("probe: no CONNACK")
        ready.clear()
        self.client.subscribe(self.topic, qos=1)
        if not ready.wait(10):
            raise RuntimeError("probe: no SUBACK")

    def on_message(self, client, userdata, message):
        now = time.perf_counter()
        with self.lock:
            self.arrivals[int(message.payload)] = now
            self.lock.notify_all()

    def on_disconnect(self, client, userdata, rc):
        if not self.closing:
            with self.lock:
                self.dropped = rc
                self.lock.notify_all()

    def round_trip(self, deadline_s):
        """(number, start, seconds from PUBLISH to delivery or None if not within deadline_s)."""
        with self.lock:
            self.sent += 1
            number = self.sent
        start = time.perf_counter()
        self.client.publish(self.topic, str(number).encode(), qos=1)
        return number, start, self.wait_arrival(number, start, deadline_s)

    def wait_arrival(self, number, start, deadline_s):
        with self.lock:
            self.lock.wait_for(lambda: number in self.arrivals or self.dropped is not None,
                               timeout=max(0.0, start + deadline_s - time.perf_counter()))
            arrived = self.arrivals.get(number)
        return arrived - start if arrived is not None else None

    def late_arrival(self, number, start):
        with self.lock:
            arrived = self.arrivals.get(number)
        return arrived - start if arrived is not None else None

    def stop(self):
        self.closing = True
        self.client.disconnect()
        self.client.loop_stop()


def fresh_connack(port, websocket):
    """True when a new connection to the listener gets a CONNACK (every listener must keep accepting)."""
    connect = minimal_connect(4, f"wire-fuzz-check-{os.urandom(4).hex()}")
    try:
        with socket.create_connection((HOST, port), timeout=PROBE_RETRY_DEADLINE_S) as sock:
            sock.settimeout(PROBE_RETRY_DEADLINE_S)
            if websocket:
                key = base64.b64encode(os.urandom(16)).decode()
                sock.sendall(upgrade_request(key))
                head = recv_until_header_end(sock, time.monotonic() + PROBE_RETRY_DEADLINE_S,
                                             PROBE_RETRY_DEADLINE_S)
                if check_upgrade_response(head, key):
                    return False
                connect = encode_frame({"fin": True, "opcode": 2, "masked": True,
                                        "key": os.urandom(4), "payload": connect})
            sock.sendall(connect)
            reply, wanted = b"", 3 if websocket else 1  # a server frame header comes first on ws
            while len(reply) < wanted:
                chunk = sock.recv(64)
                if not chunk:
                    return False
                reply += chunk
            return reply[wanted - 1:wanted] == b"\x20"
    except OSError:
        return False


# --------------------------------------------------------------------------
# The run


class Run:
    def __init__(self, args, broker, probe, artifacts):
        self.args, self.broker, self.probe, self.artifacts = args, broker, probe, artifacts
        self.sent = {"tcp": 0, "ws": 0}
        self.outcomes = {}
        self.anomalies = []
        self.round_trips = []
        self.slow = self.hangs = self.crashes = 0
        self.failures = []

    def send_batch(self, pool, jobs):
        for job, (outcome, anomaly) in zip(jobs, pool.map(lambda j: run_job(j, self.broker.ports), jobs)):
            self.sent[job["transport"]] += 1
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if anomaly:
                self.anomalies.append(anomaly)

    def check(self, jobs):
        """After a batch: alive, probe round trip, fresh connections. False stops the run."""
        if not self.broker.alive():
            return self.crashed(jobs)
        if not self.probe_ok(jobs):
            if not self.broker.alive():
                return self.crashed(jobs)
            return self.hung(jobs, "the probe's QoS 1 message did not come back")
        for transport in ("tcp", "ws"):
            if not self.fresh_ok(transport):
                return self.hung(jobs, f"a new {transport} connection got no CONNACK")
        return True

    def probe_ok(self, jobs):
        if self.probe.dropped is not None:
            failure = f"the probe's connection dropped (paho rc={self.probe.dropped})"
            if failure not in self.failures:
                self.failures.append(failure)
                print(f"FAILURE: {failure}\n--- broker log tail ---\n{self.broker.log_tail()}\n---", flush=True)
            return True  # a failure already; the liveness and fresh-connection checks go on
        number, start, rtt = self.probe.round_trip(PROBE_DEADLINE_S)
        if rtt is not None:
            self.round_trips.append(rtt)
            return True
        self.slow += 1
        time.sleep(PROBE_RETRY_AFTER_S)
        late = self.probe.late_arrival(number, start)
        if late is not None:
            self.round_trips.append(late)
        _, _, retry = self.probe.round_trip(PROBE_RETRY_DEADLINE_S)
        # Kept, so that a slow probe that comes back with the same batch can be looked into.
        path = self.save_batch(jobs, "slow")
        print(f"slow probe after sequences {jobs[0]['index']}..{jobs[-1]['index']}: "
              f"{'lost' if late is None else f'{late * 1000:.0f} ms'}, retry "
              f"{'lost' if retry is None else f'{retry * 1000:.1f} ms'}; batch saved to {path}", flush=True)
        return retry is not None or self.probe.dropped is not None

    def fresh_ok(self, transport):
        if fresh_connack(self.broker.ports[transport], transport == "ws"):
            return True
        time.sleep(PROBE_RETRY_AFTER_S)
        return fresh_connack(self.broker.ports[transport], transport == "ws")

    def save_batch(self, jobs, what):
        path = os.path.join(self.artifacts, f"{what}-batch-{jobs[0]['index']}-{jobs[-1]['index']}.jsonl")
        with open(path, "w") as f:
            for job in jobs:
                f.write(json.dumps(job) + "\n")
        return path

    def crashed(self, jobs):
        self.crashes += 1
        path = self.save_batch(jobs, "crash")
        print(f"CRASH: the broker died ({describe_status(self.broker.proc.returncode)}) during sequences "
              f"{jobs[0]['index']}..{jobs[-1]['index']}; batch saved to {path}\n"
              f"--- broker log tail ---\n{self.broker.log_tail()}\n---", flush=True)
        return False

    def hung(self, jobs, what):
        self.hangs += 1
        path = self.save_batch(jobs, "hang")
        stacks = os.path.join(self.artifacts, "broker-hang-stacks.txt")
        saved = self.broker.save_stacks(stacks)
        print(f"HANG: {what} (retried after {PROBE_RETRY_AFTER_S:.0f} s) after sequences "
              f"{jobs[0]['index']}..{jobs[-1]['index']}; batch saved to {path}"
              + (f"; backtraces in {stacks}" if saved else "")
              + f"\n--- broker log tail ---\n{self.broker.log_tail()}\n---", flush=True)
        return False

    def execute(self, jobs):
        every = max(1, self.args.probe_every)
        with ThreadPoolExecutor(WORKERS) as pool:
            for first in range(0, len(jobs), every):
                batch = jobs[first:first + every]
                self.send_batch(pool, batch)
                if not self.check(batch):
                    return
        if not jobs:
            self.check([{"index": -1}])


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z\s+(\w+)\s+\S+\s+(.*)$")
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|ThreadSanitizer|UndefinedBehaviorSanitizer|"
                       r"runtime error:|terminate called|Assertion .* failed")


def log_findings(text):
    """What a clean run should not show: warn/error lines by message, sanitizer or abort
    reports, and lines outside the log format (a logged field holding a client's newline)."""
    notable, fatal, unframed = {}, [], []
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if not m:
            # Sanitizers and std::terminate write their own lines; only those are looked at,
            # so that a client id spelling "runtime error:" cannot fail the run.
            (fatal if SANITIZER.search(line) else unframed).append(line)
        elif m.group(1) in ("warn", "warning", "error", "critical"):
            key = m.group(1) + " " + m.group(2).split(":")[0]
            count, example = notable.get(key, (0, line))
            notable[key] = (count + 1, example)
    return notable, fatal, unframed


def report_log(run, broker):
    notable, fatal, unframed = log_findings(broker.log_text())
    for key, (count, example) in sorted(notable.items()):
        print(f"log: {count} x {key}   e.g. {example[:300]}")
    if unframed:
        print(f"log: {len(unframed)} lines outside the log format (a newline from a client in a logged "
              f"field?), e.g. {unframed[0][:300]!r}")
    if fatal:
        run.crashes += 1
        print("log: sanitizer/abort report:\n" + "\n".join(fatal[:40]))


def summary(run, seeds_count, seconds, label):
    ms = [r * 1000 for r in run.round_trips]
    total = run.sent["tcp"] + run.sent["ws"]
    return (f"wire_fuzz: sequences={total} (tcp={run.sent['tcp']} ws={run.sent['ws']}) seeds={seeds_count} "
            f"crashes={run.crashes} hangs={run.hangs} slow_probes={run.slow} "
            f"probe_ms p50={percentile(ms, 0.5):.2f} p99={percentile(ms, 0.99):.2f} "
            f"max={max(ms) if ms else float('nan'):.2f} seconds={seconds:.1f} {label}")


def load_replay(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def parse_args():
    parser = argparse.ArgumentParser(description="Over-the-wire mutation fuzzer for the ringmq broker.")
    parser.add_argument("--ringmq", required=True, help="the broker binary")
    parser.add_argument("--sequences", type=int, default=10000, help="mutated sequences to send")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--artifacts", help="where crash inputs and the broker log go (default: a temp dir)")
    parser.add_argument("--replay", help="a saved .jsonl batch: send its sequences once, then probe")
    parser.add_argument("--probe-every", type=int, default=50, help="sequences between probes")
    return parser.parse_args()


def fuzz(args, broker, artifacts, seed):
    """Seeds, jobs, the run; returns (run, number of seeds)."""
    seeds = load_corpus(CORPUS_DIR)
    captured = capture_sessions(broker.ports["tcp"])
    seeds += captured
    digest = hashlib.sha256(b"".join(hashlib.sha256(s).digest() for s in seeds)).hexdigest()[:16]
    print(f"wire_fuzz: seed={seed} seeds={len(seeds)} (corpus {len(seeds) - len(captured)}, captured "
          f"sessions {'/'.join(str(len(c)) for c in captured)} bytes) digest={digest}", flush=True)
    if args.replay:
        jobs = load_replay(args.replay)
    else:
        jobs = generate_jobs(random.Random(seed), seeds, args.sequences)
    probe = Probe(broker.ports["tcp"])
    probe.start()
    run = Run(args, broker, probe, artifacts)
    try:
        run.execute(jobs)
    finally:
        if broker.alive():
            probe.stop()
    return run, len(seeds)


def main():
    args = parse_args()
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    artifacts = args.artifacts or tempfile.mkdtemp(prefix="ringmq-wire-fuzz-")
    os.makedirs(artifacts, exist_ok=True)
    broker = Broker(os.path.abspath(args.ringmq), artifacts)
    started = time.monotonic()
    broker.start()
    try:
        run, seeds_count = fuzz(args, broker, artifacts, seed)
    except BaseException:
        broker.stop()
        print(f"--- broker log ({broker.log_path}) tail ---\n{broker.log_tail()}", file=sys.stderr)
        raise
    label = f"replay={args.replay}" if args.replay else f"seed={seed}"
    ok = report_and_stop(run, broker, seeds_count, time.monotonic() - started, label)
    if ok and not args.artifacts:
        shutil.rmtree(artifacts, ignore_errors=True)
    elif ok:
        shutil.rmtree(broker.data_dir, ignore_errors=True)  # the log stays; the store is only bulk
        print(f"wire_fuzz: broker log in {broker.log_path}")
    else:
        print(f"wire_fuzz: artifacts and broker log in {artifacts}")
    return 0 if ok else 1


def report_and_stop(run, broker, seeds_count, seconds, label):
    """Prints the findings and the summary, stops the broker; True when the run passed."""
    report_log(run, broker)
    if run.outcomes:
        print("wire_fuzz: connection outcomes: " + " ".join(f"{k}={v}" for k, v in sorted(run.outcomes.items())))
    for anomaly in run.anomalies[:20]:
        print(f"wire_fuzz: anomaly: {anomaly}")
    for failure in run.failures:
        print(f"FAILURE: {failure}")
    peak = broker.peak_memory()
    if peak:
        print(f"wire_fuzz: broker peak memory {peak}")
    print(summary(run, seeds_count, seconds, label), flush=True)
    ok = run.crashes == 0 and run.hangs == 0 and not run.failures
    if broker.alive():
        status = broker.stop()
        if status == 0:
            print("wire_fuzz: broker stopped cleanly on SIGTERM (exit code 0)")
        else:
            print(f"FAILURE: the broker did not stop cleanly on SIGTERM ({describe_status(status)})\n"
                  f"--- broker log tail ---\n{broker.log_tail()}")
            ok = False
    return ok


if __name__ == "__main__":
    sys.exit(main())
