#!/usr/bin/env bash
# usage: latency-breakdown.sh RDB WORKLOAD CONCURRENCY [CONSISTENCY]
# One `rdb bench` cell against the leader of a fresh three-node cluster
# (5 s after 1 s of warm-up, one shared connection), with the mean of the
# nodes' latency histograms over the run (WAL save, proposal to commit,
# apply, ReadIndex, each gRPC method) and the ReadIndex rounds started.
# Now docs/bench/2026-11-27-etcd/stages.sh, which reports every node; this
# keeps the command line the 2026-11-26 sections give.
set -euo pipefail
BIN=$1 WORKLOAD=$2 CONC=$3 CONS=${4:-}
WARMUP=1s exec "$(dirname "$0")/../2026-11-27-etcd/stages.sh" "$BIN" \
	"--workload $WORKLOAD --concurrency $CONC${CONS:+ --consistency $CONS}"
