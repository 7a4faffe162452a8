package system_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// insertRows writes rows [from, to) into t(id, v) in transactions of
// batch rows, with values of valueSize bytes, and returns the last index.
func insertRows(t testing.TB, cl *client.Client, from, to, batch, valueSize int) uint64 {
	t.Helper()
	var last uint64
	val := strings.Repeat("v", valueSize)
	for i := from; i < to; i += batch {
		var stmts []*command.Statement
		var b strings.Builder
		b.WriteString("INSERT INTO t (id, v) VALUES ")
		var args []any
		for j := i; j < min(i+batch, to); j++ {
			if j > i {
				b.WriteString(",")
			}
			b.WriteString("(?, ?)")
			args = append(args, j, val)
		}
		stmts = append(stmts, stmt(t, b.String(), args...))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := cl.Execute(ctx, &rpcpb.ExecuteRequest{Statements: stmts, Transaction: true})
		cancel()
		if err != nil {
			t.Fatalf("insert rows %d..: %v", i, err)
		}
		last = resp.GetRaftIndex()
	}
	return last
}

func TestFollowerBehindCompactedLogCatchesUpBySnapshot(t *testing.T) {
	c := StartCluster(t, 3, "--snapshot-entries", "500", "--snapshot-trailing", "50")
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	leader := c.WaitLeader(t)
	lagging := c.Followers(leader)[0]
	lagging.Stop(t)
	last := insertRows(t, NodeClient(t, leader), 0, 50_000, 25, 20)

	st, err := nodeStatus(t, leader)
	if err != nil {
		t.Fatal(err)
	}
	if st.GetSnapshotIndex() == 0 || st.GetFirstIndex() < 100 {
		t.Fatalf("leader did not compact its log: snapshot_index %d first_index %d", st.GetSnapshotIndex(), st.GetFirstIndex())
	}
	t.Logf("leader: snapshot_index %d, first_index %d, last_index %d, log_bytes %d", st.GetSnapshotIndex(), st.GetFirstIndex(), st.GetLastIndex(), st.GetLogBytes())

	start := time.Now()
	lagging.Start(t)
	c.waitConverged(t, last, 2*time.Minute)
	t.Logf("follower caught up in %s", time.Since(start).Round(time.Millisecond))
	lst, err := nodeStatus(t, lagging)
	if err != nil {
		t.Fatal(err)
	}
	if lst.GetSnapshotIndex() == 0 {
		t.Fatalf("the follower caught up without a snapshot (snapshot_index 0)")
	}
	res := mustQuery(t, NodeClient(t, lagging), rpcpb.Consistency_CONSISTENCY_NONE, last, "SELECT count(*) FROM t")
	if got := res.GetRows()[0].GetValues()[0].GetInteger(); got != 50_000 {
		t.Fatalf("caught-up follower has %d rows", got)
	}
}

func TestReceiverKilledMidSnapshotRecovers(t *testing.T) {
	c := StartCluster(t, 3, "--snapshot-entries", "200", "--snapshot-trailing", "20")
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	leader := c.WaitLeader(t)
	lc := NodeClient(t, leader)
	lagging := c.Followers(leader)[0]
	incoming := filepath.Join(lagging.DataDir, "snapshots", "incoming")

	next := 0
	killed := false
	for attempt := 0; attempt < 6 && !killed; attempt++ {
		lagging.Stop(t)
		// About 40 MB more per attempt, in enough entries to compact.
		insertRows(t, lc, next, next+40_000, 100, 1000)
		next += 40_000
		lagging.Start(t)
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			entries, _ := os.ReadDir(incoming)
			if len(entries) > 0 {
				lagging.Kill(t)
				killed = true
				break
			}
			if h, err := hashOf(t, lagging, 0); err == nil && h.GetAppliedIndex() >= appliedIndex(t, leader) {
				break // caught up before we saw the transfer: try again, bigger
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	if !killed {
		t.Fatalf("never caught a snapshot transfer in flight")
	}
	lagging.Start(t)
	final := mustExec(t, cl, "INSERT INTO t VALUES (-1, 'after the kill')")
	c.waitConverged(t, final.GetRaftIndex(), 3*time.Minute)
	res := mustQuery(t, NodeClient(t, lagging), rpcpb.Consistency_CONSISTENCY_NONE, final.GetRaftIndex(), "SELECT count(*) FROM t")
	if got := res.GetRows()[0].GetValues()[0].GetInteger(); got != int64(next+1) {
		t.Fatalf("recovered follower has %d rows, want %d", got, next+1)
	}
}

// tableContents returns every user table's rows, ordered, as text.
func tableContents(t testing.TB, cl *client.Client, minIndex uint64) string {
	t.Helper()
	tables := mustQuery(t, cl, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, minIndex,
		"SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_rdb\\_%' ESCAPE '\\' ORDER BY name")
	var b strings.Builder
	for _, row := range tables.GetRows() {
		name := row.GetValues()[0].GetText()
		res := mustQuery(t, cl, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, minIndex, fmt.Sprintf("SELECT * FROM %q ORDER BY rowid", name))
		fmt.Fprintf(&b, "== %s %v\n%s", name, res.GetColumns(), rowsText(res))
	}
	return b.String()
}

func runRDB(t testing.TB, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(rdbBin, args...).CombinedOutput()
	return string(out), err
}

func TestBackupRestoreIntoFreshCluster(t *testing.T) {
	src := StartCluster(t, 3)
	cl := src.Client(t)
	mustExec(t, cl, "CREATE TABLE kinds (id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB, n)")
	mustExec(t, cl, "CREATE INDEX kinds_s ON kinds(s)")
	mustExec(t, cl, "INSERT INTO kinds VALUES (1, ?, ?, ?, ?, NULL)", int64(-9223372036854775808), 0.1, "it's ünïcode", []byte{})
	mustExec(t, cl, "INSERT INTO kinds VALUES (2, ?, ?, ?, ?, 'x')", int64(9223372036854775807), 1e308, "", []byte{0, 1, 2, 255})
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	last := insertRows(t, cl, 0, 2_000, 200, 50)
	want := tableContents(t, cl, last)

	dir := t.TempDir()
	backup := filepath.Join(dir, "backup.db")
	if out, err := runRDB(t, "backup", "--endpoint", src.Nodes[1].ClientAddr, "--out", backup); err != nil {
		t.Fatalf("rdb backup: %v\n%s", err, out)
	}
	if sqlite3, err := exec.LookPath("sqlite3"); err == nil {
		out, err := exec.Command(sqlite3, backup, "PRAGMA integrity_check").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "ok" {
			t.Fatalf("sqlite3 integrity_check: %v %q", err, out)
		}
	} else {
		t.Log("sqlite3 not installed: integrity_check of the backup with the standard tool skipped")
	}
	sqlBackup := filepath.Join(dir, "backup.sql")
	if out, err := runRDB(t, "backup", "--endpoint", src.Nodes[0].ClientAddr, "--format", "sql", "--out", sqlBackup); err != nil {
		t.Fatalf("rdb backup --format sql: %v\n%s", err, out)
	}

	dst := StartCluster(t, 3)
	dc := dst.Client(t)
	mustExec(t, dc, "CREATE TABLE old (x)")
	mustExec(t, dc, "INSERT INTO old VALUES ('replaced by the restore')")

	// Corrupt input is refused and changes nothing.
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, append([]byte("SQLite format 3\x00"), make([]byte, 5000)...), 0o644)
	before := tableContents(t, dc, 0)
	if out, err := runRDB(t, "restore", "--endpoint", dst.Nodes[0].ClientAddr, "--in", junk); err == nil {
		t.Fatalf("restore of a corrupt file succeeded:\n%s", out)
	} else if !strings.Contains(out, "restore") {
		t.Fatalf("unclear error for a corrupt file: %s", out)
	}
	if got := tableContents(t, dc, 0); got != before {
		t.Fatalf("a refused restore changed the data:\n%s", got)
	}

	if out, err := runRDB(t, "restore", "--endpoint", dst.Nodes[2].ClientAddr, "--in", backup); err != nil {
		t.Fatalf("rdb restore: %v\n%s", err, out)
	}
	st, _ := nodeStatus(t, dst.Nodes[2])
	if got := tableContents(t, dc, st.GetAppliedIndex()); got != want {
		t.Fatalf("restored contents differ:\n%s\nwant:\n%s", got, want)
	}
	dst.waitConverged(t, st.GetAppliedIndex(), time.Minute)

	// The SQL text backup restores to the same contents too.
	if out, err := runRDB(t, "restore", "--endpoint", dst.Nodes[0].ClientAddr, "--in", sqlBackup); err != nil {
		t.Fatalf("rdb restore of SQL text: %v\n%s", err, out)
	}
	st, _ = nodeStatus(t, dst.Nodes[0])
	if got := tableContents(t, dc, st.GetAppliedIndex()); got != want {
		t.Fatalf("contents restored from SQL differ:\n%s\nwant:\n%s", got, want)
	}
	// And the cluster keeps taking writes.
	w := mustExec(t, dc, "INSERT INTO t VALUES (100000, 'after restore')")
	dst.waitConverged(t, w.GetRaftIndex(), time.Minute)
}

func TestCorruptDatabaseFileIsRebuilt(t *testing.T) {
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	last := insertRows(t, cl, 0, 500, 50, 20)
	leader := c.WaitLeader(t)
	victim := c.Followers(leader)[0]
	victim.Stop(t)
	junk := make([]byte, 64<<10)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	path := filepath.Join(victim.DataDir, "db.sqlite")
	if err := os.WriteFile(path, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(path + "-wal")
	os.Remove(path + "-shm")
	victim.Start(t)
	c.waitConverged(t, last, time.Minute)
	res := mustQuery(t, NodeClient(t, victim), rpcpb.Consistency_CONSISTENCY_NONE, last, "SELECT count(*) FROM t")
	if got := res.GetRows()[0].GetValues()[0].GetInteger(); got != 500 {
		t.Fatalf("rebuilt node has %d rows, want 500", got)
	}
	aside, _ := filepath.Glob(path + ".corrupt-*")
	if len(aside) == 0 {
		t.Fatalf("the corrupt file was not kept aside")
	}
}
