#!/bin/bash
# usage: cpu.sh BINARY -- prints server CPU µs per op for insert c64 (conns 1) and none c8
set -u
BIN=$1
D=/tmp/ab/data-cpu; rm -rf $D; mkdir -p $D
P=$((48000 + RANDOM % 1500))
IC="1=127.0.0.1:$((P+11)),2=127.0.0.1:$((P+12)),3=127.0.0.1:$((P+13))"
pids=()
for i in 1 2 3; do
  $BIN serve --id $i --data-dir $D/d$i --listen 127.0.0.1:$((P+i)) --peer-listen 127.0.0.1:$((P+10+i)) \
    --initial-cluster $IC > $D/n$i.log 2>&1 &
  pids+=($!)
done
EP=127.0.0.1:$((P+1)),127.0.0.1:$((P+2)),127.0.0.1:$((P+3))
for k in $(seq 1 50); do $BIN cluster members --endpoint 127.0.0.1:$((P+1)) >/dev/null 2>&1 && break; sleep 0.2; done
cpu() { t=0; for p in ${pids[@]}; do s=$(awk '{print $14+$15}' /proc/$p/stat); t=$((t+s)); done; echo $t; }
cell() { name=$1; shift; a=$(cpu); $BIN bench --endpoints $EP --duration 5s --warmup 0s --format json "$@" > /tmp/ab/cpu-$name.json 2>/dev/null; b=$(cpu);
  python3 -c "
import json; j=json.load(open('/tmp/ab/cpu-$name.json')); ops=j['ops_per_sec']*5
print('%-10s %7.0f ops/s  servers %5.1f us CPU/op' % ('$name', j['ops_per_sec'], ($b-$a)*10000.0/ops))"; }
$BIN bench --endpoints $EP --duration 2s --warmup 0s --workload insert --concurrency 64 --conns 1 >/dev/null 2>&1
cell insert64 --workload insert --concurrency 64 --conns 1
cell none8 --workload point-read --consistency none --concurrency 8
kill ${pids[@]}; wait
