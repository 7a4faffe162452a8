#!/usr/bin/env bash
# usage: cpu.sh BINARY -- server CPU (user + system of the three nodes) per
# operation for inserts at c=64 on one shared connection and for none reads
# at c=8, on a fresh three-node cluster (scripts/lib-cluster.sh).
set -euo pipefail
BIN=$(realpath "$1")
. "$(dirname "$0")/../../../scripts/lib-cluster.sh"
DIR=$(mktemp -d); trap 'stop_cluster; rm -rf "$DIR"' EXIT
start_cluster "$BIN" "$DIR"
cell() {
	name=$1; shift
	a=$(cluster_cpu_ticks)
	"$BIN" bench --endpoints "$EP" --duration 5s --warmup 0s --format json "$@" >"$DIR/$name.json" 2>/dev/null
	b=$(cluster_cpu_ticks)
	python3 -c "
import json, os
j = json.load(open('$DIR/$name.json')); ops = j['ops_per_sec'] * 5
hz = os.sysconf('SC_CLK_TCK')
print('%-10s %7.0f ops/s  servers %5.1f us CPU/op' % ('$name', j['ops_per_sec'], ($b - $a) * 1e6 / hz / ops))"
}
"$BIN" bench --endpoints "$EP" --duration 2s --warmup 0s --workload insert --concurrency 64 --conns 1 >/dev/null 2>&1
cell insert64 --workload insert --concurrency 64 --conns 1
cell none8 --workload point-read --consistency none --concurrency 8
