package cluster

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"rdb/command"
	"rdb/db"
	"rdb/snapshot"
)

// Node is one rdb cluster member: a raft node whose state machine is a
// db.DB. Create it with New, then call Run.
type Node struct {
	cfg       Config
	db        *db.DB
	transport Transport
	log       *slog.Logger

	// Owned by the loop goroutine once Run starts.
	rn    *raft.RawNode
	store *logStore
	reads *readTracker

	propc chan proposal
	// propBatch is the loop's buffer for the proposals of one round.
	propBatch []proposal
	recvc     chan *raftpb.Message
	readc     chan *readRequest
	statusc   chan chan Status
	unreach   chan uint64
	stopped   chan struct{} // closed when Run returns

	waiters *waiters
	applied *appliedNotifier
	metrics *metrics
	reqID   atomic.Uint64

	// Published by the loop for other goroutines.
	leader       atomic.Uint64
	term         atomic.Uint64
	commit       atomic.Uint64
	role         atomic.Value // string
	leaderSeenAt atomic.Int64 // unix nanos of the last message from a leader

	// Owned by the loop goroutine: the membership as of the applied index,
	// and the bytes applied since the last compaction.
	confState      *raftpb.ConfState
	bytesSinceSnap uint64
	snap           snapshotState
	confPending    *confRequest
	// wasMember: this node has been in the configuration (so leaving it
	// means it was removed, not that it has yet to be added).
	wasMember bool
	// lastSelfRemoval is the index of the last applied removal of this
	// node; joinIndex (set by SetJoinIndex) the index that added it when
	// it joined: removals before it belong to an earlier node with the
	// same id.
	lastSelfRemoval uint64
	// compactNow makes the next maybeCompact compact regardless of the
	// thresholds (a snapshot predating a new member was asked for, or a
	// learner was added after the last snapshot); loop goroutine only.
	compactNow bool
	// beyondLog counts heartbeats in a row that claimed a commit beyond
	// this node's log (see step); loop goroutine only.
	beyondLog int
	// lastWindowActive (loop-owned, leader only) holds the peers that
	// were active in the last complete check-quorum window.
	lastWindowActive map[uint64]bool
	joinIndex        atomic.Uint64
	joinPending      atomic.Bool // joining, join index not known yet

	peerc     chan *command.Member
	announced map[uint64]*command.Member // loop-owned: addresses peers announced
	confc     chan *confRequest
	transferc chan uint64
	removedc  chan struct{}

	membersMu sync.RWMutex // guards members
	members   map[uint64]*command.Member
	// removedIDs are nodes removed from the cluster; their messages are
	// refused so that they learn it.
	removedIDs map[uint64]bool

	runOnce sync.Once
}

// proposal is a command for the loop to propose.
type proposal struct {
	data      []byte
	requestID uint64 // 0: nobody waits
}

// New validates cfg and opens the raft log. It does not start goroutines.
// The caller keeps ownership of database and transport, and closes the
// database after Run has returned.
func New(cfg Config, database *db.DB, transport Transport) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Join && cfg.JoinIndex > 0 {
		if err := writeJoinRecord(cfg.DataDir, joinRecord{Index: cfg.JoinIndex, Peers: cfg.JoinPeers}); err != nil {
			return nil, err
		}
	}
	// The database's applied index bounds what a torn-tail repair of
	// the WAL may cut: applied entries were fsynced in the log first.
	dbApplied, err := database.AppliedIndex(context.Background())
	if err != nil {
		return nil, fmt.Errorf("read applied index: %w", err)
	}
	if err := CheckLogPresent(context.Background(), cfg.DataDir, database); err != nil {
		return nil, err
	}
	store, err := openLogStore(cfg.DataDir, cfg.ID, cfg.clusterID(), cfg.ClusterID, dbApplied)
	if err != nil {
		return nil, err
	}
	if store.repaired {
		cfg.Logger.Warn("cut a torn record off the end of the raft log (a write interrupted by a crash or a full disk); the damaged segment is kept as *.wal.broken",
			"node_id", cfg.ID, "dir", store.dir)
	}
	n := &Node{
		cfg:       cfg,
		db:        database,
		transport: transport,
		log:       cfg.Logger.With("component", "cluster", "node_id", cfg.ID),
		store:     store,
		reads:     newReadTracker(rand.Uint64() >> 1),
		propc:     make(chan proposal, 4096),
		recvc:     make(chan *raftpb.Message, 4096),
		readc:     make(chan *readRequest, 4096),
		statusc:   make(chan chan Status),
		unreach:   make(chan uint64, 64),
		stopped:   make(chan struct{}),
		waiters:   newWaiters(),
		members:   make(map[uint64]*command.Member),
		confc:     make(chan *confRequest),
		peerc:     make(chan *command.Member, 64),
		announced: make(map[uint64]*command.Member),
		transferc: make(chan uint64),
		removedc:  make(chan struct{}, 1),

		removedIDs: make(map[uint64]bool),
	}
	if n.metrics, err = newMetrics(n, cfg.Registerer); err != nil {
		store.close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	n.reqID.Store(rand.Uint64() >> 1)
	n.role.Store("follower")
	n.confState = proto.Clone(store.snapshot.GetConfState()).(*raftpb.ConfState)
	if n.confState == nil {
		n.confState = &raftpb.ConfState{}
	}
	n.snap.reports = make(chan snapReport, 16)
	snapStore, err := snapshot.Open(filepath.Join(cfg.DataDir, "snapshots"))
	if err != nil {
		store.close()
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	n.snap.store = snapStore
	// Half-received snapshots, uploads and backup copies from before a
	// crash are useless.
	for _, dir := range []string{n.incomingDir(), filepath.Join(cfg.DataDir, "uploads"), filepath.Join(cfg.DataDir, "backups")} {
		if err := os.RemoveAll(dir); err != nil {
			store.close()
			return nil, fmt.Errorf("clean %s: %w", dir, err)
		}
	}
	if err := os.MkdirAll(n.incomingDir(), 0o750); err != nil {
		store.close()
		return nil, fmt.Errorf("create incoming snapshot dir: %w", err)
	}

	ctx := context.Background()
	applied, err := database.AppliedIndex(ctx)
	if err != nil {
		store.close()
		return nil, fmt.Errorf("read applied index: %w", err)
	}
	if applied < store.snapshot.GetIndex() {
		if applied, err = n.recoverDatabase(ctx, applied); err != nil {
			store.close()
			return nil, err
		}
	}
	n.applied = newAppliedNotifier(applied)
	members, err := database.Members(ctx)
	if err != nil {
		store.close()
		return nil, fmt.Errorf("read members: %w", err)
	}
	for _, m := range members {
		n.members[m.GetId()] = m
		if m.GetPeerAddr() != "" && m.GetId() != cfg.ID {
			transport.SetPeer(m.GetId(), m.GetPeerAddr())
		}
	}
	for id, addr := range cfg.InitialCluster {
		if _, known := n.members[id]; !known {
			n.members[id] = &command.Member{Id: id, PeerAddr: addr}
			if id != cfg.ID {
				transport.SetPeer(id, addr)
			}
		}
	}

	rc := raftConfig(cfg, store.storage, raftLogger{l: n.log.With("component", "raft")})
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		store.close()
		return nil, fmt.Errorf("raft: %w", err)
	}
	if !store.existing && cfg.Join {
		n.joinPending.Store(true)
		n.log.Info("new node waiting to be added to an existing cluster")
	} else if !store.existing {
		if len(cfg.InitialCluster) == 0 {
			store.close()
			return nil, fmt.Errorf("cluster: new data directory and no initial cluster")
		}
		peers := make([]raft.Peer, 0, len(cfg.InitialCluster))
		for id, addr := range cfg.InitialCluster {
			ctxBytes, err := marshalConfContext(&command.ConfContext{Member: &command.Member{Id: id, PeerAddr: addr}})
			if err != nil {
				store.close()
				return nil, err
			}
			peers = append(peers, raft.Peer{ID: id, Context: ctxBytes})
		}
		sortPeers(peers)
		if err := rn.Bootstrap(peers); err != nil {
			store.close()
			return nil, fmt.Errorf("raft bootstrap: %w", err)
		}
		n.log.Info("bootstrapped new cluster", "members", len(peers))
	} else {
		if inConf(n.confState, cfg.ID) {
			n.wasMember = true
		}
		// A node that joined knows its addition and its peers from its
		// join record until the log has brought the member table.
		rec, joined, err := readJoinRecord(cfg.DataDir)
		if err != nil {
			store.close()
			return nil, err
		}
		if joined {
			n.joinIndex.Store(rec.Index)
			for id, addr := range rec.Peers {
				if _, known := n.members[id]; !known && id != cfg.ID && addr != "" {
					transport.SetPeer(id, addr)
				}
			}
		}
		// A snapshot older than this node's addition does not list it.
		addedLater := joined && store.snapshot.GetIndex() < rec.Index
		if cs := n.confState; len(cs.GetVoters())+len(cs.GetLearners()) > 0 && !inConf(cs, cfg.ID) && !addedLater {
			store.close()
			return nil, fmt.Errorf("%w (node %d is not in the membership of its own log)", ErrRemoved, cfg.ID)
		}
		n.log.Info("restarting from log", "applied_index", applied)
	}
	n.rn = rn
	return n, nil
}

// ID returns this node's raft id.
func (n *Node) ID() uint64 { return n.cfg.ID }

// Run drives the node until ctx is cancelled or a fatal error (an I/O
// failure of the log or the database) stops it. It closes the raft log
// before returning. Run may be called once.
func (n *Node) Run(ctx context.Context) error {
	err := ErrStopped
	n.runOnce.Do(func() {
		defer close(n.stopped)
		ctx, cancel := context.WithCancel(ctx)
		err = n.loop(ctx)
		cancel()
		n.snap.wg.Wait() // snapshot senders
		n.waiters.failAll(ErrStopped)
		n.reads.failAll(ErrStopped)
		if cerr := n.store.close(); cerr != nil && err == nil {
			err = fmt.Errorf("close wal: %w", cerr)
		}
	})
	return err
}

func inConf(cs *raftpb.ConfState, id uint64) bool {
	for _, list := range [][]uint64{cs.GetVoters(), cs.GetLearners(), cs.GetVotersOutgoing(), cs.GetLearnersNext()} {
		for _, v := range list {
			if v == id {
				return true
			}
		}
	}
	return false
}

// Step hands a message received from a peer to the loop. The leader,
// once it has applied everything it knows to be committed, refuses
// messages from removed members with ErrRemovedMember, so they stop.
// Other nodes never judge: a follower that lags (a node that rejoined
// with a reused id and replays the log, for example) may not have applied
// the re-addition of an id it saw removed, and would stop a member in
// good standing, even the leader (chaos finding 13).
func (n *Node) Step(ctx context.Context, m *raftpb.Message) error {
	if n.IsLeader() && n.isRemovedID(m.GetFrom()) {
		if applied, _ := n.applied.get(); applied >= n.commit.Load() {
			return ErrRemovedMember
		}
	}
	select {
	case n.recvc <- m:
		return nil
	case <-n.stopped:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ReportUnreachable tells raft that a peer could not be reached, so the
// leader probes it instead of streaming to it.
func (n *Node) ReportUnreachable(id uint64) {
	select {
	case n.unreach <- id:
	default:
	}
}

// Leader returns the current leader's id and client address ("" when not
// known).
func (n *Node) Leader() (uint64, string) {
	id := n.leader.Load()
	if id == 0 {
		return 0, ""
	}
	n.membersMu.RLock()
	defer n.membersMu.RUnlock()
	if m, ok := n.members[id]; ok {
		return id, m.GetClientAddr()
	}
	return id, ""
}

// IsLeader reports whether this node believes it is the leader.
func (n *Node) IsLeader() bool { return n.leader.Load() == n.cfg.ID }

// AppliedIndex returns the highest index applied to the database.
func (n *Node) AppliedIndex() uint64 {
	idx, _ := n.applied.get()
	return idx
}

// nextRequestID returns a request id unique among this node's proposals.
func (n *Node) nextRequestID() uint64 { return n.reqID.Add(1) }

func sortPeers(p []raft.Peer) {
	slices.SortFunc(p, func(a, b raft.Peer) int { return cmp.Compare(a.ID, b.ID) })
}

// withWriteDeadline applies the configured write timeout to a context
// without a deadline. A context with one is returned as it is (a derived
// context per write was 10% of the leader's allocations at 64 concurrent
// inserts).
func (n *Node) withWriteDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, n.cfg.WriteTimeout)
}

// leaderSeen records contact with a leader, for freshness-bounded reads.
func (n *Node) leaderSeen(t time.Time) { n.leaderSeenAt.Store(t.UnixNano()) }

// raftConfig is the raft configuration of a node. Linearizable reads
// depend on ReadOnlySafe (a quorum confirms every ReadIndex round; the
// lease-based option trusts clocks), and CheckQuorum makes a leader that
// lost its quorum step down.
func raftConfig(cfg Config, storage raft.Storage, logger raft.Logger) *raft.Config {
	return &raft.Config{
		ID:                        cfg.ID,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             cfg.HeartbeatTicks,
		Storage:                   storage,
		Applied:                   0, // replay every committed entry: see doc.go
		MaxSizePerMsg:             cfg.MaxSizePerMsg,
		MaxCommittedSizePerReady:  cfg.MaxCommittedSizePerReady,
		MaxUncommittedEntriesSize: cfg.MaxUncommittedSize,
		MaxInflightMsgs:           cfg.MaxInflightMsgs,
		MaxInflightBytes:          cfg.MaxInflightBytes,
		CheckQuorum:               true,
		PreVote:                   true,
		StepDownOnRemoval:         true,
		// Followers do not forward proposals: the rpc layer forwards
		// writes to the leader, so a write the leader refuses (during a
		// leadership transfer, for instance) is known not to be applied
		// instead of vanishing silently.
		DisableProposalForwarding: true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		Logger:                    logger,
	}
}
