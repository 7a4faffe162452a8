// Package lazyfs is a test-only FUSE file system that loses the data
// written since the last fsync, like LazyFS, which etcd's robustness suite
// uses for its power-cut fault. It lets a test cut the power under an
// unmodified rdb binary: kill the process, call DropUnsynced, start it
// again on the same directory.
//
// # Why FUSE
//
// A SIGKILL loses nothing the process has written: the data is in the
// kernel's page cache and a restarted process reads it back. To lose
// unsynced writes without changing rdb's code, the writes must be held
// somewhere the test controls, below the process's system calls. A FUSE
// file system (github.com/hanwen/go-fuse/v2, a loopback over a backing
// directory) does that without touching the binary or the kernel, and
// sees every write, truncate and fsync as a separate request. It needs
// /dev/fuse and either root (mount(2) directly) or fusermount; Mount
// returns ErrNoFUSE otherwise and tests skip.
//
// # What is lazy
//
// By default only the files that hold rdb's durable state outside SQLite
// are lazy (IsLazy; WithLazyRule chooses others): the raft WAL segments
// and temp files of etcd's wal package (*.wal, and *.tmp in raft/ or
// raft.tmp/) and the snapshot store's files (*.snap, *.meta, *.tmp in
// snapshots/). For them:
//
//   - write, truncate/ftruncate, an O_TRUNC open and a size-extending
//     fallocate (mode 0, etcd's preallocation) change only an in-memory
//     state per backing file (keyed by inode number, so it follows a
//     rename and survives the kernel forgetting the FUSE inode): the 4 KiB
//     blocks written, the size, and the lowest truncation point; the
//     backing file is not touched;
//   - read and getattr (the size) see that state over the backing file,
//     so the writing process reads its own writes;
//   - fsync or fdatasync through any handle of the file writes the state
//     to the backing file (preallocation becomes a sparse size), then
//     syncs it;
//   - DropUnsynced discards them all: the power cut;
//   - the files are opened with FOPEN_DIRECT_IO, and attributes and
//     entries are not cached by the kernel, so that no page cache hides
//     the loss; such files cannot be mmapped, which rdb does not do;
//   - HoldSyncs makes their fsyncs (all, or those of chosen files) wait,
//     applying nothing, so that a test can cut exactly while a writer is
//     inside fsync; HeldSyncs and PendingOf tell the test when.
//
// # What is not lazy
//
//   - Metadata: create, mkdir, rename, unlink, link, chmod and directory
//     fsync reach the backing directory at once. A real power cut can also
//     lose a rename or a new file whose directory was not fsynced; this
//     file system does not model that.
//   - By default the SQLite database (db.sqlite, -wal, -shm) and every
//     other file pass straight through, since rdb treats the raft log as
//     the source of truth and replays it after the database's last durable
//     point on restart. db.sqlite and db.sqlite-wal can be made lazy with
//     WithLazyRule (TestPowerCut's single-sqlite case does, and found
//     docs/powercut-findings.md #1); -shm never can: SQLite mmaps it,
//     which direct I/O forbids, and it holds nothing durable.
//   - A dropped write vanishes whole; a real disk may also keep part of a
//     write (torn sectors) or reorder writes between fsyncs. Bit flips and
//     torn tails are fault F14, tested separately.
//   - Locks (flock, fcntl and OFD locks, which etcd's WAL takes) are left to
//     the kernel, which handles them locally because the file system does
//     not claim lock support; that is right for one machine.
//
// # Concurrency
//
// The FS methods may be called concurrently with each other and with the
// file system's users. Each lazy file's pending changes are guarded by
// their own mutex, held while an fsync applies them.
package lazyfs
