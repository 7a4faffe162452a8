package cluster

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestProposalsOfOneRoundShareMsgApps: proposals that queue up while the
// leader's loop is busy are proposed together, and each follower gets
// them in one or a few MsgApps, not one MsgApp per proposal.
func TestProposalsOfOneRoundShareMsgApps(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.waitLeader()
	exec(t, leader, "CREATE TABLE t (id INTEGER PRIMARY KEY)")

	// Hold the loop: it takes this status request and blocks sending the
	// answer until the test reads it.
	reply := make(chan Status)
	leader.statusc <- reply

	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := leader.Execute(ctx, st(t, "INSERT INTO t VALUES (?)", i), false); err != nil {
				errs <- err
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(leader.propc) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d proposals queued", len(leader.propc), n)
		}
		time.Sleep(time.Millisecond)
	}
	c.nw.mu.Lock()
	appendsBefore, appendedBefore := c.nw.appends[leader.ID()], c.nw.appended[leader.ID()]
	c.nw.mu.Unlock()
	<-reply // release the loop

	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("insert: %v", err)
	}
	c.nw.mu.Lock()
	appends, appended := c.nw.appends[leader.ID()]-appendsBefore, c.nw.appended[leader.ID()]-appendedBefore
	c.nw.mu.Unlock()
	// Each follower needs the n entries at least once. One proposal per
	// MsgApp would take 2n messages; together they take one per follower
	// (a few more if a follower answers late and raft probes again).
	if appended < 2*n {
		t.Fatalf("the leader sent %d entries in MsgApps, want at least %d", appended, 2*n)
	}
	if appends > 10 {
		t.Fatalf("the leader sent %d MsgApps for %d proposals of one round (%d entries): not batched", appends, n, appended)
	}
	t.Logf("%d proposals went out in %d MsgApps (%d entries)", n, appends, appended)
	for id, node := range c.nodes {
		if got := linearCount(t, node); got != n {
			t.Errorf("node %d: count %d, want %d", id, got, n)
		}
	}
}
