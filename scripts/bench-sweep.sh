#!/usr/bin/env bash
# Runs the benchmark sweep of docs/benchmarks.md against a fresh local
# three-node cluster and draws its chart:
#   insert to the leader, and point reads at consistency none, weak,
#   linearizable and strong to the leader and linearizable to a follower,
#   each at every concurrency of $CONCURRENCY, for $DURATION seconds.
# Each run's JSON report goes to $OUT/<workload>-<consistency>-<target>-c<N>.json,
# bench's stderr to $OUT/bench.log, and the chart to $OUT/chart.svg.
#
# Environment:
#   DURATION     measured seconds per run (default 5)
#   WARMUP       unmeasured seconds before each run (default 1)
#   CONCURRENCY  concurrency levels (default "1 2 4 8 16 32 64")
#   CONNS        client connections per target node, shared by its workers (default: one per worker)
#   OUT          output directory (default bench-results/<UTC time>)
#   TITLE        chart title (default: rdb bench, 3 nodes on loopback, <date>)
#   GO           go command (default go)
#
# The nodes run on free loopback ports with their data in a temporary
# directory; both are cleaned up on exit. Their logs are copied to
# $OUT/nodes/ when a run fails.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONCURRENCY=${CONCURRENCY:-"1 2 4 8 16 32 64"}
CONNS=${CONNS:-0}
OUT=${OUT:-bench-results/$(date -u +%Y%m%d-%H%M%S)}
TITLE=${TITLE:-"rdb bench, 3 nodes on loopback, $(date -u +%Y-%m-%d)"}
GO=${GO:-go}

echo "building bin/rdb..."
CGO_ENABLED=0 "$GO" build -o bin/rdb ./cmd/rdb
RDB=$PWD/bin/rdb
mkdir -p "$OUT"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rdb-bench-sweep.XXXXXX")
pids=()
failed=1
cleanup() {
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [ "$failed" = 1 ]; then
		mkdir -p "$OUT/nodes"
		cp "$TMP"/node*.log "$OUT/nodes/" 2>/dev/null || true
		echo "sweep failed; node logs in $OUT/nodes, bench output in $OUT/bench.log" >&2
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_ports N prints N loopback TCP ports that are free now (the kernel
# picks them; they stay free unless another process takes one meanwhile).
free_ports() {
	if command -v python3 >/dev/null; then
		python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
		return
	fi
	# No python3: random ports that nothing answers on.
	local ports=() p
	while [ "${#ports[@]}" -lt "$1" ]; do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [[ " ${ports[*]} " != *" $p "* ]]; then
			ports+=("$p")
		fi
	done
	echo "${ports[*]}"
}

read -r -a ports <<<"$(free_ports 6)"
client=("${ports[@]:0:3}")
peer=("${ports[@]:3:3}")
CLUSTER="1=127.0.0.1:${peer[0]},2=127.0.0.1:${peer[1]},3=127.0.0.1:${peer[2]}"
EP="127.0.0.1:${client[0]},127.0.0.1:${client[1]},127.0.0.1:${client[2]}"
for i in 1 2 3; do
	"$RDB" serve --id "$i" --data-dir "$TMP/node$i" \
		--listen "127.0.0.1:${client[i - 1]}" --peer-listen "127.0.0.1:${peer[i - 1]}" \
		--initial-cluster "$CLUSTER" >"$TMP/node$i.log" 2>&1 &
	pids+=($!)
done

echo "waiting for a leader ($EP)..."
leader=0
for _ in $(seq 1 150); do
	if "$RDB" status --endpoint "127.0.0.1:${client[0]}" --timeout 1s 2>/dev/null | grep -q '"leader": [1-9]'; then
		leader=1
		break
	fi
	sleep 0.2
done
if [ "$leader" = 0 ]; then
	echo "no leader after 30 s" >&2
	exit 1
fi

# workload consistency target
runs=(
	"insert - leader"
	"point-read none leader"
	"point-read weak leader"
	"point-read linearizable leader"
	"point-read strong leader"
	"point-read linearizable follower"
)
total=$(($(wc -w <<<"$CONCURRENCY") * ${#runs[@]}))
n=0
for run in "${runs[@]}"; do
	read -r workload consistency target <<<"$run"
	args=(--endpoints "$EP" --workload "$workload" --target "$target"
		--duration "${DURATION}s" --warmup "${WARMUP}s" --format json --progress=false --conns "$CONNS")
	name=$workload-$target
	label="$workload -> $target"
	if [ "$consistency" != - ]; then
		args+=(--consistency "$consistency")
		name=$workload-$consistency-$target
		label="$workload $consistency -> $target"
	fi
	for c in $CONCURRENCY; do
		n=$((n + 1))
		file=$OUT/$name-c$c.json
		printf '[%d/%d] %s, concurrency %d: ' "$n" "$total" "$label" "$c"
		echo "== $name c=$c" >>"$OUT/bench.log"
		"$RDB" bench "${args[@]}" --concurrency "$c" >"$file" 2>>"$OUT/bench.log"
		# The report's two charted figures, e.g. "1234 ops/s, p99 5.67 ms".
		awk -F': *' '/"ops_per_sec"/ { ops = $2 } /"p99_ms"/ { p99 = $2 }
			END { printf "%.0f ops/s, p99 %.2f ms\n", ops, p99 }' "$file"
	done
done

"$RDB" bench chart --out "$OUT/chart.svg" --title "$TITLE" "$OUT"/*.json
failed=0
echo "reports and chart in $OUT (chart: $OUT/chart.svg)"
