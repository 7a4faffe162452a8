package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// joinRecordFile, in the data directory of a node that joined an
// existing cluster, records what the cluster answered when it added the
// node. Until the replicated log reaches it, a joined node knows its
// peers' addresses and the index of its own addition only from that
// answer: a node that restarted before catching up would otherwise
// reach no peer (and stay a lagging learner for ever), or take a removal
// of an earlier node with its id for its own.
const joinRecordFile = "join.json"

// joinRecord is the content of joinRecordFile.
type joinRecord struct {
	// Index is the raft index of the conf change that added this node.
	Index uint64 `json:"index"`
	// Peers maps member ids to peer addresses, as the cluster listed
	// them when it added this node.
	Peers map[uint64]string `json:"peers"`
}

// writeJoinRecord writes rec atomically (temporary file, fsync, rename,
// fsync of the directory).
func writeJoinRecord(dir string, rec joinRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode join record: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	tmp := filepath.Join(dir, joinRecordFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("write join record: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write join record: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync join record: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close join record: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, joinRecordFile)); err != nil {
		return fmt.Errorf("install join record: %w", err)
	}
	return syncDir(dir)
}

// readJoinRecord reads the join record of dir; ok is false when there is
// none (a node that bootstrapped the cluster, or joined before records
// were written).
func readJoinRecord(dir string) (rec joinRecord, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, joinRecordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return joinRecord{}, false, nil
	}
	if err != nil {
		return joinRecord{}, false, fmt.Errorf("read join record: %w", err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return joinRecord{}, false, fmt.Errorf("decode join record %s: %w", filepath.Join(dir, joinRecordFile), err)
	}
	return rec, true, nil
}
