package cluster

import "errors"

var (
	// ErrNoLeader means no leader is known, so the request was not
	// proposed (it did not take effect).
	ErrNoLeader = errors.New("cluster: no leader")
	// ErrProposalDropped means raft dropped the proposal before it was
	// appended anywhere (it did not take effect).
	ErrProposalDropped = errors.New("cluster: proposal dropped")
	// ErrLeaderLost means the node lost its leader while a write was in
	// flight: it may or may not be committed.
	ErrLeaderLost = errors.New("cluster: leader lost, outcome unknown")
	// ErrTimeout means a write waited past its deadline: its outcome is
	// unknown.
	ErrTimeout = errors.New("cluster: timed out, outcome unknown")
	// ErrStopped means the node is shutting down or has stopped.
	ErrStopped = errors.New("cluster: node stopped")
	// ErrTooLarge means an encoded command is over the proposal size limit.
	ErrTooLarge = errors.New("cluster: proposal too large")
	// ErrNotReadOnly means a query contained a statement that writes.
	ErrNotReadOnly = errors.New("cluster: statement is not read-only")
	// ErrStale means the node has not heard from a leader within the
	// requested freshness bound.
	ErrStale = errors.New("cluster: node is stale")
	// ErrLogDamaged means the raft WAL lost records that were durable: a
	// damaged record that looked like a torn write was found before
	// entries the database had already applied. The node refuses to
	// start; wipe its data directory and re-add it.
	ErrLogDamaged = errors.New("cluster: raft log damaged")
	// ErrLogLost means the leader keeps claiming a commit index beyond
	// this node's log: the node lost log records it had acknowledged (a
	// damaged or replaced data directory) and can never catch up, because
	// raft does not re-send what a follower acknowledged. The node stops;
	// replace it (README, "Replacing a dead node").
	ErrLogLost = errors.New("cluster: this node lost log entries it had acknowledged")
	// ErrLogMissing means the data directory holds no raft log while its
	// database is not a new node's (see CheckLogPresent). If it has
	// applied entries (the log deleted, its disk lost or not mounted), a
	// new log would restart the indexes at 1 and the database would skip
	// every entry up to its applied index as already applied: writes
	// acknowledged and lost. If it holds tables of its own (a SQLite file
	// copied in), they would be data the other replicas lack. The node
	// refuses to start; wipe the data directory and add the node again
	// (README, "Replacing a dead node"), or load a database file with
	// `rdb restore`.
	ErrLogMissing = errors.New("cluster: raft log missing")
	// ErrWrongNode means the data directory belongs to another node id.
	ErrWrongNode = errors.New("cluster: data directory belongs to another node")
	// ErrWrongCluster means a peer, a joining node or a data directory
	// belongs to another cluster (their cluster ids differ).
	ErrWrongCluster = errors.New("cluster: wrong cluster")
)
