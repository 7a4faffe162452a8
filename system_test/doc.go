// Package system holds black-box tests that build the real rdb and
// rdb-shell binaries once (TestMain), start clusters of real processes on
// free loopback ports with their own temporary data directories, and talk
// to them only through the public Go client and the binaries' command
// lines. They kill, stop and restart processes to exercise failures.
//
// TestFailpoints and the TestBroken_* tests run rdb built with
// -tags failpoints (and, with RDB_BROKEN=1, a deliberately broken build
// tag) without the race detector; see docs/design.md, "Failpoints and
// broken builds". Every node's process gets RDB_FAILPOINTS_FILE pointing
// at a file beside its data directory, which Node.ArmFailpoints writes.
//
// The tests are skipped with -short.
package system
