// Package cluster owns rdb's raft node: the Ready loop, the durable log
// (etcd's WAL under a raft.MemoryStorage), proposals and their waiters,
// ReadIndex-based linearizable reads, membership addresses, and the apply
// of committed commands to the db package.
//
// It does not own gRPC or any client-facing API: peer traffic leaves
// through the Transport interface, which the rpc package implements, and
// arrives through Node.Step.
//
// # Concurrency
//
// One goroutine, started by Node.Run, owns the raft.RawNode, the log
// store and the apply cursor. Every other goroutine talks to it through
// channels (proposals, inbound messages, read requests, status queries) or
// reads a few atomically published fields (leader, term, role, applied
// index). All exported methods of Node are safe for concurrent use.
// Config.OnLeadership, when set, is called on the loop goroutine as the
// node gains or loses the leadership.
//
// # The Ready loop
//
// Each Ready is handled in the order the raft README prescribes:
//
//  1. A leader sends its messages first: it may write to its own disk in
//     parallel with replicating to followers.
//  2. Entries and HardState are appended to the WAL with a single fsync
//     for the whole Ready (the WAL syncs only when raft.MustSync says so).
//  3. A follower sends its messages only after that fsync, because they
//     acknowledge what was just persisted.
//  4. Committed entries are applied to SQLite in one transaction per Ready
//     (db.ApplyBatch), which also records the applied index; conf changes
//     are then applied to raft, even when the database had already seen
//     them, and waiting proposers receive their results.
//  5. ReadStates release the linearizable reads waiting on them.
//  6. Advance.
//
// # Linearizable reads
//
// Reads that arrive together share one ReadIndex round (readTracker). A
// follower that is a quorum with its leader (two or three voters) sends
// the round to the leader itself, with its term, and the leader answers
// at once from its commit index; other rounds go through raft's
// ReadIndex and its heartbeat round. readindex_direct.go says why the
// shortcut is linearizable.
//
// # Proposals
//
// Only the leader proposes: raft's proposal forwarding is off, and a
// follower's Execute returns ErrNotLeader at once, so that the rpc layer
// forwards the request to the leader, where a refusal (no leader, a
// leadership transfer in progress) is known and reported as not applied.
// A proposal that was appended waits for its entry to be applied, across
// leader changes, until its deadline. At apply the leader recognises its
// own entries by request id (command.PeekRequestID) and, when the bytes
// match, uses the command it encoded instead of decoding it again; the
// time from proposal to that point is rdb_cluster_commit_seconds.
// Membership changes run one at a time (membership.go).
//
// The loop takes every proposal queued since its last round and steps
// them into raft as one MsgProp (proposeBatch, at most MaxSizePerMsg
// bytes of data each): raft then appends them together and sends each
// follower one MsgApp for them, where one proposal per MsgProp made a
// MsgApp (and an acknowledgement) per entry. A batch raft refuses is
// proposed again one by one, so each proposal gets its own outcome.
//
// # Restart
//
// On restart the WAL is replayed from its newest snapshot record into the
// MemoryStorage and raft starts from that snapshot (its ConfState), so
// every committed entry after it is delivered again: conf changes rebuild
// the membership, and the database skips the entries at or below its
// stored applied index. Compaction (snapshot.go) bounds the replay; it
// also runs at once when a learner was added after the last snapshot, or
// a snapshot about to be sent lacks its recipient (raft refuses a
// snapshot whose membership does not list the receiver). The
// database can be ahead of the log (a crash between installing a received
// snapshot and recording it in the WAL); compaction then stops at the
// log's commit index.
//
// # Failpoints and broken builds
//
// The persistence boundaries carry rdb/internal/failpoint marks (no-ops
// unless built with -tags failpoints). The build tags broken_localread and
// broken_earlyack switch on deliberately broken behaviour in ReadIndex and
// handleReady, for testing the tests; see docs/design.md.
package cluster
