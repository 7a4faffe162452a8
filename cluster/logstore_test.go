package cluster

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/raft/v3/raftpb"
	_ "modernc.org/sqlite" // a plain SQLite file, as a user would copy in

	"rdb/db"
)

// writeLog creates a log in dir holding entries 1..n of term 1 and
// returns the path of its (only) segment and the end of its data.
func writeLog(t *testing.T, dir string, n uint64) (string, int) {
	t.Helper()
	ls, err := openLogStore(dir, 1, 0xabc, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= n; i++ {
		e := &raftpb.Entry{Term: new(uint64(1)), Index: new(i), Data: bytes.Repeat([]byte{byte(i)}, 100)}
		if err := ls.save(&raftpb.HardState{Term: new(uint64(1)), Commit: new(i)}, []*raftpb.Entry{e}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ls.close(); err != nil {
		t.Fatal(err)
	}
	names, err := walFiles(filepath.Join(dir, "raft"))
	if err != nil || len(names) != 1 {
		t.Fatalf("segments %v, %v", names, err)
	}
	path := filepath.Join(dir, "raft", names[0].name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := len(bytes.TrimRight(b, "\x00"))
	return path, end
}

// TestLogStoreRepairsTornTail: a record cut short at the end of the last
// segment (a crash or a full disk in the middle of a write) is cut off on
// open, as etcd's server does, instead of refusing to start.
func TestLogStoreRepairsTornTail(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n")
	path, end := writeLog(t, dir, 5)
	if err := os.Truncate(path, int64(end-20)); err != nil {
		t.Fatal(err)
	}
	ls, err := openLogStore(dir, 1, 0xabc, 0, 0)
	if err != nil {
		t.Fatalf("open after a torn tail: %v", err)
	}
	defer ls.close()
	if !ls.repaired {
		t.Fatal("torn tail not reported as repaired")
	}
	last, _ := ls.storage.LastIndex()
	// The last record is entry 5's HardState (or entry 5 itself).
	if last < 4 || last > 5 {
		t.Fatalf("last index after repair %d, want 4 or 5", last)
	}
	if _, err := os.Stat(path + ".broken"); err != nil {
		t.Fatalf("damaged segment not kept: %v", err)
	}
}

// TestLogStoreRefusesCRCMismatch: a flipped bit inside an earlier record
// is detected by the CRC and the node refuses to start, naming the WAL.
func TestLogStoreRefusesCRCMismatch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n")
	path, end := writeLog(t, dir, 5)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Entry 2's payload (bytes of value 2) sits in the middle of the data.
	i := bytes.Index(b[:end], bytes.Repeat([]byte{2}, 50))
	if i < 0 {
		t.Fatal("entry 2 not found in the segment")
	}
	b[i+10] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = openLogStore(dir, 1, 0xabc, 0, 0)
	if !errors.Is(err, wal.ErrCRCMismatch) {
		t.Fatalf("open after a bit flip: %v, want ErrCRCMismatch", err)
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, "raft")) {
		t.Fatalf("error does not name the wal directory: %v", err)
	}
}

// TestLogStoreRefusesRepairBeforeApplied: damage that etcd's decoder
// takes for a torn write but that sits before entries the database has
// applied (so they were durable) is not cut off: the node refuses to
// start with ErrLogDamaged and the segment is left as it was. (Found by
// the chaos scenario bitflip: a flipped length bit made a record run into
// the zeroed tail, and the repair dropped a thousand acknowledged
// entries.)
func TestLogStoreRefusesRepairBeforeApplied(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n")
	path, end := writeLog(t, dir, 5)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b[:end], bytes.Repeat([]byte{3}, 50))
	if i < 0 {
		t.Fatal("entry 3 not found in the segment")
	}
	// Cut inside entry 3: a "torn" record followed by nothing.
	if err := os.Truncate(path, int64(i+10)); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = openLogStore(dir, 1, 0xabc, 0, 5)
	if !errors.Is(err, ErrLogDamaged) || !strings.Contains(err.Error(), path) {
		t.Fatalf("open with entries 1-5 applied: %v, want ErrLogDamaged naming %s", err, path)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the refused repair changed the segment")
	}
	// With nothing applied beyond entry 2 the same damage is a torn tail.
	ls, err := openLogStore(dir, 1, 0xabc, 0, 2)
	if err != nil {
		t.Fatalf("open with entries 1-2 applied: %v", err)
	}
	defer ls.close()
	if last, _ := ls.storage.LastIndex(); last != 2 || !ls.repaired {
		t.Fatalf("after repair: last index %d (want 2), repaired %v", last, ls.repaired)
	}
}

// TestCheckLogPresent: with no raft log in the data directory, a new
// node's database passes; one with applied entries, or with tables of its
// own (a SQLite file copied in), is refused with ErrLogMissing, New
// refuses it too and creates no log, so the next start refuses again.
// Once the log exists, the check passes.
func TestCheckLogPresent(t *testing.T) {
	ctx := context.Background()
	open := func(t *testing.T, dir string) *db.DB {
		t.Helper()
		d, err := db.Open(ctx, db.Config{Path: filepath.Join(dir, "db.sqlite")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	refused := func(t *testing.T, dir string, d *db.DB, want string) {
		t.Helper()
		for range 2 {
			err := CheckLogPresent(ctx, dir, d)
			if !errors.Is(err, ErrLogMissing) || !strings.Contains(err.Error(), want) {
				t.Fatalf("CheckLogPresent: %v, want ErrLogMissing naming %q", err, want)
			}
			_, err = New(Config{ID: 1, DataDir: dir, PeerAddr: "p1", ClientAddr: "c1",
				InitialCluster: map[uint64]string{1: "p1"}, Logger: testLogger()}, d, &memTransport{nw: newMemNetwork(), self: 1})
			if !errors.Is(err, ErrLogMissing) {
				t.Fatalf("New: %v, want ErrLogMissing", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "raft")); !os.IsNotExist(err) {
				t.Fatalf("a log directory was created: %v", err)
			}
		}
	}

	t.Run("new database", func(t *testing.T) {
		dir := t.TempDir()
		if err := CheckLogPresent(ctx, dir, open(t, dir)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("applied entries", func(t *testing.T) {
		dir := t.TempDir()
		d := open(t, dir)
		if _, err := d.ApplyBatch(ctx, []db.Entry{{Index: 7}}); err != nil {
			t.Fatal(err)
		}
		refused(t, dir, d, "up to index 7")
	})
	t.Run("tables of its own", func(t *testing.T) {
		dir := t.TempDir()
		plain, err := sql.Open("sqlite", filepath.Join(dir, "db.sqlite"))
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)", "INSERT INTO users(name) VALUES('ann')"} {
			if _, err := plain.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		if err := plain.Close(); err != nil {
			t.Fatal(err)
		}
		refused(t, dir, open(t, dir), "holds users")
	})
	t.Run("log present", func(t *testing.T) {
		dir := t.TempDir()
		ls, err := openLogStore(dir, 1, 0xabc, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := ls.close(); err != nil {
			t.Fatal(err)
		}
		d := open(t, dir)
		if _, err := d.ApplyBatch(ctx, []db.Entry{{Index: 7}}); err != nil {
			t.Fatal(err)
		}
		if err := CheckLogPresent(ctx, dir, d); err != nil {
			t.Fatalf("with a log: %v", err)
		}
	})
}
