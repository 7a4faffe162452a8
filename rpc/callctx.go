package rpc

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// callContext is the context of one Pipeline call: its stream's context
// with the call's deadline. Unlike context.WithDeadline it starts no timer
// and joins no parent until something needs its Done channel, which a read
// served at once never does (the database's watchdog and progress handler
// poll Err, see db's Interrupting reads): Err compares the clock.
// context.WithTimeout per call was 6% of a node's CPU under `none` point
// reads at concurrency 64 (issue 7). The first Done (or a deadline found
// passed) makes the equivalent context.WithDeadline, and everything is
// then delegated to it.
type callContext struct {
	parent   context.Context
	deadline time.Time
	once     sync.Once
	inner    atomic.Pointer[deadlineContext]
}

type deadlineContext struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func newCallContext(parent context.Context, deadline time.Time) *callContext {
	return &callContext{parent: parent, deadline: deadline}
}

// materialize makes the inner context.WithDeadline, once.
func (c *callContext) materialize() *deadlineContext {
	c.once.Do(func() {
		ctx, cancel := context.WithDeadline(c.parent, c.deadline)
		c.inner.Store(&deadlineContext{ctx: ctx, cancel: cancel})
	})
	return c.inner.Load()
}

// Deadline implements context.Context.
func (c *callContext) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

// Done implements context.Context.
func (c *callContext) Done() <-chan struct{} { return c.materialize().ctx.Done() }

// Err implements context.Context.
func (c *callContext) Err() error {
	if in := c.inner.Load(); in != nil {
		return in.ctx.Err()
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		// From now on Done, Err and context.Cause agree.
		return c.materialize().ctx.Err()
	}
	return nil
}

// Value implements context.Context. It needs no clock: context.Cause
// calls Err first, which makes the inner context once the deadline has
// passed, so Cause finds the inner context's cause.
func (c *callContext) Value(key any) any {
	if in := c.inner.Load(); in != nil {
		return in.ctx.Value(key)
	}
	return c.parent.Value(key)
}

// release frees the timer of the inner context, if one was made.
func (c *callContext) release() {
	if in := c.inner.Load(); in != nil {
		in.cancel()
	}
}
