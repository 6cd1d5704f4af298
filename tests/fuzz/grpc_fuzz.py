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
     port picked by the kernel and read from the node's log (cluster_nodes.py).
     Python messages are generated at start-up from proto/ with protoc into a
     temporary directory (peer_messages.py; nothing generated is kept); the
     calls are made with gRPC's generic stubs and raw bytes, so that malformed
     messages reach the node as they are (peer_calls.py).
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
     mutation can make one) is withheld and counted (peer_guard.py). Every stream that speaks
     as n3 starts with a Hello, the route snapshot and the end of a retained
     snapshot in one batch, as a real node's opening does.
  4. Each job is one call (or a burst of calls), drawn from random.Random(seed)
     (peer_jobs.py):
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
     writes the next value, which n1's admin API must then show, as it must
     show the members and the epoch of the start; no real client's connection
     may have been closed. Now and then the victim is
     kicked with a ticket of another boot of n1 (it must stay) and with n1's own
     (it must go), and connects again.
  6. At the end, once n1 is ready again (cluster_clients.py): the subscribers got every message the
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
The same seed gives the same jobs; only the values each run's cluster makes up
itself (incarnations, member numbers, n1's boot id) differ in their bytes, and
what a mutation of such a message draws (mutations draw from a generator of
their own per message, so that the jobs after it stay the same).
"""

import argparse
import collections
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import grpc

from broker_process import describe_status, log_findings, save_batch
from cluster_clients import RealClients, check_members, end_checks
from cluster_nodes import CLUSTER_NAME, FAKE, TARGET, Cluster
from mqtt_client import MqttClient
from peer_calls import DEADLINE_S, GRPC_OPTIONS, Outcomes, Peer, code_name, run_job
from peer_guard import LEAVE_OUT, Context
from peer_jobs import Generator
from peer_messages import HEALTH_CHECK, SERVICE, pb
from probe import percentile

PROBE_DEADLINE_S = 0.1       # the probe's QoS 1 round trip
PROBE_RETRY_AFTER_S = 1.0
PROBE_RETRY_DEADLINE_S = 1.0
GRPC_PROBE_DEADLINE_S = 1.0
WORKERS = 8
PROGRESS_EVERY_S = 60.0


class Run:
    """Sends the batches of jobs and checks the cluster after each."""

    def __init__(self, args, cluster, ctx, clients, artifacts, initial_view):
        self.args, self.cluster, self.ctx, self.clients = args, cluster, ctx, clients
        self.initial_view = initial_view
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
        """Batches of jobs, each followed by the checks; stops at the first crash or hang (or, without
        --keep-going, at the first failed check). A line of progress every PROGRESS_EVERY_S."""
        started = last = time.monotonic()
        with ThreadPoolExecutor(WORKERS) as pool:
            for batch in jobs_source:
                list(pool.map(lambda j: run_job(j, self.peer, self.ctx, self.outcomes), batch))
                if not self.check(batch):
                    return False
                if time.monotonic() - last >= PROGRESS_EVERY_S:
                    last = time.monotonic()
                    print(f"grpc_fuzz: {self.outcomes.total_messages()} messages, {self.checks} checks, "
                          f"{len(self.failures)} failed, {last - started:.0f} s", flush=True)
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
        failures += check_members({TARGET: self.cluster[TARGET]}, self.initial_view)
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
        first = f"refused 0x{refused:02x}" if refused else "lost"
        if retry is not None:
            second = f"{retry * 1000:.1f} ms"
        else:
            second = f"refused 0x{refused_again:02x}" if refused_again else "lost"
        print(f"slow probe after jobs {jobs[0]['index']}..{jobs[-1]['index']}: {first}, retry {second}; "
              f"batch saved to {path}", flush=True)
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
        return save_batch(self.artifacts, jobs, what)

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


def batches_of(generator, args):
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
    cluster = Cluster(os.path.abspath(args.ringmq), artifacts)
    try:
        initial = cluster.start()
        ctx = discover(cluster, f"{seed:08x}", args.leave_out)
        clients = RealClients(cluster, ctx)
        clients.start()
        run = Run(args, cluster, ctx, clients, artifacts, initial)
        print(f"grpc_fuzz: seed={seed} nodes={','.join(n.peer_address for n in cluster.nodes.values())} "
              f"target={TARGET} speaking as {FAKE}; logs in {artifacts}", flush=True)
        if args.replay:
            source = replay_batches(args.replay, args.probe_every)
        else:
            source = batches_of(Generator(random.Random(seed), ctx), args)
        if run.execute(source):
            for failure in end_checks(cluster, ctx, clients, initial):
                run.failures.append(failure)
                print(f"FAILURE at the end: {failure}", flush=True)
    except BaseException:
        cluster.stop()
        for node in cluster.started():
            print(f"--- {node.node_id} log tail ---\n{node.log_tail()}", file=sys.stderr)
        raise
    label = f"replay={args.replay}" if args.replay else f"seed={seed}"
    clients.close()
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
