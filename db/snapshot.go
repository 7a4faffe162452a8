package db

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// quickCheckAbove is the file size above which VerifyFile runs PRAGMA
// quick_check instead of the slower integrity_check.
const quickCheckAbove = 256 << 20

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// Snapshot writes a consistent, self-contained copy of the database to path,
// which must not exist, and returns the applied index stored in the copy.
//
// The copy is made by VACUUM INTO on a dedicated connection: one read
// transaction, so it is a point-in-time image of the last committed batch,
// while ApplyBatch and readers continue (WAL mode: the writer is never
// blocked; the WAL cannot be checkpointed past the snapshot's start until it
// ends). Memory is bounded by SQLite's page cache and sorter (which spill to
// temporary files), not by the database size. The copy is compacted (no free
// pages), in rollback-journal mode (journal_mode=DELETE), so it is one
// ordinary file readable by the sqlite3 tool. It is written to path+".tmp",
// fsynced, renamed to path and the directory fsynced. ctx's end interrupts
// the copy. Install or Close wait until Snapshot returns.
func (d *DB) Snapshot(ctx context.Context, path string) (uint64, error) {
	d.rw.RLock()
	defer d.rw.RUnlock()
	if d.closed.Load() {
		return 0, ErrClosed
	}
	if _, err := os.Lstat(path); err == nil {
		return 0, fmt.Errorf("db: snapshot: %s already exists", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("db: snapshot: %w", err)
	}
	tmp := path + ".tmp"
	if err := removeDBFiles(tmp); err != nil {
		return 0, fmt.Errorf("db: snapshot: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			removeDBFiles(tmp)
		}
	}()

	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", readerBusyTimeoutMs))
	q.Add("_pragma", "trusted_schema(0)")
	sdb, err := sql.Open("sqlite", d.cfg.Path+"?"+q.Encode())
	if err != nil {
		return 0, fmt.Errorf("db: snapshot: %w", err)
	}
	sdb.SetMaxOpenConns(1)
	into := tmp
	if d.pageSums {
		// SQLite may write pages of the copy before its page 1 (cache
		// spill): tell the checksum shim up front (pagesum.go).
		if into, err = fileURI(tmp, url.Values{pageChecksumsParam: {"1"}}); err != nil {
			sdb.Close()
			return 0, fmt.Errorf("db: snapshot: %w", err)
		}
	}
	_, err = sdb.ExecContext(ctx, "VACUUM INTO ?", into)
	if cerr := sdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("db: snapshot: %w (%v)", ctx.Err(), err)
		}
		return 0, fmt.Errorf("db: snapshot: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return 0, fmt.Errorf("db: snapshot: %w", err)
	}
	idx, err := appliedOfFile(ctx, tmp)
	if err != nil {
		return 0, fmt.Errorf("db: snapshot: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("db: snapshot: %w", err)
	}
	ok = true
	if err := syncDir(filepath.Dir(path)); err != nil {
		return 0, fmt.Errorf("db: snapshot: %w", err)
	}
	return idx, nil
}

// VerifyFile checks that path is a sound SQLite database and returns the
// applied index stored in its _rdb_applied table (0 if the table is absent,
// as in a plain user database). It opens the file read-only and runs PRAGMA
// integrity_check, or quick_check for files over 256 MiB. An empty, short or
// non-SQLite file gives an error wrapping ErrNotSQLite; a truncated file or
// one failing the check gives an error wrapping ErrCorruptFile. Messages do
// not contain the path (they are used as replicated results).
func VerifyFile(ctx context.Context, path string) (uint64, error) {
	size, err := checkHeader(path)
	if err != nil {
		return 0, err
	}
	if _, err := scanPageChecksums(path); err != nil {
		return 0, err
	}
	rdb, err := openReadOnly(path)
	if err != nil {
		return 0, fmt.Errorf("db: verify: %w", err)
	}
	defer rdb.Close()
	if err := runCheck(ctx, rdb, size); err != nil {
		return 0, err
	}
	idx, err := appliedOf(ctx, rdb)
	if err != nil {
		return 0, classifyOpenErr(ctx, err)
	}
	return idx, nil
}

// runCheck runs PRAGMA integrity_check, or quick_check when the file is
// over quickCheckAbove bytes, on rdb; a failed check gives an error
// wrapping ErrCorruptFile with up to five of its messages.
func runCheck(ctx context.Context, rdb *sql.DB, size int64) error {
	check := "PRAGMA integrity_check"
	if size > quickCheckAbove {
		check = "PRAGMA quick_check"
	}
	rows, err := rdb.QueryContext(ctx, check)
	if err != nil {
		return classifyOpenErr(ctx, err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return classifyOpenErr(ctx, err)
		}
		if len(msgs) < 5 {
			msgs = append(msgs, m)
		}
	}
	if err := rows.Err(); err != nil {
		return classifyOpenErr(ctx, err)
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		return fmt.Errorf("%w: %s", ErrCorruptFile, strings.Join(msgs, "; "))
	}
	return nil
}

// Check verifies the open database as VerifyFile verifies a file: the
// checksum of every page of the database file (pagesum.go; the writer is
// held meanwhile, so no checkpoint writes the file), then PRAGMA
// integrity_check, or quick_check above 256 MiB, on a read connection. A
// failed check gives an error wrapping ErrCorruptFile. Nodes run it at
// start, before a damaged page can be served.
func (d *DB) Check(ctx context.Context) error {
	d.wmu.Lock()
	_, err := scanPageChecksums(d.cfg.Path)
	d.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("db: check: %w", err)
	}
	return d.withReadPool(func(rdb *sql.DB) error {
		fi, err := os.Stat(d.cfg.Path)
		if err != nil {
			return fmt.Errorf("db: check: %w", err)
		}
		return runCheck(ctx, rdb, fi.Size())
	})
}

// checkHeader checks the SQLite header of path and that the file is not
// shorter than the header says. It returns the file size.
func checkHeader(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("db: verify: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("db: verify: %w", err)
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%w: not a regular file", ErrNotSQLite)
	}
	size := st.Size()
	if size == 0 {
		return 0, fmt.Errorf("%w: empty file", ErrNotSQLite)
	}
	var h [100]byte
	if n, err := io.ReadFull(f, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("%w: file too short (%d bytes)", ErrNotSQLite, n)
		}
		return 0, fmt.Errorf("db: verify: %w", err)
	}
	if !bytes.Equal(h[:16], []byte(sqliteMagic)) {
		return 0, fmt.Errorf("%w: bad header", ErrNotSQLite)
	}
	pageSize := int64(binary.BigEndian.Uint16(h[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || pageSize&(pageSize-1) != 0 {
		return 0, fmt.Errorf("%w: bad page size %d", ErrCorruptFile, pageSize)
	}
	if size%pageSize != 0 {
		return 0, fmt.Errorf("%w: truncated (size %d is not a multiple of the page size %d)", ErrCorruptFile, size, pageSize)
	}
	// The in-header page count is valid when the change counter matches
	// version-valid-for.
	if pages := int64(binary.BigEndian.Uint32(h[28:32])); pages > 0 && bytes.Equal(h[24:28], h[92:96]) && pages*pageSize > size {
		return 0, fmt.Errorf("%w: truncated (%d of %d pages)", ErrCorruptFile, size/pageSize, pages)
	}
	return size, nil
}

// fileURI returns a file: URI for path with the given query.
func fileURI(path string, q url.Values) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	u := &url.URL{Path: filepath.ToSlash(abs)}
	return "file:" + u.EscapedPath() + "?" + q.Encode(), nil
}

// openReadOnly opens path read-only (never creating it) with one connection.
func openReadOnly(path string) (*sql.DB, error) {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "trusted_schema(0)")
	q.Add("_pragma", "cell_size_check(1)")
	q.Add("_pragma", "query_only(1)")
	dsn, err := fileURI(path, q)
	if err != nil {
		return nil, err
	}
	rdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	rdb.SetMaxOpenConns(1)
	return rdb, nil
}

// classifyOpenErr maps SQLite's errors on a file being verified to
// ErrNotSQLite / ErrCorruptFile.
func classifyOpenErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("db: verify: %w (%v)", ctx.Err(), err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("%w: %s", ErrNotSQLite, sqliteMsg(se))
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_ERROR, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_RANGE:
			return fmt.Errorf("%w: %s", ErrCorruptFile, sqliteMsg(se))
		case sqlite3.SQLITE_IOERR:
			if se.Code() == sqlite3.SQLITE_IOERR_DATA {
				return fmt.Errorf("%w: page checksum mismatch (%s)", ErrCorruptFile, sqliteMsg(se))
			}
		}
	}
	return fmt.Errorf("db: verify: %w", err)
}

// sqliteMsg is the driver's message without the path-independent code suffix.
func sqliteMsg(se *sqlite.Error) string { return se.Error() }

// appliedOf reads the applied index of an open database (0 without
// _rdb_applied).
func appliedOf(ctx context.Context, rdb *sql.DB) (uint64, error) {
	var n int
	if err := rdb.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='_rdb_applied'`).Scan(&n); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	var idx int64
	err := rdb.QueryRowContext(ctx, sqlGetApplied).Scan(&idx)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if idx < 0 {
		return 0, fmt.Errorf("%w: negative applied index", ErrCorruptFile)
	}
	return uint64(idx), nil
}

// appliedOfFile opens path read-only and reads its applied index.
func appliedOfFile(ctx context.Context, path string) (uint64, error) {
	rdb, err := openReadOnly(path)
	if err != nil {
		return 0, err
	}
	defer rdb.Close()
	return appliedOf(ctx, rdb)
}

// syncFile fsyncs the file at path.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir fsyncs a directory, making renames and creations in it durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeDBFiles removes path and its -journal, -wal and -shm files; missing
// files are not an error.
func removeDBFiles(path string) error {
	var errs []error
	for _, p := range []string{path, path + "-journal", path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
