package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"rdb/command"
)

// WriteResult is the outcome of a write (or strong read) that went
// through the log.
type WriteResult struct {
	// Results has one entry per statement.
	Results []*command.Result
	// Index is the raft index of the entry.
	Index uint64
}

// Execute proposes statements as a write and waits until this node has
// applied them. It refuses statements that cannot be replicated
// faithfully (db.ErrRefused) before proposing. Errors: ErrNotLeader (on a
// follower, at once, before any check), ErrNoLeader and
// ErrProposalDropped (not applied), ErrLeaderLost and ErrTimeout (outcome
// unknown), ErrTooLarge, ErrStopped.
func (n *Node) Execute(ctx context.Context, stmts []*command.Statement, transaction bool) (*WriteResult, error) {
	// A follower refuses at once: the leader, where the rpc layer
	// forwards the write, checks it.
	if err := n.leaderCheck(); err != nil {
		return nil, err
	}
	if err := n.db.CheckWrite(ctx, stmts); err != nil {
		return nil, err
	}
	return n.proposeAndWait(ctx, &command.Command{
		Type:        command.CommandType_COMMAND_TYPE_EXECUTE,
		Statements:  stmts,
		Transaction: transaction,
	})
}

// StrongQuery runs read-only statements through the log: the strongest
// and slowest read level.
func (n *Node) StrongQuery(ctx context.Context, stmts []*command.Statement) (*WriteResult, error) {
	ro, err := n.db.ReadOnly(ctx, stmts)
	if err != nil {
		return nil, err
	}
	if !ro {
		return nil, ErrNotReadOnly
	}
	return n.proposeAndWait(ctx, &command.Command{
		Type:       command.CommandType_COMMAND_TYPE_QUERY,
		Statements: stmts,
	})
}

// leaderCheck returns ErrNoLeader or ErrNotLeader unless this node leads.
func (n *Node) leaderCheck() error {
	switch n.leader.Load() {
	case 0:
		return ErrNoLeader
	case n.cfg.ID:
		return nil
	default:
		return ErrNotLeader
	}
}

func (n *Node) proposeAndWait(ctx context.Context, cmd *command.Command) (*WriteResult, error) {
	if err := n.leaderCheck(); err != nil {
		return nil, err
	}
	ctx, cancel := n.withWriteDeadline(ctx)
	defer cancel()
	cmd.ProposerId = n.cfg.ID
	cmd.RequestId = n.nextRequestID()
	// The proposer fixes "now" and the random seed for every replica.
	cmd.TimeUnixNanos = n.cfg.Now().UnixNano()
	cmd.RandomSeed = rand.Uint64()
	data, err := command.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	if len(data) > n.cfg.MaxProposalBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), n.cfg.MaxProposalBytes)
	}
	ch := n.waiters.register(cmd.RequestId, cmd, data)
	select {
	case n.propc <- proposal{data: data, requestID: cmd.RequestId}:
	case <-ctx.Done():
		n.waiters.remove(cmd.RequestId)
		return nil, fmt.Errorf("%w: %v", ErrProposalDropped, ctx.Err())
	case <-n.stopped:
		n.waiters.remove(cmd.RequestId)
		return nil, ErrStopped
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return &WriteResult{Results: r.results, Index: r.index}, nil
	case <-ctx.Done():
		n.waiters.remove(cmd.RequestId)
		if n.leader.Load() == 0 {
			return nil, ErrLeaderLost
		}
		return nil, fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())
	case <-n.stopped:
		n.waiters.remove(cmd.RequestId)
		select {
		case r := <-ch:
			if r.err == nil {
				return &WriteResult{Results: r.results, Index: r.index}, nil
			}
		default:
		}
		return nil, ErrStopped
	}
}

// ReadIndex returns an index such that a read of the local database at or
// after it is linearizable: the leader confirmed its commit index with a
// quorum after the call began. Concurrent calls share one round.
// It fails fast with ErrNoLeader when no leader is known.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if n.leader.Load() == 0 {
		return 0, ErrNoLeader
	}
	if brokenLocalRead {
		// Deliberately broken build: whatever this node has applied.
		applied, _ := n.applied.get()
		return applied, nil
	}
	start := time.Now()
	defer func() { n.metrics.readIndex.Observe(time.Since(start).Seconds()) }()
	r := &readRequest{done: make(chan readResult, 1)}
	select {
	case n.readc <- r:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.stopped:
		return 0, ErrStopped
	}
	select {
	case res := <-r.done:
		return res.index, res.err
	case <-ctx.Done():
		if n.leader.Load() == 0 {
			return 0, ErrNoLeader
		}
		return 0, ctx.Err()
	case <-n.stopped:
		return 0, ErrStopped
	}
}

// WaitApplied blocks until the database has applied index, or ctx ends.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	for {
		applied, ch := n.applied.get()
		if applied >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for applied index %d (at %d): %w", index, applied, ctx.Err())
		case <-n.stopped:
			return ErrStopped
		}
	}
}

// LocalQuery reads the local database as it is now, and returns the
// applied index it read at (a lower bound: the index can only have
// advanced while reading).
func (n *Node) LocalQuery(ctx context.Context, stmts []*command.Statement) ([]*command.Result, uint64, error) {
	applied, _ := n.applied.get()
	res, err := n.db.Query(ctx, stmts)
	if err != nil {
		return nil, 0, err
	}
	return res, applied, nil
}

// ReadOnly reports whether every statement is read-only.
func (n *Node) ReadOnly(ctx context.Context, stmts []*command.Statement) (bool, error) {
	return n.db.ReadOnly(ctx, stmts)
}

// CheckFresh returns ErrStale when this node has not heard from a leader
// within maxStaleness (a leader is always fresh).
func (n *Node) CheckFresh(maxStaleness time.Duration) error {
	if maxStaleness <= 0 || n.IsLeader() {
		return nil
	}
	seen := n.leaderSeenAt.Load()
	if seen == 0 {
		return fmt.Errorf("%w: never heard from a leader", ErrStale)
	}
	if age := time.Since(time.Unix(0, seen)); age > maxStaleness {
		return fmt.Errorf("%w: last heard from a leader %s ago", ErrStale, age.Round(time.Millisecond))
	}
	return nil
}

// Hash returns the content hash of the local database.
func (n *Node) Hash(ctx context.Context) (string, error) { return n.db.Hash(ctx) }

// HashAt returns the content hash of the local database and the applied
// index of the snapshot it hashed.
func (n *Node) HashAt(ctx context.Context) (string, uint64, error) { return n.db.HashAt(ctx) }

// IsNotApplied reports whether err means the request certainly did not
// take effect.
func IsNotApplied(err error) bool {
	return errors.Is(err, ErrNoLeader) || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrProposalDropped) ||
		errors.Is(err, ErrTooLarge) || errors.Is(err, ErrNotReadOnly)
}
