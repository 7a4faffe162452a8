package cluster

import (
	"errors"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"
)

// TestCheckQuorum_RemembersLastWindow checks that voters active in the
// last complete check-quorum window count as live although raft has just
// cleared their RecentActive flags (chaos finding 14: a removal was
// refused with "0 of 4 voters live" on a healthy cluster).
func TestCheckQuorum_RemembersLastWindow(t *testing.T) {
	st := raft.Status{Progress: map[uint64]tracker.Progress{
		1: {RecentActive: true}, 2: {}, 3: {}, 4: {}, 5: {},
	}}
	st.ID = 1
	voters := map[uint64]bool{2: true, 3: true, 4: true, 5: true}
	if err := checkQuorum(st, voters, nil); !errors.Is(err, ErrWouldLoseQuorum) {
		t.Fatalf("no voter active and no window: %v, want ErrWouldLoseQuorum", err)
	}
	if err := checkQuorum(st, voters, map[uint64]bool{2: true, 3: true, 4: true}); err != nil {
		t.Fatalf("three of four voters active in the last window: %v", err)
	}
	if err := checkQuorum(st, voters, map[uint64]bool{2: true, 3: true}); !errors.Is(err, ErrWouldLoseQuorum) {
		t.Fatalf("two of four voters active: %v, want ErrWouldLoseQuorum", err)
	}
	voters[1] = true // the leader counts itself
	if err := checkQuorum(st, voters, map[uint64]bool{2: true, 3: true}); err != nil {
		t.Fatalf("leader and two of four others active: %v", err)
	}
}

// TestForgetReadded checks that installing a snapshot that lists a
// removed id as a member again clears it from the removed ids (chaos
// finding 16: a leader that had caught up by snapshot refused the
// re-added node as removed, and it stopped).
func TestForgetReadded(t *testing.T) {
	c := newTestCluster(t, 3)
	n := c.waitLeader()
	n.markRemovedID(2) // 2 is a member: re-added in a snapshot's view
	n.markRemovedID(9) // 9 is not
	// forgetReadded is loop-owned in production; the test only needs
	// the member table and configuration, which are stable here.
	n.forgetReadded()
	if n.isRemovedID(2) {
		t.Fatal("member 2 still counted as removed")
	}
	if !n.isRemovedID(9) {
		t.Fatal("non-member 9 no longer counted as removed")
	}
}
