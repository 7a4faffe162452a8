#!/usr/bin/env bash
# usage: c1-strace.sh RDB OUTPREFIX BENCH-FLAGS... -- starts a fresh
# three-node cluster, runs `rdb bench` for 8 s with the given flags (one
# shared connection) and, from its third second, counts every node's
# system calls for 4 s with `strace -c -f`: OUTPREFIX-node<i>-lead<0|1>.txt.
# strace slows the nodes; divide the counts by the fdatasync calls (one
# per insert at c=1) for calls per operation.
set -euo pipefail
BIN=$(realpath "$1"); OUT=$2; shift 2
. "$(dirname "$0")/../../../scripts/lib-cluster.sh"
DIR=$(mktemp -d); trap 'stop_cluster; rm -rf "$DIR"' EXIT
start_cluster "$BIN" "$DIR/c" 2>/dev/null
"$BIN" bench --endpoints "$EP" --duration 8s --warmup 0s --conns 1 "$@" >"$DIR/bench.txt" 2>&1 &
B=$!
sleep 2
TRACERS=()
for i in 0 1 2; do
	lead=$(curl -s "127.0.0.1:${DEBUG_PORTS[$i]}/metrics" | grep -c '^rdb_cluster_is_leader 1' || true)
	timeout -s INT 4 strace -c -f -p "${CLUSTER_PIDS[$i]}" -o "$OUT-node$i-lead$lead.txt" 2>/dev/null &
	TRACERS+=($!)
done
wait "$B"
wait "${TRACERS[@]}" || true
grep -E "^requests" "$DIR/bench.txt"
