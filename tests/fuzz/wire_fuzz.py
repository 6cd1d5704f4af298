#!/usr/bin/python3
"""Over-the-wire mutation fuzzer for the ringmq broker.

fuzz_decoder (libFuzzer) covers the MQTT codec on its own. This fuzzer covers
what sits around it in a running broker: the TCP and WebSocket listeners, the
Upgrade handshake and frame reassembly, the connection state machine, session
takeover, Wills, persistence and the shutdown path. It starts a broker, sends
it thousands of mutated byte streams, one fresh connection each, and watches
for the two failures a remote client must never be able to cause: a crash and
a hang.

How it works:
  1. It starts the broker (the --ringmq binary) as a child process with one MQTT
     listener and one WebSocket listener on ephemeral loopback ports, no HTTP
     server and a data directory of its own. Ports are read from the broker's
     "listening: listener=... address=HOST:PORT" log lines.
  2. Seeds: every file of tests/fuzz/corpus (fuzz_decoder's seed corpus; its
     first byte, the libFuzzer control byte, names the protocol version and is
     dropped; packets that are not a CONNECT get a CONNECT of that version in
     front), plus client sessions captured at start-up: Paho clients (MQTT 3.1,
     3.1.1 and 5.0: CONNECT with a Will and credentials, SUBSCRIBE with options,
     PUBLISH at QoS 0/1/2 with properties, UNSUBSCRIBE, PINGREQ, DISCONNECT)
     talk to the broker through a recording proxy that keeps what they sent.
  3. Each sequence is a seed with a few mutations from a random.Random(seed)
     schedule: bit flips, byte replace/insert/delete, chunk duplicate/delete/
     swap, splicing two seeds, truncation, remaining lengths overwritten with
     huge or invalid varints, oversized property lengths and bogus properties,
     a packet repeated many times, a second CONNECT, random packet types.
     The same --seed gives the same sequences (the captured seeds are the same
     bytes from run to run; their digest is printed to check).
  4. Sequences alternate between TCP and WebSocket. The WebSocket client is
     built here: an HTTP/1.1 Upgrade (Sec-WebSocket-Protocol: mqtt, a random
     Sec-WebSocket-Key whose Accept is checked), then the bytes in masked
     binary frames, often split into several frames or a fragmented message;
     a few sequences get a mutated frame header or a mutated Upgrade request.
     Each connection writes its bytes (sometimes in several writes), reads what
     comes back until the broker closes or it has been idle briefly, then
     closes (sometimes with a reset). A few connections run at once.
  5. After every --probe-every sequences and at the end: the broker process
     must be alive (else: a crash), and a well-behaved Paho 3.1.1 client,
     connected since the start and subscribed to its own topic at QoS 1, must
     get its own QoS 1 PUBLISH back within 100 ms. A late probe is counted as
     slow and retried a second later; if the retry is not back within 1 s
     either, the broker hangs. Fresh connections to both listeners must also
     still get a CONNACK. The probe's connection must never drop.
  6. On a crash or hang, the last batch of sequences is saved as JSON lines
     (replayable with --replay) next to the broker log, and the log's tail is
     printed; on a hang, gdb's backtraces of the broker are saved if gdb exists.
  7. At the end one summary line; the exit status is 0 only with no crash and
     no hang, and when the broker then stops cleanly (exit code 0) on SIGTERM.

Its pieces are modules of their own, shared with the gRPC fuzzer: mqtt_wire.py
(framing), ws_client.py (the WebSocket client side), broker_process.py (the broker
process), mutations.py, wire_seeds.py (seeds) and probe.py; this file holds the jobs,
sending them and the run.

Run:  /usr/bin/python3 tests/fuzz/wire_fuzz.py --ringmq build/bin/ringmq --sequences 10000 --seed 1
Replay a saved batch:  ... --ringmq build/bin/ringmq --replay ARTIFACTS/crash-batch-....jsonl
"""

import argparse
import base64
import errno
import hashlib
import json
import os
import random
import shutil
import socket
import struct
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from broker_process import HOST, Broker, describe_status, log_findings, save_batch
from mutations import mutate, mutate_bit_flip, mutate_byte_delete, mutate_byte_insert, mutate_chunk_duplicate
from probe import PROBE_DEADLINE_S, PROBE_RETRY_AFTER_S, PROBE_RETRY_DEADLINE_S, Probe, fresh_connack, percentile
from wire_seeds import CORPUS_DIR, capture_sessions, load_corpus
from ws_client import (check_upgrade_response, encode_frame, recv_until_header_end, server_close_frame,
                       upgrade_request)

# Timing. A connection that says nothing for IDLE_S is done with: the broker
# answers a loopback client in well under a millisecond, so 50 ms of silence
# means it is waiting for bytes that will not come.
IDLE_S = 0.05
CONNECTION_BUDGET_S = 1.0   # longest one sequence may keep reading (a flood of PUBLISHes)
SOCKET_TIMEOUT_S = 1.0      # connect / write: a stuck broker must not stall the fuzzer
WORKERS = 8                 # concurrent fuzz connections: the per-connection wait is mostly idle


# --------------------------------------------------------------------------
# WebSocket framing of a job's bytes


def split_points(rng, size, most):
    return sorted(rng.sample(range(1, size), min(size - 1, rng.randint(1, most)))) if size > 1 else []


def pieces_of(data, points):
    bounds = [0] + points + [len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def mutate_frame_header(rng, frame):
    """One header field of a frame made wrong in a way a server must refuse or survive."""
    choice = rng.randrange(7)
    if choice == 0:
        frame["rsv"] = rng.randint(1, 7)
    elif choice == 1:
        frame["opcode"] = rng.choice([0x0, 0x1, 0x3, 0x7, 0x8, 0x9, 0xA, 0xB, 0xF])
    elif choice == 2:
        frame["masked"] = False  # client frames must be masked
    elif choice == 3:
        frame["length"] = rng.choice([2**63 - 1, 2**64 - 1, 2**32, len(frame["payload"]) + 1,
                                      len(frame["payload"]) + 100000])
    elif choice == 4:
        frame["length_form"] = rng.choice([126, 127])  # non-minimal length encoding
    elif choice == 5:
        frame["fin"] = not frame["fin"]
    else:
        frame["opcode"] = 0x9  # a ping that is too long for a control frame
        frame["payload"] = frame["payload"] + bytes(126)


def ws_frames(rng, data):
    """The bytes of data as masked binary frames: one, several messages or one fragmented message."""
    pieces = pieces_of(data, split_points(rng, len(data), 6) if rng.random() < 0.5 else [])
    fragmented = len(pieces) > 1 and rng.random() < 0.5
    frames = []
    for i, piece in enumerate(pieces):
        opcode = 0x0 if fragmented and i > 0 else 0x2
        fin = not fragmented or i == len(pieces) - 1
        frames.append({"fin": fin, "opcode": opcode, "masked": True,
                       "key": rng.randbytes(4), "payload": piece})
    if rng.random() < 0.05:
        # A ping between frames (even inside a fragmented message) is legal; the server answers it.
        frames.insert(rng.randrange(len(frames) + 1),
                      {"fin": True, "opcode": 0x9, "masked": True, "key": rng.randbytes(4), "payload": b"hi"})
    if rng.random() < 0.1:
        mutate_frame_header(rng, rng.choice(frames))
    return b"".join(encode_frame(f) for f in frames)




def mutated_upgrade(rng, key):
    """An Upgrade request the server must refuse or parse carefully."""
    choice = rng.randrange(4)
    if choice == 0:
        return upgrade_request(key, subprotocol=rng.choice([None, "mqttv3.1", "mqtt5", "", "x, mqtt"]))
    if choice == 1:
        return upgrade_request(key, path=rng.choice(["/", "/mqtt/", "/mqtt?x=1", "/" + "a" * 5000]))
    request = upgrade_request(key)
    for _ in range(rng.randint(1, 4)):
        request = rng.choice([mutate_bit_flip, mutate_byte_insert, mutate_byte_delete,
                              mutate_chunk_duplicate])(rng, request, [])
    return request


# --------------------------------------------------------------------------
# Jobs: one fuzz connection each, fully decided before it is sent (so a batch replays).


def make_job(rng, index, payload, mutations):
    """Everything about one connection, drawn from rng: transport, framing, writes, close."""
    job = {"index": index, "transport": "tcp" if index % 2 == 0 else "ws",
           "mutations": mutations, "mqtt": payload.hex()}
    wire = payload
    if job["transport"] == "ws":
        key = base64.b64encode(rng.randbytes(16)).decode()
        good = rng.random() >= 0.03
        job["ws_key"] = key
        job["upgrade"] = (upgrade_request(key) if good else mutated_upgrade(rng, key)).hex()
        job["upgrade_valid"] = good
        wire = ws_frames(rng, payload)
    job["wire"] = wire.hex()
    # Several writes reach the broker as several reads now and then: its reassembly runs.
    job["writes"] = split_points(rng, len(wire), 3) if rng.random() < 0.15 else []
    job["reset"] = rng.random() < 0.2  # close with RST instead of FIN
    return job


def generate_jobs(rng, seeds, count):
    """The first sequences are the seeds as they are, then mutated seeds."""
    jobs = []
    for index in range(count):
        if index < len(seeds):
            payload, names = seeds[index], []
        else:
            payload, names = mutate(rng, rng.choice(seeds), seeds)
        jobs.append(make_job(rng, index, payload, names))
    return jobs


# --------------------------------------------------------------------------
# Sending one job


def drain(sock, websocket):
    """Reads until the broker closes, sends a WebSocket close, or stays silent for IDLE_S."""
    deadline = time.monotonic() + CONNECTION_BUDGET_S
    received, frame_pos = bytearray(), 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "budget"
        sock.settimeout(min(IDLE_S, left))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return "idle"
        if not chunk:
            return "closed"
        if websocket:
            received += chunk
            closed, frame_pos = server_close_frame(received, frame_pos)
            if closed:
                return "ws-close"


def write(sock, wire, points):
    """wire in one write, or in several with a short pause so they arrive as separate reads."""
    for i, piece in enumerate(pieces_of(wire, points)):
        if i:
            time.sleep(0.002)
        sock.sendall(piece)


def run_job(job, ports):
    """Sends one job on a fresh connection: an outcome name for the statistics."""
    websocket = job["transport"] == "ws"
    try:
        sock = socket.create_connection((HOST, ports[job["transport"]]), timeout=SOCKET_TIMEOUT_S)
    except socket.timeout:
        return "connect-timeout", None
    except OSError:
        return "connect-error", None
    anomaly = None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if websocket:
            sock.sendall(bytes.fromhex(job["upgrade"]))
            # A valid request deserves a patient wait; a mutated one may leave the server waiting too.
            wait = SOCKET_TIMEOUT_S if job["upgrade_valid"] else IDLE_S
            head = recv_until_header_end(sock, time.monotonic() + wait, wait)
            problem = check_upgrade_response(head, job["ws_key"])
            if problem and job["upgrade_valid"]:  # a correct request must get a correct 101
                anomaly = f"sequence {job['index']}: WebSocket upgrade: {problem if head else 'no answer'}"
            if problem == "refused":  # no WebSocket: nothing to send the frames to
                return "ws-" + ("refused" if head else "no-answer"), anomaly
        sock.settimeout(SOCKET_TIMEOUT_S)
        write(sock, bytes.fromhex(job["wire"]), job["writes"])
        return drain(sock, websocket), anomaly
    except socket.timeout:
        return "write-timeout", anomaly
    except OSError as e:  # the broker closed first: reset, broken pipe
        return "error-" + (errno.errorcode.get(e.errno, "?") if e.errno else type(e).__name__), anomaly
    finally:
        if job["reset"]:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


# --------------------------------------------------------------------------
# The run


class Run:
    def __init__(self, args, broker, probe, artifacts):
        self.args, self.broker, self.probe, self.artifacts = args, broker, probe, artifacts
        self.sent = {"tcp": 0, "ws": 0}
        self.outcomes = {}
        self.anomalies = []
        self.round_trips = []
        self.slow = self.hangs = self.crashes = 0
        self.failures = []

    def send_batch(self, pool, jobs):
        for job, (outcome, anomaly) in zip(jobs, pool.map(lambda j: run_job(j, self.broker.ports), jobs)):
            self.sent[job["transport"]] += 1
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if anomaly:
                self.anomalies.append(anomaly)

    def check(self, jobs):
        """After a batch: alive, probe round trip, fresh connections. False stops the run."""
        if not self.broker.alive():
            return self.crashed(jobs)
        if not self.probe_ok(jobs):
            if not self.broker.alive():
                return self.crashed(jobs)
            return self.hung(jobs, "the probe's QoS 1 message did not come back")
        for transport in ("tcp", "ws"):
            if not self.fresh_ok(transport):
                return self.hung(jobs, f"a new {transport} connection got no CONNACK")
        return True

    def probe_ok(self, jobs):
        if self.probe.dropped is not None:
            failure = f"the probe's connection dropped (paho rc={self.probe.dropped})"
            if failure not in self.failures:
                self.failures.append(failure)
                print(f"FAILURE: {failure}\n--- broker log tail ---\n{self.broker.log_tail()}\n---", flush=True)
            return True  # a failure already; the liveness and fresh-connection checks go on
        number, start, rtt = self.probe.round_trip(PROBE_DEADLINE_S)
        if rtt is not None:
            self.round_trips.append(rtt)
            return True
        self.slow += 1
        time.sleep(PROBE_RETRY_AFTER_S)
        late = self.probe.late_arrival(number, start)
        if late is not None:
            self.round_trips.append(late)
        _, _, retry = self.probe.round_trip(PROBE_RETRY_DEADLINE_S)
        # Kept, so that a slow probe that comes back with the same batch can be looked into.
        path = self.save_batch(jobs, "slow")
        print(f"slow probe after sequences {jobs[0]['index']}..{jobs[-1]['index']}: "
              f"{'lost' if late is None else f'{late * 1000:.0f} ms'}, retry "
              f"{'lost' if retry is None else f'{retry * 1000:.1f} ms'}; batch saved to {path}", flush=True)
        return retry is not None or self.probe.dropped is not None

    def fresh_ok(self, transport):
        if fresh_connack(self.broker.ports[transport], transport == "ws"):
            return True
        time.sleep(PROBE_RETRY_AFTER_S)
        return fresh_connack(self.broker.ports[transport], transport == "ws")

    def save_batch(self, jobs, what):
        return save_batch(self.artifacts, jobs, what)

    def crashed(self, jobs):
        self.crashes += 1
        path = self.save_batch(jobs, "crash")
        print(f"CRASH: the broker died ({describe_status(self.broker.proc.returncode)}) during sequences "
              f"{jobs[0]['index']}..{jobs[-1]['index']}; batch saved to {path}\n"
              f"--- broker log tail ---\n{self.broker.log_tail()}\n---", flush=True)
        return False

    def hung(self, jobs, what):
        self.hangs += 1
        path = self.save_batch(jobs, "hang")
        stacks = os.path.join(self.artifacts, "broker-hang-stacks.txt")
        saved = self.broker.save_stacks(stacks)
        print(f"HANG: {what} (retried after {PROBE_RETRY_AFTER_S:.0f} s) after sequences "
              f"{jobs[0]['index']}..{jobs[-1]['index']}; batch saved to {path}"
              + (f"; backtraces in {stacks}" if saved else "")
              + f"\n--- broker log tail ---\n{self.broker.log_tail()}\n---", flush=True)
        return False

    def execute(self, jobs):
        every = max(1, self.args.probe_every)
        with ThreadPoolExecutor(WORKERS) as pool:
            for first in range(0, len(jobs), every):
                batch = jobs[first:first + every]
                self.send_batch(pool, batch)
                if not self.check(batch):
                    return
        if not jobs:
            self.check([{"index": -1}])








def report_log(run, broker):
    notable, fatal, unframed = log_findings(broker.log_text())
    for key, (count, example) in sorted(notable.items()):
        print(f"log: {count} x {key}   e.g. {example[:300]}")
    if unframed:
        print(f"log: {len(unframed)} lines outside the log format (a newline from a client in a logged "
              f"field?), e.g. {unframed[0][:300]!r}")
    if fatal:
        run.crashes += 1
        print("log: sanitizer/abort report:\n" + "\n".join(fatal[:40]))


def summary(run, seeds_count, seconds, label):
    ms = [r * 1000 for r in run.round_trips]
    total = run.sent["tcp"] + run.sent["ws"]
    return (f"wire_fuzz: sequences={total} (tcp={run.sent['tcp']} ws={run.sent['ws']}) seeds={seeds_count} "
            f"crashes={run.crashes} hangs={run.hangs} slow_probes={run.slow} "
            f"probe_ms p50={percentile(ms, 0.5):.2f} p99={percentile(ms, 0.99):.2f} "
            f"max={max(ms) if ms else float('nan'):.2f} seconds={seconds:.1f} {label}")


def load_replay(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def parse_args():
    parser = argparse.ArgumentParser(description="Over-the-wire mutation fuzzer for the ringmq broker.")
    parser.add_argument("--ringmq", required=True, help="the broker binary")
    parser.add_argument("--sequences", type=int, default=10000, help="mutated sequences to send")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--artifacts", help="where crash inputs and the broker log go (default: a temp dir)")
    parser.add_argument("--replay", help="a saved .jsonl batch: send its sequences once, then probe")
    parser.add_argument("--probe-every", type=int, default=50, help="sequences between probes")
    return parser.parse_args()


def fuzz(args, broker, artifacts, seed):
    """Seeds, jobs, the run; returns (run, number of seeds)."""
    seeds = load_corpus(CORPUS_DIR)
    captured = capture_sessions(broker.ports["tcp"])
    seeds += captured
    digest = hashlib.sha256(b"".join(hashlib.sha256(s).digest() for s in seeds)).hexdigest()[:16]
    print(f"wire_fuzz: seed={seed} seeds={len(seeds)} (corpus {len(seeds) - len(captured)}, captured "
          f"sessions {'/'.join(str(len(c)) for c in captured)} bytes) digest={digest}", flush=True)
    if args.replay:
        jobs = load_replay(args.replay)
    else:
        jobs = generate_jobs(random.Random(seed), seeds, args.sequences)
    probe = Probe(broker.ports["tcp"])
    probe.start()
    run = Run(args, broker, probe, artifacts)
    try:
        run.execute(jobs)
    finally:
        if broker.alive():
            probe.stop()
    return run, len(seeds)


def main():
    args = parse_args()
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    artifacts = args.artifacts or tempfile.mkdtemp(prefix="ringmq-wire-fuzz-")
    os.makedirs(artifacts, exist_ok=True)
    broker = Broker(os.path.abspath(args.ringmq), artifacts)
    started = time.monotonic()
    broker.start()
    try:
        run, seeds_count = fuzz(args, broker, artifacts, seed)
    except BaseException:
        broker.stop()
        print(f"--- broker log ({broker.log_path}) tail ---\n{broker.log_tail()}", file=sys.stderr)
        raise
    label = f"replay={args.replay}" if args.replay else f"seed={seed}"
    ok = report_and_stop(run, broker, seeds_count, time.monotonic() - started, label)
    if ok and not args.artifacts:
        shutil.rmtree(artifacts, ignore_errors=True)
    elif ok:
        shutil.rmtree(broker.data_dir, ignore_errors=True)  # the log stays; the store is only bulk
        print(f"wire_fuzz: broker log in {broker.log_path}")
    else:
        print(f"wire_fuzz: artifacts and broker log in {artifacts}")
    return 0 if ok else 1


def report_and_stop(run, broker, seeds_count, seconds, label):
    """Prints the findings and the summary, stops the broker; True when the run passed."""
    report_log(run, broker)
    if run.outcomes:
        print("wire_fuzz: connection outcomes: " + " ".join(f"{k}={v}" for k, v in sorted(run.outcomes.items())))
    for anomaly in run.anomalies[:20]:
        print(f"wire_fuzz: anomaly: {anomaly}")
    for failure in run.failures:
        print(f"FAILURE: {failure}")
    peak = broker.peak_memory()
    if peak:
        print(f"wire_fuzz: broker peak memory {peak}")
    print(summary(run, seeds_count, seconds, label), flush=True)
    ok = run.crashes == 0 and run.hangs == 0 and not run.failures
    if broker.alive():
        status = broker.stop()
        if status == 0:
            print("wire_fuzz: broker stopped cleanly on SIGTERM (exit code 0)")
        else:
            print(f"FAILURE: the broker did not stop cleanly on SIGTERM ({describe_status(status)})\n"
                  f"--- broker log tail ---\n{broker.log_tail()}")
            ok = False
    return ok


if __name__ == "__main__":
    sys.exit(main())
