#!/usr/bin/env bash
# usage: read-latency.sh RDB BENCH-FLAGS... -- a fresh three-node cluster, one
# `rdb bench` cell (5 s, one shared connection), then per node: ReadIndex
# rounds started, ReadIndex calls and their mean time, and the mean time of
# the Query calls it served (from the nodes' /metrics).
set -euo pipefail
BIN=$(realpath "$1"); shift
. "$(dirname "$0")/../../../scripts/lib-cluster.sh"
DIR=$(mktemp -d); trap 'stop_cluster; rm -rf "$DIR"' EXIT
start_cluster "$BIN" "$DIR/c" 2>/dev/null
snap() { for p in "${DEBUG_PORTS[@]}"; do curl -s "127.0.0.1:$p/metrics" | grep -E '^rdb_cluster_is_leader|^rdb_cluster_read_index_rounds_total|^rdb_cluster_read_index_seconds_(sum|count)|^rdb_rpc_request_seconds_(sum|count).*Query' | sed "s/^/$p /"; done; }
snap >"$DIR/a"
"$BIN" bench --endpoints "$EP" --duration 5s --warmup 1s --conns 1 "$@" 2>&1 | grep -E "ops/s|latency ms"
snap >"$DIR/b"
python3 - "$DIR/a" "$DIR/b" <<'PY'
import sys
def load(f):
    d={}
    for l in open(f):
        p,k,v=l.split()
        d[(p,k)]=float(v)
    return d
a,b=load(sys.argv[1]),load(sys.argv[2])
ports=sorted(set(p for p,_ in b))
for p in ports:
    g=lambda k:b.get((p,k),0)-a.get((p,k),0)
    lead=b.get((p,'rdb_cluster_is_leader'),0)
    rounds=g('rdb_cluster_read_index_rounds_total')
    s,c=g('rdb_cluster_read_index_seconds_sum'),g('rdb_cluster_read_index_seconds_count')
    print(f"port {p} leader={int(lead)} rounds={rounds:.0f} readindex calls={c:.0f} mean={1000*s/max(c,1):.3f} ms")
    for (pp,k),v in b.items():
        if pp==p and 'request_seconds_sum' in k:
            kc=k.replace('_sum','_count'); cc=v-a.get((p,k),0); n=b[(p,kc)]-a.get((p,kc),0)
            print(f"   {k.split('{')[1][:60]} mean {1000*cc/max(n,1):.3f} ms n={n:.0f}")
PY
