#!/usr/bin/python3
"""Checks the PromQL of the Grafana dashboard or of the alert rules.

  check_promql.py --promtool promtool --ringmq build/bin/ringmq --dashboard ringmq.json
  check_promql.py --promtool promtool --ringmq build/bin/ringmq --rules ringmq-alerts.yml

The metric and label names are checked against what a real ringmq exports: the
script starts the given binary as a cluster of two nodes on ephemeral ports and
scrapes the first one's /metrics
(--metrics FILE uses a saved scrape instead). For a dashboard it also checks
that every expression parses (promtool has no single-expression mode, so every
expression becomes a recording rule of a generated rules file that `promtool
check rules` reads), that every range is $__rate_interval, that every panel
queries the ${datasource} variable, and that panels do not overlap.
Exit status: 0 when everything holds; 1 with one line per problem otherwise.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

# Series Prometheus adds to every target itself.
SYNTHETIC_METRICS = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                     "scrape_samples_post_metric_relabeling", "scrape_series_added"}
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"job", "instance"}
# What the Grafana variables stand for while an expression is checked.
SUBSTITUTIONS = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "job": "ringmq",
    "instance": "127.0.0.1:8080|127.0.0.2:8080",
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "bool", "offset", "sum", "min", "max", "avg", "count", "stddev", "stdvar",
            "topk", "bottomk", "quantile", "count_values", "group", "inf", "nan", "atan2"}
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
START_DEADLINE_S = 15


def start_node(binary, data_dir, name, extra):
    """Starts one ringmq node on ephemeral ports; returns (process, log path)."""
    log_path = os.path.join(data_dir, name + ".log")
    args = [binary, "--set", "listeners[0].bind=127.0.0.1:0", "--set", "http.bind=127.0.0.1:0",
            "--set", "node.id=" + name, "--set", "node.data_dir=" + os.path.join(data_dir, name),
            "--set", "cluster.bind=127.0.0.1:0", "--set", "cluster.heartbeat_interval_ms=100",
            "--set", "cluster.suspect_timeout_ms=600", "--set", "cluster.dead_timeout_ms=1500"]
    for e in extra:
        args += ["--set", e]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    return proc, log_path


def wait_log(proc, log_path, pattern):
    """The first match of `pattern` in the node's log once it has started."""
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline and proc.poll() is None:
        with open(log_path) as log:
            text = log.read()
        m = re.search(pattern, text)
        if m and " started: " in text:
            return m
        time.sleep(0.05)
    with open(log_path) as log:
        raise RuntimeError("ringmq did not start within %d s:\n%s" % (START_DEADLINE_S, log.read()))


def scrape_ringmq(binary):
    """Starts a cluster of two ringmq nodes on ephemeral ports (so that the
    per-peer series exist) and returns the text of one /metrics scrape of the first."""
    data_dir = tempfile.mkdtemp(prefix="ringmq-deploy-")
    procs = []
    try:
        first, first_log = start_node(binary, data_dir, "deploy-check", [])
        procs.append(first)
        port = int(wait_log(first, first_log, r"http listening: address=\S+:(\d+)").group(1))
        peer = wait_log(first, first_log, r"advertised=(\S+)").group(1)
        second, _ = start_node(binary, data_dir, "deploy-peer", ["cluster.seeds=" + peer])
        procs.append(second)
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
                text = r.read().decode()
            if 'ringmq_cluster_peer_up{peer="deploy-peer"} 1' in text:
                return text
            if time.monotonic() > deadline:
                raise RuntimeError("the second node did not join within %d s" % START_DEADLINE_S)
            time.sleep(0.05)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


def exported_names(text):
    """The series names and label names of a Prometheus text exposition."""
    metrics, labels = set(), set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            metrics.add(name)
            if kind in ("histogram", "summary"):
                metrics.update({name + "_sum", name + "_count"})
            if kind == "histogram":
                metrics.add(name + "_bucket")
        elif line and not line.startswith("#"):
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?", line)
            metrics.add(m.group(1))
            if m.group(3):
                labels.update(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3)))
    return metrics, labels


def names_in(expr):
    """(metric names, label names) an expression refers to."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values and strings
    text = re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    metrics, labels = set(), set()
    braces = 0
    label_list = False  # inside the parentheses after by/without/on/...
    pending_label_list = False
    i = 0
    while i < len(text):
        c = text[i]
        if c == "{":
            braces += 1
        elif c == "}":
            braces -= 1
        elif c == "(":
            label_list = pending_label_list
            pending_label_list = False
        elif c == ")":
            label_list = False
        if not (c.isalpha() or c in "_:"):
            i += 1
            continue
        if i > 0 and (text[i - 1].isdigit() or text[i - 1] == "."):
            i += 1  # 1e3, 0.5 and the like
            continue
        m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text[i:])
        word = m.group(0)
        i += len(word)
        rest = text[i:].lstrip()
        if braces > 0 or label_list:
            labels.add(word)
        elif word in LABEL_LIST_KEYWORDS:
            pending_label_list = True
        elif word in KEYWORDS or rest.startswith("("):
            continue  # an operator, an aggregation or a function
        else:
            metrics.add(word)
    return metrics, labels


def substitute(expr):
    """Replaces the Grafana variables; returns (expression, unknown variables)."""
    unknown = []

    def repl(m):
        name = m.group(1) or m.group(2)
        if name in SUBSTITUTIONS:
            return SUBSTITUTIONS[name]
        unknown.append(name)
        return m.group(0)

    out = re.sub(r"\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\}|\$([a-zA-Z_][a-zA-Z0-9_]*)", repl,
                 expr)
    return out, unknown


def dashboard_expressions(dash, problems):
    """[(where, expression, legend)] of every panel target and query variable."""
    found = []

    def panels_of(items):
        for p in items:
            yield p
            yield from panels_of(p.get("panels", []))

    all_panels = list(panels_of(dash.get("panels", [])))
    ids = [p.get("id") for p in all_panels]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append("panel ids must be present and unique: %s" % ids)
    for p in all_panels:
        where = "panel %s %r" % (p.get("id"), p.get("title"))
        if p.get("type") == "row":
            continue
        if not p.get("targets"):
            problems.append(where + ": no query")
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(where + ": datasource is not ${datasource}")
        for t in p.get("targets", []):
            twhere = "%s query %s" % (where, t.get("refId"))
            if t.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(twhere + ": datasource is not ${datasource}")
            if "expr" not in t:
                problems.append(twhere + ": no expr")
                continue
            found.append((twhere, t["expr"], t.get("legendFormat", "")))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        query = v.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        where = "variable %s" % v.get("name")
        if v.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(where + ": datasource is not ${datasource}")
        m = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*", query)
        if m:
            found.append((where, m.group(1), "{{%s}}" % m.group(2)))
        elif (m := re.fullmatch(r"\s*query_result\((.*)\)\s*", query)):
            found.append((where, m.group(1), ""))
        else:
            problems.append(where + ": unexpected query %r" % query)
    return found, all_panels


def check_layout(panels, problems):
    """Panels fit the 24-column grid and do not overlap."""
    boxes = []
    for p in panels:
        g = p.get("gridPos")
        if not g:
            problems.append("panel %s: no gridPos" % p.get("id"))
            continue
        if g["x"] < 0 or g["w"] <= 0 or g["x"] + g["w"] > 24:
            problems.append("panel %s: outside the 24-column grid" % p.get("id"))
        for other_id, o in boxes:
            if (g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"] and
                    g["y"] < o["y"] + o["h"] and o["y"] < g["y"] + g["h"]):
                problems.append("panels %s and %s overlap" % (other_id, p.get("id")))
        boxes.append((p.get("id"), g))


def promtool_check(promtool, items, problems):
    """Parses every expression with promtool, one recording rule each."""
    with tempfile.TemporaryDirectory(prefix="ringmq-promql-") as tmp:
        path = os.path.join(tmp, "expressions.yml")
        with open(path, "w") as f:
            f.write("groups:\n")
            for n, (where, expr) in enumerate(items):
                # JSON strings are valid YAML scalars: no quoting to get wrong.
                f.write("  - name: %s\n    rules:\n      - record: check:expression_%d\n"
                        "        expr: %s\n" % (json.dumps(where), n, json.dumps(expr)))
        r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            problems.append("promtool check rules on the expressions failed:\n" + r.stdout +
                            r.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--promtool", default="promtool")
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--ringmq", help="ringmq binary to scrape")
    source.add_argument("--metrics", help="a saved /metrics scrape")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--dashboard")
    what.add_argument("--rules")
    args = ap.parse_args()

    if args.ringmq:
        scrape = scrape_ringmq(args.ringmq)
    else:
        with open(args.metrics) as f:
            scrape = f.read()
    metrics, labels = exported_names(scrape)
    if not any(m.startswith("ringmq_") for m in metrics):
        print("the scrape has no ringmq_ metric:\n" + scrape)
        return 1
    metrics |= SYNTHETIC_METRICS
    labels |= TARGET_LABELS
    problems = []
    checked = []  # (where, expression with the variables replaced)

    if args.dashboard:
        with open(args.dashboard) as f:
            try:
                dash = json.load(f)
            except json.JSONDecodeError as e:
                print("%s: not valid JSON: %s" % (args.dashboard, e))
                return 1
        found, panels = dashboard_expressions(dash, problems)
        check_layout([p for p in panels], problems)
        for where, expr, legend in found:
            for rng in re.findall(r"\[([^\]]*)\]", expr):
                if rng != "$__rate_interval":
                    problems.append("%s: range [%s] instead of [$__rate_interval]" % (where, rng))
            plain, unknown = substitute(expr)
            for name in unknown:
                problems.append("%s: unknown variable $%s" % (where, name))
            checked.append((where, plain))
            used_metrics, used_labels = names_in(plain)
            used_labels |= set(re.findall(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", legend))
            for m in sorted(used_metrics - metrics):
                problems.append("%s: metric %s is not exported by ringmq" % (where, m))
            for lbl in sorted(used_labels - labels):
                problems.append("%s: label %s is not exported by ringmq" % (where, lbl))
        promtool_check(args.promtool, checked, problems)
        print("%s: %d expressions in %d panels" % (args.dashboard, len(found), len(panels)))
    else:
        import yaml  # python3-yaml, which yamllint needs too
        with open(args.rules) as f:
            doc = yaml.safe_load(f)
        rules = [r for g in doc["groups"] for r in g["rules"]]
        recorded = {r["record"] for r in rules if "record" in r}
        for r in rules:
            where = "rule %s" % (r.get("alert") or r.get("record"))
            used_metrics, used_labels = names_in(r["expr"])
            for m in sorted(used_metrics - metrics - recorded):
                problems.append("%s: metric %s is not exported by ringmq" % (where, m))
            for lbl in sorted(used_labels - labels):
                problems.append("%s: label %s is not exported by ringmq" % (where, lbl))
        print("%s: %d rules" % (args.rules, len(rules)))

    for p in problems:
        print("PROBLEM: " + p)
    if not problems:
        print("OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
