package lazyfs_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"rdb/system_test/lazyfs"
)

// mount mounts a lazy file system over a fresh backing directory and
// returns it with both directories; it is unmounted at cleanup.
func mount(t testing.TB) (l *lazyfs.FS, backing, mnt string) {
	t.Helper()
	backing, mnt = t.TempDir(), t.TempDir()
	l, err := lazyfs.Mount(backing, mnt)
	if errors.Is(err, lazyfs.ErrNoFUSE) {
		t.Skipf("lazyfs: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Registered after TempDir, so it runs before the directories are
	// removed.
	t.Cleanup(func() {
		if err := l.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return l, backing, mnt
}

func openFile(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func writeAt(t testing.TB, f *os.File, s string, off int64) {
	t.Helper()
	if _, err := f.WriteAt([]byte(s), off); err != nil {
		t.Fatalf("write %s: %v", f.Name(), err)
	}
}

func sync(t testing.TB, f *os.File) {
	t.Helper()
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", f.Name(), err)
	}
}

// content reads a file through a fresh descriptor and checks it and its
// size.
func content(t testing.TB, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if !bytes.Equal(got, []byte(want)) {
		t.Errorf("%s: content %q, want %q", path, got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	if fi.Size() != int64(len(want)) {
		t.Errorf("%s: size %d, want %d", path, fi.Size(), len(want))
	}
}

func TestIsLazy(t *testing.T) {
	for rel, want := range map[string]bool{
		"raft/0000000000000000-0000000000000000.wal": true,
		"raft/0.tmp":               true,
		"raft.tmp/0.tmp":           true,
		"snapshots/1-10.snap":      true,
		"snapshots/1-10.meta":      true,
		"snapshots/1-10.snap.tmp":  true,
		"snapshots/copy-3.db":      false,
		"snapshots/incoming/x.tmp": false,
		"db.sqlite":                false,
		"db.sqlite-wal":            false,
		"db.sqlite-shm":            false,
		"db.sqlite.tmp":            false,
	} {
		if got := lazyfs.IsLazy(rel); got != want {
			t.Errorf("IsLazy(%q) = %v, want %v", rel, got, want)
		}
	}
}

func TestFS_DropUnsynced(t *testing.T) {
	t.Run("unsynced write is lost", func(t *testing.T) {
		l, backing, mnt := mount(t)
		p := filepath.Join(mnt, "a.wal")
		f := openFile(t, p)
		writeAt(t, f, "hello", 0)
		content(t, p, "hello") // read-your-writes, size included
		content(t, filepath.Join(backing, "a.wal"), "")
		if got := l.Pending(); got != 5 {
			t.Errorf("pending %d bytes, want 5", got)
		}
		if got := l.DropUnsynced(); got != 5 {
			t.Errorf("dropped %d bytes, want 5", got)
		}
		content(t, p, "")
		if fi, err := f.Stat(); err != nil || fi.Size() != 0 {
			t.Errorf("fstat after drop: size %v, err %v; want 0", fi.Size(), err)
		}
	})
	t.Run("synced write is kept", func(t *testing.T) {
		l, backing, mnt := mount(t)
		p := filepath.Join(mnt, "a.wal")
		f := openFile(t, p)
		writeAt(t, f, "durable", 0)
		sync(t, f)
		content(t, filepath.Join(backing, "a.wal"), "durable")
		writeAt(t, f, "-lost", 7)
		content(t, p, "durable-lost")
		l.DropUnsynced()
		content(t, p, "durable")
	})
	t.Run("fdatasync applies too", func(t *testing.T) {
		l, _, mnt := mount(t)
		p := filepath.Join(mnt, "a.wal")
		f := openFile(t, p)
		writeAt(t, f, "data", 0)
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			t.Fatal(err)
		}
		l.DropUnsynced()
		content(t, p, "data")
	})
	t.Run("partial overwrite and truncate overlay", func(t *testing.T) {
		l, backing, mnt := mount(t)
		p := filepath.Join(mnt, "a.wal")
		f := openFile(t, p)
		writeAt(t, f, "aaaaaaaaaa", 0)
		sync(t, f)
		writeAt(t, f, "bb", 3)
		content(t, p, "aaabbaaaaa")
		if err := f.Truncate(4); err != nil {
			t.Fatal(err)
		}
		content(t, p, "aaab")
		writeAt(t, f, "c", 8)
		content(t, p, "aaab\x00\x00\x00\x00c")
		content(t, filepath.Join(backing, "a.wal"), "aaaaaaaaaa")
		l.DropUnsynced()
		content(t, p, "aaaaaaaaaa")
		// And once synced, the same sequence lands as seen.
		writeAt(t, f, "bb", 3)
		f.Truncate(4)
		writeAt(t, f, "c", 8)
		sync(t, f)
		l.DropUnsynced()
		content(t, p, "aaab\x00\x00\x00\x00c")
	})
	t.Run("preallocation and rename stay lazy", func(t *testing.T) {
		l, backing, mnt := mount(t)
		if err := os.Mkdir(filepath.Join(mnt, "raft"), 0o755); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(mnt, "raft", "0.tmp")
		f := openFile(t, tmp)
		if err := unix.Fallocate(int(f.Fd()), 0, 0, 1<<16); err != nil {
			t.Fatalf("fallocate: %v", err)
		}
		writeAt(t, f, "rec", 0)
		final := filepath.Join(mnt, "raft", "1.wal")
		if err := os.Rename(tmp, final); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(final); err != nil || fi.Size() != 1<<16 {
			t.Fatalf("size after fallocate: %v, %v", fi.Size(), err)
		}
		l.DropUnsynced()
		content(t, final, "")
		content(t, filepath.Join(backing, "raft", "1.wal"), "")
	})
	t.Run("other files pass through", func(t *testing.T) {
		l, backing, mnt := mount(t)
		p := filepath.Join(mnt, "db.sqlite")
		f := openFile(t, p)
		writeAt(t, f, "page", 0)
		content(t, filepath.Join(backing, "db.sqlite"), "page")
		l.DropUnsynced()
		content(t, p, "page")
	})
	t.Run("unsynced data of a closed file is lost", func(t *testing.T) {
		l, _, mnt := mount(t)
		p := filepath.Join(mnt, "a.wal")
		if err := os.WriteFile(p, []byte("closed"), 0o644); err != nil {
			t.Fatal(err)
		}
		content(t, p, "closed")
		l.DropUnsynced()
		content(t, p, "")
	})
}

// TestFS_EtcdWAL runs etcd's WAL (file locks, preallocation, the raft.tmp
// directory rename) on the mount: what it saved survives a drop.
func TestFS_EtcdWAL(t *testing.T) {
	l, _, mnt := mount(t)
	dir := filepath.Join(mnt, "raft")
	w, err := wal.Create(zap.NewNop(), dir, []byte("meta"))
	if err != nil {
		t.Fatalf("create wal: %v", err)
	}
	var ents []*raftpb.Entry
	for i := uint64(1); i <= 100; i++ {
		ents = append(ents, &raftpb.Entry{Index: new(i), Term: new(uint64(1)), Data: bytes.Repeat([]byte{byte(i)}, 100)})
	}
	if err := w.Save(&raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(100))}, ents); err != nil {
		t.Fatalf("save: %v", err)
	}
	// A lock held by the WAL makes a second locker fail.
	names, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(names) != 1 {
		t.Fatalf("wal files %v", names)
	}
	if lf, err := fileutil.TryLockFile(names[0], os.O_RDWR, 0o600); !errors.Is(err, fileutil.ErrLocked) {
		t.Errorf("second lock of a locked WAL segment: %v, want %v", err, fileutil.ErrLocked)
		if err == nil {
			lf.Close()
		}
	}
	l.DropUnsynced() // nothing to drop: Save synced
	if err := w.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	w, err = wal.Open(zap.NewNop(), dir, &walpb.Snapshot{})
	if err != nil {
		t.Fatalf("open wal: %v", err)
	}
	defer w.Close()
	meta, st, got, err := w.ReadAll()
	if err != nil {
		t.Fatalf("read all: %v", err)
	}
	if string(meta) != "meta" || st.GetCommit() != 100 || len(got) != 100 {
		t.Fatalf("read back meta %q commit %d, %d entries; want meta, 100, 100", meta, st.GetCommit(), len(got))
	}
}

// TestFS_HoldSyncs checks that a held fsync applies nothing, returns once
// released, and gives way to an interrupted caller.
func TestFS_HoldSyncs(t *testing.T) {
	l, backing, mnt := mount(t)
	p := filepath.Join(mnt, "a.wal")
	f := openFile(t, p)
	writeAt(t, f, "held", 0)
	l.HoldSyncs(nil)
	synced := make(chan error, 1)
	go func() { synced <- f.Sync() }()
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case err := <-synced:
			t.Fatalf("fsync returned while held: %v", err)
		default:
		}
		time.Sleep(10 * time.Millisecond)
	}
	content(t, filepath.Join(backing, "a.wal"), "")
	if got := l.HeldSyncs(); got != 1 {
		t.Errorf("%d fsyncs held, want 1", got)
	}
	if got := l.PendingOf("a.wal"); got != 4 {
		t.Errorf("%d bytes pending in a.wal, want 4", got)
	}
	// A hold on other files lets this one through.
	l.ReleaseSyncs()
	if err := <-synced; err != nil {
		t.Fatalf("fsync: %v", err)
	}
	writeAt(t, f, "more", 4)
	l.HoldSyncs(func(rel string) bool { return rel == "b.wal" })
	sync(t, f)
	l.HoldSyncs(nil)
	go func() { synced <- f.Sync() }()
	l.ReleaseSyncs()
	select {
	case err := <-synced:
		if err != nil {
			t.Fatalf("fsync: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fsync still held after release")
	}
	l.DropUnsynced()
	content(t, p, "heldmore")
}

// TestFS_Model runs random writes, truncates, fsyncs and drops on one
// lazy file and compares it after every step with a model: the content
// the writer sees, and the content the last fsync made durable.
func TestFS_Model(t *testing.T) {
	l, _, mnt := mount(t)
	p := filepath.Join(mnt, "m.wal")
	f := openFile(t, p)
	rng := rand.New(rand.NewPCG(1, 2))
	var cur, durable []byte
	for step := 0; step < 300; step++ {
		switch op := rng.IntN(10); {
		case op < 6:
			off := rng.IntN(20000)
			data := make([]byte, 1+rng.IntN(3*4096))
			for i := range data {
				data[i] = byte(rng.IntN(256))
			}
			writeAt(t, f, string(data), int64(off))
			if end := off + len(data); end > len(cur) {
				cur = append(cur, make([]byte, end-len(cur))...)
			}
			copy(cur[off:], data)
		case op < 8:
			size := rng.IntN(24000)
			if err := f.Truncate(int64(size)); err != nil {
				t.Fatalf("step %d: truncate: %v", step, err)
			}
			if size < len(cur) {
				cur = cur[:size]
			} else {
				cur = append(cur, make([]byte, size-len(cur))...)
			}
		case op < 9:
			sync(t, f)
			durable = append([]byte(nil), cur...)
		default:
			l.DropUnsynced()
			cur = append([]byte(nil), durable...)
		}
		content(t, p, string(cur))
		if t.Failed() {
			t.Fatalf("step %d: content differs from the model", step)
		}
	}
}
