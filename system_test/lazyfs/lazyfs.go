package lazyfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// ErrNoFUSE is returned by Mount when the machine cannot mount a FUSE file
// system: /dev/fuse is missing or the mount itself is refused. Callers
// (tests) typically skip on it.
var ErrNoFUSE = errors.New("lazyfs: FUSE not available")

// FS is a mounted lazy file system. Its methods may be called
// concurrently with each other and with the file system's users.
type FS struct {
	backing    string
	mountpoint string
	server     *fuse.Server
	lazy       func(rel string) bool

	mu    sync.Mutex            // guards the fields below
	files map[uint64]*fileState // backing inode number → pending writes
	held  chan struct{}         // non-nil while fsyncs are held; closed on release
	match func(rel string) bool // which files' fsyncs are held; nil: all
	wait  int                   // fsyncs waiting on held
}

// Option changes how Mount sets up the file system.
type Option func(*FS)

// WithLazyRule replaces IsLazy as the rule deciding which files are lazy.
// rule gets a slash-separated path relative to the mount's root, is called
// once per inode (at create or first lookup), and must be safe for
// concurrent use. A lazy file must not be mmapped.
func WithLazyRule(rule func(rel string) bool) Option {
	return func(l *FS) { l.lazy = rule }
}

// Mount mounts at mountpoint a FUSE file system that passes every
// operation through to backingDir, except that data written to the lazy
// files (IsLazy, or the rule given with WithLazyRule) reaches backingDir
// only when the file is fsynced.
// Both directories must exist. The caller must call Unmount, also when
// the test fails. Mount returns an error wrapping ErrNoFUSE when FUSE is
// not usable here.
func Mount(backingDir, mountpoint string, opts ...Option) (*FS, error) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, fmt.Errorf("%w: /dev/fuse: %v", ErrNoFUSE, err)
	}
	backing, err := filepath.Abs(backingDir)
	if err != nil {
		return nil, fmt.Errorf("lazyfs: backing dir: %w", err)
	}
	mnt, err := filepath.Abs(mountpoint)
	if err != nil {
		return nil, fmt.Errorf("lazyfs: mountpoint: %w", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		return nil, fmt.Errorf("lazyfs: stat backing dir: %w", err)
	}
	l := &FS{backing: backing, mountpoint: mnt, files: map[uint64]*fileState{}, lazy: IsLazy}
	for _, o := range opts {
		o(l)
	}
	root := &fs.LoopbackRoot{Path: backing, Dev: uint64(st.Dev), NewNode: l.newNode}
	root.RootNode = l.newNode(root, nil, "", &st)
	// No kernel caching of entries or attributes: the size of a lazy file
	// changes behind the kernel's back when DropUnsynced runs.
	var zero time.Duration
	fopts := &fs.Options{
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{
			// As root, mount(2) directly; otherwise go-fuse falls back
			// to fusermount.
			DirectMount: true,
			FsName:      "lazyfs:" + backing,
			Name:        "lazyfs",
			// Locks (flock, fcntl) are left to the kernel, which keeps
			// them locally: only one machine uses the mount.
			EnableLocks: false,
		},
	}
	server, err := fs.Mount(mnt, root.RootNode, fopts)
	if err != nil {
		return nil, fmt.Errorf("%w: mount %s: %v", ErrNoFUSE, mnt, err)
	}
	l.server = server
	return l, nil
}

// Mountpoint returns the directory the file system is mounted on.
func (l *FS) Mountpoint() string { return l.mountpoint }

// Unmount unmounts the file system. Pending (unsynced) writes are
// discarded. Every process using the mount must have closed its files
// (been killed) first; Unmount retries for a few seconds while the mount
// is busy. Once the mount is gone it waits at most serveWait for the
// file system's request loops to end: the kernel sometimes keeps the
// connection open for a long time after a killed process's last request
// (over a minute was seen), and the loops only hold goroutines.
func (l *FS) Unmount() error {
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err = l.unmount(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lazyfs: unmount %s: %w", l.mountpoint, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	served := make(chan struct{})
	go func() {
		l.server.Wait()
		close(served)
	}()
	select {
	case <-served:
	case <-time.After(serveWait):
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for ino, s := range l.files {
		s.close()
		delete(l.files, ino)
	}
	return nil
}

// serveWait bounds how long Unmount waits for the request loops to end.
const serveWait = 2 * time.Second

// unmount removes the mount: umount(2) directly as root, otherwise through
// the server (fusermount -u), which also waits for the request loops.
func (l *FS) unmount() error {
	err := syscall.Unmount(l.mountpoint, 0)
	if err == nil || errors.Is(err, syscall.EBUSY) {
		return err
	}
	return l.server.Unmount()
}

// DropUnsynced simulates a power cut: every write, truncate and
// size-extending fallocate of a lazy file that has not been fsynced yet
// is discarded, on every file. The writing process should be dead (the
// test SIGKILLs it first), since it would otherwise see its file change
// underneath it. It returns the number of bytes of written data dropped.
func (l *FS) DropUnsynced() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var dropped int64
	for _, s := range l.files {
		dropped += s.drop()
	}
	return dropped
}

// HoldSyncs makes every later fsync or fdatasync of a lazy file whose
// path (relative to the mount's root) satisfies match, or of every lazy
// file when match is nil, wait without applying anything until
// ReleaseSyncs, or until the caller is interrupted (a SIGKILLed process's
// request is answered with EINTR). With it a test cuts the power while a
// writer is inside fsync: the data is written, its fsync has not
// returned, and DropUnsynced loses it. Fsyncs of other files and of
// directories are not held.
func (l *FS) HoldSyncs(match func(rel string) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		l.held = make(chan struct{})
	}
	l.match = match
}

// ReleaseSyncs lets held and later fsyncs go on.
func (l *FS) ReleaseSyncs() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held != nil {
		close(l.held)
		l.held, l.match = nil, nil
	}
}

// HeldSyncs returns the number of fsyncs waiting because of HoldSyncs.
func (l *FS) HeldSyncs() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wait
}

// holdSync waits while fsyncs of the file at rel are held. It returns
// false when ctx ends first.
func (l *FS) holdSync(ctx context.Context, rel string) bool {
	l.mu.Lock()
	gate := l.held
	if gate == nil || (l.match != nil && !l.match(rel)) {
		l.mu.Unlock()
		return true
	}
	l.wait++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.wait--
		l.mu.Unlock()
	}()
	select {
	case <-gate:
		return true
	case <-ctx.Done():
		return false
	}
}

// PendingOf returns the number of bytes written to the lazy file at rel
// (relative to the mount's root) and not yet fsynced.
func (l *FS) PendingOf(rel string) int64 {
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(l.backing, rel), &st); err != nil {
		return 0
	}
	if s := l.lookupState(st.Ino); s != nil {
		return s.pending()
	}
	return 0
}

// Pending returns the number of bytes of data written to lazy files and
// not yet fsynced.
func (l *FS) Pending() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, s := range l.files {
		n += s.pending()
	}
	return n
}

// state returns the pending-write state of the backing file with inode
// number ino, creating it (opening the file at path, the backing path)
// when absent. It is keyed by the backing inode so that it survives
// renames and the kernel forgetting FUSE inodes.
func (l *FS) state(ino uint64, path string) (*fileState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.files[ino]; ok {
		return s, nil
	}
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	s := &fileState{fd: fd}
	l.files[ino] = s
	return s, nil
}

// lookupState returns the state of ino, or nil when it has none.
func (l *FS) lookupState(ino uint64) *fileState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.files[ino]
}

// forget removes the state of a backing file that no longer exists.
func (l *FS) forget(ino uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.files[ino]; ok {
		s.close()
		delete(l.files, ino)
	}
}

// IsLazy reports whether the file at rel, a slash-separated path relative
// to the mount's root, is lazy: a raft WAL segment or WAL temp file of
// etcd's wal package (*.wal anywhere; *.tmp in a directory named raft or
// raft.tmp, where wal.Create builds the first segment), or a snapshot
// file of rdb's snapshot store (*.snap, *.meta, *.tmp directly in a
// directory named snapshots). The decision is made when the FUSE inode is
// created (on create or first lookup) and holds for the inode's life, so a
// lazy *.tmp file stays lazy when renamed to *.wal or *.snap.
func IsLazy(rel string) bool {
	base := filepath.Base(rel)
	dir := filepath.Base(filepath.Dir(rel))
	switch {
	case strings.HasSuffix(base, ".wal"):
		return true
	case strings.HasSuffix(base, ".tmp") && (dir == "raft" || dir == "raft.tmp"):
		return true
	case dir == "snapshots":
		return strings.HasSuffix(base, ".snap") || strings.HasSuffix(base, ".meta") || strings.HasSuffix(base, ".tmp")
	}
	return false
}

// IsLazyWithSQLite is IsLazy plus the SQLite database and its WAL file
// (db.sqlite, db.sqlite-wal), for power cuts that also lose unsynced
// database writes. The -shm file is not lazy: SQLite mmaps it, and it
// holds no durable state.
func IsLazyWithSQLite(rel string) bool {
	return IsLazy(rel) || rel == "db.sqlite" || rel == "db.sqlite-wal"
}

func (l *FS) newNode(root *fs.LoopbackRoot, parent *fs.Inode, name string, st *syscall.Stat_t) fs.InodeEmbedder {
	n := &node{LoopbackNode: fs.LoopbackNode{RootData: root}, lfs: l, ino: st.Ino}
	if parent != nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		n.lazy = l.lazy(filepath.Join(parent.Path(nil), name))
	}
	return n
}
