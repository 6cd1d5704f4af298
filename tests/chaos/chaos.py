#!/usr/bin/python3
"""ringmq's chaos run: a cluster of real nodes, real MQTT clients recording a
history, faults from a seeded schedule, then the independent checker over the
history. Runs as root inside a network namespace of its own (use
tests/cluster/in_netns.sh, as `./dev chaos` does); nothing leaves the machine.

  chaos.py --ringmq BIN --shim LIB --out DIR [--nodes 3] [--seed S]
           [--faults N | --minutes M] [--kinds k1,k2] [--disk-lies]

Writes DIR/history.jsonl, DIR/faults.log, DIR/n*.log and DIR/summary.json;
exit 0 with no violation (or only of the --known kinds), 1 with violations, 2 when the run
itself failed.
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
import traceback
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402
from clients import History, Publisher, Runner, Subscriber, Twins, Unsubscriber, read_retained  # noqa: E402
from faults import KINDS, Injector  # noqa: E402
from nodes import Cluster  # noqa: E402

RETAINED_TOPICS = [f"chaos/retained/{k}" for k in range(3)]


def make_clients(history, cluster, rng):
    """A small fleet: persistent and clean sessions, QoS 0/1/2, MQTT 3.1.1 and
    5.0, spread over the nodes; each with a random generator of its own."""
    nodes = [n.mqtt for n in cluster.nodes]

    def r():
        return random.Random(rng.random())

    recorders = [
        Publisher("p1", history, nodes, r(), qos_choices=[1]),
        Publisher("p2", history, nodes, r(), qos_choices=[2], v5=True),
        Publisher("p3", history, nodes, r(), qos_choices=[0, 1, 2]),
        Publisher("p4", history, nodes, r(), qos_choices=[1, 2], clean=True),
        Publisher("r1", history, nodes, r(), qos_choices=[1], retain=True, interval_s=0.2),
        Subscriber("s1", history, nodes, r(), sleeps=True, filters=[("chaos/#", 1)]),
        Subscriber("s2", history, nodes, r(), sleeps=True, v5=True, filters=[("chaos/#", 2)]),
        Subscriber("s3", history, nodes, r(), filters=[("chaos/+/1", 2), ("chaos/p1/#", 1)]),
        Subscriber("c1", history, nodes, r(), clean=True, filters=[("chaos/#", 2)]),
        Unsubscriber("u1", history, nodes, r(), "chaos/p3/#"),
    ]
    runners = [Runner(x.client_id, [x]) for x in recorders]
    runners.append(Twins("tw", history, nodes, r(), filters=[("chaos/p1/#", 1)]))
    return runners


def drain(history, cluster, runners, log, timeout_s=90):
    """After the last fault: publishers stop and get their answers, then
    subscribers get what waits for them, until nothing arrives for 3 s."""
    for r in runners:
        r.set_draining()
    deadline = time.monotonic() + timeout_s
    publishers = [x for r in runners for x in r.recorders if isinstance(x, Publisher)]
    while time.monotonic() < deadline and any(p.pending for p in publishers):
        time.sleep(0.1)
    unanswered = sum(len(p.pending) for p in publishers)
    if unanswered:
        log(f"drain: {unanswered} messages still unacknowledged (not counted as acknowledged)")
    subscribers = [x for r in runners for x in r.recorders if isinstance(x, Subscriber)]
    while time.monotonic() < deadline:
        quiet = time.monotonic() - history.delivered_at
        if quiet > 3 and all(s.connected for s in subscribers):
            break
        time.sleep(0.1)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ringmq", required=True)
    parser.add_argument("--shim", required=True, help="power_loss_disk.so")
    parser.add_argument("--out", required=True)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--faults", type=int, default=None, help="stop after this many faults")
    parser.add_argument("--minutes", type=float, default=None, help="stop injecting after this long")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--disk-lies", action="store_true",
                        help="fsync succeeds without syncing (a broken build): the checker must fail the run")
    parser.add_argument("--no-clock", action="store_true", help="run the nodes without libfaketime")
    parser.add_argument("--ready-within", type=float, default=60,
                        help="seconds every node has to become ready after a fault heals; a "
                             "slower recovery is logged and, unless 'not-ready' is --known, "
                             "fails the run")
    parser.add_argument("--known", default="",
                        help="violation kinds that are open findings (docs/reliability.md): "
                             "reported, but the run does not fail on them")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    kinds = [k for k in args.kinds.split(",") if k]
    if args.no_clock:
        kinds = [k for k in kinds if k != "clock-jump"]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown fault kinds: {', '.join(sorted(unknown))}")
    if args.faults is None and args.minutes is None:
        args.faults = 20
    os.makedirs(args.out, exist_ok=True)
    faults_log = open(os.path.join(args.out, "faults.log"), "w")
    history = History(os.path.join(args.out, "history.jsonl"))

    def log(line):
        stamp = f"{history.now() / 1000:8.1f}s"
        print(f"{stamp} {line}", flush=True)
        faults_log.write(f"{stamp} {line}\n")
        faults_log.flush()

    log(f"seed {seed}, {args.nodes} nodes, faults: {', '.join(kinds)}"
        + (" (the disk lies about fsync)" if args.disk_lies else ""))
    rng = random.Random(seed)
    # Absolute: the power-loss disk records the paths it synced as the kernel names them.
    root = os.path.abspath(tempfile.mkdtemp(prefix="ringmq-chaos-", dir=args.out))
    os.chmod(root, 0o755)  # the nodes run as users of their own
    cluster = Cluster(args.nodes, root, os.path.abspath(args.ringmq), os.path.abspath(args.shim),
                      disk_lies=args.disk_lies, clock=not args.no_clock)
    runners = []
    injected = Counter()
    slow_recoveries = 0
    exit_code = 2
    try:
        cluster.start()
        log("cluster ready")
        runners = make_clients(history, cluster, rng)
        for r in runners:
            r.start()
        injector = Injector(cluster, random.Random(rng.random()), log)
        time.sleep(2)  # traffic and sessions in place before the first fault
        started = time.monotonic()
        while True:
            if args.faults is not None and sum(injected.values()) >= args.faults:
                break
            if args.minutes is not None and time.monotonic() - started > args.minutes * 60:
                break
            kind = injector.draw(kinds)
            log(injector.inject(kind))
            injected[kind] += 1
            injector.heal_all()
            if not cluster.wait_ready(timeout=args.ready_within):
                slow_recoveries += 1
                log(f"not every node became ready within {args.ready_within:g} s of healing")
            time.sleep(injector.rng.uniform(0.3, 1.5))
        log(f"{sum(injected.values())} faults injected; healing and draining")
        injector.heal_all()
        if not cluster.wait_ready(timeout=90):
            raise RuntimeError("the cluster did not become ready after the last fault")
        drain(history, cluster, runners, log)
        for r in runners:
            r.stop()
        read_retained(history, cluster.nodes[0].mqtt, RETAINED_TOPICS)
        exits = {n.id: n.stop() for n in cluster.nodes}
        if any(code != 0 for code in exits.values()):
            log(f"nodes exited with {exits} after SIGTERM")
        exit_code = 0
    except Exception:
        log("the run failed:\n" + traceback.format_exc())
    finally:
        for r in runners:
            r.stopping.set()
        for n in cluster.nodes:
            n.kill()
        history.close()

    with open(os.path.join(args.out, "history.jsonl")) as f:
        events = checker.load(f)
    counts, violations = checker.check(events)
    kinds_found = Counter(v.kind for v in violations)
    summary = {"seed": seed, "nodes": args.nodes, "faults": dict(injected),
               "faults_total": sum(injected.values()), "operations": counts,
               "violations": dict(kinds_found), "violations_total": len(violations),
               "slow_recoveries": slow_recoveries,
               "disk_lies": args.disk_lies, "run_failed": exit_code == 2}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    log("operations: " + ", ".join(f"{op}={n}" for op, n in counts.items()))
    log(f"faults: {dict(injected)}")
    log(f"violations: {len(violations)} {dict(kinds_found)}")
    for v in violations[:10]:
        print(v)
    for n in cluster.nodes:
        n.unmount()
    if exit_code == 2:
        return 2
    known = {k for k in args.known.split(",") if k}
    failing = [v for v in violations if v.kind not in known]
    if violations and not failing:
        log(f"only open findings ({', '.join(sorted(known))}, docs/reliability.md): not failing the run")
    if slow_recoveries:
        log(f"slow recoveries: {slow_recoveries} (not ready within {args.ready_within:g} s)")
        if "not-ready" not in known:
            return 1
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
