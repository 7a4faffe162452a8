# Shell functions to run a throwaway three-node etcd cluster on free
# loopback ports, for compare.sh. Source scripts/lib-cluster.sh first
# (free_ports). start_etcd ETCD DIR starts it and waits up to 30 s for a
# leader; sets ETCD_EPS (client URLs), ETCD_LEADER and ETCD_FOLLOWER. If a
# node exits or no leader comes, it prints the end of the nodes' logs and
# fails. stop_etcd stops the nodes.
ETCD_PIDS=()
start_etcd() {
	local bin=$1 dir=$2 ports i cl="" metrics
	mkdir -p "$dir"
	read -r -a ports <<<"$(free_ports 6)"
	for i in 1 2 3; do cl="$cl,n$i=http://127.0.0.1:${ports[i+2]}"; done
	cl=${cl#,}
	ETCD_EPS=()
	for i in 1 2 3; do
		ETCD_EPS+=("http://127.0.0.1:${ports[i-1]}")
		"$bin" --name n$i --data-dir "$dir/n$i" --listen-client-urls "http://127.0.0.1:${ports[i-1]}" \
			--advertise-client-urls "http://127.0.0.1:${ports[i-1]}" --listen-peer-urls "http://127.0.0.1:${ports[i+2]}" \
			--initial-advertise-peer-urls "http://127.0.0.1:${ports[i+2]}" --initial-cluster "$cl" \
			--initial-cluster-state new --log-level warn >"$dir/n$i.log" 2>&1 &
		ETCD_PIDS+=($!)
	done
	for t in $(seq 1 150); do
		for i in 0 1 2; do
			# Read the whole page before matching: with pipefail, grep -q
			# quitting at its match would fail curl with SIGPIPE.
			metrics=$(curl -s "${ETCD_EPS[i]}/metrics" 2>/dev/null) || true
			if grep -q '^etcd_server_is_leader 1' <<<"$metrics"; then
				ETCD_LEADER=${ETCD_EPS[i]}; ETCD_FOLLOWER=${ETCD_EPS[(i+1)%3]}; return 0
			fi
		done
		kill -0 "${ETCD_PIDS[@]}" 2>/dev/null || break # a node exited
		sleep 0.2
	done
	echo "no etcd leader (a node exited, or none led within 30 s); the nodes' logs end with:" >&2
	tail -n 5 "$dir"/n*.log >&2 || true
	return 1
}
stop_etcd() {
	if [ ${#ETCD_PIDS[@]} -gt 0 ]; then
		kill "${ETCD_PIDS[@]}" 2>/dev/null || true
		wait "${ETCD_PIDS[@]}" 2>/dev/null || true
	fi
	ETCD_PIDS=()
}
