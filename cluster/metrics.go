package cluster

import (
	"github.com/prometheus/client_golang/prometheus"

	"rdb/db"
)

// metrics are the node's Prometheus collectors (namespace rdb, subsystem
// cluster). They are registered on the Registerer given in Config; with
// none they are still updated but not exported.
type metrics struct {
	proposals *prometheus.CounterVec
	// proposed and dropped are the proposals counter's two series,
	// resolved once: the loop updates them for every proposal.
	proposed, dropped prometheus.Counter
	walSave           prometheus.Histogram
	apply             prometheus.Histogram
	commit            prometheus.Histogram
	applyEntries      prometheus.Counter
	readIndex         prometheus.Histogram
	readDirect        readDirectMetrics
	leaderChanges     prometheus.Counter
	snapshotsSent     *prometheus.CounterVec
	snapshotsIn       prometheus.Counter
	compactions       prometheus.Counter
}

func newMetrics(n *Node, reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "rdb", "cluster"
	lat := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	m := &metrics{
		proposals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "proposals_total",
			Help: "Proposals made by this node, by outcome."}, []string{"outcome"}),
		walSave: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "wal_save_seconds",
			Help: "Time to append a Ready's entries and HardState to the WAL, fsync included.", Buckets: lat}),
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "apply_seconds",
			Help: "Time to apply a Ready's committed entries to SQLite.", Buckets: lat}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "commit_seconds",
			Help: "Time from a write's proposal on this node (the leader) to its commit, when it is about to be applied: own WAL save and followers' acknowledgements.", Buckets: lat}),
		applyEntries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "applied_entries_total",
			Help: "Committed entries applied."}),
		readIndex: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "read_index_seconds",
			Help: "Time for a linearizable read barrier (ReadIndex round).", Buckets: lat}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "leader_changes_total",
			Help: "Leader changes seen by this node."}),
		snapshotsSent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "snapshots_sent_total",
			Help: "Snapshots sent to followers, by outcome."}, []string{"outcome"}),
		snapshotsIn: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "snapshots_installed_total",
			Help: "Snapshots received and installed."}),
		compactions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "log_compactions_total",
			Help: "Log compactions."}),
	}
	readDirect := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "read_index_direct_total",
		Help: "One-round ReadIndex requests (a follower asks its leader directly; see docs/design.md): sent by this follower, answered or declined (left to raft's heartbeat round) by this leader."},
		[]string{"event"})
	m.readDirect = readDirectMetrics{vec: readDirect, sent: readDirect.WithLabelValues("sent"),
		answered: readDirect.WithLabelValues("answered"), declined: readDirect.WithLabelValues("declined")}
	m.proposed = m.proposals.WithLabelValues("proposed")
	m.dropped = m.proposals.WithLabelValues("dropped")
	if reg == nil {
		return m, nil
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, f)
	}
	readSnapshots := func(event string, f func(db.ReadSnapshotStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "read_snapshots_total",
			Help:        "Read transactions of the read pool: begun, reused by a later query (nothing written since), released (stale, ended on an idle reader after writes).",
			ConstLabels: prometheus.Labels{"event": event}},
			func() float64 { return float64(f(n.db.ReadSnapshots())) })
	}
	for _, c := range []prometheus.Collector{
		m.proposals, m.walSave, m.apply, m.commit, m.applyEntries, m.readIndex, m.readDirect.vec, m.leaderChanges, m.snapshotsSent, m.snapshotsIn, m.compactions,
		gauge("applied_index", "Highest index applied to the database.", func() float64 { return float64(n.AppliedIndex()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "read_index_rounds_total",
			Help: "ReadIndex rounds started by this node (concurrent linearizable reads share one; retries count)."},
			func() float64 { return float64(n.reads.rounds.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "read_interrupts_total",
			Help: "Reads whose deadline passed or whose caller went away, interrupted by the database's watchdog (those the progress handler ended first are not counted)."},
			func() float64 { return float64(n.db.InterruptedReads()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "apply_careful_redos_total",
			Help: "Applied batches rolled back and redone with a savepoint per statement because a write statement failed."},
			func() float64 { return float64(n.db.CarefulRedos()) }),
		readSnapshots("begun", func(s db.ReadSnapshotStats) uint64 { return s.Begun }),
		readSnapshots("reused", func(s db.ReadSnapshotStats) uint64 { return s.Reused }),
		readSnapshots("released", func(s db.ReadSnapshotStats) uint64 { return s.Released }),
		gauge("commit_index", "Commit index as last persisted.", func() float64 { return float64(n.commit.Load()) }),
		gauge("term", "Current raft term.", func() float64 { return float64(n.term.Load()) }),
		gauge("is_leader", "1 when this node is the leader.", func() float64 {
			if n.IsLeader() {
				return 1
			}
			return 0
		}),
		gauge("has_leader", "1 when this node knows a leader.", func() float64 {
			if n.leader.Load() != 0 {
				return 1
			}
			return 0
		}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// readDirectMetrics count one-round ReadIndex requests by event.
type readDirectMetrics struct {
	vec                      *prometheus.CounterVec
	sent, answered, declined prometheus.Counter
}
