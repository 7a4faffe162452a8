#!/usr/bin/env bash
# usage: strace-leader.sh BINARY BENCH-ARGS... -- system calls of the leader
# (strace -c, 5 s) during an 8 s bench run on a fresh three-node cluster.
set -euo pipefail
BIN=$(realpath "$1"); shift
. "$(dirname "$0")/../../../scripts/lib-cluster.sh"
DIR=$(mktemp -d); trap 'stop_cluster; rm -rf "$DIR"' EXIT
start_cluster "$BIN" "$DIR" 2>/dev/null
L=$("$BIN" status --endpoint "127.0.0.1:${CLIENT_PORTS[0]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])')
F=$(( L % 3 + 1 ))
"$BIN" bench --endpoints "$EP" --duration 8s --warmup 0s --format json "$@" > $DIR/o.json 2>/dev/null &
B=$!
sleep 2
timeout -s INT 5 strace -c -f -p ${CLUSTER_PIDS[L-1]} -o $DIR/sl 2>/dev/null || true
wait $B
python3 -c "import json; print('ops/s', json.load(open('$DIR/o.json'))['ops_per_sec'])"
head -14 $DIR/sl
