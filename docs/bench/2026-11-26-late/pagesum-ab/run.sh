#!/usr/bin/env bash
# usage: run.sh BINARY OUTDIR -- the five cells of the page-checksum A/B on
# a fresh three-node cluster (scripts/lib-cluster.sh), one JSON report each.
set -euo pipefail
BIN=$(realpath "$1"); OUT=$2
. "$(dirname "$0")/../../../../scripts/lib-cluster.sh"
mkdir -p "$OUT"
DIR=$(mktemp -d); trap 'stop_cluster; rm -rf "$DIR"' EXIT
start_cluster "$BIN" "$DIR"
cell() { name=$1; shift; "$BIN" bench --endpoints "$EP" --duration 5s --warmup 1s --format json "$@" >"$OUT/$name.json" 2>"$OUT/$name.err"; }
cell insert-c1 --workload insert --concurrency 1
cell insert-c64 --workload insert --concurrency 64 --conns 1
cell batch100-c8 --workload batch --batch 100 --concurrency 8
cell lin-c8 --workload point-read --consistency linearizable --concurrency 8 --conns 1
cell none-c8 --workload point-read --consistency none --concurrency 8
