#!/usr/bin/python3
"""Known classes of broker vulnerabilities, replayed over WebSocket.

docs/reliability.md lists the classes of vulnerabilities found in MQTT brokers
and the integration test of each; those tests talk plain TCP. A WebSocket
listener puts a second decoder in front of the same connection code: HTTP
Upgrade, frame headers with their own lengths, masking, fragmentation. An
attack that the MQTT layer refuses over TCP must be refused the same way when
its bytes arrive in WebSocket frames, and the frame layer must not open a way
around it (a frame header announcing hundreds of MiB must not be buffered any
more than a Remaining Length is). Each test here starts its own broker (MQTT
and WebSocket listeners on ephemeral loopback ports, its own data directory, no
RINGMQ_* variables of the caller), runs one class of attack over WebSocket with
a client built from raw frames, and checks:

  * test_oversized_connect_is_refused_without_buffering_it (CVE-2023-0809):
    with mqtt.max_packet_size 1 MiB, a CONNECT announcing 256 MiB (or 2 MiB) -
    in its own frame or inside one frame that itself announces 256 MiB - is
    closed within CLOSE_WITHIN_S while its body is still being streamed, long
    before the connect timeout; after a CONNECT, an MQTT 5 client announcing a
    huge PUBLISH is told DISCONNECT 0x95 and closed; the broker's resident
    memory does not grow by anything near the announced sizes.
  * test_qos2_never_released_is_bounded_by_the_receive_maximum (CVE-2023-28366):
    a client that never sends PUBREL holds at most mqtt.max_inflight QoS 2
    messages (the Receive Maximum the CONNACK announces); retransmissions do not
    count again; the next one closes the connection (5.0: DISCONNECT 0x93). A
    client that releases each one sends three times as many and stays.
  * test_wildcards_in_the_client_id_do_not_widen_a_pattern (CVE-2017-7650):
    with "pattern readwrite devices/%c/#" and "pattern read users/%u/#", client
    ids and user names made of '#', '+' and '/' get nothing outside their own
    pattern: subscriptions refused, publishes refused (3.1.1: dropped), and a
    granted "#" delivers nothing of devices/ or users/, retained or live.
  * test_retained_flood_with_hash_subscribers_keeps_others_served: 5,000
    retained messages published over WebSocket (some messages fragmented), then
    three WebSocket '#' subscribers at once each receive every one, exactly once.
  * test_subscribe_storm_of_long_wildcard_filters_keeps_others_served: 1,000
    SUBSCRIBEs of 100-level wildcard filters sent at once are all granted, a
    deep topic matches exactly one of them and a topic one level short none.

Throughout every test a well-behaved Paho client over TCP keeps publishing QoS 1
messages to itself, each of which must come back within MAX_ROUND_TRIP_S; at the
end the broker must be alive and exit with code 0 on SIGTERM.

The broker is the executable named by WS_ABUSE_RINGMQ (ctest sets it), else
build/bin/ringmq of this repository. Run:
  WS_ABUSE_RINGMQ=build/bin/ringmq /usr/bin/python3 -m unittest -v ws_abuse   (in tests/fuzz)
"""

import base64
import collections
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker_process import HOST, Broker, describe_status  # noqa: E402
from mqtt_wire import decode_varint, mqtt_string, packet  # noqa: E402
from ws_client import check_upgrade_response, encode_frame, recv_until_header_end, upgrade_request  # noqa: E402

BINARY_VARIABLE = "WS_ABUSE_RINGMQ"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WAIT_S = 10.0              # bound of any wait for something that takes milliseconds
CLOSE_WITHIN_S = 2.0       # a refused connection is closed sooner than this
MAX_ROUND_TRIP_S = 2.0     # the steady client's QoS 1 round trips (as the C++ steady_client)
STEADY_PAUSE_S = 0.02      # between the steady client's round trips

MAX_PACKET_SIZE = 1024 * 1024
CONNECT_TIMEOUT_MS = 10_000  # far above CLOSE_WITHIN_S: a close cannot be the connect timeout's
RECEIVE_MAXIMUM = 16       # mqtt.max_inflight; not the default 20, so that the setting is what bounds

# Packet types.
CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 2, 3, 4, 5, 6, 7
SUBACK, PINGRESP, DISCONNECT = 9, 13, 14
PACKET_NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
                7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
                12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}

# Reason codes.
SUCCESS, GRANTED_QOS1, NO_SUBSCRIBERS = 0x00, 0x01, 0x10
V3_FAILURE, NOT_AUTHORIZED = 0x80, 0x87
RECEIVE_MAXIMUM_EXCEEDED, PACKET_TOO_LARGE = 0x93, 0x95

# MQTT 5 properties by identifier: how their values are encoded.
PROPERTY_SIZES = {}
PROPERTY_SIZES.update({i: 1 for i in (0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A)})
PROPERTY_SIZES.update({i: 2 for i in (0x13, 0x21, 0x22, 0x23)})
PROPERTY_SIZES.update({i: 4 for i in (0x02, 0x11, 0x18, 0x27)})
PROPERTY_SIZES.update({i: "varint" for i in (0x0B,)})
PROPERTY_SIZES.update({i: "bytes" for i in (0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F)})
PROPERTY_SIZES.update({0x26: "pair"})
PROPERTY_MAXIMUM_PACKET_SIZE, PROPERTY_RECEIVE_MAXIMUM = 0x27, 0x21


def broker_binary():
    path = os.environ.get(BINARY_VARIABLE) or os.path.join(REPO_ROOT, "build", "bin", "ringmq")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no broker executable at {path}: set {BINARY_VARIABLE}")
    return os.path.abspath(path)


def resident_kib(pid):
    """VmRSS of a process in KiB; 0 when unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# --------------------------------------------------------------------------
# MQTT packets, encoded by hand (the framing helpers are mqtt_wire's)


def encode_connect(version, client_id, username=None, keep_alive=60):
    """A clean-session CONNECT of protocol level 4 (3.1.1) or 5."""
    flags = 0x02 | (0x80 if username is not None else 0)
    body = mqtt_string("MQTT") + bytes([version, flags]) + struct.pack(">H", keep_alive)
    if version == 5:
        body += b"\x00"  # no properties
    body += mqtt_string(client_id)
    if username is not None:
        body += mqtt_string(username)
    return packet(0x10, body)


def encode_publish(topic, payload, v5, qos=0, packet_id=0, retain=False, dup=False):
    first = 0x30 | (0x08 if dup else 0) | qos << 1 | (0x01 if retain else 0)
    body = mqtt_string(topic) + (struct.pack(">H", packet_id) if qos else b"")
    return packet(first, body + (b"\x00" if v5 else b"") + payload)


def encode_subscribe(packet_id, filters, v5, qos=0):
    body = struct.pack(">H", packet_id) + (b"\x00" if v5 else b"")
    for topic_filter in filters:
        body += mqtt_string(topic_filter) + bytes([qos])
    return packet(0x82, body)


def encode_id_packet(first_byte, packet_id):
    """PUBACK, PUBREC, PUBREL (0x62) or PUBCOMP with reason Success (omitted, as 5.0 allows)."""
    return packet(first_byte, struct.pack(">H", packet_id))


PINGREQ = b"\xc0\x00"


def parse_properties(body, pos):
    """({identifier: value}, position after them) of the 5.0 properties at body[pos]."""
    length = decode_varint(body, pos, len(body))
    if length is None:
        raise AssertionError(f"malformed Property Length from the broker: {bytes(body[pos:pos + 5])!r}")
    pos, end = length[1], length[1] + length[0]
    values = {}
    while pos < end:
        ident = body[pos]
        pos += 1
        kind = PROPERTY_SIZES.get(ident)
        if kind is None:
            raise AssertionError(f"unknown property 0x{ident:02x} from the broker")
        if kind == "varint":
            value, pos = decode_varint(body, pos, end)
        elif kind == "bytes":
            size = struct.unpack(">H", body[pos:pos + 2])[0]
            value, pos = bytes(body[pos + 2:pos + 2 + size]), pos + 2 + size
        elif kind == "pair":
            key_size = struct.unpack(">H", body[pos:pos + 2])[0]
            key = bytes(body[pos + 2:pos + 2 + key_size])
            pos += 2 + key_size
            value_size = struct.unpack(">H", body[pos:pos + 2])[0]
            value, pos = (key, bytes(body[pos + 2:pos + 2 + value_size])), pos + 2 + value_size
        else:
            value, pos = int.from_bytes(body[pos:pos + kind], "big"), pos + kind
        values[ident] = value
    if pos != end:
        raise AssertionError("properties overrun their length")
    return values, end


class Publish(collections.namedtuple("Publish", "topic payload qos retain dup packet_id")):
    def text(self):
        return f"{self.topic}={self.payload.decode(errors='replace')}"


def decode_publish(flags, body, v5):
    size = struct.unpack(">H", body[:2])[0]
    topic, pos = bytes(body[2:2 + size]).decode(), 2 + size
    qos, packet_id = (flags >> 1) & 3, 0
    if qos:
        packet_id, pos = struct.unpack(">H", body[pos:pos + 2])[0], pos + 2
    if v5:
        pos = parse_properties(body, pos)[1]
    return Publish(topic, bytes(body[pos:]), qos, bool(flags & 1), bool(flags & 8), packet_id)


def decode_ack(body):
    """(packet id, reason code) of a PUBACK, PUBREC or PUBCOMP (no code: Success)."""
    return struct.unpack(">H", body[:2])[0], body[2] if len(body) > 2 else SUCCESS


def decode_suback(body, v5):
    pos = parse_properties(body, 2)[1] if v5 else 2
    return struct.unpack(">H", body[:2])[0], list(body[pos:])


class Closed(AssertionError):
    """The broker ended the connection where a packet was expected."""


# --------------------------------------------------------------------------
# An MQTT client over WebSocket, frame by frame


class WsMqtt:
    """MQTT over a WebSocket built from raw frames: masked binary frames out, the broker's
    unmasked frames (possibly fragmented, pings answered) parsed back into MQTT packets."""

    def __init__(self, port, version=5):
        self.version, self.v5 = version, version == 5
        self.sock = socket.create_connection((HOST, port), timeout=WAIT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(upgrade_request(key))
        answer = recv_until_header_end(self.sock, time.monotonic() + WAIT_S, WAIT_S)
        head, end, rest = answer.partition(b"\r\n\r\n")
        problem = check_upgrade_response(head + end, key) if end else "no complete answer"
        if problem:
            raise AssertionError(f"WebSocket upgrade: {problem}: {answer[:300]!r}")
        self.frames = bytearray(rest)   # server bytes not yet parsed as frames
        self.stream = bytearray()       # MQTT bytes of the binary messages
        self.closed = None              # how the connection ended, once it did
        self.received = []              # every MQTT packet, in order: (type, flags, body)
        self.pending = collections.deque()  # deliveries read while waiting for something else
        self.last_id = 0

    # ---- the WebSocket layer

    def send(self, data, frame_size=None, fragmented=False):
        """data as masked binary frames of frame_size bytes: several messages, or one fragmented."""
        size = frame_size or max(1, len(data))
        pieces = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
        frames = [encode_frame({"fin": not fragmented or i == len(pieces) - 1,
                                "opcode": 0x0 if fragmented and i else 0x2,
                                "masked": True, "key": os.urandom(4), "payload": piece})
                  for i, piece in enumerate(pieces)]
        self.sock.sendall(b"".join(frames))

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_some(self, deadline):
        """One read into the frame parser; False when nothing came before deadline."""
        left = deadline - time.monotonic()
        if left <= 0 or self.closed:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError as e:  # a reset, mostly
            self.closed = type(e).__name__
            return True
        if not chunk:
            self.closed = "eof"
            return True
        self.frames += chunk
        self.parse_frames()
        return True

    def parse_frames(self):
        while len(self.frames) >= 2:
            first, second = self.frames[0], self.frames[1]
            if second & 0x80:
                raise AssertionError("the broker sent a masked frame")
            length, header = second & 0x7F, 2
            if length == 126:
                if len(self.frames) < 4:
                    return
                length, header = struct.unpack(">H", self.frames[2:4])[0], 4
            elif length == 127:
                if len(self.frames) < 10:
                    return
                length, header = struct.unpack(">Q", self.frames[2:10])[0], 10
            if len(self.frames) < header + length:
                return
            payload = bytes(self.frames[header:header + length])
            del self.frames[:header + length]
            opcode = first & 0x0F
            if opcode in (0x0, 0x2):  # binary, or its continuation: MQTT is a byte stream
                self.stream += payload
            elif opcode == 0x9:
                try:
                    self.sock.sendall(encode_frame({"fin": True, "opcode": 0xA, "masked": True,
                                                    "key": os.urandom(4), "payload": payload}))
                except OSError:
                    pass
            elif opcode == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                self.closed = f"WebSocket close {code}"
                return
            elif opcode != 0xA:
                raise AssertionError(f"the broker sent a frame of opcode {opcode}")

    # ---- the MQTT layer

    def take_packet(self):
        """The first complete MQTT packet of the stream, or None."""
        if len(self.stream) < 2:
            return None
        length = decode_varint(self.stream, 1, len(self.stream))
        if length is None:
            if len(self.stream) >= 5:
                raise AssertionError("malformed Remaining Length from the broker: "
                                     f"{bytes(self.stream[:5])!r}")
            return None
        end = length[1] + length[0]
        if len(self.stream) < end:
            return None
        first, body = self.stream[0], bytes(self.stream[length[1]:end])
        del self.stream[:end]
        received = (first >> 4, first & 0x0F, body)
        self.received.append(received)
        return received

    def recv_packet(self, timeout=WAIT_S):
        """(type, flags, body) of the next packet; None after timeout; Closed if the broker closed."""
        deadline = time.monotonic() + timeout
        while True:
            received = self.take_packet()
            if received:
                return received
            if self.closed:
                raise Closed(f"the broker closed the connection ({self.closed})")
            if not self.read_some(deadline):
                return None

    def wait_closed(self, timeout=WAIT_S):
        """Seconds until the broker closed the connection, or None if it did not within timeout."""
        began, deadline = time.monotonic(), time.monotonic() + timeout
        while not self.closed and self.read_some(deadline):
            pass
        while self.take_packet():
            pass
        return time.monotonic() - began if self.closed else None

    def expect(self, kind, timeout=WAIT_S):
        """The body of the next packet of this type; deliveries before it are kept for next_message()."""
        deadline = time.monotonic() + timeout
        while True:
            received = self.recv_packet(max(0.0, deadline - time.monotonic()))
            if received is None:
                raise AssertionError(f"no {PACKET_NAMES[kind]} within {timeout} s")
            got, flags, body = received
            if got == kind:
                return flags, body
            if got != PUBLISH:
                raise AssertionError(f"{PACKET_NAMES.get(got, got)} while waiting for {PACKET_NAMES[kind]}")
            self.keep(decode_publish(flags, body, self.v5))

    def keep(self, message):
        if message.qos == 1:
            self.send(encode_id_packet(0x40, message.packet_id))
        self.pending.append(message)

    def new_id(self):
        self.last_id = self.last_id % 65535 + 1
        return self.last_id

    def connect(self, client_id, username=None):
        """CONNECT; the CONNACK's properties (5.0). Fails unless accepted."""
        self.send(encode_connect(self.version, client_id, username))
        _, body = self.expect(CONNACK)
        if body[1] != SUCCESS:
            raise AssertionError(f"CONNECT of {client_id!r} refused: 0x{body[1]:02x}")
        return parse_properties(body, 2)[0] if self.v5 else {}

    def subscribe(self, filters, qos=1):
        """SUBSCRIBE; the SUBACK's reason codes."""
        packet_id = self.new_id()
        self.send(encode_subscribe(packet_id, filters, self.v5, qos))
        acked, codes = decode_suback(self.expect(SUBACK)[1], self.v5)
        if acked != packet_id:
            raise AssertionError(f"SUBACK {acked} for SUBSCRIBE {packet_id}")
        return codes

    def publish(self, topic, payload, retain=False):
        """PUBLISH at QoS 1; the PUBACK's reason code."""
        packet_id = self.new_id()
        self.send(encode_publish(topic, payload, self.v5, qos=1, packet_id=packet_id, retain=retain))
        acked, code = decode_ack(self.expect(PUBACK)[1])
        if acked != packet_id:
            raise AssertionError(f"PUBACK {acked} for PUBLISH {packet_id}")
        return code

    def next_message(self, timeout=5.0):
        """"topic=payload" of the next delivery, "(nothing)" after timeout."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            received = self.recv_packet(max(0.0, deadline - time.monotonic()))
            if received is None:
                return "(nothing)"
            kind, flags, body = received
            if kind != PUBLISH:
                raise AssertionError(f"{PACKET_NAMES.get(kind, kind)} while waiting for a delivery")
            self.keep(decode_publish(flags, body, self.v5))
        return self.pending.popleft().text()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# The well-behaved client


class SteadyClient:
    """A Paho 3.1.1 client over TCP that keeps publishing QoS 1 messages to its own topic;
    each must be acknowledged and delivered back within MAX_ROUND_TRIP_S."""

    def __init__(self, port, username=None):
        tag = os.urandom(4).hex()
        self.topic = f"steady/{tag}"
        self.port = port
        self.client = mqtt.Client(client_id=f"steady-{tag}", clean_session=True,
                                  protocol=mqtt.MQTTv311, reconnect_on_failure=False)
        if username:
            self.client.username_pw_set(username)
        self.changed = threading.Condition()
        self.delivered = set()
        self.acked = set()
        self.round_trips = 0
        self.slowest = 0.0
        self.failure = None
        self.stopping = False
        self.subscribed = False
        self.connack = None
        self.thread = None
        self.client.on_connect = self.on_connect
        self.client.on_subscribe = self.on_subscribe
        self.client.on_message = self.on_message
        self.client.on_publish = self.on_publish
        self.client.on_disconnect = self.on_disconnect

    def on_connect(self, client, userdata, flags, rc):
        with self.changed:
            self.connack = rc
            self.changed.notify_all()

    def on_subscribe(self, client, userdata, mid, granted):
        with self.changed:
            self.subscribed = list(granted) == [1]
            self.changed.notify_all()

    def on_message(self, client, userdata, message):
        with self.changed:
            self.delivered.add(int(message.payload))
            self.changed.notify_all()

    def on_publish(self, client, userdata, mid):
        with self.changed:
            self.acked.add(mid)
            self.changed.notify_all()

    def on_disconnect(self, client, userdata, rc):
        with self.changed:
            if not self.stopping and self.failure is None:
                self.failure = f"the connection dropped (paho rc={rc})"
            self.changed.notify_all()

    def start(self):
        self.client.connect(HOST, self.port, keepalive=60)
        self.client.loop_start()
        with self.changed:
            if not self.changed.wait_for(lambda: self.connack is not None, WAIT_S) or self.connack != 0:
                raise AssertionError(f"steady client: CONNACK {self.connack}")
        self.client.subscribe(self.topic, qos=1)
        with self.changed:
            if not self.changed.wait_for(lambda: self.subscribed, WAIT_S):
                raise AssertionError("steady client: no SUBACK granting QoS 1")
        self.thread = threading.Thread(target=self.run, name="steady", daemon=True)
        self.thread.start()

    def run(self):
        number = 0
        while True:
            number += 1
            began = time.monotonic()
            mid = self.client.publish(self.topic, str(number).encode(), qos=1).mid
            with self.changed:
                back = self.changed.wait_for(
                    lambda: (number in self.delivered and mid in self.acked) or self.stopping
                    or self.failure is not None, MAX_ROUND_TRIP_S)
                if self.stopping or self.failure is not None:
                    return
                if not back:
                    self.failure = (f"message {number}: no " + ("delivery" if mid in self.acked else "PUBACK")
                                    + f" within {MAX_ROUND_TRIP_S} s")
                    self.changed.notify_all()
                    return
                self.round_trips += 1
                self.slowest = max(self.slowest, time.monotonic() - began)
                self.changed.notify_all()
                if self.changed.wait_for(lambda: self.stopping, STEADY_PAUSE_S):
                    return

    def wait_more(self, count, timeout=WAIT_S):
        """True when count more round trips than now complete within timeout."""
        with self.changed:
            target = self.round_trips + count
            return self.changed.wait_for(
                lambda: self.round_trips >= target or self.failure is not None, timeout) \
                and self.failure is None

    def stop(self):
        """None when every round trip came back in time, else what went wrong."""
        with self.changed:
            self.stopping = True
            self.changed.notify_all()
        if self.thread:
            self.thread.join(WAIT_S)
        self.client.disconnect()
        self.client.loop_stop()
        return self.failure


# --------------------------------------------------------------------------
# Tests


class BrokerOverWebSocket(unittest.TestCase):
    """A broker of its own per test, a steady client throughout, a clean stop at the end."""

    STEADY_USERNAME = None

    def settings(self):
        return ["mqtt.sys_interval_s=0"]

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="ringmq-ws-abuse-")
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
        self.broker = Broker(broker_binary(), self.workdir, self.settings(), node_id="ws-abuse")
        # Stops it if the test ended early (after tearDown: nothing left to do).
        self.addCleanup(lambda: self.broker.proc and self.broker.stop())
        self.broker.start()
        self.clients = []
        self.steady = SteadyClient(self.broker.ports["tcp"], self.STEADY_USERNAME)
        self.addCleanup(self.steady.stop)
        self.steady.start()
        self.assertTrue(self.steady.wait_more(3), f"steady client before the test: {self.steady.failure}")

    def tearDown(self):
        for client in self.clients:
            client.close()
        alive = self.broker.alive()
        more = alive and self.steady.wait_more(3)
        failure = self.steady.stop()
        print(f"\n  steady client: {self.steady.round_trips} QoS 1 round trips, slowest "
              f"{self.steady.slowest * 1000:.1f} ms", file=sys.stderr, end=" ")
        self.assertTrue(alive, f"the broker died ({describe_status(self.broker.proc.returncode)}):\n"
                        + self.broker.log_tail())
        self.assertIsNone(failure, "steady client over TCP:\n" + self.broker.log_tail())
        self.assertTrue(more, "steady client: no round trips after the test")
        status = self.broker.stop()
        self.assertEqual(status, 0, f"stop on SIGTERM: {describe_status(status)}:\n" + self.broker.log_tail())

    def ws(self, version=5):
        client = WsMqtt(self.broker.ports["ws"], version)
        self.clients.append(client)
        return client

    def log_says(self, text, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        while text not in self.broker.log_text():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)  # the log is a file: nothing to wait on
        return True


class MisbehavingOverWebSocket(BrokerOverWebSocket):
    """integration.BrokerMisbehaving's vulnerability classes, over WebSocket."""

    def settings(self):
        return super().settings() + [f"mqtt.max_packet_size={MAX_PACKET_SIZE}",
                                     f"mqtt.connect_timeout_ms={CONNECT_TIMEOUT_MS}",
                                     f"mqtt.max_inflight={RECEIVE_MAXIMUM}"]

    def stream_body(self, client, frames, size=4096):
        """Body bytes after an announced header, in frames; the broker may close before all are sent."""
        try:
            for _ in range(frames):
                client.send(b"x" * size)
        except OSError:
            pass  # refused already: reset or broken pipe

    def test_oversized_connect_is_refused_without_buffering_it(self):
        rss_before = resident_kib(self.broker.proc.pid)
        cases = [
            ("a CONNECT announcing 256 MiB - 1, its header in a frame of its own",
             lambda c: c.send(b"\x10\xff\xff\xff\x7f"), 16),
            ("a CONNECT announcing 2 MiB (twice mqtt.max_packet_size)",
             lambda c: c.send(b"\x10\x80\x80\x80\x01"), 16),
            # One frame announcing the whole 256 MiB: the frame layer must not wait for it either.
            ("one frame announcing 256 MiB, a CONNECT announcing as much at its start",
             lambda c: c.send_raw(b"\x82\xff" + struct.pack(">Q", 256 << 20) + b"\0\0\0\0"
                                  + b"\x10\xff\xff\xff\x7f"), 0),
        ]
        for name, announce, frames in cases:
            with self.subTest(name):
                client = self.ws()
                began = time.monotonic()
                announce(client)
                if frames:
                    self.stream_body(client, frames)
                else:
                    try:  # the rest of the one frame: mask 0 leaves it as it is
                        client.send_raw(b"x" * 65536)
                    except OSError:
                        pass
                self.assertIsNotNone(client.wait_closed(WAIT_S), "still open:\n" + self.broker.log_tail())
                took = time.monotonic() - began
                self.assertLess(took, CLOSE_WITHIN_S, f"closed after {took:.2f} s ({client.closed})")
                self.assertEqual(client.received, [], "the broker answered a CONNECT it cannot have read")

        with self.subTest("5.0: a PUBLISH announcing 256 MiB - 1 after a CONNECT"):
            client = self.ws(5)
            properties = client.connect("huge-publisher")
            self.assertEqual(properties.get(PROPERTY_MAXIMUM_PACKET_SIZE), MAX_PACKET_SIZE)
            began = time.monotonic()
            client.send(b"\x30\xff\xff\xff\x7f")
            self.assertIsNotNone(client.wait_closed(WAIT_S), "still open:\n" + self.broker.log_tail())
            self.assertLess(time.monotonic() - began, CLOSE_WITHIN_S)
            kind, _, body = client.received[-1]
            self.assertEqual((PACKET_NAMES.get(kind), body[:1]), ("DISCONNECT", bytes([PACKET_TOO_LARGE])))

        rss_after = resident_kib(self.broker.proc.pid)
        print(f"\n  resident memory {rss_before} KiB before, {rss_after} KiB after", file=sys.stderr, end=" ")
        if rss_before and rss_after:
            self.assertLess(rss_after, rss_before + 32 * 1024, "the broker reserved what was announced")
        self.assertTrue(self.steady.wait_more(1))

    def hoard(self, version):
        """A client that never releases its QoS 2 messages, up to the bound and one past it."""
        client = self.ws(version)
        properties = client.connect(f"qos2-hoarder-{version}")
        if version == 5:
            self.assertEqual(properties.get(PROPERTY_RECEIVE_MAXIMUM), RECEIVE_MAXIMUM)

        def publish(packet_id, dup=False):
            client.send(encode_publish(f"hoard/{packet_id}", b"never released", client.v5, qos=2,
                                       packet_id=packet_id, dup=dup))

        def pubrec_for(packet_id, what):
            packet_id_back, code = decode_ack(client.expect(PUBREC)[1])
            self.assertEqual(packet_id_back, packet_id, what)
            self.assertIn(code, (SUCCESS, NO_SUBSCRIBERS), what)  # nobody reads hoard/

        for packet_id in range(1, RECEIVE_MAXIMUM + 1):
            publish(packet_id)
            pubrec_for(packet_id, f"PUBLISH {packet_id}")
        for resend in range(5):  # the same message again: held once
            publish(1, dup=True)
            pubrec_for(1, f"retransmission {resend}")
        publish(RECEIVE_MAXIMUM + 1)
        took = client.wait_closed(WAIT_S)
        self.assertIsNotNone(took, f"{RECEIVE_MAXIMUM + 1} unreleased QoS 2 messages held:\n"
                             + self.broker.log_tail())
        self.assertLess(took, CLOSE_WITHIN_S)
        kinds = [PACKET_NAMES.get(kind) for kind, _, _ in client.received]
        if version == 5:
            self.assertEqual(kinds[-1], "DISCONNECT")
            self.assertEqual(client.received[-1][2][:1], bytes([RECEIVE_MAXIMUM_EXCEEDED]))
        else:
            self.assertNotIn("DISCONNECT", kinds, "3.1.1 has no DISCONNECT from the server")

    def release_all(self):
        """A client that releases each QoS 2 message: three times the bound, and it stays."""
        client = self.ws(5)
        client.connect("qos2-releaser")
        self.assertEqual(client.subscribe(["released/#"], qos=0), [0x00])
        count = 3 * RECEIVE_MAXIMUM
        for packet_id in range(1, count + 1):
            client.send(encode_publish(f"released/{packet_id}", str(packet_id).encode(), True, qos=2,
                                       packet_id=packet_id))
            self.assertEqual(decode_ack(client.expect(PUBREC)[1]), (packet_id, SUCCESS))
            client.send(encode_id_packet(0x62, packet_id))
            self.assertEqual(decode_ack(client.expect(PUBCOMP)[1]), (packet_id, SUCCESS))
        # Its PUBACK leaves after every delivery of the messages before it was queued.
        self.assertIn(client.publish("released-done", b""), (SUCCESS, NO_SUBSCRIBERS))
        delivered = sorted(int(m.payload) for m in client.pending)
        self.assertEqual(delivered, list(range(1, count + 1)), "each released message once")
        client.send(PINGREQ)
        self.assertEqual(client.expect(PINGRESP)[0], 0)

    def test_qos2_never_released_is_bounded_by_the_receive_maximum(self):
        for version in (4, 5):
            with self.subTest(version="3.1.1" if version == 4 else "5.0"):
                self.hoard(version)
        with self.subTest("released each time"):
            self.release_all()
        self.assertTrue(self.steady.wait_more(1))

    def test_retained_flood_with_hash_subscribers_keeps_others_served(self):
        retained, subscribers, per_message = 5_000, 3, 500
        publisher = self.ws(5)
        publisher.connect("retainer")
        for first in range(0, retained, per_message):
            data = b"".join(encode_publish(f"flood/{i}", f"r{i}".encode(), True, retain=True)
                            for i in range(first, first + per_message))
            # Every other message fragmented into frames that split packets.
            fragmented = first // per_message % 2 == 1
            publisher.send(data, frame_size=1000 if fragmented else None, fragmented=fragmented)
        # Every one is retained once a QoS 1 PUBLISH after them is acknowledged.
        self.assertIn(publisher.publish("flood-done", b""), (SUCCESS, NO_SUBSCRIBERS))

        clients = []
        for n in range(subscribers):
            client = self.ws(5)
            client.connect(f"everything-{n}")
            client.send(encode_subscribe(1, ["#"], True))
            clients.append(client)
        results = [None] * subscribers

        def receive_all(n):
            got, duplicates, wrong, client = set(), 0, 0, clients[n]
            try:
                while len(got) < retained:
                    received = client.recv_packet(WAIT_S)
                    if received is None:
                        break
                    kind, flags, body = received
                    if kind == SUBACK:
                        if decode_suback(body, True) != (1, [0x00]):
                            wrong += 1
                        continue
                    if kind != PUBLISH:
                        wrong += 1
                        continue
                    message = decode_publish(flags, body, True)
                    if message.retain and message.topic.startswith("flood/"):
                        index = int(message.topic[len("flood/"):])
                        duplicates += index in got
                        wrong += message.payload != f"r{index}".encode()
                        got.add(index)
            except AssertionError as e:
                wrong += 1
                print(f"\n  subscriber {n}: {e}", file=sys.stderr)
            results[n] = (len(got), duplicates, wrong)

        threads = [threading.Thread(target=receive_all, args=(n,)) for n in range(subscribers)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(f"\n  {subscribers} x {retained} retained messages received in "
              f"{time.monotonic() - began:.2f} s", file=sys.stderr, end=" ")
        for n, result in enumerate(results):
            self.assertEqual(result, (retained, 0, 0),
                             f"subscriber {n}: (distinct retained messages, duplicates, wrong packets)")
        self.assertTrue(self.steady.wait_more(1), f"steady client: {self.steady.failure}")

    def test_subscribe_storm_of_long_wildcard_filters_keeps_others_served(self):
        filters, wildcard_levels = 1_000, 98  # storm/<n>/ + 98 '+' + '#': 100 wildcard levels
        client = self.ws(5)
        client.connect("subscribe-storm")
        wildcards = "/+" * wildcard_levels
        storm = b"".join(encode_subscribe(i + 1, [f"storm/{i}{wildcards}/#"], True) for i in range(filters))
        began = time.monotonic()
        client.send(storm, frame_size=16 * 1024)  # packets split across frames
        granted = collections.Counter()
        while sum(granted.values()) < filters:
            packet_id, codes = decode_suback(client.expect(SUBACK, 20.0)[1], True)
            self.assertEqual(codes, [0x00], f"SUBACK {packet_id}")
            granted[packet_id] += 1
        print(f"\n  {filters} SUBACKs in {time.monotonic() - began:.2f} s", file=sys.stderr, end=" ")
        self.assertEqual(set(granted), set(range(1, filters + 1)))
        self.assertEqual(max(granted.values()), 1)

        shallow = "storm/123" + "/x" * (wildcard_levels - 1)  # one level short of any filter
        deep = "storm/123" + "/x" * wildcard_levels + "/end"
        client.send(encode_publish(shallow, b"shallow", True) + encode_publish(deep, b"deep", True))
        # A QoS 1 marker after them: its PUBACK leaves after every copy of them was queued here.
        self.assertIn(client.publish("storm-done", b""), (SUCCESS, NO_SUBSCRIBERS))
        matched = collections.Counter(m.payload.decode() for m in client.pending)
        self.assertEqual(matched, {"deep": 1}, "the deep topic matches one filter, the shallow one none")
        self.assertTrue(self.steady.wait_more(1), f"steady client: {self.steady.failure}")


ACL = (
    "# Clients without a user name.\n"
    "topic read public/#\n"
    "\n"
    "user admin\n"
    "topic readwrite #\n"
    "\n"
    "pattern readwrite devices/%c/#\n"
    "pattern read users/%u/#\n"
)


class AclOverWebSocket(BrokerOverWebSocket):
    """integration.AuthAcl's wildcard-in-client-id attack (and its user-name twin), over
    WebSocket: an ACL file and no password file, so user names are taken as given."""

    STEADY_USERNAME = "admin"  # the ACL lets anonymous clients only read public/#

    def settings(self):
        path = os.path.join(self.workdir, "acl")
        with open(path, "w") as f:
            f.write(ACL)
        return super().settings() + [f"auth.acl_file={path}"]

    def test_wildcards_in_the_client_id_do_not_widen_a_pattern(self):
        self.assertTrue(self.log_says("ACL file loaded: "), self.broker.log_tail())
        admin = self.ws(5)
        admin.connect("console", username="admin")
        self.assertEqual(admin.publish("devices/dev2/secret", b"retained key", retain=True), NO_SUBSCRIBERS)
        self.assertEqual(admin.publish("users/carol/mail", b"retained mail", retain=True), NO_SUBSCRIBERS)
        dev2 = self.ws(5)
        dev2.connect("dev2")
        self.assertEqual(dev2.subscribe(["devices/dev2/#"]), [GRANTED_QOS1])
        self.assertEqual(dev2.next_message(), "devices/dev2/secret=retained key")

        for version in (5, 4):
            refused = NOT_AUTHORIZED if version == 5 else V3_FAILURE
            for client_id in ("#", "+", "x/#", "dev2/#", "devices/+", "+/+"):
                with self.subTest(client_id=client_id, version=version):
                    attacker = self.ws(version)
                    attacker.connect(client_id)
                    self.assertEqual(attacker.subscribe(["devices/#", "devices/+/secret", "devices/dev2/#"]),
                                     [refused] * 3)
                    # 3.1.1 cannot refuse a PUBLISH: acknowledged and dropped.
                    self.assertEqual(attacker.publish("devices/dev2/cmd", b"unlock"),
                                     NOT_AUTHORIZED if version == 5 else SUCCESS)
                    # "#" is granted (public/# is readable) but delivers nothing of devices/.
                    self.assertEqual(attacker.subscribe(["#"]), [GRANTED_QOS1])
                    self.assertEqual(admin.publish("devices/dev2/secret", b"live key"), SUCCESS)
                    # Not devices/dev2/cmd=unlock first: the attacker's PUBLISH went nowhere.
                    self.assertEqual(dev2.next_message(), "devices/dev2/secret=live key")
                    self.assertEqual(admin.publish("public/sentinel", b"end"), SUCCESS)
                    self.assertEqual(attacker.next_message(), "public/sentinel=end")
                    attacker.close()

        # Topic lines before any "user" line are for clients without a user name: these
        # read their own devices/<client id>/ and nothing else.
        for username in ("#", "+", "carol/#"):
            with self.subTest(username=username):
                attacker = self.ws(5)
                client_id = f"reader-{len(self.clients)}"
                attacker.connect(client_id, username=username)
                self.assertEqual(attacker.subscribe(["users/#", "users/+/mail", "users/carol/#"]),
                                 [NOT_AUTHORIZED] * 3)
                self.assertEqual(attacker.subscribe(["#"]), [GRANTED_QOS1])
                self.assertEqual(admin.publish("users/carol/mail", b"live mail"), NO_SUBSCRIBERS)
                self.assertEqual(admin.publish(f"devices/{client_id}/sentinel", b"end"), SUCCESS)
                self.assertEqual(attacker.next_message(), f"devices/{client_id}/sentinel=end")
                attacker.close()


if __name__ == "__main__":
    unittest.main()
