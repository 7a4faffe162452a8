#!/usr/bin/env bash
# Runs rdb and etcd side by side on this machine (docs/bench/2026-11-27-etcd):
# builds bin/rdb, etcd's server and its load generator (from that
# directory's own module, so etcd stays out of rdb's), runs compare.sh for
# $PASSES passes and writes the table to $OUT/summary.md.
#
# Environment:
#   PASSES  passes, each rdb's cells then etcd's or the other way round (default 3)
#   OUT     output directory (default bench-results/etcd-<UTC time>)
#   GO      go command (default go)
#
# A pass takes about 110 s. Both clusters run on free loopback ports with
# their data in a temporary directory, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

PASSES=${PASSES:-3}
OUT=${OUT:-bench-results/etcd-$(date -u +%Y%m%d-%H%M%S)}
GO=${GO:-go}
PEER=docs/bench/2026-11-27-etcd

make --no-print-directory build GO="$GO"
mkdir -p bin "$OUT"
(cd "$PEER" && CGO_ENABLED=0 "$GO" build -o ../../../bin/etcd-peer ./etcd && CGO_ENABLED=0 "$GO" build -o ../../../bin/etcd-peer-load ./load)
"$PEER/compare.sh" bin/rdb bin/etcd-peer bin/etcd-peer-load "$OUT" "$PASSES"
python3 "$PEER/summary.py" "$OUT" | tee "$OUT/summary.md"
echo "reports and summary.md in $OUT" >&2
