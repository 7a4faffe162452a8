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
// the replicated member table; a content hash for comparing replicas;
// point-in-time copies, file verification and install, SQL dumps, and
// restores applied through the log (below).
// It knows nothing of raft: an index is just a number stored with the data.
//
// It does not own: the meaning of raft indices, the snapshot store (naming,
// metadata, reaping, transfer), the network.
//
// # Snapshots, backup, install
//
// Snapshot writes a point-in-time copy of the database with VACUUM INTO on a
// dedicated connection: one read transaction, so writes continue; memory is
// bounded by SQLite's page cache and sorter, not the database size. The copy
// is compacted, in rollback-journal mode (one ordinary file, readable by the
// sqlite3 tool), written to path+".tmp", fsynced and renamed. It stores its
// applied index (_rdb_applied), which Snapshot returns.
//
// VerifyFile checks a file (header, size against the page count, every
// page's checksum, PRAGMA integrity_check or, above 256 MiB, quick_check) and
// returns its applied index; ErrNotSQLite and ErrCorruptFile classify
// failures. Check runs the same checks on the open database (rdb serve does
// at start).
//
// # Page checksums
//
// The package registers a VFS shim as SQLite's default VFS (pagesum.go):
// every database it creates reserves 8 bytes per page, which hold a checksum
// of the page written with it and checked when it is read from the database
// file (SQLITE_IOERR_DATA on a mismatch, which Query reports as
// ErrCorruptFile; ChecksumFaults counts them). Open
// converts an older database without the reserve once, with VACUUM. The WAL
// is left to SQLite's own frame checksums.
//
// Install replaces the live database by a verified file: it waits for reads
// in progress (every reader use holds an RWMutex shared, Install holds it
// exclusively), closes all connections, removes the live -wal/-shm, renames
// the file over the live path, fsyncs the directory and reopens as Open
// does. Before the rename, a failure reopens the old database.
//
// Dump writes SQL text like the sqlite3 shell's .dump (user schema and
// rows with exact literals, sqlite_sequence, sqlite_stat1, then indexes,
// triggers and views; _rdb_* tables left out), streamed from one read
// transaction.
//
// # Restore through the log
//
// A restore replaces the database on every replica through raft entries:
//
//	COMMAND_TYPE_RESTORE_CHUNK   data stored at offset in the internal table
//	                             _rdb_restore_chunks (restore_id must match
//	                             [A-Za-z0-9-]{1,64}), in the batch's
//	                             transaction, with the applied index; pieces
//	                             of at most 1 MiB (and half of
//	                             Config.MaxLength); a chunk at the offset of
//	                             an earlier one replaces it; an empty chunk
//	                             stores nothing.
//	COMMAND_TYPE_RESTORE_COMMIT  the chunks are read one row at a time in
//	                             offset order: they must be contiguous from
//	                             offset 0 (no gap, no overlap), and their size
//	                             and SHA-256 must match; a second pass streams
//	                             them into the new database, built in
//	                             restore-<id>.build next to Config.Path: a
//	                             copy of a SQLITE file (VerifyFile), or a
//	                             fresh file on which the SQL text runs
//	                             statement by statement (entry's fixed time
//	                             and seed, operation budget, ATTACH/VACUUM
//	                             INTO/PRAGMAs refused, BEGIN and COMMIT
//	                             allowed, no transaction left open); its
//	                             _rdb_applied and _rdb_members are replaced by
//	                             the current members and the entry's index as
//	                             applied index, its _rdb_restore_chunks is
//	                             dropped (initSchema recreates it empty); then
//	                             it is swapped in like Install.
//	COMMAND_TYPE_RESTORE_ABORT   the restore's chunks are deleted, in the
//	                             batch's transaction.
//
// ApplyBatch commits the entries before a RESTORE_COMMIT, performs it, and
// applies the rest of the batch on the new database. A verification failure
// (no chunks, gap, overlap, size, checksum, not SQLite, corrupt, SQL error:
// the chunks are replicated state, so same bytes in, same verdict
// everywhere) is the entry's Result.Error; the restore's chunks are deleted
// in the transaction that advances the applied index, the build file is
// removed and the old database stays. I/O failures are returned as errors.
//
// Staged chunks are part of the database: they survive restarts (entries at
// or below the applied index are not replayed), and every Snapshot copy
// carries them, so a replica that installs a snapshot taken between a
// restore's chunks and its commit commits it like the others. A successful
// commit replaces the whole database, so the chunks of any other restore
// still in progress are discarded too (its own commit then fails with "no
// data staged", on every replica alike). Hash and Dump leave the staging
// table out.
//
// ValidateRestoreFile runs the same checks on a local file before a restore
// is proposed.
//
// # Concurrency
//
// ApplyBatch, Apply and Install must be called from a single goroutine (the
// apply loop). Query, ReadOnly, CheckWrite, Members, Hash, AppliedIndex,
// Snapshot and Dump may be called concurrently from any number of
// goroutines, also while an apply runs: they use the read pool (MaxReaders
// connections; Snapshot its own connection) and see the last committed
// batch. Queries run on MaxReaders long-lived goroutines (warmPool), whose
// stacks stay grown for SQLite's deep calls, or on the caller's goroutine
// when its context is marked with OnCaller. A reader keeps its read
// transaction open between queries while nothing is written, and a query
// reuses it only when a new transaction would see the same data
// (readers.go); a query's context ending interrupts it (interrupt.go).
// Install (and a RESTORE_COMMIT) waits for them to finish
// and holds new ones back while it swaps the file. Close may be called
// once everything else has returned; it is idempotent. Results returned
// are owned by the caller.
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
// A failed statement takes no effect (with the transaction flag, no
// statement of the entry does), even under ON CONFLICT FAIL or RAISE(FAIL),
// which in SQLite keep the changes made before the failure. Statements
// first run without savepoints (the fast path); when a write statement
// fails, the batch is rolled back and redone with a savepoint around each
// statement or transaction (CarefulRedos counts them). Most batches have no
// failure and pay for no savepoint.
//
// # Internal tables
//
//	_rdb_applied(id INTEGER PRIMARY KEY CHECK (id=1), idx INTEGER NOT NULL)
//	    one row: the highest applied raft index.
//	_rdb_members(id INTEGER PRIMARY KEY, peer_addr TEXT, client_addr TEXT)
//	    the replicated member table (COMMAND_TYPE_SET_MEMBER upserts).
//	_rdb_restore_chunks(restore_id TEXT, offset INTEGER, data BLOB,
//	                    PRIMARY KEY (restore_id, offset))
//	    the staged data of restores in progress (see Restore above).
//
// Users may read them; writes and DDL on _rdb_* are refused by the
// authorizer. Hash includes _rdb_members but not _rdb_applied nor
// _rdb_restore_chunks (nor its index). Dump leaves all of them out.
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
