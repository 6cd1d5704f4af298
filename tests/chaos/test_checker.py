#!/usr/bin/python3
"""The history checker catches each kind of violation, and passes a clean history.

Each test starts from one small clean history (a persistent subscriber, a
publisher, retained writes, an unsubscribe) and breaks one promise in it.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402


def clean_history():
    return [
        {"op": "connect", "client": "s1", "conn": 1, "node": "n1", "clean": False, "t": 0,
         "session_present": False},
        {"op": "subscribed", "client": "s1", "conn": 1, "filter": "a/#", "qos": 2, "t": 1},
        {"op": "connect", "client": "p1", "conn": 2, "node": "n2", "clean": False, "t": 2,
         "session_present": False},
        {"op": "send", "client": "p1", "conn": 2, "topic": "a/x", "qos": 1, "id": "p1:1", "seq": 1, "t": 3},
        {"op": "ack", "client": "p1", "conn": 2, "id": "p1:1", "t": 4},
        {"op": "deliver", "client": "s1", "conn": 1, "topic": "a/x", "qos": 1, "id": "p1:1", "t": 5},
        {"op": "send", "client": "p1", "conn": 2, "topic": "a/x", "qos": 2, "id": "p1:2", "seq": 2, "t": 6},
        {"op": "ack", "client": "p1", "conn": 2, "id": "p1:2", "t": 7},
        {"op": "closed", "client": "s1", "conn": 1, "t": 7.5},
        # The subscriber comes back elsewhere and gets what was queued.
        {"op": "connect", "client": "s1", "conn": 3, "node": "n3", "clean": False, "t": 8,
         "session_present": True},
        {"op": "deliver", "client": "s1", "conn": 3, "topic": "a/x", "qos": 2, "id": "p1:2", "t": 9},
        # Retained writes, then what a final reader finds.
        {"op": "send", "client": "p1", "conn": 2, "topic": "r/t", "qos": 1, "id": "p1:3", "seq": 3,
         "retain": True, "t": 10},
        {"op": "ack", "client": "p1", "conn": 2, "id": "p1:3", "t": 11},
        {"op": "deliver", "client": "s1", "conn": 3, "topic": "r/t", "qos": 1, "id": "p1:3", "t": 11.5},
        {"op": "send", "client": "p1", "conn": 2, "topic": "r/t", "qos": 1, "id": "p1:4", "seq": 4,
         "retain": True, "t": 12},
        {"op": "ack", "client": "p1", "conn": 2, "id": "p1:4", "t": 13},
        {"op": "deliver", "client": "s1", "conn": 3, "topic": "r/t", "qos": 1, "id": "p1:4", "t": 13.5},
        {"op": "retained", "client": "r1", "topic": "r/t", "id": "p1:4", "t": 20},
        # Unsubscribed: later messages on a/... are not for it.
        {"op": "unsubscribed", "client": "s1", "conn": 3, "filter": "a/#", "t": 14},
        {"op": "send", "client": "p1", "conn": 2, "topic": "a/x", "qos": 1, "id": "p1:5", "seq": 5, "t": 15},
        {"op": "ack", "client": "p1", "conn": 2, "id": "p1:5", "t": 16},
    ]


def without(history, **match):
    return [e for e in history if not all(e.get(k) == v for k, v in match.items())]


def kinds(history):
    _, violations = checker.check(history)
    return sorted(v.kind for v in violations)


class Checker(unittest.TestCase):
    def test_a_clean_history_has_no_violation(self):
        counts, violations = checker.check(clean_history())
        self.assertEqual([str(v) for v in violations], [])
        self.assertEqual(counts["send"], 5)

    def test_an_acknowledged_message_never_delivered_is_lost(self):
        h = without(clean_history(), op="deliver", id="p1:2")
        self.assertEqual(kinds(h), ["lost"])

    def test_an_unacknowledged_message_may_be_missing(self):
        h = without(without(clean_history(), op="deliver", id="p1:2"), op="ack", id="p1:2")
        self.assertEqual(kinds(h), [])

    def test_a_qos2_message_delivered_twice_is_a_duplicate(self):
        h = clean_history()
        h.append({"op": "deliver", "client": "s1", "conn": 3, "topic": "a/x", "qos": 2, "id": "p1:2", "t": 9.1})
        self.assertEqual(kinds(h), ["duplicate"])

    def test_a_message_sent_again_after_a_broken_connection_may_come_after_later_ones(self):
        h = clean_history()
        h.append({"op": "send", "client": "p1", "conn": 2, "topic": "a/y", "qos": 1, "id": "p1:6", "seq": 6, "t": 8.1})
        h.append({"op": "send", "client": "p1", "conn": 2, "topic": "a/y", "qos": 1, "id": "p1:7", "seq": 7, "t": 8.2})
        h.append({"op": "deliver", "client": "s1", "conn": 3, "topic": "a/y", "qos": 1, "id": "p1:7", "t": 8.3})
        # p1:6 was only taken when sent again on the publisher's next connection.
        h.append({"op": "ack", "client": "p1", "conn": 4, "id": "p1:6", "t": 8.9})
        h.append({"op": "ack", "client": "p1", "conn": 4, "id": "p1:7", "t": 8.95})
        h.append({"op": "deliver", "client": "s1", "conn": 3, "topic": "a/y", "qos": 1, "id": "p1:6", "t": 9.0})
        self.assertEqual(kinds(h), [])
        for e in h:
            if e["op"] == "ack" and e["id"] in ("p1:6", "p1:7"):
                e["conn"] = 2  # taken in order on the connection that sent them
        self.assertEqual(kinds(h), ["order"])

    def test_order_is_kept_per_qos(self):
        h = clean_history()
        for e in h:
            if e["op"] == "deliver" and e["id"] == "p1:1":
                e["t"], e["conn"] = 9.5, 3  # QoS 1 after the QoS 2 message p1:2
        self.assertEqual(kinds(h), [])

    def test_a_clean_publishers_resend_is_a_new_message(self):
        h = clean_history()
        for e in h:
            if e["op"] == "connect" and e["client"] == "p1":
                e["clean"] = True
        h.append({"op": "deliver", "client": "s1", "conn": 3, "topic": "a/x", "qos": 2, "id": "p1:2", "t": 9.1})
        self.assertEqual(kinds(h), [])

    def test_a_new_clean_session_may_get_a_qos2_message_again(self):
        h = clean_history()
        h.append({"op": "connect", "client": "c1", "conn": 4, "node": "n1", "clean": True, "t": 5})
        h.append({"op": "connect", "client": "c1", "conn": 5, "node": "n2", "clean": True, "t": 8})
        h.append({"op": "deliver", "client": "c1", "conn": 4, "topic": "a/x", "qos": 2, "id": "p1:2", "t": 6.5})
        h.append({"op": "deliver", "client": "c1", "conn": 5, "topic": "a/x", "qos": 2, "id": "p1:2", "t": 9})
        self.assertEqual(kinds(h), [])
        h.append({"op": "deliver", "client": "c1", "conn": 5, "topic": "a/x", "qos": 2, "id": "p1:2", "t": 9.5})
        self.assertEqual(kinds(h), ["duplicate"])

    def test_an_unanswered_retained_write_sent_last_may_win(self):
        h = without(clean_history(), op="ack", id="p1:4")
        self.assertEqual(kinds(h), [])

    def test_a_qos1_message_delivered_twice_is_allowed(self):
        h = clean_history()
        h.append({"op": "deliver", "client": "s1", "conn": 3, "topic": "a/x", "qos": 1, "id": "p1:1", "t": 9.1})
        self.assertEqual(kinds(h), [])

    def test_messages_of_one_publisher_out_of_order(self):
        h = clean_history()
        h.append({"op": "send", "client": "p1", "conn": 2, "topic": "a/x", "qos": 1, "id": "p1:6", "seq": 6,
                  "t": 8.1})
        h.append({"op": "deliver", "client": "s1", "conn": 3, "topic": "a/x", "qos": 1, "id": "p1:6", "t": 8.6})
        for e in h:
            if e["op"] == "deliver" and e["id"] == "p1:1":
                e["t"], e["conn"] = 9.5, 3
        self.assertIn("order", kinds(h))

    def test_two_connections_of_one_client_active_at_once(self):
        h = clean_history()
        # Sent after the newer connection's CONNACK, yet it reached the older one.
        h.append({"op": "send", "client": "p1", "conn": 2, "topic": "a/y", "qos": 1, "id": "p1:6", "seq": 6,
                  "t": 8.2})
        h.append({"op": "deliver", "client": "s1", "conn": 1, "topic": "a/y", "qos": 1, "id": "p1:6", "t": 8.5})
        self.assertEqual(kinds(h), ["overlap"])

    def test_a_message_sent_before_the_takeover_may_still_be_read_from_the_older(self):
        h = clean_history()
        h.append({"op": "deliver", "client": "s1", "conn": 1, "topic": "a/x", "qos": 1, "id": "p1:1", "t": 8.5})
        self.assertEqual(kinds(h), [])

    def test_an_older_retained_value_winning_is_caught(self):
        h = clean_history()
        for e in h:
            if e["op"] == "retained":
                e["id"] = "p1:3"
        self.assertEqual(kinds(h), ["retained"])

    def test_overlapping_retained_writes_may_each_win(self):
        h = clean_history()
        for e in h:
            if e["op"] == "ack" and e["id"] == "p1:3":
                e["t"] = 12.5  # acknowledged after the next write was sent
            if e["op"] == "retained":
                e["id"] = "p1:3"
        self.assertEqual(kinds(h), [])

    def test_a_message_through_a_removed_subscription_is_resurrected(self):
        h = clean_history()
        h.append({"op": "deliver", "client": "s1", "conn": 3, "topic": "a/x", "qos": 1, "id": "p1:5", "t": 17})
        self.assertEqual(kinds(h), ["resurrected"])

    def test_a_delivery_after_a_new_subscribe_is_sent_is_not_resurrected(self):
        h = clean_history()
        h.append({"op": "subscribe", "client": "s1", "conn": 3, "filter": "a/#", "qos": 1, "t": 15.5})
        h.append({"op": "deliver", "client": "s1", "conn": 3, "topic": "a/x", "qos": 1, "id": "p1:5", "t": 17})
        self.assertEqual(kinds(h), [])

    def test_a_message_acknowledged_before_the_new_subscribe_is_still_resurrected(self):
        h = clean_history()
        h.append({"op": "subscribe", "client": "s1", "conn": 3, "filter": "a/#", "qos": 1, "t": 16.5})
        h.append({"op": "deliver", "client": "s1", "conn": 3, "topic": "a/x", "qos": 1, "id": "p1:5", "t": 17})
        self.assertEqual(kinds(h), ["resurrected"])

    def test_a_lost_persistent_session_is_caught(self):
        h = clean_history()
        for e in h:
            if e["op"] == "connect" and e["conn"] == 3:
                e["session_present"] = False
        self.assertIn("session", kinds(h))

    def test_topic_matching(self):
        self.assertTrue(checker.matches("a/#", "a/b/c"))
        self.assertTrue(checker.matches("a/#", "a"))
        self.assertTrue(checker.matches("a/+/c", "a/b/c"))
        self.assertFalse(checker.matches("a/+", "a/b/c"))
        self.assertFalse(checker.matches("#", "$SYS/x"))

    def test_the_command_prints_the_excerpt_and_fails(self):
        h = without(clean_history(), op="deliver", id="p1:2")
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write("\n".join(json.dumps(e) for e in h) + "\n")
        try:
            r = subprocess.run([sys.executable, checker.__file__, f.name], capture_output=True, text=True)
        finally:
            os.unlink(f.name)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("violations: 1, lost=1", r.stdout)
        self.assertIn('"id": "p1:2"', r.stdout)


if __name__ == "__main__":
    unittest.main()
