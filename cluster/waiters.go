package cluster

import (
	"bytes"
	"sync"
	"time"

	"rdb/command"
)

// applyResult is what a proposer receives once its entry is applied (or
// its proposal fails).
type applyResult struct {
	results []*command.Result
	index   uint64
	err     error
}

// waiters maps request ids of this node's in-flight proposals to the
// channels their callers wait on. Callers register before proposing; the
// loop delivers; a caller that gives up removes its entry.
//
// A waiter also keeps the command it proposed and its encoding: the
// leader finds its own committed entries by request id and, when the bytes
// are the same, takes the command instead of decoding what it encoded (a
// tenth of the leader's CPU for 100-row batches). raft copies entry data,
// so the bytes are compared, not their address. A miss (a restart, another
// proposer) just decodes.
type waiters struct {
	mu sync.Mutex // guards m
	m  map[uint64]*waiter
}

type waiter struct {
	at   time.Time // registered, just before proposing
	id   uint64
	ch   chan applyResult
	data []byte
	cmd  *command.Command
}

func newWaiters() *waiters {
	return &waiters{m: make(map[uint64]*waiter)}
}

// register records a proposal of cmd, encoded as data, under id. cmd and
// data must not change afterwards.
func (w *waiters) register(id uint64, cmd *command.Command, data []byte) chan applyResult {
	wt := &waiter{at: time.Now(), id: id, ch: make(chan applyResult, 1), data: data, cmd: cmd}
	w.mu.Lock()
	w.m[id] = wt
	w.mu.Unlock()
	return wt.ch
}

func (w *waiters) has(id uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.m[id]
	return ok
}

// proposed returns the command a waiting proposer encoded as data and
// when it registered, or nil.
func (w *waiters) proposed(data []byte) (*command.Command, time.Time) {
	id, ok := command.PeekRequestID(data)
	if !ok || id == 0 {
		return nil, time.Time{}
	}
	w.mu.Lock()
	wt := w.m[id]
	w.mu.Unlock()
	if wt == nil || wt.cmd == nil || !bytes.Equal(wt.data, data) {
		return nil, time.Time{}
	}
	return wt.cmd, wt.at
}

func (w *waiters) remove(id uint64) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}

// deliver hands r to the waiter of id, if any, and forgets it.
func (w *waiters) deliver(id uint64, r applyResult) {
	w.mu.Lock()
	wt, ok := w.m[id]
	delete(w.m, id)
	w.mu.Unlock()
	if ok {
		wt.ch <- r
	}
}

// failAll hands err to every waiter.
func (w *waiters) failAll(err error) {
	w.mu.Lock()
	m := w.m
	w.m = make(map[uint64]*waiter)
	w.mu.Unlock()
	for _, wt := range m {
		wt.ch <- applyResult{err: err}
	}
}

// appliedNotifier publishes the applied index and wakes waiters when it
// advances.
type appliedNotifier struct {
	mu      sync.Mutex // guards the fields below
	applied uint64
	ch      chan struct{} // closed and replaced on every advance
}

func newAppliedNotifier(applied uint64) *appliedNotifier {
	return &appliedNotifier{applied: applied, ch: make(chan struct{})}
}

func (a *appliedNotifier) set(idx uint64) {
	a.mu.Lock()
	if idx > a.applied {
		a.applied = idx
		close(a.ch)
		a.ch = make(chan struct{})
	}
	a.mu.Unlock()
}

func (a *appliedNotifier) get() (uint64, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied, a.ch
}
