// Command rdb-shell is the interactive SQL shell of rdb, modelled on the
// sqlite3 command-line shell and aware that it talks to a cluster.
//
// It owns the terminal session: reading input (liner line editing with
// history in ~/.rdb_history and tab completion when stdin and stdout are
// terminals, a plain large-buffer reader otherwise), splitting it into
// statements and dot-commands (splitter.go, which follows
// sqlite3_complete's rules for strings, comments and trigger bodies),
// deciding where each statement goes (route.go), collecting BEGIN ...
// COMMIT into one atomic request (shell.go), formatting results
// (format.go), and the dot-commands (dotcmd.go, dump.go). It talks to the
// cluster only through rdb/rpc/client, and owns no server state.
//
// # Routing
//
// The shell decides client side: SELECT, VALUES, EXPLAIN, WITH whose main
// verb (after the parenthesised common table expressions) is SELECT or
// VALUES, and PRAGMA without '=' are sent with Query at the session's
// consistency level; everything else is sent with Execute through the raft
// log. The server refuses a Query that is not read-only, so a misrouted
// statement fails rather than writing. Reads carry the raft index of the
// session's last write as min_index, so the shell always reads its own
// writes, whichever node serves the read.
//
// # Transactions
//
// A transaction cannot stay open across raft entries, so BEGIN starts
// collecting statements (the prompt becomes "rdb*> "), COMMIT (or END)
// sends them as one Execute with transaction=true, and ROLLBACK discards
// them. Results of statements in a transaction, including SELECTs, are
// printed at COMMIT. SAVEPOINT, RELEASE and ROLLBACK TO are refused.
//
// # Backup and restore
//
// .backup FILE streams a consistent copy of the database (read at
// linearizable consistency, so it holds the session's writes) into FILE as
// a SQLite database file, or as SQL text with --sql; the data goes to a
// temporary file next to FILE, is checked against the size and SHA-256 the
// server sends, and is renamed over FILE only when complete. .restore FILE
// uploads a SQLite file or SQL text (told apart by the SQLite header),
// which replaces the database on every node through the raft log; later
// reads of the session wait for the restore's raft index. Both share their
// file handling with the rdb backup and restore commands through
// rdb/rpc/client (BackupToFile, RestoreFile), and both must finish within
// --timeout.
//
// # Errors and exit status
//
// Errors are printed as one line, "Error: <message>", on stderr (with the
// input line in scripts); gRPC status prefixes are stripped. In json mode
// the error is also written to the output as {"error": "..."}. The exit
// status is 1 when any statement failed (--bail or .bail on stops at the
// first), 0 otherwise, or the code given to .exit.
//
// # Concurrency
//
// One goroutine runs the session. The only other goroutine relays SIGINT
// (Ctrl-C while a statement runs) to cancel the statement in flight.
package main
