package cluster

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/raft/v3/raftpb"
)

func TestPairIsQuorum(t *testing.T) {
	for _, tc := range []struct {
		name string
		cs   *raftpb.ConfState
		a, b uint64
		want bool
	}{
		{"three voters", &raftpb.ConfState{Voters: []uint64{1, 2, 3}}, 1, 2, true},
		{"two voters", &raftpb.ConfState{Voters: []uint64{1, 2}}, 2, 1, true},
		{"three voters and a learner", &raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}, 3, 1, true},
		{"a learner asks", &raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}, 1, 4, false},
		{"four voters", &raftpb.ConfState{Voters: []uint64{1, 2, 3, 4}}, 1, 2, false},
		{"five voters", &raftpb.ConfState{Voters: []uint64{1, 2, 3, 4, 5}}, 1, 2, false},
		{"joint configuration", &raftpb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{1, 2, 4}}, 1, 2, false},
		{"not a member", &raftpb.ConfState{Voters: []uint64{1, 2, 3}}, 1, 9, false},
		{"itself", &raftpb.ConfState{Voters: []uint64{1, 2, 3}}, 2, 2, false},
		{"no configuration", &raftpb.ConfState{}, 1, 2, false},
	} {
		if got := pairIsQuorum(tc.cs, tc.a, tc.b); got != tc.want {
			t.Errorf("%s: pairIsQuorum(%v, %d, %d) = %v, want %v", tc.name, tc.cs, tc.a, tc.b, got, tc.want)
		}
	}
}

// In a three-node cluster a follower's linearizable read costs one round
// trip to the leader and no heartbeat round, and still sees every write
// acknowledged before it; the leader's own reads keep their heartbeat
// round.
func TestCluster_FollowerReadIndexInOneRound(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.waitLeader()
	f := c.follower(leader.ID())
	exec(t, leader, "CREATE TABLE t (id INTEGER PRIMARY KEY)")

	before := c.nw.readHeartbeatsOf(leader.ID())
	const reads = 20
	for i := 1; i <= reads; i++ {
		exec(t, leader, "INSERT INTO t (id) VALUES (?)", i)
		if got := linearCount(t, f); got != int64(i) {
			t.Fatalf("read %d on follower %d: count %d, want %d", i, f.ID(), got, i)
		}
	}
	if hb := c.nw.readHeartbeatsOf(leader.ID()) - before; hb != 0 {
		t.Errorf("leader sent %d ReadIndex heartbeats for %d follower reads, want 0", hb, reads)
	}
	if sent := testutil.ToFloat64(f.metrics.readDirect.sent); sent < reads {
		t.Errorf("follower sent %v one-round requests, want at least %d", sent, reads)
	}
	if answered := testutil.ToFloat64(leader.metrics.readDirect.answered); answered < reads {
		t.Errorf("leader answered %v one-round requests, want at least %d", answered, reads)
	}

	// The leader's own reads still confirm leadership with heartbeats
	// (and this shows the heartbeat count above could have risen).
	linearCount(t, leader)
	if hb := c.nw.readHeartbeatsOf(leader.ID()) - before; hb == 0 {
		t.Errorf("leader sent no ReadIndex heartbeat for its own read")
	}
}

// With five voters a follower and its leader are no quorum: reads go
// through raft's heartbeat round, and are still answered.
func TestCluster_FollowerReadIndexOfFiveVotersUsesHeartbeats(t *testing.T) {
	c := newTestCluster(t, 5)
	leader := c.waitLeader()
	f := c.follower(leader.ID())
	exec(t, leader, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	exec(t, leader, "INSERT INTO t (id) VALUES (1)")
	before := c.nw.readHeartbeatsOf(leader.ID())
	if got := linearCount(t, f); got != 1 {
		t.Fatalf("read on follower %d: count %d, want 1", f.ID(), got)
	}
	if hb := c.nw.readHeartbeatsOf(leader.ID()) - before; hb == 0 {
		t.Errorf("leader sent no ReadIndex heartbeat for a follower's read among five voters")
	}
	if sent := testutil.ToFloat64(f.metrics.readDirect.sent); sent != 0 {
		t.Errorf("follower sent %v one-round requests among five voters, want 0", sent)
	}
}
