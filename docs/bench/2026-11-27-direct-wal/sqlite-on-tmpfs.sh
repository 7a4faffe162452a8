#!/usr/bin/env bash
# usage: sqlite-on-tmpfs.sh RDB
# Starts a fresh three-node cluster whose data directories are on the
# disk (/tmp) but whose SQLite databases (db.sqlite, with its -wal and
# -shm files) live on tmpfs (/dev/shm), through a symlink made before the
# nodes start; runs inserts at c=1 for 5 s (one shared connection).
set -euo pipefail
BIN=$(realpath "$1")
. "$(dirname "$0")/../../../scripts/lib-cluster.sh"
DIR=$(mktemp -d); SHM=$(mktemp -d -p /dev/shm); trap 'stop_cluster; rm -rf "$DIR" "$SHM"' EXIT
for i in 1 2 3; do mkdir -p $DIR/c/node$i; ln -s $SHM/db$i.sqlite $DIR/c/node$i/db.sqlite; done
start_cluster "$BIN" "$DIR/c" 2>/dev/null
"$BIN" bench --endpoints "$EP" --duration 5s --conns 1 --workload insert --concurrency 1 2>/dev/null | grep -E "^(requests|latency)"
