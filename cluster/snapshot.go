package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"rdb/db"
	"rdb/internal/failpoint"
	"rdb/snapshot"
)

// Snapshots in rdb (see also doc.go):
//
//   - Compaction copies nothing: the live database, which stores its
//     applied index, already is the state up to that index. The loop makes
//     the database durable (db.Sync), records a raft snapshot with no data
//     at the applied index, and drops the log before applied-trailing.
//   - A follower that needs entries the leader no longer has gets a
//     MsgSnap. The loop hands it to a sender goroutine, which takes a
//     point-in-time copy of the database (or reuses a recent one) into the
//     snapshot store and streams it through Transport.SendSnapshot. The
//     copy may be newer than the MsgSnap's index; the index stored inside
//     the database is the truth, and the entries at or below it are
//     skipped on apply.
//   - The receiver verifies the file (db.VerifyFile), then steps the
//     MsgSnap into raft; when raft's Ready carries the snapshot, the
//     database is swapped in first and the WAL records the snapshot
//     after, so a crash between the two leaves a database that is ahead
//     of the log, never behind it.

// snapReport tells the loop how a snapshot transfer ended.
type snapReport struct {
	to uint64
	ok bool
}

// pendingSnapshot is a verified, received file waiting for raft to accept
// the MsgSnap it came with.
type pendingSnapshot struct {
	index   uint64 // of the MsgSnap's raft snapshot
	applied uint64 // stored inside the file
	path    string
}

// snapshotState is the snapshot machinery shared by the loop and the
// sender goroutines.
type snapshotState struct {
	store *snapshot.Store

	copyMu sync.Mutex // serializes making database copies

	mu      sync.Mutex // guards pending
	pending *pendingSnapshot

	reports chan snapReport
	wg      sync.WaitGroup // sender goroutines
}

func (n *Node) incomingDir() string { return filepath.Join(n.cfg.DataDir, "snapshots", "incoming") }

// IncomingSnapshotDir implements Stepper.
func (n *Node) IncomingSnapshotDir() string { return n.incomingDir() }

// maybeCompact compacts the log when enough has been applied since the
// last compaction. Called by the loop after apply.
func (n *Node) maybeCompact() error {
	applied, _ := n.applied.get()
	last := n.store.snapshot.GetIndex()
	if applied <= last {
		return nil
	}
	if applied-last < n.cfg.SnapshotEntries && n.bytesSinceSnap < n.cfg.SnapshotLogBytes && !n.compactNow {
		return nil
	}
	// The database can be ahead of the log: after a crash between
	// swapping in a received snapshot and recording it in the WAL, or a
	// power loss that lost a commit-only HardState update. The raft
	// snapshot must name an entry this log holds as committed.
	if hs, _, err := n.store.storage.InitialState(); err == nil && hs.GetCommit() < applied {
		applied = hs.GetCommit()
		if applied <= last {
			return nil
		}
	}
	n.compactNow = false
	// The state the dropped entries produced must be on disk first:
	// SQLite runs with synchronous=NORMAL (no fsync per commit).
	if err := n.db.Sync(); err != nil {
		return fmt.Errorf("compact at %d: %w", applied, err)
	}
	compactTo := uint64(0)
	if applied > n.cfg.SnapshotTrailing {
		compactTo = applied - n.cfg.SnapshotTrailing
	}
	// Keep the trailing entries within a byte budget too: large entries
	// would otherwise hold much memory.
	if first, _ := n.store.storage.FirstIndex(); compactTo < applied {
		lo := max(compactTo+1, first)
		if lo <= applied {
			if kept, err := n.store.storage.Entries(lo, applied+1, n.cfg.SnapshotLogBytes/2); err == nil && uint64(len(kept)) < applied+1-lo {
				compactTo = applied - uint64(len(kept))
			}
		}
	}
	if err := n.store.compact(applied, proto.Clone(n.confState).(*raftpb.ConfState), compactTo); err != nil {
		return fmt.Errorf("compact at %d: %w", applied, err)
	}
	n.bytesSinceSnap = 0
	n.metrics.compactions.Inc()
	n.log.Info("log compacted", "snapshot_index", applied, "first_index", compactTo+1)
	return nil
}

// reportSnapshotFailed tells raft, from the loop, that the snapshot for
// peer to was not delivered.
func (n *Node) reportSnapshotFailed(ctx context.Context, to uint64) {
	n.snap.wg.Add(1)
	go func() {
		defer n.snap.wg.Done()
		select {
		case n.snap.reports <- snapReport{to: to, ok: false}:
		case <-ctx.Done():
		}
	}()
}

// sendSnapshot starts a goroutine that streams a database copy for the
// MsgSnap m. Called by the loop.
func (n *Node) sendSnapshot(ctx context.Context, m *raftpb.Message) {
	n.snap.wg.Add(1)
	go func() {
		defer n.snap.wg.Done()
		err := n.streamSnapshot(ctx, m)
		if err != nil && ctx.Err() == nil {
			n.log.Warn("snapshot send failed", "to", m.GetTo(), "err", err)
		} else if err == nil {
			n.log.Info("snapshot sent", "to", m.GetTo(), "index", m.GetSnapshot().GetMetadata().GetIndex())
		}
		outcome := "ok"
		if err != nil {
			outcome = "failed"
		}
		n.metrics.snapshotsSent.WithLabelValues(outcome).Inc()
		select {
		case n.snap.reports <- snapReport{to: m.GetTo(), ok: err == nil}:
		case <-ctx.Done():
		}
	}()
}

func (n *Node) streamSnapshot(ctx context.Context, m *raftpb.Message) error {
	meta, path, err := n.snapshotFile(ctx, m.GetSnapshot().GetMetadata())
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", meta, err)
	}
	defer f.Close()
	return n.transport.SendSnapshot(ctx, m, f, meta.Size)
}

// snapshotFile returns a database copy at or after md's index: the newest
// one in the store if it is recent enough, otherwise a new one.
func (n *Node) snapshotFile(ctx context.Context, md *raftpb.SnapshotMetadata) (snapshot.Meta, string, error) {
	n.snap.copyMu.Lock()
	defer n.snap.copyMu.Unlock()
	if meta, path, err := n.snap.store.Newest(); err == nil && meta.Index >= md.GetIndex() {
		// The stream's checksum is computed from the bytes sent, so a
		// file damaged at rest would reach the follower intact-looking:
		// check it against the hash recorded when it was stored.
		verr := n.snap.store.Verify(meta)
		if verr == nil {
			return meta, path, nil
		}
		n.log.Error("stored snapshot is damaged; discarding it and copying the database again", "snapshot", meta.String(), "err", verr)
		if err := n.snap.store.Discard(meta); err != nil {
			return snapshot.Meta{}, "", err
		}
	}
	tmp := filepath.Join(n.snap.store.Dir(), fmt.Sprintf("copy-%d.db", n.nextRequestID()))
	applied, err := n.db.Snapshot(ctx, tmp)
	if err != nil {
		os.Remove(tmp)
		return snapshot.Meta{}, "", fmt.Errorf("copy database: %w", err)
	}
	term, _ := n.store.storage.Term(applied)
	failpoint.Inject(failpoint.SnapshotBeforeSave)
	meta, err := n.snap.store.Import(snapshot.Meta{Index: applied, Term: term, ConfState: md.GetConfState()}, tmp)
	os.Remove(tmp)
	if err != nil {
		return snapshot.Meta{}, "", fmt.Errorf("store snapshot: %w", err)
	}
	failpoint.Inject(failpoint.SnapshotAfterSave)
	if err := n.snap.store.Reap(n.cfg.SnapshotsKept); err != nil {
		n.log.Warn("reap snapshots", "err", err)
	}
	return meta, n.snap.store.Path(meta), nil
}

// ReceiveSnapshot implements Stepper: it verifies a received database
// file and steps its MsgSnap into raft.
func (n *Node) ReceiveSnapshot(ctx context.Context, m *raftpb.Message, path string) error {
	applied, err := db.VerifyFile(ctx, path)
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("received snapshot: %w", err)
	}
	idx := m.GetSnapshot().GetMetadata().GetIndex()
	if applied < idx {
		os.Remove(path)
		return fmt.Errorf("received snapshot holds index %d, below its raft index %d", applied, idx)
	}
	n.snap.mu.Lock()
	if old := n.snap.pending; old != nil && old.path != path {
		os.Remove(old.path)
	}
	n.snap.pending = &pendingSnapshot{index: idx, applied: applied, path: path}
	n.snap.mu.Unlock()
	return n.Step(ctx, m)
}

// installSnapshot swaps in the database received for snap, then records
// the snapshot in the log. Called by the loop when a Ready carries one.
func (n *Node) installSnapshot(ctx context.Context, snap *raftpb.Snapshot) error {
	idx := snap.GetMetadata().GetIndex()
	n.snap.mu.Lock()
	p := n.snap.pending
	n.snap.pending = nil
	n.snap.mu.Unlock()
	if p == nil || p.index != idx {
		return fmt.Errorf("raft accepted snapshot %d but no database file was received for it", idx)
	}
	// The database first: if we crash after this, the database is ahead
	// of the log (entries get skipped), never behind it.
	failpoint.Inject(failpoint.SnapshotBeforeInstall)
	if err := n.db.Install(ctx, p.path); err != nil {
		return fmt.Errorf("install snapshot %d: %w", idx, err)
	}
	failpoint.Inject(failpoint.SnapshotAfterInstall)
	if err := n.store.saveSnapshot(snap); err != nil {
		return fmt.Errorf("install snapshot %d: %w", idx, err)
	}
	n.confState = proto.Clone(snap.GetMetadata().GetConfState()).(*raftpb.ConfState)
	if err := n.reloadMembers(ctx); err != nil {
		return err
	}
	n.forgetReadded()
	applied, err := n.db.AppliedIndex(ctx)
	if err != nil {
		return fmt.Errorf("install snapshot %d: %w", idx, err)
	}
	n.applied.set(applied)
	n.bytesSinceSnap = 0
	n.metrics.snapshotsIn.Inc()
	n.log.Info("installed snapshot", "raft_index", idx, "applied_index", applied)
	return nil
}

// reloadMembers replaces the member table by the database's.
func (n *Node) reloadMembers(ctx context.Context) error {
	members, err := n.db.Members(ctx)
	if err != nil {
		return fmt.Errorf("read members: %w", err)
	}
	for _, m := range members {
		n.setMember(m)
	}
	return nil
}

// recoverDatabase handles a database that is behind the log's snapshot
// (lost or replaced): it installs the newest stored snapshot file that
// covers the snapshot, or fails with a clear error.
func (n *Node) recoverDatabase(ctx context.Context, dbApplied uint64) (uint64, error) {
	need := n.store.snapshot.GetIndex()
	meta, path, err := n.snap.store.Newest()
	if err != nil && !errors.Is(err, snapshot.ErrNotFound) {
		return 0, fmt.Errorf("database at index %d is behind the log's snapshot %d: %w", dbApplied, need, err)
	}
	if err != nil || meta.Index < need {
		return 0, fmt.Errorf("database at index %d is behind the log's snapshot %d and no snapshot file covers it: "+
			"the database file was lost or replaced; remove the data directory and rejoin the node", dbApplied, need)
	}
	if err := n.snap.store.Verify(meta); err != nil {
		return 0, fmt.Errorf("recover from snapshot %s: %w", meta, err)
	}
	tmp := filepath.Join(n.incomingDir(), fmt.Sprintf("recover-%d.db", meta.Index))
	if err := copyFile(path, tmp); err != nil {
		return 0, fmt.Errorf("recover from snapshot %s: %w", meta, err)
	}
	if err := n.db.Install(ctx, tmp); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("recover from snapshot %s: %w", meta, err)
	}
	applied, err := n.db.AppliedIndex(ctx)
	if err != nil {
		return 0, err
	}
	n.log.Warn("database was behind the log: recovered from a snapshot file", "snapshot", meta.String(), "applied_index", applied)
	return applied, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := out.ReadFrom(in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	return out.Close()
}

// reportSnapshot tells raft how a transfer ended. Called by the loop.
func (n *Node) reportSnapshot(r snapReport) {
	status := raft.SnapshotFinish
	if !r.ok {
		status = raft.SnapshotFailure
	}
	n.rn.ReportSnapshot(r.to, status)
}
