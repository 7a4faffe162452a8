// Package failpoint injects faults (a crash, an abrupt exit, a pause) at
// rdb's persistence boundaries, for crash-recovery tests.
//
// Callers mark a boundary with Inject(Name). Without the build tag
// `failpoints` Inject is an empty function that the compiler inlines away:
// production builds carry no cost and no way to arm a failpoint. Built
// with `-tags failpoints`, Inject looks the name up in the failpoints
// armed through the environment:
//
//	RDB_FAILPOINTS="raftBeforeSave=panic,applyAfterCommit=sleep(100ms)@3+"
//	RDB_FAILPOINTS_FILE=/path/to/file   (same syntax; re-read on every hit,
//	                                     so a test can arm a running process)
//
// Terms are separated by commas, semicolons or newlines; a term is
// name=action[@N[+]]. Actions: panic (a Go panic), exit
// (os.Exit(3), no deferred calls), kill (SIGKILL to the process itself:
// a crash with no chance to clean up), sleep(duration), off (disarmed).
// The action runs on
// the Nth hit of the point (default 1) only, or on every hit from the Nth
// with a trailing +. Hits are counted from the moment the spec was last
// changed. Before acting, a line "failpoint NAME: ACTION" goes to stderr.
//
// Location: this package is a leaf under internal/ that imports no rdb
// package, so cluster, db and snapshot may all import it without bending
// the import direction cmd -> rpc -> cluster -> db, snapshot, command
// (shared/notes/architecture.md allows internal/* leaves "anyone may
// import"); internal/ also keeps it out of reach of code outside rdb.
//
// The names and the exact place of each point are listed in names.go and
// docs/design.md ("Failpoints and broken builds").
//
// Concurrency: Inject may be called from any goroutine.
package failpoint
