package system_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"rdb/command"
	"rdb/rpc/rpcpb"
)

// The broken-build tests each target one deliberately broken build (see
// docs/design.md, "Failpoints and broken builds"). By default they run
// the normal build (with failpoints) and must pass: the breakage does not
// happen. With RDB_BROKEN=1 they build rdb with the broken tag too and
// pass only if they observe the breakage.

// brokenRDB returns the binary for a broken-build test: failpoints, plus
// tag under RDB_BROKEN=1.
func brokenRDB(t testing.TB, tag string) string {
	t.Helper()
	if brokenRun() {
		t.Logf("RDB_BROKEN=1: running the deliberately broken build %s", tag)
		return taggedRDB(t, "failpoints,"+tag)
	}
	return taggedRDB(t, "failpoints")
}

// verdict ends a broken-build test: under RDB_BROKEN=1 the breakage must
// have been seen, otherwise it must not have been.
func verdict(t testing.TB, broke bool, what string) {
	t.Helper()
	switch {
	case brokenRun() && !broke:
		t.Fatalf("broken build not caught: %s did not happen", what)
	case brokenRun():
		t.Logf("broken build caught: %s", what)
	case broke:
		t.Fatalf("normal build: %s", what)
	}
}

// waitLeaderAmong polls the given nodes until they agree on a leader
// among them.
func waitLeaderAmong(t testing.TB, c *Cluster, nodes ...*Node) *Node {
	t.Helper()
	var leader *Node
	waitFor(t, 30*time.Second, "a leader among the running nodes", func() error {
		var lead uint64
		for _, n := range nodes {
			st, err := nodeStatus(t, n)
			if err != nil {
				return err
			}
			if st.GetLeaderId() == 0 || (lead != 0 && st.GetLeaderId() != lead) {
				return fmt.Errorf("node %d follows %d", n.ID, st.GetLeaderId())
			}
			lead = st.GetLeaderId()
		}
		for _, n := range nodes {
			if n.ID == lead {
				leader = n
				return nil
			}
		}
		return fmt.Errorf("leader %d is not among them", lead)
	})
	return leader
}

// TestBroken_LocalRead: linearizable reads sent to a leader that is
// paused (SIGSTOP) while another leader takes a write must not return the
// value from before that write once the old leader continues. Target:
// broken_localread, which serves them locally.
func TestBroken_LocalRead(t *testing.T) {
	if testing.Short() {
		t.Skip("system test: skipped with -short")
	}
	useRDB(t, brokenRDB(t, "broken_localread"))
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE r (k INTEGER PRIMARY KEY, v INTEGER)")
	mustExec(t, cl, "INSERT INTO r VALUES (1, 0)")
	stale := 0
	const rounds, readers = 3, 8
	for round := 1; round <= rounds; round++ {
		old := c.WaitLeader(t)
		oc := NodeClient(t, old)
		// Connected and up to date before the pause.
		mustQuery(t, oc, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, 0, "SELECT v FROM r WHERE k=1")
		old.Pause(t)
		others := c.Followers(old)
		nl := waitLeaderAmong(t, c, others...)
		mustExec(t, NodeClient(t, nl), "UPDATE r SET v=? WHERE k=1", round)
		// Reads reach the paused process's socket; it handles them when
		// it continues, together with the new leader's messages.
		results := make(chan int64, readers)
		for i := 0; i < readers; i++ {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				resp, err := oc.Query(ctx, &rpcpb.QueryRequest{
					Statements:  []*command.Statement{stmt(t, "SELECT v FROM r WHERE k=1")},
					Consistency: rpcpb.Consistency_CONSISTENCY_LINEARIZABLE,
				})
				if err != nil {
					results <- -1 // an error is never stale
					return
				}
				results <- resp.GetResults()[0].GetRows()[0].GetValues()[0].GetInteger()
			}()
		}
		// Let the requests reach the socket (nothing to poll while the
		// process is stopped).
		time.Sleep(300 * time.Millisecond)
		old.Resume(t)
		for i := 0; i < readers; i++ {
			if v := <-results; v >= 0 && v < int64(round) {
				stale++
				t.Logf("round %d: linearizable read on the old leader %d returned %d, written value %d", round, old.ID, v, round)
			}
		}
		c.WaitLeader(t)
		if brokenRun() && stale > 0 {
			break
		}
	}
	verdict(t, stale > 0, fmt.Sprintf("%d stale linearizable reads", stale))
}

// TestBroken_EarlyAck: a write acknowledged to the client must survive
// the crash of every node that had not written it to its log. Both
// followers are held (failpoint raftBeforeSave=sleep) before writing
// their log; the normal build cannot acknowledge the write then, so the
// write times out. Target: broken_earlyack, whose followers acknowledge
// before writing: the write is acknowledged, all nodes are killed, the
// followers come back without it and elect a leader, and it is gone.
func TestBroken_EarlyAck(t *testing.T) {
	if testing.Short() {
		t.Skip("system test: skipped with -short")
	}
	useRDB(t, brokenRDB(t, "broken_earlyack"))
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	mustExec(t, cl, "INSERT INTO t(id) VALUES (1)")
	leader := c.WaitLeader(t)
	c.waitConverged(t, appliedIndex(t, leader), 30*time.Second)
	followers := c.Followers(leader)
	for _, f := range followers {
		f.ArmFailpoints(t, "raftBeforeSave=sleep(5s)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := NodeClient(t, leader).Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(t, "INSERT INTO t(id) VALUES (2)")}})
	cancel()
	acked := err == nil
	t.Logf("write with both followers held before their log write: acknowledged=%v (err %v)", acked, err)
	// Power cut for the whole cluster while the followers still sleep.
	for _, n := range c.Nodes {
		n.Kill(t)
	}
	for _, f := range followers {
		f.ArmFailpoints(t, "")
		f.Start(t)
	}
	nl := waitLeaderAmong(t, c, followers...)
	nc := NodeClient(t, nl)
	mustExec(t, nc, "INSERT INTO t(id) VALUES (3)")
	res := mustQuery(t, nc, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, 0, "SELECT count(*) FROM t WHERE id=2")
	lost := acked && res.GetRows()[0].GetValues()[0].GetInteger() == 0
	if !brokenRun() {
		// The old leader returns and everything converges.
		leader.Start(t)
		// A new client: the old one's connections died with the nodes.
		fresh := c.Client(t)
		final := mustExec(t, fresh, "INSERT INTO t(id) VALUES (4)")
		c.waitConverged(t, final.GetRaftIndex(), 60*time.Second)
		checkAcked(t, fresh, []int64{1, 3, 4})
	}
	verdict(t, lost, "an acknowledged write was lost")
}

// TestBroken_AppliedOutside: a follower crashes right after committing an
// applied batch (failpoint applyAfterCommit) holding a non-idempotent
// UPDATE, and restarts; the replicas must still agree. Target:
// broken_appliedoutside, which stores the applied index in a second
// transaction: the restarted follower applies the UPDATE twice.
func TestBroken_AppliedOutside(t *testing.T) {
	if testing.Short() {
		t.Skip("system test: skipped with -short")
	}
	useRDB(t, brokenRDB(t, "broken_appliedoutside"))
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
	r := mustExec(t, cl, "INSERT INTO c VALUES (1, 0)")
	c.waitConverged(t, r.GetRaftIndex(), 30*time.Second)
	leader := c.WaitLeader(t)
	f := c.Followers(leader)[0]
	f.ArmFailpoints(t, "applyAfterCommit=panic")
	// Through the leader: the follower about to crash must not be the
	// one answering.
	mustExec(t, NodeClient(t, leader), "UPDATE c SET n=n+1 WHERE id=1")
	waitCrash(t, f, "applyAfterCommit", 30*time.Second)
	f.ArmFailpoints(t, "")
	f.Start(t)
	final := mustExec(t, NodeClient(t, leader), "INSERT INTO c VALUES (2, 0)")
	hashes := hashesAt(t, c, final.GetRaftIndex())
	counts := map[uint64]int64{}
	for _, n := range c.Nodes {
		res := mustQuery(t, NodeClient(t, n), rpcpb.Consistency_CONSISTENCY_NONE, final.GetRaftIndex(), "SELECT n FROM c WHERE id=1")
		counts[n.ID] = res.GetRows()[0].GetValues()[0].GetInteger()
	}
	t.Logf("n per node: %v; hashes %v", counts, hashes)
	diverged := counts[f.ID] != 1 || hashes[f.ID] != hashes[leader.ID]
	verdict(t, diverged, fmt.Sprintf("replicas diverged after a crash between commit and applied index (n per node %v)", counts))
}

// hashesAt waits until every running node has applied the same index, at
// least minIndex, and returns each node's hash at it (whether or not they
// agree).
func hashesAt(t testing.TB, c *Cluster, minIndex uint64) map[uint64]string {
	t.Helper()
	var out map[uint64]string
	waitFor(t, 60*time.Second, "replicas at one applied index", func() error {
		out = map[uint64]string{}
		var at uint64
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			h, err := hashOf(t, n, minIndex)
			if err != nil {
				return fmt.Errorf("node %d: %v", n.ID, err)
			}
			if at != 0 && h.GetAppliedIndex() != at {
				return fmt.Errorf("node %d at %d, another at %d", n.ID, h.GetAppliedIndex(), at)
			}
			at = h.GetAppliedIndex()
			out[n.ID] = h.GetHash()
		}
		return nil
	})
	return out
}
