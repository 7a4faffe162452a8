package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"rdb/command"
)

// Membership errors.
var (
	// ErrNotLeader means the call must be made on the leader (the rpc
	// layer forwards it there).
	ErrNotLeader = errors.New("cluster: not the leader")
	// ErrMemberExists means the id or an address is already in use.
	ErrMemberExists = errors.New("cluster: member already exists")
	// ErrUnknownMember means no member has that id.
	ErrUnknownMember = errors.New("cluster: no such member")
	// ErrConfChangeInProgress means another membership change has not
	// been applied yet; only one runs at a time.
	ErrConfChangeInProgress = errors.New("cluster: another membership change is in progress")
	// ErrWouldLoseQuorum means the change would leave fewer live voters
	// than a quorum; it is refused unless forced.
	ErrWouldLoseQuorum = errors.New("cluster: change would leave the cluster without a quorum of live voters")
	// ErrNotLearner means a promotion named a member that is not a learner.
	ErrNotLearner = errors.New("cluster: member is not a learner")
	// ErrRemoved means this node was removed from the cluster.
	ErrRemoved = errors.New("cluster: this node was removed from the cluster")
	// ErrRemovedMember is returned to a removed node that still sends.
	ErrRemovedMember = errors.New("cluster: message from a removed member")
)

// promoteLag is how far behind the leader's last index a learner may be
// and still be promoted automatically.
const promoteLag = 1000

// confRequest is one membership change waiting for the loop.
type confRequest struct {
	cc        *raftpb.ConfChangeV2
	requestID uint64
	// validate runs on the loop right before proposing.
	validate    func(st raft.Status) error
	deadline    time.Time
	proposed    bool
	awaitAppend bool
	retryAt     time.Time
}

// submitConf hands a membership change to the loop and waits until it is
// applied on this node.
func (n *Node) submitConf(ctx context.Context, change *raftpb.ConfChangeSingle, member *command.Member, validate func(raft.Status) error) (uint64, error) {
	ctx, cancel := n.withWriteDeadline(ctx)
	defer cancel()
	if !n.IsLeader() {
		return 0, ErrNotLeader
	}
	reqID := n.nextRequestID()
	cctx, err := marshalConfContext(&command.ConfContext{Member: member, ProposerId: n.cfg.ID, RequestId: reqID})
	if err != nil {
		return 0, err
	}
	deadline, _ := ctx.Deadline()
	req := &confRequest{
		cc:        &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{change}, Context: cctx},
		requestID: reqID,
		validate:  validate,
		deadline:  deadline,
	}
	ch := n.waiters.register(reqID, nil, nil)
	select {
	case n.confc <- req:
	case <-ctx.Done():
		n.waiters.remove(reqID)
		return 0, fmt.Errorf("%w: %v", ErrProposalDropped, ctx.Err())
	case <-n.stopped:
		n.waiters.remove(reqID)
		return 0, ErrStopped
	}
	select {
	case r := <-ch:
		return r.index, r.err
	case <-ctx.Done():
		n.waiters.remove(reqID)
		return 0, fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())
	case <-n.stopped:
		// A result delivered just before stopping (this node's own
		// removal) wins.
		select {
		case r := <-ch:
			return r.index, r.err
		default:
		}
		return 0, ErrStopped
	}
}

// AddMember adds a node as a learner. It is promoted to voter
// automatically once it has caught up, unless m.StayLearner is set.
// Adding a member that already exists with the same addresses succeeds
// (a joining node may retry); a clash of id or address is refused with
// ErrMemberExists.
func (n *Node) AddMember(ctx context.Context, m *command.Member) (uint64, error) {
	if m.GetId() == 0 || m.GetPeerAddr() == "" || m.GetClientAddr() == "" {
		return 0, fmt.Errorf("%w: a member needs an id, a peer address and a client address", command.ErrInvalidRequest)
	}
	// The member table must hold everything committed before the call:
	// a new leader that has not applied a removal yet would otherwise
	// answer "already a member" for a node that is not (finding 17).
	bctx, cancel := n.withWriteDeadline(ctx)
	idx, err := n.ReadIndex(bctx)
	if err == nil {
		err = n.WaitApplied(bctx, idx)
	}
	var st Status
	if err == nil {
		st, err = n.Status(bctx)
	}
	cancel()
	if err != nil {
		return 0, fmt.Errorf("add member %d: catch up with the log: %w", m.GetId(), err)
	}
	// Only members of the raft configuration count: the member table
	// can also hold an entry that a late address update re-created
	// after the member's removal.
	inConfig := make(map[uint64]bool)
	for _, ms := range st.Members {
		inConfig[ms.ID] = true
	}
	for _, cur := range n.Members() {
		if !inConfig[cur.GetId()] {
			continue
		}
		sameID := cur.GetId() == m.GetId()
		if sameID && cur.GetPeerAddr() == m.GetPeerAddr() && cur.GetClientAddr() == m.GetClientAddr() {
			return n.AppliedIndex(), nil
		}
		if sameID {
			return 0, fmt.Errorf("%w: id %d is in use (peer %s, client %s)", ErrMemberExists, m.GetId(), cur.GetPeerAddr(), cur.GetClientAddr())
		}
		if cur.GetPeerAddr() == m.GetPeerAddr() || cur.GetClientAddr() == m.GetClientAddr() {
			return 0, fmt.Errorf("%w: address in use by member %d", ErrMemberExists, cur.GetId())
		}
	}
	return n.submitConf(ctx, &raftpb.ConfChangeSingle{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: &m.Id}, m,
		func(st raft.Status) error {
			if _, ok := st.Progress[m.GetId()]; ok {
				return fmt.Errorf("%w: id %d", ErrMemberExists, m.GetId())
			}
			return nil
		})
}

// RemoveMember removes a node. A removal that would leave fewer live
// voters than a quorum is refused unless force is set.
func (n *Node) RemoveMember(ctx context.Context, id uint64, force bool) (uint64, error) {
	return n.submitConf(ctx, &raftpb.ConfChangeSingle{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: &id}, nil,
		func(st raft.Status) error {
			if _, ok := st.Progress[id]; !ok {
				return fmt.Errorf("%w: %d", ErrUnknownMember, id)
			}
			voters := votersOf(st)
			if voters[id] && len(voters) == 1 {
				return fmt.Errorf("%w: %d is the last voter", ErrWouldLoseQuorum, id)
			}
			delete(voters, id)
			if !force {
				return checkQuorum(st, voters, n.lastWindowActive)
			}
			return nil
		})
}

// PromoteMember makes a learner a voter. It is refused if the learner is
// far behind, or if the larger quorum would not be met by live voters,
// unless force is set.
func (n *Node) PromoteMember(ctx context.Context, id uint64, force bool) (uint64, error) {
	return n.submitConf(ctx, &raftpb.ConfChangeSingle{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: &id}, nil,
		func(st raft.Status) error { return n.validatePromotion(st, id, force) })
}

func (n *Node) validatePromotion(st raft.Status, id uint64, force bool) error {
	pr, ok := st.Progress[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrUnknownMember, id)
	}
	if !pr.IsLearner {
		return fmt.Errorf("%w: %d", ErrNotLearner, id)
	}
	if force {
		return nil
	}
	last, _ := n.store.storage.LastIndex()
	if pr.Match+promoteLag < last {
		return fmt.Errorf("%w: learner %d is %d entries behind; wait for it to catch up or force", ErrWouldLoseQuorum, id, last-pr.Match)
	}
	voters := votersOf(st)
	voters[id] = true
	return checkQuorum(st, voters, n.lastWindowActive)
}

func votersOf(st raft.Status) map[uint64]bool {
	out := make(map[uint64]bool)
	for id := range st.Config.Voters.IDs() {
		out[id] = true
	}
	return out
}

// tickRemembering ticks raft and, on the leader, remembers which peers
// were active in the check-quorum window that the tick closed: raft
// clears every RecentActive flag when it checks the quorum (once per
// election timeout), and a membership check made right after would
// find no voter live (chaos finding 14). Called by the loop.
func (n *Node) tickRemembering() {
	if !n.IsLeader() {
		n.lastWindowActive = nil
		n.rn.Tick()
		return
	}
	before := make(map[uint64]bool)
	n.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if pr.RecentActive {
			before[id] = true
		}
	})
	n.rn.Tick()
	reset := false
	n.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if before[id] && !pr.RecentActive {
			reset = true
		}
	})
	if reset {
		n.lastWindowActive = before
	}
}

// checkQuorum reports ErrWouldLoseQuorum unless a majority of voters is
// live: the leader itself, recently heard from, or active in the last
// complete check-quorum window (alsoActive).
func checkQuorum(st raft.Status, voters, alsoActive map[uint64]bool) error {
	live := 0
	for id := range voters {
		if id == st.ID || st.Progress[id].RecentActive || alsoActive[id] {
			live++
		}
	}
	if need := len(voters)/2 + 1; live < need {
		return fmt.Errorf("%w: %d of %d voters live, %d needed", ErrWouldLoseQuorum, live, len(voters), need)
	}
	return nil
}

// TransferLeader moves leadership to voter id and waits until it has it.
func (n *Node) TransferLeader(ctx context.Context, id uint64) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	if id == n.cfg.ID {
		return nil
	}
	st, err := n.Status(ctx)
	if err != nil {
		return err
	}
	found := false
	for _, m := range st.Members {
		if m.ID == id {
			found = true
			if !m.Voter {
				return fmt.Errorf("%w: %d is a learner; promote it first", command.ErrInvalidRequest, id)
			}
		}
	}
	if !found {
		return fmt.Errorf("%w: %d", ErrUnknownMember, id)
	}
	select {
	case n.transferc <- id:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stopped:
		return ErrStopped
	}
	for {
		if n.leader.Load() == id {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("leadership did not move to %d: %w", id, ctx.Err())
		case <-n.stopped:
			return ErrStopped
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TransferLeadershipAway hands leadership to the most up-to-date
// reachable voter, for a graceful shutdown. It does nothing on a
// follower or a single-voter cluster.
func (n *Node) TransferLeadershipAway(ctx context.Context) error {
	if !n.IsLeader() {
		return nil
	}
	st, err := n.Status(ctx)
	if err != nil {
		return err
	}
	var best *MemberStatus
	for i := range st.Members {
		m := &st.Members[i]
		if m.ID == n.cfg.ID || !m.Voter || !m.Reachable {
			continue
		}
		if best == nil || m.MatchIndex > best.MatchIndex {
			best = m
		}
	}
	if best == nil {
		return nil
	}
	n.log.Info("transferring leadership before shutdown", "to", best.ID, "match_index", best.MatchIndex)
	return n.TransferLeader(ctx, best.ID)
}

// ReportRemoved tells the node that a peer said it was removed from the
// cluster; the node stops.
func (n *Node) ReportRemoved() {
	select {
	case n.removedc <- struct{}{}:
	default:
	}
}

func (n *Node) markRemovedID(id uint64) {
	n.membersMu.Lock()
	n.removedIDs[id] = true
	n.membersMu.Unlock()
}

// forgetReadded drops from the removed ids those that the installed
// snapshot lists as members again (in its configuration or its member
// table): a node that missed a re-addition in the log learns of it only
// there (chaos finding 16). Called by the loop.
func (n *Node) forgetReadded() {
	n.membersMu.Lock()
	defer n.membersMu.Unlock()
	for id := range n.removedIDs {
		if _, ok := n.members[id]; ok || inConf(n.confState, id) {
			delete(n.removedIDs, id)
		}
	}
}

func (n *Node) isRemovedID(id uint64) bool {
	n.membersMu.RLock()
	defer n.membersMu.RUnlock()
	return n.removedIDs[id]
}

// Loop side.

// acceptConf takes a membership change request. Called by the loop.
func (n *Node) acceptConf(req *confRequest) {
	if n.confPending != nil {
		n.waiters.deliver(req.requestID, applyResult{err: ErrConfChangeInProgress})
		return
	}
	n.confPending = req
}

// tryConf proposes the pending membership change when it can. Called by
// the loop after every event.
func (n *Node) tryConf(now time.Time) {
	p := n.confPending
	if p == nil || p.proposed || now.Before(p.retryAt) {
		return
	}
	fail := func(err error) {
		n.confPending = nil
		n.waiters.deliver(p.requestID, applyResult{err: err})
	}
	if !p.deadline.IsZero() && now.After(p.deadline) {
		fail(ErrProposalDropped)
		return
	}
	if n.leader.Load() != n.cfg.ID {
		fail(ErrNotLeader)
		return
	}
	if p.validate != nil {
		if err := p.validate(n.rn.Status()); err != nil {
			fail(err)
			return
		}
	}
	if err := n.rn.ProposeConfChange(p.cc); err != nil {
		fail(fmt.Errorf("%w: %v", ErrProposalDropped, err))
		return
	}
	p.proposed, p.awaitAppend = true, true
}

// checkConfAppended runs on the leader's Ready right after a proposal:
// raft silently turns a conf change into an empty entry while an earlier
// one may be unapplied, so look for ours and retry later if it is gone.
func (n *Node) checkConfAppended(ents []*raftpb.Entry) {
	p := n.confPending
	if p == nil || !p.awaitAppend {
		return
	}
	p.awaitAppend = false
	for _, e := range ents {
		if e.GetType() != raftpb.EntryConfChangeV2 {
			continue
		}
		if ce, err := decodeConfChange(e); err == nil && ce.ctx.GetRequestId() == p.requestID && ce.ctx.GetProposerId() == n.cfg.ID {
			return
		}
	}
	p.proposed = false
	p.retryAt = time.Now().Add(n.cfg.TickInterval)
}

// confApplied releases the waiter of an applied membership change.
func (n *Node) confApplied(ce *confEntry, index uint64) {
	n.log.Debug("conf applied", "proposer", ce.ctx.GetProposerId(), "request", ce.ctx.GetRequestId(), "index", index)
	if ce.ctx.GetProposerId() != n.cfg.ID || ce.ctx.GetRequestId() == 0 {
		return
	}
	if p := n.confPending; p != nil && p.requestID == ce.ctx.GetRequestId() {
		n.confPending = nil
	}
	n.waiters.deliver(ce.ctx.GetRequestId(), applyResult{index: index})
}

// confLeaderChanged fails a pending change when this node stops leading.
func (n *Node) confLeaderChanged() {
	p := n.confPending
	if p == nil || n.leader.Load() == n.cfg.ID {
		return
	}
	n.confPending = nil
	err := ErrNotLeader
	if p.proposed {
		err = ErrLeaderLost
	}
	n.waiters.deliver(p.requestID, applyResult{err: err})
}

// maybePromote starts the promotion of a caught-up learner. Called by the
// leader's loop on ticks.
func (n *Node) maybePromote() {
	if n.confPending != nil || !n.IsLeader() {
		return
	}
	st := n.rn.Status()
	for id := range st.Config.Learners {
		pr := st.Progress[id]
		if !pr.RecentActive {
			continue
		}
		n.membersMu.RLock()
		m := n.members[id]
		n.membersMu.RUnlock()
		if m.GetStayLearner() {
			continue
		}
		if n.validatePromotion(st, id, false) != nil {
			continue
		}
		reqID := n.nextRequestID()
		cctx, err := marshalConfContext(&command.ConfContext{ProposerId: n.cfg.ID, RequestId: reqID})
		if err != nil {
			return
		}
		nid := id
		n.log.Info("promoting caught-up learner", "id", id, "match_index", pr.Match)
		n.confPending = &confRequest{
			cc:        &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: &nid}}, Context: cctx},
			requestID: reqID,
			validate:  func(st raft.Status) error { return n.validatePromotion(st, nid, false) },
			deadline:  time.Now().Add(n.cfg.WriteTimeout),
		}
		return
	}
}

// removedNow reports whether this node has been removed: it was a member,
// has applied everything it knows to be committed, and is no longer in the
// configuration. Checking only once caught up lets a node that reuses the
// id of a removed one replay the old removal and its own later addition.
func (n *Node) removedNow() bool {
	if n.joinPending.Load() || !n.wasMember || inConf(n.confState, n.cfg.ID) || n.lastSelfRemoval <= n.joinIndex.Load() {
		return false
	}
	applied, _ := n.applied.get()
	return applied >= n.commit.Load()
}

// SetJoinIndex records the raft index of the conf change that added this
// node when it joined: earlier removals of its id (of a previous node
// that had it) do not stop it.
func (n *Node) SetJoinIndex(index uint64) {
	n.joinIndex.Store(index)
	n.joinPending.Store(false)
}
