package cluster

import (
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// One-round ReadIndex for a follower whose pairing with the leader is a
// quorum (a cluster of two or three voters).
//
// raft's ReadIndex from a follower takes two round trips in a row: the
// follower forwards MsgReadIndex to the leader, the leader confirms its
// leadership with a heartbeat round to a quorum, then answers. Here the
// follower's own request confirms it instead: the follower sends
// MsgReadIndex with its current term (raft's forwarded one carries none)
// to the leader it knows for that term, and the leader answers at once
// with its commit index when it still leads in that same term, has
// committed an entry of it, and the two of them are a quorum of its
// configuration. Anything else goes through raft's ReadIndex as before.
//
// Why this is linearizable. Let the read start at t0, the follower F
// build its request at t1 > t0 while in term T, and the leader L record
// its commit index c at t2 > t1 while leading term T. A leader of a later
// term needs the votes of a quorum, which shares a member with {F, L}. F
// had not voted in a later term by t1 (a vote raises the voter's term
// first), nor had L by t2. So no later leader existed before t1, and
// every write acknowledged before t0 was committed by a leader of term T
// or earlier: L's log holds it (leader completeness), and c covers it
// once L has committed an entry of T. A write committed by a later
// leader between t1 and t2 may be missing from c; it was not yet
// committed when the read started, so the read is ordered before it. The
// reader then waits until its own applied index reaches c, as with
// raft's ReadIndex. This is the argument of raft's own rule (a quorum
// acknowledging after the commit index was recorded) with F's request
// standing in for F's heartbeat acknowledgement; the same idea is
// proposed for raft-rs in tikv/raft-rs#427.
//
// A request raft would have to deliver without its term (an older node
// receiving one hands it to raft, which runs the heartbeat round as
// usual) or an answer that arrives after F moved to a later term (raft
// ignores a message of an older term; the round is re-issued) is safe in
// either case.

// directReadRequest returns the MsgReadIndex a follower sends straight to
// its leader for the round rctx, or nil when the round must go through
// raft's ReadIndex.
func directReadRequest(rn *raft.RawNode, cs *raftpb.ConfState, self uint64, rctx []byte) *raftpb.Message {
	st := rn.BasicStatus()
	if st.RaftState != raft.StateFollower || st.Lead == raft.None || !pairIsQuorum(cs, self, st.Lead) {
		return nil
	}
	term, lead, from := st.GetTerm(), st.Lead, self
	if term == 0 {
		return nil
	}
	return &raftpb.Message{
		Type: raftpb.MessageType_MsgReadIndex.Enum(), To: &lead, From: &from, Term: &term,
		Entries: []*raftpb.Entry{{Data: rctx}},
	}
}

// isDirectReadRequest reports whether m is a follower's one-round
// ReadIndex request: raft itself never sets the term of a MsgReadIndex.
func isDirectReadRequest(m *raftpb.Message) bool {
	return m.GetType() == raftpb.MessageType_MsgReadIndex && m.GetTerm() != 0
}

// answerDirectRead returns the leader's answer to a follower's one-round
// request m, or nil when this node cannot answer it alone: it does not
// lead in m's term, has not committed an entry of it, is handing its
// leadership over, or it and the follower are not a quorum of cs. A nil
// answer leaves m to raft's ReadIndex (see declineDirectRead).
func answerDirectRead(rn *raft.RawNode, storage raft.Storage, cs *raftpb.ConfState, self uint64, m *raftpb.Message) *raftpb.Message {
	st := rn.BasicStatus()
	term := st.GetTerm()
	if st.RaftState != raft.StateLeader || st.LeadTransferee != raft.None || m.GetTerm() != term ||
		len(m.GetEntries()) != 1 || !pairIsQuorum(cs, self, m.GetFrom()) {
		return nil
	}
	// etcd #7331: a new leader's commit index may lag what earlier
	// leaders committed until it commits an entry of its own term.
	commit := st.GetCommit()
	if t, err := storage.Term(commit); err != nil || t != term {
		return nil
	}
	to, from := m.GetFrom(), self
	return &raftpb.Message{
		Type: raftpb.MessageType_MsgReadIndexResp.Enum(), To: &to, From: &from, Term: &term,
		Index: &commit, Entries: m.GetEntries(),
	}
}

// declineDirectRead turns a one-round request this node will not answer
// alone into the request raft's followers forward (no term), so raft
// confirms it with a heartbeat round, or forwards or drops it as it
// would any misdirected ReadIndex.
func declineDirectRead(m *raftpb.Message) { m.Term = nil }

// pairIsQuorum reports whether voters a and b on their own are a quorum
// of cs: cs is not a joint configuration and has at most three voters,
// both of them among them.
func pairIsQuorum(cs *raftpb.ConfState, a, b uint64) bool {
	voters := cs.GetVoters()
	return a != b && len(cs.GetVotersOutgoing()) == 0 && len(voters) <= 3 &&
		slices.Contains(voters, a) && slices.Contains(voters, b)
}
