#!/usr/bin/env bash
# usage: c1-histograms.sh RDB BENCH-FLAGS... -- starts a fresh three-node
# cluster, runs `rdb bench` for 6 s with the given flags (one shared
# connection) and prints, per node, the cumulative buckets up to 64 ms of
# its WAL fsync, apply and (leader) commit histograms from /metrics.
set -euo pipefail
BIN=$(realpath "$1"); shift
. "$(dirname "$0")/../../../scripts/lib-cluster.sh"
DIR=$(mktemp -d); trap 'stop_cluster; rm -rf "$DIR"' EXIT
start_cluster "$BIN" "$DIR/c" 2>/dev/null
"$BIN" bench --endpoints "$EP" --duration 6s --warmup 0s --conns 1 "$@" 2>/dev/null | grep -E "^(requests|latency)"
for i in 0 1 2; do
	curl -s "127.0.0.1:${DEBUG_PORTS[$i]}/metrics" >"$DIR/m$i"
	echo "node $i lead=$(grep -c '^rdb_cluster_is_leader 1' "$DIR/m$i" || true)"
	grep -E "^(etcd_disk_wal_fsync_duration_seconds_bucket|rdb_cluster_commit_seconds_bucket|rdb_cluster_apply_seconds_bucket)" "$DIR/m$i" |
		grep -E 'le="(0.001|0.002|0.004|0.008|0.016|0.032|0.064|\+Inf)"' | tr '\n' ' '
	echo
done
