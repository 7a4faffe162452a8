#!/usr/bin/env bash
# Starts a local three-node rdb cluster in the foreground (clients on
# 127.0.0.1:5001-5003, peers on 127.0.0.1:7001-7003, data in
# ./rdb-run-data), attaches the shell when it exists, and stops all three
# nodes on exit or Ctrl-C.
set -euo pipefail
BIN=${BIN:-./bin}
DATA=${DATA:-./rdb-run-data}
CLUSTER="1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003"
mkdir -p "$DATA"
pids=()
cleanup() {
	trap - EXIT INT TERM
	echo
	echo "stopping the cluster..."
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "stopped. Data stays in $DATA (delete it to start afresh); logs in $DATA/node*.log"
}
trap cleanup EXIT INT TERM
for i in 1 2 3; do
	"$BIN/rdb" serve --id "$i" --data-dir "$DATA/node$i" \
		--listen "127.0.0.1:500$i" --peer-listen "127.0.0.1:700$i" \
		--initial-cluster "$CLUSTER" >>"$DATA/node$i.log" 2>&1 &
	pids+=($!)
done
echo "waiting for a leader..."
for _ in $(seq 1 100); do
	status=$("$BIN/rdb" status --endpoint 127.0.0.1:5001 --timeout 1s 2>/dev/null) || true
	if grep -q '"leader": [1-9]' <<<"$status"; then
		break
	fi
	sleep 0.2
done
"$BIN/rdb" status --endpoint 127.0.0.1:5001 --timeout 2s | head -4 || true
echo "cluster running: clients on 127.0.0.1:5001, 127.0.0.1:5002, 127.0.0.1:5003"
if [ -x "$BIN/rdb-shell" ] && [ -t 0 ]; then
	"$BIN/rdb-shell" --endpoints 127.0.0.1:5001,127.0.0.1:5002,127.0.0.1:5003 || true
else
	echo "press Ctrl-C to stop"
	wait
fi
