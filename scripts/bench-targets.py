#!/usr/bin/env python3
"""usage: bench-targets.py OUTDIR -- issue 7's targets against what
scripts/bench-targets.sh measured in OUTDIR: per target the figure
needed (../shared/notes/performance.md), the figure of each pass, their
median, and whether the median meets it."""
import glob
import os
import re
import statistics
import sys

out = sys.argv[1]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "bench", "2026-11-27-etcd"))
from summary import load_runs  # noqa: E402  (compare.sh's reports, read as its table reads them)

runs = load_runs(os.path.join(out, "pairs"))


def rdb(cell, key="ops_per_sec"):
    """rdb's figure of a compare.sh cell in each pass, in pass order."""
    return [r[key] for _, r in runs.get(cell, {}).get("rdb", [])]


def per_pass(a, b, f):
    return [f(x, y) for x, y in zip(a, b)]


ratio_pct = []
summary = os.path.join(out, "ratio", "summary.txt")
if os.path.exists(summary):
    for line in open(summary):
        m = re.search(r"c=128: .*? ratio (\d+)%", line)
        if m:
            ratio_pct.append(float(m.group(1)))

gaps = []
failover = os.path.join(out, "failover.txt")
if os.path.exists(failover):
    m = re.search(r"failover write gaps \(default timing\): \[([^\]]*)\]", open(failover).read())
    if m:
        for g in m.group(1).split():
            v = float(re.match(r"[\d.]+", g).group(0))
            gaps.append(v / 1000 if g.endswith("ms") else v)

rss_mb = []
for path in sorted(glob.glob(os.path.join(out, "pairs", "*-rdb-rss.txt"))):
    kb = [int(x) for x in re.findall(r"rss_kb (\d+)", open(path).read())]
    if kb:
        rss_mb.append(max(kb) / 1024)

c1, c64 = rdb("write-leader-c1"), rdb("write-leader-c64")
lin, local = rdb("read-linearizable-leader-c8"), rdb("read-local-leader-c8")
targets = [
    # name, needed, figures per pass, unit, higher is better
    ("inserts c=1, leader (2x rqlite's 633)", 1266, c1, "ops/s", True),
    ("inserts c=1, follower (2x 427)", 854, rdb("write-follower-c1"), "ops/s", True),
    ("inserts c=64, leader (3x 4,602)", 13806, c64, "ops/s", True),
    ("inserts c=64, follower (3x 5,358)", 16074, rdb("write-follower-c64"), "ops/s", True),
    ("100-row batches c=8 (2x 44,500)", 89000, rdb("batch100-leader-c8", "rows_per_sec"), "rows/s", True),
    ("linearizable reads c=8, leader (1.5x 10,000)", 15000, lin, "reads/s", True),
    ("linearizable reads c=8, follower (2.5x 6,300)", 15750, rdb("read-linearizable-follower-c8"), "reads/s", True),
    ("none reads c=8 (1.5x 13,200)", 19800, local, "reads/s", True),
    ("inserts c=64 / c=1, leader", 10, per_pass(c64, c1, lambda a, b: a / b), "times", True),
    ("linearizable / none reads, leader", 0.5, per_pass(lin, local, lambda a, b: a / b), "of none", True),
    ("none per leader core / local SELECT per core, c=128", 70, ratio_pct, "%", True),
    ("failover: kill -9 of the leader to the next write", 1.0, gaps, "s", False),
    ("largest node RSS after a pass's cells", 200, rss_mb, "MB", False),
]


def fmt(v):
    if abs(v) >= 100 or float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:.2f}"


print("| target | needed | per pass (or per kill) | median | verdict |")
print("| --- | --- | --- | --- | --- |")
for name, need, values, unit, higher in targets:
    sign = "≥" if higher else "≤"
    if not values:
        print(f"| {name} | {sign} {fmt(need)} {unit} | - | - | not measured |")
        continue
    med = statistics.median(values)
    ok = med >= need if higher else med <= need
    good = sum(1 for v in values if (v >= need if higher else v <= need))
    verdict = "met" if ok else f"**missed** ({med / need:.2f}x)"
    print(f"| {name} | {sign} {fmt(need)} {unit} | {' / '.join(fmt(v) for v in values)} | {fmt(med)} | {verdict}; {good} of {len(values)} met |")
