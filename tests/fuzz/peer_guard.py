"""What the fake peer knows of the cluster, and what it must not send: the protocol
trusts a member that knows the cluster name (docs/security.md: without TLS only the
network keeps others out), so what it takes from a member by design and that would
change the cluster for real is withheld, as are the classes of input left out
(--leave-out) because they find open findings."""

import warnings

from cluster_nodes import CLUSTER_NAME, FAKE, TARGET
from peer_messages import member_number, pb, rp

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
    """Why a PeerBatch must not be sent (None: it may). `first`: no frame has been sent on the
    stream yet (earlier batches were empty), so this batch's first frame is the stream's Hello."""
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


# Classes of input that find open findings (docs/reliability.md, "What the gRPC fuzzer found"):
# a run can leave them out (--leave-out), so that it looks for others; their frames are withheld.
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


def has_frames(data):
    """True unless data is a PeerBatch without frames (which the node reads past)."""
    batch = parse_or_none(pb.PeerBatch, data)
    return batch is None or len(batch.frames) > 0


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
        # (n1 is no member to itself: its own name is refused like an unknown one.)
        if (req is not None and req.cluster_name == CLUSTER_NAME and req.client_id in ctx.clients
                and req.node in ctx.incarnations and req.node != TARGET):
            return "a Claim of a real client"
    elif rpc == "Kick":
        req = parse_or_none(pb.KickRequest, data)
        if (req is not None and req.cluster_name == CLUSTER_NAME and req.client_id in ctx.clients
                and req.ticket.boot_id == ctx.n1_boot):
            return "a Kick of a real client"
    return None

