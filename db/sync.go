package db

import (
	"errors"
	"fmt"
	"os"
)

// Sync makes every committed transaction durable by fsyncing the database
// file and its WAL file. The writer runs with synchronous=OFF because the
// raft log is the source of truth; before raft entries are dropped from
// the log (compaction), the state they produced must be on disk. Called
// from the apply goroutine.
func (d *DB) Sync() error {
	if d.closed.Load() {
		return ErrClosed
	}
	for _, p := range []string{d.cfg.Path + "-wal", d.cfg.Path} {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("db: sync %s: %w", p, err)
		}
		err = f.Sync()
		cerr := f.Close()
		if err != nil {
			return fmt.Errorf("db: sync %s: %w", p, err)
		}
		if cerr != nil {
			return fmt.Errorf("db: sync %s: %w", p, cerr)
		}
	}
	return nil
}
