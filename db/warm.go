package db

import (
	"context"
	"sync"
)

// warmPool runs functions on a few long-lived goroutines. SQLite, as
// transpiled by modernc, needs deep Go stacks: a query run on a fresh
// goroutine (every gRPC request gets one) grows its stack from 8 KiB by
// repeated copying, which a profile of point reads showed as a fifth of
// the node's CPU. The pool's goroutines keep their grown stacks between
// queries (the runtime halves an idle stack at most once per GC cycle).
type warmPool struct {
	jobs chan func()
	wg   sync.WaitGroup
}

// newWarmPool starts n goroutines.
func newWarmPool(n int) *warmPool {
	p := &warmPool{jobs: make(chan func())}
	for range n {
		p.wg.Go(func() {
			for fn := range p.jobs {
				fn()
			}
		})
	}
	return p
}

// run runs fn on one of the pool's goroutines and returns when fn has
// returned. It gives up with ctx's error only while no goroutine has
// taken fn yet. The caller must not call run after close.
func (p *warmPool) run(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	job := func() {
		defer close(done)
		fn()
	}
	select {
	case p.jobs <- job:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	<-done
	return nil
}

// close stops the goroutines once they finish their current function.
func (p *warmPool) close() {
	close(p.jobs)
	p.wg.Wait()
}

type onCallerKey struct{}

// OnCaller returns ctx marked so that the reads made with it run on the
// calling goroutine instead of being handed to a warm goroutine. It is for
// callers that are long-lived, busy goroutines themselves (the rpc
// package's pipeline workers), whose stacks stay grown: for them the
// hand-off costs more than it saves.
func OnCaller(ctx context.Context) context.Context {
	return context.WithValue(ctx, onCallerKey{}, true)
}

func onCaller(ctx context.Context) bool { return ctx.Value(onCallerKey{}) != nil }
