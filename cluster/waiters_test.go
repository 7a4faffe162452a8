package cluster

import (
	"errors"
	"testing"

	"rdb/command"
)

func TestWaitersProposed(t *testing.T) {
	w := newWaiters()
	cmd := &command.Command{RequestId: 7}
	data, err := command.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	ch := w.register(7, cmd, data)
	if got, _ := w.proposed(data); got != cmd {
		t.Fatalf("proposed(same memory) = %v, want the registered command", got)
	}
	if got, _ := w.proposed(append([]byte(nil), data...)); got != cmd {
		t.Fatalf("proposed(a copy) = %v, want the registered command", got)
	}
	other, _ := command.Marshal(&command.Command{RequestId: 7, ProposerId: 9})
	if got, _ := w.proposed(other); got != nil {
		t.Fatalf("proposed(another proposer's entry with the same id) = %v, want nil", got)
	}
	if got, _ := w.proposed(data[:len(data)-1]); got != nil {
		t.Fatalf("proposed(a prefix) = %v, want nil", got)
	}
	w.deliver(7, applyResult{index: 3})
	if r := <-ch; r.index != 3 {
		t.Fatalf("delivered %+v", r)
	}
	if got, _ := w.proposed(data); got != nil || w.has(7) {
		t.Fatalf("after delivery: proposed %v, has %v", got, w.has(7))
	}

	w.register(8, cmd, data)
	w.remove(8)
	if got, _ := w.proposed(data); got != nil {
		t.Fatal("removed waiter still found by data")
	}
	ch = w.register(9, cmd, data)
	w.register(10, nil, nil) // a conf change: no command
	errBoom := errors.New("boom")
	w.failAll(errBoom)
	if r := <-ch; !errors.Is(r.err, errBoom) || w.has(9) {
		t.Fatalf("failAll: %+v, still has 9: %v", r, w.has(9))
	}
}
