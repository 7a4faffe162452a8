#!/usr/bin/env bash
# usage: read-latency.sh RDB BENCH-FLAGS... -- a fresh three-node cluster,
# one `rdb bench` cell (5 s after 1 s of warm-up, one shared connection),
# then per node: ReadIndex rounds started, ReadIndex calls and their mean
# time, and the mean time of the calls it served, by gRPC method (from the
# nodes' /metrics). Now docs/bench/2026-11-27-etcd/stages.sh; this keeps
# the command line the 2026-11-26 sections give.
set -euo pipefail
BIN=$1; shift
WARMUP=1s exec "$(dirname "$0")/../2026-11-27-etcd/stages.sh" "$BIN" "$*"
