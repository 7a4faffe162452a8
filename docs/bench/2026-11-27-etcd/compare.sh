#!/usr/bin/env bash
# usage: compare.sh RDB ETCD LOAD OUTDIR [PASSES]
# Same machine, same run: rdb and etcd, each as three nodes on loopback
# with their data in a temporary directory, alternating which goes first
# in each pass; the same cells for both (writes of 100-byte values at
# c=1 and c=64 to the leader and to a follower, atomic batches of
# 100 such writes at c=8 (rdb: --workload batch, etcd: a transaction of
# 100 puts), point reads at c=8
# linearizable on the leader and a follower and serializable / none on
# the leader), one shared client connection per node, 5 s after a 1 s
# warmup. rdb's reports are `rdb bench --format json`, etcd's come from
# LOAD (load/main.go here); both print ops_per_sec, p50_ms and p99_ms.
# OUTDIR/PASS-rdb-rss.txt gets the rdb nodes' RSS after their cells.
set -euo pipefail
RDB=$(realpath "$1"); ETCD=$(realpath "$2"); LOAD=$(realpath "$3"); OUT=$4; PASSES=${5:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../../scripts/lib-cluster.sh"
. "$HERE/etcd-cluster.sh"
mkdir -p "$OUT"
DIR=$(mktemp -d); trap 'stop_cluster; stop_etcd; rm -rf "$DIR"' EXIT

run_rdb() { # pass
	start_cluster "$RDB" "$DIR/rdb$1" 2>/dev/null
	local r="$RDB bench --endpoints $EP --duration 5s --warmup 1s --conns 1 --format json"
	$r --workload insert --concurrency 1 >"$OUT/$1-rdb-write-leader-c1.json"
	$r --workload insert --concurrency 64 >"$OUT/$1-rdb-write-leader-c64.json"
	$r --workload insert --concurrency 1 --target follower >"$OUT/$1-rdb-write-follower-c1.json"
	$r --workload insert --concurrency 64 --target follower >"$OUT/$1-rdb-write-follower-c64.json"
	$r --workload batch --batch 100 --concurrency 8 >"$OUT/$1-rdb-batch100-leader-c8.json"
	$r --workload point-read --consistency linearizable --concurrency 8 >"$OUT/$1-rdb-read-linearizable-leader-c8.json"
	$r --workload point-read --consistency linearizable --concurrency 8 --target follower >"$OUT/$1-rdb-read-linearizable-follower-c8.json"
	$r --workload point-read --consistency none --concurrency 8 >"$OUT/$1-rdb-read-local-leader-c8.json"
	for i in 0 1 2; do echo "node$((i + 1)) rss_kb $(awk '/VmRSS/{print $2}' "/proc/${CLUSTER_PIDS[$i]}/status")"; done >"$OUT/$1-rdb-rss.txt"
	stop_cluster
	rm -rf "$DIR/rdb$1"
}

run_etcd() { # pass
	start_etcd "$ETCD" "$DIR/etcd$1"
	local l="$LOAD --duration 5s --warmup 1s --conns 1"
	$l --endpoint "$ETCD_LEADER" --workload put --concurrency 1 >"$OUT/$1-etcd-write-leader-c1.json"
	$l --endpoint "$ETCD_LEADER" --workload put --concurrency 64 >"$OUT/$1-etcd-write-leader-c64.json"
	$l --endpoint "$ETCD_FOLLOWER" --workload put --concurrency 1 >"$OUT/$1-etcd-write-follower-c1.json"
	$l --endpoint "$ETCD_FOLLOWER" --workload put --concurrency 64 >"$OUT/$1-etcd-write-follower-c64.json"
	$l --endpoint "$ETCD_LEADER" --workload txn --batch 100 --concurrency 8 >"$OUT/$1-etcd-batch100-leader-c8.json"
	$l --endpoint "$ETCD_LEADER" --workload get-linearizable --concurrency 8 >"$OUT/$1-etcd-read-linearizable-leader-c8.json"
	$l --endpoint "$ETCD_FOLLOWER" --workload get-linearizable --concurrency 8 >"$OUT/$1-etcd-read-linearizable-follower-c8.json"
	$l --endpoint "$ETCD_LEADER" --workload get-serializable --concurrency 8 >"$OUT/$1-etcd-read-local-leader-c8.json"
	stop_etcd
	rm -rf "$DIR/etcd$1"
}

# disk_probe PASS appends the disk's 4 KiB write + fdatasync time now
# (1,000 of them with dd) to OUT/disk.txt.
disk_probe() {
	local t
	t=$(dd if=/dev/zero of="$DIR/disk-probe" bs=4k count=1000 oflag=dsync 2>&1 | sed -n 's/.* copied, \([0-9.]*\) s.*/\1/p')
	rm -f "$DIR/disk-probe"
	echo "pass $1: 4 KiB write + fdatasync $(awk -v t="$t" 'BEGIN { printf "%.3f", t }') ms" >>"$OUT/disk.txt"
}

for p in $(seq 1 "$PASSES"); do
	date -u +"pass $p %H:%M:%S UTC" >&2
	disk_probe "$p"
	if [ $((p % 2)) -eq 1 ]; then run_rdb "$p"; run_etcd "$p"; else run_etcd "$p"; run_rdb "$p"; fi
done
date -u +"end %H:%M:%S UTC" >&2
