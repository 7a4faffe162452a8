package system_test

import (
	"testing"
	"time"
)

// failpointCase is where a failpoint is armed.
type failpointCase struct {
	name string
	// on: "leader" (writes reach it), "leader-sending" (the leader while
	// it sends a snapshot to a follower that fell behind the compacted
	// log), "lagging" (a follower that restarts behind the compacted log
	// and receives a snapshot).
	on string
}

var failpointCases = []failpointCase{
	{"raftBeforeSave", "leader"},
	{"raftAfterSave", "leader"},
	{"applyAfterCommit", "leader"},
	{"compactBeforePurge", "leader"},
	{"snapshotBeforeSave", "leader-sending"},
	{"snapshotAfterSave", "leader-sending"},
	{"snapshotBeforeInstall", "lagging"},
	{"snapshotAfterInstall", "lagging"},
}

// TestFailpoints crashes one node of a 3-node cluster (rdb built with
// -tags failpoints, no race detector) at each persistence boundary in
// turn while writes go on, restarts it without the failpoint, and checks
// that every acknowledged write is present and that the replicas
// converge to one applied index and hash. Compaction happens every 40
// entries so the compaction and snapshot points are reached quickly.
func TestFailpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("system test: skipped with -short")
	}
	useRDB(t, taggedRDB(t, "failpoints"))
	c := StartCluster(t, 3, "--snapshot-entries", "40", "--snapshot-trailing", "10")
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	var acked []int64
	next := int64(1)
	for _, fc := range failpointCases {
		ok := t.Run(fc.name, func(t *testing.T) {
			start := time.Now()
			w := startAckWriter(t, c, next)
			w.waitAcks(t, 5, 30*time.Second)
			leader := c.WaitLeader(t)
			var target, lagging *Node
			switch fc.on {
			case "leader":
				target = leader
			case "leader-sending", "lagging":
				lagging = c.Followers(leader)[0]
				lagging.Kill(t)
				// Far past the compacted log: 40-entry compactions, 10
				// trailing entries.
				w.waitAcks(t, 120, 60*time.Second)
				target = lagging
				if fc.on == "leader-sending" {
					target = c.WaitLeader(t)
				}
			}
			target.ArmFailpoints(t, fc.name+"=panic")
			if lagging != nil {
				lagging.Start(t)
			}
			waitCrash(t, target, fc.name, 60*time.Second)
			target.ArmFailpoints(t, "")
			// The cluster goes on without it (a new leader if needed).
			w.waitAcks(t, 5, 30*time.Second)
			target.Start(t)
			w.waitAcks(t, 5, 30*time.Second)
			var got []int64
			got, next = w.finish()
			acked = append(acked, got...)
			// A new client: the old one may hold a connection to the
			// crashed process.
			fresh := c.Client(t)
			final := mustExec(t, fresh, "INSERT INTO t(id) VALUES (?)", -next)
			c.waitConverged(t, final.GetRaftIndex(), 60*time.Second)
			checkAcked(t, fresh, acked)
			t.Logf("%s on %s: %d writes acknowledged so far, %s", fc.name, fc.on, len(acked), time.Since(start).Round(time.Millisecond))
		})
		if !ok {
			return
		}
	}
}

// TestFailpoints_SingleNode crashes the only node of a one-node cluster
// at the save, apply and compaction points (where nothing else holds a
// copy, as in etcd's ClusterOfSize1 runs), restarts it and checks that
// every acknowledged write is there.
func TestFailpoints_SingleNode(t *testing.T) {
	if testing.Short() {
		t.Skip("system test: skipped with -short")
	}
	useRDB(t, taggedRDB(t, "failpoints"))
	c := StartCluster(t, 1, "--snapshot-entries", "40", "--snapshot-trailing", "10")
	n := c.Nodes[0]
	mustExec(t, c.Client(t), "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	var acked []int64
	next := int64(1)
	for _, fc := range failpointCases {
		if fc.on != "leader" {
			continue
		}
		ok := t.Run(fc.name, func(t *testing.T) {
			w := startAckWriter(t, c, next)
			w.waitAcks(t, 5, 30*time.Second)
			n.ArmFailpoints(t, fc.name+"=panic")
			waitCrash(t, n, fc.name, 60*time.Second)
			n.ArmFailpoints(t, "")
			n.Start(t)
			w.waitAcks(t, 5, 30*time.Second)
			var got []int64
			got, next = w.finish()
			acked = append(acked, got...)
			checkAcked(t, c.Client(t), acked)
		})
		if !ok {
			return
		}
	}
}
