package db

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// Page checksums.
//
// SQLite keeps no checksum of its own on database pages: a flipped bit in a
// stored value that leaves cells and indexes consistent passes
// integrity_check and is served (docs/chaos-findings.md, finding 11). rdb
// closes that gap the way SQLite's cksumvfs extension does, which modernc
// does not ship: every database rdb writes reserves 8 bytes at the end of
// each page (header byte 20), and a VFS shim, registered as the process's
// default VFS, stores a checksum of the rest of the page there when the page
// is written to the database file and checks it when the page is read back.
// A mismatch fails the read with SQLITE_IOERR_DATA.
//
// Unlike cksumvfs, the shim covers the main database file only, not the
// WAL: a WAL frame carries SQLite's own checksum, computed over the page
// before the VFS sees it, so rewriting the page's last bytes on the way into
// the WAL would break that frame checksum. In WAL mode pages reach the
// database file only when a checkpoint copies them from the WAL, and that is
// where their checksum is written. Files whose header does not say 8 reserve
// bytes pass through untouched: the shim is then a no-op, as cksumvfs is.
//
// Whether a file is checksummed is learned from its header: when SQLite
// reads or writes the first 100 bytes (which it does when it opens a
// database and whenever page 1 is written to the file). A file being
// created has no header yet; a writer that spills pages before page 1
// (VACUUM INTO a fresh file) names the file with the URI parameter
// pageChecksumsParam=1, which turns checksums on from the first write and
// makes a page 1 without 8 reserve bytes an error instead of a silent
// mismatch.
//
// Memory-mapped reads bypass the shim, so xFetch declines on checksummed
// files (SQLite then reads through xRead).

// reserveBytes is the per-page space rdb reserves for the checksum.
const reserveBytes = 8

// pageChecksumsParam is the URI parameter that turns checksums on for a
// database file from its first write (see above).
const pageChecksumsParam = "rdb_page_checksums"

// checksumVFSName is the name the shim is registered under.
const checksumVFSName = "rdb-pagesum"

// sumFile is the shim's part of an open file, in C memory; the file of the
// VFS below it follows immediately (sumFileSize bytes in).
type sumFile struct {
	methods uintptr // sqlite3_file.pMethods: pageSumMethods
	name    uintptr // the file name SQLite passed to xOpen (lives as long as the file)
	on      int32   // 1: compute checksums on write and verify them on read
	forced  int32   // 1: on was set by pageChecksumsParam, page 1 must agree
}

const sumFileSize = unsafe.Sizeof(sumFile{})

var (
	pageSumOnce sync.Once
	pageSumErr  error
	// pageSumMethods is the C sqlite3_io_methods of checksummed files.
	pageSumMethods uintptr

	// checksumFaults counts pages whose checksum did not match on read.
	checksumFaults atomic.Int64
	// lastChecksumFault describes the latest mismatch (string).
	lastChecksumFault atomic.Value
)

// ChecksumFaults returns how many page reads failed their checksum in this
// process, and a description of the latest one ("" if none).
func ChecksumFaults() (int64, string) {
	last, _ := lastChecksumFault.Load().(string)
	return checksumFaults.Load(), last
}

// registerPageChecksums registers the shim over the current default VFS and
// makes it the default; later calls return the first call's result.
func registerPageChecksums() error {
	pageSumOnce.Do(func() { pageSumErr = doRegisterPageChecksums() })
	return pageSumErr
}

func doRegisterPageChecksums() error {
	tls := libc.NewTLS()
	defer tls.Close()
	zname, err := libc.CString(checksumVFSName)
	if err != nil {
		return err
	}
	if sqlite3.Xsqlite3_vfs_find(tls, zname) != 0 {
		libc.Xfree(tls, zname)
		return nil
	}
	orig := sqlite3.Xsqlite3_vfs_find(tls, 0)
	if orig == 0 {
		libc.Xfree(tls, zname)
		return fmt.Errorf("db: page checksums: no default sqlite vfs")
	}
	m := libc.Xcalloc(tls, 1, uint64(unsafe.Sizeof(sqlite3.Tsqlite3_io_methods{})))
	p := libc.Xcalloc(tls, 1, uint64(vfsSize))
	release := func() {
		for _, q := range []uintptr{m, p, zname} {
			if q != 0 {
				libc.Xfree(tls, q)
			}
		}
	}
	if m == 0 || p == 0 {
		release()
		return fmt.Errorf("db: page checksums: out of memory")
	}
	*(*sqlite3.Tsqlite3_io_methods)(cptr(m)) = sqlite3.Tsqlite3_io_methods{
		FiVersion:               3,
		FxClose:                 cFuncPointer(sumClose),
		FxRead:                  cFuncPointer(sumRead),
		FxWrite:                 cFuncPointer(sumWrite),
		FxTruncate:              cFuncPointer(sumTruncate),
		FxSync:                  cFuncPointer(sumSync),
		FxFileSize:              cFuncPointer(sumFileSizeOf),
		FxLock:                  cFuncPointer(sumLock),
		FxUnlock:                cFuncPointer(sumUnlock),
		FxCheckReservedLock:     cFuncPointer(sumCheckReservedLock),
		FxFileControl:           cFuncPointer(sumFileControl),
		FxSectorSize:            cFuncPointer(sumSectorSize),
		FxDeviceCharacteristics: cFuncPointer(sumDeviceCharacteristics),
		FxShmMap:                cFuncPointer(sumShmMap),
		FxShmLock:               cFuncPointer(sumShmLock),
		FxShmBarrier:            cFuncPointer(sumShmBarrier),
		FxShmUnmap:              cFuncPointer(sumShmUnmap),
		FxFetch:                 cFuncPointer(sumFetch),
		FxUnfetch:               cFuncPointer(sumUnfetch),
	}
	v := (*sqlite3.Tsqlite3_vfs)(cptr(p))
	*v = *(*sqlite3.Tsqlite3_vfs)(cptr(orig))
	v.FpNext = 0
	v.FzName = zname
	v.FpAppData = orig
	v.FszOsFile += int32(sumFileSize)
	v.FxOpen = cFuncPointer(sumOpen)
	// The other methods are the original's: they are called with this VFS
	// as their first argument, which the unix VFS reads only for
	// mxPathname (copied) in xFullPathname. xOpen is the exception (the
	// unix VFS keeps pVfs in the file and reads pAppData), so sumOpen
	// passes the original.
	if rc := sqlite3.Xsqlite3_vfs_register(tls, p, 1); rc != sqlite3.SQLITE_OK {
		release()
		return fmt.Errorf("db: page checksums: register vfs: rc %d", rc)
	}
	// No connection opens through the shim before this function returns
	// (it runs from init), so sumOpen sees the methods set.
	pageSumMethods = m
	return nil
}

// below returns the file of the VFS under the shim.
func below(pFile uintptr) uintptr { return pFile + sumFileSize }

func methodsOf(pFile uintptr) *sqlite3.Tsqlite3_io_methods {
	return (*sqlite3.Tsqlite3_io_methods)(cptr((*sqlite3.Tsqlite3_file)(cptr(pFile)).FpMethods))
}

func sumOpen(tls *libc.TLS, pVfs, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	orig := (*sqlite3.Tsqlite3_vfs)(cptr(pVfs)).FpAppData
	open := *(*func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{(*sqlite3.Tsqlite3_vfs)(cptr(orig)).FxOpen}))
	if flags&sqlite3.SQLITE_OPEN_MAIN_DB == 0 {
		return open(tls, orig, zName, pFile, flags, pOutFlags)
	}
	f := (*sumFile)(cptr(pFile))
	*f = sumFile{methods: pageSumMethods, name: zName}
	if zName != 0 {
		zp, err := libc.CString(pageChecksumsParam)
		if err != nil {
			return sqlite3.SQLITE_NOMEM
		}
		if sqlite3.Xsqlite3_uri_boolean(tls, zName, zp, 0) != 0 {
			f.on, f.forced = 1, 1
		}
		libc.Xfree(tls, zp)
	}
	rc := open(tls, orig, zName, below(pFile), flags, pOutFlags)
	if rc != sqlite3.SQLITE_OK {
		f.methods = 0
	}
	return rc
}

// noteHeader updates f.on from a buffer holding the file's first bytes. It
// reports false when a forced file gets a page 1 without 8 reserve bytes.
func (f *sumFile) noteHeader(buf []byte) bool {
	if len(buf) < 100 || string(buf[:16]) != sqliteMagic {
		return true
	}
	has := buf[20] == reserveBytes
	if f.forced != 0 && !has {
		return false
	}
	if has {
		f.on = 1
	} else {
		f.on = 0
	}
	return true
}

// isPage reports whether an I/O of n bytes is a whole database page.
func isPage(n int32) bool { return n >= 512 && n <= 65536 && n&(n-1) == 0 }

// pageChecksum computes cksumvfs's checksum of page[:len(page)-8]: two
// running 32-bit sums over little-endian words.
func pageChecksum(page []byte) (s1, s2 uint32) {
	data := page[:len(page)-reserveBytes]
	for i := 0; i+8 <= len(data); i += 8 {
		s1 += binary.LittleEndian.Uint32(data[i:]) + s2
		s2 += binary.LittleEndian.Uint32(data[i+4:]) + s1
	}
	return s1, s2
}

// pageSumOK reports whether page's last 8 bytes hold its checksum.
func pageSumOK(page []byte) bool {
	s1, s2 := pageChecksum(page)
	n := len(page)
	return binary.LittleEndian.Uint32(page[n-8:]) == s1 && binary.LittleEndian.Uint32(page[n-4:]) == s2
}

// setPageSum stores page's checksum in its last 8 bytes.
func setPageSum(page []byte) {
	s1, s2 := pageChecksum(page)
	n := len(page)
	binary.LittleEndian.PutUint32(page[n-8:], s1)
	binary.LittleEndian.PutUint32(page[n-4:], s2)
}

func sumRead(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	f := (*sumFile)(cptr(pFile))
	sub := below(pFile)
	rc := (*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxRead})))(tls, sub, zBuf, iAmt, iOfst)
	if rc != sqlite3.SQLITE_OK {
		return rc
	}
	buf := unsafe.Slice((*byte)(cptr(zBuf)), iAmt)
	if iOfst == 0 && !f.noteHeader(buf) {
		return sqlite3.SQLITE_IOERR_DATA
	}
	if f.on != 0 && isPage(iAmt) && !pageSumOK(buf) {
		checksumFaults.Add(1)
		lastChecksumFault.Store(fmt.Sprintf("page checksum mismatch at offset %d of %s", iOfst, libc.GoString(f.name)))
		return sqlite3.SQLITE_IOERR_DATA
	}
	return sqlite3.SQLITE_OK
}

func sumWrite(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	f := (*sumFile)(cptr(pFile))
	buf := unsafe.Slice((*byte)(cptr(zBuf)), iAmt)
	if iOfst == 0 && !f.noteHeader(buf) {
		return sqlite3.SQLITE_IOERR_WRITE
	}
	if f.on != 0 && isPage(iAmt) {
		// The buffer is SQLite's page image; the reserved bytes are ours.
		setPageSum(buf)
	}
	sub := below(pFile)
	return (*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxWrite})))(tls, sub, zBuf, iAmt, iOfst)
}

func sumClose(tls *libc.TLS, pFile uintptr) int32 {
	sub := below(pFile)
	return (*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxClose})))(tls, sub)
}

func sumTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	sub := below(pFile)
	return (*(*func(*libc.TLS, uintptr, int64) int32)(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxTruncate})))(tls, sub, size)
}

func sumSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	sub := below(pFile)
	return (*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxSync})))(tls, sub, flags)
}

func sumFileSizeOf(tls *libc.TLS, pFile, pSize uintptr) int32 {
	sub := below(pFile)
	return (*(*func(*libc.TLS, uintptr, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxFileSize})))(tls, sub, pSize)
}

func sumLock(tls *libc.TLS, pFile uintptr, eLock int32) int32 {
	sub := below(pFile)
	return (*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxLock})))(tls, sub, eLock)
}

func sumUnlock(tls *libc.TLS, pFile uintptr, eLock int32) int32 {
	sub := below(pFile)
	return (*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxUnlock})))(tls, sub, eLock)
}

func sumCheckReservedLock(tls *libc.TLS, pFile, pResOut uintptr) int32 {
	sub := below(pFile)
	return (*(*func(*libc.TLS, uintptr, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxCheckReservedLock})))(tls, sub, pResOut)
}

func sumFileControl(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32 {
	sub := below(pFile)
	return (*(*func(*libc.TLS, uintptr, int32, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxFileControl})))(tls, sub, op, pArg)
}

func sumSectorSize(tls *libc.TLS, pFile uintptr) int32 {
	sub := below(pFile)
	return (*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxSectorSize})))(tls, sub)
}

func sumDeviceCharacteristics(tls *libc.TLS, pFile uintptr) int32 {
	sub := below(pFile)
	return (*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxDeviceCharacteristics})))(tls, sub)
}

func sumShmMap(tls *libc.TLS, pFile uintptr, iPg, pgsz, bExtend int32, pp uintptr) int32 {
	sub := below(pFile)
	return (*(*func(*libc.TLS, uintptr, int32, int32, int32, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxShmMap})))(tls, sub, iPg, pgsz, bExtend, pp)
}

func sumShmLock(tls *libc.TLS, pFile uintptr, offset, n, flags int32) int32 {
	sub := below(pFile)
	return (*(*func(*libc.TLS, uintptr, int32, int32, int32) int32)(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxShmLock})))(tls, sub, offset, n, flags)
}

func sumShmBarrier(tls *libc.TLS, pFile uintptr) {
	sub := below(pFile)
	(*(*func(*libc.TLS, uintptr))(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxShmBarrier})))(tls, sub)
}

func sumShmUnmap(tls *libc.TLS, pFile uintptr, deleteFlag int32) int32 {
	sub := below(pFile)
	return (*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&struct{ uintptr }{methodsOf(sub).FxShmUnmap})))(tls, sub, deleteFlag)
}

func sumFetch(tls *libc.TLS, pFile uintptr, iOfst int64, iAmt int32, pp uintptr) int32 {
	f := (*sumFile)(cptr(pFile))
	sub := below(pFile)
	m := methodsOf(sub)
	if f.on != 0 || m.FiVersion < 3 || m.FxFetch == 0 {
		*(*uintptr)(cptr(pp)) = 0
		return sqlite3.SQLITE_OK
	}
	return (*(*func(*libc.TLS, uintptr, int64, int32, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{m.FxFetch})))(tls, sub, iOfst, iAmt, pp)
}

func sumUnfetch(tls *libc.TLS, pFile uintptr, iOfst int64, p uintptr) int32 {
	sub := below(pFile)
	m := methodsOf(sub)
	if m.FiVersion < 3 || m.FxUnfetch == 0 {
		return sqlite3.SQLITE_OK
	}
	return (*(*func(*libc.TLS, uintptr, int64, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{m.FxUnfetch})))(tls, sub, iOfst, p)
}

func init() {
	// Every connection of the process, the writer's clock VFS included
	// (a copy of the default), goes through the shim.
	if err := registerPageChecksums(); err != nil {
		panic(err)
	}
}

// reserve returns the reserve bytes per page of c's main database as the
// btree last read them, after asking for want (0..255; -1 only reads).
func (c *sconn) reserve(want int32) (int32, error) {
	zmain, err := libc.CString("main")
	if err != nil {
		return 0, err
	}
	defer libc.Xfree(c.tls, zmain)
	p := libc.Xmalloc(c.tls, 4)
	if p == 0 {
		return 0, fmt.Errorf("out of memory")
	}
	defer libc.Xfree(c.tls, p)
	*(*int32)(cptr(p)) = want
	if rc := sqlite3.Xsqlite3_file_control(c.tls, c.db, zmain, sqlite3.SQLITE_FCNTL_RESERVE_BYTES, p); rc != sqlite3.SQLITE_OK {
		return 0, c.err(rc)
	}
	return *(*int32)(cptr(p)), nil
}

// preparePageChecksums makes the database at path (created if absent) a
// checksummed WAL database: a new file gets 8 reserve bytes before its first
// page is written; an existing file with fewer (written before rdb kept
// page checksums) is rewritten once with VACUUM and checkpointed, so that
// every page in the file carries its checksum. A file with more than 8
// reserve bytes cannot be converted (SQLite never lowers the reserve); it
// stays unchecked: on is false and the note says so. A non-empty note is
// worth logging.
func preparePageChecksums(ctx context.Context, path string) (on bool, note string, err error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	sdb, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return false, "", err
	}
	defer func() {
		if cerr := sdb.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	sdb.SetMaxOpenConns(1)
	conn, err := sdb.Conn(ctx)
	if err != nil {
		return false, "", err
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c, err := newSconn(dc)
		if err != nil {
			return err
		}
		defer c.free()
		var pages int64
		if err := conn0Int(c, "PRAGMA page_count", &pages); err != nil {
			return err
		}
		if pages == 0 {
			// New: the reserve applies to the first page written, which
			// switching to WAL does (in rollback mode, so the page goes
			// to the file, through the shim, with its checksum).
			if _, err := c.reserve(reserveBytes); err != nil {
				return err
			}
			on = true
			return c.exec("PRAGMA journal_mode=WAL")
		}
		have, err := c.reserve(-1)
		if err != nil {
			return err
		}
		switch {
		case have == reserveBytes:
			on = true
			return nil
		case have > reserveBytes:
			note = fmt.Sprintf("page checksums off: the database reserves %d bytes per page, not %d", have, reserveBytes)
			return nil
		}
		if _, err := c.reserve(reserveBytes); err != nil {
			return err
		}
		if err := c.exec("VACUUM"); err != nil {
			return fmt.Errorf("add page checksums: %w", err)
		}
		if err := c.exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			return fmt.Errorf("add page checksums: %w", err)
		}
		on = true
		note = fmt.Sprintf("page checksums added: rewrote %d pages with VACUUM", pages)
		return nil
	})
	return on, note, err
}

// conn0Int runs a one-row, one-column integer query on c.
func conn0Int(c *sconn, query string, out *int64) error {
	st, err := c.prepare(query, 0)
	if err != nil {
		return err
	}
	defer c.finalize(st)
	switch rc := sqlite3.Xsqlite3_step(c.tls, st); rc {
	case sqlite3.SQLITE_ROW:
		*out = sqlite3.Xsqlite3_column_int64(c.tls, st, 0)
		return nil
	case sqlite3.SQLITE_DONE:
		return fmt.Errorf("%s: no row", query)
	default:
		return c.err(rc)
	}
}

// scanPageChecksums reads the database file at path from start to end and
// checks the checksum of every page, the free ones included, when the
// header says 8 reserve bytes (otherwise it checks nothing). It finds damage
// that integrity_check, which reads only pages in use, would not reach.
// Nothing may write the file meanwhile. A mismatch gives an error wrapping
// ErrCorruptFile that names the first bad page.
func scanPageChecksums(path string) (pages int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var h [100]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return 0, nil // short or empty: checkHeader's business
	}
	if string(h[:16]) != sqliteMagic || h[20] != reserveBytes {
		return 0, nil
	}
	pageSize := int(binary.BigEndian.Uint16(h[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if !isPage(int32(pageSize)) {
		return 0, fmt.Errorf("%w: bad page size %d", ErrCorruptFile, pageSize)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	page := make([]byte, pageSize)
	var bad []int64
	for n := int64(1); ; n++ {
		if _, err := io.ReadFull(r, page); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return pages, fmt.Errorf("%w: truncated inside page %d", ErrCorruptFile, n)
			}
			return pages, err
		}
		pages++
		if !pageSumOK(page) {
			bad = append(bad, n)
		}
	}
	if len(bad) > 0 {
		checksumFaults.Add(int64(len(bad)))
		msg := fmt.Sprintf("page checksum mismatch on %d of %d pages (first: page %d)", len(bad), pages, bad[0])
		lastChecksumFault.Store(msg + " of " + path)
		return pages, fmt.Errorf("%w: %s", ErrCorruptFile, msg)
	}
	return pages, nil
}
