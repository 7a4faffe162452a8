#!/bin/bash
# usage: table.sh BINARY OUTDIR -- the cells of the 2026-11-26 table, conns 0 and 1
set -u
BIN=$1; OUT=$2
mkdir -p $OUT
D=/tmp/ab/data-table; rm -rf $D; mkdir -p $D
P=$((42000 + RANDOM % 2000))
IC="1=127.0.0.1:$((P+11)),2=127.0.0.1:$((P+12)),3=127.0.0.1:$((P+13))"
pids=()
for i in 1 2 3; do
  $BIN serve --id $i --data-dir $D/d$i --listen 127.0.0.1:$((P+i)) --peer-listen 127.0.0.1:$((P+10+i)) \
    --debug-listen 127.0.0.1:$((P+20+i)) --initial-cluster $IC > $D/n$i.log 2>&1 &
  pids+=($!)
done
EP=127.0.0.1:$((P+1)),127.0.0.1:$((P+2)),127.0.0.1:$((P+3))
for k in $(seq 1 50); do $BIN cluster members --endpoint 127.0.0.1:$((P+1)) >/dev/null 2>&1 && break; sleep 0.2; done
cell() { name=$1; shift; for c in 0 1; do $BIN bench --endpoints $EP --duration 5s --warmup 1s --format json --conns $c "$@" > $OUT/$name-conns$c.json 2>$OUT/$name-conns$c.err; done; }
cell insert-leader-c1 --workload insert --concurrency 1
cell insert-leader-c64 --workload insert --concurrency 64
cell insert-follower-c1 --workload insert --concurrency 1 --target follower
cell insert-follower-c64 --workload insert --concurrency 64 --target follower
cell batch100-leader-c8 --workload batch --batch 100 --concurrency 8
for lvl in none weak linearizable strong; do cell read-$lvl-leader-c8 --workload point-read --consistency $lvl --concurrency 8; done
cell read-linearizable-follower-c8 --workload point-read --consistency linearizable --concurrency 8 --target follower
for i in 1 2 3; do echo "node$i rss_kb $(grep VmRSS /proc/${pids[$((i-1))]}/status | awk '{print $2}')"; done > $OUT/rss.txt
kill ${pids[@]}; wait
