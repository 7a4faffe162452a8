// Package clock is rdb's one source of wall-clock time for anything that
// enters the replicated state: the time the proposing node stamps into a
// command (every replica's datetime('now'), CURRENT_TIMESTAMP, DEFAULTs
// and triggers use it), and the time used to validate a restore script
// before it is proposed.
//
// Durations measured on one node (proposal deadlines, ReadIndex retries,
// the freshness bound of NONE reads, metrics) deliberately stay on
// time.Now's monotonic reading: they compare two readings of the same
// node's clock, and a wall-clock step must not stretch or shorten them.
// Raft's ticks come from a ticker and do not read the wall clock.
//
// Without the build tag `failpoints`, Now is time.Now. Built with
// `-tags failpoints`, Now adds an offset read from the file named by
// RDB_CLOCK_OFFSET_FILE (a Go duration such as "30s" or "-30s"; missing,
// empty or unreadable means 0). The file is read on every call, so a test
// harness can shift and strobe a running node's clock by rewriting it
// (system_test/chaos, scenario clock-offset).
//
// Location: a leaf under internal/ that imports no rdb package, so
// cluster, db and snapshot may all import it without bending the import
// direction cmd -> rpc -> cluster -> db, snapshot, command.
package clock

import "time"

// EnvOffsetFile names the file holding the clock offset of a failpoints
// build.
const EnvOffsetFile = "RDB_CLOCK_OFFSET_FILE"

// Clock reads wall-clock time.
type Clock interface {
	Now() time.Time
}

// System is the process's clock: Now.
var System Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return Now() }
