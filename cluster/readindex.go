package cluster

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
)

// readRequest is one caller waiting for a linearizable read index.
type readRequest struct {
	done chan readResult // buffered, size 1
}

type readResult struct {
	index uint64
	err   error
}

// readBatch is one ReadIndex round shared by every request that arrived
// while no round was being started.
type readBatch struct {
	id       uint64
	issuedAt time.Time
	reqs     []*readRequest
}

// readTracker batches ReadIndex requests. Only the loop goroutine uses it.
//
// It follows etcd's lessons: every round (and every retry of a round)
// carries a fresh request context, so a late ReadState of an abandoned
// round matches nothing; a leader change re-issues pending rounds; and
// nothing is served before raft answers, which a new leader does only
// after it committed an entry of its term.
type readTracker struct {
	nextID   uint64
	pending  []*readRequest
	inflight map[uint64]*readBatch
	// rounds counts the rounds started (retries included); read by metrics.
	rounds atomic.Uint64
}

func newReadTracker(seed uint64) *readTracker {
	return &readTracker{nextID: seed, inflight: make(map[uint64]*readBatch)}
}

func (t *readTracker) add(r *readRequest) { t.pending = append(t.pending, r) }

// startBatch moves the pending requests into a new round and returns its
// request context, or nil when nothing is pending.
func (t *readTracker) startBatch(now time.Time) []byte {
	if len(t.pending) == 0 {
		return nil
	}
	t.nextID++
	t.rounds.Add(1)
	b := &readBatch{id: t.nextID, issuedAt: now, reqs: t.pending}
	t.pending = nil
	t.inflight[b.id] = b
	return encodeReadID(b.id)
}

// issue starts a round for the pending reads and returns its context
// for RawNode.ReadIndex, or nil when nothing is pending. With no leader
// known (lead 0) every read fails at once instead.
func (t *readTracker) issue(now time.Time, lead uint64) []byte {
	if len(t.pending) == 0 {
		return nil
	}
	if lead == 0 {
		t.failAll(ErrNoLeader)
		return nil
	}
	return t.startBatch(now)
}

// leaderChanged handles a change of leader, which wins over any ReadState
// still to come: rounds in flight are re-issued with fresh contexts (so a
// deposed leader's late answer matches nothing), and with no leader every
// read fails.
func (t *readTracker) leaderChanged(now time.Time, lead uint64) {
	t.requeue(now, 0)
	if lead == 0 {
		t.failAll(ErrNoLeader)
	}
}

// resolveAll releases the rounds a Ready's ReadStates answer; states of
// abandoned rounds match nothing.
func (t *readTracker) resolveAll(rss []raft.ReadState) {
	for _, rs := range rss {
		t.resolve(rs.RequestCtx, rs.Index)
	}
}

// resolve releases the round whose context is rctx.
func (t *readTracker) resolve(rctx []byte, index uint64) {
	if len(rctx) != 8 {
		return
	}
	id := binary.BigEndian.Uint64(rctx)
	b, ok := t.inflight[id]
	if !ok {
		return
	}
	delete(t.inflight, id)
	for _, r := range b.reqs {
		r.done <- readResult{index: index}
	}
}

// requeue moves rounds older than age (all when age is 0) back to pending,
// to be issued again with fresh contexts.
func (t *readTracker) requeue(now time.Time, age time.Duration) {
	for id, b := range t.inflight {
		if age == 0 || now.Sub(b.issuedAt) >= age {
			delete(t.inflight, id)
			t.pending = append(t.pending, b.reqs...)
		}
	}
}

// failAll fails every pending and in-flight request.
func (t *readTracker) failAll(err error) {
	for id, b := range t.inflight {
		delete(t.inflight, id)
		for _, r := range b.reqs {
			r.done <- readResult{err: err}
		}
	}
	for _, r := range t.pending {
		r.done <- readResult{err: err}
	}
	t.pending = nil
}

func encodeReadID(id uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, id)
	return b
}
