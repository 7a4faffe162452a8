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

. scripts/lib-cluster.sh

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rdb-bench-sweep.XXXXXX")
failed=1
cleanup() {
	trap - EXIT INT TERM
	stop_cluster
	if [ "$failed" = 1 ]; then
		mkdir -p "$OUT/nodes"
		cp "$TMP"/node*.log "$OUT/nodes/" 2>/dev/null || true
		echo "sweep failed; node logs in $OUT/nodes, bench output in $OUT/bench.log" >&2
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_cluster "$RDB" "$TMP"

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
