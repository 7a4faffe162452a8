package cluster

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"rdb/db"
)

// TestCluster_DatabaseAheadOfLogRestarts: a node whose database is ahead
// of its raft log (a crash between swapping in a received snapshot and
// recording it in the WAL, failpoint snapshotAfterInstall; or a power
// loss that lost a commit-only HardState) must restart and keep going.
// It used to panic in compaction: the raft snapshot was asked for at the
// database's index, beyond the log ("entries' hi is out of bound").
func TestCluster_DatabaseAheadOfLogRestarts(t *testing.T) {
	c := newTestCluster(t, 3, func(c *testCluster) { c.snapshotEntries = 10 })
	leader := c.waitLeader()
	exec(t, leader, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	for i := 0; i < 5; i++ {
		exec(t, leader, "INSERT INTO t VALUES (?)", i)
	}
	f := c.follower(leader.ID())
	id, dir := f.ID(), f.dir
	c.stop(id)

	// Move the stopped node's database 100 entries past its log.
	database, err := db.Open(context.Background(), db.Config{Path: filepath.Join(dir, "db.sqlite")})
	if err != nil {
		t.Fatal(err)
	}
	applied, err := database.AppliedIndex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := database.ApplyBatch(context.Background(), []db.Entry{{Index: applied + 100}}); err != nil {
		t.Fatal(err)
	}
	database.Close()

	tn := c.start(id, dir)
	leader = c.waitLeader()
	for i := 5; i < 140; i++ {
		exec(t, leader, "INSERT INTO t VALUES (?)", i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for tn.AppliedIndex() < leader.AppliedIndex() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-tn.done:
		t.Fatalf("node %d stopped: %v", id, err)
	default:
	}
	if got, want := tn.AppliedIndex(), leader.AppliedIndex(); got < want {
		t.Fatalf("node %d applied %d, leader %d", id, got, want)
	}
}
