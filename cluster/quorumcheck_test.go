package cluster

import (
	"errors"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"
)

// TestCheckQuorum_RemembersLastWindow checks that voters active in the
// last complete check-quorum window count as live although raft has just
// cleared their RecentActive flags (chaos finding 7: a removal was
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
