"""The fake peer's calls: each job sent to the node over gRPC (or raw bytes over TCP),
with a deadline, and how each call ended."""

import collections
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from peer_guard import has_frames, parse_or_none, withheld_batch, withheld_unary
from peer_messages import SERVICE, pb

DEADLINE_S = 10.0            # of every fuzz call: above cluster.claim_timeout_ms + a kick's 2 s
HOLD_S = 0.05                # a stream held open before it is cancelled
RAW_IDLE_S = 0.05
GRPC_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1),
                ("grpc.enable_retries", 0), ("grpc.use_local_subchannel_pool", 1)]


# An answer any call may get: while a message of hundreds of MiB was on its way, long runs
# saw gRPC refuse other calls with it.
ALWAYS_POSSIBLE = ["RESOURCE_EXHAUSTED"]


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
            batches, first = [], True
            for h in hexes:
                data = bytes.fromhex(h)
                why = withheld_batch(data, first, ctx)
                if why:
                    outcomes.withhold(why)
                    break
                batches.append(data)
                first = first and not has_frames(data)
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
        if expect and code not in expect + ALWAYS_POSSIBLE:
            outcomes.anomaly(job, f"status {code}, expected {'/'.join(expect)}")
        if rpc == "Kick" and code == "OK" and job.get("closed") is False:
            closed = pb.KickResponse.FromString(reply).closed
            if closed:
                outcomes.anomaly(job, "a Kick with a stale ticket closed a real client's connection")


def record_stream(job, result, batches, outcomes):
    code, replies = result
    outcomes.call(job, code, len(batches))
    expect = job.get("expect")
    if expect and code not in expect + ALWAYS_POSSIBLE and len(batches) == len(job.get("batches", batches)):
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
    """One message beyond the node's receive limit, on a connection of its own: refused, and
    the node goes on."""
    size = job["oversize"]
    own = Peer(peer.address)
    try:
        if job["rpc"] == "Stream":
            b = pb.PeerBatch()
            f = b.frames.add()
            f.forward.message.topic = "grpc-fuzz/junk/oversize"
            f.forward.message.payload = b"\x00" * size
            code, _ = own.stream([b.SerializeToString()], "half_close")
        else:
            ms = pb.MemberSet()
            ms.cluster_name = "grpc-fuzz-oversize"
            ms.sender = "x" * size
            code, _ = own.unary("Exchange", ms.SerializeToString())
    finally:
        own.close()
    outcomes.call(job, code, 1)
    if code not in job["expect"]:
        outcomes.anomaly(job, f"status {code}, expected {'/'.join(job['expect'])}")
