#!/bin/sh
# bin/rdb with --follower-procs=0 on serve (A/B of the follower GOMAXPROCS default)
if [ "$1" = serve ]; then exec /work/main/bin/rdb "$@" --follower-procs=0; fi
exec /work/main/bin/rdb "$@"
