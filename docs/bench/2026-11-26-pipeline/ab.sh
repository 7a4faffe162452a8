#!/usr/bin/env bash
# usage: ab.sh BEFORE AFTER OUTDIR [PASSES] -- alternates two rdb binaries,
# each pass on a fresh three-node cluster (scripts/lib-cluster.sh), and runs
# the cells below with one client connection per node shared by the workers
# (--conns 1). For each cell it keeps the bench JSON and adds the CPU time
# (user + system) the three servers and the bench process used per operation.
# CELLS (optional, space-separated cell names) runs only those cells.
set -euo pipefail
BEFORE=$(realpath "$1"); AFTER=$(realpath "$2"); OUT=$3; PASSES=${4:-3}
. "$(dirname "$0")/../../../scripts/lib-cluster.sh"
mkdir -p "$OUT"
DIR=$(mktemp -d); trap 'stop_cluster; rm -rf "$DIR"' EXIT
HZ=$(getconf CLK_TCK)
cell() {
	local tag=$1 name=$2; shift 2
	local a b
	if [ -n "${CELLS:-}" ] && [[ " $CELLS " != *" $name "* ]]; then return; fi
	a=$(cluster_cpu_ticks)
	/usr/bin/time -f "%U %S" -o "$DIR/time" "$BIN" bench --endpoints "$EP" --duration 5s --warmup 1s --format json --conns 1 "$@" >"$DIR/cell.json" 2>/dev/null
	b=$(cluster_cpu_ticks)
	python3 - "$DIR/cell.json" "$DIR/time" "$a" "$b" "$HZ" >"$OUT/$tag-$name.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); u, s = map(float, open(sys.argv[2]).read().split()[-2:])
a, b, hz = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ops = j['ops'] or 1
# the servers' CPU covers warmup too: spread it over warmup + measured ops
total = ops * (j['duration_s'] + j['warmup_s']) / j['duration_s']
j['server_cpu_us_per_op'] = (b - a) / hz * 1e6 / total
j['client_cpu_us_per_op'] = (u + s) * 1e6 / total
json.dump(j, sys.stdout)
PY
}
for pass in $(seq 1 "$PASSES"); do
	for which in before after; do
		if [ $which = before ]; then BIN=$BEFORE; else BIN=$AFTER; fi
		rm -rf "$DIR/c"; start_cluster "$BIN" "$DIR/c" 2>/dev/null
		tag=$which-$pass
		cell $tag insert-leader-c1 --workload insert --concurrency 1
		cell $tag insert-leader-c64 --workload insert --concurrency 64
		cell $tag insert-follower-c1 --workload insert --concurrency 1 --target follower
		cell $tag insert-follower-c64 --workload insert --concurrency 64 --target follower
		cell $tag batch100-leader-c8 --workload batch --batch 100 --concurrency 8
		cell $tag read-none-leader-c8 --workload point-read --consistency none --concurrency 8
		cell $tag read-linearizable-leader-c8 --workload point-read --consistency linearizable --concurrency 8
		cell $tag read-linearizable-follower-c8 --workload point-read --consistency linearizable --concurrency 8 --target follower
		for i in 1 2 3; do echo "node$i rss_kb $(awk '/VmRSS/{print $2}' /proc/${CLUSTER_PIDS[$((i-1))]}/status)"; done >"$OUT/$tag-rss.txt"
		stop_cluster
	done
done
