package system_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // to damage a stopped node's file

	"rdb/rpc/rpcpb"
)

// A damaged page that still parses (a row whose indexed value no longer
// matches its index entry) opens cleanly, so only the start-up check
// catches it: the node must move the file aside and rebuild it rather than
// serve it (chaos finding 11).
func TestDamagedIndexIsCaughtAtStart(t *testing.T) {
	c, victim, path, last := stoppedFollowerWithRows(t, true)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Some copies are stale (free pages): damage the first one that the
	// integrity check notices, as the node's start-up check would.
	damaged := false
	for off := 0; !damaged; {
		at := bytes.Index(data[off:], []byte("value-00123"))
		if at < 0 {
			t.Fatal("no copy of value-00123 whose damage integrity_check notices")
		}
		at += off
		off = at + 1
		try := bytes.Clone(data)
		copy(try[at:], "value-0012X")
		if !integrityOK(t, try) {
			data, damaged = try, true
		}
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	expectRebuilt(t, c, victim, path, last)
}

// A changed stored value with no index over it leaves every page, row and
// index consistent: integrity_check passes, and only rdb's page checksums
// (db/pagesum.go) tell. This is the damage the 10-minute chaos run of
// 2026-11-26 served (finding 11's open part).
func TestDamagedValueIsCaughtAtStart(t *testing.T) {
	c, victim, path, last := stoppedFollowerWithRows(t, false)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := bytes.Count(data, []byte("value-00123"))
	if n == 0 {
		t.Fatal("value-00123 not in the file")
	}
	data = bytes.ReplaceAll(data, []byte("value-00123"), []byte("value-0012X"))
	if !integrityOK(t, data) {
		t.Fatal("integrity_check noticed the changed value: this test needs damage that it misses")
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	expectRebuilt(t, c, victim, path, last)
}

// stoppedFollowerWithRows starts a 3-node cluster, writes 300 rows to
// t(id, v) (with an index on v if indexed), stops a follower and
// checkpoints its database so that every row is in the main file, which it
// returns with the index of the last write.
func stoppedFollowerWithRows(t *testing.T, indexed bool) (*Cluster, *Node, string, uint64) {
	t.Helper()
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	if indexed {
		mustExec(t, cl, "CREATE INDEX t_v ON t(v)")
	}
	var last uint64
	for i := 0; i < 300; i += 50 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO t (id, v) VALUES ")
		for j := i; j < i+50; j++ {
			if j > i {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "(%d, 'value-%05d')", j, j)
		}
		last = mustExec(t, cl, sb.String()).GetRaftIndex()
	}
	c.waitConverged(t, last, time.Minute)
	victim := c.Followers(c.WaitLeader(t))[0]
	victim.Stop(t)

	path := filepath.Join(victim.DataDir, "db.sqlite")
	sdb, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdb.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	sdb.Close()
	return c, victim, path, last
}

// expectRebuilt restarts victim and checks that it moved its damaged file
// aside and rebuilt it: every row back, value-00123 intact.
func expectRebuilt(t *testing.T, c *Cluster, victim *Node, path string, last uint64) {
	t.Helper()
	victim.Start(t)
	c.waitConverged(t, last, time.Minute)
	res := mustQuery(t, NodeClient(t, victim), rpcpb.Consistency_CONSISTENCY_NONE, last,
		"SELECT count(*), sum(v = 'value-00123'), sum(v LIKE '%X') FROM t")
	vals := res.GetRows()[0].GetValues()
	if n, good, bad := vals[0].GetInteger(), vals[1].GetInteger(), vals[2].GetInteger(); n != 300 || good != 1 || bad != 0 {
		t.Fatalf("node %d after restart: %d rows, %d with value-00123, %d damaged; want 300, 1, 0", victim.ID, n, good, bad)
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) == 0 {
		t.Fatal("the damaged file was not moved aside")
	}
	if !strings.Contains(victim.LogText(), "database file is corrupt") {
		t.Fatal("no log line about the damaged file")
	}
}

// integrityOK reports whether a database file's content passes PRAGMA
// integrity_check.
func integrityOK(t *testing.T, content []byte) bool {
	t.Helper()
	path := filepath.Join(t.TempDir(), "try.sqlite")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sdb, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var res string
	if err := sdb.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		return false
	}
	return res == "ok"
}
