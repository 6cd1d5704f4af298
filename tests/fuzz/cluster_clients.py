"""The real clients of the cluster the gRPC fuzzer runs, and the state they must find
intact at the end: deliveries, the persistent session, the retained value, the members."""

import collections
import time

from cluster_nodes import TARGET
from mqtt_client import MqttClient

PUBLISH_WAIT_S = 5.0         # a real publisher's PUBACK
READY_WAIT_S = 20.0          # n1 ready again at the end (its peers restate what the fake peer disturbed)
DELIVERY_WAIT_S = 10.0


class RealClients:
    """The cluster's real users: what they sent and were acknowledged, and what they got."""

    def __init__(self, cluster, ctx):
        self.cluster, self.ctx = cluster, ctx
        n1, n2 = cluster["n1"], cluster["n2"]
        self.sub1 = MqttClient(n1.ip, n1.mqtt_port, ctx.sub1, clean_start=True, session_expiry=3600)
        self.sub2 = MqttClient(n2.ip, n2.mqtt_port, ctx.sub2)
        self.pub1 = MqttClient(n2.ip, n2.mqtt_port, f"grpc-fuzz-pub1-{ctx.tag}")   # to sub1, on n2
        self.pub2 = MqttClient(n1.ip, n1.mqtt_port, f"grpc-fuzz-pub2-{ctx.tag}")   # to sub2, on n1
        self.retain = MqttClient(n1.ip, n1.mqtt_port, f"grpc-fuzz-retain-{ctx.tag}")
        self.probe = MqttClient(n1.ip, n1.mqtt_port, f"grpc-fuzz-probe-{ctx.tag}")
        self.victim = MqttClient(n1.ip, n1.mqtt_port, ctx.victim)
        self.sent = {"to-n1": [], "to-n2": []}   # numbers acknowledged
        self.refused = collections.Counter()
        self.retained_written = None
        self.retained_count = 0
        self.next_number = 0
        self.probe_number = 0

    def close(self):
        for c in self.all():
            c.closing = True
            c.close()

    def all(self):
        return [self.sub1, self.sub2, self.pub1, self.pub2, self.retain, self.probe, self.victim]

    def start(self):
        for c in self.all():
            c.connect()
        for client, topic_filter in ((self.sub1, self.ctx.to_n1 + "/+"), (self.sub2, self.ctx.to_n2 + "/+"),
                                     (self.probe, self.ctx.probe_topic)):
            codes = client.subscribe(topic_filter, qos=1)
            if codes != [1]:
                raise RuntimeError(f"{client.client_id}: SUBACK {codes}")
        self.write_retained()

    def publish(self, client, topic, payload, retain=False):
        """(reason code or None); a refusal is tried again a few times (the routes settle)."""
        code = None
        for attempt in range(5):
            code = client.publish(topic, str(payload).encode(), qos=1, retain=retain, wait_s=PUBLISH_WAIT_S)
            if code is None or code < 0x80:
                return code
            self.refused[f"{client.client_id.split('-')[2]} 0x{code:02x}"] += 1
            time.sleep(0.2)
        return code

    def traffic(self):
        """One QoS 1 message each way and the next retained value. Failures as text."""
        failures = []
        for name, client, topic in (("to-n1", self.pub1, self.ctx.to_n1), ("to-n2", self.pub2, self.ctx.to_n2)):
            self.next_number += 1
            code = self.publish(client, f"{topic}/m", self.next_number)
            if code is None:
                failures.append(f"a QoS 1 PUBLISH {name} got no PUBACK within {PUBLISH_WAIT_S:.0f} s "
                                f"({client.closed or 'connected'})")
            elif code < 0x80:
                self.sent[name].append(self.next_number)
        failure = self.write_retained()
        if failure:
            failures.append(failure)
        return failures

    def write_retained(self):
        self.retained_count += 1
        value = f"retained-{self.retained_count}"
        code = self.publish(self.retain, self.ctx.retained_topic, value, retain=True)
        if code is None:
            return f"a retained PUBLISH got no PUBACK within {PUBLISH_WAIT_S:.0f} s"
        if code < 0x80:
            self.retained_written = value
        return None

    def probe_round_trip(self, deadline_s):
        """(seconds or None, refusal code or None)."""
        self.probe_number += 1
        payload = f"probe-{self.probe_number}".encode()
        start = time.perf_counter()
        pid = self.probe.send_publish(self.ctx.probe_topic, payload)
        arrived = self.probe.wait(lambda c: any(m.payload == payload for m in c.messages)
                                  or (c.acks.get(pid) or 0) >= 0x80 or c.closed, deadline_s)
        refused = self.probe.puback(pid)
        if arrived:
            for m in reversed(self.probe.received()):
                if m.payload == payload:
                    return m.at - start, None
        return None, refused if refused and refused >= 0x80 else None

    def unexpected_closes(self):
        return [f"{c.client_id}: {c.closed}" for c in self.all() if c.closed and not c.closing]


def end_checks(cluster, ctx, clients, initial_view):
    """After the last batch: readiness, deliveries, the persistent session, retained, members."""
    failures = []
    target = cluster[TARGET]
    deadline = time.monotonic() + READY_WAIT_S
    while time.monotonic() < deadline and target.http_get("/readyz")[0] != 200:
        time.sleep(0.05)
    status, body = target.http_get("/readyz")
    if status != 200:
        failures.append(f"n1 not ready {READY_WAIT_S:.0f} s after the last job: {status} {body[:200]!r}")
    failures += check_deliveries(clients)
    failures += check_persistent_session(cluster, ctx, clients)
    failures += check_retained(cluster, ctx, clients)
    failures += check_members(cluster.nodes, initial_view)
    return failures


def numbers_received(client, prefix):
    out = []
    for m in client.received():
        if m.topic.startswith(prefix + "/"):
            try:
                out.append(int(m.payload))
            except ValueError:
                out.append(None)
    return out


def check_deliveries(clients):
    failures = []
    for name, sub, prefix in (("to-n1", clients.sub1, clients.ctx.to_n1), ("to-n2", clients.sub2, clients.ctx.to_n2)):
        wanted = set(clients.sent[name])
        sub.wait(lambda c: wanted <= set(numbers_received(c, prefix)), DELIVERY_WAIT_S)
        got = numbers_received(sub, prefix)
        missing = sorted(wanted - set(got))
        if missing:
            failures.append(f"{sub.client_id} lost {len(missing)} of {len(wanted)} acknowledged QoS 1 "
                            f"messages, e.g. {missing[:10]}")
        unexpected = [m.topic for m in sub.received() if not m.topic.startswith(prefix + "/")]
        extra = sorted(set(n for n in got if n not in wanted and n is not None))
        if unexpected or None in got:
            failures.append(f"{sub.client_id} got messages nobody sent it: {unexpected[:5]}")
        if extra:
            print(f"grpc_fuzz: {sub.client_id} also got {len(extra)} messages whose PUBACK was a refusal "
                  f"or was missed (a refused QoS 1 message may still be delivered): {extra[:10]}")
    return failures


def check_persistent_session(cluster, ctx, clients):
    """The persistent subscriber leaves, misses 20 messages, and gets them on its return."""
    failures = []
    sub = clients.sub1
    sub.disconnect()
    missed = []
    for _ in range(20):
        clients.next_number += 1
        code = clients.publish(clients.pub1, f"{ctx.to_n1}/m", clients.next_number)
        if code is None:
            failures.append("a QoS 1 PUBLISH for the offline subscriber got no PUBACK")
        elif code < 0x80:
            missed.append(clients.next_number)
    n1 = cluster["n1"]
    back = MqttClient(n1.ip, n1.mqtt_port, ctx.sub1, clean_start=False, session_expiry=3600)
    try:
        present = back.connect()
    except (OSError, RuntimeError) as e:
        return failures + [f"the persistent subscriber could not come back: {e}"]
    clients.sub1 = back
    if not present:
        failures.append("the persistent subscriber came back without its session (session present 0)")
    back.wait(lambda c: set(missed) <= set(numbers_received(c, ctx.to_n1)), DELIVERY_WAIT_S)
    lost = sorted(set(missed) - set(numbers_received(back, ctx.to_n1)))
    if lost:
        failures.append(f"the persistent subscriber lost {len(lost)} of the {len(missed)} messages "
                        f"queued while it was offline: {lost[:10]}")
    return failures


def check_retained(cluster, ctx, clients):
    """A new subscriber on every node gets the last retained value written (n1 at once, the
    others once replication caught up)."""
    failures = []
    wanted = clients.retained_written.encode()
    for node_id in ("n1", "n2", "n3"):
        node = cluster[node_id]
        deadline = time.monotonic() + (0.0 if node_id == "n1" else 5.0)
        got = None
        while True:
            reader = MqttClient(node.ip, node.mqtt_port, f"grpc-fuzz-read-{ctx.tag}-{node_id}")
            try:
                reader.connect()
                reader.subscribe(ctx.retained_topic, qos=1)
                reader.wait(lambda c: c.messages, 2.0)
                got = [m.payload for m in reader.received() if m.retain]
            finally:
                reader.disconnect()
            if got == [wanted] or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        if got != [wanted]:
            failures.append(f"the retained message on {node_id} is {got!r}, not the last one written "
                            f"({wanted!r})")
    return failures


def check_members(nodes, initial):
    """Every node of `nodes` (id -> Node) lists n1, n2 and n3 as at the start, with the same
    epoch: no member invented, none lost, no event added."""
    failures = []
    wanted = sorted((m["id"], m["incarnation"], m["address"]) for m in initial["members"])
    for node_id, node in nodes.items():
        view = node.cluster_view()
        if view is None:
            failures.append(f"{node_id}: /api/v1/cluster did not answer")
            continue
        got = sorted((m["id"], m["incarnation"], m["address"]) for m in view["members"])
        if got != wanted:
            failures.append(f"{node_id}'s members are {got}, not {wanted}")
        if view["epoch"] != initial["epoch"]:
            failures.append(f"{node_id}'s member set epoch is {view['epoch']}, not {initial['epoch']}")
    return failures

