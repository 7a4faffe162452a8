package snapshot

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// File and directory permissions for the store.
const (
	dirPerm  = 0o750
	filePerm = 0o640
)

// Store is a directory of snapshots. Each snapshot is a payload file and a
// .meta file beside it; see the package documentation for the format and
// the commit protocol.
//
// All methods are safe for concurrent use. Only one Store may use a
// directory at a time (Open removes temporary files it finds there).
type Store struct {
	dir string

	mu sync.Mutex // serializes commits against Reap and guards pending
	// pending holds the base names of snapshots being written by a
	// Writer or Import, so that two writers never share a temporary file.
	pending map[string]bool
}

// Open opens the store in dir, creating the directory if needed, and
// removes temporary files left by a crash in the middle of a write.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	removed := false
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), tmpSuffix) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open snapshot store: remove temp file: %w", err)
		}
		removed = true
	}
	if removed {
		if err := syncDir(dir); err != nil {
			return nil, fmt.Errorf("open snapshot store: %w", err)
		}
	}
	return &Store{dir: dir, pending: make(map[string]bool)}, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Path returns the path of the payload file of the snapshot at
// meta.Term and meta.Index. The file exists only if the snapshot does.
func (s *Store) Path(meta Meta) string {
	return filepath.Join(s.dir, baseName(meta.Term, meta.Index)+dataSuffix)
}

func (s *Store) metaPath(term, index uint64) string {
	return filepath.Join(s.dir, baseName(term, index)+metaSuffix)
}

// reserve marks the snapshot at term/index as being written. It returns
// ErrExists if it is committed already or another writer holds it.
// Callers must release it with s.release.
func (s *Store) reserve(term, index uint64) error {
	if index == 0 {
		return fmt.Errorf("snapshot: index must be positive")
	}
	name := baseName(term, index)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[name] {
		return fmt.Errorf("%w: term %d index %d is being written", ErrExists, term, index)
	}
	if _, err := os.Stat(s.metaPath(term, index)); err == nil {
		return fmt.Errorf("%w: term %d index %d", ErrExists, term, index)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	s.pending[name] = true
	return nil
}

func (s *Store) release(term, index uint64) {
	s.mu.Lock()
	delete(s.pending, baseName(term, index))
	s.mu.Unlock()
}

// Writer writes one snapshot payload into the store. It is an io.Writer;
// nothing is visible in the store until Commit returns successfully.
// A Writer is for use by one goroutine. Every Writer must end with Commit
// or Abort.
type Writer struct {
	s    *Store
	meta Meta
	tmp  string // temporary payload file
	f    *os.File
	h    hash.Hash
	n    int64
	done bool
}

// Create starts writing the snapshot described by meta (Index, Term and
// ConfState; Size is computed). If meta.SHA256 is set, Commit checks the
// payload against it. Create returns ErrExists if that snapshot is
// already committed or being written.
func (s *Store) Create(meta Meta) (*Writer, error) {
	if err := s.reserve(meta.Term, meta.Index); err != nil {
		return nil, fmt.Errorf("create snapshot: %w", err)
	}
	tmp := s.Path(meta) + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, filePerm)
	if err != nil {
		s.release(meta.Term, meta.Index)
		return nil, fmt.Errorf("create snapshot: %w", err)
	}
	return &Writer{s: s, meta: meta, tmp: tmp, f: f, h: sha256.New()}, nil
}

// Write appends p to the payload.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, ErrClosed
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Commit makes the snapshot durable and visible and returns its final
// metadata (Size, SHA256 and CreatedAt filled in). It returns ErrCorrupt
// if meta.SHA256 was given to Create and the payload does not match. On
// any error the temporary files are removed and the snapshot does not
// exist. After Commit the Writer is closed.
func (w *Writer) Commit() (Meta, error) {
	if w.done {
		return Meta{}, ErrClosed
	}
	w.done = true
	defer w.s.release(w.meta.Term, w.meta.Index)
	meta, err := w.commit()
	if err != nil {
		_ = os.Remove(w.tmp)
		return Meta{}, fmt.Errorf("commit snapshot: %w", err)
	}
	return meta, nil
}

func (w *Writer) commit() (Meta, error) {
	// The payload must be on disk before any name points at it.
	syncErr := w.f.Sync()
	closeErr := w.f.Close()
	if err := errors.Join(syncErr, closeErr); err != nil {
		return Meta{}, err
	}
	sum := w.h.Sum(nil)
	if w.meta.SHA256 != nil && !bytes.Equal(sum, w.meta.SHA256) {
		return Meta{}, fmt.Errorf("%w: sha256 %x, want %x", ErrCorrupt, sum, w.meta.SHA256)
	}
	meta := w.meta
	meta.Size, meta.SHA256 = w.n, sum
	if meta.CreatedAt.IsZero() {
		meta.CreatedAt = time.Now().UTC()
	}
	return meta, w.s.install(meta, w.tmp)
}

// Abort discards the snapshot being written. It is safe to call after
// Commit (it then does nothing) and more than once.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	defer w.s.release(w.meta.Term, w.meta.Index)
	closeErr := w.f.Close()
	rmErr := os.Remove(w.tmp)
	if errors.Is(rmErr, fs.ErrNotExist) {
		rmErr = nil
	}
	if err := errors.Join(closeErr, rmErr); err != nil {
		return fmt.Errorf("abort snapshot: %w", err)
	}
	return nil
}

// install renames the durable payload file src into place and writes the
// metadata beside it. The caller holds the reservation for meta.
func (s *Store) install(meta Meta, src string) error {
	body, err := encodeMeta(meta)
	if err != nil {
		return err
	}
	metaPath := s.metaPath(meta.Term, meta.Index)
	metaTmp := metaPath + tmpSuffix
	// Write and fsync the metadata under a temporary name first, so the
	// window between the two renames is short.
	if err := writeFileSync(metaTmp, body); err != nil {
		_ = os.Remove(metaTmp)
		return err
	}

	// Reap must not see the payload without its .meta and delete it as
	// an orphan: hold mu from the first rename to the last fsync.
	s.mu.Lock()
	defer s.mu.Unlock()
	// 1. Payload first: a payload without .meta does not count.
	if err := os.Rename(src, s.Path(meta)); err != nil {
		_ = os.Remove(metaTmp)
		return err
	}
	// 2. Persist that rename before the .meta can name it, so no crash
	//    leaves a .meta whose payload rename was lost.
	if err := syncDir(s.dir); err != nil {
		_ = os.Remove(metaTmp)
		return err
	}
	// 3. The .meta rename is the commit point.
	if err := os.Rename(metaTmp, metaPath); err != nil {
		_ = os.Remove(metaTmp)
		return err
	}
	// 4. Make the commit durable before reporting success.
	return syncDir(s.dir)
}

// Discard removes a committed snapshot (a damaged one: see Verify): its
// metadata first, the commit point, then its payload.
func (s *Store) Discard(meta Meta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.metaPath(meta.Term, meta.Index)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshot: discard %v: %w", meta, err)
	}
	if err := os.Remove(s.Path(meta)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshot: discard %v: %w", meta, err)
	}
	return syncDir(s.dir)
}

// Import adopts an already-written payload file at path as the snapshot
// described by meta, moving it into the store. If meta.SHA256 is set the
// file must match it (ErrCorrupt otherwise, and the file is left where it
// was); otherwise the checksum is computed. The file is renamed if it is
// on the same file system as the store and copied (then removed)
// otherwise. Import returns the final metadata, or ErrExists if that
// snapshot is already committed or being written.
func (s *Store) Import(meta Meta, path string) (Meta, error) {
	if err := s.reserve(meta.Term, meta.Index); err != nil {
		return Meta{}, fmt.Errorf("import snapshot: %w", err)
	}
	final, err := s.importFile(meta, path)
	s.release(meta.Term, meta.Index)
	if errors.Is(err, syscall.EXDEV) {
		return s.importCopy(meta, path)
	}
	if err != nil {
		return Meta{}, fmt.Errorf("import snapshot: %w", err)
	}
	return final, nil
}

func (s *Store) importFile(meta Meta, path string) (Meta, error) {
	f, err := os.Open(path)
	if err != nil {
		return Meta{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Meta{}, err
	}
	sum := h.Sum(nil)
	if meta.SHA256 != nil && !bytes.Equal(sum, meta.SHA256) {
		return Meta{}, fmt.Errorf("%w: sha256 %x, want %x", ErrCorrupt, sum, meta.SHA256)
	}
	// The file may never have been synced by whoever wrote it.
	if err := f.Sync(); err != nil {
		return Meta{}, err
	}
	meta.Size, meta.SHA256 = n, sum
	if meta.CreatedAt.IsZero() {
		meta.CreatedAt = time.Now().UTC()
	}
	return meta, s.install(meta, path)
}

// importCopy is Import for a file on another file system.
func (s *Store) importCopy(meta Meta, path string) (Meta, error) {
	f, err := os.Open(path)
	if err != nil {
		return Meta{}, fmt.Errorf("import snapshot: %w", err)
	}
	defer f.Close()
	w, err := s.Create(meta)
	if err != nil {
		return Meta{}, fmt.Errorf("import snapshot: %w", err)
	}
	if _, err := io.Copy(w, f); err != nil {
		_ = w.Abort()
		return Meta{}, fmt.Errorf("import snapshot: %w", err)
	}
	final, err := w.Commit()
	if err != nil {
		return Meta{}, fmt.Errorf("import snapshot: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return Meta{}, fmt.Errorf("import snapshot: remove source: %w", err)
	}
	return final, nil
}

// List returns the complete snapshots in the store, newest first (by
// index, then term). A snapshot is complete when its .meta file decodes
// and its payload file exists with the recorded size; List does not read
// payloads (see Verify). The caller owns the returned slice.
func (s *Store) List() ([]Meta, error) {
	metas, _, err := s.scan()
	return metas, err
}

// scan lists complete snapshots and, separately, the names of files that
// belong to no complete snapshot (orphans).
func (s *Store) scan() (metas []Meta, orphans []string, err error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("list snapshots: %w", err)
	}
	type files struct{ data, meta string }
	byBase := make(map[string]*files)
	var bases []string
	for _, e := range entries {
		term, index, suffix, ok := parseName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		base := baseName(term, index)
		f := byBase[base]
		if f == nil {
			f = &files{}
			byBase[base] = f
			bases = append(bases, base)
		}
		if suffix == dataSuffix {
			f.data = e.Name()
		} else {
			f.meta = e.Name()
		}
	}
	for _, base := range bases {
		f := byBase[base]
		if m, ok := s.complete(f.data, f.meta); ok {
			metas = append(metas, m)
			continue
		}
		for _, name := range []string{f.data, f.meta} {
			if name != "" {
				orphans = append(orphans, name)
			}
		}
	}
	slices.SortFunc(metas, func(a, b Meta) int {
		if a.Index != b.Index {
			return -cmpUint(a.Index, b.Index)
		}
		return -cmpUint(a.Term, b.Term)
	})
	return metas, orphans, nil
}

// complete reports whether the named files form a complete snapshot.
func (s *Store) complete(dataName, metaName string) (Meta, bool) {
	if dataName == "" || metaName == "" {
		return Meta{}, false
	}
	b, err := os.ReadFile(filepath.Join(s.dir, metaName))
	if err != nil {
		return Meta{}, false
	}
	m, err := decodeMeta(b)
	if err != nil {
		return Meta{}, false
	}
	term, index, _, _ := parseName(metaName)
	if m.Term != term || m.Index != index {
		return Meta{}, false
	}
	fi, err := os.Stat(filepath.Join(s.dir, dataName))
	if err != nil || fi.Size() != m.Size {
		return Meta{}, false
	}
	return m, true
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Newest returns the newest complete snapshot and the path of its
// payload, or ErrNotFound if there is none. It does not verify the
// payload's checksum; call Verify before trusting it.
func (s *Store) Newest() (Meta, string, error) {
	metas, err := s.List()
	if err != nil {
		return Meta{}, "", err
	}
	if len(metas) == 0 {
		return Meta{}, "", ErrNotFound
	}
	return metas[0], s.Path(metas[0]), nil
}

// Verify reads the payload of the snapshot described by meta and checks
// its size and SHA-256 against meta. It returns ErrNotFound if the file
// does not exist and ErrCorrupt on any mismatch.
func (s *Store) Verify(meta Meta) error {
	f, err := os.Open(s.Path(meta))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("verify %v: %w", meta, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("verify %v: %w", meta, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("verify %v: %w", meta, err)
	}
	if n != meta.Size {
		return fmt.Errorf("verify %v: %w: size %d", meta, ErrCorrupt, n)
	}
	if sum := h.Sum(nil); !bytes.Equal(sum, meta.SHA256) {
		return fmt.Errorf("verify %v: %w: sha256 %x, want %x", meta, ErrCorrupt, sum, meta.SHA256)
	}
	return nil
}

// Reap keeps the newest keep complete snapshots and removes all other
// snapshot files: older snapshots, payloads without metadata, metadata
// without (or with a wrong-sized) payload, and undecodable metadata.
// Snapshots being written are not touched. Readers that already opened a
// removed payload keep reading it (on POSIX systems).
func (s *Store) Reap(keep int) error {
	if keep < 0 {
		return fmt.Errorf("reap snapshots: keep %d < 0", keep)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	metas, orphans, err := s.scan()
	if err != nil {
		return fmt.Errorf("reap snapshots: %w", err)
	}
	var remove []string
	for _, m := range metas[min(keep, len(metas)):] {
		// The .meta goes first: once it is gone the snapshot no longer
		// counts, so a crash cannot leave a listed snapshot without data.
		base := baseName(m.Term, m.Index)
		remove = append(remove, base+metaSuffix, base+dataSuffix)
	}
	// Orphaned .meta files first, for the same reason.
	slices.SortStableFunc(orphans, func(a, b string) int {
		return cmpBool(strings.HasSuffix(b, metaSuffix), strings.HasSuffix(a, metaSuffix))
	})
	remove = append(remove, orphans...)
	var errs []error
	for _, name := range remove {
		if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(remove) > 0 {
		errs = append(errs, syncDir(s.dir))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reap snapshots: %w", err)
	}
	return nil
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// writeFileSync writes b to a new file at path and fsyncs it.
func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, filePerm)
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(werr, serr, cerr)
}

// syncDir fsyncs a directory so that renames and removals in it are
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	return errors.Join(serr, cerr)
}
