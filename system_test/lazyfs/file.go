package lazyfs

import (
	"context"
	"math"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// blockSize is the unit in which pending data is kept.
const blockSize = 4096

// fileState holds the changes made to one lazy backing file since its
// last fsync, as the file's content would be after them: whole blocks
// that were written, the logical size, and the point past which the
// backing file's data no longer counts (a truncation). The backing file
// is changed only by sync. Reads and writes cost O(blocks touched),
// whatever the number of changes pending.
type fileState struct {
	fd int // read-write descriptor of the backing file, for the state's life

	mu      sync.Mutex       // guards the fields below
	dirty   bool             // changes pending; the fields below are valid
	size    int64            // logical size
	trunc   int64            // backing bytes at or past trunc read as zeros
	blocks  map[int64][]byte // block index → the block's logical content
	written int64            // bytes written since the last sync
}

// backingSize returns the backing file's size.
func (s *fileState) backingSize() (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(s.fd, &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}

// begin makes the state dirty, starting from the backing file. Called
// with mu held.
func (s *fileState) begin() error {
	if s.dirty {
		return nil
	}
	size, err := s.backingSize()
	if err != nil {
		return err
	}
	s.dirty, s.size, s.trunc, s.blocks, s.written = true, size, math.MaxInt64, map[int64][]byte{}, 0
	return nil
}

// readBacking reads backing data at off into buf, as far as it counts
// (below trunc and the backing size); the rest of buf is zeroed. Called
// with mu held.
func (s *fileState) readBacking(buf []byte, off int64) error {
	clear(buf)
	size, err := s.backingSize()
	if err != nil {
		return err
	}
	end := min(off+int64(len(buf)), size)
	if s.dirty {
		end = min(end, s.trunc)
	}
	for done := int64(0); off+done < end; {
		n, err := syscall.Pread(s.fd, buf[done:end-off], off+done)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		done += int64(n)
	}
	return nil
}

// block returns block b's logical content, loading it when not yet
// pending. Called with mu held, dirty.
func (s *fileState) block(b int64) ([]byte, error) {
	if blk, ok := s.blocks[b]; ok {
		return blk, nil
	}
	blk := make([]byte, blockSize)
	if err := s.readBacking(blk, b*blockSize); err != nil {
		return nil, err
	}
	s.blocks[b] = blk
	return blk, nil
}

func (s *fileState) write(data []byte, off int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return err
	}
	for done := 0; done < len(data); {
		pos := off + int64(done)
		blk, err := s.block(pos / blockSize)
		if err != nil {
			return err
		}
		done += copy(blk[pos%blockSize:], data[done:])
	}
	s.size = max(s.size, off+int64(len(data)))
	s.written += int64(len(data))
	return nil
}

// truncate sets the logical size; bytes past it read as zeros if the
// file grows again.
func (s *fileState) truncate(size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return err
	}
	if size < s.size {
		if size%blockSize != 0 {
			blk, err := s.block(size / blockSize)
			if err != nil {
				return err
			}
			clear(blk[size%blockSize:])
		}
		for b := range s.blocks {
			if b*blockSize >= size {
				delete(s.blocks, b)
			}
		}
		s.trunc = min(s.trunc, size)
	}
	s.size = size
	return nil
}

// extend grows the logical size to at least size (fallocate).
func (s *fileState) extend(size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return err
	}
	s.size = max(s.size, size)
	return nil
}

// logicalSize returns the size as the writer sees it.
func (s *fileState) logicalSize() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dirty {
		return s.size, nil
	}
	return s.backingSize()
}

// read fills dest with the logical content at off and returns the part
// read (short at the end of the file).
func (s *fileState) read(dest []byte, off int64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	size := s.size
	if !s.dirty {
		var err error
		if size, err = s.backingSize(); err != nil {
			return nil, err
		}
	}
	if off >= size {
		return nil, nil
	}
	buf := dest[:min(int64(len(dest)), size-off)]
	if !s.dirty {
		return buf, s.readBacking(buf, off)
	}
	for done := 0; done < len(buf); {
		pos := off + int64(done)
		b, in := pos/blockSize, pos%blockSize
		n := min(len(buf)-done, int(blockSize-in))
		if blk, ok := s.blocks[b]; ok {
			copy(buf[done:done+n], blk[in:])
		} else if err := s.readBacking(buf[done:done+n], pos); err != nil {
			return nil, err
		}
		done += n
	}
	return buf, nil
}

// sync applies the pending state to the backing file and syncs it.
// After an error the state stays pending, and applying it again is safe.
func (s *fileState) sync(datasync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dirty {
		size, err := s.backingSize()
		if err != nil {
			return err
		}
		if s.trunc < size {
			if err := syscall.Ftruncate(s.fd, s.trunc); err != nil {
				return err
			}
		}
		for b, blk := range s.blocks {
			off := b * blockSize
			data := blk[:min(int64(blockSize), s.size-off)]
			for done := 0; done < len(data); {
				n, err := syscall.Pwrite(s.fd, data[done:], off+int64(done))
				if err != nil {
					return err
				}
				done += n
			}
		}
		if err := syscall.Ftruncate(s.fd, s.size); err != nil {
			return err
		}
		s.dirty, s.blocks, s.written = false, nil, 0
	}
	if datasync {
		return syscall.Fdatasync(s.fd)
	}
	return syscall.Fsync(s.fd)
}

// drop discards the pending state and returns the bytes of written data
// it held.
func (s *fileState) drop() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.written
	s.dirty, s.blocks, s.written = false, nil, 0
	return n
}

// pending returns the bytes written since the last sync.
func (s *fileState) pending() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written
}

// close closes the backing descriptor.
func (s *fileState) close() error { return syscall.Close(s.fd) }

// lazyFile is an open lazy file. All its I/O goes through the file's
// state, shared by every handle of the file.
type lazyFile struct {
	state *fileState
	node  *node
}

var (
	_ fs.FileReader    = (*lazyFile)(nil)
	_ fs.FileWriter    = (*lazyFile)(nil)
	_ fs.FileFsyncer   = (*lazyFile)(nil)
	_ fs.FileFlusher   = (*lazyFile)(nil)
	_ fs.FileGetattrer = (*lazyFile)(nil)
	_ fs.FileAllocater = (*lazyFile)(nil)
)

// Read returns the file's content with the pending changes, so that the
// writer reads its own writes.
func (f *lazyFile) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	buf, err := f.state.read(dest, off)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	return fuse.ReadResultData(buf), 0
}

// Write keeps data as a pending change; the backing file is not touched.
func (f *lazyFile) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if err := f.state.write(data, off); err != nil {
		return 0, fs.ToErrno(err)
	}
	return uint32(len(data)), 0
}

// Fsync applies the pending changes to the backing file and syncs it
// (fdatasync when flags ask for it), unless fsyncs are held.
func (f *lazyFile) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if !f.node.lfs.holdSync(ctx, f.node.Path(nil)) {
		// The kernel interrupts the request of a killed process.
		return syscall.EINTR
	}
	return fs.ToErrno(f.state.sync(flags&1 != 0)) // 1: FUSE_FSYNC_FDATASYNC
}

// Flush does nothing: closing a file does not make its data durable.
func (f *lazyFile) Flush(ctx context.Context) syscall.Errno { return 0 }

// Getattr returns the backing file's attributes with the pending size.
func (f *lazyFile) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Fstat(f.state.fd, &st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStat(&st)
	size, err := f.state.logicalSize()
	if err != nil {
		return fs.ToErrno(err)
	}
	out.Size = uint64(size)
	return 0
}

// Allocate keeps a size-extending fallocate (mode 0, as etcd's
// preallocation uses) pending; it reaches the backing file as a size
// (sparse), not as allocated blocks. FALLOC_FL_KEEP_SIZE changes neither
// size nor content and passes through; other modes (punching holes) are
// not supported.
func (f *lazyFile) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	switch mode {
	case 0:
		return fs.ToErrno(f.state.extend(int64(off + size)))
	case unix.FALLOC_FL_KEEP_SIZE:
		return fs.ToErrno(unix.Fallocate(f.state.fd, mode, int64(off), int64(size)))
	}
	return syscall.EOPNOTSUPP
}
