package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// logStore is the durable raft log: etcd's WAL on disk, mirrored into a
// raft.MemoryStorage that raft reads from. Only the loop goroutine uses
// it.
type logStore struct {
	dir     string
	wal     *wal.WAL
	storage *raft.MemoryStorage
	// existing reports whether the log was found on disk (a restart).
	existing bool
}

// walMetadata is stored in the WAL header to catch a data directory that
// belongs to another node.
type walMetadata struct {
	NodeID uint64 `json:"node_id"`
}

// openLogStore opens the WAL in dataDir/raft, or creates it.
func openLogStore(dataDir string, nodeID uint64) (*logStore, error) {
	dir := filepath.Join(dataDir, "raft")
	ls := &logStore{dir: dir, storage: raft.NewMemoryStorage()}
	lg := zap.NewNop()
	if !wal.Exist(dir) {
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		meta, err := json.Marshal(walMetadata{NodeID: nodeID})
		if err != nil {
			return nil, err
		}
		w, err := wal.Create(lg, dir, meta)
		if err != nil {
			return nil, fmt.Errorf("create wal: %w", err)
		}
		ls.wal = w
		return ls, nil
	}
	w, err := wal.Open(lg, dir, &walpb.Snapshot{})
	if err != nil {
		return nil, fmt.Errorf("open wal: %w", err)
	}
	metaBytes, hs, ents, err := w.ReadAll()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("read wal: %w", err)
	}
	var meta walMetadata
	if err := json.Unmarshal(metaBytes, &meta); err != nil {
		w.Close()
		return nil, fmt.Errorf("read wal metadata: %w", err)
	}
	if meta.NodeID != nodeID {
		w.Close()
		return nil, fmt.Errorf("%w: log of node %d, started as node %d", ErrWrongNode, meta.NodeID, nodeID)
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
	ls.existing = true
	return ls, nil
}

// save persists a Ready's HardState and entries with at most one fsync,
// then makes them visible to raft through the MemoryStorage.
func (ls *logStore) save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	if err := ls.wal.Save(hs, ents); err != nil {
		return fmt.Errorf("wal save: %w", err)
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

func (ls *logStore) close() error {
	return ls.wal.Close()
}
