#!/usr/bin/env bash
# usage: cpu-per-op.sh BINARY BENCH-ARGS... -- on a fresh three-node cluster
# (scripts/lib-cluster.sh): a 2 s warm-up, then two 5 s bench runs, each
# printing ops/s, p50, the CPU (user + system) the servers and the bench
# process used per operation, and the cores busy in all.
set -euo pipefail
BIN=$(realpath "$1"); shift
. "$(dirname "$0")/../../../scripts/lib-cluster.sh"
DIR=$(mktemp -d); trap 'stop_cluster; rm -rf "$DIR"' EXIT
start_cluster "$BIN" "$DIR" 2>/dev/null
"$BIN" bench --endpoints "$EP" --duration 2s --warmup 0s "$@" >/dev/null 2>&1
for rep in 1 2; do
a=$(cluster_cpu_ticks); t0=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o $DIR/time "$BIN" bench --endpoints "$EP" --duration 5s --warmup 0s --format json "$@" >"$DIR/o.json" 2>/dev/null
b=$(cluster_cpu_ticks); t1=$(date +%s.%N)
python3 -c "
import json, os
j = json.load(open('$DIR/o.json')); ops = j['ops_per_sec'] * 5
hz = os.sysconf('SC_CLK_TCK'); u,s = map(float, open('$DIR/time').read().split()[-2:])
print('%7.0f ops/s p50 %.2f ms  servers %5.1f us/op  client %5.1f us/op  util %.2f cores' % (j['ops_per_sec'], j['p50_ms'], ($b - $a) * 1e6 / hz / ops, (u+s)*1e6/ops, (($b-$a)/hz + u + s)/($t1-$t0)))"
done
