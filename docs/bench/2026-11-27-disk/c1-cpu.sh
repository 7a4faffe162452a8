#!/usr/bin/env bash
# usage: c1-cpu.sh RDB BENCH-FLAGS... -- starts a fresh three-node cluster
# (scripts/lib-cluster.sh), warms it up for 3 s, runs `rdb bench` for 6 s
# with the given flags (one shared connection) and prints the rate, each
# node's user and system CPU per operation (from /proc/PID/stat) and the
# machine's CPU split over the run (from /proc/stat, percent of 200).
set -euo pipefail
BIN=$(realpath "$1"); shift
. "$(dirname "$0")/../../../scripts/lib-cluster.sh"
DIR=$(mktemp -d); trap 'stop_cluster; rm -rf "$DIR"' EXIT
start_cluster "$BIN" "$DIR/c" 2>/dev/null
snap() { for p in "${CLUSTER_PIDS[@]}"; do echo "$p $(cut -d' ' -f14,15 /proc/$p/stat)"; done; }
"$BIN" bench --endpoints "$EP" --duration 3s --warmup 0s --conns 1 "$@" >/dev/null 2>&1
snap >"$DIR/a"; head -1 /proc/stat >"$DIR/sa"
"$BIN" bench --endpoints "$EP" --duration 6s --warmup 0s --conns 1 --format json "$@" >"$DIR/j" 2>/dev/null
snap >"$DIR/b"; head -1 /proc/stat >"$DIR/sb"
python3 - "$DIR" "$(getconf CLK_TCK)" <<'PY'
import json, sys
d, hz = sys.argv[1], int(sys.argv[2])
j = json.load(open(d + '/j')); ops = j['ops']
a = [l.split() for l in open(d + '/a')]; b = [l.split() for l in open(d + '/b')]
print("ops/s %.0f p50 %.3f ms" % (j['ops_per_sec'], j['p50_ms']))
for x, y in zip(a, b):
    u = (int(y[1]) - int(x[1])) / hz * 1e6 / ops; s = (int(y[2]) - int(x[2])) / hz * 1e6 / ops
    print("pid %s user %.0f us/op sys %.0f us/op" % (x[0], u, s))
sa = list(map(int, open(d + '/sa').read().split()[1:])); sb = list(map(int, open(d + '/sb').read().split()[1:]))
dd = [y - x for x, y in zip(sa, sb)]; tot = sum(dd)
print("machine: user %.0f%% sys %.0f%% idle %.0f%% iowait %.0f%% steal %.0f%% (of 200)" %
      (dd[0] * 200 / tot, dd[2] * 200 / tot, dd[3] * 200 / tot, dd[4] * 200 / tot, dd[7] * 200 / tot))
PY
