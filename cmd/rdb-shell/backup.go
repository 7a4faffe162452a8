package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"rdb/command"
	"rdb/rpc/rpcpb"
)

// Usage strings of .backup and .restore.
const (
	backupUsage  = "[--sql] FILE"
	restoreUsage = "FILE"
)

// parseBackupArgs reads ".backup [--sql|--sqlite] FILE": the format
// (SQLite unless --sql) and the file. "--" ends the options, for a file
// whose name starts with "--".
func parseBackupArgs(args []string) (rpcpb.BackupFormat, string, error) {
	format := rpcpb.BackupFormat_BACKUP_FORMAT_SQLITE
	var files []string
	opts := true
	for _, a := range args {
		switch {
		case opts && a == "--":
			opts = false
		case opts && a == "--sql":
			format = rpcpb.BackupFormat_BACKUP_FORMAT_SQL
		case opts && a == "--sqlite":
			format = rpcpb.BackupFormat_BACKUP_FORMAT_SQLITE
		case opts && strings.HasPrefix(a, "--"):
			return 0, "", fmt.Errorf("unknown option %s: usage: .backup %s", a, backupUsage)
		default:
			files = append(files, a)
		}
	}
	if len(files) != 1 || files[0] == "" {
		return 0, "", usage("backup", backupUsage)
	}
	return format, files[0], nil
}

// parseRestoreArgs reads ".restore FILE".
func parseRestoreArgs(args []string) (string, error) {
	if len(args) == 2 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) != 1 || args[0] == "" {
		return "", usage("restore", restoreUsage)
	}
	return args[0], nil
}

// notice prints a one-line report of a dot-command to the output, or to
// stderr in JSON mode, which keeps the JSON stream parseable.
func (s *shell) notice(format string, args ...any) error {
	w := s.out
	if s.printer.mode == modeJSON {
		w = s.stderr
	}
	_, err := fmt.Fprintf(w, format+"\n", args...)
	return err
}

// dotBackup writes a consistent backup (at linearizable consistency, so
// it holds this session's writes) to a file, replacing it atomically.
func (s *shell) dotBackup(ctx context.Context, args []string) error {
	format, file, err := parseBackupArgs(args)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	start := time.Now()
	size, index, err := s.cl.BackupToFile(ctx, format, file)
	elapsed := time.Since(start)
	s.noteFailover()
	if err != nil {
		// BackupToFile reports server errors as text: say why the
		// context ended, if it did.
		switch ctx.Err() {
		case context.Canceled:
			return context.Canceled // "interrupted"
		case context.DeadlineExceeded:
			return fmt.Errorf("timed out after %s (see --timeout): %v", s.timeout, err)
		}
		return err
	}
	if err := s.notice("backup of %d bytes at raft index %d written to %s", size, index, file); err != nil {
		return err
	}
	s.showTimer(elapsed)
	return nil
}

// dotRestore replaces the database on every node with a SQLite file or
// SQL text (told apart by the SQLite header), through the raft log. Later
// reads of this session wait for the restore.
func (s *shell) dotRestore(ctx context.Context, args []string) error {
	file, err := parseRestoreArgs(args)
	if err != nil {
		return err
	}
	if s.inTx {
		return errors.New("cannot restore inside a transaction: COMMIT or ROLLBACK first")
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	start := time.Now()
	resp, err := s.cl.RestoreFile(ctx, command.RestoreFormat_RESTORE_FORMAT_UNSPECIFIED, file)
	elapsed := time.Since(start)
	s.noteFailover()
	s.tablesTime = time.Time{} // the table names changed, most likely
	if err != nil {
		return s.rpcError(err, true)
	}
	s.lastWrite = max(s.lastWrite, resp.GetRaftIndex())
	if err := s.notice("restored %d bytes at raft index %d", resp.GetBytes(), resp.GetRaftIndex()); err != nil {
		return err
	}
	s.showTimer(elapsed)
	return nil
}
