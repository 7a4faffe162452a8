package db

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Install replaces the live database by the SQLite file at path, which the
// caller has checked with VerifyFile (Install itself only checks the
// header). The file is moved (renamed) into place, so it must be on the same
// file system as Config.Path; afterwards path no longer exists.
//
// Install waits for reads in progress (Query, Hash, Snapshot, Dump ...) to
// finish and holds new ones back, closes every connection, removes the -wal
// and -shm files of the live database, renames path over it, fsyncs the
// directory and reopens exactly as Open does (WAL mode, VFS, functions,
// authorizer, limits; statement caches start empty). Internal tables missing
// from the file are created; the applied index becomes the one stored in the
// file (0 without one).
//
// If Install fails before the rename, the old database is reopened and keeps
// working. A failure after it (reopening the new file) leaves the DB unusable
// and is returned: the node must stop. Install must be called from the apply
// goroutine (never concurrently with ApplyBatch).
func (d *DB) Install(ctx context.Context, path string) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.closed.Load() {
		return ErrClosed
	}
	if err := checkInstallable(path); err != nil {
		return fmt.Errorf("db: install: %w", err)
	}
	if err := d.swapIn(ctx, path); err != nil {
		return fmt.Errorf("db: install: %w", err)
	}
	return nil
}

// checkInstallable checks the header of path and refuses a WAL-mode file
// whose WAL still holds frames (renaming the main file alone would lose
// them).
func checkInstallable(path string) error {
	if _, err := checkHeader(path); err != nil {
		return err
	}
	if st, err := os.Stat(path + "-wal"); err == nil && st.Size() > 0 {
		return fmt.Errorf("%s has a non-empty -wal file; checkpoint it first", path)
	}
	return nil
}

// swapIn closes the connections, renames path over the live database and
// reopens. The caller holds wmu.
func (d *DB) swapIn(ctx context.Context, path string) error {
	d.rw.Lock()
	defer d.rw.Unlock()
	live := d.cfg.Path
	ctx = context.WithoutCancel(ctx)
	if err := d.closeConns(); err != nil {
		d.log.Warn("db: closing connections before swap", "err", err)
	}
	// The clean close checkpointed the WAL into the file; make that durable
	// before the WAL goes (the old file is replaced anyway, but a crash in
	// between must not leave it half-written).
	if err := syncFile(live); err != nil && !errors.Is(err, os.ErrNotExist) {
		return errors.Join(err, d.reopen(ctx))
	}
	var rmErr error
	for _, p := range []string{live + "-wal", live + "-shm", live + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			rmErr = errors.Join(rmErr, err)
		}
	}
	if rmErr != nil {
		return errors.Join(rmErr, d.reopen(ctx))
	}
	if err := os.Rename(path, live); err != nil {
		return errors.Join(err, d.reopen(ctx))
	}
	// Leftovers of the incoming file must not be taken for the live one's.
	os.Remove(path + "-shm")
	os.Remove(path + "-wal")
	if err := syncDir(filepath.Dir(live)); err != nil {
		d.log.Warn("db: fsync directory after swap", "err", err)
	}
	if err := d.reopen(ctx); err != nil {
		return fmt.Errorf("database swapped in but cannot be opened: %w", err)
	}
	return nil
}

// reopen opens the connections again after closeConns.
func (d *DB) reopen(ctx context.Context) error {
	if err := d.openConns(ctx); err != nil {
		d.closeConns()
		return fmt.Errorf("reopen: %w", err)
	}
	return nil
}
