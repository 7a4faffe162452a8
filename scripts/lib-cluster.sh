# Shell functions to run a throwaway three-node rdb cluster on free
# loopback ports, for scripts/bench-sweep.sh and the measurement scripts
# under docs/bench/. Source it, then:
#
#   start_cluster RDB DIR [serve flags...]
#       starts three `RDB serve` nodes with their data and logs
#       (DIR/node<i>.log) in DIR and waits up to 30 s for a leader; sets
#       EP (the three client addresses, comma-separated), CLIENT_PORTS,
#       DEBUG_PORTS (each node has --debug-listen) and CLUSTER_PIDS.
#   stop_cluster
#       stops the nodes started by start_cluster and waits for them.
#   cluster_cpu_ticks
#       the user + system CPU time of the nodes so far, in clock ticks.

# free_ports N prints N loopback TCP ports that are free now (the kernel
# picks them; they stay free unless another process takes one meanwhile).
free_ports() {
	if command -v python3 >/dev/null; then
		python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
		return
	fi
	# No python3: random ports that nothing answers on.
	local ports=() p
	while [ "${#ports[@]}" -lt "$1" ]; do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [[ " ${ports[*]} " != *" $p "* ]]; then
			ports+=("$p")
		fi
	done
	echo "${ports[*]}"
}

CLUSTER_PIDS=()

start_cluster() {
	local rdb=$1 dir=$2 ports peer cluster i status
	shift 2
	read -r -a ports <<<"$(free_ports 9)"
	CLIENT_PORTS=("${ports[@]:0:3}")
	peer=("${ports[@]:3:3}")
	DEBUG_PORTS=("${ports[@]:6:3}")
	cluster="1=127.0.0.1:${peer[0]},2=127.0.0.1:${peer[1]},3=127.0.0.1:${peer[2]}"
	EP="127.0.0.1:${CLIENT_PORTS[0]},127.0.0.1:${CLIENT_PORTS[1]},127.0.0.1:${CLIENT_PORTS[2]}"
	mkdir -p "$dir"
	for i in 1 2 3; do
		"$rdb" serve --id "$i" --data-dir "$dir/node$i" \
			--listen "127.0.0.1:${CLIENT_PORTS[i - 1]}" --peer-listen "127.0.0.1:${peer[i - 1]}" \
			--debug-listen "127.0.0.1:${DEBUG_PORTS[i - 1]}" \
			--initial-cluster "$cluster" "$@" >"$dir/node$i.log" 2>&1 &
		CLUSTER_PIDS+=($!)
	done
	echo "waiting for a leader ($EP)..." >&2
	for _ in $(seq 1 150); do
		# The whole output first: grep -q quitting early would fail the
		# writer with SIGPIPE, which pipefail would make a failed check.
		status=$("$rdb" status --endpoint "127.0.0.1:${CLIENT_PORTS[0]}" --timeout 1s 2>/dev/null) || true
		if grep -q '"leader": [1-9]' <<<"$status"; then
			return 0
		fi
		sleep 0.2
	done
	echo "no leader after 30 s" >&2
	return 1
}

stop_cluster() {
	local pid
	for pid in "${CLUSTER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${CLUSTER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	CLUSTER_PIDS=()
}

cluster_cpu_ticks() {
	local pid total=0
	for pid in "${CLUSTER_PIDS[@]}"; do
		total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
	done
	echo "$total"
}
