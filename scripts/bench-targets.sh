#!/usr/bin/env bash
# Measures every target of issue 7 (../shared/notes/performance.md) in one
# run on this machine and prints them against the notes' figures:
#   1. rdb and etcd side by side (docs/bench/2026-11-27-etcd/compare.sh
#      through scripts/bench-etcd.sh): inserts at c=1 and c=64 to the
#      leader and through a follower, 100-row batches, linearizable reads
#      on the leader and a follower, local reads; the rdb nodes' RSS;
#   2. `none` reads per leader core-second against a local modernc point
#      SELECT per core-second, at c=128 (docs/bench/2026-11-27-ratio/ratio.sh);
#   3. the failover gap: the leader killed six times under a c=1 writer
#      (TestLeaderFailoverWriteGap, servers built without -race).
# The table (scripts/bench-targets.py) goes to $OUT/targets.md.
#
# Environment:
#   PASSES  passes of steps 1 and 2 (default 3)
#   OUT     output directory (default bench-results/targets-<UTC time>)
#   GO      go command (default go)
#
# About 2 minutes a pass plus half a minute for the failover test. The
# machine should be otherwise idle: every figure is a rate on its 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

PASSES=${PASSES:-3}
OUT=${OUT:-bench-results/targets-$(date -u +%Y%m%d-%H%M%S)}
GO=${GO:-go}
mkdir -p "$OUT"

date -u +"rdb and etcd, $PASSES passes, from %H:%M:%S UTC" >&2
OUT="$OUT/pairs" PASSES="$PASSES" GO="$GO" ./scripts/bench-etcd.sh >/dev/null
date -u +"none/local ratio, from %H:%M:%S UTC" >&2
CONCURRENCY=128 docs/bench/2026-11-27-ratio/ratio.sh bin/rdb "$OUT/ratio" "$PASSES" >/dev/null
date -u +"failover, from %H:%M:%S UTC" >&2
RDB_SYSTEM_RACE=0 RDB_FAILOVER_KILLS=6 "$GO" test -count=1 ./system_test/ -run '^TestLeaderFailoverWriteGap$' -v >"$OUT/failover.txt" 2>&1 ||
	{ tail -20 "$OUT/failover.txt" >&2; exit 1; }
date -u +"end %H:%M:%S UTC" >&2
python3 scripts/bench-targets.py "$OUT" | tee "$OUT/targets.md"
echo "reports in $OUT (pairs/summary.md: rdb against etcd)" >&2
