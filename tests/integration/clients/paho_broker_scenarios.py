"""Paho MQTT scenarios against a running ringmq, for tests/integration/broker_paho_test.cpp.

Usage: /usr/bin/python3 paho_broker_scenarios.py PORT SCENARIO VERSION
  VERSION is 3.1.1 or 5; SCENARIO is one of:
  session_present   clean and persistent sessions report Session Present correctly,
                    and a persistent session keeps its subscriptions
  takeover          a second connection with the same client id closes the first
                    (5.0: with DISCONNECT 0x8E Session taken over)
  shared            $share/g/... with two members: each message reaches exactly one
                    member, and both members get some
  topic_alias       (5.0) PUBLISH with a Topic Alias, then with the alias alone
  message_expiry    (5.0) a queued message whose expiry passes while its subscriber is
                    offline is dropped; one that has not expired arrives with the
                    remaining interval (needs the broker's mqtt.sys_interval_s=1: the
                    wait follows the broker's $SYS/broker/uptime)
  subscription_ids  (5.0) Subscription Identifiers come back in PUBLISH properties

Every wait is bounded; on failure the reason goes to stderr and the exit code is 1.
Run it with Debian's /usr/bin/python3 (python3-paho-mqtt 1.6), not a PATH python.
"""

import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCodes
from paho.mqtt.subscribeoptions import SubscribeOptions

WAIT_SECONDS = 10.0
HOST = "127.0.0.1"


def _handle_disconnect(self):
    """A server DISCONNECT, read as MQTT 5.0 section 3.14.2 has it.

    Paho 1.6 reads the Reason Code only when the Remaining Length is above 2
    (eclipse-paho/paho.mqtt.python#860), so the valid short forms "E0 01 8E"
    and "E0 02 8E 00" (what mosquitto sends too) reach on_disconnect as a lost
    connection without their reason. This reads them; longer forms as before.
    """
    body = self._in_packet["packet"]
    reason = properties = None
    if len(body) >= 1:
        reason = ReasonCodes(mqtt.DISCONNECT >> 4)
        reason.unpack(body)
    if len(body) >= 2:
        properties = Properties(mqtt.DISCONNECT >> 4)
        properties.unpack(body[1:])
    self._loop_rc_handle(reason, properties)
    return mqtt.MQTT_ERR_SUCCESS


mqtt.Client._handle_disconnect = _handle_disconnect


class Failure(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failure(what)


class Conn:
    """One Paho client on its own network thread, without automatic reconnection,
    recording what its callbacks see; every wait has a deadline."""

    def __init__(self, port, client_id, v5, clean=True):
        self.port = port
        self.client_id = client_id
        self.v5 = v5
        self.cond = threading.Condition()
        self.connack = None  # (flags, rc, properties)
        self.disconnected = None  # (rc, properties) once the connection ended
        self.subacks = {}  # mid -> granted
        self.acked = set()  # mids of completed publishes
        self.messages = []  # paho MQTTMessage
        if v5:
            self.client = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)
        else:
            self.client = mqtt.Client(client_id=client_id, clean_session=clean,
                                      protocol=mqtt.MQTTv311)
        c = self.client
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_publish = self._on_publish
        c.on_message = self._on_message

    # Callbacks (network thread) -------------------------------------------
    def _on_connect(self, client, userdata, flags, rc, properties=None):
        with self.cond:
            self.connack = (flags, rc, properties)
            self.cond.notify_all()

    def _on_disconnect(self, client, userdata, rc, properties=None):
        # Disconnecting state stops Paho's loop from reconnecting by itself: a
        # reconnection would take the session back and hide what is tested.
        client.disconnect()
        with self.cond:
            self.disconnected = (rc, properties)
            self.cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        with self.cond:
            self.subacks[mid] = granted
            self.cond.notify_all()

    def _on_publish(self, client, userdata, mid):
        with self.cond:
            self.acked.add(mid)
            self.cond.notify_all()

    def _on_message(self, client, userdata, message):
        with self.cond:
            self.messages.append(message)
            self.cond.notify_all()

    # Test side ----------------------------------------------------------------
    def wait(self, condition, what, seconds=WAIT_SECONDS):
        with self.cond:
            if not self.cond.wait_for(condition, timeout=seconds):
                raise Failure("%s: timed out waiting for %s" % (self.client_id, what))

    def connect(self, clean_start=True, session_expiry=None):
        kwargs = {}
        if self.v5:
            kwargs["clean_start"] = clean_start
            if session_expiry is not None:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = session_expiry
                kwargs["properties"] = props
        self.client.connect(HOST, self.port, keepalive=30, **kwargs)
        self.client.loop_start()
        self.wait(lambda: self.connack is not None or self.disconnected is not None,
                  "CONNACK")
        flags, rc, props = self.connack
        check(rc == 0, "%s: CONNECT refused: %s" % (self.client_id, rc))
        return flags["session present"] == 1, props

    def subscribe(self, topic, qos=1, subscription_id=None):
        kwargs = {}
        if self.v5:
            options = SubscribeOptions(qos=qos)
            if subscription_id is not None:
                props = Properties(PacketTypes.SUBSCRIBE)
                props.SubscriptionIdentifier = subscription_id
                kwargs["properties"] = props
            rc, mid = self.client.subscribe(topic, options=options, **kwargs)
        else:
            rc, mid = self.client.subscribe(topic, qos)
        check(rc == mqtt.MQTT_ERR_SUCCESS, "subscribe %s: %s" % (topic, rc))
        self.wait(lambda: mid in self.subacks, "SUBACK for " + topic)
        granted = self.subacks[mid][0]
        code = granted.value if hasattr(granted, "value") else granted
        check(code == qos, "subscribe %s: granted %s, wanted QoS %d" % (topic, granted, qos))

    def publish(self, topic, payload, qos=1, retain=False, properties=None):
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        check(info.rc == mqtt.MQTT_ERR_SUCCESS, "publish %s: %s" % (topic, info.rc))
        if qos > 0:
            self.wait(lambda: info.mid in self.acked or self.disconnected is not None,
                      "acknowledgement of " + topic)
            check(info.mid in self.acked, "%s: connection lost while publishing %s"
                  % (self.client_id, topic))

    def wait_messages(self, count, what="messages"):
        self.wait(lambda: len(self.messages) >= count, "%d %s (have %d)"
                  % (count, what, len(self.messages)))

    def wait_payload(self, payload):
        self.wait(lambda: any(m.payload == payload for m in self.messages),
                  "message %r" % payload)

    def payloads(self):
        with self.cond:
            return [m.payload for m in self.messages]

    def wait_disconnected(self):
        self.wait(lambda: self.disconnected is not None, "the connection to end")
        return self.disconnected

    def disconnect(self):
        """A normal DISCONNECT, then waits for the broker to close the connection.

        Paho closes its socket as soon as DISCONNECT is written, so a next
        connection with the same client id may reach the broker before the
        DISCONNECT is processed, and take the session over instead of finding
        it closed (or ended). Waiting for the broker's close orders the two.
        The two bytes go out in one send(), so they cannot interleave with a
        packet written by Paho's network thread.
        """
        self.client.socket().send(b"\xe0\x00")
        self.wait_disconnected()
        self.client.loop_stop()

    def stop(self):
        """Ends the network thread of a connection that is already closed."""
        self.client.loop_stop()


def publish_props(**values):
    props = Properties(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(props, name, value)
    return props


# Scenarios -----------------------------------------------------------------------


def session_present(port, v5):
    tag = "5" if v5 else "311"
    cid = "paho-persistent-" + tag
    topic = "paho/session/" + tag

    # A clean session never finds one.
    c = Conn(port, "paho-clean-" + tag, v5, clean=True)
    present, _ = c.connect(clean_start=True)
    check(not present, "clean session: Session Present set")
    c.disconnect()

    # The first persistent connection finds none, the second one does.
    c = Conn(port, cid, v5, clean=False)
    present, _ = c.connect(clean_start=False, session_expiry=300)
    check(not present, "first persistent connection: Session Present set")
    c.subscribe(topic, qos=1)
    c.disconnect()

    c = Conn(port, cid, v5, clean=False)
    present, _ = c.connect(clean_start=False, session_expiry=300)
    check(present, "second persistent connection: Session Present not set")
    # The subscription survived: no SUBSCRIBE this time.
    p = Conn(port, "paho-publisher-" + tag, v5)
    p.connect()
    p.publish(topic, b"still subscribed", qos=1)
    c.wait_payload(b"still subscribed")
    c.disconnect()

    # A clean connection discards it ...
    c = Conn(port, cid, v5, clean=True)
    present, _ = c.connect(clean_start=True, session_expiry=300 if v5 else None)
    check(not present, "clean reconnection: Session Present set")
    c.disconnect()
    # ... (5.0: that one persisted, with its expiry of 300 s) ...
    if v5:
        c = Conn(port, cid, v5)
        present, _ = c.connect(clean_start=False, session_expiry=0)
        check(present, "5.0 session with expiry 300 s: Session Present not set")
        c.disconnect()
        # ... and a session with expiry 0 ended at that disconnection.
        c = Conn(port, cid, v5)
        present, _ = c.connect(clean_start=False, session_expiry=0)
        check(not present, "5.0 session with expiry 0: Session Present set after disconnect")
        c.disconnect()
    p.disconnect()


def takeover(port, v5):
    tag = "5" if v5 else "311"
    cid = "paho-takeover-" + tag
    first = Conn(port, cid, v5, clean=False)
    first.connect(clean_start=False, session_expiry=300)
    first.subscribe("paho/takeover/" + tag, qos=1)

    second = Conn(port, cid, v5, clean=False)
    present, _ = second.connect(clean_start=False, session_expiry=300)
    check(present, "takeover: the second connection did not resume the session")
    rc, _ = first.wait_disconnected()
    first.stop()
    if v5:
        code = rc.value if hasattr(rc, "value") else rc
        check(code == 0x8E, "takeover: first connection got reason %s, wanted 0x8E" % rc)
    else:
        check(rc != 0, "takeover: first connection ended normally (rc 0)")

    # The second connection owns the session, subscription included.
    p = Conn(port, "paho-takeover-pub-" + tag, v5)
    p.connect()
    p.publish("paho/takeover/" + tag, b"to the new owner", qos=1)
    second.wait_payload(b"to the new owner")
    check(b"to the new owner" not in first.payloads(), "takeover: old connection got a message")
    second.disconnect()
    p.disconnect()


def shared(port, v5):
    tag = "5" if v5 else "311"
    topic = "paho/shared/" + tag
    sentinel = "paho/shared-sentinel/" + tag
    members = [Conn(port, "paho-member-%s-%d" % (tag, i), v5) for i in (1, 2)]
    for m in members:
        m.connect()
        m.subscribe("$share/g/" + topic, qos=1)
        m.subscribe(sentinel, qos=1)
    p = Conn(port, "paho-shared-pub-" + tag, v5)
    p.connect()
    count = 40
    sent = [("m%02d" % i).encode() for i in range(count)]
    for payload in sent:
        p.publish(topic, payload, qos=1)
    # Every message published before the sentinel is queued to its member
    # before the sentinel, so once both have the sentinel nothing else is due.
    p.publish(sentinel, b"sentinel", qos=1)
    for m in members:
        m.wait_payload(b"sentinel")
    got = [[x for x in m.payloads() if x != b"sentinel"] for m in members]
    together = sorted(got[0] + got[1])
    check(together == sorted(sent),
          "shared: messages lost or duplicated: member 1 got %s, member 2 got %s" % tuple(got))
    check(got[0] and got[1], "shared: one member got every message: %s" % (got,))
    for m in members:
        m.disconnect()
    p.disconnect()


def topic_alias(port, v5):
    check(v5, "topic aliases are MQTT 5.0 only")
    sub = Conn(port, "paho-alias-sub", True)
    sub.connect()
    sub.subscribe("paho/alias/#", qos=1)
    pub = Conn(port, "paho-alias-pub", True)
    _, props = pub.connect()
    maximum = getattr(props, "TopicAliasMaximum", 0)
    check(maximum >= 2, "CONNACK Topic Alias Maximum is %s" % maximum)

    pub.publish("paho/alias/a", b"sets alias 1", qos=1, properties=publish_props(TopicAlias=1))
    pub.publish("", b"alias 1 alone", qos=1, properties=publish_props(TopicAlias=1))
    pub.publish("paho/alias/b", b"sets alias 2", qos=0, properties=publish_props(TopicAlias=2))
    pub.publish("", b"alias 2 alone", qos=1, properties=publish_props(TopicAlias=2))
    # An alias can be pointed at another topic.
    pub.publish("paho/alias/c", b"moves alias 1", qos=1, properties=publish_props(TopicAlias=1))
    pub.publish("", b"alias 1 moved", qos=1, properties=publish_props(TopicAlias=1))
    sub.wait_messages(6)
    got = [(m.topic, m.payload) for m in sub.messages]
    want = [("paho/alias/a", b"sets alias 1"), ("paho/alias/a", b"alias 1 alone"),
            ("paho/alias/b", b"sets alias 2"), ("paho/alias/b", b"alias 2 alone"),
            ("paho/alias/c", b"moves alias 1"), ("paho/alias/c", b"alias 1 moved")]
    check(got == want, "topic alias: got %s" % got)

    # An alias above the maximum: DISCONNECT 0x94 Topic Alias invalid.
    pub.client.publish("paho/alias/x", b"bad alias", qos=1,
                       properties=publish_props(TopicAlias=maximum + 1))
    rc, _ = pub.wait_disconnected()
    pub.stop()
    code = rc.value if hasattr(rc, "value") else rc
    check(code == 0x94, "alias above the maximum: reason %s, wanted 0x94" % rc)
    sub.disconnect()


def broker_uptime(watcher):
    """The latest $SYS/broker/uptime in seconds ("12 seconds")."""
    for m in reversed(watcher.messages):
        if m.topic == "$SYS/broker/uptime":
            return int(m.payload.split()[0])
    return None


def message_expiry(port, v5):
    check(v5, "message expiry is MQTT 5.0 only")
    watcher = Conn(port, "paho-expiry-clock", True)
    watcher.connect()
    watcher.subscribe("$SYS/broker/uptime", qos=0)
    watcher.wait(lambda: broker_uptime(watcher) is not None, "$SYS/broker/uptime")

    sub = Conn(port, "paho-expiry-sub", True)
    sub.connect(clean_start=True, session_expiry=300)
    sub.subscribe("paho/expiry/t", qos=1)
    sub.disconnect()

    pub = Conn(port, "paho-expiry-pub", True)
    pub.connect()
    pub.publish("paho/expiry/t", b"expires in 1 s", qos=1,
                properties=publish_props(MessageExpiryInterval=1))
    pub.publish("paho/expiry/t", b"expires in 60 s", qos=1,
                properties=publish_props(MessageExpiryInterval=60))
    pub.publish("paho/expiry/t", b"never expires", qos=1)
    # Wait on the broker's own clock: its uptime must move on by 3 whole
    # seconds, so more than 2 s have passed since the publish.
    with watcher.cond:
        start = broker_uptime(watcher)
    watcher.wait(lambda: broker_uptime(watcher) >= start + 3, "3 s of broker uptime",
                 seconds=WAIT_SECONDS)
    watcher.disconnect()
    pub.publish("paho/expiry/t", b"sentinel", qos=1)

    sub = Conn(port, "paho-expiry-sub", True)
    present, _ = sub.connect(clean_start=False, session_expiry=300)
    check(present, "expiry: the persistent session is gone")
    sub.wait_payload(b"sentinel")
    got = [m.payload for m in sub.messages]
    check(got == [b"expires in 60 s", b"never expires", b"sentinel"],
          "expiry: got %s" % got)
    left = getattr(sub.messages[0].properties, "MessageExpiryInterval", None)
    check(left is not None and 50 <= left <= 58,
          "expiry: forwarded Message Expiry Interval is %s, wanted 60 minus the time queued"
          % left)
    check(not hasattr(sub.messages[1].properties, "MessageExpiryInterval"),
          "expiry: a message without expiry got one")
    sub.disconnect()
    pub.disconnect()


def subscription_ids(port, v5):
    check(v5, "subscription identifiers are MQTT 5.0 only")
    p = Conn(port, "paho-sid-pub", True)
    p.connect()
    p.publish("paho/sid/a/r", b"retained", qos=1, retain=True)

    sub = Conn(port, "paho-sid-sub", True)
    sub.connect()
    sub.subscribe("paho/sid/a/#", qos=1, subscription_id=11)
    sub.subscribe("paho/sid/+/x", qos=1, subscription_id=22)
    sub.subscribe("paho/sid/plain", qos=1)
    sub.wait_payload(b"retained")

    for topic in ("paho/sid/a/y", "paho/sid/b/x", "paho/sid/a/x", "paho/sid/plain"):
        p.publish(topic, topic.encode(), qos=1)
    sub.wait_payload(b"paho/sid/plain")

    ids = {}
    for m in sub.messages:
        ids.setdefault(m.payload, set()).update(
            getattr(m.properties, "SubscriptionIdentifier", []) or [])
    want = {b"retained": {11}, b"paho/sid/a/y": {11}, b"paho/sid/b/x": {22},
            b"paho/sid/a/x": {11, 22}, b"paho/sid/plain": set()}
    check(ids == want, "subscription identifiers: got %s, wanted %s" % (ids, want))
    sub.disconnect()
    p.disconnect()


SCENARIOS = {
    "session_present": session_present,
    "takeover": takeover,
    "shared": shared,
    "topic_alias": topic_alias,
    "message_expiry": message_expiry,
    "subscription_ids": subscription_ids,
}


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in SCENARIOS or sys.argv[3] not in ("3.1.1", "5"):
        print(__doc__, file=sys.stderr)
        return 2
    port = int(sys.argv[1])
    try:
        SCENARIOS[sys.argv[2]](port, sys.argv[3] == "5")
    except Failure as e:
        print("FAILED: %s" % e, file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
