#!/usr/bin/env bash
# usage: none-cpu.sh BIN OUT -- none reads on the leader at c=8 and c=64
# (--conns 1), with the CPU of each node per read.
set -euo pipefail
BIN=$(realpath "$1"); OUT=$(realpath -m "$2")
cd "$(dirname "$0")/../../.."
. scripts/lib-cluster.sh
mkdir -p "$OUT"
DIR=$(mktemp -d); trap 'stop_cluster; rm -rf "$DIR"' EXIT
start_cluster "$BIN" "$DIR/c" 2>/dev/null
HZ=$(getconf CLK_TCK)
ticks() { for pid in "${CLUSTER_PIDS[@]}"; do awk '{printf "%d ", $14 + $15}' /proc/$pid/stat; done; }
for c in 8 64; do
	a=$(ticks)
	"$BIN" bench --endpoints "$EP" --duration 5s --warmup 1s --format json --conns 1 --workload point-read --consistency none --concurrency $c >"$OUT/none-c$c.json" 2>/dev/null
	b=$(ticks)
	python3 - "$OUT/none-c$c.json" "$a" "$b" "$HZ" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); a = list(map(int, sys.argv[2].split())); b = list(map(int, sys.argv[3].split())); hz = int(sys.argv[4])
total = j['ops'] * (j['duration_s'] + j['warmup_s']) / j['duration_s']
per = [(y - x) / hz * 1e6 / total for x, y in zip(a, b)]
print(f"c={j['concurrency']}: {j['ops_per_sec']:,.0f} reads/s; CPU per read by node (us): " + ", ".join(f"{p:.1f}" for p in per) + f"; busiest node {1e6/max(per):,.0f} reads per core-second")
PY
done
