#!/bin/bash
# usage: run.sh LABEL BINARY OUTDIR   -- starts a 3-node cluster, runs the cells, stops it
set -u
L=$1; BIN=$2; OUT=$3
mkdir -p $OUT
D=/tmp/ab/data-$L; rm -rf $D; mkdir -p $D
P=$((40000 + RANDOM % 2000))
IC="1=127.0.0.1:$((P+11)),2=127.0.0.1:$((P+12)),3=127.0.0.1:$((P+13))"
pids=()
for i in 1 2 3; do
  $BIN serve --id $i --data-dir $D/d$i --listen 127.0.0.1:$((P+i)) --peer-listen 127.0.0.1:$((P+10+i)) \
    --initial-cluster $IC > $D/n$i.log 2>&1 &
  pids+=($!)
done
EP=127.0.0.1:$((P+1)),127.0.0.1:$((P+2)),127.0.0.1:$((P+3))
for k in $(seq 1 50); do $BIN cluster members --endpoint 127.0.0.1:$((P+1)) >/dev/null 2>&1 && break; sleep 0.2; done
cell() { name=$1; shift; $BIN bench --endpoints $EP --duration 5s --warmup 1s --format json "$@" > $OUT/$name.json 2>$OUT/$name.err; }
cell insert-c1 --workload insert --concurrency 1
cell insert-c64 --workload insert --concurrency 64 --conns 1
cell batch100-c8 --workload batch --batch 100 --concurrency 8
cell lin-c8 --workload point-read --consistency linearizable --concurrency 8 --conns 1
cell none-c8 --workload point-read --consistency none --concurrency 8
kill ${pids[@]}; wait
