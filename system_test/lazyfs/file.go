package lazyfs

import (
	"context"
	"errors"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// opKind is the kind of a pending change to a lazy file.
type opKind int

const (
	opWrite    opKind = iota // data at off
	opTruncate               // set the size to size
	opExtend                 // grow the size to at least size (fallocate)
)

// op is one pending change, in the order the writer made them.
type op struct {
	kind opKind
	off  int64  // opWrite, opExtend: start offset
	data []byte // opWrite: a private copy
	size int64  // opTruncate: new size; opExtend: off+len
}

// fileState holds the changes made to one lazy backing file since its
// last fsync. The backing file itself is changed only by fsync, under mu.
type fileState struct {
	mu  sync.Mutex
	ops []op // guarded by mu
}

func (s *fileState) add(o op) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, o)
}

func (s *fileState) truncate(size int64) { s.add(op{kind: opTruncate, size: size}) }

// size returns the file's size as its writer sees it, given the backing
// file's size.
func (s *fileState) size(backing uint64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return replaySize(int64(backing), s.ops)
}

func replaySize(size int64, ops []op) int64 {
	for _, o := range ops {
		switch o.kind {
		case opWrite:
			size = max(size, o.off+int64(len(o.data)))
		case opTruncate:
			size = o.size
		case opExtend:
			size = max(size, o.size)
		}
	}
	return size
}

func (s *fileState) drop() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := pendingBytes(s.ops)
	s.ops = nil
	return n
}

func (s *fileState) pending() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return pendingBytes(s.ops)
}

func pendingBytes(ops []op) int64 {
	var n int64
	for _, o := range ops {
		n += int64(len(o.data))
	}
	return n
}

// lazyFile is an open lazy file. fd is a read-write descriptor of the
// backing file, private to this handle.
type lazyFile struct {
	fd    int
	state *fileState
	node  *node
}

var (
	_ fs.FileReader    = (*lazyFile)(nil)
	_ fs.FileWriter    = (*lazyFile)(nil)
	_ fs.FileFsyncer   = (*lazyFile)(nil)
	_ fs.FileFlusher   = (*lazyFile)(nil)
	_ fs.FileReleaser  = (*lazyFile)(nil)
	_ fs.FileGetattrer = (*lazyFile)(nil)
	_ fs.FileAllocater = (*lazyFile)(nil)
)

// Read returns the backing file's data with the pending changes laid over
// it, so that the writer reads its own writes.
func (f *lazyFile) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	var st syscall.Stat_t
	if err := syscall.Fstat(f.fd, &st); err != nil {
		return nil, fs.ToErrno(err)
	}
	size := replaySize(st.Size, f.state.ops)
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	buf := dest[:min(int64(len(dest)), size-off)]
	clear(buf)
	if off < st.Size {
		want := buf[:min(int64(len(buf)), st.Size-off)]
		for done := 0; done < len(want); {
			n, err := syscall.Pread(f.fd, want[done:], off+int64(done))
			if err != nil {
				return nil, fs.ToErrno(err)
			}
			if n == 0 {
				break
			}
			done += n
		}
	}
	end := off + int64(len(buf))
	for _, o := range f.state.ops {
		switch o.kind {
		case opWrite:
			lo, hi := max(off, o.off), min(end, o.off+int64(len(o.data)))
			if lo < hi {
				copy(buf[lo-off:hi-off], o.data[lo-o.off:hi-o.off])
			}
		case opTruncate:
			// Bytes past a truncation read as zeros if the file grows
			// again.
			if o.size < end {
				clear(buf[max(o.size, off)-off:])
			}
		}
	}
	return fuse.ReadResultData(buf), 0
}

// Write keeps a copy of data as a pending change; the backing file is
// not touched.
func (f *lazyFile) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	f.state.add(op{kind: opWrite, off: off, data: append([]byte(nil), data...)})
	return uint32(len(data)), 0
}

// Fsync applies the pending changes to the backing file in order and
// syncs it (fdatasync when flags ask for it).
func (f *lazyFile) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if !f.node.lfs.holdSync(ctx, f.node.Path(nil)) {
		// The kernel interrupts the request of a killed process.
		return syscall.EINTR
	}
	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	for i, o := range f.state.ops {
		if err := apply(f.fd, o); err != nil {
			// Keep what was not applied: a retried fsync goes on.
			f.state.ops = f.state.ops[i:]
			return fs.ToErrno(err)
		}
	}
	f.state.ops = nil
	var err error
	if flags&1 != 0 { // FUSE_FSYNC_FDATASYNC
		err = syscall.Fdatasync(f.fd)
	} else {
		err = syscall.Fsync(f.fd)
	}
	return fs.ToErrno(err)
}

func apply(fd int, o op) error {
	switch o.kind {
	case opWrite:
		for done := 0; done < len(o.data); {
			n, err := syscall.Pwrite(fd, o.data[done:], o.off+int64(done))
			if err != nil {
				return err
			}
			done += n
		}
	case opTruncate:
		return syscall.Ftruncate(fd, o.size)
	case opExtend:
		err := unix.Fallocate(fd, 0, o.off, o.size-o.off)
		if errors.Is(err, syscall.EOPNOTSUPP) {
			var st syscall.Stat_t
			if err := syscall.Fstat(fd, &st); err != nil {
				return err
			}
			if st.Size < o.size {
				return syscall.Ftruncate(fd, o.size)
			}
			return nil
		}
		return err
	}
	return nil
}

// Flush does nothing: closing a file does not make its data durable.
func (f *lazyFile) Flush(ctx context.Context) syscall.Errno { return 0 }

// Release closes the backing descriptor. Pending changes stay with the
// file (not the handle) until an fsync or DropUnsynced.
func (f *lazyFile) Release(ctx context.Context) syscall.Errno {
	return fs.ToErrno(syscall.Close(f.fd))
}

// Getattr returns the backing file's attributes with the pending size.
func (f *lazyFile) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Fstat(f.fd, &st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStat(&st)
	out.Size = uint64(f.state.size(uint64(st.Size)))
	return 0
}

// Allocate keeps a size-extending fallocate (mode 0, as etcd's
// preallocation uses) pending; FALLOC_FL_KEEP_SIZE changes neither size
// nor content and passes through; other modes (punching holes) are not
// supported.
func (f *lazyFile) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	switch mode {
	case 0:
		f.state.add(op{kind: opExtend, off: int64(off), size: int64(off + size)})
		return 0
	case unix.FALLOC_FL_KEEP_SIZE:
		return fs.ToErrno(unix.Fallocate(f.fd, mode, int64(off), int64(size)))
	}
	return syscall.EOPNOTSUPP
}
