package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Config.OnLeadership is told each time a node gains or loses the
// leadership, so that the process can adapt to its role (cmd/rdb sets
// GOMAXPROCS by it): after an election and after a transfer, exactly the
// leader was last told true, and every other node that was told anything
// was last told false.
func TestOnLeadershipFollowsTheLeader(t *testing.T) {
	var mu sync.Mutex
	last := map[uint64]bool{}
	calls := map[uint64]int{}
	c := newTestCluster(t, 3, func(c *testCluster) {
		c.onLeadership = func(id uint64, leader bool) {
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := last[id]; ok && prev == leader {
				t.Errorf("node %d told leader=%v twice in a row", id, leader)
			}
			last[id] = leader
			calls[id]++
		}
	})
	check := func(lead uint64) error {
		mu.Lock()
		defer mu.Unlock()
		for id := uint64(1); id <= 3; id++ {
			told, ok := last[id]
			if id == lead && (!ok || !told) {
				return fmt.Errorf("leader %d was not told it leads (told %v, %v)", id, told, ok)
			}
			if id != lead && told {
				return fmt.Errorf("node %d was last told it leads, but %d does", id, lead)
			}
		}
		return nil
	}
	waitCheck := func(lead uint64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			err := check(lead)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	leader := c.waitLeader()
	waitCheck(leader.cfg.ID)
	target := leader.cfg.ID%3 + 1
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := leader.TransferLeader(ctx, target); err != nil {
		t.Fatalf("transfer to %d: %v", target, err)
	}
	waitCheck(target)
	mu.Lock()
	defer mu.Unlock()
	if calls[leader.cfg.ID] < 2 {
		t.Errorf("old leader %d told %d times, want at least 2 (leads, then not)", leader.cfg.ID, calls[leader.cfg.ID])
	}
}
