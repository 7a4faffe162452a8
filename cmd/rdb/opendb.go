package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"rdb/db"
)

// openDatabase opens the node's SQLite database. When the file is not a
// SQLite database or fails its integrity check, it is moved aside (never
// deleted) and a new, empty database is opened in its place: the cluster
// then rebuilds it from the raft log, or from a stored snapshot file when
// the log was compacted, or stops with a message saying what to do.
//
// With verify, the check (every page's checksum, then PRAGMA
// integrity_check, or quick_check above 256 MiB) runs before every open, so
// that a damaged page is not served (chaos finding 11). Without it, the
// check runs only after a failed open, so start-up time does not grow with
// the database; pages are still checked as they are read (db/pagesum.go),
// and a damaged one fails the read or stops the apply.
func openDatabase(ctx context.Context, cfg db.Config, verify bool, logger *slog.Logger) (*db.DB, error) {
	database, err := db.Open(ctx, cfg)
	if err == nil {
		if !verify {
			return database, nil
		}
		start := time.Now()
		cerr := database.Check(ctx)
		if cerr == nil {
			logger.Info("database file verified", "path", cfg.Path, "took", time.Since(start).Round(time.Millisecond))
			return database, nil
		}
		if cl := database.Close(); !errors.Is(cerr, db.ErrCorruptFile) {
			return nil, fmt.Errorf("verify database: %w", errors.Join(cerr, cl))
		}
		if err := moveAside(cfg.Path, cerr, logger); err != nil {
			return nil, err
		}
		if database, err = db.Open(ctx, cfg); err == nil {
			return database, nil
		}
		return nil, fmt.Errorf("open database: %w", err)
	}
	if _, serr := os.Stat(cfg.Path); serr == nil {
		if _, verr := db.VerifyFile(ctx, cfg.Path); errors.Is(verr, db.ErrNotSQLite) || errors.Is(verr, db.ErrCorruptFile) {
			if err := moveAside(cfg.Path, verr, logger); err != nil {
				return nil, err
			}
			if database, err = db.Open(ctx, cfg); err == nil {
				return database, nil
			}
		}
	}
	return nil, fmt.Errorf("open database: %w", err)
}

// moveAside renames a corrupt database file and its -wal and -shm files to
// <path>.corrupt-<UTC time>.
func moveAside(path string, why error, logger *slog.Logger) error {
	aside := fmt.Sprintf("%s.corrupt-%s", path, time.Now().UTC().Format("20060102T150405"))
	logger.Error("database file is corrupt: moving it aside and rebuilding from the log", "path", path, "moved_to", aside, "err", why)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(path+suffix, aside+suffix); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("move corrupt database aside: %w", err)
		}
	}
	return nil
}
