#!/usr/bin/python3
"""A fake peer that fuzzes the cluster's gRPC service (ringmq.cluster.v1.Peer).

The wire fuzzer covers what an MQTT client can send; this one covers what a
peer can: the Stream of PeerBatch frames, Exchange, Claim and Kick. It starts
a real three-node cluster, with real MQTT clients on it, and talks to one
node's peer port as a test peer, checking that whatever it sends is answered
with a gRPC status (an error for what is invalid), never with a crash, a hang
or corrupted state.

How it works:
  1. Three nodes n1, n2, n3 on 127.A.B.1-3 (A.B from this process's id, as
     the cluster tests choose theirs, so that runs at once never meet), every
     port picked by the kernel and read from the node's log. Python messages
     are generated at start-up from proto/ with protoc (into a temporary
     directory; nothing generated is kept); the calls are made with gRPC's
     generic stubs and raw bytes, so that malformed messages reach the node
     as they are.
  2. Real clients (MQTT 5, tests/fuzz/mqtt_client.py): a persistent subscriber
     on n1 fed by a publisher on n2, a subscriber on n2 fed by a publisher on
     n1, a writer of one retained message on n1, a probe on n1 that publishes
     to itself, and a "victim" connection on n1 that only the checks kick.
  3. The fake peer speaks to n1. A stream that gets past the Hello speaks as n3
     (the protocol trusts a member that knows the cluster name, as
     docs/security.md says: without TLS only the network keeps others out), so
     what it sends as n3 is what a confused or outdated member could send. It
     never sends what the protocol accepts by design and that would change
     the cluster for real: membership events or addresses other than the
     cluster's own with the right cluster name, messages on the real clients'
     topics, client ids of the real clients where a member may take them, or a
     newer generation of the real session's log. A message that would (a
     mutation can make one) is withheld and counted. Every stream that speaks
     as n3 starts with a Hello, the route snapshot and the end of a retained
     snapshot in one batch, as a real node's opening does.
  4. Each job is one call (or a burst of calls), drawn from random.Random(seed):
     (a) well-formed but wrong: frames before the Hello, Hellos of another
         cluster, of unknown nodes or of n1 itself, answers sent the wrong way
         (RouteAck, HelloAck, ForwardAck, Resync), stale and huge sequence
         numbers, route deltas and digests out of order, invalid filters and
         topics, Forward and Retained frames numbered out of order, twice or
         near 2^64, expiry and HLC values at the limits, retained writes older
         than the real one, member sets of another cluster, Register and
         Release of client ids nobody holds, heartbeats with absurd epochs,
         barriers nobody asked for, session-log messages for sessions that do
         not exist (prepare, accept, install, handover, handover request) and
         stale generations for the real session, the same stream replayed,
         a second Hello, frames after the node ended the call; Exchange, Claim
         and Kick of another cluster, unknown nodes, unknown client ids, stale
         tickets;
     (b) mutated bytes of such messages: byte-level mutations (the wire
         fuzzer's) and protobuf-aware ones (tests/fuzz/protowire.py): values at
         the limits, wrong wire types, duplicated, dropped, unknown and grafted
         fields, giant or off-by-a-few length prefixes, overlong varints, bad
         tags, nesting beyond the decoder's recursion limit;
     (c) abuse of the transport: many concurrent streams, streams opened and
         cancelled at once, streams held open and cancelled, a connection
         dropped with its calls, floods of unary calls, batches of several MiB
         and one beyond the node's 256 MiB message limit, and raw bytes on the
         peer port (not HTTP/2, a bad preface, malformed HTTP/2 frames).
  5. Every call has a deadline (DEADLINE_S); it must end with a status before
     it (DEADLINE_EXCEEDED on a fuzz call is a failure: the node never answered).
     Statuses seen: the node's own (INVALID_ARGUMENT for a first frame that is
     no Hello, FAILED_PRECONDITION for another cluster or a non-member), and
     gRPC's: UNIMPLEMENTED for a unary request that does not parse, OK for a
     stream whose next batch does not parse (the callback API ends the read as
     at a half-close), RESOURCE_EXHAUSTED beyond the size limit, CANCELLED.
     After every --probe-every jobs: every node must be alive; n1's gRPC health
     service and an Exchange must answer within 1 s; the probe's QoS 1 message
     must come back within 100 ms (a miss is retried after 1 s, and only a miss
     of the retry is a hang); /livez must answer 200 and /readyz answer at all;
     the publishers each publish one more QoS 1 message and the retained writer
     writes the next value, which n1's admin API must then show; no real
     client's connection may have been closed. Now and then the victim is
     kicked with a ticket of another boot of n1 (it must stay) and with n1's own
     (it must go), and connects again.
  6. At the end, once n1 is ready again: the subscribers got every message the
     node acknowledged (the persistent one also those published while it was
     offline, with its session present on return), nothing else on their
     topics; a new subscriber on each node gets the last retained value
     written; every node lists exactly n1, n2, n3 with their incarnations,
     addresses and epoch of the start; no node's log shows a sanitizer report
     or an abort; every node stops with exit code 0 on SIGTERM.
  7. On a failure the batch of jobs is saved as JSON lines (the exact bytes,
     replayable with --replay) next to the nodes' logs. --keep-going goes on
     after a failed check (not after a crash or a hang), each kind of failure
     told once and counted.
  8. --leave-out names classes of input that find open findings (LEAVE_OUT),
     so that a run looks for others: their frames are withheld and counted.

Run:     /usr/bin/python3 tests/fuzz/grpc_fuzz.py --ringmq build/bin/ringmq --messages 10000 --seed 1
Replay:  ... --ringmq build/bin/ringmq --replay ARTIFACTS/failed-batch-....jsonl
The same seed gives the same jobs, up to what each run's cluster makes up
itself (incarnations and n1's boot id, which some messages carry).
"""

import argparse
import collections
import ctypes
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from concurrent.futures import ThreadPoolExecutor

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import protowire  # noqa: E402
from mqtt_client import MqttClient  # noqa: E402
from broker_process import Broker, describe_status, log_findings  # noqa: E402
from mutations import (BOGUS_PROPERTIES, mutate_bit_flip, mutate_byte_delete, mutate_byte_insert,  # noqa: E402
                       mutate_byte_replace, mutate_chunk_delete, mutate_chunk_duplicate, mutate_chunk_swap,
                       mutate_truncate)
from probe import percentile  # noqa: E402

PROTO_DIR = os.path.join(REPO_ROOT, "proto")
CLUSTER_NAME = "grpc-fuzz"
FAKE = "n3"          # the member the fake peer speaks as
TARGET = "n1"        # the node it speaks to
SERVICE = "/ringmq.cluster.v1.Peer/"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"

DEADLINE_S = 10.0            # of every fuzz call: above cluster.claim_timeout_ms + a kick's 2 s
PROBE_DEADLINE_S = 0.1       # the probe's QoS 1 round trip
PROBE_RETRY_AFTER_S = 1.0
PROBE_RETRY_DEADLINE_S = 1.0
GRPC_PROBE_DEADLINE_S = 1.0
PUBLISH_WAIT_S = 5.0         # a real publisher's PUBACK
READY_WAIT_S = 20.0          # n1 ready again at the end (its peers restate what the fake peer disturbed)
DELIVERY_WAIT_S = 10.0
START_TIMEOUT_S = 60.0
HOLD_S = 0.05                # a stream held open before it is cancelled
RAW_IDLE_S = 0.05
WORKERS = 8
NODE_LIMIT = 256 << 20       # the node's SetMaxReceiveMessageSize
GRPC_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1),
                ("grpc.enable_retries", 0), ("grpc.use_local_subchannel_pool", 1)]
NODE_SETTINGS = [
    f"cluster.name={CLUSTER_NAME}", "cluster.heartbeat_interval_ms=100",
    "cluster.suspect_timeout_ms=1000", "cluster.dead_timeout_ms=3000",
    "cluster.digest_interval_ms=1000", "cluster.dns_interval_ms=500", "mqtt.sys_interval_s=0",
    "node.workers=2",
]

U64 = protowire.INTERESTING_U64
# Expiry intervals in ms: 0, the largest MQTT 5 can say (2^32 - 1 s), and around them.
EXPIRIES_MS = [0, 1, 999, 1000, 60_000, (1 << 31) - 1, ((1 << 32) - 1) * 1000 - 1, ((1 << 32) - 1) * 1000]
U32 = [0, 1, 2, 3, 255, 256, 65535, 65536, (1 << 31) - 1, 1 << 31, (1 << 32) - 1]
I64 = [-(1 << 63), -(1 << 62), -1, 0, 1, (1 << 62), (1 << 63) - 1]
WEIRD_NAMES = ["", "\x00", "n", "N3", "n3 ", " n3", "n3\x00", "n33", "n1n2", "é", "#", "*",
               "x" * 300, "n" + "3" * 5000, "../n3", "n3\n[forged] line"]
WEIRD_TOPICS = ["", "#", "+", "+/+", "a/#/b", "#/", "/", "//", "/#", "$SYS", "$SYS/#", "$share/",
                "$share//x", "$share/g", "$share/g/", "$share/g/#", "$share/+/x", "$share/#/x",
                "\x00", "a\x00b", "é/ü/€", "a" * 65535, "a/" * 3000, "+" * 1000, "$", "$$/x",
                "\ufeff", "\u202e"]

pb = None  # ringmq.cluster.v1 messages (load_protos)
rp = None  # ringmq.replication.v1 messages


# --------------------------------------------------------------------------
# The protocol's messages, generated from proto/ at start-up


def load_protos(out_dir):
    """Python modules of cluster.proto and session.proto, generated into out_dir.

    Debian's protoc (protobuf-compiler) writes them: the protoc inside Debian's
    python3-grpc-tools (1.14) predates proto3 `optional`, which cluster.proto
    uses. No service stubs are needed: the calls go through the generic
    multi-callables with raw bytes."""
    global pb, rp
    quiet_protobuf()
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    result = subprocess.run([protoc, f"-I{PROTO_DIR}", f"--python_out={out_dir}",
                             "ringmq/cluster/v1/cluster.proto", "ringmq/replication/v1/session.proto"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"protoc failed: {result.stderr.strip()}")
    sys.path.insert(0, out_dir)
    from ringmq.cluster.v1 import cluster_pb2
    from ringmq.replication.v1 import session_pb2
    pb, rp = cluster_pb2, session_pb2


def quiet_protobuf():
    """The C++ protobuf under Python logs every string with invalid UTF-8 it refuses to stderr,
    and the guard parses thousands of them: its log handler is set to none. Where that cannot be
    done, the pure-Python implementation (slower, and quiet) is used instead."""
    try:
        lib = ctypes.CDLL("libprotobuf.so.32")
        set_handler = getattr(lib, "_ZN6google8protobuf13SetLogHandlerEPFvNS0_8LogLevelEPKciRKNSt7__cxx11"
                                   "12basic_stringIcSt11char_traitsIcESaIcEEEE")
        set_handler.restype, set_handler.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
        set_handler(None)
    except (OSError, AttributeError):
        os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"


def member_number(node_id, incarnation):
    """cluster/replication: member_number() (fnv1a64, then SplitMix64's finalizer)."""
    mask = (1 << 64) - 1

    def mix64(x):
        x = (x + 0x9E3779B97F4A7C15) & mask
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        return x ^ (x >> 31)

    h = 0xCBF29CE484222325
    for c in node_id.encode():
        h = ((h ^ c) * 0x100000001B3) & mask
    n = mix64(h ^ mix64(incarnation))
    return n or 1


# --------------------------------------------------------------------------
# The cluster


def loopback_prefix():
    """127.A.B. from this process's id, as tests/support/cluster_support.cpp picks its own."""
    pid = os.getpid()
    return f"127.{1 + (pid // 250) % 250}.{pid % 250}."


class Node(Broker):
    """One cluster node: MQTT, WebSocket, HTTP and the peer server on its own loopback address."""

    def __init__(self, binary, workdir, node_id, ip):
        os.makedirs(workdir, exist_ok=True)
        super().__init__(binary, workdir, [f"cluster.bind={ip}:0"] + NODE_SETTINGS, node_id=node_id,
                         host=ip, http=True)
        self.ip = ip

    @property
    def mqtt_port(self):
        return self.ports["tcp"]

    @property
    def peer_address(self):
        return f"{self.ip}:{self.ports['cluster']}"

    def http_get(self, path, timeout=1.0):
        """(status, body) of a GET, or (None, reason) when nothing answered in time."""
        try:
            with urllib.request.urlopen(f"http://{self.ip}:{self.ports['http']}{path}", timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (OSError, ValueError) as e:
            return None, str(e)

    def cluster_view(self):
        status, body = self.http_get("/api/v1/cluster", timeout=2.0)
        return json.loads(body) if status == 200 else None


class Cluster:
    def __init__(self, binary, root):
        prefix = loopback_prefix()
        self.nodes = {}
        for i in (1, 2, 3):
            node_id = f"n{i}"
            self.nodes[node_id] = Node(binary, os.path.join(root, node_id), node_id, prefix + str(i))

    def __getitem__(self, node_id):
        return self.nodes[node_id]

    def start(self):
        """n1, then n2 and n3 with n1 as their seed; the view of n1 once all agree and are ready."""
        first = self.nodes["n1"]
        first.start()
        for node_id in ("n2", "n3"):
            node = self.nodes[node_id]
            node.settings.append(f"cluster.seeds=[{first.peer_address}]")
            node.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            views = [n.cluster_view() for n in self.nodes.values()]
            if all(v and v["ready"] and len(v["members"]) == 3 and v["epoch"] == views[0]["epoch"]
                   for v in views):
                return views[0]
            for n in self.nodes.values():
                if not n.alive():
                    raise RuntimeError(f"{n.node_id} exited at start ({describe_status(n.proc.returncode)}):\n"
                                       + n.log_tail())
            time.sleep(0.05)
        raise RuntimeError("the cluster did not converge in time:\n" +
                           "\n".join(f"--- {n.node_id}\n{n.log_tail(15)}" for n in self.nodes.values()))

    def dead(self):
        return [n for n in self.nodes.values() if not n.alive()]

    def stop(self):
        return {node_id: n.stop() for node_id, n in self.nodes.items()}


# --------------------------------------------------------------------------
# What the fake peer knows of the cluster


class Context:
    """The cluster's member set, n1's boot id and the real clients' names and topics."""

    def __init__(self, hello_ack, tag, leave_out=()):
        self.leave_out = set(leave_out)
        self.members = pb.MemberSet()
        self.members.CopyFrom(hello_ack.members)
        self.n1_boot = hello_ack.boot_id
        self.events = {event_key(e) for e in self.members.events if e.node}
        self.addresses = {a.node: (a.version, a.address) for a in self.members.addresses if a.node}
        self.incarnations = {e.node: e.incarnation for e in self.members.events
                             if e.kind == pb.MemberEvent.JOIN}
        self.numbers = {n: member_number(n, i) for n, i in self.incarnations.items()}
        self.tag = tag
        self.real = f"grpc-fuzz/real/{tag}"
        self.to_n1 = f"{self.real}/to-n1"
        self.to_n2 = f"{self.real}/to-n2"
        self.retained_topic = f"{self.real}/retained"
        self.probe_topic = f"grpc-fuzz/probe/{tag}"
        self.sub1, self.sub2 = f"grpc-fuzz-sub1-{tag}", f"grpc-fuzz-sub2-{tag}"
        self.victim = f"grpc-fuzz-victim-{tag}"
        self.clients = {self.sub1, self.sub2, self.victim, f"grpc-fuzz-probe-{tag}",
                        f"grpc-fuzz-pub1-{tag}", f"grpc-fuzz-pub2-{tag}", f"grpc-fuzz-retain-{tag}"}


def event_key(e):
    """An event as the node's member_set::from_proto reads it (a kind it does not know is a join)."""
    kind = {pb.MemberEvent.LEAVE: "leave", pb.MemberEvent.DRAIN: "drain"}.get(e.kind, "join")
    return kind, e.node, e.incarnation, e.vnodes if kind == "join" else 0


# --------------------------------------------------------------------------
# The guard: what the protocol takes by design from a member is not sent


def member_set_changes(ms, ctx):
    """True when merging ms would change the cluster's member set."""
    for e in ms.events:
        if e.node and event_key(e) not in ctx.events:
            return True
    for a in ms.addresses:
        if not a.node:
            continue
        known = ctx.addresses.get(a.node)
        if known is None or a.version > known[0] or (a.version == known[0] and a.address > known[1]):
            return True
    return False


# The C++ decoder under Python warns of stray group ends instead of failing.
warnings.filterwarnings("ignore", message="Unexpected end-group tag", category=RuntimeWarning)


def parse_or_none(cls, data):
    try:
        return cls.FromString(data)
    except Exception:  # noqa: BLE001 - any decode error: the node will refuse it as well
        return None


def withheld_batch(data, first, ctx):
    """Why a PeerBatch must not be sent (None: it may): see the module's point 3."""
    batch = parse_or_none(pb.PeerBatch, data)
    if batch is None:
        return None
    frames = list(batch.frames)
    for i, f in enumerate(frames):
        kind = f.WhichOneof("kind")
        if kind == "hello" and first and i == 0 and f.hello.cluster_name == CLUSTER_NAME:
            if member_set_changes(f.hello.members, ctx):
                return "a Hello whose member set changes the cluster"
            if f.hello.node in ctx.incarnations and f.hello.node != TARGET:
                if f.hello.node != FAKE:
                    return f"a Hello speaking as {f.hello.node}"
                if not any(g.WhichOneof("kind") == "route_snapshot" for g in frames[1:]):
                    return "a Hello as n3 without its route snapshot"
        elif kind == "members" and f.members.members.cluster_name == CLUSTER_NAME:
            if member_set_changes(f.members.members, ctx):
                return "a member set that changes the cluster"
        elif kind in ("forward", "retained", "retained_snapshot"):
            why = retained_or_forward_withheld(f, kind, ctx)
            if why:
                return why
        elif kind == "session_log":
            log = parse_or_none(rp.LogBatch, f.session_log.batch)
            if log is not None and any(m.client in ctx.clients and not stale_only(m) for m in log.messages):
                return "a session-log message of a real client that is not of an older generation"
        elif kind == "register":
            # Release is harmless (only the holder's own ticket releases); Register records a holder.
            if any(e.client_id in ctx.clients for e in f.register.entries):
                return "a Register of a real client"
    return None


# Classes of input that find open findings (docs/reliability.md, "Open findings"): a run can
# leave them out (--leave-out), so that it looks for others; the frames are then withheld.
LEAVE_OUT = {
    # A retained version whose HLC is within 2^16 of 2^64: the node's hybrid clock takes it
    # and its next timestamps wrap around to 0, so later retained writes lose to older ones.
    "hlc-overflow": "a retained version near 2^64 (left out: hlc-overflow)",
    # A message expiry beyond MQTT's largest (2^32 - 1 s): the node adds it to a nanosecond
    # clock, and the sum overflows (undefined behaviour; a sanitizer build stops there).
    "expiry-overflow": "a message expiry beyond 2^32 - 1 s (left out: expiry-overflow)",
}
HLC_NEAR_MAX = (1 << 64) - (1 << 16)
MQTT_MAX_EXPIRY_MS = ((1 << 32) - 1) * 1000


def message_pairs(f, kind):
    """(message, retained version or None) of a Forward, Retained or RetainedSnapshot frame."""
    if kind == "forward":
        return [(f.forward.message, f.forward.retained if f.forward.HasField("retained") else None)]
    if kind == "retained":
        return [(f.retained.entry.message, f.retained.entry.version)]
    return [(e.message, e.version) for e in f.retained_snapshot.entries]


def retained_or_forward_withheld(f, kind, ctx):
    for message, version in message_pairs(f, kind):
        if ("hlc-overflow" in ctx.leave_out and version is not None
                and version.hlc >= HLC_NEAR_MAX):
            return LEAVE_OUT["hlc-overflow"]
        if ("expiry-overflow" in ctx.leave_out and message.HasField("expires_in_ms")
                and message.expires_in_ms > MQTT_MAX_EXPIRY_MS):
            return LEAVE_OUT["expiry-overflow"]
        if message.topic.startswith(ctx.real) or message.topic.startswith("grpc-fuzz/probe"):
            if kind == "forward" or message.topic != ctx.retained_topic:
                return "a message on a real client's topic"
            if version.hlc > 1 << 16:
                return "a retained write newer than the real one"
    return None


def stale_only(m):
    """True when every ballot of a log message is of round 0, older than any generation a log
    has (the first is round 1): the message must be ignored, or answered with a refusal."""
    kind = m.WhichOneof("kind")
    if kind is None or kind == "handover_request":
        return False
    body = getattr(m, kind)
    ballots = [body.gen]
    if kind == "promise":
        ballots += [body.promised, body.log_gen] + [e.gen for e in body.entries]
    elif kind == "accept":
        ballots += [e.gen for e in body.entries]
    elif kind == "accepted":
        ballots.append(body.promised)
    return all(b.round == 0 for b in ballots)


def withheld_unary(rpc, data, ctx):
    if rpc == "Exchange":
        ms = parse_or_none(pb.MemberSet, data)
        if ms is not None and ms.cluster_name == CLUSTER_NAME and member_set_changes(ms, ctx):
            return "an Exchange that changes the cluster"
    elif rpc == "Claim":
        req = parse_or_none(pb.ClaimRequest, data)
        if req is not None and req.cluster_name == CLUSTER_NAME and req.client_id in ctx.clients:
            return "a Claim of a real client"
    elif rpc == "Kick":
        req = parse_or_none(pb.KickRequest, data)
        if (req is not None and req.cluster_name == CLUSTER_NAME and req.client_id in ctx.clients
                and req.ticket.boot_id == ctx.n1_boot):
            return "a Kick of a real client"
    return None


# --------------------------------------------------------------------------
# Jobs: well-formed but wrong messages, mutated ones, transport abuse


BYTE_MUTATIONS = [(mutate_bit_flip, 3), (mutate_byte_replace, 2), (mutate_byte_insert, 2),
                  (mutate_byte_delete, 2), (mutate_chunk_duplicate, 1), (mutate_chunk_delete, 1),
                  (mutate_chunk_swap, 1), (mutate_truncate, 2)]
ALL_MUTATIONS = BYTE_MUTATIONS + protowire.PROTO_MUTATIONS
MUTATION_FUNCTIONS = [m for m, _ in ALL_MUTATIONS]
MUTATION_WEIGHTS = [w for _, w in ALL_MUTATIONS]
MAX_MUTATED = 1 << 20


def hexed(messages):
    return [m.hex() for m in messages]


class Generator:
    """Draws the jobs from one random.Random; every job is bytes ready to send."""

    def __init__(self, rng, ctx):
        self.rng, self.ctx = rng, ctx
        self.index = 0
        self.fake_boot = rng.getrandbits(64) | 1
        self.recent_streams = collections.deque(maxlen=50)
        self.seeds = {"Stream": [], "Exchange": [], "Claim": [], "Kick": []}
        for _ in range(60):
            self.seeds["Stream"].append(self.batch(self.wrong_frames(rng.randint(1, 4))))
            self.seeds["Exchange"].append(self.exchange_request().SerializeToString())
            self.seeds["Claim"].append(self.claim_request().SerializeToString())
            self.seeds["Kick"].append(self.kick_request().SerializeToString())
        for _ in range(15):
            self.seeds["Stream"].append(self.batch([self.hello_frame(node=rng.choice(WEIRD_NAMES))]
                                                   + self.wrong_frames(rng.randint(0, 3))))

    # ---- values

    def pick(self, values, random_bits=64):
        return self.rng.choice(values) if self.rng.random() < 0.8 else self.rng.getrandbits(random_bits)

    def junk_id(self):
        r = self.rng.random()
        if r < 0.7:
            return f"grpc-fuzz-junk-{self.rng.randrange(200)}"
        return self.rng.choice(WEIRD_NAMES)

    def junk_topic(self):
        r = self.rng.random()
        if r < 0.6:
            return f"grpc-fuzz/junk/{self.rng.randrange(100)}/" + self.rng.choice(["x", "y/z", "", "+", "#"])
        return self.rng.choice(WEIRD_TOPICS)

    def junk_filter(self):
        topic = self.junk_topic()
        if self.rng.random() < 0.2:
            return f"$share/{self.rng.choice(['g', '', '#', 'x' * 100])}/{topic}"
        return topic

    def junk_properties(self):
        choice = self.rng.randrange(4)
        if choice == 0:
            return b"\x00"
        if choice == 1:
            bogus = self.rng.choice(BOGUS_PROPERTIES)
            return bytes([len(bogus)]) + bogus
        if choice == 2:
            return self.rng.choice([b"\x05\x01\x01", b"\x7f", b"\xff\xff\xff\xff\x7f", b"\x03\x23\x00\x01"])
        return self.rng.randbytes(self.rng.randint(1, 40))

    def cluster_message(self, topic=None):
        m = pb.ClusterMessage()
        m.topic = self.junk_topic() if topic is None else topic
        m.payload = self.rng.choice([b"", b"x", b"\x00" * 70000, self.rng.randbytes(self.rng.randint(1, 300))])
        m.qos = self.pick(U32, 32)
        m.retain = self.rng.random() < 0.2
        if self.rng.random() < 0.3:
            m.properties = self.junk_properties()
        m.publisher = self.rng.choice(["", FAKE, self.junk_id()])
        if self.rng.random() < 0.4:
            m.expires_in_ms = self.rng.choice(EXPIRIES_MS) if self.rng.random() < 0.8 else self.pick(U64)
        if self.rng.random() < 0.3:
            m.publish_number = self.pick(U64)
            m.publish_packet_id = self.pick(U32, 32)
        return m

    def ballot(self, stale=False):
        b = rp.Ballot()
        if stale:
            b.round = 0
            b.node = self.rng.choice([0, 1, self.ctx.numbers[FAKE]])
        else:
            b.round = self.pick(U64)
            b.node = self.rng.choice([self.ctx.numbers[FAKE], self.ctx.numbers[TARGET], 0,
                                      self.rng.getrandbits(64)])
        return b

    def replicas(self):
        nums = self.ctx.numbers
        choice = self.rng.randrange(5)
        if choice == 0:
            return [nums[TARGET], nums[FAKE]]
        if choice == 1:
            return [nums[TARGET]] * self.rng.choice([1, 2, 65, 100])
        if choice == 2:
            return list(nums.values())
        if choice == 3:
            return []
        return [self.rng.getrandbits(64) for _ in range(self.rng.randint(1, 5))]

    def session_snapshot(self):
        snap = rp.SessionSnapshot()
        for _ in range(self.rng.randint(0, 4)):
            r = snap.records.add()
            r.column = self.pick(U32, 32)
            r.key = self.rng.choice([b"", b"\x00", self.rng.randbytes(8), b"x" * 1000])
            r.value = self.rng.randbytes(self.rng.randint(0, 40))
        return snap.SerializeToString()

    def session_change(self):
        change = rp.SessionChange()
        for _ in range(self.rng.randint(0, 3)):
            op = change.ops.add()
            op.kind = self.rng.choice([0, 1, 2, 7])
            op.column = self.pick(U32, 32)
            op.key = self.rng.choice([b"", self.rng.randbytes(6)])
            op.value = self.rng.randbytes(self.rng.randint(0, 20))
        return change.SerializeToString() if self.rng.random() < 0.8 else self.rng.randbytes(12)

    def log_message(self, client, stale=False):
        m = rp.LogMessage()
        m.client = client
        kind = self.rng.choice(["prepare", "promise", "accept", "accepted", "handover"]
                               + ([] if stale else ["handover_request"]))
        if kind == "prepare":
            m.prepare.gen.CopyFrom(self.ballot(stale))
        elif kind == "promise":
            p = m.promise
            p.gen.CopyFrom(self.ballot(stale))
            p.ok = self.rng.random() < 0.5
            p.promised.CopyFrom(self.ballot(stale))
            p.log_gen.CopyFrom(self.ballot(stale))
            p.base_seq = self.pick(U64)
            p.snapshot = self.session_snapshot()
            for _ in range(self.rng.randint(0, 3)):
                e = p.entries.add()
                e.seq, e.data = self.pick(U64), self.session_change()
                e.gen.CopyFrom(self.ballot(stale))
            p.replicas.extend(self.replicas())
        elif kind == "accept":
            a = m.accept
            a.gen.CopyFrom(self.ballot(stale))
            a.install = self.rng.random() < 0.5
            a.prev, a.base_seq, a.commit = self.pick(U64), self.pick(U64), self.pick(U64)
            a.snapshot = self.session_snapshot()
            for _ in range(self.rng.randint(0, 3)):
                e = a.entries.add()
                e.seq, e.data = self.pick(U64), self.session_change()
                e.gen.CopyFrom(self.ballot(stale))
            a.replicas.extend(self.replicas())
            if self.rng.random() < 0.2:
                a.joint.add().members.extend(self.replicas())
        elif kind == "accepted":
            a = m.accepted
            a.gen.CopyFrom(self.ballot(stale))
            a.ok = self.rng.random() < 0.5
            a.promised.CopyFrom(self.ballot(stale))
            a.last, a.known_commit = self.pick(U64), self.pick(U64)
            a.needs_install = self.rng.random() < 0.3
        elif kind == "handover":
            m.handover.gen.CopyFrom(self.ballot(stale))
        else:
            m.handover_request.SetInParent()
        m.replicas.extend(self.replicas())
        m.write_quorum = self.pick(U32, 32)
        return m

    def session_log_bytes(self):
        if self.rng.random() < 0.15:
            return self.rng.randbytes(self.rng.randint(1, 64))
        batch = rp.LogBatch()
        for _ in range(self.rng.randint(1, 4)):
            batch.messages.append(self.log_message(self.junk_id()))
        return batch.SerializeToString()

    def stale_real_session_log(self):
        """Messages of an older generation for the real persistent session: to be ignored."""
        batch = rp.LogBatch()
        for _ in range(self.rng.randint(1, 3)):
            batch.messages.append(self.log_message(self.ctx.sub1, stale=True))
        return batch.SerializeToString()

    # ---- member sets

    def foreign_member_set(self):
        """A member set of invented members (sent only with another cluster's name)."""
        ms = pb.MemberSet()
        ms.cluster_name = self.rng.choice(["", "ringmq", CLUSTER_NAME + "x", CLUSTER_NAME[:-1],
                                           CLUSTER_NAME + "\x00", CLUSTER_NAME.upper()])
        for _ in range(self.rng.choice([0, 1, 3, 50, 2000])):
            e = ms.events.add()
            e.kind = self.rng.choice([0, 1, 2, 9])
            e.node = self.rng.choice(["ghost-" + str(self.rng.randrange(50))] + WEIRD_NAMES + [TARGET, FAKE])
            e.incarnation = self.pick(U64)
            e.vnodes = self.pick(U32, 32)
        for _ in range(self.rng.randint(0, 3)):
            a = ms.addresses.add()
            a.node = self.rng.choice([TARGET, "n2", FAKE, "ghost"])
            a.address = self.rng.choice(["127.0.0.1:1", "", "nowhere:0", "[::1]:x", "a" * 300])
            a.version = self.pick(U64)
        ms.sender = self.rng.choice(["", "ghost", FAKE])
        return ms

    def harmless_member_set(self):
        """The cluster's own events and addresses (all, some, or none; addresses maybe older)."""
        ms = pb.MemberSet()
        ms.cluster_name = CLUSTER_NAME
        events = list(self.ctx.members.events)
        for e in self.rng.sample(events, self.rng.randint(0, len(events))):
            ms.events.append(e)
        for a in self.ctx.members.addresses:
            if self.rng.random() < 0.5:
                copy = ms.addresses.add()
                copy.CopyFrom(a)
                if self.rng.random() < 0.5 and copy.version:
                    copy.version -= 1
                    copy.address = self.rng.choice(["127.0.0.1:1", "ghost:0", ""])
        for _ in range(self.rng.randint(0, 2)):
            e = ms.events.add()  # an event without a node is skipped
            e.kind = self.rng.choice([0, 1, 2])
            e.incarnation = self.pick(U64)
        ms.sender = self.rng.choice(["", FAKE, "ghost"])
        return ms

    # ---- frames

    def hello_frame(self, node=FAKE, cluster=CLUSTER_NAME, boot=None):
        f = pb.PeerFrame()
        h = f.hello
        h.node, h.cluster_name = node, cluster
        h.boot_id = self.fake_boot if boot is None else boot
        if cluster == CLUSTER_NAME:
            if self.rng.random() < 0.5:
                h.members.CopyFrom(self.harmless_member_set())
        else:
            h.members.CopyFrom(self.foreign_member_set())
        h.peer_boot_id = self.rng.choice([0, self.ctx.n1_boot, self.rng.getrandbits(64)])
        h.resend_below_seq = self.pick(U64)
        return f

    def opening(self):
        """The first batch of a stream as n3: Hello, route snapshot, end of a retained snapshot."""
        hello = self.hello_frame()
        snapshot = pb.PeerFrame()
        snapshot.route_snapshot.seq = self.rng.choice([0, 1, 1000, (1 << 64) - 1])
        for _ in range(self.rng.choice([0, 0, 1, 5, 100])):
            r = snapshot.route_snapshot.routes.add()
            r.filter, r.count = self.junk_filter(), self.pick(U32, 32)
        retained = pb.PeerFrame()
        retained.retained_snapshot.last = True
        return [hello, snapshot, retained]

    def wrong_frame(self):
        """One frame that a node must survive from a member: see the module's point 4 (a)."""
        rng, f = self.rng, pb.PeerFrame()
        kind = rng.choice(["route_delta", "route_delta", "route_snapshot", "route_digest", "route_ack",
                           "hello_ack", "forward", "forward", "forward", "retained", "retained",
                           "retained_real", "forward_ack", "retained_digest", "retained_snapshot",
                           "resync", "members", "release", "register", "heartbeat", "session_log",
                           "session_log", "stale_session", "sessions_taken_over", "barrier",
                           "barrier_done", "empty", "hello"])
        if kind == "route_delta":
            f.route_delta.seq = self.pick(U64)
            f.route_delta.route.filter = self.junk_filter()
            f.route_delta.route.count = self.pick(U32, 32)
        elif kind == "route_snapshot":
            f.route_snapshot.seq = self.pick(U64)
            for _ in range(rng.choice([0, 1, 10, 1000])):
                r = f.route_snapshot.routes.add()
                r.filter, r.count = self.junk_filter(), self.pick(U32, 32)
        elif kind == "route_digest":
            f.route_digest.seq, f.route_digest.digest, f.route_digest.count = (
                self.pick(U64), self.pick(U64), self.pick(U64))
        elif kind == "route_ack":
            f.route_ack.seq = self.pick(U64)
        elif kind == "hello_ack":
            f.hello_ack.node = rng.choice([FAKE, "ghost", ""])
            f.hello_ack.boot_id = self.pick(U64)
            if rng.random() < 0.5:
                f.hello_ack.members.CopyFrom(self.foreign_member_set())
        elif kind == "forward":
            fw = f.forward
            fw.message.CopyFrom(self.cluster_message())
            fw.plain = rng.random() < 0.7
            for _ in range(rng.choice([0, 0, 1, 3])):
                fw.groups.append(self.junk_filter() if rng.random() < 0.5 else "$share/g/" + self.junk_topic())
            if rng.random() < 0.3:
                fw.retained.hlc = self.pick(U64)
                fw.retained.origin = rng.choice(["", FAKE, "zzzz", "x" * 1000])
            fw.seq = self.pick(U64)
        elif kind == "retained":
            entry = f.retained.entry
            entry.message.CopyFrom(self.cluster_message())
            if rng.random() < 0.2:
                entry.message.payload = b""  # a tombstone
            entry.version.hlc = self.pick(U64)
            entry.version.origin = rng.choice(["", FAKE, "n1", "zzzz"])
            f.retained.seq = self.pick(U64)
        elif kind == "retained_real":
            # Older than any real write: last writer wins, so it must not replace the real value.
            entry = f.retained.entry
            entry.message.CopyFrom(self.cluster_message(self.ctx.retained_topic))
            entry.message.payload = rng.choice([b"", b"stale"])
            entry.version.hlc = rng.choice([0, 1, 2, 1 << 16])
            entry.version.origin = rng.choice(["", "n1", "n2", "zzzz"])
            f.retained.seq = self.pick(U64)
        elif kind == "forward_ack":
            f.forward_ack.seq = self.pick(U64)
            f.forward_ack.failed.extend(self.pick(U64) for _ in range(rng.randint(0, 3)))
        elif kind == "retained_digest":
            f.retained_digest.digest, f.retained_digest.count = self.pick(U64), self.pick(U64)
        elif kind == "retained_snapshot":
            for _ in range(rng.randint(0, 5)):
                e = f.retained_snapshot.entries.add()
                e.message.CopyFrom(self.cluster_message())
                e.version.hlc = self.pick(U64)
                e.version.origin = rng.choice(["", FAKE])
            f.retained_snapshot.last = rng.random() < 0.5
        elif kind == "resync":
            f.resync.routes, f.resync.retained = rng.random() < 0.5, rng.random() < 0.5
        elif kind == "members":
            f.members.members.CopyFrom(self.foreign_member_set() if rng.random() < 0.6
                                       else self.harmless_member_set())
        elif kind == "release":
            f.release.client_id = self.junk_id() if rng.random() < 0.8 else rng.choice(sorted(self.ctx.clients))
            f.release.ticket.boot_id = rng.choice([0, self.ctx.n1_boot, self.fake_boot, self.pick(U64)])
            f.release.ticket.connection = self.pick(U64)
        elif kind == "register":
            for _ in range(rng.choice([0, 1, 5, 2000])):
                e = f.register.entries.add()
                e.client_id = self.junk_id()
                e.ticket.boot_id = rng.choice([0, self.fake_boot, self.pick(U64)])
                e.ticket.connection = self.pick(U64)
        elif kind == "heartbeat":
            self.fill_scalars(f.heartbeat)
        elif kind == "session_log":
            f.session_log.batch = self.session_log_bytes()
        elif kind == "stale_session":
            f.session_log.batch = self.stale_real_session_log()
        elif kind == "sessions_taken_over":
            f.sessions_taken_over.node = rng.choice([TARGET, "n2", FAKE, "ghost", ""])
        elif kind == "barrier":
            f.barrier.token = rng.choice([1 << 40, (1 << 64) - 1, rng.getrandbits(64) | 1 << 40])
        elif kind == "barrier_done":
            f.barrier_done.token = rng.choice([1 << 40, (1 << 64) - 1, rng.getrandbits(64) | 1 << 40])
        elif kind == "hello":
            # A second Hello on a stream: not the first frame, so nothing to the node.
            f.CopyFrom(self.hello_frame(boot=rng.getrandbits(64)))
        return f

    def fill_scalars(self, message):
        """Every scalar field of message (those a newer proto adds too) at a value at the limits."""
        FD = message.DESCRIPTOR.fields[0].__class__
        for field in message.DESCRIPTOR.fields:
            if field.label == FD.LABEL_REPEATED:
                continue
            if field.type == FD.TYPE_BOOL:
                setattr(message, field.name, self.rng.random() < 0.2)
            elif field.type in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
                setattr(message, field.name, self.rng.choice(I64))
            elif field.type in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
                setattr(message, field.name, self.pick(U64))
            elif field.type in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
                setattr(message, field.name, self.pick(U32, 32))
            elif field.type in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
                setattr(message, field.name, self.rng.choice([-(1 << 31), -1, 0, (1 << 31) - 1]))

    def wrong_frames(self, n):
        return [self.wrong_frame() for _ in range(n)]

    def batch(self, frames):
        b = pb.PeerBatch()
        b.frames.extend(frames)
        return b.SerializeToString()

    def numbered_forwards(self):
        """Forward frames numbered out of order, twice, and around 2^64."""
        order = self.rng.choice([[5, 3, 4, 4, 6], [1, 1, 1], [(1 << 64) - 1, 1, 2], [0, 0, 7, 0],
                                 [2, 1], [(1 << 63), (1 << 63) + 1, (1 << 63) - 1]])
        frames = []
        for seq in order:
            f = pb.PeerFrame()
            f.forward.message.CopyFrom(self.cluster_message())
            f.forward.plain = True
            f.forward.seq = seq
            frames.append(f)
        return frames

    # ---- request messages of the unary calls

    def exchange_request(self):
        if self.rng.random() < 0.5:
            return self.foreign_member_set()
        return self.harmless_member_set()

    def claim_request(self):
        req = pb.ClaimRequest()
        r = self.rng.random()
        req.cluster_name = CLUSTER_NAME if r < 0.7 else self.rng.choice(["", "ringmq", CLUSTER_NAME + "x"])
        req.client_id = self.junk_id()
        req.node = self.rng.choice([FAKE, "n2", TARGET, "ghost", ""] + WEIRD_NAMES[:4])
        req.ticket.boot_id = self.rng.choice([0, self.fake_boot, self.pick(U64)])
        req.ticket.connection = self.pick(U64)
        if self.rng.random() < 0.1 and req.node not in self.ctx.incarnations:
            req.client_id = self.rng.choice(sorted(self.ctx.clients))  # refused: not a member
        return req

    def kick_request(self):
        req = pb.KickRequest()
        r = self.rng.random()
        req.cluster_name = CLUSTER_NAME if r < 0.7 else self.rng.choice(["", "ringmq", CLUSTER_NAME + "x"])
        if self.rng.random() < 0.15:
            # A real client with a ticket of another boot of n1: must stay connected.
            req.client_id = self.rng.choice(sorted(self.ctx.clients))
            req.ticket.boot_id = self.ctx.n1_boot ^ self.rng.choice([1 << 1, 1 << 40, (1 << 64) - 2])
        else:
            req.client_id = self.junk_id()
            req.ticket.boot_id = self.rng.choice([0, self.ctx.n1_boot, self.pick(U64)])
        req.ticket.connection = self.pick(U64)
        return req

    # ---- the jobs

    def job(self, rpc, scenario, **fields):
        job = {"index": self.index, "rpc": rpc, "scenario": scenario}
        job.update(fields)
        self.index += 1
        return job

    def next_job(self):
        r = self.rng.random()
        if r < 0.45:
            return self.semantic_job()
        if r < 0.87:
            return self.mutated_job()
        return self.abuse_job()

    def semantic_job(self):
        rng = self.rng
        choice = rng.choices(["member", "member", "member", "before_hello", "wrong_cluster",
                              "unknown_node", "after_finish", "replay", "numbered", "empty",
                              "exchange", "claim", "kick"],
                             [6, 6, 6, 2, 1, 2, 1, 1, 2, 1, 2, 2, 2])[0]
        if choice == "replay" and not self.recent_streams:
            choice = "member"
        if choice == "member":
            batches = [self.batch(self.opening())]
            for _ in range(rng.randint(1, 6)):
                batches.append(self.batch(self.wrong_frames(rng.randint(1, 8))))
                if rng.random() < 0.15:
                    batches.append(batches[-1])  # the same batch again
            job = self.job("Stream", "member", batches=hexed(batches),
                           end=rng.choice(["half_close", "half_close", "hold", "cancel_after_reply"]),
                           expect=["OK", "CANCELLED"], member=True)
            self.recent_streams.append(job)
            return job
        if choice == "replay":
            old = rng.choice(self.recent_streams)
            return self.job("Stream", "replay", batches=old["batches"], end="half_close",
                            expect=["OK", "CANCELLED"], member=True, replay_of=old["index"])
        if choice == "numbered":
            batches = [self.batch(self.opening()), self.batch(self.numbered_forwards())]
            if rng.random() < 0.5:
                batches.append(batches[-1])
            return self.job("Stream", "numbered", batches=hexed(batches), end="half_close",
                            expect=["OK", "CANCELLED"], member=True)
        if choice == "before_hello":
            frames = self.wrong_frames(rng.randint(1, 3))
            frames = [f for f in frames if f.WhichOneof("kind") != "hello"] or [pb.PeerFrame()]
            if rng.random() < 0.3:
                frames.append(self.hello_frame())  # a Hello too late: the first frame decides
            batches = [self.batch(frames)]
            if rng.random() < 0.3:
                batches.insert(0, self.batch([]))  # an empty batch first changes nothing
            return self.job("Stream", "before_hello", batches=hexed(batches), end="half_close",
                            expect=["INVALID_ARGUMENT"])
        if choice == "wrong_cluster":
            cluster = rng.choice(["", "ringmq", CLUSTER_NAME + "x", CLUSTER_NAME.upper(), CLUSTER_NAME + "\x00"])
            batches = [self.batch([self.hello_frame(node=rng.choice([FAKE, "ghost"]), cluster=cluster)]
                                  + self.wrong_frames(rng.randint(0, 3)))]
            return self.job("Stream", "wrong_cluster", batches=hexed(batches), end="half_close",
                            expect=["FAILED_PRECONDITION"])
        if choice == "unknown_node":
            node = rng.choice(WEIRD_NAMES + ["ghost", TARGET])
            if node in (FAKE, "n2"):
                node = "ghost"
            batches = [self.batch([self.hello_frame(node=node)] + self.wrong_frames(rng.randint(0, 3)))]
            return self.job("Stream", "unknown_node", batches=hexed(batches), end="half_close",
                            expect=["FAILED_PRECONDITION"])
        if choice == "after_finish":
            frames = [f for f in self.wrong_frames(2) if f.WhichOneof("kind") != "hello"] or [pb.PeerFrame()]
            batches = [self.batch(frames)] + [self.batch(self.opening())] * rng.randint(5, 50)
            return self.job("Stream", "after_finish", batches=hexed(batches), end="half_close",
                            expect=["INVALID_ARGUMENT"])
        if choice == "empty":
            batches = [self.batch([])] * rng.choice([0, 1, 3])
            return self.job("Stream", "empty", batches=hexed(batches), end="half_close", expect=["OK"])
        if choice == "exchange":
            ms = self.exchange_request()
            expect = ["OK"] if ms.cluster_name == CLUSTER_NAME else ["FAILED_PRECONDITION"]
            return self.job("Exchange", "exchange", messages=hexed([ms.SerializeToString()]), expect=expect)
        if choice == "claim":
            req = self.claim_request()
            member = req.node in (FAKE, "n2")
            expect = ["OK"] if req.cluster_name == CLUSTER_NAME and member else ["FAILED_PRECONDITION"]
            return self.job("Claim", "claim", messages=hexed([req.SerializeToString()]), expect=expect)
        req = self.kick_request()
        expect = ["OK"] if req.cluster_name == CLUSTER_NAME else ["FAILED_PRECONDITION"]
        closed = False if req.client_id in self.ctx.clients else None
        return self.job("Kick", "kick", messages=hexed([req.SerializeToString()]), expect=expect,
                        closed=closed)

    def mutate(self, data, rpc):
        names = []
        seeds = self.seeds[rpc]
        for mutation in self.rng.choices(MUTATION_FUNCTIONS, MUTATION_WEIGHTS, k=self.rng.choice([1, 1, 2, 2, 3, 4, 6])):
            data = mutation(self.rng, data, seeds)[:MAX_MUTATED]
            names.append(mutation.__name__[len("mutate_"):])
        return data, names

    def mutated_job(self):
        rng = self.rng
        rpc = rng.choices(["Stream", "Exchange", "Claim", "Kick"], [6, 2, 2, 1])[0]
        if rpc != "Stream":
            data, names = self.mutate(rng.choice(self.seeds[rpc]), rpc)
            return self.job(rpc, "mutated", messages=hexed([data]), mutations=names)
        names, batches = [], []
        first_mutated = rng.random() < 0.3
        if not first_mutated:
            batches.append(self.batch(self.opening()))
        for _ in range(rng.randint(1, 5)):
            data, applied = self.mutate(rng.choice(self.seeds["Stream"]), "Stream")
            batches.append(data)
            names += applied
        return self.job("Stream", "mutated", batches=hexed(batches), end=rng.choice(["half_close", "hold"]),
                        mutations=names, member=not first_mutated)

    def abuse_job(self):
        rng = self.rng
        choice = rng.choices(["concurrent", "open_cancel", "unary_flood", "drop_connection", "large",
                              "raw", "oversize"], [3, 3, 2, 2, 1, 3, 0.1])[0]
        if choice == "concurrent":
            streams = []
            for _ in range(rng.choice([8, 16, 32, 64])):
                batches = [self.batch(self.opening())] + [self.batch(self.wrong_frames(rng.randint(1, 3)))
                                                          for _ in range(rng.randint(0, 2))]
                streams.append(hexed(batches))
            return self.job("Stream", "concurrent", streams=streams, end=rng.choice(["half_close", "hold"]),
                            expect=["OK", "CANCELLED"], member=True)
        if choice == "open_cancel":
            streams = []
            for _ in range(rng.choice([10, 50, 100])):
                streams.append(hexed([self.batch(self.opening())]) if rng.random() < 0.5 else [])
            return self.job("Stream", "open_cancel", streams=streams, end="cancel_at_once", member=True)
        if choice == "unary_flood":
            rpc = rng.choice(["Exchange", "Claim", "Kick"])
            builder = {"Exchange": self.exchange_request, "Claim": self.claim_request,
                       "Kick": self.kick_request}[rpc]
            messages = [builder().SerializeToString() for _ in range(rng.choice([20, 50, 100]))]
            return self.job(rpc, "unary_flood", messages=hexed(messages), concurrent=True,
                            cancel_some=rng.random() < 0.5)
        if choice == "drop_connection":
            streams = [hexed([self.batch(self.opening()), self.batch(self.wrong_frames(2))])
                       for _ in range(rng.randint(1, 8))]
            return self.job("Stream", "drop_connection", streams=streams, end="drop_connection", member=True)
        if choice == "large":
            # Several MiB in one batch: tens of thousands of route deltas, or big messages.
            frames = self.opening()
            if rng.random() < 0.5:
                for i in range(rng.choice([10000, 50000])):
                    f = pb.PeerFrame()
                    f.route_delta.seq = i + 2
                    f.route_delta.route.filter = f"grpc-fuzz/junk/large/{i}"
                    f.route_delta.route.count = rng.choice([0, 1])
                    frames.append(f)
            else:
                for _ in range(rng.choice([4, 16])):
                    f = pb.PeerFrame()
                    f.retained.entry.message.topic = f"grpc-fuzz/junk/large/{rng.randrange(8)}"
                    f.retained.entry.message.payload = b"\x00" * (512 * 1024)
                    f.retained.entry.version.hlc = 1 << 20
                    frames.append(f)
            return self.job("Stream", "large", batches=hexed([self.batch(frames)]), end="half_close",
                            expect=["OK", "CANCELLED"], member=True)
        if choice == "oversize":
            rpc = rng.choice(["Stream", "Exchange"])
            return self.job(rpc, "oversize", oversize=NODE_LIMIT + rng.choice([1, 4096]),
                            expect=["RESOURCE_EXHAUSTED", "CANCELLED", "UNAVAILABLE", "INTERNAL"])
        return self.job("raw", "raw", messages=hexed([raw_bytes(rng)]))


# --------------------------------------------------------------------------
# Raw bytes on the peer port: HTTP/2 that is not, or that is malformed


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(kind, flags, stream, payload, length=None):
    length = len(payload) if length is None else length
    return struct.pack(">I", length)[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def raw_bytes(rng):
    settings = h2_frame(4, 0, 0, b"")
    choice = rng.randrange(12)
    if choice == 0:
        return rng.randbytes(rng.randint(1, 4096))
    if choice == 1:
        return b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    if choice == 2:
        return H2_PREFACE[:rng.randint(1, len(H2_PREFACE) - 1)] + rng.randbytes(32)
    if choice == 3:  # SETTINGS_INITIAL_WINDOW_SIZE beyond 2^31 - 1, SETTINGS_MAX_FRAME_SIZE too small
        return H2_PREFACE + h2_frame(4, 0, 0, struct.pack(">HI", 4, 0xFFFFFFFF) + struct.pack(">HI", 5, 1))
    if choice == 4:  # HEADERS on stream 0 and garbage HPACK on stream 1
        return H2_PREFACE + settings + h2_frame(1, 4, 0, b"\x82") + h2_frame(1, 5, 1, rng.randbytes(40))
    if choice == 5:  # DATA on a stream never opened
        return H2_PREFACE + settings + h2_frame(0, 1, 7, b"\x00\x00\x00\x00\x05hello")
    if choice == 6:  # a frame announcing 16 MiB - 1 that never comes
        return H2_PREFACE + settings + h2_frame(0, 0, 1, b"", length=(1 << 24) - 1)
    if choice == 7:  # a flood of PINGs
        return H2_PREFACE + settings + h2_frame(6, 0, 0, b"\x00" * 8) * 2000
    if choice == 8:  # WINDOW_UPDATE of 0, RST_STREAM and CONTINUATION out of place
        return (H2_PREFACE + settings + h2_frame(8, 0, 0, b"\x00\x00\x00\x00")
                + h2_frame(3, 0, 0, b"\x00\x00\x00\x08") + h2_frame(9, 4, 3, b"\x82"))
    if choice == 9:  # a SETTINGS flood
        return H2_PREFACE + settings * 5000
    if choice == 10:  # a stream depending on itself
        return H2_PREFACE + settings + h2_frame(2, 0, 3, b"\x00\x00\x00\x03\x10")
    return H2_PREFACE + settings + h2_frame(7, 0, 0, b"\x00\x00\x00\x00\x00\x00\x00\x02")  # GOAWAY


def send_raw(address, data):
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1.0) as sock:
            sock.sendall(data)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                sock.settimeout(RAW_IDLE_S)
                try:
                    if not sock.recv(65536):
                        return "closed"
                except socket.timeout:
                    return "idle"
            return "budget"
    except OSError as e:
        return "error-" + type(e).__name__


# --------------------------------------------------------------------------
# Sending the jobs


def code_name(code):
    return code.name if code is not None else "NONE"


class Peer:
    """The fake peer's calls to n1, over one channel (one HTTP/2 connection) of its own."""

    def __init__(self, address):
        self.address = address
        self.channel = grpc.insecure_channel(address, options=GRPC_OPTIONS)
        self.methods = {name: self.method(self.channel, name) for name in ("Stream", "Exchange", "Claim", "Kick")}

    @staticmethod
    def method(channel, name):
        if name == "Stream":
            return channel.stream_stream(SERVICE + name)  # no serializers: raw bytes both ways
        return channel.unary_unary(SERVICE + name)

    def close(self):
        self.channel.close()

    def stream(self, batches, end, methods=None):
        """Runs one stream; (status name, reply batches)."""
        stream_method = (methods or self.methods)["Stream"]
        done = threading.Event()
        holder = {}

        def requests():
            for b in batches:
                if done.is_set():
                    return
                yield b
            if end == "hold" and not done.wait(HOLD_S):
                call = holder.get("call")
                if call is not None:
                    call.cancel()

        call = stream_method(requests(), timeout=DEADLINE_S)
        holder["call"] = call
        if end == "cancel_at_once":
            call.cancel()
            done.set()
            return code_name(call.code()), []
        replies = []
        try:
            for reply in call:
                replies.append(reply)
                if end == "cancel_after_reply":
                    call.cancel()
                    break
        except grpc.RpcError:
            pass
        finally:
            done.set()
        return code_name(call.code()), replies

    def unary(self, rpc, data, cancel=False):
        future = self.methods[rpc].future(data, timeout=DEADLINE_S)
        if cancel:
            future.cancel()
        try:
            return "OK", future.result()
        except grpc.FutureCancelledError:
            return "CANCELLED", None
        except grpc.RpcError as e:
            return code_name(e.code()), None


class Outcomes:
    def __init__(self):
        self.lock = threading.Lock()
        self.codes = collections.Counter()      # (rpc, status) -> calls
        self.messages = collections.Counter()   # rpc -> messages sent
        self.scenarios = collections.Counter()
        self.withheld = collections.Counter()   # why -> messages not sent
        self.anomalies = []
        self.stuck = []

    def call(self, job, code, count):
        with self.lock:
            self.codes[(job["rpc"], code)] += 1
            self.messages[job["rpc"]] += count
            if code == "DEADLINE_EXCEEDED":
                self.stuck.append(f"job {job['index']} ({job['rpc']} {job['scenario']}): no status "
                                  f"within {DEADLINE_S:.0f} s")

    def anomaly(self, job, what):
        with self.lock:
            self.anomalies.append(f"job {job['index']} ({job['rpc']} {job['scenario']}): {what}")

    def withhold(self, why):
        with self.lock:
            self.withheld[why] += 1

    def total_messages(self):
        with self.lock:
            return sum(self.messages.values())


def run_job(job, peer, ctx, outcomes):
    """Sends one job and records how each of its calls ended."""
    with outcomes.lock:
        outcomes.scenarios[job["scenario"]] += 1
    rpc = job["rpc"]
    if rpc == "raw":
        for data in job["messages"]:
            outcome = send_raw(peer.address, bytes.fromhex(data))
            with outcomes.lock:
                outcomes.codes[("raw", outcome)] += 1
        return
    if "oversize" in job:
        run_oversize(job, peer, outcomes)
        return
    if rpc == "Stream":
        streams = job["streams"] if "streams" in job else [job["batches"]]
        runs = []
        for hexes in streams:
            batches = []
            for i, h in enumerate(hexes):
                data = bytes.fromhex(h)
                why = withheld_batch(data, i == 0, ctx)
                if why:
                    outcomes.withhold(why)
                    break
                batches.append(data)
            runs.append(batches)
        if job["end"] == "drop_connection":
            run_dropped(job, peer, runs, outcomes)
        elif len(runs) == 1:
            record_stream(job, peer.stream(runs[0], job["end"]), runs[0], outcomes)
        else:
            with ThreadPoolExecutor(min(len(runs), 64)) as pool:
                results = list(pool.map(lambda b: peer.stream(b, job["end"]), runs))
            for batches, result in zip(runs, results):
                record_stream(job, result, batches, outcomes)
        return
    messages = []
    for h in job["messages"]:
        data = bytes.fromhex(h)
        why = withheld_unary(rpc, data, ctx)
        if why:
            outcomes.withhold(why)
        else:
            messages.append(data)
    if job.get("concurrent"):
        futures = [peer.methods[rpc].future(m, timeout=DEADLINE_S) for m in messages]
        for i, future in enumerate(futures):
            if job.get("cancel_some") and i % 3 == 0:
                future.cancel()
        for future in futures:
            try:
                future.result()
                code = "OK"
            except grpc.FutureCancelledError:
                code = "CANCELLED"
            except grpc.RpcError as e:
                code = code_name(e.code())
            outcomes.call(job, code, 1)
        return
    for data in messages:
        code, reply = peer.unary(rpc, data)
        outcomes.call(job, code, 1)
        expect = job.get("expect")
        if expect and code not in expect:
            outcomes.anomaly(job, f"status {code}, expected {'/'.join(expect)}")
        if rpc == "Kick" and code == "OK" and job.get("closed") is False:
            closed = pb.KickResponse.FromString(reply).closed
            if closed:
                outcomes.anomaly(job, "a Kick with a stale ticket closed a real client's connection")


def record_stream(job, result, batches, outcomes):
    code, replies = result
    outcomes.call(job, code, len(batches))
    expect = job.get("expect")
    if expect and code not in expect and len(batches) == len(job.get("batches", batches)):
        outcomes.anomaly(job, f"status {code}, expected {'/'.join(expect)}")
    if job.get("member") and replies and code == "OK" and batches:
        # (A settlement of what an earlier stream of n3 sent may come before it: the node tells
        # it on the stream open now.)
        kinds = [f.WhichOneof("kind") for r in replies for f in (parse_or_none(pb.PeerBatch, r) or pb.PeerBatch()).frames]
        if "hello_ack" not in kinds:
            outcomes.anomaly(job, f"a member's Hello was answered without a HelloAck: {kinds[:5]}")


def run_dropped(job, peer, runs, outcomes):
    """Streams on a connection of their own, which is closed under them."""
    channel = grpc.insecure_channel(peer.address, options=GRPC_OPTIONS)
    stream = Peer.method(channel, "Stream")
    calls = [stream(iter(batches), timeout=DEADLINE_S) for batches in runs]
    time.sleep(0.005)
    channel.close()
    for batches, call in zip(runs, calls):
        try:
            for _ in call:
                pass
        except grpc.RpcError:
            pass
        outcomes.call(job, code_name(call.code()), len(batches))


def run_oversize(job, peer, outcomes):
    """One message beyond the node's receive limit: refused, and the node goes on."""
    size = job["oversize"]
    if job["rpc"] == "Stream":
        b = pb.PeerBatch()
        f = b.frames.add()
        f.forward.message.topic = "grpc-fuzz/junk/oversize"
        f.forward.message.payload = b"\x00" * size
        code, _ = peer.stream([b.SerializeToString()], "half_close")
    else:
        ms = pb.MemberSet()
        ms.cluster_name = "grpc-fuzz-oversize"
        ms.sender = "x" * size
        code, _ = peer.unary("Exchange", ms.SerializeToString())
    outcomes.call(job, code, 1)
    if code not in job["expect"]:
        outcomes.anomaly(job, f"status {code}, expected {'/'.join(job['expect'])}")


# --------------------------------------------------------------------------
# The real clients and the checks


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


class Run:
    def __init__(self, args, cluster, ctx, clients, artifacts):
        self.args, self.cluster, self.ctx, self.clients = args, cluster, ctx, clients
        self.artifacts = artifacts
        self.outcomes = Outcomes()
        self.round_trips = []
        self.slow = self.hangs = self.crashes = 0
        self.failures = []
        self.failure_kinds = collections.Counter()
        self.kicks = collections.Counter()
        self.checks = 0
        target = cluster[TARGET]
        self.peer = Peer(target.peer_address)
        self.probe_channel = grpc.insecure_channel(target.peer_address, options=GRPC_OPTIONS)
        self.health = self.probe_channel.unary_unary(HEALTH_CHECK)
        self.exchange = self.probe_channel.unary_unary(SERVICE + "Exchange")
        self.kick = self.probe_channel.unary_unary(SERVICE + "Kick")

    def close(self):
        self.peer.close()
        self.probe_channel.close()

    # ---- sending

    def execute(self, jobs_source):
        """Batches of jobs, each followed by the checks; stops at the first crash or hang."""
        with ThreadPoolExecutor(WORKERS) as pool:
            for batch in jobs_source:
                list(pool.map(lambda j: run_job(j, self.peer, self.ctx, self.outcomes), batch))
                if not self.check(batch):
                    return False
        return True

    # ---- checks after a batch

    def check(self, jobs):
        self.checks += 1
        dead = self.cluster.dead()
        if dead:
            return self.crashed(jobs, dead)
        for what in (self.grpc_ok, self.probe_ok, self.http_ok):
            problem = what(jobs)
            if problem:
                if self.cluster.dead():
                    return self.crashed(jobs, self.cluster.dead())
                return self.hung(jobs, problem)
        failures = self.clients.traffic()
        failures += self.retained_on_target()
        if self.checks % 5 == 0:
            failures += self.kick_victim()
        failures += self.clients.unexpected_closes()
        if self.outcomes.stuck:
            failures += self.outcomes.stuck
            self.outcomes.stuck = []
        for failure in failures:
            self.fail(jobs, failure)
        return not failures or self.args.keep_going

    def grpc_ok(self, jobs):
        """n1's health service and an Exchange answer within 1 s (retried once after 1 s)."""
        request = pb.MemberSet(cluster_name=CLUSTER_NAME, sender="grpc-fuzz-probe").SerializeToString()
        for attempt in range(2):
            try:
                health = self.health(b"", timeout=GRPC_PROBE_DEADLINE_S)
                self.exchange(request, timeout=GRPC_PROBE_DEADLINE_S)
                if health == b"\x08\x01":  # HealthCheckResponse{status: SERVING}
                    return None
                problem = f"the health service answered {health.hex()} (not SERVING)"
            except grpc.RpcError as e:
                problem = f"gRPC probe: {code_name(e.code())} {e.details()}"
            if attempt == 0:
                time.sleep(PROBE_RETRY_AFTER_S)
        return problem

    def probe_ok(self, jobs):
        rtt, refused = self.clients.probe_round_trip(PROBE_DEADLINE_S)
        if rtt is not None:
            self.round_trips.append(rtt)
            return None
        self.slow += 1
        time.sleep(PROBE_RETRY_AFTER_S)
        retry, refused_again = self.clients.probe_round_trip(PROBE_RETRY_DEADLINE_S)
        path = self.save_batch(jobs, "slow")
        print(f"slow probe after jobs {jobs[0]['index']}..{jobs[-1]['index']}: "
              f"{'refused 0x%02x' % refused if refused else 'lost'}, retry "
              f"{'%.1f ms' % (retry * 1000) if retry is not None else 'refused 0x%02x' % refused_again if refused_again else 'lost'}"
              f"; batch saved to {path}", flush=True)
        if retry is not None:
            self.round_trips.append(retry)
            return None
        return "the probe's QoS 1 message did not come back" + (
            f" (PUBACK 0x{refused_again:02x})" if refused_again else "")

    def http_ok(self, jobs):
        target = self.cluster[TARGET]
        for attempt in range(2):
            live, _ = target.http_get("/livez")
            ready, _ = target.http_get("/readyz")
            if live == 200 and ready is not None:
                return None
            if attempt == 0:
                time.sleep(PROBE_RETRY_AFTER_S)
        return f"HTTP: /livez {live}, /readyz {ready}"

    def retained_on_target(self):
        """n1's retained message of the writer's topic is the value last written (admin API)."""
        topic = urllib.parse.quote(self.ctx.retained_topic, safe="")
        status, body = self.cluster[TARGET].http_get(f"/api/v1/retained?filter={topic}")
        if status != 200:
            return [f"/api/v1/retained answered {status}"]
        payloads = [m.get("payload") for m in json.loads(body)["data"]]
        if payloads != [self.clients.retained_written]:
            return [f"n1's retained message is {payloads}, not the last one written "
                    f"({self.clients.retained_written!r})"]
        return []

    def kick_victim(self):
        """A Kick naming another boot of n1 must leave the victim; one naming n1's must close it."""
        failures = []
        victim = self.clients.victim
        stale = pb.KickRequest(cluster_name=CLUSTER_NAME, client_id=self.ctx.victim)
        stale.ticket.boot_id = self.ctx.n1_boot ^ 2
        stale.ticket.connection = (1 << 64) - 1
        fresh = pb.KickRequest(cluster_name=CLUSTER_NAME, client_id=self.ctx.victim)
        fresh.ticket.boot_id = self.ctx.n1_boot
        fresh.ticket.connection = (1 << 64) - 1
        try:
            reply = pb.KickResponse.FromString(self.kick(stale.SerializeToString(), timeout=DEADLINE_S))
            if reply.closed or victim.wait(lambda c: c.closed, 0.05):
                failures.append("a Kick with another boot id of n1 closed the victim's connection")
            reply = pb.KickResponse.FromString(self.kick(fresh.SerializeToString(), timeout=DEADLINE_S))
            gone = victim.wait(lambda c: c.closed, 2.0)
            self.kicks["closed" if reply.closed and gone else "not closed"] += 1
            if not reply.closed or not gone:
                failures.append(f"a Kick with n1's boot id left the victim connected (closed={reply.closed}, "
                                f"connection: {victim.closed or 'open'})")
        except grpc.RpcError as e:
            failures.append(f"Kick of the victim: {code_name(e.code())} {e.details()}")
        victim.closing = True
        victim.close()
        target = self.cluster[TARGET]
        self.clients.victim = MqttClient(target.ip, target.mqtt_port, self.ctx.victim)
        try:
            self.clients.victim.connect()
        except (OSError, RuntimeError) as e:
            failures.append(f"the victim could not connect again: {e}")
        return failures

    # ---- failures

    def fail(self, jobs, failure):
        """Records a failure; with --keep-going one of a kind seen before is only counted."""
        kind = re.sub(r"\d+", "N", failure)
        self.failure_kinds[kind] += 1
        self.failures.append(failure)
        if self.failure_kinds[kind] > 1:
            return
        path = self.save_batch(jobs, "failed")
        print(f"FAILURE after jobs {jobs[0]['index']}..{jobs[-1]['index']}: {failure}; batch saved to {path}",
              flush=True)

    def save_batch(self, jobs, what):
        path = os.path.join(self.artifacts, f"{what}-batch-{jobs[0]['index']}-{jobs[-1]['index']}.jsonl")
        with open(path, "w") as f:
            for job in jobs:
                f.write(json.dumps(job) + "\n")
        return path

    def crashed(self, jobs, dead):
        self.crashes += 1
        path = self.save_batch(jobs, "crash")
        for node in dead:
            print(f"CRASH: {node.node_id} died ({describe_status(node.proc.returncode)}) during jobs "
                  f"{jobs[0]['index']}..{jobs[-1]['index']}; batch saved to {path}\n"
                  f"--- {node.node_id} log tail ---\n{node.log_tail()}\n---", flush=True)
        return False

    def hung(self, jobs, what):
        self.hangs += 1
        path = self.save_batch(jobs, "hang")
        target = self.cluster[TARGET]
        stacks = os.path.join(self.artifacts, "n1-hang-stacks.txt")
        saved = target.save_stacks(stacks)
        print(f"HANG: {what} (retried after {PROBE_RETRY_AFTER_S:.0f} s) after jobs "
              f"{jobs[0]['index']}..{jobs[-1]['index']}; batch saved to {path}"
              + (f"; backtraces in {stacks}" if saved else "")
              + f"\n--- n1 log tail ---\n{target.log_tail()}\n---", flush=True)
        return False


# --------------------------------------------------------------------------
# The end: state that must have survived


def end_checks(run):
    """After the last batch: readiness, deliveries, the persistent session, retained, members."""
    cluster, ctx, clients = run.cluster, run.ctx, run.clients
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
    failures += check_members(cluster, run.initial_view)
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


def check_members(cluster, initial):
    """Every node lists n1, n2 and n3 as at the start: no member invented, none lost."""
    failures = []
    wanted = sorted((m["id"], m["incarnation"], m["address"]) for m in initial["members"])
    for node_id, node in cluster.nodes.items():
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


# --------------------------------------------------------------------------
# The run


def discover(cluster, tag, leave_out=()):
    """Says Hello as n3 once (with its route snapshot) to learn n1's boot id and member set."""
    channel = grpc.insecure_channel(cluster[TARGET].peer_address, options=GRPC_OPTIONS)
    try:
        batch = pb.PeerBatch()
        hello = batch.frames.add().hello
        hello.node, hello.cluster_name, hello.boot_id = FAKE, CLUSTER_NAME, 1
        batch.frames.add().route_snapshot.seq = 0
        batch.frames.add().retained_snapshot.last = True
        call = channel.stream_stream(SERVICE + "Stream")(iter([batch.SerializeToString()]), timeout=DEADLINE_S)
        for reply in call:
            for f in pb.PeerBatch.FromString(reply).frames:
                if f.WhichOneof("kind") == "hello_ack":
                    call.cancel()
                    return Context(f.hello_ack, tag, leave_out)
        raise RuntimeError("n1 answered a Hello of n3 without a HelloAck")
    finally:
        channel.close()


def batches_of(generator, args, outcomes):
    """Jobs in batches of --probe-every, until --messages have been generated."""
    messages = 0
    while messages < args.messages:
        batch = []
        for _ in range(args.probe_every):
            job = generator.next_job()
            messages += job_messages(job)
            batch.append(job)
            if messages >= args.messages:
                break
        yield batch


def job_messages(job):
    if "streams" in job:
        return sum(len(s) for s in job["streams"])
    if "batches" in job:
        return len(job["batches"])
    return len(job.get("messages", [])) if job["rpc"] != "raw" else 0


def replay_batches(path, size):
    with open(path) as f:
        jobs = [json.loads(line) for line in f if line.strip()]
    for i in range(0, len(jobs), size):
        yield jobs[i:i + size]


def report(run, seconds, label):
    o = run.outcomes
    for node_id, node in run.cluster.nodes.items():
        notable, fatal, unframed = log_findings(node.log_text())
        for key, (count, example) in sorted(notable.items()):
            print(f"{node_id} log: {count} x {key}   e.g. {example[:240]}")
        if unframed:
            print(f"{node_id} log: {len(unframed)} lines outside the log format, e.g. {unframed[0][:240]!r}")
        if fatal:
            run.crashes += 1
            print(f"{node_id} log: sanitizer/abort report:\n" + "\n".join(fatal[:40]))
    calls = collections.defaultdict(list)
    for (rpc, code), n in sorted(o.codes.items()):
        calls[rpc].append(f"{code}={n}")
    for rpc, codes in calls.items():
        print(f"grpc_fuzz: {rpc}: {' '.join(codes)}")
    print("grpc_fuzz: jobs: " + " ".join(f"{k}={v}" for k, v in sorted(o.scenarios.items())))
    if o.withheld:
        print("grpc_fuzz: withheld (what a member may do by design, or a class left out): "
              + "; ".join(f"{why}: {n}" for why, n in o.withheld.most_common()))
    if run.clients.refused:
        print("grpc_fuzz: real publishes refused for a moment (retried): "
              + " ".join(f"{k}={v}" for k, v in sorted(run.clients.refused.items())))
    for kind, n in run.failure_kinds.most_common():
        print(f"grpc_fuzz: failed check, {n} x: {kind}")
    for anomaly in o.anomalies[:30]:
        print(f"grpc_fuzz: anomaly: {anomaly}")
    if len(o.anomalies) > 30:
        print(f"grpc_fuzz: ... {len(o.anomalies) - 30} more anomalies")
    ms = [r * 1000 for r in run.round_trips]
    sent = sum(o.messages.values())
    print(f"grpc_fuzz: messages={sent} (" + " ".join(f"{k}={v}" for k, v in sorted(o.messages.items()))
          + f") calls={sum(n for (rpc, _), n in o.codes.items() if rpc != 'raw')} "
          f"raw_connections={sum(n for (rpc, _), n in o.codes.items() if rpc == 'raw')} "
          f"crashes={run.crashes} hangs={run.hangs} failures={len(run.failures)} anomalies={len(o.anomalies)} "
          f"slow_probes={run.slow} probe_ms p50={percentile(ms, 0.5):.2f} p99={percentile(ms, 0.99):.2f} "
          f"max={max(ms) if ms else float('nan'):.2f} kicks={dict(run.kicks)} seconds={seconds:.1f} {label}",
          flush=True)


def parse_args():
    parser = argparse.ArgumentParser(description="A fake peer fuzzing the cluster's gRPC service.")
    parser.add_argument("--ringmq", required=True, help="the broker binary")
    parser.add_argument("--messages", type=int, default=5000, help="protobuf messages to send (about)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--artifacts", help="where failing inputs and the nodes' logs go (default: a temp dir)")
    parser.add_argument("--replay", help="a saved .jsonl batch: send its jobs, then check")
    parser.add_argument("--probe-every", type=int, default=20, help="jobs between checks")
    parser.add_argument("--leave-out", default="", type=lambda s: [k for k in s.split(",") if k],
                        help="classes of input that find open findings, left out (withheld): "
                             + ", ".join(LEAVE_OUT))
    parser.add_argument("--keep-going", action="store_true",
                        help="go on after a failed check (crashes and hangs still stop the run)")
    return parser.parse_args()


def main():
    args = parse_args()
    unknown = [k for k in args.leave_out if k not in LEAVE_OUT]
    if unknown:
        print(f"grpc_fuzz: --leave-out: unknown {', '.join(unknown)} (known: {', '.join(LEAVE_OUT)})")
        return 2
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    artifacts = os.path.abspath(args.artifacts or tempfile.mkdtemp(prefix="ringmq-grpc-fuzz-"))
    os.makedirs(artifacts, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ringmq-grpc-fuzz-proto-") as proto_out:
        load_protos(proto_out)
        cluster = Cluster(os.path.abspath(args.ringmq), artifacts)
        run = None
        try:
            initial = cluster.start()
            tag = f"{seed:08x}"
            ctx = discover(cluster, tag, args.leave_out)
            clients = RealClients(cluster, ctx)
            clients.start()
            run = Run(args, cluster, ctx, clients, artifacts)
            run.initial_view = initial
            print(f"grpc_fuzz: seed={seed} nodes={','.join(n.peer_address for n in cluster.nodes.values())} "
                  f"target={TARGET} speaking as {FAKE}; logs in {artifacts}", flush=True)
            if args.replay:
                source = replay_batches(args.replay, args.probe_every)
            else:
                source = batches_of(Generator(random.Random(seed), ctx), args, run.outcomes)
            survived = run.execute(source)
            if survived:
                for failure in end_checks(run):
                    run.failures.append(failure)
                    print(f"FAILURE at the end: {failure}", flush=True)
        except BaseException:
            cluster.stop()
            for node in cluster.nodes.values():
                print(f"--- {node.node_id} log tail ---\n{node.log_tail()}", file=sys.stderr)
            raise
        label = f"replay={args.replay}" if args.replay else f"seed={seed}"
        for c in run.clients.all():
            c.closing = True
            c.close()
        run.close()
        report(run, time.monotonic() - started, label)
        ok = run.crashes == 0 and run.hangs == 0 and not run.failures
        for node_id, status in cluster.stop().items():
            if status == 0:
                continue
            ok = False
            print(f"FAILURE: {node_id} did not stop cleanly on SIGTERM ({describe_status(status)})\n"
                  f"--- {node_id} log tail ---\n{cluster[node_id].log_tail()}")
        if ok:
            print("grpc_fuzz: every node stopped cleanly on SIGTERM (exit code 0)")
    if ok and not args.artifacts:
        shutil.rmtree(artifacts, ignore_errors=True)
    elif ok:
        for node in cluster.nodes.values():
            shutil.rmtree(node.data_dir, ignore_errors=True)
        print(f"grpc_fuzz: nodes' logs in {artifacts}")
    else:
        print(f"grpc_fuzz: artifacts and nodes' logs in {artifacts}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
