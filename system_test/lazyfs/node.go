package lazyfs

import (
	"context"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// node is a loopback inode that knows whether its file is lazy. Every
// operation it does not override passes straight through to the backing
// directory (fs.LoopbackNode): directory operations, xattrs, and all
// operations on files that are not lazy.
type node struct {
	fs.LoopbackNode
	lfs  *FS
	ino  uint64 // inode number of the backing file
	lazy bool   // see IsLazy
}

var (
	_ fs.NodeOpener    = (*node)(nil)
	_ fs.NodeCreater   = (*node)(nil)
	_ fs.NodeGetattrer = (*node)(nil)
	_ fs.NodeSetattrer = (*node)(nil)
	_ fs.NodeLookuper  = (*node)(nil)
	_ fs.NodeUnlinker  = (*node)(nil)
	_ fs.NodeRenamer   = (*node)(nil)
	_ fs.NodeFsyncer   = (*node)(nil)
)

// backingPath returns the path of the node's file in the backing
// directory.
func (n *node) backingPath() string {
	return filepath.Join(n.RootData.Path, n.Path(nil))
}

// Open opens a lazy file with a private read-write descriptor and direct
// I/O, so that the kernel's page cache never holds data that
// DropUnsynced removes. Other files open as in the loopback.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if !n.lazy {
		return n.LoopbackNode.Open(ctx, flags)
	}
	f, errno := n.openLazy(n.backingPath(), flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return f, fuse.FOPEN_DIRECT_IO, 0
}

func (n *node) openLazy(path string, flags uint32) (*lazyFile, syscall.Errno) {
	// The state's own read-write descriptor serves every handle: an
	// fsync through any of them writes the pending data back.
	s, err := n.lfs.state(n.ino, path)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	if flags&syscall.O_TRUNC != 0 {
		// A truncating open is a data change like any other: lazy.
		if err := s.truncate(0); err != nil {
			return nil, fs.ToErrno(err)
		}
	}
	return &lazyFile{state: s, node: n}, 0
}

// Create creates the file in the backing directory at once (metadata is
// not lazy); for a lazy file, a truncation of an existing file is kept
// pending like a write.
func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ch, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags&^syscall.O_TRUNC, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	child, ok := ch.Operations().(*node)
	if !ok || !child.lazy {
		if flags&syscall.O_TRUNC != 0 {
			// Not lazy: truncate now, as the loopback would have.
			if fsa, ok := fh.(fs.FileSetattrer); ok {
				in := &fuse.SetAttrIn{}
				in.Valid = fuse.FATTR_SIZE
				var aout fuse.AttrOut
				if errno := fsa.Setattr(ctx, in, &aout); errno != 0 {
					return nil, nil, 0, errno
				}
				out.Attr = aout.Attr
			}
		}
		return ch, fh, fuseFlags, 0
	}
	if r, ok := fh.(fs.FileReleaser); ok {
		r.Release(ctx)
	}
	f, errno := child.openLazy(filepath.Join(n.backingPath(), name), flags)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	if size, err := f.state.logicalSize(); err == nil {
		out.Size = uint64(size)
	}
	return ch, f, fuse.FOPEN_DIRECT_IO, 0
}

// Lookup reports a lazy child's size as its writer sees it.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno != 0 {
		return ch, errno
	}
	if child, ok := ch.Operations().(*node); ok && child.lazy {
		if s := n.lfs.lookupState(child.ino); s != nil {
			if size, err := s.logicalSize(); err == nil {
				out.Size = uint64(size)
			}
		}
	}
	return ch, 0
}

// Getattr overlays the pending size of a lazy file.
func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if errno := n.LoopbackNode.Getattr(ctx, f, out); errno != 0 {
		return errno
	}
	if _, ok := f.(*lazyFile); ok {
		return 0 // lazyFile.Getattr overlaid it already
	}
	if n.lazy {
		if s := n.lfs.lookupState(n.ino); s != nil {
			if size, err := s.logicalSize(); err == nil {
				out.Size = uint64(size)
			}
		}
	}
	return 0
}

// Setattr keeps a lazy file's size change (truncate, ftruncate) pending;
// every other attribute passes through.
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	sz, ok := in.GetSize()
	if !n.lazy || !ok {
		return n.LoopbackNode.Setattr(ctx, f, in, out)
	}
	s, err := n.lfs.state(n.ino, n.backingPath())
	if err != nil {
		return fs.ToErrno(err)
	}
	if err := s.truncate(int64(sz)); err != nil {
		return fs.ToErrno(err)
	}
	rest := *in
	rest.Valid &^= fuse.FATTR_SIZE
	// With a *lazyFile (not a FileSetattrer) the loopback changes the
	// remaining attributes by path, then calls lazyFile.Getattr.
	if errno := n.LoopbackNode.Setattr(ctx, f, &rest, out); errno != 0 {
		return errno
	}
	if _, ok := f.(*lazyFile); !ok {
		if size, err := s.logicalSize(); err == nil {
			out.Size = uint64(size)
		}
	}
	return 0
}

// Fsync writes a lazy file's pending data back and syncs it; other files
// and directories sync as in the loopback.
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	switch f := f.(type) {
	case *lazyFile:
		return f.Fsync(ctx, flags)
	case fs.FileFsyncer:
		return f.Fsync(ctx, flags)
	case fs.FileFsyncdirer:
		return f.Fsyncdir(ctx, flags)
	}
	return syscall.ENOTSUP
}

// Unlink removes the file at once (not lazy) and forgets its pending
// writes when this was its last name.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	var st syscall.Stat_t
	statErr := syscall.Lstat(filepath.Join(n.backingPath(), name), &st)
	if errno := n.LoopbackNode.Unlink(ctx, name); errno != 0 {
		return errno
	}
	if statErr == nil && st.Nlink <= 1 {
		n.lfs.forget(st.Ino)
	}
	return 0
}

// Rename renames at once (not lazy) and forgets the pending writes of a
// file the rename replaced.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	var target, src syscall.Stat_t
	targetErr := error(syscall.ENOENT)
	if p, ok := newParent.(*node); ok {
		targetErr = syscall.Lstat(filepath.Join(p.backingPath(), newName), &target)
	}
	srcErr := syscall.Lstat(filepath.Join(n.backingPath(), name), &src)
	if errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags); errno != 0 {
		return errno
	}
	if targetErr == nil && srcErr == nil && target.Ino != src.Ino && target.Nlink <= 1 && flags&unix.RENAME_EXCHANGE == 0 {
		n.lfs.forget(target.Ino)
	}
	return 0
}
