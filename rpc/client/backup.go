package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"google.golang.org/grpc/status"

	"rdb/command"
	"rdb/rpc/rpcpb"
)

// BackupToFile streams a backup in format into the file at path. It
// writes a temporary file in the same directory, checks the size and
// SHA-256 the server sends with the last chunk, syncs it and renames it
// over path, so path is either left as it was or replaced by a complete
// backup. It returns the backup's size and the raft index it was taken
// at. Server errors are returned as their status message.
//
// The whole backup must finish within ctx's deadline, or the client's
// RequestTimeout when ctx has none.
func (c *Client) BackupToFile(ctx context.Context, format rpcpb.BackupFormat, path string) (size int64, index uint64, err error) {
	if _, ok := ctx.Deadline(); !ok {
		// Backup returns a stream bound to the context of the call, and a
		// call without a deadline gets one that ends when it returns.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	// The stream must not outlive this function, whatever ends it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.Backup(ctx, &rpcpb.BackupRequest{Format: format})
	if err != nil {
		return 0, 0, fmt.Errorf("backup: %s", status.Convert(err).Message())
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".rdb-backup-*")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	defer tmp.Close()
	sum := sha256.New()
	complete := false
	for {
		ch, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, fmt.Errorf("backup: %s", status.Convert(err).Message())
		}
		if complete {
			return 0, 0, errors.New("backup: data after the last chunk")
		}
		if ch.GetRaftIndex() != 0 {
			index = ch.GetRaftIndex()
		}
		if _, err := tmp.Write(ch.GetData()); err != nil {
			return 0, 0, err
		}
		sum.Write(ch.GetData())
		size += int64(len(ch.GetData()))
		if ch.GetLast() {
			if ch.GetSize() != size || string(ch.GetSha256()) != string(sum.Sum(nil)) {
				return 0, 0, fmt.Errorf("backup: checksum or size mismatch (got %d bytes, server sent %d)", size, ch.GetSize())
			}
			complete = true
		}
	}
	if !complete {
		return 0, 0, errors.New("backup: stream ended early")
	}
	if err := tmp.Sync(); err != nil {
		return 0, 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, 0, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, 0, err
	}
	return size, index, nil
}

// sqliteHeader starts every SQLite database file.
const sqliteHeader = "SQLite format 3\x00"

// DetectRestoreFormat tells a SQLite database file from SQL text by the
// SQLite header at the start of r, and leaves r at its start.
func DetectRestoreFormat(r io.ReadSeeker) (command.RestoreFormat, error) {
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if n == len(sqliteHeader) && string(head) == sqliteHeader {
		return command.RestoreFormat_RESTORE_FORMAT_SQLITE, nil
	}
	return command.RestoreFormat_RESTORE_FORMAT_SQL, nil
}

// RestoreFile replaces the database on every node with the file at path:
// a SQLite database file or SQL text, detected by DetectRestoreFormat when
// format is RESTORE_FORMAT_UNSPECIFIED. Server errors are returned as
// is, for IsOutcomeUnknown.
func (c *Client) RestoreFile(ctx context.Context, format command.RestoreFormat, path string) (*rpcpb.RestoreResponse, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if format == command.RestoreFormat_RESTORE_FORMAT_UNSPECIFIED {
		if format, err = DetectRestoreFormat(f); err != nil {
			return nil, fmt.Errorf("restore: read %s: %w", path, err)
		}
	}
	return c.Restore(ctx, format, f)
}
