package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"rdb/db"
	"rdb/internal/failpoint"
)

// logStore is the durable raft log: etcd's WAL on disk, mirrored into a
// raft.MemoryStorage that raft reads from. Only the loop goroutine uses
// it (MemoryStorage itself is also safe for concurrent readers).
type logStore struct {
	dir     string
	wal     *wal.WAL
	storage *raft.MemoryStorage
	// existing reports whether the log was found on disk (a restart).
	existing bool
	// repaired reports whether a torn record at the end of the WAL was
	// cut off when the log was opened.
	repaired bool
	// clusterID is the cluster the log belongs to (0: written before
	// cluster ids existed).
	clusterID uint64
	// snapshot is the newest raft snapshot (metadata only: the database
	// is the state), zero before the first compaction.
	snapshot *raftpb.SnapshotMetadata
}

// CheckLogPresent returns ErrLogMissing when dataDir holds no raft log
// but database is not a new node's: it has applied entries, or holds
// tables, views, indexes or triggers of its own (a SQLite file copied in).
// A new log would restart the indexes under the first (the apply would
// skip the new entries as already applied), and the second would be data
// the other replicas lack. A node must not start a new log, or ask to
// join a cluster, over such a database.
func CheckLogPresent(ctx context.Context, dataDir string, database *db.DB) error {
	dir := filepath.Join(dataDir, "raft")
	if wal.Exist(dir) {
		return nil
	}
	applied, err := database.AppliedIndex(ctx)
	if err != nil {
		return fmt.Errorf("read applied index: %w", err)
	}
	if applied > 0 {
		return fmt.Errorf("%w: the database in %s has applied raft entries up to index %d, but %s holds no log "+
			"(deleted, on a disk that was lost or is not mounted, or the database file was copied into a new data directory); "+
			"a new log would make the database skip writes as already applied. Wipe the data directory and add the node "+
			"again (README, \"Replacing a dead node\"), or load a database file into a running cluster with rdb restore",
			ErrLogMissing, dataDir, applied, dir)
	}
	objects, err := database.UserObjects(ctx)
	if err != nil {
		return err
	}
	if len(objects) > 0 {
		if len(objects) > 5 {
			objects = append(objects[:5:5], "...")
		}
		return fmt.Errorf("%w: the database in %s holds %s but %s holds no log: a node of a new cluster starts with an "+
			"empty database (the other nodes would not have this data). Start the cluster with empty data directories "+
			"and load a database file into it with rdb restore",
			ErrLogMissing, dataDir, strings.Join(objects, ", "), dir)
	}
	return nil
}

// walMetadata is stored in the WAL header to catch a data directory that
// belongs to another node.
type walMetadata struct {
	NodeID    uint64 `json:"node_id"`
	ClusterID uint64 `json:"cluster_id,omitempty"`
}

// openLogStore opens the WAL in dataDir/raft, or creates it for cluster
// clusterID. On restart it starts from the newest snapshot record in the
// WAL, so only the entries after it are read back; the cluster id is the
// one stored then, and an expected id (non-zero) that differs from it is
// refused. (A derived id is not checked on restart: --initial-cluster is
// ignored then, and may have been edited since.)
//
// minLast is an index the log must reach if a torn tail is repaired (the
// database's applied index: applied entries were durable in the log);
// a repair that would end the log before it is undone and refused with
// ErrLogDamaged. (A missing log under a database that is not new is
// refused before, by CheckLogPresent.)
func openLogStore(dataDir string, nodeID, clusterID, expectClusterID, minLast uint64) (*logStore, error) {
	dir := filepath.Join(dataDir, "raft")
	ls := &logStore{dir: dir, storage: raft.NewMemoryStorage(), snapshot: &raftpb.SnapshotMetadata{}}
	lg := zap.NewNop()
	if !wal.Exist(dir) {
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		meta, err := json.Marshal(walMetadata{NodeID: nodeID, ClusterID: clusterID})
		if err != nil {
			return nil, err
		}
		w, err := wal.Create(lg, dir, meta)
		if err != nil {
			return nil, fmt.Errorf("create wal: %w", err)
		}
		ls.wal = w
		ls.clusterID = clusterID
		ls.brokenNoSync()
		return ls, nil
	}
	snaps, err := wal.ValidSnapshotEntries(lg, dir)
	if err != nil {
		return nil, fmt.Errorf("scan wal snapshots in %s: %w", dir, err)
	}
	start := &walpb.Snapshot{}
	if len(snaps) > 0 {
		start = snaps[len(snaps)-1]
	}
	w, metaBytes, hs, ents, repaired, err := readWAL(lg, dir, start, minLast)
	if err != nil {
		return nil, err
	}
	ls.repaired = repaired
	var meta walMetadata
	if err := json.Unmarshal(metaBytes, &meta); err != nil {
		w.Close()
		return nil, fmt.Errorf("read wal metadata: %w", err)
	}
	if meta.NodeID != nodeID {
		w.Close()
		return nil, fmt.Errorf("%w: log of node %d, started as node %d", ErrWrongNode, meta.NodeID, nodeID)
	}
	if expectClusterID != 0 && meta.ClusterID != 0 && expectClusterID != meta.ClusterID {
		w.Close()
		return nil, fmt.Errorf("%w: the log belongs to cluster %s, the node was started for cluster %s",
			ErrWrongCluster, FormatClusterID(meta.ClusterID), FormatClusterID(expectClusterID))
	}
	ls.clusterID = meta.ClusterID
	if start.GetIndex() > 0 {
		sm := &raftpb.SnapshotMetadata{Index: start.Index, Term: start.Term, ConfState: start.GetConfState()}
		if sm.ConfState == nil {
			sm.ConfState = &raftpb.ConfState{}
		}
		if err := ls.storage.ApplySnapshot(&raftpb.Snapshot{Metadata: sm}); err != nil {
			w.Close()
			return nil, fmt.Errorf("restore snapshot %d: %w", start.GetIndex(), err)
		}
		ls.snapshot = sm
	}
	if err := ls.storage.SetHardState(hs); err != nil {
		w.Close()
		return nil, fmt.Errorf("restore hard state: %w", err)
	}
	if err := ls.storage.Append(ents); err != nil {
		w.Close()
		return nil, fmt.Errorf("restore entries: %w", err)
	}
	ls.wal = w
	ls.brokenNoSync()
	ls.existing = true
	return ls, nil
}

// readWAL opens the WAL at start and reads it. A torn record at the end
// of the last segment (a write cut short by a crash or a full disk:
// io.ErrUnexpectedEOF) is repaired once, as etcd's server does: the
// segment is copied to <name>.broken and truncated before the torn
// record, which was never acknowledged as durable. Any other damage (a
// CRC mismatch in an earlier record, a missing segment) is returned with
// the WAL directory named, and the node refuses to start.
//
// etcd's decoder also reports some damage in the middle of a segment as a
// torn write (a flipped bit in a record's length makes it run into the
// zeroed, preallocated tail). Cutting there would drop records that were
// durable and acknowledged: the node would forget entries and votes. So a
// repair whose log ends before minLast (entries known to have been
// durable) is undone, the segment restored, and ErrLogDamaged returned.
// Damage after the last applied entry cannot be told from a torn write
// this way; etcd's server has the same limit.
func readWAL(lg *zap.Logger, dir string, start *walpb.Snapshot, minLast uint64) (w *wal.WAL, meta []byte, hs *raftpb.HardState, ents []*raftpb.Entry, repaired bool, err error) {
	var segment string
	for {
		w, err = wal.Open(lg, dir, start)
		if err != nil {
			return nil, nil, nil, nil, repaired, fmt.Errorf("open wal %s: %w", dir, err)
		}
		meta, hs, ents, err = w.ReadAll()
		if err == nil {
			last := start.GetIndex()
			if len(ents) > 0 {
				last = ents[len(ents)-1].GetIndex()
			}
			if !repaired || last >= minLast {
				return w, meta, hs, ents, repaired, nil
			}
			w.Close()
			// Undo: put the damaged segment back for the operator.
			if rerr := os.Rename(segment+".broken", segment); rerr != nil {
				return nil, nil, nil, nil, false, fmt.Errorf("%w: restore %s: %v", ErrLogDamaged, segment, rerr)
			}
			return nil, nil, nil, nil, false, fmt.Errorf("%w: %s: a damaged record would end the log at index %d, but the database has applied %d, so records after it were durable; "+
				"the node cannot rebuild its log: wipe its data directory and add it again (README, \"Replacing a dead node\")", ErrLogDamaged, segment, last, minLast)
		}
		w.Close()
		if repaired || !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, nil, nil, repaired, fmt.Errorf("read wal %s: %w", dir, err)
		}
		names, lerr := walFiles(dir)
		if lerr != nil || len(names) == 0 {
			return nil, nil, nil, nil, false, fmt.Errorf("read wal %s: %w", dir, err)
		}
		segment = filepath.Join(dir, names[len(names)-1].name)
		if !wal.Repair(lg, dir) {
			return nil, nil, nil, nil, false, fmt.Errorf("read wal %s: torn tail could not be repaired: %w", dir, err)
		}
		repaired = true
	}
}

// brokenNoSync turns the WAL's fsync off in the deliberately broken
// build broken_earlyack; a no-op otherwise.
func (ls *logStore) brokenNoSync() {
	if brokenEarlyAck {
		ls.wal.SetUnsafeNoFsync()
	}
}

// sync fsyncs everything written to the WAL so far.
func (ls *logStore) sync() error {
	if err := ls.wal.Sync(); err != nil {
		return fmt.Errorf("wal sync: %w", err)
	}
	return nil
}

// save persists a Ready's HardState and entries with at most one fsync,
// then makes them visible to raft through the MemoryStorage.
func (ls *logStore) save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	durable := len(ents) > 0 || !raft.IsEmptyHardState(hs)
	if durable {
		failpoint.Inject(failpoint.RaftBeforeSave)
	}
	if err := ls.wal.Save(hs, ents); err != nil {
		return fmt.Errorf("wal save: %w", err)
	}
	if durable {
		failpoint.Inject(failpoint.RaftAfterSave)
	}
	if !raft.IsEmptyHardState(hs) {
		if err := ls.storage.SetHardState(hs); err != nil {
			return fmt.Errorf("set hard state: %w", err)
		}
	}
	if len(ents) > 0 {
		if err := ls.storage.Append(ents); err != nil {
			return fmt.Errorf("append entries: %w", err)
		}
	}
	return nil
}

// saveSnapshot records a snapshot received from the leader: in the WAL
// first (fsynced), then in the MemoryStorage, which drops the log before
// it.
func (ls *logStore) saveSnapshot(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	if err := ls.wal.SaveSnapshot(&walpb.Snapshot{Index: md.Index, Term: md.Term, ConfState: md.GetConfState()}); err != nil {
		return fmt.Errorf("wal save snapshot: %w", err)
	}
	if err := ls.storage.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("apply snapshot: %w", err)
	}
	ls.snapshot = md
	return ls.purge(md.GetIndex())
}

// compact records a snapshot at index (the database, already durable,
// holds the state up to it) and drops the log up to compactTo, keeping
// the entries after it for followers that are a little behind.
func (ls *logStore) compact(index uint64, cs *raftpb.ConfState, compactTo uint64) error {
	snap, err := ls.storage.CreateSnapshot(index, cs, nil)
	if err != nil {
		if err == raft.ErrSnapOutOfDate {
			return nil
		}
		return fmt.Errorf("create snapshot %d: %w", index, err)
	}
	md := snap.GetMetadata()
	if err := ls.wal.SaveSnapshot(&walpb.Snapshot{Index: md.Index, Term: md.Term, ConfState: md.GetConfState()}); err != nil {
		return fmt.Errorf("wal save snapshot: %w", err)
	}
	ls.snapshot = md
	// Crash window: the WAL holds the snapshot record, the old entries
	// and segments are still there.
	failpoint.Inject(failpoint.CompactBeforePurge)
	if first, _ := ls.storage.FirstIndex(); compactTo >= first {
		if err := ls.storage.Compact(compactTo); err != nil && err != raft.ErrCompacted {
			return fmt.Errorf("compact log to %d: %w", compactTo, err)
		}
	}
	// On restart the WAL is read from the newest snapshot record on, so
	// segments wholly before it are no longer needed.
	return ls.purge(md.GetIndex())
}

// purge deletes WAL segment files whose entries all precede index.
func (ls *logStore) purge(index uint64) error {
	if err := ls.wal.ReleaseLockTo(index); err != nil {
		return fmt.Errorf("wal release: %w", err)
	}
	names, err := walFiles(ls.dir)
	if err != nil {
		return err
	}
	// Keep the last segment that starts at or before index, and all later.
	keepFrom := 0
	for i, n := range names {
		if n.start <= index {
			keepFrom = i
		}
	}
	removed := false
	for _, n := range names[:keepFrom] {
		if err := os.Remove(filepath.Join(ls.dir, n.name)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("purge wal segment %s: %w", n.name, err)
		}
		removed = true
	}
	if removed {
		return syncDir(ls.dir)
	}
	return nil
}

type walFile struct {
	name       string
	seq, start uint64
}

// walFiles lists the WAL segments in order; names are seq-index.wal in
// hex, index being the first entry index the segment may hold.
func walFiles(dir string) ([]walFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list wal: %w", err)
	}
	var out []walFile
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".wal") {
			continue
		}
		var seq, start uint64
		if _, err := fmt.Sscanf(name, "%016x-%016x.wal", &seq, &start); err != nil {
			continue
		}
		out = append(out, walFile{name: name, seq: seq, start: start})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out, nil
}

// diskBytes returns the bytes the WAL uses on disk.
func (ls *logStore) diskBytes() uint64 {
	var total uint64
	entries, err := os.ReadDir(ls.dir)
	if err != nil {
		return 0
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && !info.IsDir() {
			total += uint64(info.Size())
		}
	}
	return total
}

func (ls *logStore) close() error {
	return ls.wal.Close()
}

// syncDir fsyncs a directory so that renames and removals in it are
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
