package db

import (
	"errors"
	"fmt"
	"os"
)

// Sync makes every committed transaction durable by fsyncing the database
// file and its WAL file. The writer runs with synchronous=NORMAL (no fsync
// per commit; only checkpoints fsync) because the raft log is the source
// of truth; before raft entries are dropped from
// the log (compaction), the state they produced must be on disk. Called
// from the apply goroutine.
func (d *DB) Sync() error {
	if d.closed.Load() {
		return ErrClosed
	}
	for _, p := range []string{d.cfg.Path + "-wal", d.cfg.Path} {
		if err := syncFile(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("db: sync %s: %w", p, err)
		}
	}
	return nil
}
