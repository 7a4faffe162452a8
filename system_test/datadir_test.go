package system_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // a plain SQLite file, as a user would copy in

	"rdb/command"
	"rdb/rpc/rpcpb"
)

// A node whose raft log is gone while its database has applied entries
// (the log deleted, its disk lost or not mounted, a database file copied
// into a new data directory) must refuse to start. Before this check it
// bootstrapped a new log under the old database, whose apply then skipped
// the new entries as already applied: a single-node cluster acknowledged
// writes and lost them (found 2026-11-27), and in a three-node cluster the
// follower stopped only later, with ErrLogLost.
func TestNodeRefusesToStartWithoutItsLog(t *testing.T) {
	for _, nodes := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d nodes", nodes), func(t *testing.T) { refusesToStartWithoutItsLog(t, nodes) })
	}
}

func refusesToStartWithoutItsLog(t *testing.T, nodes int) {
	c := StartCluster(t, nodes)
	leader := c.WaitLeader(t)
	cl := NodeClient(t, leader)
	mustExec(t, cl, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	for i := range 20 {
		mustExec(t, cl, "INSERT INTO t(id, v) VALUES(?, 'before')", i+1)
	}
	last := appliedIndex(t, leader)
	c.waitConverged(t, last, time.Minute)

	victim := leader
	if nodes > 1 {
		victim = c.Followers(leader)[0]
	}
	victim.Stop(t)
	dbPath := filepath.Join(victim.DataDir, "db.sqlite")
	before, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(victim.DataDir, "raft")); err != nil {
		t.Fatal(err)
	}

	victim.Start(t)
	if code := victim.WaitExit(t, 30*time.Second); code == 0 {
		t.Fatalf("node %d started without its raft log (exit status 0)", victim.ID)
	}
	if log := victim.LogText(); !strings.Contains(log, "raft log missing") || !strings.Contains(log, "Replacing a dead node") {
		victim.dumpLog(t)
		t.Fatal("the node's error does not say that its raft log is missing and what to do")
	}
	// Nothing was created or changed: a second start refuses the same way.
	if _, err := os.Stat(filepath.Join(victim.DataDir, "raft")); !os.IsNotExist(err) {
		t.Fatalf("a raft directory was created under the old database: %v", err)
	}
	after, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Fatal("the database file changed")
	}

	if nodes == 1 {
		return
	}
	// The other two keep serving writes, and they take effect.
	mustExec(t, cl, "INSERT INTO t(id, v) VALUES(21, 'after')")
	res := mustQuery(t, cl, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, 0, "SELECT count(*) FROM t")
	if n := res.GetRows()[0].GetValues()[0].GetInteger(); n != 21 {
		t.Fatalf("%d rows after the refused start, want 21", n)
	}
}

// A second `rdb serve` on the data directory of a running node (a unit
// started twice, a mistyped flag) must stop before it opens anything
// there. Before the data directory lock it opened and checked the live
// database (a page read while the running node wrote it could fail its
// checksum and get the live file moved aside as damaged) and stopped only
// at the raft log's file lock.
func TestSecondProcessOnADataDirectoryIsRefused(t *testing.T) {
	c := StartCluster(t, 1)
	n := c.WaitLeader(t)
	cl := NodeClient(t, n)
	mustExec(t, cl, "CREATE TABLE t(x)")
	mustExec(t, cl, "INSERT INTO t VALUES(1)")

	twin := &Node{ID: n.ID, ClientAddr: freeAddr(t), PeerAddr: freeAddr(t), DataDir: n.DataDir,
		Initial: n.Initial, logPath: filepath.Join(t.TempDir(), "twin.log")}
	twin.Start(t)
	t.Cleanup(func() { twin.Kill(t) })
	if code := twin.WaitExit(t, 30*time.Second); code == 0 {
		t.Fatal("a second process on a node's data directory exited with status 0")
	}
	if want := fmt.Sprintf("is in use by process %d", n.Pid()); !strings.Contains(twin.LogText(), want) {
		t.Fatalf("the second process's log does not say %q:\n%s", want, twin.LogText())
	}
	if strings.Contains(twin.LogText(), "database file verified") {
		t.Fatal("the second process opened the database before it was refused")
	}

	// The running node is unaffected, and once it stops the directory is
	// free again (the lock goes with the process).
	mustExec(t, cl, "INSERT INTO t VALUES(2)")
	if aside, _ := filepath.Glob(filepath.Join(n.DataDir, "*.corrupt-*")); len(aside) > 0 {
		t.Fatalf("files moved aside: %v", aside)
	}
	n.Kill(t)
	n.Start(t)
	c.WaitLeader(t)
	res := mustQuery(t, NodeClient(t, n), rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, 0, "SELECT count(*) FROM t")
	if got := res.GetRows()[0].GetValues()[0].GetInteger(); got != 2 {
		t.Fatalf("%d rows after the restart, want 2", got)
	}
}

// A SQLite file copied into a new node's data directory (to serve it
// with rdb) must be refused: the other replicas start empty, so the node
// would hold data they lack. The way to load a file is rdb restore.
func TestCopiedDatabaseFileIsRefused(t *testing.T) {
	c := newCluster(t, 3)
	n1 := c.Nodes[0]
	if err := os.MkdirAll(n1.DataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	plain, err := sql.Open("sqlite", filepath.Join(n1.DataDir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)", "INSERT INTO users(name) VALUES('ann')"} {
		if _, err := plain.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := plain.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		n.Start(t)
	}
	if code := n1.WaitExit(t, 30*time.Second); code == 0 {
		t.Fatal("a node started a new cluster over a copied database file (exit status 0)")
	}
	if log := n1.LogText(); !strings.Contains(log, "raft log missing") || !strings.Contains(log, "holds users") || !strings.Contains(log, "rdb restore") {
		t.Fatalf("the node's error does not name the copied table and rdb restore:\n%s", log)
	}
	// The other two form the cluster, without the copied table.
	leader := c.WaitLeader(t)
	_, err = NodeClient(t, leader).Query(t.Context(), &rpcpb.QueryRequest{Consistency: rpcpb.Consistency_CONSISTENCY_LINEARIZABLE,
		Statements: []*command.Statement{stmt(t, "SELECT count(*) FROM users")}})
	if err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("query of the copied table on the cluster: %v, want no such table", err)
	}
}
