#!/usr/bin/python3
"""Renders bench/results/*.json into the tables of bench/README.md.

Each generated block sits between `<!-- NAME:begin -->` and `<!-- NAME:end -->`
markers, so the prose around it is kept as written.
"""

import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent
RESULTS = ROOT / "results"
README = ROOT / "README.md"


def micro_table() -> str:
    rows = []
    context = None
    for path in sorted(RESULTS.glob("micro-*.json")):
        data = json.loads(path.read_text())
        context = context or data.get("context", {})
        for b in data.get("benchmarks", []):
            if b.get("aggregate_name") != "median":
                continue
            name = b["run_name"]
            unit = b.get("time_unit", "ns")
            value = b["real_time"]
            scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]
            ns = value * scale
            extra = ""
            if "bytes_per_second" in b:
                extra = f"{b['bytes_per_second'] / 1e9:.2f} GB/s"
            elif "items_per_second" in b:
                extra = f"{b['items_per_second'] / 1e6:.2f} M items/s"
            rows.append(f"| `{name}` | {ns:,.0f} | {extra} |")
    if not rows:
        return "_No micro-benchmark results yet: run `./dev bench`._"
    head = "| benchmark | ns per operation (median of 3) | throughput |\n|---|---:|---|"
    note = ""
    if context:
        note = (f"\n\nMeasured {context.get('date', '')} on {context.get('num_cpus', '?')} CPUs "
                f"at {context.get('mhz_per_cpu', '?')} MHz, pinned to one core, release build.")
    return head + "\n" + "\n".join(rows) + note


def replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(\n<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"bench/README.md lacks the {name} markers")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def main() -> None:
    text = README.read_text()
    text = replace_block(text, "micro", micro_table())
    README.write_text(text)


if __name__ == "__main__":
    main()
