#!/usr/bin/env bash
# usage: profile-nodes.sh RDB OUTPREFIX BENCH-FLAGS...
# Starts a fresh three-node cluster, runs `rdb bench` for 8 s with the
# given flags (one shared connection), and takes a 5 s CPU profile of each
# node meanwhile: OUTPREFIX-node<i>-lead<0|1>.prof, and the bench output in
# OUTPREFIX-bench.txt. Read them with `go tool pprof -top RDB FILE`.
set -euo pipefail
BIN=$(realpath "$1"); OUT=$2; shift 2
. "$(dirname "$0")/../../../scripts/lib-cluster.sh"
DIR=$(mktemp -d); trap 'stop_cluster; rm -rf "$DIR"' EXIT
start_cluster "$BIN" "$DIR/c" 2>/dev/null
"$BIN" bench --endpoints "$EP" --duration 8s --warmup 1s --conns 1 "$@" >"$OUT-bench.txt" 2>&1 &
BENCH=$!
sleep 2
PROFS=()
for i in 0 1 2; do
	lead=$(curl -s "127.0.0.1:${DEBUG_PORTS[$i]}/metrics" | grep -c '^rdb_cluster_is_leader 1' || true)
	curl -s "127.0.0.1:${DEBUG_PORTS[$i]}/debug/pprof/profile?seconds=5" >"$OUT-node$i-lead$lead.prof" &
	PROFS+=($!)
done
wait "$BENCH"
for p in "${PROFS[@]}"; do wait "$p"; done
