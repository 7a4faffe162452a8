package db

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"modernc.org/libc"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"rdb/command"
	"rdb/internal/clock"
)

// Restore through the log. See doc.go ("Restore") for the protocol, the
// staging table and the files involved.

// maxRestoreBytes bounds the end offset of restore chunks.
const maxRestoreBytes = 1 << 40

// restoreVerdict is a deterministic failure of a restore (same bytes in,
// same verdict on every replica): it becomes the entry's Result.Error.
// Any other error of a restore is an I/O or internal failure.
type restoreVerdict struct{ msg string }

func (v *restoreVerdict) Error() string { return v.msg }

func verdictf(format string, args ...any) error {
	return &restoreVerdict{msg: fmt.Sprintf(format, args...)}
}

// validRestoreID reports whether id is [A-Za-z0-9-]{1,64}.
func validRestoreID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (d *DB) buildPath(id string) string {
	return filepath.Join(filepath.Dir(d.cfg.Path), "restore-"+id+".build")
}

// restorePieceSize is the largest data blob of one _rdb_restore_chunks row:
// a chunk is stored as pieces of at most this size (and at most half of
// Config.MaxLength, the limit of a row), so any chunk fits. How a chunk is
// split does not matter to the commit, which only needs the pieces to be
// contiguous.
func (d *DB) restorePieceSize() int {
	n := 1 << 20
	if m := d.cfg.MaxLength / 2; m < n {
		n = max(m, 1)
	}
	return n
}

// restoreChunk stores a chunk in _rdb_restore_chunks, inside the batch
// transaction (so with the applied index that covers it). A chunk at the
// offset of an earlier one replaces it; an empty chunk stores nothing.
func (d *DB) restoreChunk(ch *command.RestoreChunk) ([]*command.Result, error) {
	if ch == nil {
		return []*command.Result{{Error: "restore: chunk missing"}}, nil
	}
	id := ch.GetRestoreId()
	if !validRestoreID(id) {
		return []*command.Result{{Error: "restore: invalid restore_id (want [A-Za-z0-9-]{1,64})"}}, nil
	}
	off, data := ch.GetOffset(), ch.GetData()
	if off < 0 || off > maxRestoreBytes || int64(len(data)) > maxRestoreBytes-off {
		return []*command.Result{{Error: "restore: chunk offset out of range"}}, nil
	}
	piece := d.restorePieceSize()
	for i := 0; i < len(data); i += piece {
		p := data[i:min(i+piece, len(data))]
		err := d.execInternal(sqlPutRestoreChunk,
			&command.Parameter{Value: command.Text(id)},
			&command.Parameter{Value: command.Integer(off + int64(i))},
			&command.Parameter{Value: command.Blob(p)})
		if err != nil {
			return nil, fmt.Errorf("db: restore chunk: %w", err)
		}
	}
	return []*command.Result{{RowsAffected: int64(len(data))}}, nil
}

// restoreAbort deletes the staged chunks of a restore (inside the batch
// transaction).
func (d *DB) restoreAbort(rc *command.RestoreCommit) ([]*command.Result, error) {
	id := rc.GetRestoreId()
	if !validRestoreID(id) {
		return []*command.Result{{Error: "restore: invalid restore_id (want [A-Za-z0-9-]{1,64})"}}, nil
	}
	if err := d.execInternal(sqlDropRestoreChunks, &command.Parameter{Value: command.Text(id)}); err != nil {
		return nil, fmt.Errorf("db: restore abort: %w", err)
	}
	return []*command.Result{{}}, nil
}

// restoreCommit applies a RESTORE_COMMIT entry outside any transaction:
// build and verify the new database, then swap it in, or record the verdict,
// delete the staged chunks and advance the index on the old one. The caller
// holds wmu.
func (d *DB) restoreCommit(ctx context.Context, e Entry) ([]*command.Result, error) {
	rc := e.Command.GetRestoreCommit()
	id := rc.GetRestoreId()
	build, err := d.buildRestore(ctx, e)
	if err == nil {
		// The new database has no staged chunks (finishBuild dropped the
		// table, initSchema recreated it empty).
		if err := d.swapIn(ctx, build); err != nil {
			return nil, fmt.Errorf("db: restore: %w", err)
		}
		if got := d.applied.Load(); got != e.Index {
			return nil, fmt.Errorf("db: restore: swapped-in database has applied index %d, want %d", got, e.Index)
		}
		return []*command.Result{{}}, nil
	}
	var v *restoreVerdict
	if !errors.As(err, &v) {
		return nil, fmt.Errorf("db: restore: %w", err)
	}
	if err := d.endFailedRestore(e.Index, id); err != nil {
		return nil, err
	}
	if validRestoreID(id) {
		if err := removeDBFiles(d.buildPath(id)); err != nil {
			d.log.Warn("db: restore: remove build file", "err", err)
		}
	}
	return []*command.Result{{Error: v.msg}}, nil
}

// endFailedRestore deletes the staged chunks of restore id (if id is valid)
// and advances the applied index to idx, in one transaction.
func (d *DB) endFailedRestore(idx uint64, id string) (err error) {
	if err := d.execInternal("BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("db: begin: %w", err)
	}
	defer func() {
		if err != nil && sqlite3.Xsqlite3_get_autocommit(d.w.tls, d.w.db) == 0 {
			d.execInternal("ROLLBACK")
		}
	}()
	if validRestoreID(id) {
		if err := d.execInternal(sqlDropRestoreChunks, &command.Parameter{Value: command.Text(id)}); err != nil {
			return fmt.Errorf("db: restore: delete staged chunks: %w", err)
		}
	}
	if err := d.execInternal(sqlSetApplied, &command.Parameter{Value: command.Integer(int64(idx))}); err != nil {
		return fmt.Errorf("db: store applied index: %w", err)
	}
	if err := d.execInternal("COMMIT"); err != nil {
		return fmt.Errorf("db: commit: %w", err)
	}
	d.applied.Store(idx)
	return nil
}

// chunkReader reads the staged data of a restore from _rdb_restore_chunks
// on the writer, one row at a time in offset order (memory bounded by the
// piece size). The rows must be contiguous from offset 0: a gap or an
// overlap is a *restoreVerdict. Each row is read by its own keyset query
// (restore_id, offset > last) in autocommit mode; the caller holds wmu, so
// nothing writes the rows between reads.
type chunkReader struct {
	d    *DB
	id   string
	last int64 // offset of the last row read; -1 before the first
	end  int64 // bytes delivered or buffered so far
	rows int   // rows read
	buf  []byte
	done bool
}

func (d *DB) newChunkReader(id string) *chunkReader {
	return &chunkReader{d: d, id: id, last: -1}
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.done {
			return 0, io.EOF
		}
		rows, err := r.d.queryInternal(sqlNextRestoreChunk,
			&command.Parameter{Value: command.Text(r.id)},
			&command.Parameter{Value: command.Integer(r.last)})
		if err != nil {
			return 0, fmt.Errorf("read staged chunks: %w", err)
		}
		if len(rows) == 0 {
			r.done = true
			return 0, io.EOF
		}
		v := rows[0].GetValues()
		off, data := v[0].GetInteger(), v[1].GetBlob()
		r.last = off
		r.rows++
		if len(data) == 0 {
			continue
		}
		switch {
		case off > r.end:
			return 0, verdictf("restore: data missing at offset %d (next chunk at %d)", r.end, off)
		case off < r.end:
			return 0, verdictf("restore: staged chunks overlap at offset %d", off)
		}
		r.buf = data
		r.end += int64(len(data))
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// buildRestore checks the staged data of a RESTORE_COMMIT and builds the
// database to swap in: restore-<id>.build, with the current member table and
// the entry's index as applied index, fsynced. A *restoreVerdict error is
// the deterministic verdict; any other error is fatal.
func (d *DB) buildRestore(ctx context.Context, e Entry) (string, error) {
	// Never interrupted half way: the verdict must not depend on timing.
	ctx = context.WithoutCancel(ctx)
	rc := e.Command.GetRestoreCommit()
	if rc == nil {
		return "", verdictf("restore: commit missing")
	}
	id := rc.GetRestoreId()
	if !validRestoreID(id) {
		return "", verdictf("restore: invalid restore_id (want [A-Za-z0-9-]{1,64})")
	}
	format := rc.GetFormat()
	if format != command.RestoreFormat_RESTORE_FORMAT_SQLITE && format != command.RestoreFormat_RESTORE_FORMAT_SQL {
		return "", verdictf("restore: unknown format %v", format)
	}
	// First pass: contiguity, size and checksum of the staged chunks.
	cr := d.newChunkReader(id)
	h := sha256.New()
	n, err := io.Copy(h, cr)
	if err != nil {
		return "", err
	}
	if cr.rows == 0 {
		return "", verdictf("restore: no data staged for restore_id %s", id)
	}
	if n != rc.GetSize() {
		return "", verdictf("restore: size mismatch: %d bytes staged, %d expected", n, rc.GetSize())
	}
	if !bytes.Equal(h.Sum(nil), rc.GetSha256()) {
		return "", verdictf("restore: checksum mismatch")
	}
	members, err := d.currentMembers()
	if err != nil {
		return "", err
	}
	build := d.buildPath(id)
	if err := removeDBFiles(build); err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			removeDBFiles(build)
		}
	}()
	opt := scriptOptions{
		vfs:       d.vfs,
		timeNanos: e.Command.GetTimeUnixNanos(),
		seed:      e.Command.GetRandomSeed(),
		maxLength: d.cfg.MaxLength,
		maxSteps:  d.cfg.MaxApplySteps,
	}
	// Second pass: the same chunks (nothing wrote them since: the caller
	// holds wmu) streamed into the build file or the script.
	switch format {
	case command.RestoreFormat_RESTORE_FORMAT_SQLITE:
		if err := copyFile(build, d.newChunkReader(id)); err != nil {
			return "", err
		}
		if _, err := VerifyFile(ctx, build); err != nil {
			switch {
			case errors.Is(err, ErrNotSQLite):
				return "", verdictf("restore: not a SQLite database (%s)", strings.TrimPrefix(err.Error(), ErrNotSQLite.Error()+": "))
			case errors.Is(err, ErrCorruptFile):
				return "", verdictf("restore: corrupt SQLite database (%s)", strings.TrimPrefix(err.Error(), ErrCorruptFile.Error()+": "))
			}
			return "", err
		}
		err = withScriptConn(build, opt, func(c *sconn, det *detState) error {
			return finishBuild(c, members, e.Index)
		})
	case command.RestoreFormat_RESTORE_FORMAT_SQL:
		err = withScriptConn(build, opt, func(c *sconn, det *detState) error {
			if err := runScript(ctx, c, det, opt, d.newChunkReader(id)); err != nil {
				return err
			}
			return finishBuild(c, members, e.Index)
		})
	}
	if err != nil {
		return "", err
	}
	if err := syncFile(build); err != nil {
		return "", err
	}
	ok = true
	return build, nil
}

// currentMembers reads the member table on the writer.
func (d *DB) currentMembers() ([]*command.Row, error) {
	var rows []*command.Row
	err := d.internal(func() error {
		var err error
		rows, err = query(d.w, sqlMembers)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("db: read members: %w", err)
	}
	return rows, nil
}

func copyFile(dst string, src io.Reader) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, src)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// finishBuild makes the built database ready to be the live one: rollback
// journal mode (one file), the internal tables replaced by fresh ones
// holding the current members and the entry's index, and no staged restore
// chunks (the table is dropped; initSchema creates it empty after the swap).
func finishBuild(c *sconn, members []*command.Row, index uint64) error {
	return inMode(c, authInternal, func() error {
		step := func(sql string, params ...*command.Parameter) error {
			st, err := c.prepare(sql, 0)
			if err != nil {
				return err
			}
			defer c.finalize(st)
			if st == 0 {
				return nil
			}
			if err := c.bind(st, params); err != nil {
				return err
			}
			_, err = c.run(st, false)
			return err
		}
		err := func() error {
			if err := step("PRAGMA journal_mode=DELETE"); err != nil {
				return err
			}
			if err := step("BEGIN IMMEDIATE"); err != nil {
				return err
			}
			for _, s := range []string{"DROP TABLE IF EXISTS _rdb_applied", "DROP TABLE IF EXISTS _rdb_members", "DROP TABLE IF EXISTS _rdb_restore_chunks", sqlCreateApplied, sqlCreateMembers} {
				if err := step(s); err != nil {
					return err
				}
			}
			for _, m := range members {
				v := m.GetValues()
				if err := step(sqlSetMember, &command.Parameter{Value: v[0]}, &command.Parameter{Value: v[1]}, &command.Parameter{Value: v[2]}, &command.Parameter{Value: v[3]}); err != nil {
					return err
				}
			}
			if err := step(sqlSetApplied, &command.Parameter{Value: command.Integer(int64(index))}); err != nil {
				return err
			}
			return step("COMMIT")
		}()
		if err != nil {
			if sqlite3.Xsqlite3_get_autocommit(c.tls, c.db) == 0 {
				step("ROLLBACK")
			}
			var se *sqliteError
			if errors.As(err, &se) && !fatalCode(se.primary()) {
				return verdictf("restore: preparing the database: %s", se.msg)
			}
			return err
		}
		return nil
	})
}

// scriptOptions configure a connection that builds a database from SQL.
type scriptOptions struct {
	vfs       *clockVFS // nil: the default VFS and the real clock
	timeNanos int64
	seed      uint64
	maxLength int
	maxSteps  int64
}

// withScriptConn opens (creating) the database file path on a connection set
// up like the writer (deterministic clock, random functions and operation
// budget, defensive, trusted_schema=0, limits, authorizer in authRestore
// mode), runs fn and closes the connection.
func withScriptConn(path string, opt scriptOptions, fn func(c *sconn, det *detState) error) (err error) {
	q := url.Values{}
	if opt.vfs != nil {
		q.Set("vfs", opt.vfs.Name())
		opt.vfs.set(opt.timeNanos)
	}
	q.Set("_defensive", "1")
	// A fresh file: nothing to protect until it is finished and fsynced.
	q.Add("_pragma", "journal_mode(MEMORY)")
	q.Add("_pragma", "synchronous(OFF)")
	q.Add("_pragma", "trusted_schema(0)")
	q.Add("_pragma", "cell_size_check(1)")
	sdb, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer func() {
		if cerr := sdb.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	sdb.SetMaxOpenConns(1)
	conn, err := sdb.Conn(context.Background())
	if err != nil {
		var se *sqlite.Error
		if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_NOTADB {
			return verdictf("restore: not a SQLite database (%s)", se.Error())
		}
		return err
	}
	defer func() {
		if cerr := conn.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	return conn.Raw(func(dc any) error {
		c, err := newSconn(dc)
		if err != nil {
			return err
		}
		defer c.free()
		c.auth = &authState{mode: authRestore}
		if err := dc.(sqlite.AuthorizerRegisterer).RegisterAuthorizer(c.auth.authorizer()); err != nil {
			return err
		}
		maxLen := opt.maxLength
		if maxLen <= 0 {
			maxLen = DefaultMaxLength
		}
		c.setLimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
		c.setLimit(sqlite3.SQLITE_LIMIT_LENGTH, int32(maxLen))
		c.setLimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, int32(scriptStmtLimit(maxLen)))
		c.setLimit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH, limitExprDepth)
		c.setLimit(sqlite3.SQLITE_LIMIT_TRIGGER_DEPTH, limitTriggerDepth)
		c.setLimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limitVariables)
		c.setLimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, limitLikePattern)
		det, mem := newDetState(c.tls)
		if mem == 0 {
			return errors.New("out of memory")
		}
		defer func() {
			sqlite3.Xsqlite3_progress_handler(c.tls, c.db, 0, 0, 0)
			libc.Xfree(c.tls, mem)
		}()
		if err := installDeterminism(c, mem); err != nil {
			return err
		}
		det.rng = opt.seed
		return fn(c, det)
	})
}

// scriptStmtLimit is the longest statement of a restore script: a row of
// maximal size written as hex, plus room for the rest of the statement.
func scriptStmtLimit(maxLength int) int {
	n := 2*maxLength + 1<<20
	if n > 1_000_000_000 {
		n = 1_000_000_000
	}
	return n
}

// runScript executes the SQL text of r on c statement by statement, with
// memory bounded by the longest statement. Lines are accumulated until one
// ends with ';' and sqlite3_complete accepts the text (as the sqlite3 shell
// does). Every failure of the script is a *restoreVerdict naming the
// statement; I/O failures are returned as they are.
func runScript(ctx context.Context, c *sconn, det *detState, opt scriptOptions, r io.Reader) error {
	maxLen := opt.maxLength
	if maxLen <= 0 {
		maxLen = DefaultMaxLength
	}
	limit := scriptStmtLimit(maxLen)
	maxSteps := int64(0)
	if opt.maxSteps > 0 {
		maxSteps = (opt.maxSteps + progressPeriod - 1) / progressPeriod
	} else if opt.maxSteps == 0 {
		maxSteps = (DefaultMaxApplySteps + progressPeriod - 1) / progressPeriod
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	nstmt := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, rerr := readLine(br, limit-len(buf))
		if rerr != nil && rerr != io.EOF {
			if errors.Is(rerr, errLineTooLong) {
				return verdictf("restore: statement %d is longer than %d bytes", nstmt+1, limit)
			}
			return rerr
		}
		buf = append(buf, line...)
		eof := rerr == io.EOF
		if len(bytes.TrimSpace(buf)) > 0 && (eof || bytes.HasSuffix(bytes.TrimRight(line, " \t\r\n"), []byte(";"))) {
			if eof || sqlComplete(c, buf) {
				if err := execScriptText(c, det, maxSteps, opt, buf, &nstmt); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		if eof {
			break
		}
	}
	if sqlite3.Xsqlite3_get_autocommit(c.tls, c.db) == 0 {
		inMode(c, authInternal, func() error { return c.exec("ROLLBACK") })
		return verdictf("restore: the script leaves a transaction open (missing COMMIT?)")
	}
	return nil
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line (with its '\n') of at most limit bytes.
func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > limit {
			return nil, errLineTooLong
		}
		line = append(line, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return line, err
	}
}

// sqlComplete is sqlite3_complete: whether text ends a whole statement.
func sqlComplete(c *sconn, text []byte) bool {
	z := c.cbytes(string(text) + "\x00")
	defer libc.Xfree(c.tls, z)
	return sqlite3.Xsqlite3_complete(c.tls, z) != 0
}

// execScriptText prepares and runs every statement of text.
func execScriptText(c *sconn, det *detState, maxSteps int64, opt scriptOptions, text []byte, nstmt *int) error {
	z := c.cbytes(string(text))
	defer libc.Xfree(c.tls, z)
	p, end := z, z+uintptr(len(text))
	pp, ptail := c.scratch, c.scratch+8
	for p < end {
		*nstmt++
		n := *nstmt
		c.auth.reset()
		*(*uintptr)(cptr(pp)) = 0
		rc := sqlite3.Xsqlite3_prepare_v3(c.tls, c.db, p, int32(end-p), 0, pp, ptail)
		st := *(*uintptr)(cptr(pp))
		if rc != sqlite3.SQLITE_OK {
			return scriptErr(n, c.authErr(c.err(rc)))
		}
		p = *(*uintptr)(cptr(ptail))
		if st == 0 {
			*nstmt--
			continue
		}
		sqlText := libc.GoString(sqlite3.Xsqlite3_sql(c.tls, st))
		if isVacuumInto(sqlText) {
			c.finalize(st)
			return scriptErr(n, &sqliteError{code: sqlite3.SQLITE_AUTH, msg: "refused: ATTACH, DETACH and VACUUM INTO are not allowed"})
		}
		if opt.vfs != nil {
			opt.vfs.set(opt.timeNanos)
		}
		det.steps, det.exceeded, det.maxSteps = 0, 0, maxSteps
		c.auth.reason = ""
		_, err := c.run(st, false)
		det.maxSteps = 0
		c.finalize(st)
		if err != nil {
			if det.exceeded != 0 {
				err = &sqliteError{code: sqlite3.SQLITE_ERROR, msg: fmt.Sprintf("statement exceeded the operation budget of %d steps", opt.maxSteps)}
			}
			return scriptErr(n, err)
		}
	}
	return nil
}

// scriptErr turns a statement's error into a verdict, unless it is an I/O
// or internal failure.
func scriptErr(n int, err error) error {
	var se *sqliteError
	if errors.As(err, &se) {
		if fatalCode(se.primary()) {
			return fmt.Errorf("restore script statement %d: %w", n, err)
		}
		return &restoreVerdict{msg: fmt.Sprintf("restore: statement %d: %s", n, se.msg)}
	}
	return err
}

// ValidateRestoreFile checks, before a restore is proposed, that the file at
// path can be restored: for RESTORE_FORMAT_SQLITE it runs VerifyFile; for
// RESTORE_FORMAT_SQL it executes the script into a temporary database (in
// os.TempDir, removed afterwards), with the restore's rules (ATTACH, VACUUM
// INTO, most PRAGMAs refused; BEGIN/COMMIT allowed), default limits and the
// real clock. Errors wrap ErrInvalidRestore (and ErrRefused for a statement
// that is not allowed, ErrNotSQLite or ErrCorruptFile for bad files), with
// SQLite's message. Passing validation does not guarantee the commit
// succeeds (the data may change in transit, or depend on time); the
// replicated verdict is final.
func ValidateRestoreFile(ctx context.Context, path string, format command.RestoreFormat) error {
	switch format {
	case command.RestoreFormat_RESTORE_FORMAT_SQLITE:
		if _, err := VerifyFile(ctx, path); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidRestore, err)
		}
		return nil
	case command.RestoreFormat_RESTORE_FORMAT_SQL:
	default:
		return fmt.Errorf("%w: unknown format %v", ErrInvalidRestore, format)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("db: validate restore: %w", err)
	}
	defer f.Close()
	dir, err := os.MkdirTemp("", "rdb-validate-*")
	if err != nil {
		return fmt.Errorf("db: validate restore: %w", err)
	}
	defer os.RemoveAll(dir)
	now := clock.Now().UnixNano()
	opt := scriptOptions{timeNanos: now, seed: uint64(now)}
	err = withScriptConn(filepath.Join(dir, "validate.db"), opt, func(c *sconn, det *detState) error {
		var once sync.Once
		stop := context.AfterFunc(ctx, func() {
			once.Do(func() {
				tls := libc.NewTLS()
				sqlite3.Xsqlite3_interrupt(tls, c.db)
				tls.Close()
			})
		})
		defer func() {
			if !stop() {
				once.Do(func() {}) // wait for a running interrupt
			}
		}()
		return runScript(ctx, c, det, opt, f)
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("db: validate restore: %w", ctx.Err())
	}
	var v *restoreVerdict
	if errors.As(err, &v) {
		if strings.Contains(v.msg, ": refused: ") {
			return fmt.Errorf("%w: %w: %s", ErrInvalidRestore, ErrRefused, v.msg)
		}
		return fmt.Errorf("%w: %s", ErrInvalidRestore, v.msg)
	}
	return fmt.Errorf("db: validate restore: %w", err)
}
