"""The chaos harness's clients: real MQTT clients (Eclipse Paho, MQTT 3.1.1 and
5.0) that record every operation and its outcome in the history format of
checker.py. Each client runs in a thread of its own and drives its Paho
client's network loop itself, so that what it records happens in the order it
observed it. On a lost connection it reconnects to another node."""

import json
import logging
import os
import struct
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

KEEPALIVE_S = 2          # a dead or paused node is noticed within about 2 keep-alives
CONNACK_TIMEOUT_S = 3.0
SESSION_EXPIRY_S = 3600


class History:
    """The history file: one JSON line per operation, times from one clock."""

    def __init__(self, path):
        self.file = open(path, "w")
        self.lock = threading.Lock()
        self.start = time.monotonic()
        self.conns = 0
        self.delivered_at = self.start

    def now(self):
        return round((time.monotonic() - self.start) * 1000, 3)

    def next_conn(self):
        with self.lock:
            self.conns += 1
            return self.conns

    def record(self, op, **fields):
        with self.lock:
            fields["op"], fields["t"] = op, self.now()
            if op == "deliver":
                self.delivered_at = time.monotonic()
            self.file.write(json.dumps(fields) + "\n")

    def close(self):
        with self.lock:
            self.file.close()


class Recorder:
    """One connection at a time of one client id: connects, reconnects to
    another node when it loses its node, records what happens. pump() does a
    slice of work; subclasses add theirs in step()."""

    def __init__(self, client_id, history, nodes, rng, clean=False, v5=False, filters=()):
        self.client_id, self.history, self.nodes, self.rng = client_id, history, nodes, rng
        self.clean, self.v5, self.filters = clean, v5, list(filters)
        self.draining = False
        self.conn = None
        self.connected = False
        self.confirmed = set()  # filters the session is known to hold
        self.offline_until = 0.0
        self.node = None
        self.pending = {}       # paho mid -> payload id, QoS > 0 sends not yet acknowledged
        self.refused = {}       # paho mid -> reason code of a PUBACK/PUBREC that refused it
        self.requests = {}      # paho mid -> ("sub" | "unsub", filter, qos)
        self.client = self.make_client()

    # --- paho callbacks ----------------------------------------------------
    def make_client(self):
        if self.v5:
            c = mqtt.Client(client_id=self.client_id, protocol=mqtt.MQTTv5)
        else:
            c = mqtt.Client(client_id=self.client_id, clean_session=self.clean,
                            protocol=mqtt.MQTTv311)
        c.max_inflight_messages_set(20)
        if os.environ.get("CHAOS_PAHO_LOG"):
            # Every packet each client sends and receives, for looking into a violation.
            logging.basicConfig(filename=os.environ["CHAOS_PAHO_LOG"], level=logging.DEBUG,
                                format="%(relativeCreated)d %(name)s %(message)s")
            c.enable_logger(logging.getLogger(self.client_id))
        if self.v5:
            self.watch_refusals(c)
        c.on_connect = self.on_connect
        c.on_disconnect = self.on_disconnect
        c.on_message = self.on_message
        c.on_publish = self.on_publish
        c.on_subscribe = self.on_subscribe
        c.on_unsubscribe = self.on_unsubscribe
        return c

    def watch_refusals(self, c):
        """Paho 1.6 calls on_publish whatever the reason code of an MQTT 5
        PUBACK, and sends PUBREL after a PUBREC that refused the message: the
        refusals (reason code 0x80 or above) are taken from the packets, so a
        refused message is not recorded as acknowledged."""
        def refused(packet, length):
            if length > 2 and packet[2] >= 0x80:
                self.refused[struct.unpack("!H", packet[:2])[0]] = packet[2]

        handle_pubrec, handle_pubackcomp = c._handle_pubrec, c._handle_pubackcomp

        def on_pubrec():
            refused(c._in_packet["packet"], c._in_packet["remaining_length"])
            return handle_pubrec()

        def on_pubackcomp(cmd):
            if cmd == "PUBACK":
                refused(c._in_packet["packet"], c._in_packet["remaining_length"])
            return handle_pubackcomp(cmd)

        c._handle_pubrec, c._handle_pubackcomp = on_pubrec, on_pubackcomp

    def on_connect(self, client, userdata, flags, rc, properties=None):
        ok = (rc if isinstance(rc, int) else rc.value) == 0
        present = bool(flags.get("session present", 0))
        self.history.record("connect", client=self.client_id, conn=self.conn, node=self.node,
                            clean=self.clean, ok=ok, session_present=present, rc=str(rc))
        self.connected = ok
        if ok and not present:
            self.confirmed.clear()

    def on_disconnect(self, client, userdata, rc, properties=None):
        if self.connected:
            self.history.record("closed", client=self.client_id, conn=self.conn, rc=str(rc))
        self.connected = False
        # What was asked and not answered may or may not have been done.
        self.requests.clear()

    def on_message(self, client, userdata, message):
        self.history.record("deliver", client=self.client_id, conn=self.conn, topic=message.topic,
                            qos=message.qos, id=message.payload.decode(errors="replace"),
                            retain=bool(message.retain))

    def on_publish(self, client, userdata, mid):
        payload = self.pending.pop(mid, None)
        code = self.refused.pop(mid, None)
        if payload is None:
            return
        if code is None:
            self.history.record("ack", client=self.client_id, conn=self.conn, id=payload, ok=True)
        else:
            self.history.record("ack", client=self.client_id, conn=self.conn, id=payload, ok=False,
                                rc=f"0x{code:02X}")

    def on_subscribe(self, client, userdata, mid, granted, properties=None):
        _, filter_, qos = self.requests.pop(mid, (None, None, None))
        codes = [g if isinstance(g, int) else g.value for g in granted]
        if filter_ is not None and all(c < 0x80 for c in codes):
            self.history.record("subscribed", client=self.client_id, conn=self.conn,
                                filter=filter_, qos=min(qos, codes[0]))
            self.confirmed.add(filter_)

    def on_unsubscribe(self, client, userdata, mid, properties=None, reasons=None):
        _, filter_, _ = self.requests.pop(mid, (None, None, None))
        if filter_ is not None:
            self.history.record("unsubscribed", client=self.client_id, conn=self.conn, filter=filter_)
            self.confirmed.discard(filter_)

    # --- connection --------------------------------------------------------
    def connect(self, avoid=None):
        """Connects to a node other than the last one (or `avoid`); True at a CONNACK that accepts."""
        avoid = avoid or self.node
        choices = [i for i in range(len(self.nodes)) if f"n{i + 1}" != avoid] or list(range(len(self.nodes)))
        index = self.rng.choice(choices)
        self.node = f"n{index + 1}"
        host, port = self.nodes[index]
        self.conn = self.history.next_conn()
        try:
            if self.v5:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = 0 if self.clean else SESSION_EXPIRY_S
                self.client.connect(host, port, KEEPALIVE_S, clean_start=self.clean, properties=props)
            else:
                self.client.connect(host, port, KEEPALIVE_S)
        except OSError as error:
            self.history.record("connect", client=self.client_id, conn=self.conn, node=self.node,
                                clean=self.clean, ok=False, error=str(error))
            return False
        deadline = time.monotonic() + CONNACK_TIMEOUT_S
        while time.monotonic() < deadline and not self.connected:
            if self.client.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
        if not self.connected:
            self.client.disconnect()
            self.client.loop(0.01)
        return self.connected

    def go_offline(self, seconds):
        """Disconnects on purpose (a device that sleeps); back after `seconds`."""
        self.client.disconnect()
        while self.connected and self.client.loop(0.05) == mqtt.MQTT_ERR_SUCCESS:
            pass
        self.connected = False
        self.offline_until = time.monotonic() + seconds

    def pump(self, timeout=0.02):
        if not self.connected:
            if time.monotonic() < self.offline_until or not self.connect():
                time.sleep(0.1)
            return
        if self.client.loop(timeout) != mqtt.MQTT_ERR_SUCCESS:
            self.connected = False
            return
        if not self.connected:
            return
        if not self.requests:
            for filter_, qos in self.filters:
                if filter_ not in self.confirmed:
                    self.subscribe(filter_, qos)
        self.step()

    def subscribe(self, filter_, qos):
        self.history.record("subscribe", client=self.client_id, conn=self.conn, filter=filter_, qos=qos)
        rc, mid = self.client.subscribe(filter_, qos)
        if rc == mqtt.MQTT_ERR_SUCCESS:
            self.requests[mid] = ("sub", filter_, qos)

    def unsubscribe(self, filter_):
        rc, mid = self.client.unsubscribe(filter_)
        if rc == mqtt.MQTT_ERR_SUCCESS:
            self.requests[mid] = ("unsub", filter_, 0)

    def step(self):
        pass

    def close(self):
        if self.connected:
            self.client.disconnect()
            self.client.loop(0.05)


class Runner(threading.Thread):
    """Drives recorders in a thread until stopped."""

    def __init__(self, name, recorders):
        super().__init__(name=name, daemon=True)
        self.recorders = recorders
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            self.tick()
        for r in self.recorders:
            r.close()

    def tick(self):
        for r in self.recorders:
            r.pump()

    def set_draining(self):
        for r in self.recorders:
            r.draining = True

    def stop(self):
        self.stopping.set()
        self.join(10)


class Publisher(Recorder):
    """Sends numbered messages (payload "client:seq") at a steady pace on a few
    topics of its own, QoS from `qos_choices`, up to 20 unacknowledged."""

    def __init__(self, client_id, history, nodes, rng, qos_choices, retain=False, topics=3,
                 interval_s=0.03, **kw):
        super().__init__(client_id, history, nodes, rng, **kw)
        self.qos_choices, self.retain, self.topics = qos_choices, retain, topics
        self.interval_s = interval_s
        self.seq = 0
        self.next_at = 0.0

    def step(self):
        now = time.monotonic()
        if self.draining or now < self.next_at or len(self.pending) >= 20:
            return
        self.next_at = now + self.interval_s
        self.seq += 1
        payload = f"{self.client_id}:{self.seq}"
        base = "chaos/retained" if self.retain else f"chaos/{self.client_id}"
        topic = f"{base}/{self.seq % self.topics}"
        qos = self.rng.choice(self.qos_choices)
        self.history.record("send", client=self.client_id, conn=self.conn, topic=topic, qos=qos,
                            id=payload, seq=self.seq, retain=self.retain)
        info = self.client.publish(topic, payload, qos=qos, retain=self.retain)
        if qos > 0:
            self.pending[info.mid] = payload


class Subscriber(Recorder):
    """Records every delivery; a sleeper also goes offline now and then (its
    messages wait in its session meanwhile)."""

    def __init__(self, client_id, history, nodes, rng, sleeps=False, **kw):
        super().__init__(client_id, history, nodes, rng, **kw)
        self.sleeps = sleeps
        self.next_sleep = time.monotonic() + rng.uniform(3, 10)

    def step(self):
        if self.sleeps and not self.draining and time.monotonic() >= self.next_sleep:
            self.next_sleep = time.monotonic() + self.rng.uniform(5, 12)
            self.go_offline(self.rng.uniform(0.5, 4))


class Unsubscriber(Recorder):
    """Subscribes to and unsubscribes from one filter in turn: a message sent
    after an acknowledged unsubscribe must never arrive through it. A clean
    session, so that an unsubscribe whose answer was lost with its connection
    leaves no doubt: the next connection starts without subscriptions."""

    def __init__(self, client_id, history, nodes, rng, filter_):
        super().__init__(client_id, history, nodes, rng, clean=True)
        self.filter_ = filter_
        self.toggle_at = time.monotonic() + rng.uniform(1, 3)

    def step(self):
        now = time.monotonic()
        if self.draining or now < self.toggle_at or self.requests:
            return
        self.toggle_at = now + self.rng.uniform(1, 3)
        if self.filter_ in self.confirmed:
            self.unsubscribe(self.filter_)
        else:
            self.subscribe(self.filter_, 1)


class Twins(Runner):
    """Two devices with one client id taking the session from each other on
    different nodes: the older connection must be closed before the newer
    one's CONNACK, so nothing sent after that CONNACK may reach the older."""

    def __init__(self, client_id, history, nodes, rng, filters):
        self.active = Recorder(client_id, history, nodes, rng, filters=filters)
        self.idle = Recorder(client_id, history, nodes, rng, filters=filters)
        super().__init__(client_id, [self.active, self.idle])
        self.rng = rng
        self.switch_at = time.monotonic() + rng.uniform(2, 5)

    def tick(self):
        self.active.pump()
        if self.idle.connected and self.idle.client.loop(0.0) != mqtt.MQTT_ERR_SUCCESS:
            self.idle.connected = False
        if self.active.draining or time.monotonic() < self.switch_at or not self.active.connected:
            return
        self.switch_at = time.monotonic() + self.rng.uniform(2, 5)
        older, newer = self.active, self.idle
        if newer.connected or not newer.connect(avoid=older.node):
            return
        # The broker closes the older connection; it is read to its end.
        deadline = time.monotonic() + CONNACK_TIMEOUT_S
        while older.connected and time.monotonic() < deadline:
            if older.client.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
                older.connected = False
        if older.connected:
            older.close()
        older.confirmed = set(newer.confirmed)
        self.active, self.idle = newer, older


def read_retained(history, node, topics, timeout_s=3.0):
    """A final reader: what each topic holds retained (id null: nothing)."""
    found = {}
    done = threading.Event()
    c = mqtt.Client(client_id="retained-reader", clean_session=True)

    def on_message(client, userdata, message):
        if message.retain:
            found[message.topic] = message.payload.decode(errors="replace")

    c.on_message = on_message
    c.connect(node[0], node[1], 10)
    c.subscribe([(t, 1) for t in topics])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not done.is_set():
        c.loop(0.05)
        if len(found) == len(topics):
            break
    c.disconnect()
    for t in topics:
        history.record("retained", client="retained-reader", topic=t, id=found.get(t))
    return found
