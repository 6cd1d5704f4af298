"""The wire fuzzer's seeds: the codec's corpus as broker input, and client sessions of
Paho (MQTT 3.1, 3.1.1, 5.0) captured through a recording proxy."""

import os
import queue
import select
import socket
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCodes
from paho.mqtt.subscribeoptions import SubscribeOptions

from broker_process import HOST
from mqtt_wire import PACKET_CONNECT, minimal_connect

CORPUS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


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

