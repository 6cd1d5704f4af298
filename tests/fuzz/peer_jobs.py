"""The gRPC fuzzer's jobs, drawn from one random.Random: well-formed but wrong frames
and calls, mutated bytes of them, and abuse of the transport (concurrent, cancelled and
dropped streams, floods, oversize messages, raw bytes on the peer port). Every job is
the bytes to send, so that a saved batch replays."""

import collections
import random
import struct

import protowire
from cluster_nodes import CLUSTER_NAME, FAKE, TARGET
from mutations import (BOGUS_PROPERTIES, mutate_bit_flip, mutate_byte_delete, mutate_byte_insert,
                       mutate_byte_replace, mutate_chunk_delete, mutate_chunk_duplicate, mutate_chunk_swap,
                       mutate_truncate)
from peer_messages import pb, rp

NODE_LIMIT = 256 << 20       # the node's SetMaxReceiveMessageSize
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
        """A few stacked mutations of data: (bytes, their names). They draw from a generator of
        their own, seeded from the run's: how much they draw depends on the message's length,
        which n1's boot id and the incarnations change from run to run, and the jobs after this
        one must not."""
        rng = random.Random(self.rng.getrandbits(64))
        names = []
        seeds = self.seeds[rpc]
        for mutation in rng.choices(MUTATION_FUNCTIONS, MUTATION_WEIGHTS, k=rng.choice([1, 1, 2, 2, 3, 4, 6])):
            data = mutation(rng, data, seeds)[:MAX_MUTATED]
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

