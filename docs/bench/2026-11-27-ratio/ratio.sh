#!/usr/bin/env bash
# usage: ratio.sh RDB OUTDIR [PASSES] -- the `none`/local target measured in
# one go: each pass runs the local modernc point SELECT benchmark
# (db.BenchmarkPointSelect/raw, 200,000 SELECTs, compiled once before the
# first pass), then `none` point reads on the leader of a fresh
# three-node cluster at each concurrency of CONCURRENCY (default
# "8 64 128 256", --conns 1), with the leader's CPU per read, then the
# local benchmark again. The ratio of a pass is the local SELECT's time
# (mean of its two runs) over the leader's CPU per read.
set -euo pipefail
BIN=$(realpath "$1"); OUT=$(realpath -m "$2"); PASSES=${3:-3}
CONCURRENCY=${CONCURRENCY:-8 64 128 256}
cd "$(dirname "$0")/../../.."
. scripts/lib-cluster.sh
mkdir -p "$OUT"
DIR=$(mktemp -d); trap 'stop_cluster; rm -rf "$DIR"' EXIT
go test -c -o "$DIR/db.test" ./db/
HZ=$(getconf CLK_TCK)
local_ns() { "$DIR/db.test" -test.run '^$' -test.bench 'BenchmarkPointSelect/raw' -test.benchtime 200000x | awk '/raw/ {print $3}'; }
ticks() { for pid in "${CLUSTER_PIDS[@]}"; do awk '{printf "%d ", $14 + $15}' /proc/$pid/stat; done; }
for pass in $(seq 1 "$PASSES"); do
	l1=$(local_ns)
	rm -rf "$DIR/c"; start_cluster "$BIN" "$DIR/c" 2>/dev/null
	for c in $CONCURRENCY; do
		a=$(ticks)
		"$BIN" bench --endpoints "$EP" --duration 5s --warmup 1s --format json --conns 1 --workload point-read --consistency none --concurrency "$c" >"$OUT/pass$pass-c$c.json" 2>/dev/null
		b=$(ticks)
		echo "$c $a | $b" >>"$OUT/pass$pass-ticks.txt"
	done
	stop_cluster
	l2=$(local_ns)
	echo "$l1 $l2" >"$OUT/pass$pass-local-ns.txt"
	python3 - "$OUT" "$pass" "$HZ" <<'PY'
import json, sys
out, p, hz = sys.argv[1], sys.argv[2], int(sys.argv[3])
l1, l2 = map(float, open(f"{out}/pass{p}-local-ns.txt").read().split())
local_us = (l1 + l2) / 2 / 1000
line = [f"pass {p}: local SELECT {l1/1000:.2f} / {l2/1000:.2f} us"]
for row in open(f"{out}/pass{p}-ticks.txt"):
    c, rest = row.split(" ", 1)
    a, b = rest.split("|")
    a, b = list(map(int, a.split())), list(map(int, b.split()))
    j = json.load(open(f"{out}/pass{p}-c{c}.json"))
    total = j['ops'] * (j['duration_s'] + j['warmup_s']) / j['duration_s']
    lead = max((y - x) / hz * 1e6 / total for x, y in zip(a, b))
    line.append(f"c={c}: {j['ops_per_sec']:,.0f} reads/s, leader {lead:.1f} us/read, ratio {100*local_us/lead:.0f}%")
print("; ".join(line))
PY
done | tee "$OUT/summary.txt"
