// Package db owns the SQLite database of one rdb node. It is the only
// package that imports modernc.org/sqlite and database/sql.
//
// # What it owns
//
// The database file (WAL mode), one dedicated writer connection and a pool
// of read-only connections (query_only=1); applying replicated commands
// (package command) with the raft index they are handed, storing that index
// in the same SQLite transaction; read queries; read-only classification;
// refusal of statements that cannot be replicated faithfully (CheckWrite);
// the replicated member table; a content hash for comparing replicas.
// It knows nothing of raft: an index is just a number stored with the data.
//
// It does not own: the meaning of raft indices, snapshots files, the
// network. (Snapshot/backup/restore and checkpointing are still to be
// added.)
//
// # Concurrency
//
// ApplyBatch and Apply must be called from a single goroutine (the apply
// loop). Query, ReadOnly, CheckWrite, Members, Hash and AppliedIndex may be
// called concurrently from any number of goroutines, also while an apply
// runs: they use the read pool (MaxReaders connections) and see the last
// committed batch. Close may be called once everything else has returned;
// it is idempotent. Results returned are owned by the caller.
//
// # Determinism
//
// Apply must compute the same database on every replica. On the writer
// connection only: a private copy of SQLite's default VFS whose clock
// returns the entry's Command.time_unix_nanos (millisecond precision) makes
// every form of "now" deterministic, including in DEFAULTs and triggers;
// random() and randomblob() are replaced by a splitmix64 generator seeded
// from Command.random_seed (SQLITE_INNOCUOUS, so they work under
// trusted_schema=0); a progress handler bounds each statement to
// Config.MaxApplySteps virtual machine instructions, with a deterministic
// error. Reads use the real clock and randomness. See determinism.go.
//
// SQL errors of statements are results (Result.Error), identical on every
// replica; only I/O and internal failures are returned as errors. A
// statement that rolls back the whole SQLite transaction (INSERT OR
// ROLLBACK, RAISE(ROLLBACK)) voids its own entry only: the batch is redone
// without that entry.
//
// # Internal tables
//
//	_rdb_applied(id INTEGER PRIMARY KEY CHECK (id=1), idx INTEGER NOT NULL)
//	    one row: the highest applied raft index.
//	_rdb_members(id INTEGER PRIMARY KEY, peer_addr TEXT, client_addr TEXT)
//	    the replicated member table (COMMAND_TYPE_SET_MEMBER upserts).
//
// Users may read them; writes and DDL on _rdb_* are refused by the
// authorizer. Hash includes _rdb_members but not _rdb_applied.
//
// # Access to the C API
//
// db drives SQLite through modernc.org/sqlite/lib on the handle of the
// driver's connections, found by reflection on the driver's unexported
// connection struct (checked at run time, pinned to modernc.org/sqlite
// v1.62.0): the driver converts TEXT in DATE/DATETIME/TIMESTAMP columns to
// time.Time and does not expose sqlite3_stmt_readonly, the progress handler
// or VFS registration.
package db
