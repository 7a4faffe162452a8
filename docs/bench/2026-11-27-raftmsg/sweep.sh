#!/usr/bin/env bash
# usage: sweep.sh RDB OUTDIR PASSES "CONFIG..."
# Measures raft's message settings (rdb serve --raft-max-msg-bytes and
# --raft-max-inflight-msgs). Each CONFIG is SIZE/INFLIGHT (e.g. 1048576/256);
# every pass runs each config once (odd passes in the given order, even
# passes in reverse), on a fresh
# three-node cluster:
#   1. inserts, concurrency 64, to the leader (5 s, one shared connection);
#   2. 100-row batches, concurrency 8 (5 s);
#   3. catch-up: one follower is stopped (SIGSTOP) during 4 s of 100-row
#      batches, then resumed; the time until its applied index reaches the
#      leader's, and the leader's peak RSS.
# Prints one line per config and pass, and keeps the bench JSON in OUTDIR.
#
# With DELAY set (e.g. DELAY=5ms), every raft peer link goes through a
# delayproxy (this directory's delayproxy/, built to $DELAYPROXY or
# /tmp/delayproxy) that delays each chunk by DELAY each way: a round trip
# of 2 x DELAY between nodes, none between the client and the nodes.
set -euo pipefail
BIN=$(realpath "$1"); OUT=$2; PASSES=$3; CONFIGS=$4
HERE=$(dirname "$0")
. "$HERE/../../../scripts/lib-cluster.sh"
DELAY=${DELAY:-}
DELAYPROXY=${DELAYPROXY:-/tmp/delayproxy}
mkdir -p "$OUT"
DIR=$(mktemp -d)
PROXY_PIDS=()
stop_all() {
	stop_cluster
	for p in "${PROXY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	PROXY_PIDS=()
}
trap 'stop_all; rm -rf "$DIR"' EXIT
if [ -n "$DELAY" ]; then
	(cd "$HERE/../../.." && go build -o "$DELAYPROXY" ./docs/bench/2026-11-27-raftmsg/delayproxy)
fi

# start_delayed FLAGS...: start_cluster's cluster, with each node's peer
# address behind a delayproxy (advertised with --advertise-peer).
start_delayed() {
	local ports peer proxy cluster i status
	read -r -a ports <<<"$(free_ports 12)"
	CLIENT_PORTS=("${ports[@]:0:3}"); peer=("${ports[@]:3:3}"); DEBUG_PORTS=("${ports[@]:6:3}"); proxy=("${ports[@]:9:3}")
	cluster="1=127.0.0.1:${proxy[0]},2=127.0.0.1:${proxy[1]},3=127.0.0.1:${proxy[2]}"
	EP="127.0.0.1:${CLIENT_PORTS[0]},127.0.0.1:${CLIENT_PORTS[1]},127.0.0.1:${CLIENT_PORTS[2]}"
	mkdir -p "$DIR/c"
	for i in 0 1 2; do
		"$DELAYPROXY" -listen "127.0.0.1:${proxy[i]}" -target "127.0.0.1:${peer[i]}" -delay "$DELAY" >/dev/null 2>&1 &
		PROXY_PIDS+=($!)
	done
	for i in 1 2 3; do
		"$BIN" serve --id "$i" --data-dir "$DIR/c/node$i" --listen "127.0.0.1:${CLIENT_PORTS[i - 1]}" \
			--peer-listen "127.0.0.1:${peer[i - 1]}" --advertise-peer "127.0.0.1:${proxy[i - 1]}" \
			--debug-listen "127.0.0.1:${DEBUG_PORTS[i - 1]}" --initial-cluster "$cluster" "$@" >"$DIR/c/node$i.log" 2>&1 &
		CLUSTER_PIDS+=($!)
	done
	for _ in $(seq 1 300); do
		status=$("$BIN" status --endpoint "127.0.0.1:${CLIENT_PORTS[0]}" --timeout 1s 2>/dev/null) || true
		if grep -q '"leader": [1-9]' <<<"$status"; then return 0; fi
		sleep 0.2
	done
	echo "no leader after 60 s" >&2
	return 1
}

metric() { # metric PORT NAME: the value of an unlabelled metric
	local page
	page=$(curl -s "127.0.0.1:$1/metrics") || true
	awk -v n="$2" '$1 == n {print $2}' <<<"$page" | head -1
}
rate() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(round(d["rows_per_sec"]))' "$1"; }

for pass in $(seq 1 "$PASSES"); do
	order=$CONFIGS
	if [ $((pass % 2)) -eq 0 ]; then # even passes run the configs in reverse
		order=$(tr ' ' '\n' <<<"$CONFIGS" | tac | tr '\n' ' ')
	fi
	for cfg in $order; do
		size=${cfg%/*}; inflight=${cfg#*/}
		tag="p$pass-$size-$inflight"
		rm -rf "$DIR/c"
		if [ -n "$DELAY" ]; then
			start_delayed --raft-max-msg-bytes "$size" --raft-max-inflight-msgs "$inflight"
		else
			start_cluster "$BIN" "$DIR/c" --raft-max-msg-bytes "$size" --raft-max-inflight-msgs "$inflight" 2>/dev/null
		fi
		"$BIN" bench --endpoints "$EP" --workload insert --concurrency 64 --conns 1 --duration 5s --warmup 1s --format json >"$OUT/$tag-insert64.json" 2>/dev/null
		"$BIN" bench --endpoints "$EP" --workload batch --batch 100 --concurrency 8 --conns 1 --duration 5s --warmup 1s --format json >"$OUT/$tag-batch.json" 2>/dev/null
		# Which node leads, and a follower to stop.
		lead=-1
		for i in 0 1 2; do
			if [ "$(metric "${DEBUG_PORTS[$i]}" rdb_cluster_is_leader)" = "1" ]; then lead=$i; fi
		done
		f=$(((lead + 1) % 3))
		# Read before the stop: a stopped node answers nothing. The
		# cluster is idle after the batch cell, so this is where it stops.
		from=$(metric "${DEBUG_PORTS[$f]}" rdb_cluster_applied_index)
		kill -STOP "${CLUSTER_PIDS[$f]}"
		"$BIN" bench --endpoints "127.0.0.1:${CLIENT_PORTS[$lead]}" --workload batch --batch 100 --concurrency 8 --conns 1 --duration 4s --warmup 0s --format json >"$OUT/$tag-backlog.json" 2>/dev/null
		target=$(metric "${DEBUG_PORTS[$lead]}" rdb_cluster_applied_index)
		start=$(date +%s.%N)
		kill -CONT "${CLUSTER_PIDS[$f]}"
		while :; do
			got=$(metric "${DEBUG_PORTS[$f]}" rdb_cluster_applied_index)
			if [ -n "$got" ] && [ "${got%.*}" -ge "${target%.*}" ] 2>/dev/null; then break; fi
			if python3 -c "import sys,time; sys.exit(0 if time.time() - $start < 120 else 1)"; then sleep 0.02; else echo "$tag: no catch-up in 120 s" >&2; break; fi
		done
		took=$(python3 -c "import time; print(f'{time.time() - $start:.2f}')")
		rss=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/${CLUSTER_PIDS[$lead]}/status")
		printf '%s delay=%s size=%s inflight=%s insert64=%s batch_rows=%s catchup_entries=%s catchup_s=%s leader_peak_rss_mb=%s\n' \
			"$pass" "${DELAY:-0}" "$size" "$inflight" "$(rate "$OUT/$tag-insert64.json")" "$(rate "$OUT/$tag-batch.json")" \
			"$(( ${target%.*} - ${from%.*} ))" "$took" "$rss" | tee -a "$OUT/summary.txt"
		stop_all
	done
done
