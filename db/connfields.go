package db

import (
	sqlite3 "modernc.org/sqlite/lib"
)

// The apply path reads and writes a few counters of a SQLite connection on
// every statement. modernc.org/sqlite/lib exports the transpiled struct
// sqlite3 as Tsqlite3, so they are plain fields of a Go type checked by the
// compiler. The public accessors (sqlite3_changes64, sqlite3_total_changes64,
// sqlite3_last_insert_rowid, sqlite3_get_autocommit) enter and leave the
// connection's mutex on every call, which a profile of ApplyBatch showed at
// about a fifth of its time; an sconn is used by one goroutine at a time, so
// that mutex guards nothing here.

// fields returns the connection's struct sqlite3.
func (c *sconn) fields() *sqlite3.Tsqlite3 {
	return (*sqlite3.Tsqlite3)(cptr(c.db))
}

// resetCounters sets changes() and last_insert_rowid() to 0, as a DML
// statement that changes nothing and sqlite3_set_last_insert_rowid(0) would.
func (c *sconn) resetCounters() {
	f := c.fields()
	f.FnChange = 0
	f.FlastRowid = 0
}

// totalChanges is sqlite3_total_changes64.
func (c *sconn) totalChanges() int64 { return c.fields().FnTotalChange }

// changes is sqlite3_changes64.
func (c *sconn) changes() int64 { return c.fields().FnChange }

// lastInsertRowid is sqlite3_last_insert_rowid.
func (c *sconn) lastInsertRowid() int64 { return c.fields().FlastRowid }

// autocommit is sqlite3_get_autocommit: true when no transaction is open.
func (c *sconn) autocommit() bool { return c.fields().FautoCommit != 0 }
