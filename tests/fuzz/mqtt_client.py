"""A small MQTT 5 client over a plain TCP socket, for the fuzzers' own clients.

Paho (Debian's 1.6) does not tell a QoS 1 publisher the PUBACK's reason code,
and a cluster node may refuse a QoS 1 message with one (0x97, while the routes
of a peer are not settled): the fuzzers must tell a refusal from a loss. This
client encodes its packets by hand, reads on a thread of its own, acknowledges
the QoS 1 messages it receives, pings while idle, and records how its
connection ended. Every wait is bounded.
"""

import collections
import socket
import struct
import threading
import time

from mqtt_wire import decode_varint, mqtt_string, packet

CONNACK, PUBLISH, PUBACK, SUBACK, PINGRESP, DISCONNECT = 2, 3, 4, 9, 13, 14
PING_EVERY_S = 15.0


class Message(collections.namedtuple("Message", "topic payload qos retain at")):
    pass


class MqttClient:
    """One MQTT 5 connection. `session_expiry` > 0 with clean_start False keeps a session."""

    def __init__(self, host, port, client_id, clean_start=True, session_expiry=0, timeout=10.0):
        self.host, self.port, self.client_id = host, port, client_id
        self.clean_start, self.session_expiry, self.timeout = clean_start, session_expiry, timeout
        self.sock = None
        self.lock = threading.Condition()
        self.messages = []          # every PUBLISH received, in order
        self.acks = {}              # packet id -> PUBACK reason code
        self.subacks = {}           # packet id -> list of codes
        self.connack = None         # (session present, reason code)
        self.closed = None          # how the connection ended: "DISCONNECT 0x8e", "eof", ...
        self.closing = False
        self.next_id = 0
        self.reader = None
        self.last_sent = time.monotonic()

    # ---- connection

    def connect(self):
        """CONNECT and its CONNACK; returns session present. Raises when refused or silent."""
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        props = b""
        if self.session_expiry:
            props += b"\x11" + struct.pack(">I", self.session_expiry)
        props = bytes([len(props)]) + props  # short enough for a one-byte length
        body = (mqtt_string("MQTT") + bytes([5, 0x02 if self.clean_start else 0x00])
                + struct.pack(">H", 60) + props + mqtt_string(self.client_id))
        self.send(packet(0x10, body))
        self.reader = threading.Thread(target=self.read_loop, daemon=True,
                                       name=f"mqtt-{self.client_id}")
        self.reader.start()
        with self.lock:
            self.lock.wait_for(lambda: self.connack is not None or self.closed, self.timeout)
            connack, closed = self.connack, self.closed
        if connack is None:
            raise RuntimeError(f"{self.client_id}: no CONNACK ({closed or 'timeout'})")
        if connack[1] != 0:
            raise RuntimeError(f"{self.client_id}: CONNACK 0x{connack[1]:02x}")
        return connack[0]

    def disconnect(self):
        self.closing = True
        try:
            self.send(b"\xe0\x00")
        except OSError:
            pass
        self.close()

    def close(self):
        self.closing = True
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        if self.reader:
            self.reader.join(self.timeout)

    def send(self, data):
        with self.lock:
            self.last_sent = time.monotonic()
        self.sock.sendall(data)

    def packet_id(self):
        with self.lock:
            self.next_id = self.next_id % 65535 + 1
            return self.next_id

    # ---- requests

    def subscribe(self, topic_filter, qos=1):
        """SUBACK codes, or None when none came in time."""
        pid = self.packet_id()
        self.send(packet(0x82, struct.pack(">H", pid) + b"\x00" + mqtt_string(topic_filter) + bytes([qos])))
        with self.lock:
            self.lock.wait_for(lambda: pid in self.subacks or self.closed, self.timeout)
            return self.subacks.pop(pid, None)

    def publish(self, topic, payload, qos=1, retain=False, wait_s=None):
        """The PUBACK's reason code (0 for QoS 0), or None when none came within wait_s."""
        pid = self.packet_id() if qos else 0
        first = 0x30 | qos << 1 | (0x01 if retain else 0)
        body = mqtt_string(topic) + (struct.pack(">H", pid) if qos else b"") + b"\x00" + payload
        self.send(packet(first, body))
        if not qos:
            return 0
        with self.lock:
            self.lock.wait_for(lambda: pid in self.acks or self.closed,
                               self.timeout if wait_s is None else wait_s)
            return self.acks.pop(pid, None)

    def send_publish(self, topic, payload):
        """A QoS 1 PUBLISH whose PUBACK is looked up later with puback(); its packet id."""
        pid = self.packet_id()
        self.send(packet(0x32, mqtt_string(topic) + struct.pack(">H", pid) + b"\x00" + payload))
        return pid

    def puback(self, pid):
        with self.lock:
            return self.acks.get(pid)

    def wait(self, predicate, timeout):
        """Waits until predicate(self) holds (checked under the lock); its last value."""
        with self.lock:
            return self.lock.wait_for(lambda: predicate(self), timeout)

    def received(self):
        with self.lock:
            return list(self.messages)

    # ---- the reader

    def read_loop(self):
        buffer = bytearray()
        while True:
            try:
                self.sock.settimeout(1.0)
                chunk = self.sock.recv(65536)
            except socket.timeout:
                self.ping_if_idle()
                continue
            except OSError as e:
                self.ended(type(e).__name__)
                return
            if not chunk:
                self.ended("eof")
                return
            buffer += chunk
            while True:
                taken = self.take(buffer)
                if taken is None:
                    break
                if taken is False:
                    self.ended("malformed packet from the broker")
                    return
            self.ping_if_idle()

    def ping_if_idle(self):
        with self.lock:
            idle = time.monotonic() - self.last_sent > PING_EVERY_S
        if idle and not self.closing:
            try:
                self.send(b"\xc0\x00")
            except OSError:
                pass

    def ended(self, how):
        with self.lock:
            if self.closed is None:
                self.closed = how
            self.lock.notify_all()

    def take(self, buffer):
        """Handles the first complete packet of buffer: True, None (incomplete), False (malformed)."""
        if len(buffer) < 2:
            return None
        length = decode_varint(buffer, 1, len(buffer))
        if length is None:
            return False if len(buffer) >= 5 else None
        end = length[1] + length[0]
        if len(buffer) < end:
            return None
        kind, flags, body = buffer[0] >> 4, buffer[0] & 0x0F, bytes(buffer[length[1]:end])
        del buffer[:end]
        self.handle(kind, flags, body)
        return True

    def handle(self, kind, flags, body):
        if kind == PUBLISH:
            size = struct.unpack(">H", body[:2])[0]
            topic, pos = body[2:2 + size].decode(errors="replace"), 2 + size
            qos = (flags >> 1) & 3
            pid = 0
            if qos:
                pid, pos = struct.unpack(">H", body[pos:pos + 2])[0], pos + 2
            props = decode_varint(body, pos, len(body))
            pos = props[1] + props[0] if props else len(body)
            with self.lock:
                self.messages.append(Message(topic, body[pos:], qos, bool(flags & 1), time.perf_counter()))
                self.lock.notify_all()
            if qos == 1:
                try:
                    self.send(packet(0x40, struct.pack(">H", pid)))
                except OSError:
                    pass
        elif kind == PUBACK:
            pid = struct.unpack(">H", body[:2])[0]
            with self.lock:
                self.acks[pid] = body[2] if len(body) > 2 else 0
                self.lock.notify_all()
        elif kind == SUBACK:
            pid = struct.unpack(">H", body[:2])[0]
            props = decode_varint(body, 2, len(body))
            with self.lock:
                self.subacks[pid] = list(body[props[1] + props[0]:]) if props else []
                self.lock.notify_all()
        elif kind == CONNACK:
            with self.lock:
                self.connack = (bool(body[0] & 1), body[1])
                self.lock.notify_all()
        elif kind == DISCONNECT:
            self.ended(f"DISCONNECT 0x{body[0] if body else 0:02x}")
