package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"rdb/command"
	"rdb/db"
)

// restoreChunkSize is the data carried by one RESTORE_CHUNK log entry.
const restoreChunkSize = 1 << 20

// ErrRestoreFailed means a restore was refused when it was committed (the
// staged data did not verify on the replicas); the old data stays.
var ErrRestoreFailed = errors.New("cluster: restore failed")

// Restore replaces the database on every node with the file at path (a
// SQLite database or SQL text), through the log: the data travels as
// RESTORE_CHUNK entries that every node stages, and a RESTORE_COMMIT entry
// verifies and swaps it in atomically. The file is validated locally
// before anything is proposed, so corrupt input changes nothing. It
// returns the index of the commit entry.
func (n *Node) Restore(ctx context.Context, path string, format command.RestoreFormat) (uint64, error) {
	if err := db.ValidateRestoreFile(ctx, path, format); err != nil {
		return 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	id := newRestoreID()
	h := sha256.New()
	buf := make([]byte, restoreChunkSize)
	var off int64
	for {
		k, rerr := io.ReadFull(f, buf)
		if k > 0 {
			h.Write(buf[:k])
			if _, err := n.proposeAndWait(ctx, &command.Command{
				Type:         command.CommandType_COMMAND_TYPE_RESTORE_CHUNK,
				RestoreChunk: &command.RestoreChunk{RestoreId: id, Offset: off, Data: buf[:k]},
			}); err != nil {
				n.abortRestore(id)
				return 0, fmt.Errorf("restore chunk at %d: %w", off, err)
			}
			off += int64(k)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			n.abortRestore(id)
			return 0, fmt.Errorf("restore: read: %w", rerr)
		}
	}
	wr, err := n.proposeAndWait(ctx, &command.Command{
		Type:          command.CommandType_COMMAND_TYPE_RESTORE_COMMIT,
		RestoreCommit: &command.RestoreCommit{RestoreId: id, Format: format, Size: off, Sha256: h.Sum(nil)},
	})
	if err != nil {
		return 0, fmt.Errorf("restore commit: %w", err)
	}
	for _, r := range wr.Results {
		if r.GetError() != "" {
			return 0, fmt.Errorf("%w: %s", ErrRestoreFailed, r.GetError())
		}
	}
	return wr.Index, nil
}

// abortRestore discards a partly staged restore on every node.
func (n *Node) abortRestore(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.WriteTimeout)
	defer cancel()
	if _, err := n.proposeAndWait(ctx, &command.Command{
		Type:          command.CommandType_COMMAND_TYPE_RESTORE_ABORT,
		RestoreCommit: &command.RestoreCommit{RestoreId: id},
	}); err != nil {
		n.log.Warn("restore abort not committed; its staged chunks stay in the database until a later restore commits", "restore_id", id, "err", err)
	}
}

func newRestoreID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Backup writes a consistent SQLite copy of this node's database to a new
// temporary file and returns its path and the applied index it holds.
// The caller removes the file.
func (n *Node) Backup(ctx context.Context) (string, uint64, error) {
	dir := filepath.Join(n.cfg.DataDir, "backups")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", 0, fmt.Errorf("backup: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("backup-%s.db", newRestoreID()))
	idx, err := n.db.Snapshot(ctx, path)
	if err != nil {
		os.Remove(path)
		return "", 0, fmt.Errorf("backup: %w", err)
	}
	return path, idx, nil
}

// Dump writes SQL text that recreates this node's database, and returns
// the applied index it was read at (a lower bound).
func (n *Node) Dump(ctx context.Context, w io.Writer) (uint64, error) {
	applied, _ := n.applied.get()
	if err := n.db.Dump(ctx, w); err != nil {
		return 0, fmt.Errorf("dump: %w", err)
	}
	return applied, nil
}

// StagingDir is where an uploaded restore file may be written before
// Restore is called.
func (n *Node) StagingDir() (string, error) {
	dir := filepath.Join(n.cfg.DataDir, "uploads")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	return dir, nil
}
