package cluster

import (
	"sync"

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
type waiters struct {
	mu sync.Mutex // guards m
	m  map[uint64]chan applyResult
}

func newWaiters() *waiters { return &waiters{m: make(map[uint64]chan applyResult)} }

func (w *waiters) register(id uint64) chan applyResult {
	ch := make(chan applyResult, 1)
	w.mu.Lock()
	w.m[id] = ch
	w.mu.Unlock()
	return ch
}

func (w *waiters) has(id uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.m[id]
	return ok
}

func (w *waiters) remove(id uint64) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}

// deliver hands r to the waiter of id, if any, and forgets it.
func (w *waiters) deliver(id uint64, r applyResult) {
	w.mu.Lock()
	ch, ok := w.m[id]
	delete(w.m, id)
	w.mu.Unlock()
	if ok {
		ch <- r
	}
}

// failAll hands err to every waiter.
func (w *waiters) failAll(err error) {
	w.mu.Lock()
	m := w.m
	w.m = make(map[uint64]chan applyResult)
	w.mu.Unlock()
	for _, ch := range m {
		ch <- applyResult{err: err}
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
