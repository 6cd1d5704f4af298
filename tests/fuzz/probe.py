"""The wire fuzzer's probe: a well-behaved client that must keep getting its own QoS 1
messages back in time, a check that a listener still answers a new connection, and
percentiles of the round trips."""

import base64
import os
import socket
import threading
import time

import paho.mqtt.client as mqtt

from broker_process import HOST
from mqtt_wire import minimal_connect
from ws_client import check_upgrade_response, encode_frame, recv_until_header_end, upgrade_request

PROBE_DEADLINE_S = 0.1      # round trip of the probe's own QoS 1 message
PROBE_RETRY_AFTER_S = 1.0   # a hiccup (the machine busy elsewhere) passes in a second...
PROBE_RETRY_DEADLINE_S = 1.0  # ...a hang does not: the retry gets this long


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


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

