package db

import (
	"context"
	"errors"
	"fmt"
	"strings"

	sqlite3 "modernc.org/sqlite/lib"

	"rdb/command"
	"rdb/internal/failpoint"
)

// Internal schema. See doc.go.
const (
	sqlCreateApplied = `CREATE TABLE IF NOT EXISTS _rdb_applied(id INTEGER PRIMARY KEY CHECK (id=1), idx INTEGER NOT NULL)`
	sqlCreateMembers = `CREATE TABLE IF NOT EXISTS _rdb_members(id INTEGER PRIMARY KEY, peer_addr TEXT, client_addr TEXT, stay_learner INTEGER NOT NULL DEFAULT 0)`
	sqlGetApplied    = `SELECT idx FROM _rdb_applied WHERE id=1`
	sqlSetApplied    = `INSERT INTO _rdb_applied(id, idx) VALUES(1, ?) ON CONFLICT(id) DO UPDATE SET idx=excluded.idx`
	// An empty address never overwrites a known one; stay_learner, once
	// asked for, stays.
	sqlSetMember = `INSERT INTO _rdb_members(id, peer_addr, client_addr, stay_learner) VALUES(?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET ` +
		`peer_addr=CASE WHEN excluded.peer_addr <> '' THEN excluded.peer_addr ELSE peer_addr END, ` +
		`client_addr=CASE WHEN excluded.client_addr <> '' THEN excluded.client_addr ELSE client_addr END, ` +
		`stay_learner=MAX(stay_learner, excluded.stay_learner)`
	sqlRemoveMember = `DELETE FROM _rdb_members WHERE id=?`
	sqlMembers      = `SELECT id, peer_addr, client_addr, stay_learner FROM _rdb_members ORDER BY id`

	sqlCreateRestoreChunks = `CREATE TABLE IF NOT EXISTS _rdb_restore_chunks(restore_id TEXT NOT NULL, offset INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (restore_id, offset))`
	sqlPutRestoreChunk     = `INSERT INTO _rdb_restore_chunks(restore_id, offset, data) VALUES(?, ?, ?) ON CONFLICT(restore_id, offset) DO UPDATE SET data=excluded.data`
	sqlNextRestoreChunk    = `SELECT offset, data FROM _rdb_restore_chunks WHERE restore_id=? AND offset>? ORDER BY offset LIMIT 1`
	sqlDropRestoreChunks   = `DELETE FROM _rdb_restore_chunks WHERE restore_id=?`
)

// Entry is one raft entry to apply.
type Entry struct {
	// Index is the raft index of the entry.
	Index uint64
	// Command is the decoded command; nil for raft entries without one
	// (empty entries, conf changes): only the applied index advances.
	Command *command.Command
	// WantResults: the proposer waits for this entry's results. When false
	// the results may be omitted (nil) and COMMAND_TYPE_QUERY entries need
	// not run at all.
	WantResults bool
}

// initSchema creates the internal tables if missing and loads the applied
// index. The caller owns the writer (Open, or Install holding wmu).
func (d *DB) initSchema() error {
	w := d.w
	w.auth.mode = authInternal
	for _, s := range []string{sqlCreateApplied, sqlCreateMembers, sqlCreateRestoreChunks} {
		if err := w.exec(s); err != nil {
			return fmt.Errorf("db: create internal tables: %w", err)
		}
	}
	// Databases made before the stay_learner column existed get it.
	if err := w.exec(`ALTER TABLE _rdb_members ADD COLUMN stay_learner INTEGER NOT NULL DEFAULT 0`); err != nil &&
		!strings.Contains(err.Error(), "duplicate column") {
		return fmt.Errorf("db: upgrade member table: %w", err)
	}
	idx, err := d.readApplied()
	if err != nil {
		return err
	}
	d.applied.Store(idx)
	w.auth.mode = authWrite
	return nil
}

// readApplied reads the applied index on the writer (internal mode).
func (d *DB) readApplied() (uint64, error) {
	w := d.w
	st, err := d.cached(d.icache, sqlGetApplied)
	if err != nil {
		return 0, fmt.Errorf("db: read applied index: %w", err)
	}
	res, err := w.run(st, true)
	if err != nil {
		return 0, fmt.Errorf("db: read applied index: %w", err)
	}
	if len(res.Rows) == 0 {
		return 0, nil
	}
	return uint64(res.Rows[0].Values[0].GetInteger()), nil
}

// cached returns a prepared statement of the writer from cache, preparing
// it if needed. User and internal statements have separate caches: a
// statement prepared under the internal authorizer must never be reused for
// user SQL.
func (d *DB) cached(cache map[string]uintptr, sql string) (uintptr, error) {
	if st, ok := cache[sql]; ok {
		return st, nil
	}
	st, err := d.w.prepare(sql, sqlite3.SQLITE_PREPARE_PERSISTENT)
	if err != nil || st == 0 {
		return st, err
	}
	if len(cache) >= DefaultStmtCacheSize {
		for k, v := range cache {
			d.w.finalize(v)
			delete(cache, k)
		}
	}
	cache[sql] = st
	return st, nil
}

// internal runs fn with the writer's authorizer allowing everything.
func (d *DB) internal(fn func() error) error {
	prev := d.w.auth.mode
	d.w.auth.mode = authInternal
	defer func() { d.w.auth.mode = prev }()
	return fn()
}

func (d *DB) execInternal(sql string, params ...*command.Parameter) error {
	_, err := d.runInternal(sql, false, params...)
	return err
}

// queryInternal runs an internal statement on the writer and returns its rows.
func (d *DB) queryInternal(sql string, params ...*command.Parameter) ([]*command.Row, error) {
	res, err := d.runInternal(sql, true, params...)
	if err != nil {
		return nil, err
	}
	return res.Rows, nil
}

func (d *DB) runInternal(sql string, wantRows bool, params ...*command.Parameter) (*command.Result, error) {
	var res *command.Result
	err := d.internal(func() error {
		st, err := d.cached(d.icache, sql)
		if err != nil {
			return err
		}
		if len(params) > 0 {
			defer sqlite3.Xsqlite3_clear_bindings(d.w.tls, st)
		}
		if err := d.w.bind(st, params); err != nil {
			return err
		}
		res, err = d.w.run(st, wantRows)
		return err
	})
	return res, err
}

// AppliedIndex returns the index stored by the last committed apply.
func (d *DB) AppliedIndex(ctx context.Context) (uint64, error) {
	if d.closed.Load() {
		return 0, ErrClosed
	}
	return d.applied.Load(), nil
}

// CarefulRedos returns how many batches were rolled back and redone with a
// savepoint around each statement because a write statement failed on the
// fast path (see execute).
func (d *DB) CarefulRedos() uint64 { return d.carefulRedos.Load() }

// Apply is ApplyBatch of one entry.
func (d *DB) Apply(ctx context.Context, e Entry) ([]*command.Result, error) {
	res, err := d.ApplyBatch(ctx, []Entry{e})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// errRolledBack reports that a statement ended the whole SQLite transaction
// (INSERT OR ROLLBACK, RAISE(ROLLBACK) ...): the batch is redone without it.
var errRolledBack = errors.New("db: transaction rolled back by statement")

// ApplyBatch applies entries in index order inside one SQLite transaction,
// storing the highest index as the applied index in that same transaction.
// Entries at or below the stored applied index are skipped (nil results).
// It returns one []*command.Result per entry (nil when the entry was skipped,
// had no command, or did not want results). A returned error means an I/O or
// internal failure after which the node must stop; SQL errors of statements
// are deterministic results in Result.Error. As with Query, the results'
// Columns and Types slices are shared and must not be modified.
//
// ApplyBatch must be called from one goroutine at a time. ctx is not used to
// interrupt SQL: an apply never stops half way on one replica only.
func (d *DB) ApplyBatch(ctx context.Context, entries []Entry) ([][]*command.Result, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.closed.Load() {
		return nil, ErrClosed
	}
	if d.w == nil {
		return nil, errUnavailable
	}
	out := make([][]*command.Result, len(entries))
	defer d.vfs.clear()
	// A RESTORE_COMMIT splits the batch: the entries before it are committed
	// first, the restore swaps the database, and the rest of the batch runs
	// on the new one.
	start := 0
	cur := d.applied.Load()
	for i, e := range entries {
		if e.Index <= cur {
			continue
		}
		cur = e.Index
		if e.Command.GetType() != command.CommandType_COMMAND_TYPE_RESTORE_COMMIT {
			continue
		}
		if err := d.applySegment(entries[start:i], out[start:i]); err != nil {
			return nil, err
		}
		res, err := d.restoreCommit(ctx, e)
		if err != nil {
			return nil, err
		}
		if e.WantResults {
			out[i] = res
		}
		start = i + 1
	}
	if err := d.applySegment(entries[start:], out[start:]); err != nil {
		return nil, err
	}
	return out, nil
}

// applySegment applies entries (containing no RESTORE_COMMIT to apply) in
// one transaction, redoing it without entries that roll it back.
func (d *DB) applySegment(entries []Entry, out [][]*command.Result) error {
	applied := d.applied.Load()
	var last uint64
	for _, e := range entries {
		if e.Index > applied && e.Index > last {
			last = e.Index
		}
	}
	if last == 0 {
		return nil
	}
	// Entries whose statement rolled the whole transaction back: their
	// results are fixed and they are skipped when the batch is redone.
	var rolledBack map[int][]*command.Result
	careful := false
	// At most one careful redo and one redo per rolled-back entry.
	for attempt := 0; ; attempt++ {
		err := d.applyOnce(entries, applied, out, rolledBack, careful)
		if err == nil {
			break
		}
		if errors.Is(err, errNeedsSavepoints) && !careful {
			careful = true
			d.carefulRedos.Add(1)
			continue
		}
		var rb *rollbackError
		if errors.As(err, &rb) && attempt <= len(entries) {
			if rolledBack == nil {
				rolledBack = map[int][]*command.Result{}
			}
			rolledBack[rb.entry] = rb.results
			continue
		}
		return err
	}
	d.applied.Store(last)
	d.nudgeReleaser()
	return nil
}

type rollbackError struct {
	entry   int
	results []*command.Result
}

func (e *rollbackError) Error() string { return errRolledBack.Error() }

// applyOnce runs one attempt of a batch in one transaction; see execute for
// careful.
func (d *DB) applyOnce(entries []Entry, applied uint64, out [][]*command.Result, rolledBack map[int][]*command.Result, careful bool) (err error) {
	if err := d.execInternal("BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("db: begin: %w", err)
	}
	defer func() {
		if err != nil && !d.w.autocommit() {
			if rerr := d.execInternal("ROLLBACK"); rerr != nil {
				err = errors.Join(err, fmt.Errorf("db: rollback: %w", rerr))
			}
		}
	}()
	var last uint64
	for i, e := range entries {
		if e.Index <= applied || e.Index <= last {
			out[i] = nil
			continue
		}
		last = e.Index
		if r, ok := rolledBack[i]; ok {
			if e.WantResults {
				out[i] = r
			}
			continue
		}
		res, err := d.applyEntry(e, careful)
		if err != nil {
			var rb *rollbackError
			if errors.As(err, &rb) {
				rb.entry = i
			}
			return err
		}
		if e.WantResults {
			out[i] = res
		} else {
			out[i] = nil
		}
	}
	if brokenAppliedOutside {
		// Deliberately broken build (tag broken_appliedoutside): the data
		// commits alone and the applied index follows in a second
		// transaction, so a crash in between re-applies the batch.
		if err := d.execInternal("COMMIT"); err != nil {
			return fmt.Errorf("db: commit: %w", err)
		}
		failpoint.Inject(failpoint.ApplyAfterCommit)
		if err := d.execInternal("BEGIN IMMEDIATE"); err != nil {
			return fmt.Errorf("db: begin: %w", err)
		}
	}
	// The applied index is stored in the same transaction as the entries
	// it covers: a crash leaves both or neither.
	if err := d.execInternal(sqlSetApplied, &command.Parameter{Value: command.Integer(int64(last))}); err != nil {
		return fmt.Errorf("db: store applied index: %w", err)
	}
	if err := d.execInternal("COMMIT"); err != nil {
		return fmt.Errorf("db: commit: %w", err)
	}
	if !brokenAppliedOutside {
		failpoint.Inject(failpoint.ApplyAfterCommit)
	}
	return nil
}

// applyEntry applies one entry inside the open transaction; see execute
// for careful.
func (d *DB) applyEntry(e Entry, careful bool) ([]*command.Result, error) {
	c := e.Command
	if c == nil {
		return nil, nil
	}
	switch c.GetType() {
	case command.CommandType_COMMAND_TYPE_EXECUTE:
		// changes() and last_insert_rowid() are connection-wide: start every
		// entry from zero so that they do not depend on what this replica
		// applied before (batching, restarts, snapshots differ by node).
		d.w.resetCounters()
		return d.execute(c, e.WantResults, false, careful)
	case command.CommandType_COMMAND_TYPE_QUERY:
		if !e.WantResults {
			return nil, nil
		}
		return d.execute(c, true, true, careful)
	case command.CommandType_COMMAND_TYPE_SET_MEMBER:
		m := c.GetMember()
		if m == nil {
			return []*command.Result{{Error: "set member: no member"}}, nil
		}
		stay := int64(0)
		if m.GetStayLearner() {
			stay = 1
		}
		err := d.execInternal(sqlSetMember,
			&command.Parameter{Value: command.Integer(int64(m.GetId()))},
			&command.Parameter{Value: command.Text(m.GetPeerAddr())},
			&command.Parameter{Value: command.Text(m.GetClientAddr())},
			&command.Parameter{Value: command.Integer(stay)})
		if err != nil {
			return nil, fmt.Errorf("db: set member: %w", err)
		}
		return []*command.Result{{RowsAffected: 1}}, nil
	case command.CommandType_COMMAND_TYPE_REMOVE_MEMBER:
		m := c.GetMember()
		if m == nil {
			return []*command.Result{{Error: "remove member: no member"}}, nil
		}
		if err := d.execInternal(sqlRemoveMember, &command.Parameter{Value: command.Integer(int64(m.GetId()))}); err != nil {
			return nil, fmt.Errorf("db: remove member: %w", err)
		}
		return []*command.Result{{RowsAffected: 1}}, nil
	case command.CommandType_COMMAND_TYPE_RESTORE_CHUNK:
		return d.restoreChunk(c.GetRestoreChunk())
	case command.CommandType_COMMAND_TYPE_RESTORE_ABORT:
		return d.restoreAbort(c.GetRestoreCommit())
	case command.CommandType_COMMAND_TYPE_RESTORE_COMMIT:
		// ApplyBatch handles it outside the batch transaction.
		return []*command.Result{{Error: "restore: commit inside a transaction"}}, nil
	default:
		return nil, nil
	}
}

// fatalCode reports whether a SQLite result code means the node, not the
// statement, failed.
func fatalCode(primary int32) bool {
	switch primary {
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_FULL, sqlite3.SQLITE_NOMEM,
		sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_BUSY,
		sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_INTERNAL, sqlite3.SQLITE_PERM:
		return true
	}
	return false
}

// errNeedsSavepoints reports that a write statement failed on the fast
// path, where statements run without savepoints: it may have left part of
// its changes behind (ON CONFLICT FAIL, RAISE(FAIL)), or, in a transaction,
// earlier statements' changes that must be undone. The batch is rolled back
// and redone carefully.
var errNeedsSavepoints = errors.New("db: statement failed without a savepoint")

// execute runs the statements of c. A failed statement takes no effect; with
// c.Transaction the first failure undoes all of c's statements.
//
// With careful, each statement (or the whole transaction) runs in its own
// savepoint, rolled back when it fails. Without it (the fast path) they run
// bare, and a failure after which changes may remain returns
// errNeedsSavepoints. Almost every entry succeeds, and a savepoint costs two
// internal statements plus a copy of each page the entry touches into the
// sub-journal: the fast path applies a single-row insert in about half the
// time (docs/benchmarks.md). Read-only runs (queries) never need them.
func (d *DB) execute(c *command.Command, wantRows, readOnly, careful bool) ([]*command.Result, error) {
	d.vfs.set(c.GetTimeUnixNanos())
	d.det.rng = c.GetRandomSeed()
	stmts := c.GetStatements()
	results := make([]*command.Result, 0, len(stmts))
	tx := c.GetTransaction()
	savepoints := careful && !readOnly
	if tx && savepoints {
		if err := d.execInternal("SAVEPOINT rdb_tx"); err != nil {
			return nil, fmt.Errorf("db: savepoint: %w", err)
		}
	}
	wrote := false // a write statement of c has run (fast path)
	for i, s := range stmts {
		if !tx && savepoints {
			if err := d.execInternal("SAVEPOINT rdb_stmt"); err != nil {
				return nil, fmt.Errorf("db: savepoint: %w", err)
			}
		}
		res, ranWrite, serr := d.runUser(s, wantRows, readOnly)
		if serr != nil {
			var se *sqliteError
			if errors.As(serr, &se) && fatalCode(se.primary()) {
				return nil, fmt.Errorf("db: statement %d: %w", i+1, serr)
			}
			res = &command.Result{Error: serr.Error()}
		}
		results = append(results, res)
		if d.w.autocommit() {
			// The statement ended the whole transaction (ON CONFLICT
			// ROLLBACK, RAISE(ROLLBACK)): the entry takes no effect and the
			// batch is redone without it.
			if res.Error == "" {
				res.Error = "statement rolled back the transaction"
			}
			for j := i + 1; j < len(stmts); j++ {
				results = append(results, &command.Result{Error: fmt.Sprintf("not executed: statement %d failed", i+1)})
			}
			return nil, &rollbackError{results: results}
		}
		if !tx {
			wrote = false
		}
		wrote = wrote || ranWrite
		if serr != nil {
			if !savepoints && wrote {
				return nil, errNeedsSavepoints
			}
			if tx {
				if savepoints {
					if err := d.execInternal("ROLLBACK TO rdb_tx"); err != nil {
						return nil, fmt.Errorf("db: rollback to savepoint: %w", err)
					}
					if err := d.execInternal("RELEASE rdb_tx"); err != nil {
						return nil, fmt.Errorf("db: release savepoint: %w", err)
					}
				}
				for j := i + 1; j < len(stmts); j++ {
					results = append(results, &command.Result{Error: fmt.Sprintf("not executed: statement %d failed", i+1)})
				}
				return results, nil
			}
			if savepoints {
				if err := d.execInternal("ROLLBACK TO rdb_stmt"); err != nil {
					return nil, fmt.Errorf("db: rollback to savepoint: %w", err)
				}
			}
		}
		if !tx && savepoints {
			if err := d.execInternal("RELEASE rdb_stmt"); err != nil {
				return nil, fmt.Errorf("db: release savepoint: %w", err)
			}
		}
	}
	if tx && savepoints {
		if err := d.execInternal("RELEASE rdb_tx"); err != nil {
			return nil, fmt.Errorf("db: release savepoint: %w", err)
		}
	}
	return results, nil
}

// runUser runs one user statement on the writer under the write authorizer
// and the operation budget. ranWrite reports that a statement that is not
// read-only was stepped, so it may have changed the database even when it
// failed.
func (d *DB) runUser(s *command.Statement, wantRows, readOnly bool) (res *command.Result, ranWrite bool, err error) {
	w := d.w
	d.det.steps, d.det.exceeded = 0, 0
	d.det.maxSteps = 0
	if d.cfg.MaxApplySteps > 0 {
		d.det.maxSteps = (d.cfg.MaxApplySteps + progressPeriod - 1) / progressPeriod
	}
	defer func() { d.det.maxSteps = 0 }()
	if isVacuumInto(s.GetSql()) {
		return nil, false, &sqliteError{code: sqlite3.SQLITE_AUTH, msg: "refused: ATTACH, DETACH and VACUUM INTO are not allowed"}
	}
	st, err := d.cached(d.cache, s.GetSql())
	if err != nil {
		return nil, false, err
	}
	if st == 0 {
		return &command.Result{}, false, nil
	}
	stmtReadOnly := sqlite3.Xsqlite3_stmt_readonly(w.tls, st) != 0
	if readOnly && !stmtReadOnly {
		return nil, false, &sqliteError{code: sqlite3.SQLITE_ERROR, msg: "statement is not read-only"}
	}
	if params := s.GetParameters(); len(params) > 0 {
		defer sqlite3.Xsqlite3_clear_bindings(w.tls, st)
		if err := w.bind(st, params); err != nil {
			return nil, false, err
		}
	} else if err := w.bind(st, nil); err != nil {
		return nil, false, err
	}
	w.auth.reason = ""
	res, err = w.run(st, wantRows)
	if err != nil && d.det.exceeded != 0 {
		return nil, !stmtReadOnly, &sqliteError{code: sqlite3.SQLITE_ERROR, msg: fmt.Sprintf("statement exceeded the operation budget of %d steps", d.cfg.MaxApplySteps)}
	}
	return res, !stmtReadOnly, err
}
