package cluster

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A deterministic simulation of three raft nodes configured exactly as
// rdb configures them (raftConfig), each with rdb's readTracker driven in
// the loop's order: a leader change is handled before the Ready's
// ReadStates, rounds older than half an election timeout are re-issued on
// ticks, reads fail at once with no leader. The network reorders,
// duplicates, delays and cuts messages under a seeded random source.
//
// Invariant checked on every answered read: its index is at or above the
// index of every write acknowledged before the read was called (so the
// read, served once the node has applied that index, is linearizable).
// Also: a leader answers a ReadIndex only once it has committed an entry
// of its term, and no request context is ever issued twice.
//
// The simulation's actions come from the seed; raft's own election
// timeout jitter comes from raft's global random source, which cannot be
// seeded, so a failure names its seed but may need a few reruns to
// reproduce.

const simIterations = 1000

// simRuns is the number of seeded runs per scenario: simIterations, or a
// tenth of it under the race detector; RDB_SIM_RUNS overrides both.
func simRuns() int {
	if v, err := strconv.Atoi(os.Getenv("RDB_SIM_RUNS")); err == nil && v > 0 {
		return v
	}
	if raceEnabled {
		return simIterations / 10
	}
	return simIterations
}

type simNode struct {
	id      uint64
	rn      *raft.RawNode
	storage *raft.MemoryStorage
	cs      *raftpb.ConfState
	reads   *readTracker
	lead    uint64
	cut     bool // isolated from the others
}

type simWrite struct {
	proposer uint64
}

type simRead struct {
	node  uint64
	req   *readRequest
	floor uint64 // highest acknowledged write index when the read was called
}

type sim struct {
	t     testing.TB
	seed  uint64
	rng   *rand.Rand
	cfg   Config
	now   time.Time
	nodes []*simNode
	net   []*raftpb.Message // in flight
	held  []*raftpb.Message // delayed until released
	hold  bool              // new messages from or to cut nodes are held instead of dropped
	// direct: followers use the one-round ReadIndex (readindex_direct.go)
	// as rdb's loop does; off, every round goes through raft's ReadIndex.
	direct bool

	writeSeq uint64
	writes   map[uint64]simWrite // payload sequence -> proposer
	acked    uint64              // highest index acknowledged to a client
	ackCount int
	reads    []*simRead
	ctxSeen  map[string]bool
	answered int
	failed   int
	// directAnswers counts one-round requests leaders answered.
	directAnswers int
}

func newSim(t testing.TB, seed uint64) *sim {
	s := &sim{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:    time.Unix(0, 0),
		writes: map[uint64]simWrite{}, ctxSeen: map[string]bool{},
		direct: seed%2 == 1,
	}
	peers := []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	for _, p := range peers {
		cfg := Config{ID: p.ID}.withDefaults()
		s.cfg = cfg
		st := raft.NewMemoryStorage()
		rc := raftConfig(cfg, st, raftLogger{l: slog.New(slog.DiscardHandler)})
		rn, err := raft.NewRawNode(rc)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := rn.Bootstrap(peers); err != nil {
			t.Fatalf("seed %d: bootstrap: %v", seed, err)
		}
		cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
		s.nodes = append(s.nodes, &simNode{id: p.ID, rn: rn, storage: st, cs: cs, reads: newReadTracker(s.rng.Uint64() >> 1)})
	}
	return s
}

func (s *sim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("seed %d: %s", s.seed, fmt.Sprintf(format, args...))
}

func (s *sim) node(id uint64) *simNode { return s.nodes[id-1] }

// leader returns a node that believes it leads, preferring one not cut.
func (s *sim) leader() *simNode {
	var any *simNode
	for _, n := range s.nodes {
		if n.rn.Status().RaftState == raft.StateLeader {
			if !n.cut {
				return n
			}
			any = n
		}
	}
	return any
}

// settle runs the loop of every node: issue reads, handle Ready.
func (s *sim) settle() {
	for _, n := range s.nodes {
		s.drive(n)
	}
}

// drive is the tail of rdb's loop for one node.
func (s *sim) drive(n *simNode) {
	if rctx := n.reads.issue(s.now, n.lead); rctx != nil {
		if s.ctxSeen[string(rctx)] {
			s.fatalf("node %d: read context %x issued twice", n.id, rctx)
		}
		s.ctxSeen[string(rctx)] = true
		if m := directReadRequest(n.rn, n.cs, n.id, rctx); s.direct && m != nil {
			s.send(m)
		} else {
			n.rn.ReadIndex(rctx)
		}
	}
	for n.rn.HasReady() {
		s.handleReady(n)
	}
	s.collect()
}

// handleReady mirrors Node.handleReady, minus the database.
func (s *sim) handleReady(n *simNode) {
	rd := n.rn.Ready()
	if rd.SoftState != nil && rd.SoftState.Lead != n.lead {
		n.lead = rd.SoftState.Lead
		n.reads.leaderChanged(s.now, n.lead)
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := n.storage.SetHardState(rd.HardState); err != nil {
			s.fatalf("hard state: %v", err)
		}
	}
	if err := n.storage.Append(rd.Entries); err != nil {
		s.fatalf("append: %v", err)
	}
	for _, m := range rd.Messages {
		s.send(m)
	}
	for _, e := range rd.CommittedEntries {
		switch e.GetType() {
		case raftpb.EntryConfChange:
			cc := &raftpb.ConfChange{}
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				s.fatalf("conf change: %v", err)
			}
			n.rn.ApplyConfChange(cc)
		case raftpb.EntryNormal:
			if len(e.GetData()) != 8 {
				continue
			}
			seq := binary.BigEndian.Uint64(e.GetData())
			// The proposer answers its client once it has applied the
			// entry, whoever leads by then.
			if w, ok := s.writes[seq]; ok && w.proposer == n.id {
				delete(s.writes, seq)
				s.ackCount++
				s.acked = max(s.acked, e.GetIndex())
			}
		}
	}
	if len(rd.ReadStates) > 0 {
		s.checkLeaderCommittedInTerm(n)
	}
	n.reads.resolveAll(rd.ReadStates)
	n.rn.Advance(rd)
}

// checkLeaderCommittedInTerm checks, when n leads, that it has committed
// an entry of its term: etcd #7331, a new leader must not answer a
// ReadIndex before.
func (s *sim) checkLeaderCommittedInTerm(n *simNode) {
	st := n.rn.Status()
	if st.RaftState != raft.StateLeader {
		return
	}
	commit, cur := st.HardState.GetCommit(), st.HardState.GetTerm()
	if term, err := n.storage.Term(commit); err != nil || term != cur {
		s.fatalf("leader %d answered a ReadIndex at term %d with commit %d of term %d", n.id, cur, commit, term)
	}
}

func (s *sim) cutLink(from, to uint64) bool { return s.node(from).cut || s.node(to).cut }

func (s *sim) send(m *raftpb.Message) {
	m = proto.Clone(m).(*raftpb.Message)
	if s.cutLink(m.GetFrom(), m.GetTo()) {
		if s.hold {
			s.held = append(s.held, m)
		}
		return
	}
	s.net = append(s.net, m)
}

// deliver delivers one random message in flight (and sometimes a
// duplicate of it later), or drops it.
func (s *sim) deliver() {
	if len(s.net) == 0 {
		return
	}
	i := s.rng.IntN(len(s.net))
	m := s.net[i]
	s.net = append(s.net[:i], s.net[i+1:]...)
	switch r := s.rng.IntN(100); {
	case r < 3: // lost
		return
	case r < 8: // duplicated, the copy arriving later
		s.net = append(s.net, proto.Clone(m).(*raftpb.Message))
	}
	if s.cutLink(m.GetFrom(), m.GetTo()) {
		return
	}
	to := s.node(m.GetTo())
	if isDirectReadRequest(m) {
		if resp := answerDirectRead(to.rn, to.storage, to.cs, to.id, m); resp != nil {
			s.checkLeaderCommittedInTerm(to)
			s.directAnswers++
			s.send(resp)
			return
		}
		declineDirectRead(m)
	}
	_ = to.rn.Step(m)
	s.drive(to)
}

// tick advances the clock by one tick for every node (as each node's
// ticker would), re-issuing old read rounds as the loop does.
func (s *sim) tick() {
	s.now = s.now.Add(s.cfg.TickInterval)
	retry := time.Duration(s.cfg.ElectionTicks) * s.cfg.TickInterval / 2
	for _, n := range s.nodes {
		n.rn.Tick()
		n.reads.requeue(s.now, retry)
		s.drive(n)
	}
}

// write proposes a write on the node that believes it leads (rdb's
// followers forward writes, they never propose).
func (s *sim) write() {
	l := s.leader()
	if l == nil {
		return
	}
	s.writeSeq++
	data := make([]byte, 8)
	binary.BigEndian.PutUint64(data, s.writeSeq)
	if err := l.rn.Propose(data); err != nil {
		return
	}
	s.writes[s.writeSeq] = simWrite{proposer: l.id}
	s.drive(l)
}

// read starts a linearizable read on node id.
func (s *sim) read(id uint64) {
	n := s.node(id)
	if n.lead == 0 {
		return // Node.ReadIndex fails fast: nothing to check
	}
	r := &simRead{node: id, req: &readRequest{done: make(chan readResult, 1)}, floor: s.acked}
	n.reads.add(r.req)
	s.reads = append(s.reads, r)
	s.drive(n)
}

// collect checks the reads that were answered.
func (s *sim) collect() {
	kept := s.reads[:0]
	for _, r := range s.reads {
		select {
		case res := <-r.req.done:
			if res.err != nil {
				s.failed++
				continue
			}
			s.answered++
			if res.index < r.floor {
				s.fatalf("stale read on node %d: index %d below the acknowledged write at %d", r.node, res.index, r.floor)
			}
		default:
			kept = append(kept, r)
		}
	}
	s.reads = kept
}

// randomStep takes one random action.
func (s *sim) randomStep() {
	switch r := s.rng.IntN(100); {
	case r < 60:
		s.deliver()
	case r < 75:
		s.tick()
	case r < 88:
		s.write()
	default:
		s.read(uint64(1 + s.rng.IntN(3)))
	}
}

func (s *sim) run(steps int) {
	for i := 0; i < steps; i++ {
		s.randomStep()
	}
}

// until runs random steps until cond holds.
func (s *sim) until(what string, cond func() bool) {
	for i := 0; i < 20000; i++ {
		if cond() {
			return
		}
		s.randomStep()
	}
	s.fatalf("%s: not within 20000 steps", what)
}

func (s *sim) stableLeader() *simNode {
	var l *simNode
	s.until("a leader all nodes follow", func() bool {
		l = s.leader()
		if l == nil {
			return false
		}
		for _, n := range s.nodes {
			if !n.cut && n.lead != l.id {
				return false
			}
		}
		return true
	})
	return l
}

func (s *sim) isolate(id uint64) { s.node(id).cut = true }

func (s *sim) heal() {
	for _, n := range s.nodes {
		n.cut = false
	}
	s.net = append(s.net, s.held...)
	s.held = nil
	s.hold = false
}

// newLeaderAmongOthers isolates old and runs until another node leads.
func (s *sim) newLeaderAmongOthers(old uint64) *simNode {
	s.isolate(old)
	var nl *simNode
	s.until("a new leader", func() bool {
		for _, n := range s.nodes {
			if n.id != old && n.rn.Status().RaftState == raft.StateLeader {
				nl = n
				return true
			}
		}
		return false
	})
	return nl
}

// finish heals the network, lets everything settle and checks that reads
// were answered at all.
func (s *sim) finish() {
	s.heal()
	s.stableLeader()
	for i := 0; i < 300; i++ {
		s.randomStep()
	}
	s.settle()
}

func runSims(t *testing.T, scenario func(s *sim)) {
	var answered, failed, acked, direct int
	runs := simRuns()
	for i := 0; i < runs; i++ {
		s := newSim(t, uint64(i)+1)
		scenario(s)
		answered += s.answered
		failed += s.failed
		acked += s.ackCount
		direct += s.directAnswers
	}
	t.Logf("%d runs: %d writes acknowledged, %d reads answered (all fresh), %d failed; %d one-round requests answered",
		runs, acked, answered, failed, direct)
	if answered == 0 || acked == 0 || direct == 0 {
		t.Fatalf("the scenario answered no read, no one-round request or acknowledged no write: it tests nothing")
	}
}

// A new leader must not answer ReadIndex before it has committed an entry
// of its term (etcd #7331): reads go to the new leader and its follower
// right after the election, while the old leader holds acknowledged
// writes the new leader may not yet know are committed.
func TestReadIndexSim_NewLeaderWaitsForCommitInTerm(t *testing.T) {
	runSims(t, func(s *sim) {
		l := s.stableLeader()
		s.run(20 + s.rng.IntN(40))
		nl := s.newLeaderAmongOthers(l.id)
		for _, n := range s.nodes {
			if n.id != l.id {
				s.read(n.id)
			}
		}
		s.read(nl.id)
		s.run(50 + s.rng.IntN(100))
		s.finish()
	})
}

// A leader change while reads are pending fails or re-issues them; they
// are never answered with the old leader's index (etcd #21375): reads
// are queued on the leader and a follower, then the leader is cut off
// and a new one takes writes.
func TestReadIndexSim_LeaderChangeWhilePending(t *testing.T) {
	runSims(t, func(s *sim) {
		l := s.stableLeader()
		s.run(10 + s.rng.IntN(30))
		for i := 0; i < 3; i++ {
			s.read(l.id)
			s.read(uint64(1 + s.rng.IntN(3)))
		}
		s.hold = s.rng.IntN(2) == 0
		s.newLeaderAmongOthers(l.id)
		for i := 0; i < 5; i++ {
			s.write()
		}
		s.run(50 + s.rng.IntN(100))
		s.finish()
	})
}

// Retries use fresh request contexts (etcd #21399): without a quorum,
// rounds are re-issued every half election timeout; duplicated answers
// to earlier rounds then arrive late. Each issued context is checked to
// be new (drive), and every answer to be fresh.
func TestReadIndexSim_RetriesUseFreshContexts(t *testing.T) {
	runSims(t, func(s *sim) {
		l := s.stableLeader()
		s.run(10 + s.rng.IntN(30))
		for i := 0; i < 4; i++ {
			s.read(uint64(1 + s.rng.IntN(3)))
		}
		// No quorum for a while: two nodes cut, their traffic held.
		s.hold = true
		s.isolate(uint64(1 + (l.id % 3)))
		for i := 0; i < 2+s.rng.IntN(5); i++ {
			s.tick()
			s.read(l.id)
		}
		s.heal()
		s.run(100 + s.rng.IntN(100))
		s.finish()
	})
}

// Under partition-then-heal, a deposed leader's late ReadState is
// ignored: the old leader's traffic is held while it is cut off, the
// majority elects a new leader and acknowledges writes, then the held
// messages (heartbeat responses confirming old rounds, read index
// responses) are delivered late.
func TestReadIndexSim_DeposedLeaderLateReadState(t *testing.T) {
	runSims(t, func(s *sim) {
		l := s.stableLeader()
		s.run(10 + s.rng.IntN(30))
		s.hold = true
		for i := 0; i < 3; i++ {
			s.read(l.id)
		}
		nl := s.newLeaderAmongOthers(l.id)
		for i := 0; i < 5; i++ {
			s.write()
		}
		s.until("the new leader acknowledges a write", func() bool { return s.ackCount > 0 && s.node(nl.id).lead == nl.id })
		for i := 0; i < 3; i++ {
			s.read(l.id)
		}
		s.heal()
		s.run(100 + s.rng.IntN(100))
		s.finish()
	})
}

// ReadOnlySafe (quorum-confirmed ReadIndex) stays the configured option,
// with CheckQuorum and PreVote, whatever the other settings.
func TestReadIndex_ConfiguredReadOnlySafe(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < simIterations; i++ {
		cfg := Config{
			ID:             uint64(1 + rng.IntN(7)),
			DataDir:        "unused",
			ElectionTicks:  2 + rng.IntN(20),
			HeartbeatTicks: 1,
			TickInterval:   time.Duration(1+rng.IntN(200)) * time.Millisecond,
		}.withDefaults()
		rc := raftConfig(cfg, raft.NewMemoryStorage(), raftLogger{l: slog.New(slog.DiscardHandler)})
		if rc.ReadOnlyOption != raft.ReadOnlySafe || !rc.CheckQuorum || !rc.PreVote {
			t.Fatalf("raft config %+v: want ReadOnlySafe with CheckQuorum and PreVote", rc)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("config %+v: %v", cfg, err)
		}
	}
}
