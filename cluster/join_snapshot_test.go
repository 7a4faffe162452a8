package cluster

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"rdb/command"
)

// TestCluster_JoinAfterCompactionGetsUsableSnapshot: a node added after
// the leader's last compaction needs a snapshot, and raft's snapshot then
// names a membership without it, which the new node's raft refuses ("not
// in the ConfState"); the leader must compact again rather than resend
// that snapshot forever. Found by the chaos scenario bitflip (seed 114),
// whose recovery replaces a node by a new member.
func TestCluster_JoinAfterCompactionGetsUsableSnapshot(t *testing.T) {
	c := newTestCluster(t, 3, func(c *testCluster) { c.snapshotEntries = 50 })
	leader := c.waitLeader()
	exec(t, leader, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	for i := 0; i < 120; i++ {
		exec(t, leader, "INSERT INTO t VALUES (?)", i)
	}
	st, err := leader.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.FirstIndex <= 2 {
		t.Fatalf("leader did not compact: first index %d", st.FirstIndex)
	}
	c.peers[4] = "peer-4"
	joiner := c.startNode(4, filepath.Join(t.TempDir(), "n4"), true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := leader.AddMember(ctx, &command.Member{Id: 4, PeerAddr: "peer-4", ClientAddr: "client-4"}); err != nil {
		t.Fatalf("add member: %v", err)
	}
	// No writes after the join: only the fix produces a snapshot that
	// includes node 4.
	for {
		js, err := joiner.Status(ctx)
		if err == nil && js.AppliedIndex >= st.CommitIndex {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("node 4 did not catch up by snapshot within 20 s: %+v, %v", js, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := linearCount(t, joiner); got != 120 {
		t.Fatalf("joined node: count %d, want 120", got)
	}
}
