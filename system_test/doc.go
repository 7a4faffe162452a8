// Package system holds black-box tests that build the real rdb and
// rdb-shell binaries once (TestMain), start clusters of real processes on
// free loopback ports with their own temporary data directories, and talk
// to them only through the public Go client and the binaries' command
// lines. They kill, stop and restart processes to exercise failures.
//
// The tests are skipped with -short.
package system
