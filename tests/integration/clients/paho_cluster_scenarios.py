"""Paho MQTT scenarios against a ringmq cluster, for tests/cluster/cluster_clients_test.cpp.

Usage: /usr/bin/python3 paho_cluster_scenarios.py SCENARIO VERSION HOST:PORT HOST:PORT [HOST:PORT]
  VERSION is 3.1.1 or 5; the addresses are MQTT listeners of different nodes.
  cross_node  a subscriber on the second node receives what a publisher on the first
              sends at QoS 0, 1 and 2, at its QoS, with its 5.0 properties
  shared      $share/g/... with members on the second and third nodes and a publisher
              on the first: each message reaches exactly one member, every member some
  takeover    a client id connected on the first node connects on the second: the first
              connection is closed (5.0: DISCONNECT 0x8E Session taken over)
  leaving     a persistent 5.0 client on the first node prints "connected" and waits for
              that node to leave the cluster: DISCONNECT 0x9C Use another server with the
              Server Reference given as the last argument (0x8B when it is "-"); then it
              connects to the second node and finds its session

Every wait is bounded; on failure the reason goes to stderr and the exit code is 1.
"""

import sys

import paho_broker_scenarios as base
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

check = base.check


class Node(base.Conn):
    """A base.Conn to one node of the cluster."""

    def __init__(self, address, client_id, v5):
        host, port = address.rsplit(":", 1)
        super().__init__(int(port), client_id, v5)
        self.host = host

    def connect(self, clean_start=True, session_expiry=None):
        base.HOST = self.host
        return super().connect(clean_start, session_expiry)


def cross_node(v5, a, b):
    sub = Node(b, "paho-cluster-sub", v5)
    pub = Node(a, "paho-cluster-pub", v5)
    sub.connect()
    pub.connect()
    sub.subscribe("paho/+/x", qos=2)
    for qos in (0, 1, 2):
        props = None
        if v5:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = [("site", "plant-7"), ("qos", str(qos))]
            props.ContentType = "text/plain"
            props.ResponseTopic = "reply/paho"
            props.CorrelationData = b"\x01\x02"
        pub.publish("paho/%d/x" % qos, b"q%d" % qos, qos=qos, properties=props)
    sub.wait_messages(3)
    by_payload = {m.payload: m for m in sub.messages}
    for qos in (0, 1, 2):
        m = by_payload.get(b"q%d" % qos)
        check(m is not None, "message at qos %d missing: %r" % (qos, sub.payloads()))
        check(m.qos == qos, "qos %d arrived at qos %d" % (qos, m.qos))
        check(m.topic == "paho/%d/x" % qos, "topic %s" % m.topic)
        if v5:
            p = m.properties
            check(p.UserProperty == [("site", "plant-7"), ("qos", str(qos))],
                  "user properties %r" % (p.UserProperty,))
            check(p.ContentType == "text/plain", "content type %r" % p.ContentType)
            check(p.ResponseTopic == "reply/paho", "response topic %r" % p.ResponseTopic)
            check(p.CorrelationData == b"\x01\x02", "correlation data %r" % p.CorrelationData)


def shared(v5, a, b, c):
    members = [Node(b, "paho-worker-b", v5), Node(c, "paho-worker-c", v5)]
    # One condition for both, so that waiting for their total wakes on either.
    members[1].cond = members[0].cond
    for m in members:
        m.connect()
        m.subscribe("$share/paho/jobs/#", qos=1)
    pub = Node(a, "paho-jobs", v5)
    pub.connect()
    count = 60
    for i in range(count):
        pub.publish("jobs/%d" % i, b"job-%d" % i, qos=1)
    members[0].wait(lambda: len(members[0].messages) + len(members[1].messages) >= count,
                    "%d jobs over both members" % count)
    got = members[0].payloads() + members[1].payloads()
    check(sorted(got) == sorted(b"job-%d" % i for i in range(count)),
          "each job exactly once: %d deliveries" % len(got))
    check(members[0].messages and members[1].messages, "both nodes' members get jobs")


def takeover(v5, a, b):
    first = Node(a, "paho-mover", v5)
    first.connect()
    second = Node(b, "paho-mover", v5)
    second.connect()
    rc, _ = first.wait_disconnected()
    if v5:
        code = rc.value if hasattr(rc, "value") else rc
        check(code == 0x8E, "the first connection ended with %r, not 0x8E" % (rc,))
    second.subscribe("mover/#", qos=1)


def leaving(v5, a, b, reference):
    check(v5, "leaving is a 5.0 scenario")
    client = Node(a, "paho-leaver", v5)
    client.connect(clean_start=False, session_expiry=600)
    client.subscribe("leaver/#", qos=1)
    print("connected", flush=True)
    client.wait(lambda: client.disconnected is not None, "the leaving node to disconnect",
                seconds=90)
    rc, props = client.disconnected
    code = rc.value if hasattr(rc, "value") else rc
    if reference == "-":
        check(code == 0x8B, "the leaving node closed with %r, not 0x8B" % (rc,))
    else:
        check(code == 0x9C, "the leaving node closed with %r, not 0x9C" % (rc,))
        got = getattr(props, "ServerReference", None) if props else None
        check(got == reference, "Server Reference %r, not %r" % (got, reference))
    again = Node(b, "paho-leaver", v5)
    present, _ = again.connect(clean_start=False, session_expiry=600)
    check(present, "the session was not found on another node")


def main():
    scenario, version = sys.argv[1], sys.argv[2]
    addresses = sys.argv[3:]
    v5 = version == "5"
    try:
        {"cross_node": cross_node, "shared": shared, "takeover": takeover,
         "leaving": leaving}[scenario](v5, *addresses)
    except base.Failure as e:
        print("FAILED: %s" % e, file=sys.stderr)
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
