#!/usr/bin/env python3
"""usage: summary.py OUTDIR -- a Markdown table of compare.sh's reports:
per cell, rdb's and etcd's ops/s (rows/s for the batch cells) in each
pass, rdb's median over etcd's, and the median p50 latencies."""
import glob
import json
import os
import re
import statistics
import sys


def load_runs(outdir):
    """compare.sh's reports in outdir: {cell: {peer: [(pass, report)]}},
    each peer's list in pass order (empty reports left out)."""
    runs = {}
    for path in glob.glob(os.path.join(outdir, "*.json")):
        m = re.match(r"(\d+)-(rdb|etcd)-(.+)\.json$", os.path.basename(path))
        if not m:
            continue
        with open(path) as f:
            text = f.read().strip()
        if not text:
            continue
        runs.setdefault(m.group(3), {}).setdefault(m.group(2), []).append((int(m.group(1)), json.loads(text)))
    for peers in runs.values():
        for reps in peers.values():
            reps.sort(key=lambda x: x[0])
    return runs


def main():
    runs = load_runs(sys.argv[1])
    print("| cell | rdb per pass | etcd per pass | rdb / etcd (medians) | p50 ms rdb / etcd (medians) |")
    print("| --- | --- | --- | --- | --- |")
    order = ["write-leader-c1", "write-leader-c64", "write-follower-c1", "write-follower-c64", "batch100-leader-c8",
             "read-linearizable-leader-c8", "read-linearizable-follower-c8", "read-local-leader-c8"]
    for cell in sorted(runs, key=lambda c: order.index(c) if c in order else 99):
        peers = runs[cell]
        cols, med, p50 = [], {}, {}
        for peer in ("rdb", "etcd"):
            reps = [r for _, r in peers.get(peer, [])]
            key = "rows_per_sec" if cell.startswith("batch") else "ops_per_sec"
            rates = [r[key] for r in reps]
            cols.append(" / ".join(f"{x:,.0f}" for x in rates) or "-")
            med[peer] = statistics.median(rates) if rates else None
            p50[peer] = statistics.median(r["p50_ms"] for r in reps) if reps else None
        ratio = f"{med['rdb'] / med['etcd']:.2f}" if med["rdb"] and med["etcd"] else "-"
        lat = f"{p50['rdb']:.2f} / {p50['etcd']:.2f}" if p50["rdb"] and p50["etcd"] else "-"
        print(f"| {cell} | {cols[0]} | {cols[1]} | {ratio} | {lat} |")


if __name__ == "__main__":
    main()
