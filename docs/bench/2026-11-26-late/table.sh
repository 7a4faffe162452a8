#!/usr/bin/env bash
# usage: table.sh BINARY OUTDIR -- the cells of the 2026-11-26 table, each with
# --conns 0 and --conns 1, on a fresh three-node cluster
# (scripts/lib-cluster.sh); the nodes' RSS at the end goes to OUTDIR/rss.txt.
set -euo pipefail
BIN=$(realpath "$1"); OUT=$2
. "$(dirname "$0")/../../../scripts/lib-cluster.sh"
mkdir -p "$OUT"
DIR=$(mktemp -d); trap 'stop_cluster; rm -rf "$DIR"' EXIT
start_cluster "$BIN" "$DIR"
cell() { name=$1; shift; for c in 0 1; do "$BIN" bench --endpoints "$EP" --duration 5s --warmup 1s --format json --conns $c "$@" >"$OUT/$name-conns$c.json" 2>"$OUT/$name-conns$c.err"; done; }
cell insert-leader-c1 --workload insert --concurrency 1
cell insert-leader-c64 --workload insert --concurrency 64
cell insert-follower-c1 --workload insert --concurrency 1 --target follower
cell insert-follower-c64 --workload insert --concurrency 64 --target follower
cell batch100-leader-c8 --workload batch --batch 100 --concurrency 8
for lvl in none weak linearizable strong; do cell read-$lvl-leader-c8 --workload point-read --consistency $lvl --concurrency 8; done
cell read-linearizable-follower-c8 --workload point-read --consistency linearizable --concurrency 8 --target follower
for i in 1 2 3; do echo "node$i rss_kb $(awk '/VmRSS/{print $2}' /proc/${CLUSTER_PIDS[$((i-1))]}/status)"; done >"$OUT/rss.txt"
