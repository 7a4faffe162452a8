package cluster

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"rdb/internal/clock"
)

// Defaults for Config. The raft settings follow the measurements recorded
// in ../shared/notes/dependencies.md and docs/benchmarks.md: a 50 ms tick
// with a 10-tick election timeout brings writes back 0.48-0.99 s after the
// leader is killed (100 ms ticks: 1.1-2.1 s), and the heartbeat traffic
// it costs is negligible next to the writes. 1 MiB messages with 256 in
// flight (and at most DefaultMaxInflightBytes of entries in flight to one
// follower) did as well as any other setting on loopback and at 10 and
// 50 ms round trips, where 1 or 4 in flight, or 16 KiB messages with 4 in
// flight, lost throughput (docs/benchmarks.md, "Raft's message size and
// messages in flight").
const (
	DefaultTickInterval       = 50 * time.Millisecond
	DefaultElectionTicks      = 10
	DefaultHeartbeatTicks     = 1
	DefaultMaxSizePerMsg      = 1 << 20
	DefaultMaxInflightMsgs    = 256
	DefaultMaxUncommittedSize = 64 << 20
	DefaultMaxCommittedPerRdy = 32 << 20
	DefaultMaxProposalBytes   = 8 << 20
	DefaultWriteTimeout       = 10 * time.Second
	DefaultSnapshotEntries    = 10_000
	DefaultSnapshotTrailing   = 5_000
	DefaultSnapshotLogBytes   = 16 << 20
	DefaultMaxInflightBytes   = 16 << 20
	DefaultSnapshotsKept      = 2
)

// Bounds of the raft message settings (CheckMaxSizePerMsg,
// CheckMaxInflightMsgs). A MsgApp carries at most MaxSizePerMsg bytes of
// entries, or one entry when that entry alone is larger (up to
// MaxProposalBytes), so with MaxMaxSizePerMsg every MsgApp, with its own
// fields, stays well under MaxPeerMessageBytes. raft also wants
// MaxSizePerMsg at most MaxInflightBytes (it panics otherwise), which
// MaxMaxSizePerMsg meets with the default.
const (
	MinMaxSizePerMsg   = 4 << 10
	MaxMaxSizePerMsg   = DefaultMaxInflightBytes
	MaxMaxInflightMsgs = 1 << 16
)

// MaxPeerMessageBytes is the largest raft message a Transport must send
// and receive.
const MaxPeerMessageBytes = 64 << 20

// CheckMaxSizePerMsg reports whether n bytes is an accepted
// Config.MaxSizePerMsg.
func CheckMaxSizePerMsg(n uint64) error {
	if n < MinMaxSizePerMsg || n > MaxMaxSizePerMsg {
		return fmt.Errorf("must be %d to %d", MinMaxSizePerMsg, MaxMaxSizePerMsg)
	}
	return nil
}

// CheckMaxInflightMsgs reports whether n is an accepted
// Config.MaxInflightMsgs.
func CheckMaxInflightMsgs(n int) error {
	if n < 1 || n > MaxMaxInflightMsgs {
		return fmt.Errorf("must be 1 to %d", MaxMaxInflightMsgs)
	}
	return nil
}

// Config configures a Node. It is validated once by New and copied in.
type Config struct {
	// ID is this node's raft id, non-zero and unique in the cluster.
	ID uint64
	// DataDir holds the raft log (DataDir/raft).
	DataDir string
	// PeerAddr is the address other nodes dial for raft traffic.
	PeerAddr string
	// ClientAddr is the gRPC address clients and other nodes use for the
	// public API; it is replicated so every node can forward and report it.
	ClientAddr string
	// Join starts a new node (empty data directory) without bootstrapping:
	// it waits for an existing cluster to add it (see AddMember).
	Join bool
	// JoinIndex and JoinPeers, with Join, are what the cluster answered
	// when it added this node: the raft index of the conf change that
	// added it and the members' peer addresses by id. New records them
	// in the data directory before it creates the log, so that a node
	// restarting before it has caught up still reaches its peers and
	// does not take the removal of an earlier node with its id for its
	// own.
	JoinIndex uint64
	JoinPeers map[uint64]string
	// InitialCluster maps node ids to peer addresses for bootstrapping a
	// new cluster. It must contain ID. Ignored when the data directory
	// already holds a log.
	InitialCluster map[uint64]string
	// ClusterID is the id of the cluster a new log is created for: the
	// id a joining node learned from the member that added it. When 0, a
	// bootstrapping node derives it from InitialCluster and ClusterToken
	// (DeriveClusterID). On restart the id stored in the log is used and
	// a different non-zero ClusterID is refused.
	ClusterID uint64
	// ClusterToken tells apart clusters bootstrapped from identical
	// InitialCluster settings; every bootstrapping node uses the same.
	ClusterToken string

	// TickInterval is the raft tick; ElectionTicks and HeartbeatTicks are
	// counted in ticks.
	TickInterval   time.Duration
	ElectionTicks  int
	HeartbeatTicks int

	// MaxSizePerMsg, MaxInflightMsgs, MaxUncommittedSize and
	// MaxCommittedSizePerReady are passed to raft.
	MaxSizePerMsg            uint64
	MaxInflightMsgs          int
	MaxUncommittedSize       uint64
	MaxCommittedSizePerReady uint64
	// MaxInflightBytes bounds the bytes of unacknowledged entries in
	// flight to one follower (with MaxInflightMsgs), so memory stays
	// bounded when entries are large.
	MaxInflightBytes uint64
	// MaxProposalBytes bounds one encoded command.
	MaxProposalBytes int
	// WriteTimeout bounds a write or strong read whose context has no
	// deadline.
	WriteTimeout time.Duration

	// SnapshotEntries: compact the log after this many applied entries
	// since the last compaction.
	SnapshotEntries uint64
	// SnapshotLogBytes: compact the log once the entries applied since
	// the last compaction carry this many bytes.
	SnapshotLogBytes uint64
	// SnapshotTrailing entries are kept in the log behind a compaction,
	// so followers that are only a little behind catch up from the log;
	// at most SnapshotLogBytes/2 bytes of them, so memory stays bounded.
	SnapshotTrailing uint64
	// SnapshotsKept is how many snapshot files (database copies made to
	// catch followers up, or received) are kept in DataDir/snapshots.
	SnapshotsKept int

	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the node's Prometheus metrics; nil keeps them
	// unexported.
	Registerer prometheus.Registerer
	// OnLeadership, when set, is called on the raft goroutine whenever
	// this node becomes the leader (true) or stops being it (false). It
	// must return quickly and must not call the Node.
	OnLeadership func(leader bool)
	// Now returns the time stamped into commands; nil means clock.Now
	// (time.Now, or its test offset in a failpoints build).
	Now func() time.Time
}

// clusterID is the cluster id a new log is created with.
func (c Config) clusterID() uint64 {
	if c.ClusterID == 0 && !c.Join && len(c.InitialCluster) > 0 {
		return DeriveClusterID(c.InitialCluster, c.ClusterToken)
	}
	return c.ClusterID
}

func (c Config) withDefaults() Config {
	if c.TickInterval <= 0 {
		c.TickInterval = DefaultTickInterval
	}
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = DefaultElectionTicks
	}
	if c.HeartbeatTicks <= 0 {
		c.HeartbeatTicks = DefaultHeartbeatTicks
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = DefaultMaxSizePerMsg
	}
	if c.MaxInflightMsgs <= 0 {
		c.MaxInflightMsgs = DefaultMaxInflightMsgs
	}
	if c.MaxInflightBytes == 0 {
		c.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if c.MaxUncommittedSize == 0 {
		c.MaxUncommittedSize = DefaultMaxUncommittedSize
	}
	if c.MaxCommittedSizePerReady == 0 {
		c.MaxCommittedSizePerReady = DefaultMaxCommittedPerRdy
	}
	if c.MaxProposalBytes <= 0 {
		c.MaxProposalBytes = DefaultMaxProposalBytes
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = DefaultSnapshotEntries
	}
	if c.SnapshotLogBytes == 0 {
		c.SnapshotLogBytes = DefaultSnapshotLogBytes
	}
	if c.SnapshotTrailing == 0 {
		c.SnapshotTrailing = DefaultSnapshotTrailing
	}
	if c.SnapshotsKept <= 0 {
		c.SnapshotsKept = DefaultSnapshotsKept
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = clock.Now
	}
	return c
}

// Validate reports the first problem with the configuration.
func (c Config) Validate() error {
	if c.ID == 0 {
		return fmt.Errorf("cluster: node id must be non-zero")
	}
	if c.DataDir == "" {
		return fmt.Errorf("cluster: data directory is required")
	}
	if len(c.InitialCluster) > 0 && !c.Join {
		if _, ok := c.InitialCluster[c.ID]; !ok {
			return fmt.Errorf("cluster: initial cluster does not contain this node's id %d", c.ID)
		}
	}
	if err := CheckMaxSizePerMsg(c.MaxSizePerMsg); err != nil {
		return fmt.Errorf("cluster: raft message size %d bytes: %w", c.MaxSizePerMsg, err)
	}
	if err := CheckMaxInflightMsgs(c.MaxInflightMsgs); err != nil {
		return fmt.Errorf("cluster: %d raft messages in flight: %w", c.MaxInflightMsgs, err)
	}
	if c.MaxInflightBytes < c.MaxSizePerMsg {
		return fmt.Errorf("cluster: %d bytes in flight to a follower is less than one raft message (%d bytes)", c.MaxInflightBytes, c.MaxSizePerMsg)
	}
	if c.HeartbeatTicks >= c.ElectionTicks {
		return fmt.Errorf("cluster: heartbeat ticks (%d) must be below election ticks (%d)", c.HeartbeatTicks, c.ElectionTicks)
	}
	return nil
}
