#!/usr/bin/env bash
# usage: stages.sh RDB "BENCH FLAGS"
# Starts a fresh three-node cluster (scripts/lib-cluster.sh), runs
# `rdb bench` with the given flags for DURATION (default 5s, one shared
# connection, after WARMUP, default 0s), and prints the bench result, the
# nodes' CPU (clock ticks, 100 a second) and, per node, the mean of each
# stage's time over the run from the nodes' /metrics: fsync
# (etcd_disk_wal_fsync_duration_seconds), WAL save, apply, commit
# (leader) and ReadIndex round, with their counts, the ReadIndex rounds
# the node started, and the mean time of each gRPC method it served.
# SERVE_FLAGS adds flags to `rdb serve`. It replaces the per-leader
# latency-breakdown.sh (2026-11-26-apply) and the per-node read-latency.sh
# (2026-11-26-codec), which now call it.
set -euo pipefail
BIN=$(realpath "$1"); ARGS=$2
. "$(dirname "$0")/../../../scripts/lib-cluster.sh"
DIR=$(mktemp -d); trap 'stop_cluster; rm -rf "$DIR"' EXIT
# shellcheck disable=SC2086
start_cluster "$BIN" "$DIR/c" ${SERVE_FLAGS:-} 2>/dev/null
for i in 0 1 2; do curl -s "127.0.0.1:${DEBUG_PORTS[$i]}/metrics" >"$DIR/before-$i"; done
t0=$(cluster_cpu_ticks)
# shellcheck disable=SC2086
"$BIN" bench --endpoints "$EP" --duration "${DURATION:-5s}" --warmup "${WARMUP:-0s}" --conns 1 $ARGS 2>/dev/null | grep -E "^(requests|rows|latency)"
t1=$(cluster_cpu_ticks)
for i in 0 1 2; do curl -s "127.0.0.1:${DEBUG_PORTS[$i]}/metrics" >"$DIR/after-$i"; done
echo "server CPU ticks: $((t1 - t0))"
for i in 0 1 2; do
	python3 - "$DIR/before-$i" "$DIR/after-$i" "$((i + 1))" <<'PY'
import re
import sys

def load(path):
    values = {}
    for line in open(path):
        if line.startswith("#"):
            continue
        parts = line.rsplit(" ", 1)
        if len(parts) == 2:
            try:
                values[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return values

before, after = load(sys.argv[1]), load(sys.argv[2])
stages = [("fsync", "etcd_disk_wal_fsync_duration_seconds"), ("save", "rdb_cluster_wal_save_seconds"),
          ("apply", "rdb_cluster_apply_seconds"), ("commit", "rdb_cluster_commit_seconds"),
          ("readindex", "rdb_cluster_read_index_seconds")]
out = []
for label, name in stages:
    n = after.get(name + "_count", 0) - before.get(name + "_count", 0)
    s = after.get(name + "_sum", 0) - before.get(name + "_sum", 0)
    if n > 0:
        out.append(f"{label} {1000 * s / n:.3f} ms (n={n:.0f})")
rounds = after.get("rdb_cluster_read_index_rounds_total", 0) - before.get("rdb_cluster_read_index_rounds_total", 0)
if rounds > 0:
    out.append(f"readindex rounds {rounds:.0f}")
for key in sorted(after):
    m = re.match(r'rdb_rpc_request_seconds_count\{.*method="([^"]+)"', key)
    if m:
        n = after[key] - before.get(key, 0)
        s = after[key.replace("_count{", "_sum{")] - before.get(key.replace("_count{", "_sum{"), 0)
        if n > 0:
            out.append(f"rpc {m.group(1).rsplit('/', 1)[-1]} {1000 * s / n:.3f} ms (n={n:.0f})")
lead = int(after.get("rdb_cluster_is_leader", 0))
print(f"node {sys.argv[3]}{' (leader)' if lead else ''}: " + ", ".join(out))
PY
done
