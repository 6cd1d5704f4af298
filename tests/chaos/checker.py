#!/usr/bin/python3
"""Checks a recorded history of MQTT operations against ringmq's promises.

Independent of the broker's code on purpose: it knows MQTT's rules, not how
ringmq implements them, so a bug shared by the broker and its own tests cannot
hide here. The history is JSON lines, one operation each, as the chaos
harness's clients record them (times in milliseconds of one clock):

  {"op": "connect", "client": "s1", "conn": 3, "node": "n2", "clean": false,
   "t": 10.0, "ok": true, "session_present": true}
  {"op": "closed", "client": "s1", "conn": 3, "t": 55.1}
  {"op": "subscribe", "client": "s1", "conn": 3, "filter": "a/#", "qos": 1, "t": 10.5}
  {"op": "subscribed", "client": "s1", "conn": 3, "filter": "a/#", "qos": 1, "t": 11.0}
  {"op": "unsubscribed", "client": "s1", "conn": 3, "filter": "a/#", "t": 40.0}
  {"op": "send", "client": "p1", "conn": 7, "topic": "a/b", "qos": 1, "id": "p1:17",
   "seq": 17, "retain": false, "t": 12.0}
  {"op": "ack", "client": "p1", "conn": 7, "id": "p1:17", "ok": true, "t": 13.5}
  {"op": "deliver", "client": "s1", "conn": 3, "topic": "a/b", "qos": 1, "id": "p1:17",
   "retain": false, "t": 14.0}
  {"op": "retained", "client": "r1", "topic": "a/b", "id": "p1:17", "t": 90.0}

`id` names a payload ("publisher:seq"); `seq` counts up per publisher. A
"retained" line is what a final reader found retained on a topic (id null:
nothing). The checks:

  lost        an acknowledged QoS 1/2 message for a persistent subscriber whose
              matching subscription was in place before it was sent (and not
              removed before its acknowledgement) was never delivered to it
  duplicate   a QoS 2 message delivered twice to one subscriber's session (each
              connection of a clean-session client is a new session)
  order       a subscriber got a publisher's QoS 1/2 messages of one QoS on one
              topic out of the order the broker took them in: the earlier was
              acknowledged before the later was sent, or both on the connection
              that sent them (a message sent again after a broken connection is
              taken after what followed it). MQTT orders per topic and QoS;
              first deliveries only, as redeliveries after a reconnect may repeat.
              Both for publishers with a persistent session only: a clean
              session's resend after a reconnect is a new message to the broker.
  overlap     one client id had two connections active at once: a message sent
              after the newer connection's CONNACK arrived on the older (one
              sent before may still be read from the older's socket)
  retained    the value retained at the end is not the last acknowledged write
              (writes that overlapped in time may each win)
  resurrected a message sent after an unsubscribe was acknowledged arrived
              through that subscription (a message acknowledged after the next
              SUBSCRIBE was sent may have met the new subscription: a broker may
              deliver before its SUBACK)
  session     a persistent session's client reconnected and found no session

Prints the counts; on a violation, the smallest excerpt of history that shows
it. Exit code 0 without violations, 1 with, 2 for an unreadable history.
"""

import json
import sys
from collections import defaultdict


def matches(filter_, topic):
    """MQTT topic matching (+ one level, # the rest); $-topics only explicitly."""
    f, t = filter_.split("/"), topic.split("/")
    if topic.startswith("$") and f[0] in ("+", "#"):
        return False
    for i, level in enumerate(f):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(f) == len(t)


class Violation:
    def __init__(self, kind, what, events):
        self.kind, self.what, self.events = kind, what, events

    def __str__(self):
        lines = [f"{self.kind}: {self.what}"]
        lines += ["    " + json.dumps(e, sort_keys=True) for e in sorted(self.events, key=lambda e: e["t"])]
        return "\n".join(lines)


def load(lines):
    events = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            e = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"line {n}: {error}") from error
        if "op" not in e or "t" not in e:
            raise ValueError(f"line {n}: every operation needs op and t")
        events.append(e)
    return events


def check(events):
    """Returns (counts, violations)."""
    by_op = defaultdict(list)
    for e in events:
        by_op[e["op"]].append(e)
    counts = {op: len(v) for op, v in sorted(by_op.items())}
    violations = []

    sends = {e["id"]: e for e in by_op["send"]}
    acks = {e["id"]: e for e in by_op["ack"] if e.get("ok", True)}
    connects = [e for e in by_op["connect"] if e.get("ok", True)]

    # Persistent subscribers: every connection of theirs kept the session.
    persistent = defaultdict(lambda: True)
    for c in connects:
        persistent[c["client"]] &= not c.get("clean", True)
    for c in connects:
        if not c.get("clean", True) and c.get("session_present") is False:
            earlier = [d for d in connects if d["client"] == c["client"] and d["t"] < c["t"]]
            if earlier:
                violations.append(Violation("session", f"{c['client']} reconnected without its session",
                                            [earlier[-1], c]))

    # Subscription intervals: (client, filter) -> [(qos, since, until or None, events)]
    intervals = defaultdict(list)
    for e in sorted(by_op["subscribed"] + by_op["unsubscribed"], key=lambda e: e["t"]):
        spans = intervals[(e["client"], e["filter"])]
        if e["op"] == "subscribed":
            if not spans or spans[-1][2] is not None:
                spans.append([e.get("qos", 0), e["t"], None, e])
        elif spans and spans[-1][2] is None:
            spans[-1][2] = e["t"]
            spans[-1].append(e)

    requests = defaultdict(list)  # (client, filter) -> SUBSCRIBE sent
    for e in by_op["subscribe"]:
        requests[(e["client"], e["filter"])].append(e)

    deliveries = defaultdict(list)  # (client, id) -> deliveries
    for d in by_op["deliver"]:
        deliveries[(d["client"], d["id"])].append(d)

    # lost: acknowledged, sent while a persistent subscriber's matching subscription held.
    for (client, filter_), spans in intervals.items():
        if not persistent[client]:
            continue
        for span in spans:
            qos, since, until = span[0], span[1], span[2]
            for mid, s in sends.items():
                if s.get("qos", 0) == 0 or min(qos, s["qos"]) == 0 or mid not in acks:
                    continue
                if not matches(filter_, s["topic"]) or s["t"] < since:
                    continue
                if until is not None and acks[mid]["t"] > until:
                    continue
                if not deliveries.get((client, mid)):
                    violations.append(Violation("lost", f"{mid} acknowledged but never delivered to {client}",
                                                [span[3], s, acks[mid]]))

    # duplicate: QoS 2 at most once per subscriber.
    def from_persistent(send):
        return send is not None and persistent[send["client"]]

    for (client, mid), ds in deliveries.items():
        if not from_persistent(sends.get(mid)) or sends[mid].get("qos") != 2:
            continue
        # Each connection of a clean-session client is a session of its own.
        sessions = defaultdict(list)
        for d in ds:
            if d.get("qos") == 2:
                sessions[None if persistent[client] else d.get("conn")].append(d)
        for same in sessions.values():
            if len(same) > 1:
                violations.append(Violation("duplicate", f"{mid} (QoS 2) delivered {len(same)} times to {client}",
                                            [sends[mid], *same]))

    # order: first deliveries per (subscriber, publisher, topic, QoS) in sequence order,
    # where the broker had taken the earlier message first: it was acknowledged before
    # the later one was sent, or both were acknowledged on the connection that sent them.
    # (A message whose connection broke before its acknowledgement is sent again later:
    # the broker takes it after what followed it, and may deliver it after that.)
    def taken_on_its_connection(mid):
        return mid in acks and acks[mid].get("conn") == sends[mid].get("conn")

    def taken_before(a, b):
        if a in acks and acks[a]["t"] < sends[b]["t"]:
            return True
        return (taken_on_its_connection(a) and taken_on_its_connection(b)
                and sends[a].get("conn") == sends[b].get("conn"))

    seen = set()
    delivered = defaultdict(list)  # key -> first deliveries so far
    top = {}                       # key -> highest sequence number delivered so far
    for d in sorted(by_op["deliver"], key=lambda e: e["t"]):
        s = sends.get(d["id"])
        if not from_persistent(s) or s.get("qos", 0) == 0 or (d["client"], d["id"]) in seen:
            continue
        seen.add((d["client"], d["id"]))
        key = (d["client"], s["client"], d["topic"], s["qos"])
        if top.get(key, -1) > s["seq"]:
            for earlier in delivered[key]:
                if sends[earlier["id"]]["seq"] > s["seq"] and taken_before(d["id"], earlier["id"]):
                    violations.append(Violation("order", f"{d['client']} got {d['id']} after {earlier['id']}",
                                                [s, acks.get(d["id"], s), earlier, d]))
                    break
        delivered[key].append(d)
        top[key] = max(top.get(key, -1), s["seq"])

    # overlap: nothing sent after a newer connection's CONNACK reaches an older one.
    received = defaultdict(list)
    for e in by_op["deliver"]:
        received[(e["client"], e.get("conn"))].append(e)
    per_client = defaultdict(list)
    for c in connects:
        per_client[c["client"]].append(c)
    for client, cs in per_client.items():
        cs.sort(key=lambda c: c["t"])
        for i, older in enumerate(cs):
            for newer in cs[i + 1:]:
                late = [e for e in received[(client, older["conn"])]
                        if e["id"] in sends and sends[e["id"]]["t"] > newer["t"]]
                if late:
                    violations.append(Violation("overlap", f"{client}: connection {older['conn']} still "
                                                f"active after connection {newer['conn']} connected",
                                                [older, newer, late[0]]))
                    break

    # retained: the final value is the last acknowledged retained write, one overlapping
    # it, or one sent after it that was never answered (it may have been applied).
    writes = defaultdict(list)
    unanswered = defaultdict(list)
    for mid, s in sends.items():
        if s.get("retain") and mid in acks:
            writes[s["topic"]].append((s, acks[mid]))
        elif s.get("retain") and s.get("qos", 0) > 0:
            unanswered[s["topic"]].append(s)
    for r in by_op["retained"]:
        ws = writes.get(r["topic"], [])
        if not ws:
            continue
        last_ack = max(a["t"] for _, a in ws)
        newest = [(s, a) for s, a in ws if a["t"] == last_ack][0]
        # Any write sent before the newest was acknowledged may have been applied last.
        allowed = {s["id"] for s, a in ws if s["t"] <= newest[1]["t"] and a["t"] >= newest[0]["t"]}
        allowed.add(newest[0]["id"])
        allowed |= {s["id"] for s in unanswered[r["topic"]] if s["t"] >= newest[0]["t"]}
        if r.get("id") not in allowed:
            violations.append(Violation("retained", f"{r['topic']} holds {r.get('id')}, expected one of "
                                        f"{sorted(allowed)}", [newest[0], newest[1], r]))

    # resurrected: sent after the unsubscribe was acknowledged, delivered through that filter.
    for (client, filter_), spans in intervals.items():
        for i, span in enumerate(spans):
            until = span[2]
            if until is None:
                continue
            resubscribed = spans[i + 1][1] if i + 1 < len(spans) else None
            asked = [e["t"] for e in requests[(client, filter_)] if e["t"] > until]
            if asked and (resubscribed is None or min(asked) < resubscribed):
                resubscribed = min(asked)
            for (c, mid), ds in deliveries.items():
                s = sends.get(mid)
                if c != client or s is None or not matches(filter_, s["topic"]) or s["t"] <= until:
                    continue
                # Once the next SUBSCRIBE is on its way, only a message the broker
                # had acknowledged before it was sent was surely routed without it.
                if resubscribed is not None and (mid not in acks or acks[mid]["t"] >= resubscribed):
                    continue
                other = any(matches(f, s["topic"]) and any(sp[1] <= s["t"] and (sp[2] is None or sp[2] > s["t"])
                                                             for sp in sps)
                            for (cl, f), sps in intervals.items() if cl == client and f != filter_)
                if not other:
                    violations.append(Violation("resurrected", f"{mid} sent after {client} unsubscribed "
                                                f"from {filter_} was delivered", [span[4], s, ds[0]]))
    return counts, violations


def main(argv):
    if len(argv) != 2:
        print("usage: checker.py HISTORY.jsonl", file=sys.stderr)
        return 2
    try:
        with open(argv[1]) as f:
            events = load(f)
    except (OSError, ValueError) as error:
        print(f"checker: {error}", file=sys.stderr)
        return 2
    counts, violations = check(events)
    print("operations: " + ", ".join(f"{op}={n}" for op, n in counts.items()))
    kinds = defaultdict(int)
    for v in violations:
        kinds[v.kind] += 1
    print(f"violations: {len(violations)}" + "".join(f", {k}={n}" for k, n in sorted(kinds.items())))
    for v in violations[:20]:
        print(v)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
