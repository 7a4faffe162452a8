package db

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	"rdb/command"
)

// sconn is a raw handle on one SQLite connection opened by the modernc
// driver. db uses the C API directly (through modernc.org/sqlite/lib) rather
// than database/sql rows, because the driver converts TEXT of columns
// declared DATE/DATETIME/TIMESTAMP into time.Time and does not expose
// sqlite3_stmt_readonly or the progress handler.
//
// An sconn is not safe for concurrent use: the writer's is used only by the
// apply goroutine, a reader's only by the goroutine that took it from the
// read pool.
type sconn struct {
	tls     *libc.TLS
	db      uintptr
	scratch uintptr // two pointer-sized out parameters for prepare
	auth    *authState
	// stmts caches prepared read statements by SQL text (readers only):
	// parsing is the largest cost of a point query.
	stmts map[string]cachedStmt
	// writes, on the writer only, is incremented before and after each
	// statement it runs (see Kept snapshots in readers.go).
	writes *atomic.Uint64
	// names holds, by statement, the column names and declared types the
	// statement last reported (see columns).
	names map[uintptr][]string
}

// maxCachedNames bounds a connection's cache of column names.
const maxCachedNames = 256

// cachedStmt is a prepared read statement and its classification.
type cachedStmt struct {
	st uintptr
	ro bool
}

// maxCachedStmts bounds a reader's statement cache.
const maxCachedStmts = 256

// transient is SQLITE_TRANSIENT: SQLite copies the bound value.
const transient = ^uintptr(0)

// handleOf extracts the sqlite3* handle and TLS of a modernc driver
// connection. The driver keeps them unexported as the first two fields of
// its conn struct (checked for v1.62.0); the check below makes a layout
// change fail loudly instead of corrupting memory.
func handleOf(driverConn any) (*libc.TLS, uintptr, error) {
	v := reflect.ValueOf(driverConn)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, 0, fmt.Errorf("db: unexpected driver connection type %T", driverConn)
	}
	s := v.Elem()
	t := s.Type()
	if t.NumField() < 2 || t.Field(0).Name != "db" || t.Field(0).Type.Kind() != reflect.Uintptr ||
		t.Field(1).Name != "tls" || t.Field(1).Type != reflect.TypeOf((*libc.TLS)(nil)) {
		return nil, 0, fmt.Errorf("db: unsupported modernc.org/sqlite connection layout (%s)", t)
	}
	db := uintptr(s.Field(0).Uint())
	tls := (*libc.TLS)(s.Field(1).UnsafePointer())
	if db == 0 || tls == nil {
		return nil, 0, fmt.Errorf("db: driver connection is closed")
	}
	return tls, db, nil
}

func newSconn(driverConn any) (*sconn, error) {
	tls, db, err := handleOf(driverConn)
	if err != nil {
		return nil, err
	}
	scratch := libc.Xmalloc(tls, 2*8)
	if scratch == 0 {
		return nil, fmt.Errorf("db: out of memory")
	}
	return &sconn{tls: tls, db: db, scratch: scratch}, nil
}

// free releases the scratch memory (not the connection, which the driver owns).
func (c *sconn) free() {
	for _, cs := range c.stmts {
		c.finalize(cs.st)
	}
	c.stmts = nil
	c.names = nil
	if c.scratch != 0 {
		libc.Xfree(c.tls, c.scratch)
		c.scratch = 0
	}
}

// err returns SQLite's current error for rc.
func (c *sconn) err(rc int32) *sqliteError {
	msg := ""
	if p := sqlite3.Xsqlite3_errmsg(c.tls, c.db); p != 0 {
		msg = libc.GoString(p)
	}
	code := sqlite3.Xsqlite3_extended_errcode(c.tls, c.db)
	if code&0xff != rc&0xff {
		code = rc
		msg = libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc))
	}
	return &sqliteError{code: code, msg: msg}
}

// prepare compiles sql, which must hold exactly one statement (trailing
// comments and semicolons are fine). It returns 0 and no error for SQL with
// no statement at all.
func (c *sconn) prepare(sql string, flags uint32) (uintptr, error) {
	if c.auth != nil {
		c.auth.reset()
	}
	zsql, err := libc.CString(sql)
	if err != nil {
		return 0, err
	}
	defer libc.Xfree(c.tls, zsql)
	pp, ptail := c.scratch, c.scratch+8
	*(*uintptr)(cptr(pp)) = 0
	rc := sqlite3.Xsqlite3_prepare_v3(c.tls, c.db, zsql, int32(len(sql)+1), flags, pp, ptail)
	if rc != sqlite3.SQLITE_OK {
		return 0, c.authErr(c.err(rc))
	}
	stmt := *(*uintptr)(cptr(pp))
	tail := *(*uintptr)(cptr(ptail))
	if rest := int(tail - zsql); rest < len(sql) && strings.TrimLeft(sql[rest:], " \t\r\n;") != "" {
		// Something follows: only comments are acceptable.
		rc := sqlite3.Xsqlite3_prepare_v3(c.tls, c.db, tail, -1, 0, pp, ptail)
		next := *(*uintptr)(cptr(pp))
		if next != 0 {
			sqlite3.Xsqlite3_finalize(c.tls, next)
		}
		if rc != sqlite3.SQLITE_OK || next != 0 {
			if stmt != 0 {
				sqlite3.Xsqlite3_finalize(c.tls, stmt)
			}
			return 0, &sqliteError{code: sqlite3.SQLITE_ERROR, msg: "more than one SQL statement in one statement; send them as separate statements"}
		}
	}
	return stmt, nil
}

// authErr replaces SQLite's generic "not authorized" by the reason the
// authorizer recorded.
func (c *sconn) authErr(e *sqliteError) error {
	if c.auth != nil && c.auth.reason != "" && e.primary() == sqlite3.SQLITE_AUTH {
		return &sqliteError{code: e.code, msg: "refused: " + c.auth.reason}
	}
	if c.auth != nil && c.auth.reason != "" && e.primary() == sqlite3.SQLITE_ERROR && strings.Contains(e.msg, "not authorized") {
		return &sqliteError{code: sqlite3.SQLITE_AUTH, msg: "refused: " + c.auth.reason}
	}
	return e
}

func (c *sconn) finalize(stmt uintptr) {
	if stmt != 0 {
		sqlite3.Xsqlite3_finalize(c.tls, stmt)
	}
}

// bind binds params to stmt. Unnamed parameters fill positional slots
// 1, 2, ... in order; named ones are looked up with the prefix given or,
// without one, with each of ':', '@', '$'. The number of bound slots must
// equal the statement's parameter count.
func (c *sconn) bind(stmt uintptr, params []*command.Parameter) error {
	n := int(sqlite3.Xsqlite3_bind_parameter_count(c.tls, stmt))
	if len(params) == 0 {
		if n != 0 {
			return &sqliteError{code: sqlite3.SQLITE_RANGE, msg: fmt.Sprintf("statement has %d parameters, none given", n)}
		}
		return nil
	}
	var seenSmall uint64 // bit i set: slot i+1 bound (slots <= 64)
	var seenBig map[int]bool
	bound := 0
	next := 1
	for j, p := range params {
		idx := 0
		if name := p.GetName(); name == "" {
			idx = next
			next++
			if idx > n {
				return &sqliteError{code: sqlite3.SQLITE_RANGE, msg: fmt.Sprintf("statement has %d parameters, %d given", n, len(params))}
			}
		} else {
			idx = c.paramIndex(stmt, name)
			if idx == 0 {
				return &sqliteError{code: sqlite3.SQLITE_RANGE, msg: fmt.Sprintf("parameter %d: statement has no parameter named %q", j+1, name)}
			}
		}
		if idx <= 64 {
			if seenSmall&(1<<(idx-1)) == 0 {
				seenSmall |= 1 << (idx - 1)
				bound++
			}
		} else {
			if seenBig == nil {
				seenBig = map[int]bool{}
			}
			if !seenBig[idx] {
				seenBig[idx] = true
				bound++
			}
		}
		if rc := c.bindValue(stmt, int32(idx), p.GetValue()); rc != sqlite3.SQLITE_OK {
			return c.err(rc)
		}
	}
	if bound != n {
		return &sqliteError{code: sqlite3.SQLITE_RANGE, msg: fmt.Sprintf("statement has %d parameters, %d given", n, bound)}
	}
	return nil
}

func (c *sconn) paramIndex(stmt uintptr, name string) int {
	try := func(s string) int {
		z, err := libc.CString(s)
		if err != nil {
			return 0
		}
		defer libc.Xfree(c.tls, z)
		return int(sqlite3.Xsqlite3_bind_parameter_index(c.tls, stmt, z))
	}
	switch name[0] {
	case ':', '@', '$', '?':
		return try(name)
	}
	if _, err := strconv.Atoi(name); err == nil {
		if i := try("?" + name); i != 0 {
			return i
		}
	}
	for _, prefix := range [...]string{":", "@", "$"} {
		if i := try(prefix + name); i != 0 {
			return i
		}
	}
	return 0
}

func (c *sconn) bindValue(stmt uintptr, idx int32, v *command.Value) int32 {
	if v == nil {
		return sqlite3.Xsqlite3_bind_null(c.tls, stmt, idx)
	}
	switch k := v.Kind.(type) {
	case *command.Value_Integer:
		return sqlite3.Xsqlite3_bind_int64(c.tls, stmt, idx, k.Integer)
	case *command.Value_Real:
		return sqlite3.Xsqlite3_bind_double(c.tls, stmt, idx, k.Real)
	case *command.Value_Text:
		p := c.cbytes(k.Text)
		defer libc.Xfree(c.tls, p)
		return sqlite3.Xsqlite3_bind_text(c.tls, stmt, idx, p, int32(len(k.Text)), transient)
	case *command.Value_Blob:
		if len(k.Blob) == 0 {
			return sqlite3.Xsqlite3_bind_zeroblob(c.tls, stmt, idx, 0)
		}
		p := c.cbytes(unsafe.String(&k.Blob[0], len(k.Blob)))
		defer libc.Xfree(c.tls, p)
		return sqlite3.Xsqlite3_bind_blob(c.tls, stmt, idx, p, int32(len(k.Blob)), transient)
	default:
		return sqlite3.Xsqlite3_bind_null(c.tls, stmt, idx)
	}
}

// cbytes copies s to C memory (at least one byte so the pointer is never NULL).
func (c *sconn) cbytes(s string) uintptr {
	n := len(s)
	p := libc.Xmalloc(c.tls, uint64(max(n, 1)))
	if p != 0 && n > 0 {
		copy(unsafe.Slice((*byte)(cptr(p)), n), s)
	}
	return p
}

// columns fills res.Columns and res.Types. Results of the same statement
// share the slices while its names and types stay the same (compared on
// each run, since a statement is prepared again after a schema change, and
// a finalized statement's address can be reused): four strings and a slice
// fewer per point read (issue 7). Query and ApplyBatch tell their callers
// not to modify them; nothing in rdb does.
func (c *sconn) columns(stmt uintptr, res *command.Result) int {
	n := int(sqlite3.Xsqlite3_column_count(c.tls, stmt))
	if n == 0 {
		return 0
	}
	names, ok := c.names[stmt]
	if !ok || len(names) != 2*n || !c.sameNames(stmt, names) {
		names = make([]string, 2*n)
		for i := range n {
			if p := sqlite3.Xsqlite3_column_name(c.tls, stmt, int32(i)); p != 0 {
				names[i] = libc.GoString(p)
			}
			if p := sqlite3.Xsqlite3_column_decltype(c.tls, stmt, int32(i)); p != 0 {
				names[n+i] = libc.GoString(p)
			}
		}
		if c.names == nil || len(c.names) >= maxCachedNames {
			c.names = make(map[uintptr][]string)
		}
		c.names[stmt] = names
	}
	res.Columns, res.Types = names[:n:n], names[n:]
	return n
}

// sameNames reports whether stmt's column names and declared types are
// names (as columns lays them out).
func (c *sconn) sameNames(stmt uintptr, names []string) bool {
	n := len(names) / 2
	for i := range n {
		if !cStringIs(sqlite3.Xsqlite3_column_name(c.tls, stmt, int32(i)), names[i]) ||
			!cStringIs(sqlite3.Xsqlite3_column_decltype(c.tls, stmt, int32(i)), names[n+i]) {
			return false
		}
	}
	return true
}

// cStringIs reports whether the C string at p (NULL reads as "") is s,
// which holds no NUL byte; it reads no further than p's terminator.
func cStringIs(p uintptr, s string) bool {
	if p == 0 {
		return s == ""
	}
	for i := 0; i < len(s); i++ {
		if *(*byte)(cptr(p + uintptr(i))) != s[i] {
			return false
		}
	}
	return *(*byte)(cptr(p + uintptr(len(s)))) == 0
}

// row reads the current row of stmt with exact storage classes.
func (c *sconn) row(stmt uintptr, n int) *command.Row {
	var row *command.Row
	var vals []*command.Value
	if n <= smallRow {
		// The row and its values slice in one allocation.
		p := &struct {
			row  command.Row
			vals [smallRow]*command.Value
		}{}
		row, vals = &p.row, p.vals[:n:n]
	} else {
		row, vals = &command.Row{}, make([]*command.Value, n)
	}
	for i := range n {
		col := int32(i)
		switch sqlite3.Xsqlite3_column_type(c.tls, stmt, col) {
		case sqlite3.SQLITE_INTEGER:
			vals[i] = command.Integer(sqlite3.Xsqlite3_column_int64(c.tls, stmt, col))
		case sqlite3.SQLITE_FLOAT:
			vals[i] = command.Real(sqlite3.Xsqlite3_column_double(c.tls, stmt, col))
		case sqlite3.SQLITE_TEXT:
			p := sqlite3.Xsqlite3_column_text(c.tls, stmt, col)
			nb := int(sqlite3.Xsqlite3_column_bytes(c.tls, stmt, col))
			s := ""
			if p != 0 && nb > 0 {
				s = string(unsafe.Slice((*byte)(cptr(p)), nb))
			}
			vals[i] = command.Text(s)
		case sqlite3.SQLITE_BLOB:
			p := sqlite3.Xsqlite3_column_blob(c.tls, stmt, col)
			nb := int(sqlite3.Xsqlite3_column_bytes(c.tls, stmt, col))
			b := make([]byte, nb)
			if p != 0 && nb > 0 {
				copy(b, unsafe.Slice((*byte)(cptr(p)), nb))
			}
			vals[i] = command.Blob(b)
		default:
			vals[i] = command.Null()
		}
	}
	row.Values = vals
	return row
}

// smallRow is the most columns a row has for row to allocate it with its
// values slice.
const smallRow = 4

// run steps a prepared, bound statement to completion. With wantRows false
// rows are stepped through but not collected. The statement is reset (not
// finalized) before returning.
func (c *sconn) run(stmt uintptr, wantRows bool) (*command.Result, error) {
	if c.writes != nil {
		c.writes.Add(1)
		defer c.writes.Add(1)
	}
	res := &command.Result{}
	// changes() and last_insert_rowid() are connection-wide: only report
	// them when this statement changed rows, or DDL would echo the last
	// DML's figures (including the internal applied-index upsert).
	totalBefore := c.totalChanges()
	n := -1 // columns not read yet
	if !wantRows {
		n = 0
	}
	for {
		rc := sqlite3.Xsqlite3_step(c.tls, stmt)
		if n < 0 && (rc == sqlite3.SQLITE_ROW || rc == sqlite3.SQLITE_DONE) {
			// Only after the first step: a cached statement that a schema
			// change made SQLite prepare again (SELECT * after ADD COLUMN)
			// reports its old columns until then.
			n = c.columns(stmt, res)
		}
		if rc == sqlite3.SQLITE_ROW {
			if n > 0 {
				res.Rows = append(res.Rows, c.row(stmt, n))
			}
			continue
		}
		if rc != sqlite3.SQLITE_DONE {
			err := c.authErr(c.err(rc))
			sqlite3.Xsqlite3_reset(c.tls, stmt)
			return nil, err
		}
		break
	}
	if c.totalChanges() != totalBefore && sqlite3.Xsqlite3_stmt_readonly(c.tls, stmt) == 0 {
		res.RowsAffected = c.changes()
		res.LastInsertId = c.lastInsertRowid()
	}
	sqlite3.Xsqlite3_reset(c.tls, stmt)
	return res, nil
}

// exec prepares, runs and finalizes one parameterless statement.
func (c *sconn) exec(sql string) error {
	stmt, err := c.prepare(sql, 0)
	if err != nil {
		return err
	}
	defer c.finalize(stmt)
	if stmt == 0 {
		return nil
	}
	_, err = c.run(stmt, false)
	return err
}

// setLimit sets a run-time limit of the connection.
func (c *sconn) setLimit(id, v int32) {
	sqlite3.Xsqlite3_limit(c.tls, c.db, id, v)
}

// cptr converts an address in C memory (allocated by SQLite or libc, never
// moved by the Go runtime) to an unsafe.Pointer. The indirection keeps go
// vet's unsafeptr check, meant for Go memory, quiet.
func cptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }
