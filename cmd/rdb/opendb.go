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

// openDatabase opens the node's SQLite database. When that fails and the
// file is not a SQLite database or fails its integrity check, it is moved
// aside (never deleted) and a new, empty database is opened in its place:
// the cluster then rebuilds it from the raft log, or from a stored snapshot
// file when the log was compacted, or stops with a message saying what to
// do. The check runs only after a failed open, so start-up time does not
// grow with the database.
func openDatabase(ctx context.Context, cfg db.Config, logger *slog.Logger) (*db.DB, error) {
	database, err := db.Open(ctx, cfg)
	if err == nil {
		return database, nil
	}
	if _, serr := os.Stat(cfg.Path); serr == nil {
		if _, verr := db.VerifyFile(ctx, cfg.Path); errors.Is(verr, db.ErrNotSQLite) || errors.Is(verr, db.ErrCorruptFile) {
			aside := fmt.Sprintf("%s.corrupt-%s", cfg.Path, time.Now().UTC().Format("20060102T150405"))
			logger.Error("database file is corrupt: moving it aside and rebuilding from the log", "path", cfg.Path, "moved_to", aside, "err", verr)
			for _, suffix := range []string{"", "-wal", "-shm"} {
				if err := os.Rename(cfg.Path+suffix, aside+suffix); err != nil && !os.IsNotExist(err) {
					return nil, fmt.Errorf("move corrupt database aside: %w", err)
				}
			}
			if database, err = db.Open(ctx, cfg); err == nil {
				return database, nil
			}
		}
	}
	return nil, fmt.Errorf("open database: %w", err)
}
