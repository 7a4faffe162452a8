package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"rdb/command"
	"rdb/db"
)

// lostLogHeartbeats is how many election timeouts' worth of heartbeats
// claiming a commit beyond this node's log stop the node (ErrLogLost).
const lostLogHeartbeats = 5

// maxReadiesPerRound bounds how many Readies the loop handles before it
// looks at its channels again.
const maxReadiesPerRound = 8

// alwaysReady is a closed channel: a select case on it is always ready.
var alwaysReady = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// maxDrain bounds how many queued events of one kind the loop takes
// before handling a Ready, so that proposals batch into one append and
// one fsync without starving the other inputs.
const maxDrain = 1024

// loop is the single goroutine that owns the RawNode.
func (n *Node) loop(ctx context.Context) error {
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	readRetry := time.Duration(n.cfg.ElectionTicks) * n.cfg.TickInterval / 2
	var lastRegister, lastSelfProposal time.Time
	var again <-chan struct{} // alwaysReady while Readies are left over

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			n.tickRemembering()
			now := time.Now()
			// A round that raft silently dropped (no leader, leader
			// change) is re-issued with a fresh context.
			n.reads.requeue(now, readRetry)
			// A new leader publishes its own addresses on the first tick
			// it has caught up (clients ask the member table where the
			// leader is), and retries a lost proposal after a second.
			if n.IsLeader() && now.Sub(lastSelfProposal) > time.Second && n.shouldRegister() {
				lastSelfProposal = now
				n.proposeSelf()
			}
			if now.Sub(lastRegister) > time.Second {
				lastRegister = now
				n.registerAnnounced()
			}
			n.maybePromote()
		case p := <-n.propc:
			batch := append(n.propBatch[:0], p)
		drainpropc:
			for i := 0; i < maxDrain; i++ {
				select {
				case p := <-n.propc:
					batch = append(batch, p)
				default:
					break drainpropc
				}
			}
			n.proposeBatch(batch)
			clear(batch) // drop the references to the proposals' data
			n.propBatch = batch[:0]
		case m := <-n.recvc:
			n.step(m)
		drainrecvc:
			for i := 0; i < maxDrain; i++ {
				select {
				case m := <-n.recvc:
					n.step(m)
				default:
					break drainrecvc
				}
			}
		case r := <-n.readc:
			n.reads.add(r)
		drainreadc:
			for i := 0; i < maxDrain; i++ {
				select {
				case r := <-n.readc:
					n.reads.add(r)
				default:
					break drainreadc
				}
			}
		case id := <-n.unreach:
			n.rn.ReportUnreachable(id)
		case r := <-n.snap.reports:
			n.reportSnapshot(r)
		case m := <-n.peerc:
			n.announced[m.GetId()] = m
		case req := <-n.confc:
			n.acceptConf(req)
		case id := <-n.transferc:
			n.rn.TransferLeader(id)
		case <-n.removedc:
			n.log.Error("a peer reports that this node was removed from the cluster")
			return ErrRemoved
		case <-again:
		case reply := <-n.statusc:
			reply <- n.status()
		}

		n.issueReads()
		n.tryConf(time.Now())
		// Advance can make more ready at once (a single voter commits
		// its own append only when the Ready that carried it is
		// advanced): handle it now, not at the next tick or message.
		// At most maxReadiesPerRound at a time: a follower catching up on
		// a long log gets Ready after Ready, and status, reads and
		// proposals must still get their turn (again makes the select
		// come straight back here, among the other ready cases).
		again = nil
		for i := 0; n.rn.HasReady(); i++ {
			if i == maxReadiesPerRound {
				again = alwaysReady
				break
			}
			if err := n.handleReady(ctx); err != nil {
				n.log.Error("node stopping on fatal error", "err", err)
				return err
			}
		}
		if n.removedNow() {
			n.log.Warn("this node was removed from the cluster; stopping")
			return ErrRemoved
		}
		// Heartbeats beyond our log for several election timeouts: the
		// leader believes we hold entries we lost, and raft will never
		// send them again. Stop with a clear error instead of staying up
		// as a follower that cannot catch up (chaos finding 6).
		if limit := lostLogHeartbeats * n.cfg.ElectionTicks / max(n.cfg.HeartbeatTicks, 1); n.beyondLog >= limit {
			last, _ := n.store.storage.LastIndex()
			return fmt.Errorf("%w: %d heartbeats in a row claimed a commit beyond the log's last index %d; wipe the data directory and add the node again with a new id",
				ErrLogLost, n.beyondLog, last)
		}
	}
}

func (n *Node) propose(p proposal) {
	// Only the leader proposes (raft's forwarding is off): a follower's
	// writes are forwarded by the rpc layer, where a refusal is known.
	if n.leader.Load() != n.cfg.ID {
		n.metrics.dropped.Inc()
		if p.requestID != 0 {
			n.waiters.deliver(p.requestID, applyResult{err: ErrNotLeader})
		}
		return
	}
	err := n.rn.Propose(p.data)
	if err == nil {
		n.metrics.proposed.Inc()
	} else {
		n.metrics.dropped.Inc()
	}
	if err != nil {
		if errors.Is(err, raft.ErrProposalDropped) {
			if n.leader.Load() == 0 {
				err = ErrNoLeader
			} else {
				err = ErrProposalDropped
			}
		}
		if p.requestID != 0 {
			n.waiters.deliver(p.requestID, applyResult{err: err})
		}
	}
}

// proposeBatch proposes the proposals taken from propc in one loop round
// as few raft messages (MsgProp) as possible, each of at most
// MaxSizePerMsg bytes of data. raft appends a MsgProp's entries together
// and sends each follower one MsgApp for them; proposed one by one, each
// entry went out in a MsgApp of its own (up to MaxInflightMsgs of them),
// and each follower answered each: at 64 concurrent inserts the leader
// received about 45,000 raft messages a second for 12,000 entries. A batch
// raft refuses is proposed again entry by entry, so that each proposal gets
// the outcome it would have had alone (the uncommitted-size limit may take
// some of them).
func (n *Node) proposeBatch(ps []proposal) {
	if n.leader.Load() != n.cfg.ID {
		for _, p := range ps {
			n.propose(p)
		}
		return
	}
	for len(ps) > 0 {
		k, size := 1, uint64(len(ps[0].data))
		for k < len(ps) && size+uint64(len(ps[k].data)) <= n.cfg.MaxSizePerMsg {
			size += uint64(len(ps[k].data))
			k++
		}
		n.proposeChunk(ps[:k])
		ps = ps[k:]
	}
}

// proposeChunk proposes ps in one MsgProp, or one by one if raft refuses
// it.
func (n *Node) proposeChunk(ps []proposal) {
	if len(ps) == 1 {
		n.propose(ps[0])
		return
	}
	ents := make([]raftpb.Entry, len(ps))
	ptrs := make([]*raftpb.Entry, len(ps))
	for i, p := range ps {
		ents[i].Data = p.data
		ptrs[i] = &ents[i]
	}
	id := n.cfg.ID
	err := n.rn.Step(&raftpb.Message{Type: raftpb.MessageType_MsgProp.Enum(), From: &id, Entries: ptrs})
	if err != nil {
		n.log.Debug("batch proposal refused; proposing one by one", "proposals", len(ps), "err", err)
		for _, p := range ps {
			n.propose(p)
		}
		return
	}
	n.metrics.proposed.Add(float64(len(ps)))
}

func (n *Node) step(m *raftpb.Message) {
	// A leader only sends a heartbeat commit the follower's log holds. One
	// beyond our log comes from another cluster on a reused address, or
	// means our log was lost: refuse it loudly rather than let raft panic.
	if m.GetType() == raftpb.MsgHeartbeat {
		if last, _ := n.store.storage.LastIndex(); m.GetCommit() > last {
			n.log.Error("ignoring heartbeat claiming a commit beyond this node's log: another cluster on a reused address, or a lost log",
				"from", m.GetFrom(), "commit", m.GetCommit(), "last_index", last, "term", m.GetTerm())
			n.beyondLog++
			return
		}
		n.beyondLog = 0
	}
	if lead := n.leader.Load(); lead != 0 && m.GetFrom() == lead {
		n.leaderSeen(time.Now())
	}
	if isDirectReadRequest(m) {
		if resp := answerDirectRead(n.rn, n.store.storage, n.confState, n.cfg.ID, m); resp != nil {
			n.metrics.readDirect.answered.Inc()
			n.transport.Send([]*raftpb.Message{resp})
			return
		}
		n.metrics.readDirect.declined.Inc()
		declineDirectRead(m)
	}
	if err := n.rn.Step(m); err != nil {
		n.log.Debug("step", "from", m.GetFrom(), "type", m.GetType().String(), "err", err)
	}
}

// issueReads starts a ReadIndex round for the pending reads, or fails them
// at once when no leader is known. A follower that makes a quorum with
// its leader asks the leader directly (see readindex_direct.go).
func (n *Node) issueReads() {
	rctx := n.reads.issue(time.Now(), n.leader.Load())
	if rctx == nil {
		return
	}
	if m := directReadRequest(n.rn, n.confState, n.cfg.ID, rctx); m != nil {
		n.metrics.readDirect.sent.Inc()
		n.transport.Send([]*raftpb.Message{m})
		return
	}
	n.rn.ReadIndex(rctx)
}

// handleReady processes one Ready in the order described in doc.go.
func (n *Node) handleReady(ctx context.Context) error {
	rd := n.rn.Ready()

	if rd.SoftState != nil {
		n.updateSoftState(rd.SoftState)
	}
	isLeader := n.leader.Load() == n.cfg.ID

	// Snapshots for followers travel on their own stream, as files.
	msgs := rd.Messages[:0:0]
	for _, m := range rd.Messages {
		if m.GetType() == raftpb.MsgSnap {
			if !inConf(m.GetSnapshot().GetMetadata().GetConfState(), m.GetTo()) {
				// The log was last compacted before the recipient joined:
				// its raft refuses a snapshot whose membership lacks it
				// ("not in the ConfState"), and the leader would send the
				// same one forever. Compact at once (the conf change is
				// applied), and fail this one so raft asks again.
				n.compactNow = true
				n.reportSnapshotFailed(ctx, m.GetTo())
				continue
			}
			n.sendSnapshot(ctx, m)
			continue
		}
		msgs = append(msgs, m)
	}
	rd.Messages = msgs

	// 0. A snapshot from the leader: swap the database in, then record it.
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.installSnapshot(ctx, rd.Snapshot); err != nil {
			return err
		}
	}

	// 1. The leader replicates in parallel with its own disk write. (A
	// deliberately broken build lets followers acknowledge early too.)
	if isLeader || brokenEarlyAck {
		n.transport.Send(rd.Messages)
	}
	if isLeader {
		n.checkConfAppended(rd.Entries)
	}
	// 2. Persist entries and HardState: one fsync for the Ready.
	saveStart := time.Now()
	if err := n.store.save(rd.HardState, rd.Entries); err != nil {
		return err
	}
	// The HardState that commits a received snapshot usually changes
	// only the commit index, which the WAL does not fsync. It must be
	// durable before the follower acknowledges: on restart the WAL trusts
	// only snapshot records at or below the last durable commit, so a
	// lost one leaves the log behind what the leader believes the
	// follower has, and the follower stuck (found by the chaos harness;
	// etcd-io/etcd#10219).
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.store.sync(); err != nil {
			return err
		}
	}
	if len(rd.Entries) > 0 {
		n.metrics.walSave.Observe(time.Since(saveStart).Seconds())
	}
	if rd.HardState != nil {
		n.term.Store(rd.HardState.GetTerm())
		n.commit.Store(rd.HardState.GetCommit())
	}
	// 3. Followers acknowledge only what is now durable.
	if !isLeader && !brokenEarlyAck {
		n.transport.Send(rd.Messages)
	}
	// 4. Apply.
	if len(rd.CommittedEntries) > 0 {
		applyStart := time.Now()
		if err := n.apply(ctx, rd.CommittedEntries); err != nil {
			return err
		}
		n.metrics.apply.Observe(time.Since(applyStart).Seconds())
		n.metrics.applyEntries.Add(float64(len(rd.CommittedEntries)))
	}
	// Compact the log when enough has been applied.
	if err := n.maybeCompact(); err != nil {
		return err
	}
	// 5. Release linearizable reads (after a leader change in this Ready
	// was handled above, so the change wins over these states).
	n.reads.resolveAll(rd.ReadStates)
	// 6. Advance.
	n.rn.Advance(rd)
	return nil
}

func (n *Node) updateSoftState(ss *raft.SoftState) {
	prev := n.leader.Load()
	n.leader.Store(ss.Lead)
	role := roleName(ss.RaftState)
	n.role.Store(role)
	if ss.Lead != prev {
		if was, is := prev == n.cfg.ID, ss.Lead == n.cfg.ID; was != is && n.cfg.OnLeadership != nil {
			n.cfg.OnLeadership(is)
		}
		n.metrics.leaderChanges.Inc()
		n.log.Info("leader changed", "from", prev, "to", ss.Lead, "role", role)
		if ss.Lead == n.cfg.ID {
			n.leaderSeen(time.Now())
		}
		n.confLeaderChanged()
		// Pending reads are re-issued with fresh contexts: a deposed
		// leader's late answer must match nothing.
		n.reads.leaderChanged(time.Now(), ss.Lead)
		if ss.Lead == 0 {
			// Writes in flight stay: a leadership transfer passes through
			// "no leader", and what the old leader appended commits under
			// the new one. A write that never commits ends at its
			// deadline as outcome unknown.
		}
	}
}

func roleName(s raft.StateType) string {
	switch s {
	case raft.StateLeader:
		return "leader"
	case raft.StateCandidate:
		return "candidate"
	case raft.StatePreCandidate:
		return "pre-candidate"
	default:
		return "follower"
	}
}

// confEntry is a decoded conf change entry.
type confEntry struct {
	cc  raftpb.ConfChangeI
	ctx *command.ConfContext
}

// decodeConfChange decodes a conf change entry and its context.
func decodeConfChange(e *raftpb.Entry) (*confEntry, error) {
	var ce confEntry
	var raw []byte
	switch e.GetType() {
	case raftpb.EntryConfChange:
		cc := &raftpb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), cc); err != nil {
			return nil, err
		}
		ce.cc, raw = cc, cc.GetContext()
	default:
		cc := &raftpb.ConfChangeV2{}
		if err := proto.Unmarshal(e.GetData(), cc); err != nil {
			return nil, err
		}
		ce.cc, raw = cc, cc.GetContext()
	}
	ce.ctx = &command.ConfContext{}
	if len(raw) > 0 {
		if err := proto.Unmarshal(raw, ce.ctx); err != nil {
			return nil, fmt.Errorf("context: %w", err)
		}
	}
	return &ce, nil
}

// memberCommand derives the member-table change that a conf change makes
// in the database, so that every replica records it in the same
// transaction as the entry's index.
func memberCommand(ce *confEntry) *command.Command {
	for _, ch := range ce.cc.AsV2().GetChanges() {
		switch ch.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			if m := ce.ctx.GetMember(); m.GetId() == ch.GetNodeId() {
				return &command.Command{Type: command.CommandType_COMMAND_TYPE_SET_MEMBER, Member: m}
			}
		case raftpb.ConfChangeRemoveNode:
			return &command.Command{Type: command.CommandType_COMMAND_TYPE_REMOVE_MEMBER, Member: &command.Member{Id: ch.GetNodeId()}}
		}
	}
	return nil
}

// apply applies committed entries to the database in one transaction,
// then conf changes to raft, then hands results to waiting proposers.
func (n *Node) apply(ctx context.Context, ents []*raftpb.Entry) error {
	batch := make([]db.Entry, len(ents))
	confs := make([]*confEntry, len(ents))
	for i, e := range ents {
		batch[i].Index = e.GetIndex()
		n.bytesSinceSnap += uint64(len(e.GetData()))
		switch {
		case e.GetType() == raftpb.EntryConfChange || e.GetType() == raftpb.EntryConfChangeV2:
			ce, err := decodeConfChange(e)
			if err != nil {
				return fmt.Errorf("apply index %d: conf change: %w", e.GetIndex(), err)
			}
			confs[i] = ce
			batch[i].Command = memberCommand(ce)
		case len(e.GetData()) > 0:
			// Our own proposal with its caller still waiting: take the
			// command we encoded. Anything else is decoded; a caller of
			// ours that gave up wants no results.
			cmd, at := n.waiters.proposed(e.GetData())
			if cmd != nil {
				n.metrics.commit.Observe(time.Since(at).Seconds())
				batch[i].WantResults = true
			} else {
				var err error
				if cmd, err = command.Unmarshal(e.GetData()); err != nil {
					// An entry this node cannot read would make it
					// diverge: stop rather than skip it.
					return fmt.Errorf("apply index %d: %w", e.GetIndex(), err)
				}
				batch[i].WantResults = cmd.GetProposerId() == n.cfg.ID && cmd.GetRequestId() != 0 && n.waiters.has(cmd.GetRequestId())
			}
			batch[i].Command = cmd
		}
	}
	// Never bounded by a wall clock: every replica must finish the same
	// work (see the architecture notes), so the context is not the
	// caller's.
	results, err := n.db.ApplyBatch(context.WithoutCancel(ctx), batch)
	if err != nil {
		return fmt.Errorf("apply entries %d-%d: %w", ents[0].GetIndex(), ents[len(ents)-1].GetIndex(), err)
	}
	for i, e := range ents {
		if ce := confs[i]; ce != nil {
			n.applyConfChange(ce, e.GetIndex())
			continue
		}
		cmd := batch[i].Command
		if cmd == nil {
			continue
		}
		if cmd.GetType() == command.CommandType_COMMAND_TYPE_SET_MEMBER && cmd.GetMember() != nil {
			n.setMember(cmd.GetMember())
		}
		if batch[i].WantResults {
			var res []*command.Result
			if i < len(results) {
				res = results[i]
			}
			n.waiters.deliver(cmd.GetRequestId(), applyResult{results: res, index: e.GetIndex()})
		}
	}
	n.applied.set(ents[len(ents)-1].GetIndex())
	return nil
}

// applyConfChange applies a conf change to raft (always, even when the
// database had already recorded its index), to the member table and the
// transport, and tells its proposer.
func (n *Node) applyConfChange(ce *confEntry, index uint64) {
	n.confState = n.rn.ApplyConfChange(ce.cc)
	if inConf(n.confState, n.cfg.ID) {
		n.wasMember = true
	}
	for _, ch := range ce.cc.AsV2().GetChanges() {
		switch ch.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			if m := ce.ctx.GetMember(); m.GetId() == ch.GetNodeId() {
				n.setMember(m)
			} else {
				n.setMember(&command.Member{Id: ch.GetNodeId()})
			}
			n.membersMu.Lock()
			delete(n.removedIDs, ch.GetNodeId())
			n.membersMu.Unlock()
			// Once the log was compacted, a new member catches up by
			// snapshot, and raft refuses a snapshot whose configuration
			// does not list it: the next one must be taken after this
			// change, even if nothing else is written (finding 15).
			if ch.GetType() == raftpb.ConfChangeAddLearnerNode && n.store.snapshot.GetIndex() > 0 {
				n.compactNow = true
			}
		case raftpb.ConfChangeRemoveNode:
			n.removeMember(ch.GetNodeId())
			n.markRemovedID(ch.GetNodeId())
			if ch.GetNodeId() == n.cfg.ID {
				n.lastSelfRemoval = index
			}

		}
	}
	n.confApplied(ce, index)
}

// shouldRegister reports whether this node must publish its addresses:
// it has caught up with the log and the member table lacks them.
func (n *Node) shouldRegister() bool {
	applied, _ := n.applied.get()
	return applied >= n.commit.Load() && !n.selfRegistered()
}

// proposeSelf proposes this node's addresses into the member table.
func (n *Node) proposeSelf() {
	data, err := command.Marshal(&command.Command{
		Type:       command.CommandType_COMMAND_TYPE_SET_MEMBER,
		ProposerId: n.cfg.ID,
		Member:     &command.Member{Id: n.cfg.ID, PeerAddr: n.cfg.PeerAddr, ClientAddr: n.cfg.ClientAddr},
	})
	if err != nil {
		n.log.Error("encode member", "err", err)
		return
	}
	n.propose(proposal{data: data})
}
