"""A Paho MQTT client that exercises every packet a client sends, for the codec
interoperability test (tests/integration/codec_interop_test.cpp).

Usage: /usr/bin/python3 paho_capture_client.py HOST PORT VERSION CLIENT_ID
  VERSION is 3.1, 3.1.1 or 5.

It connects (user name, password, Will, persistent session, keep-alive 1 s so
that a PINGREQ is sent), subscribes to three filters, publishes at QoS 0, 1 and
2, waits for the one message the capture server publishes after the PINGREQ,
unsubscribes from two filters and disconnects. In 5.0 every packet carries
properties. The values here are asserted by the C++ test: change both together.

Every wait is bounded; on failure the reason goes to stderr and the exit code is 1.
Run it with Debian's /usr/bin/python3 (python3-paho-mqtt 1.6), not a PATH python.
"""

import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCodes
from paho.mqtt.subscribeoptions import SubscribeOptions

WAIT_SECONDS = 10.0

USERNAME = "paho-user"
PASSWORD = "paho-pass"
WILL_TOPIC = "ringmq/paho/will"
WILL_PAYLOAD = "paho will payload"
FILTERS = ["ringmq/paho/+", "ringmq/paho/b/#", "$share/grp/ringmq/paho/c"]
PUBLISHES = [
    # topic, payload, qos, retain
    ("ringmq/paho/q0", b"payload at qos 0", 0, False),
    ("ringmq/paho/q1", b"payload at qos 1", 1, True),
    ("ringmq/paho/q2", b"\x00\x01\xfe\xff binary at qos 2", 2, False),
]


class Failure(Exception):
    pass


class Recorder:
    """Collects what the callbacks saw; the main loop waits on it."""

    def __init__(self):
        self.connected = None  # the CONNACK result
        self.subscribed = set()
        self.unsubscribed = set()
        self.published = set()
        self.messages = []
        self.disconnected = False


def wait_until(client, condition, what):
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise Failure("timed out after %.0f s waiting for %s" % (WAIT_SECONDS, what))
        rc = client.loop(timeout=0.05)
        if rc != mqtt.MQTT_ERR_SUCCESS and not condition():
            raise Failure("network loop failed (%s) while waiting for %s"
                          % (mqtt.error_string(rc), what))


def props(packet_type, **values):
    p = Properties(packet_type)
    for name, value in values.items():
        setattr(p, name, value)
    return p


def make_client(version, client_id, rec):
    kwargs = {}
    # paho-mqtt 2.x requires choosing a callback API; 1.6 (Debian 12) has none.
    if hasattr(mqtt, "CallbackAPIVersion"):
        kwargs["callback_api_version"] = mqtt.CallbackAPIVersion.VERSION1
    if version == mqtt.MQTTv5:
        client = mqtt.Client(client_id=client_id, protocol=version, **kwargs)
    else:
        client = mqtt.Client(client_id=client_id, clean_session=False, protocol=version, **kwargs)

    def on_connect(_client, _userdata, _flags, rc, *_props):
        rec.connected = rc

    def on_subscribe(_client, _userdata, mid, *_rest):
        rec.subscribed.add(mid)

    def on_unsubscribe(_client, _userdata, mid, *_rest):
        rec.unsubscribed.add(mid)

    def on_publish(_client, _userdata, mid):
        rec.published.add(mid)

    def on_message(_client, _userdata, message):
        rec.messages.append(message)

    def on_disconnect(_client, _userdata, *_rest):
        rec.disconnected = True

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_unsubscribe = on_unsubscribe
    client.on_publish = on_publish
    client.on_message = on_message
    client.on_disconnect = on_disconnect
    return client


def run(host, port, version, client_id):
    v5 = version == mqtt.MQTTv5
    rec = Recorder()
    client = make_client(version, client_id, rec)
    client.username_pw_set(USERNAME, PASSWORD)
    will_props = None
    if v5:
        will_props = props(PacketTypes.WILLMESSAGE,
                           WillDelayInterval=10,
                           MessageExpiryInterval=3600,
                           ContentType="text/plain",
                           ResponseTopic="ringmq/paho/will-reply",
                           CorrelationData=b"will-correlation",
                           PayloadFormatIndicator=1,
                           UserProperty=[("will-key", "will-value")])
    client.will_set(WILL_TOPIC, WILL_PAYLOAD, qos=2, retain=True, properties=will_props)

    # keepalive=1 makes Paho send a PINGREQ within about a second of quiet.
    if v5:
        connect_props = props(PacketTypes.CONNECT,
                              SessionExpiryInterval=300,
                              ReceiveMaximum=20,
                              MaximumPacketSize=1048576,
                              TopicAliasMaximum=5,
                              RequestResponseInformation=1,
                              RequestProblemInformation=0,
                              UserProperty=[("connect-key", "one"), ("connect-key", "two")])
        client.connect(host, port, keepalive=1, clean_start=False, properties=connect_props)
    else:
        client.connect(host, port, keepalive=1)
    wait_until(client, lambda: rec.connected is not None, "CONNACK")
    if rec.connected != 0:
        raise Failure("connection refused: %s" % rec.connected)

    if v5:
        topics = [
            (FILTERS[0], SubscribeOptions(qos=2, noLocal=True, retainAsPublished=True,
                                          retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)),
            (FILTERS[1], SubscribeOptions(qos=1,
                                          retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)),
            (FILTERS[2], SubscribeOptions(qos=0)),
        ]
        sub_props = props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7,
                          UserProperty=[("sub-key", "sub-value")])
        _, sub_mid = client.subscribe(topics, properties=sub_props)
    else:
        # 3.1 and 3.1.1 know no shared subscriptions: a plain filter instead.
        _, sub_mid = client.subscribe([(FILTERS[0], 2), (FILTERS[1], 1), ("ringmq/paho/c", 0)])
    wait_until(client, lambda: sub_mid in rec.subscribed, "SUBACK")

    mids = []
    for topic, payload, qos, retain in PUBLISHES:
        pub_props = None
        if v5 and qos == 0:
            pub_props = props(PacketTypes.PUBLISH, TopicAlias=2)
        elif v5 and qos == 1:
            pub_props = props(PacketTypes.PUBLISH,
                              PayloadFormatIndicator=1,
                              MessageExpiryInterval=60,
                              ContentType="application/octet-stream",
                              ResponseTopic="ringmq/paho/reply",
                              CorrelationData=b"\x01\x02correlation",
                              UserProperty=[("k1", "v1"), ("k2", "v2")])
        elif v5 and qos == 2:
            pub_props = props(PacketTypes.PUBLISH, UserProperty=[("only", "one")])
        mids.append(client.publish(topic, payload, qos=qos, retain=retain,
                                   properties=pub_props).mid)
    if v5:
        # The alias alone stands for the topic it was given just before.
        mids.append(client.publish("", b"payload by alias", qos=0,
                                   properties=props(PacketTypes.PUBLISH, TopicAlias=2)).mid)
    wait_until(client, lambda: all(m in rec.published for m in mids), "the publishes to complete")

    # The capture server sends its message after the keep-alive PINGREQ.
    wait_until(client, lambda: rec.messages, "the server's PUBLISH (sent after PINGREQ)")

    if v5:
        _, unsub_mid = client.unsubscribe(FILTERS[1:], properties=props(
            PacketTypes.UNSUBSCRIBE, UserProperty=[("unsub-key", "unsub-value")]))
    else:
        _, unsub_mid = client.unsubscribe([FILTERS[1], "ringmq/paho/c"])
    wait_until(client, lambda: unsub_mid in rec.unsubscribed, "UNSUBACK")

    if v5:
        client.disconnect(
            reasoncode=ReasonCodes(PacketTypes.DISCONNECT, "Disconnect with will message"),
            properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=60,
                             ReasonString="capture done", UserProperty=[("bye", "now")]))
    else:
        client.disconnect()
    wait_until(client, lambda: rec.disconnected, "the DISCONNECT to be sent")


def main(argv):
    if len(argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    host, port, version_name, client_id = argv[1], int(argv[2]), argv[3], argv[4]
    versions = {"3.1": mqtt.MQTTv31, "3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}
    if version_name not in versions:
        sys.stderr.write("unknown MQTT version %r; use 3.1, 3.1.1 or 5\n" % version_name)
        return 2
    try:
        run(host, port, versions[version_name], client_id)
    except (Failure, OSError, ValueError) as e:
        sys.stderr.write("paho_capture_client (%s): %s\n" % (version_name, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
