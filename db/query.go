package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode"

	sqlite3 "modernc.org/sqlite/lib"

	"rdb/command"
)

// inMode runs fn with the authorizer of c in mode m.
func inMode(c *sconn, m authMode, fn func() error) error {
	prev := c.auth.mode
	c.auth.mode = m
	defer func() { c.auth.mode = prev }()
	return fn()
}

// readTx runs fn inside a read transaction of c, so that every statement of
// fn sees the same snapshot: the one open on c (a reader's kept snapshot),
// else a new one.
func readTx(c *sconn, fn func() error) error {
	if !c.autocommit() {
		return fn()
	}
	if err := inMode(c, authInternal, func() error { return c.exec("BEGIN") }); err != nil {
		return fmt.Errorf("db: begin read: %w", err)
	}
	err := fn()
	if cerr := inMode(c, authInternal, func() error { return c.exec("COMMIT") }); cerr != nil && err == nil {
		err = fmt.Errorf("db: end read: %w", cerr)
	}
	return err
}

// classify prepares sql on a reader and reports whether it is read-only.
// The caller finalizes the returned statement.
func classify(c *sconn, sql string) (uintptr, bool, error) {
	var st uintptr
	var ro bool
	err := inMode(c, authRead, func() error {
		var err error
		st, err = c.prepare(sql, 0)
		if err != nil {
			if c.auth.notReadOnly {
				return nil // denied because not read-only
			}
			return err
		}
		ro = st == 0 || (sqlite3.Xsqlite3_stmt_readonly(c.tls, st) != 0 && !c.auth.notReadOnly)
		return nil
	})
	return st, ro, err
}

// classifyCached is classify with a per-connection cache of prepared,
// read-only statements. The caller passes the statement to release.
func classifyCached(c *sconn, sql string) (uintptr, bool, error) {
	if cs, ok := c.stmts[sql]; ok {
		return cs.st, cs.ro, nil
	}
	st, ro, err := classify(c, sql)
	if err != nil || st == 0 || !ro {
		return st, ro, err
	}
	if c.stmts == nil {
		c.stmts = make(map[string]cachedStmt)
	}
	if len(c.stmts) >= maxCachedStmts {
		for k, cs := range c.stmts {
			c.finalize(cs.st)
			delete(c.stmts, k)
		}
	}
	c.stmts[sql] = cachedStmt{st: st, ro: ro}
	return st, ro, nil
}

// release returns a statement from classifyCached: a cached one is reset
// for its next use, any other is finalized.
func release(c *sconn, sql string, st uintptr) {
	if cs, ok := c.stmts[sql]; ok && cs.st == st {
		sqlite3.Xsqlite3_reset(c.tls, st)
		sqlite3.Xsqlite3_clear_bindings(c.tls, st)
		return
	}
	c.finalize(st)
}

// Query runs read-only statements on the read pool, in one read transaction.
// ctx's deadline or cancellation interrupts them. A statement that would
// write gives an error wrapping ErrNotReadOnly; a SQL error gives a
// *StatementError (matching ErrSQL); damage in the database file (a page
// whose checksum does not match) gives an error wrapping ErrCorruptFile.
// Query is safe for concurrent use; the caller owns the returned results,
// but not their Columns and Types slices: results of the same statement
// share them (see sconn.columns), so nobody may modify them.
func (d *DB) Query(ctx context.Context, stmts []*command.Statement) ([]*command.Result, error) {
	if !onCaller(ctx) {
		return d.queryWarm(ctx, stmts)
	}
	// Spelled out rather than through withReader, whose function escapes
	// to the warm pool: these closures and results stay on the stack
	// (four allocations fewer per point read, issue 7).
	var results []*command.Result
	err := d.withReadPool(func(*sql.DB) error {
		return d.onReader(ctx, func(c *sconn) error {
			var err error
			results, err = d.query(ctx, c, stmts)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// queryWarm is Query on a goroutine of the warm pool.
func (d *DB) queryWarm(ctx context.Context, stmts []*command.Statement) ([]*command.Result, error) {
	var results []*command.Result
	err := d.withReader(ctx, func(c *sconn) error {
		var err error
		results, err = d.query(ctx, c, stmts)
		return err
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// query runs Query's statements on c, in the read transaction the caller
// holds.
func (d *DB) query(ctx context.Context, c *sconn, stmts []*command.Statement) ([]*command.Result, error) {
	results := make([]*command.Result, 0, len(stmts))
	for i, s := range stmts {
		st, ro, err := classifyCached(c, s.GetSql())
		if err != nil {
			return nil, statementErr(i, err)
		}
		if !ro {
			c.finalize(st)
			return nil, fmt.Errorf("db: statement %d: %w", i+1, ErrNotReadOnly)
		}
		if st == 0 {
			results = append(results, &command.Result{})
			continue
		}
		res, err := runCached(c, s, st)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, fmt.Errorf("db: statement %d: %w", i+1, cerr)
			}
			return nil, statementErr(i, err)
		}
		res.RowsAffected, res.LastInsertId = 0, 0
		results = append(results, res)
	}
	return results, nil
}

// runCached binds s's parameters to st (from classifyCached), runs it and
// releases it.
func runCached(c *sconn, s *command.Statement, st uintptr) (*command.Result, error) {
	defer release(c, s.GetSql(), st)
	if err := c.bind(st, s.GetParameters()); err != nil {
		return nil, err
	}
	return c.run(st, true)
}

// ReadOnly reports whether every statement is read-only, without executing
// them: it prepares each on a reader, with the authorizer and
// sqlite3_stmt_readonly classifying it. Transaction control, ATTACH/DETACH
// and PRAGMAs outside a small read-only list count as not read-only. A
// statement that fails to prepare after only read-only ones gives a
// *StatementError. ReadOnly is safe for concurrent use.
func (d *DB) ReadOnly(ctx context.Context, stmts []*command.Statement) (bool, error) {
	ro := true
	err := d.withReader(ctx, func(c *sconn) error {
		for i, s := range stmts {
			st, r, err := classify(c, s.GetSql())
			c.finalize(st)
			if err != nil {
				ro = false
				return statementErr(i, err)
			}
			if !r {
				ro = false
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return ro, nil
}

// CheckWrite refuses, before proposing, statements that cannot be
// replicated faithfully: ATTACH/DETACH (and VACUUM INTO), load_extension,
// PRAGMAs outside a small read-only list, sqlite_dbpage, direct writes to
// sqlite_schema or to the internal _rdb_* tables, and transaction control
// (the request's transaction flag replaces it). The error wraps ErrRefused
// and names the statement (1-based). Statements that fail to prepare for
// ordinary reasons (syntax, a table an earlier statement creates) are not
// refused: apply reports them deterministically. Safe for concurrent use.
func (d *DB) CheckWrite(ctx context.Context, stmts []*command.Statement) error {
	// Statements whose text already passed are not prepared again: the
	// refusals depend on the text, and apply checks again anyway.
	pending := stmts[:0:0]
	idx := make([]int, 0, len(stmts))
	for i, s := range stmts {
		if _, ok := d.checked.Load(s.GetSql()); !ok {
			pending = append(pending, s)
			idx = append(idx, i)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	return d.withReader(ctx, func(c *sconn) error {
		for j, s := range pending {
			i := idx[j]
			var reason string
			prepared := false
			_ = inMode(c, authCheck, func() error {
				st, err := c.prepare(s.GetSql(), 0)
				prepared = err == nil
				c.finalize(st)
				reason = c.auth.reason
				if reason == "" && c.auth.schemaWrite && !c.auth.ddl {
					reason = "writing sqlite_schema is not allowed"
				}
				if reason == "" && isVacuumInto(s.GetSql()) {
					// VACUUM INTO attaches only when run: the authorizer
					// does not see it at prepare time.
					reason = "ATTACH, DETACH and VACUUM INTO are not allowed"
				}
				return nil
			})
			if reason != "" {
				return fmt.Errorf("%w: statement %d: %s", ErrRefused, i+1, reason)
			}
			if prepared && !c.auth.schemaWrite {
				if d.checkedN.Add(1) > maxChecked {
					d.checked.Clear()
					d.checkedN.Store(0)
				}
				d.checked.Store(s.GetSql(), struct{}{})
			}
		}
		return nil
	})
}

// maxChecked bounds the cache of statement texts CheckWrite passed.
const maxChecked = 4096

// sqlUserObjects lists the schema objects that are neither rdb's own
// (_rdb_*) nor SQLite's (sqlite_*, automatic indexes included).
const sqlUserObjects = `SELECT name FROM sqlite_schema WHERE name NOT LIKE '\_rdb\_%' ESCAPE '\' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`

// UserObjects returns the names of the database's tables, views, indexes
// and triggers other than rdb's own and SQLite's, in name order: what
// users (or a restore) put there. A node's new database has none. Safe
// for concurrent use.
func (d *DB) UserObjects(ctx context.Context) ([]string, error) {
	rows, err := d.readInternal(ctx, sqlUserObjects)
	if err != nil {
		return nil, fmt.Errorf("db: list schema objects: %w", err)
	}
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.GetValues()[0].GetText())
	}
	return out, nil
}

// readInternal runs an internal query on a reader and returns its rows.
func (d *DB) readInternal(ctx context.Context, sql string) ([]*command.Row, error) {
	var rows []*command.Row
	err := d.withReader(ctx, func(c *sconn) error {
		return inMode(c, authInternal, func() error {
			st, err := c.prepare(sql, 0)
			if err != nil {
				return err
			}
			defer c.finalize(st)
			res, err := c.run(st, true)
			if err != nil {
				return err
			}
			rows = res.Rows
			return nil
		})
	})
	return rows, err
}

// Members returns the replicated member table, ordered by id. Safe for
// concurrent use.
func (d *DB) Members(ctx context.Context) ([]*command.Member, error) {
	rows, err := d.readInternal(ctx, sqlMembers)
	if err != nil {
		var se *sqliteError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("db: members: %w", err)
		}
		return nil, err
	}
	out := make([]*command.Member, 0, len(rows))
	for _, r := range rows {
		v := r.GetValues()
		out = append(out, &command.Member{
			Id:          uint64(v[0].GetInteger()),
			PeerAddr:    v[1].GetText(),
			ClientAddr:  v[2].GetText(),
			StayLearner: v[3].GetInteger() != 0,
		})
	}
	return out, nil
}

// isVacuumInto reports whether sql is a VACUUM ... INTO statement.
func isVacuumInto(sql string) bool {
	// Fast path (this runs for every applied statement): most do not
	// start with VACUUM.
	if w := firstWord(sql); w != "" && !strings.EqualFold(w, "VACUUM") {
		return false
	}
	return vacuumIntoWords(sql)
}

// vacuumIntoWords is isVacuumInto without the fast path.
func vacuumIntoWords(sql string) bool {
	words := strings.FieldsFunc(strings.ToUpper(stripComments(sql)), func(r rune) bool {
		return unicode.IsSpace(r) || r == ';' || r == '(' || r == ')'
	})
	if len(words) == 0 || words[0] != "VACUUM" {
		return false
	}
	for _, w := range words[1:] {
		if w == "INTO" {
			return true
		}
	}
	return false
}

// firstWord returns the first word of sql after whitespace and comments,
// without allocating.
func firstWord(sql string) string {
	i := 0
	for i < len(sql) {
		switch {
		case sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r' || sql[i] == '\f' || sql[i] == '\v' || sql[i] == ';' || sql[i] == '(':
			i++
		case strings.HasPrefix(sql[i:], "--"):
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return ""
			}
			i += 2 + end + 2
		default:
			j := i
			for j < len(sql) && (sql[j] >= 'a' && sql[j] <= 'z' || sql[j] >= 'A' && sql[j] <= 'Z') {
				j++
			}
			return sql[i:j]
		}
	}
	return ""
}

// stripComments removes SQL comments outside string literals.
func stripComments(sql string) string {
	var b strings.Builder
	for i := 0; i < len(sql); i++ {
		switch {
		case sql[i] == '\'' || sql[i] == '"':
			q := sql[i]
			j := i + 1
			for j < len(sql) && sql[j] != q {
				j++
			}
			b.WriteString(sql[i:min(j+1, len(sql))])
			i = j
		case strings.HasPrefix(sql[i:], "--"):
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			b.WriteByte(' ')
		case strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				i = len(sql)
			} else {
				i += end + 3
			}
			b.WriteByte(' ')
		default:
			b.WriteByte(sql[i])
		}
	}
	return b.String()
}
