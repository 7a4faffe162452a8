# The old leader check against a live etcd leader, 300 times (run from the repository root; needs bin/etcd-peer from make bench-etcd).
set -uo pipefail
. scripts/lib-cluster.sh
. docs/bench/2026-11-27-etcd/etcd-cluster.sh
d=$(mktemp -d)
start_etcd bin/etcd-peer $d || exit 1
echo "leader $ETCD_LEADER"
curl -s $ETCD_LEADER/metrics | wc -c
curl -s $ETCD_LEADER/metrics | grep -n '^etcd_server_is_leader'
ok=0; bad=0
for i in $(seq 1 300); do
  if curl -s "$ETCD_LEADER/metrics" 2>/dev/null | grep -q '^etcd_server_is_leader 1'; then ok=$((ok+1)); else bad=$((bad+1)); fi
done
echo "old check on the leader: $ok true, $bad false"
stop_etcd; rm -rf $d
