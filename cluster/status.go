package cluster

import (
	"context"
	"sort"

	"go.etcd.io/raft/v3"
)

// MemberStatus describes one member as this node sees it.
type MemberStatus struct {
	ID         uint64
	PeerAddr   string
	ClientAddr string
	Voter      bool
	// MatchIndex is known on the leader only (0 elsewhere).
	MatchIndex uint64
	// Role is "leader", "follower" or "learner".
	Role string
	// Lag is how many entries the member is behind the leader's last
	// index (leader only).
	Lag uint64
	// Reachable: the leader heard from it within an election timeout
	// (leader only; the leader itself is always reachable).
	Reachable bool
	// StayLearner: the member asked not to be promoted.
	StayLearner bool
}

// Status describes this node.
type Status struct {
	ID uint64
	// ClusterID identifies the cluster (0: unknown, an old data
	// directory).
	ClusterID    uint64
	Role         string // leader, follower, candidate, pre-candidate, learner
	Term         uint64
	LeaderID     uint64
	LeaderAddr   string
	CommitIndex  uint64
	AppliedIndex uint64
	FirstIndex   uint64
	LastIndex    uint64
	// SnapshotIndex is the index of the last log compaction.
	SnapshotIndex uint64
	// LogBytes is the size of the raft log on disk.
	LogBytes uint64
	Members  []MemberStatus
}

// Status asks the loop for a consistent view of the node.
func (n *Node) Status(ctx context.Context) (Status, error) {
	reply := make(chan Status, 1)
	select {
	case n.statusc <- reply:
	case <-ctx.Done():
		return Status{}, ctx.Err()
	case <-n.stopped:
		return Status{}, ErrStopped
	}
	select {
	case s := <-reply:
		return s, nil
	case <-ctx.Done():
		return Status{}, ctx.Err()
	}
}

// status builds the Status; called on the loop goroutine only.
func (n *Node) status() Status {
	st := n.rn.Status()
	applied, _ := n.applied.get()
	s := Status{
		ClusterID:    n.ClusterID(),
		ID:           n.cfg.ID,
		Role:         roleName(st.RaftState),
		Term:         st.GetTerm(),
		LeaderID:     st.Lead,
		CommitIndex:  st.GetCommit(),
		AppliedIndex: applied,
	}
	s.FirstIndex, _ = n.store.storage.FirstIndex()
	s.LastIndex, _ = n.store.storage.LastIndex()
	s.SnapshotIndex = n.store.snapshot.GetIndex()
	s.LogBytes = n.store.diskBytes()
	_, s.LeaderAddr = n.Leader()
	learners := st.Config.Learners
	if _, isLearner := learners[n.cfg.ID]; isLearner && st.RaftState == raft.StateFollower {
		s.Role = "learner"
	}
	addrs := make(map[uint64][2]string)
	stay := make(map[uint64]bool)
	for _, m := range n.Members() {
		addrs[m.GetId()] = [2]string{m.GetPeerAddr(), m.GetClientAddr()}
		stay[m.GetId()] = m.GetStayLearner()
	}
	ids := make(map[uint64]bool)
	for id := range st.Config.Voters.IDs() {
		ids[id] = true
	}
	for id := range learners {
		ids[id] = false
	}
	for id, voter := range ids {
		ms := MemberStatus{ID: id, Voter: voter, PeerAddr: addrs[id][0], ClientAddr: addrs[id][1], StayLearner: stay[id]}
		switch {
		case id == st.Lead:
			ms.Role = "leader"
		case !voter:
			ms.Role = "learner"
		default:
			ms.Role = "follower"
		}
		if pr, ok := st.Progress[id]; ok {
			ms.MatchIndex = pr.Match
			ms.Reachable = pr.RecentActive || id == n.cfg.ID
			if s.LastIndex > pr.Match {
				ms.Lag = s.LastIndex - pr.Match
			}
		}
		s.Members = append(s.Members, ms)
	}
	sort.Slice(s.Members, func(i, j int) bool { return s.Members[i].ID < s.Members[j].ID })
	return s
}
