#!/usr/bin/env bash
# usage: latency-breakdown.sh RDB WORKLOAD CONCURRENCY [CONSISTENCY]
# Starts a fresh three-node cluster (scripts/lib-cluster.sh), runs one
# `rdb bench` cell against the leader (5 s, one shared connection), and
# prints the mean of the leader's latency histograms over the run (WAL
# save, proposal to commit, apply, ReadIndex) and the ReadIndex rounds
# it started.
set -euo pipefail
BIN=$(realpath "$1"); WORKLOAD=$2; CONC=$3; CONS=${4:-}
. "$(dirname "$0")/../../../scripts/lib-cluster.sh"
DIR=$(mktemp -d); trap 'stop_cluster; rm -rf "$DIR"' EXIT
start_cluster "$BIN" "$DIR/c" 2>/dev/null
L=
for p in "${DEBUG_PORTS[@]}"; do
	if curl -s "127.0.0.1:$p/metrics" | grep -q '^rdb_cluster_is_leader 1'; then L=$p; fi
done
snap() { curl -s "127.0.0.1:$L/metrics" | grep -E '^rdb_rpc_request_seconds_(sum|count).*Execute|^rdb_cluster_read_index_rounds_total|^rdb_cluster_(wal_save|apply|commit|read_index)_seconds_(sum|count)' || true; }
snap >"$DIR/a"
"$BIN" bench --endpoints "$EP" --duration 5s --warmup 1s --conns 1 --workload "$WORKLOAD" --concurrency "$CONC" ${CONS:+--consistency "$CONS"} 2>&1 | grep -E "ops/s|latency ms"
snap >"$DIR/b"
python3 - "$DIR/a" "$DIR/b" <<'PY'
import sys
def load(f):
    return {k: float(v) for k, v in (l.rsplit(' ', 1) for l in open(f) if l.strip())}
a, b = load(sys.argv[1]), load(sys.argv[2])
r = 'rdb_cluster_read_index_rounds_total'
print('read index rounds %d' % (b.get(r, 0) - a.get(r, 0)))
for k in sorted(b):
    if '_sum' in k:
        c = k.replace('_sum', '_count')
        n = b[c] - a.get(c, 0)
        if n > 0:
            print('%-40s n=%7d mean=%.3f ms' % (k.replace('rdb_cluster_', '').replace('_seconds_sum', ''), n, (b[k] - a.get(k, 0)) / n * 1000))
PY
