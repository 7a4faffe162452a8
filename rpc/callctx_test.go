package rpc

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

func TestCallContext_DeadlineWithoutDone(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	c := newCallContext(parent, time.Now().Add(50*time.Millisecond))
	defer c.release()
	if c.Err() != nil || c.Value(ctxKey{}) != "v" {
		t.Fatalf("fresh: err %v, value %v", c.Err(), c.Value(ctxKey{}))
	}
	if c.inner.Load() != nil {
		t.Fatal("Err and Value before the deadline made a timer")
	}
	if d, ok := c.Deadline(); !ok || d != c.deadline {
		t.Fatalf("deadline %v %v", d, ok)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("Err still nil 10 s after a 50 ms deadline")
		}
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(c), context.DeadlineExceeded) {
		t.Fatalf("after the deadline: err %v, cause %v", c.Err(), context.Cause(c))
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed once Err reported the deadline")
	}
	if c.Value(ctxKey{}) != "v" {
		t.Fatal("value lost")
	}
}

func TestCallContext_CauseAfterDeadlineWithoutErr(t *testing.T) {
	c := newCallContext(context.Background(), time.Now().Add(-time.Millisecond))
	defer c.release()
	if err := context.Cause(c); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cause %v", err)
	}
	// Under a cancellable parent (a stream's context), Cause must not
	// stop at the parent's cause (none).
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	defer cancel()
	c2 := newCallContext(parent, time.Now().Add(-time.Millisecond))
	defer c2.release()
	if c2.Value(ctxKey{}) != "v" {
		t.Fatal("value lost")
	}
	if err := context.Cause(c2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cause under a cancellable parent: %v", err)
	}
}

func TestCallContext_DoneAndAfterFuncFireAtDeadline(t *testing.T) {
	c := newCallContext(context.Background(), time.Now().Add(20*time.Millisecond))
	defer c.release()
	fired := make(chan struct{})
	context.AfterFunc(c, func() { close(fired) })
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("AfterFunc did not run 10 s after a 20 ms deadline")
	}
	<-c.Done()
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("err %v", c.Err())
	}
}

func TestCallContext_ParentCancel(t *testing.T) {
	parent, cancel := context.WithCancelCause(context.Background())
	c := newCallContext(parent, time.Now().Add(time.Hour))
	defer c.release()
	done := c.Done()
	why := errors.New("stream gone")
	cancel(why)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed 10 s after the parent was cancelled")
	}
	if !errors.Is(c.Err(), context.Canceled) || !errors.Is(context.Cause(c), why) {
		t.Fatalf("err %v, cause %v", c.Err(), context.Cause(c))
	}
	// Without Done, Err sees the parent's end too.
	c2 := newCallContext(parent, time.Now().Add(time.Hour))
	if !errors.Is(c2.Err(), context.Canceled) || !errors.Is(context.Cause(c2), why) {
		t.Fatalf("unmaterialized: err %v, cause %v", c2.Err(), context.Cause(c2))
	}
}
