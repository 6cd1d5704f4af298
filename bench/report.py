#!/usr/bin/python3
"""Renders bench/results/ into the tables and plots of bench/README.md.

Each generated block sits between `<!-- NAME:begin -->` and `<!-- NAME:end -->`
markers, so the prose around it is kept as written. Plots are PNG files made
with gnuplot (Debian's gnuplot-nox) next to this file.
"""

import json
import pathlib
import re
import statistics
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent
RESULTS = ROOT / "results"
README = ROOT / "README.md"

# scenario -> (what it shows, metric key, unit, higher is better, target ratio or None)
SCENARIOS = {
    "qos1-pairs": ("QoS 1, 100 publisher/subscriber pairs, max rate", "throughput", "msg/s", True, 7),
    "qos2-pairs": ("QoS 2, 100 pairs, max rate", "throughput", "msg/s", True, 10),
    "qos0-fanout": ("QoS 0, 1 publisher -> 100 subscribers, max rate", "throughput", "msg/s", True, 2),
    "qos0-fanin": ("QoS 0, 50 publishers -> 1 subscriber, max rate", "throughput", "msg/s", True, 1),
    "qos0-fanin-200k": ("QoS 0, 50 -> 1 at a fixed 200k msg/s: messages lost", "lost", "msgs", False, None),
    "latency-qos0": ("QoS 0, 10 pairs at 10k msg/s: p99 latency", "latency_us.p99", "us", False, None),
    "latency-qos1": ("QoS 1, 10 pairs at 10k msg/s: p99 latency", "latency_us.p99", "us", False, None),
    "persistent-qos1": ("QoS 1, 10 offline sessions x 1000 queued, drained on reconnect", "throughput", "msg/s", True, None),
    "idle": ("idle connections: broker memory per connection", "rss_per_connection_bytes", "bytes", False, None),
    "idle-rate": ("idle connections: connection rate", "connect_rate", "conn/s", True, 1),
    "idle-rate-x2": ("idle connections: connection rate, two load generators at once", "connect_rate", "conn/s", True, 1),
}


def load(name):
    path = RESULTS / f"{name}.jsonl"
    if not path.exists():
        return []
    runs = []
    for line in path.read_text().splitlines():
        try:
            runs.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return runs


def metric(run, key):
    value = run
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value if isinstance(value, (int, float)) else None


def medians(name, key):
    source = "idle" if name == "idle-rate" else name
    out = {}
    for broker in ("ringmq", "mosquitto"):
        values = [metric(r, key) for r in load(source) if r.get("label") == broker]
        values = [v for v in values if v is not None]
        out[broker] = (statistics.median(values), len(values)) if values else (None, 0)
    return out


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "us":
        return f"{v:,.0f} us" if v >= 100 else f"{v:,.1f} us"
    return f"{v:,.0f}"


def verdict(name, r, q, target):
    """Whether ringmq's median meets the scenario's target, and by how much it misses."""
    if r is None:
        return "-"
    if name.startswith("latency"):
        return "yes" if r < 1000 else f"no: {r / 1000:.1f} x the limit"
    if name == "qos0-fanin-200k":
        return "yes" if r == 0 else f"no: {r:,.0f} lost"
    if q in (None, 0):
        return "-"
    if name == "idle":
        over = r - (q + 2048)
        return "yes" if over <= 0 else f"no: {over:,.0f} bytes over"
    if target:
        ratio = r / q
        return "yes" if ratio >= target else f"no: {ratio / target:.0%} of the target"
    return "-"


def load_table():
    rows = ["| scenario | metric | ringmq | mosquitto | ringmq / mosquitto | target | met |",
            "|---|---|---:|---:|---:|---|---|"]
    any_data = False
    for name, (what, key, unit, higher, target) in SCENARIOS.items():
        m = medians(name, key)
        r, _ = m["ringmq"]
        q, _ = m["mosquitto"]
        if r is None and q is None:
            continue
        any_data = True
        ratio = "-"
        if r is not None and q not in (None, 0) and r != 0:
            ratio = f"{(r / q if higher else q / r):.1f} x" + ("" if higher else " better")
        goal = f">= {target} x" if target else ""
        if name.startswith("latency"):
            goal = "< 1000 us"
        if name == "qos0-fanin-200k":
            goal = "0"
        if name == "idle":
            goal = "<= mosquitto + 2048"
        rows.append(f"| `{name}`: {what} | {key} ({unit}) | {fmt(r, unit)} | {fmt(q, unit)} | {ratio} "
                    f"| {goal} | {verdict(name, r, q, target)} |")
    if not any_data:
        return "_No load results yet: run `./dev bench`._"
    return "\n".join(rows)


def micro_table():
    rows = []
    context = None
    for path in sorted(RESULTS.glob("micro-*.json")):
        data = json.loads(path.read_text())
        context = context or data.get("context", {})
        for b in data.get("benchmarks", []):
            if b.get("aggregate_name") != "median":
                continue
            unit = b.get("time_unit", "ns")
            ns = b["real_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]
            extra = ""
            if "bytes_per_second" in b:
                extra = f"{b['bytes_per_second'] / 1e9:.2f} GB/s"
            elif "items_per_second" in b:
                extra = f"{b['items_per_second'] / 1e6:.2f} M items/s"
            rows.append(f"| `{b['run_name']}` | {ns:,.0f} | {extra} |")
    if not rows:
        return "_No micro-benchmark results yet: run `./dev bench`._"
    head = "| benchmark | ns per operation (median of 3) | throughput |\n|---|---:|---|"
    note = ""
    if context:
        note = (f"\n\nMeasured {context.get('date', '')} on {context.get('num_cpus', '?')} CPUs, "
                "pinned to one core, release build.")
    return head + "\n" + "\n".join(rows) + note


def plots():
    made = []
    tput = [n for n in ("qos1-pairs", "qos2-pairs", "qos0-fanout", "qos0-fanin", "persistent-qos1")]
    data = []
    for name in tput:
        m = medians(name, "throughput")
        if m["ringmq"][0] is None and m["mosquitto"][0] is None:
            continue
        data.append(f"{name} {m['ringmq'][0] or 0} {m['mosquitto'][0] or 0}")
    if data:
        (RESULTS / "throughput.dat").write_text("\n".join(data) + "\n")
        script = f"""
set terminal pngcairo size 900,420 font ',10'
set output '{ROOT / 'throughput.png'}'
set title 'Throughput, messages per second received (median of runs, higher is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set format y '%.0s%c'
set grid ytics
set key top right
set xtics nomirror
plot '{RESULTS / 'throughput.dat'}' using 2:xtic(1) title 'ringmq' lc rgb '#1f77b4', '' using 3 title 'mosquitto' lc rgb '#ff7f0e'
"""
        if subprocess.run(["gnuplot"], input=script, text=True).returncode == 0:
            made.append("throughput.png")
    lat = []
    for name in ("latency-qos0", "latency-qos1"):
        for broker in ("ringmq", "mosquitto"):
            row = [f"{name}/{broker}"]
            for q in ("p50", "p90", "p99", "p999"):
                values = [metric(r, f"latency_us.{q}") for r in load(name) if r.get("label") == broker]
                values = [v for v in values if v is not None]
                row.append(str(statistics.median(values)) if values else "0")
            if any(v != "0" for v in row[1:]):
                lat.append(" ".join(row))
    if lat:
        (RESULTS / "latency.dat").write_text("\n".join(lat) + "\n")
        script = f"""
set terminal pngcairo size 900,420 font ',10'
set output '{ROOT / 'latency.png'}'
set title 'End-to-end latency at 10k msg/s, microseconds (median of runs, lower is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set grid ytics
set key top left
plot '{RESULTS / 'latency.dat'}' using 2:xtic(1) title 'p50', '' using 3 title 'p90', '' using 4 title 'p99', '' using 5 title 'p99.9'
"""
        if subprocess.run(["gnuplot"], input=script, text=True).returncode == 0:
            made.append("latency.png")
    return "\n\n".join(f"![{p}]({p})" for p in made) or "_No plots yet._"


def durability_table():
    runs = load("durability")
    if not runs:
        return "_No durability results yet: run `./dev bench`._"
    rows = ["| storage.durability | QoS 1 throughput (msg/s) | p50 latency | p99 latency | lost |",
            "|---|---:|---:|---:|---:|"]
    for mode in ("sync", "batch", "none"):
        mine = [r for r in runs if r.get("label") == mode]
        if not mine:
            continue
        def med(key):
            values = [metric(r, key) for r in mine]
            values = [v for v in values if v is not None]
            return statistics.median(values) if values else None
        rows.append(f"| `{mode}` | {fmt(med('throughput'), 'msg/s')} | {fmt(med('latency_us.p50'), 'us')} "
                    f"| {fmt(med('latency_us.p99'), 'us')} | {fmt(med('lost'), 'msgs')} |")
    restart = load("restart")
    if restart:
        seconds = statistics.median([r["ready_seconds"] for r in restart])
        sessions = max(r.get("sessions", 0) for r in restart)
        rss = statistics.median([r.get("rss_kib", 0) for r in restart])
        rows.append("")
        rows.append(f"Restart after `kill -9` with {sessions:,} persistent sessions (each with one "
                    f"subscription) in the store: ready (`/readyz` 200) after **{seconds:.2f} s** "
                    f"(median of {len(restart)}), RSS {rss / 1024:.0f} MiB.")
    return "\n".join(rows)


# ----------------------------------------------------------------- cluster

def cluster_runs(name, label):
    return [r for r in load(f"cluster-{name}") if r.get("label") == label]


def med(runs, key):
    values = [metric(r, key) for r in runs]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def cpu_per_message_us(runs):
    values = [r["node_cpu_seconds"] / r["received"] * 1e6 for r in runs
              if r.get("received") and "node_cpu_seconds" in r]
    return statistics.median(values) if values else None


def met(ok, miss):
    return "yes" if ok else f"no: {miss}"


def cluster_table():
    rows = ["| scenario | measured | cluster | same node / single node | ratio | target | met |",
            "|---|---|---:|---:|---:|---|---|"]
    any_data = False
    cross, same = cluster_runs("qos1-pairs", "cross"), cluster_runs("qos1-pairs", "same")
    if cross and same:
        any_data = True
        t, b = med(cross, "throughput"), med(same, "throughput")
        c, cb = cpu_per_message_us(cross), cpu_per_message_us(same)
        rows.append(f"| `qos1-pairs`: QoS 1, 100 pairs, 2 nodes, publisher on n1, subscriber on n2 "
                    f"(same: both on one node) | throughput (msg/s) | {t:,.0f} | {b:,.0f} | "
                    f"{t / b:.2f} | >= 0.6 | {met(t / b >= 0.6, f'{t / b / 0.6:.0%} of the target')} |")
        rows.append(f"| | node CPU per delivered message | {c:.2f} us | {cb:.2f} us | {c / cb:.2f} | "
                    f"<= 1.5 | {met(c / cb <= 1.5, f'{c / cb:.2f} x')} |")
    cross, single = cluster_runs("qos0-fanout", "cross"), cluster_runs("qos0-fanout", "single")
    if cross and single:
        any_data = True
        t, b = med(cross, "throughput"), med(single, "throughput")
        per = statistics.median(r["forwarded"] / r["published"] for r in cross if r.get("published"))
        rows.append(f"| `qos0-fanout`: QoS 0, 1 -> 100, publisher on n1, subscribers on n2 and n3 "
                    f"(single: one node) | throughput (msg/s) | {t:,.0f} | {b:,.0f} | {t / b:.2f} | "
                    f">= 0.5 | {met(t / b >= 0.5, f'{t / b / 0.5:.0%} of the target')} |")
        rows.append(f"| | copies forwarded per published message (2 peers) | {per:.2f} | | | 2 | "
                    f"{met(abs(per - 2) < 0.01, f'{per:.2f}')} |")
    r3, single = cluster_runs("replicated-qos1", "r3"), cluster_runs("replicated-qos1", "single")
    if r3 and single:
        any_data = True
        t, b = med(r3, "throughput"), med(single, "throughput")
        p99 = med(r3, "latency_us.p99")
        lost = sum(r.get("lost", 0) for r in r3)
        rows.append(f"| `replicated-qos1`: QoS 1, 20 pairs, persistent sessions, 3 nodes, R = 3, W = 2, "
                    f"batch (single: one node's store) | throughput (msg/s) | {t:,.0f} | {b:,.0f} | "
                    f"{t / b:.2f} | >= 30,000 | {met(t >= 30000, f'{t / 30000:.0%} of the target')} |")
        rows.append(f"| | p99 end to end; lost | {p99 / 1000:,.1f} ms; {lost} | | | < 50 ms; 0 | "
                    f"{met(p99 < 50000 and lost == 0, f'{p99 / 1000:.1f} ms, {lost} lost')} |")
    fo = [r for r in load("cluster-failover") if "max_ms" in r]
    if fo:
        any_data = True
        n = fo[0]["sessions"]
        worst = med(fo, "max_ms")
        dead = med([r for r in fo if r.get("dead_ms", -1) >= 0], "dead_ms")
        missing = sum(r.get("missing", 0) + r.get("no_session", 0) for r in fo)
        after = worst - dead if dead is not None else None
        rows.append(f"| `failover`: {n:,} persistent sessions (R = 3) on n1 of 3, n1 killed, every "
                    f"client back on n2 or n3 at once | last client served, after the kill | "
                    f"{worst / 1000:,.1f} s | | | | |")
        if after is not None:
            rows.append(f"| | after n1 was declared dead ({dead / 1000:.1f} s after the kill) | "
                        f"{after / 1000:,.1f} s | | | <= 5 s | "
                        f"{met(after <= 5000, f'{after / 1000:.1f} s')} |")
        rows.append(f"| | messages or sessions missing | {missing} | | | 0 | {met(missing == 0, missing)} |")
    cross, single = cluster_runs("route-convergence", "cross"), cluster_runs("route-convergence", "single")
    if cross:
        any_data = True
        p50, p99 = med(cross, "latency_us.p50"), med(cross, "latency_us.p99")
        b99 = med(single, "latency_us.p99") if single else None
        misses = sum(r.get("misses", 0) for r in cross)
        probes = sum(r.get("probes", 0) for r in cross)
        base = f"{b99 / 1000:.2f} ms" if b99 else ""
        rows.append(f"| `route-convergence`: subscribe on n2 or n3, publish on n1 at the SUBACK "
                    f"(single: one node), {probes:,} probes | p99 time to first delivery (p50) | "
                    f"{p99 / 1000:.2f} ms ({p50 / 1000:.2f} ms) | {base} | | < 20 ms | "
                    f"{met(p99 < 20000, f'{p99 / 1000:.1f} ms')} |")
        rows.append(f"| | misses after SUBACK | {misses} | | | 0 | {met(misses == 0, misses)} |")
    if not any_data:
        return "_No cluster results yet: run `./dev bench --cluster`._"
    return "\n".join(rows)


def gnuplot(script):
    return subprocess.run(["gnuplot"], input=script, text=True).returncode == 0


def cluster_plots():
    made = []
    bars = []
    for name, label, base, title in (("qos1-pairs", "cross", "same", "QoS 1 pairs"),
                                     ("qos0-fanout", "cross", "single", "QoS 0 fan-out"),
                                     ("replicated-qos1", "r3", "single", "replicated QoS 1")):
        a, b = cluster_runs(name, label), cluster_runs(name, base)
        if a and b:
            bars.append(f'"{title}" {med(a, "throughput")} {med(b, "throughput")}')
    if bars:
        (RESULTS / "cluster-throughput.dat").write_text("\n".join(bars) + "\n")
        if gnuplot(f"""
set terminal pngcairo size 900,380 font ',10'
set output '{ROOT / 'cluster-throughput.png'}'
set title 'Cluster: messages per second delivered (median of runs; higher is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set format y '%.0s%c'
set grid ytics
set key top right
plot '{RESULTS / 'cluster-throughput.dat'}' using 2:xtic(1) title 'across nodes' lc rgb '#1f77b4', '' using 3 title 'same node / single node' lc rgb '#9e9e9e'
"""):
            made.append("cluster-throughput.png")
    quantiles = [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 99, 99.9, 100]
    series = []
    for label, title in (("cross", "across nodes"), ("single", "single node")):
        runs = [r for r in cluster_runs("route-convergence", label) if "latency_cdf_us" in r]
        if not runs:
            continue
        cdf = [statistics.median(r["latency_cdf_us"][i] for r in runs) for i in range(len(quantiles))]
        path = RESULTS / f"cluster-convergence-{label}.dat"
        path.write_text("".join(f"{v / 1000} {q}\n" for v, q in zip(cdf, quantiles)))
        series.append(f"'{path}' using 1:2 with linespoints title '{title}'")
    if series:
        if gnuplot(f"""
set terminal pngcairo size 900,380 font ',10'
set output '{ROOT / 'cluster-convergence.png'}'
set title 'Route convergence: time from SUBACK to the first delivery (CDF, median of runs)'
set xlabel 'milliseconds'
set ylabel 'percent of probes'
set logscale x
set grid
set key bottom right
plot {', '.join(series)}
"""):
            made.append("cluster-convergence.png")
    fo = [r for r in load("cluster-failover") if "served_cdf_ms" in r]
    if fo:
        lines = []
        for i, r in enumerate(fo):
            path = RESULTS / f"cluster-failover-{i + 1}.dat"
            path.write_text("".join(f"{v / 1000} {q * 5}\n" for q, v in enumerate(r["served_cdf_ms"])))
            lines.append(f"'{path}' using 1:2 with lines lw 2 title 'run {i + 1}'")
        dead = med([r for r in fo if r.get("dead_ms", -1) >= 0], "dead_ms")
        marks = ""
        if dead is not None:
            marks = (f"set arrow from {dead / 1000},0 to {dead / 1000},100 nohead dt 2 lc rgb '#d62728'\n"
                     f"set label 'n1 declared dead' at {dead / 1000},104 center textcolor rgb '#d62728'\n"
                     f"set arrow from {dead / 1000 + 5},0 to {dead / 1000 + 5},100 nohead dt 3 lc rgb '#555555'\n"
                     f"set label 'dead + 5 s' at {dead / 1000 + 5},104 center\n")
        if gnuplot(f"""
set terminal pngcairo size 900,380 font ',10'
set output '{ROOT / 'cluster-failover.png'}'
set title 'Failover: persistent sessions served again on n2 or n3 after n1 was killed'
set xlabel 'seconds after the kill'
set ylabel 'percent of sessions served'
set yrange [0:110]
set grid
set key bottom right
{marks}plot {', '.join(lines)}
"""):
            made.append("cluster-failover.png")
    return "\n\n".join(f"![{p}]({p})" for p in made) or "_No plots yet._"


def replace_block(text, name, body):
    pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(\n<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"bench/README.md lacks the {name} markers")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def main():
    text = README.read_text()
    text = replace_block(text, "micro", micro_table())
    if "<!-- load:begin -->" in text:
        text = replace_block(text, "load", load_table())
    if "<!-- durability:begin -->" in text:
        text = replace_block(text, "durability", durability_table())
    if "<!-- plots:begin -->" in text:
        text = replace_block(text, "plots", plots())
    if "<!-- cluster:begin -->" in text:
        text = replace_block(text, "cluster", cluster_table() + "\n\n" + cluster_plots())
    README.write_text(text)


if __name__ == "__main__":
    main()
