package system_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// writer inserts rows into w(id, v) one after another, each with its own
// deadline. A write refused with NOT_APPLIED (it certainly did not take
// effect) is sent again; any other error is a failure.
type writer struct {
	t       testing.TB
	cl      *client.Client
	timeout time.Duration

	mu        sync.Mutex
	okTimes   []time.Time // when each acknowledged write returned
	retries   int
	failures  []string
	failedIDs []int
	lastIndex uint64

	stop chan struct{}
	done chan struct{}
}

func startWriter(t testing.TB, cl *client.Client, timeout time.Duration) *writer {
	t.Helper()
	mustExec(t, cl, "CREATE TABLE IF NOT EXISTS w (id INTEGER PRIMARY KEY, v TEXT)")
	w := &writer{t: t, cl: cl, timeout: timeout, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	t.Cleanup(w.Stop)
	return w
}

func (w *writer) run() {
	defer close(w.done)
	for id := 1; ; {
		select {
		case <-w.stop:
			return
		default:
		}
		s, err := command.NewStatement("INSERT INTO w (id, v) VALUES (?, ?)", id, fmt.Sprintf("row %d", id))
		if err != nil {
			panic(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
		resp, err := w.cl.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{s}})
		cancel()
		now := time.Now()
		w.mu.Lock()
		switch {
		case err == nil:
			w.okTimes = append(w.okTimes, now)
			w.lastIndex = max(w.lastIndex, resp.GetRaftIndex())
			id++
		case client.IsNotApplied(err):
			w.retries++ // same id again
		default:
			w.failures = append(w.failures, fmt.Sprintf("%s insert %d: %v (outcome unknown: %v)", now.Format("15:04:05.000"), id, err, client.IsOutcomeUnknown(err)))
			w.failedIDs = append(w.failedIDs, id)
			id++
		}
		w.mu.Unlock()
		if err != nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Stop stops the writer and waits for its last write. Idempotent.
func (w *writer) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *writer) acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.okTimes)
}

// waitAcked waits until n more writes than now were acknowledged.
func (w *writer) waitAcked(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	target := w.acked() + n
	waitFor(t, timeout, "writer progresses", func() error {
		if got := w.acked(); got < target {
			return fmt.Errorf("%d of %d writes acknowledged", got, target)
		}
		return nil
	})
}

// maxGap returns the longest time between two consecutive acknowledged
// writes that overlaps [from, to] (zero times: the whole run).
func (w *writer) maxGap(from, to time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var gap time.Duration
	for i := 1; i < len(w.okTimes); i++ {
		a, b := w.okTimes[i-1], w.okTimes[i]
		if (!to.IsZero() && a.After(to)) || (!from.IsZero() && b.Before(from)) {
			continue
		}
		gap = max(gap, b.Sub(a))
	}
	return gap
}

// check stops the writer, fails the test on any failed write, and
// verifies that exactly the acknowledged rows are in the table. It
// returns the raft index of the last write.
func (w *writer) check(t testing.TB, cl *client.Client) uint64 {
	t.Helper()
	w.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("writer: %d writes acknowledged, %d retried after NOT_APPLIED, %d failed, longest gap %s",
		len(w.okTimes), w.retries, len(w.failures), w.maxGapLocked().Round(time.Millisecond))
	for _, f := range w.failures {
		t.Errorf("write failed: %s", f)
	}
	res := mustQuery(t, cl, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, w.lastIndex, "SELECT count(*) FROM w")
	got := res.GetRows()[0].GetValues()[0].GetInteger()
	committed := 0
	for _, id := range w.failedIDs {
		r := mustQuery(t, cl, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, w.lastIndex, "SELECT count(*) FROM w WHERE id = ?", id)
		if r.GetRows()[0].GetValues()[0].GetInteger() == 1 {
			t.Logf("failed insert %d was committed after all", id)
			committed++
		} else {
			t.Logf("failed insert %d was not committed", id)
		}
	}
	if got != int64(len(w.okTimes)+committed) {
		t.Errorf("table w has %d rows, %d writes were acknowledged and %d failed ones committed", got, len(w.okTimes), committed)
	}
	return w.lastIndex
}

func (w *writer) maxGapLocked() time.Duration {
	var gap time.Duration
	for i := 1; i < len(w.okTimes); i++ {
		gap = max(gap, w.okTimes[i].Sub(w.okTimes[i-1]))
	}
	return gap
}

// membersOf lists the members as the leader sees them, by id.
func membersOf(cl *client.Client) (map[uint64]*rpcpb.MemberInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cl.Members(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[uint64]*rpcpb.MemberInfo)
	for _, m := range resp.GetMembers() {
		out[m.GetId()] = m
	}
	return out, nil
}

func describeMembers(ms map[uint64]*rpcpb.MemberInfo) string {
	var ids []uint64
	for id := range ms {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var parts []string
	for _, id := range ids {
		m := ms[id]
		parts = append(parts, fmt.Sprintf("%d:%s(voter=%v,lag=%d)", id, m.GetRole(), m.GetVoter(), m.GetLag()))
	}
	return strings.Join(parts, " ")
}

// waitMembers polls Members until exactly the ids of want are members,
// each a voter or a learner as want says.
func waitMembers(t testing.TB, cl *client.Client, timeout time.Duration, want map[uint64]bool) map[uint64]*rpcpb.MemberInfo {
	t.Helper()
	var got map[uint64]*rpcpb.MemberInfo
	waitFor(t, timeout, fmt.Sprintf("members %v", want), func() error {
		var err error
		if got, err = membersOf(cl); err != nil {
			return err
		}
		if len(got) != len(want) {
			return fmt.Errorf("members %s", describeMembers(got))
		}
		for id, voter := range want {
			m, ok := got[id]
			if !ok || m.GetVoter() != voter || m.GetClientAddr() == "" || m.GetPeerAddr() == "" {
				return fmt.Errorf("members %s", describeMembers(got))
			}
		}
		return nil
	})
	return got
}

// clusterCLI runs `rdb cluster ARGS --endpoint ENDPOINT`.
func clusterCLI(t testing.TB, endpoint string, args ...string) (string, error) {
	t.Helper()
	return runRDB(t, append(append([]string{"cluster"}, args...), "--endpoint", endpoint)...)
}

// checkStatusesForget fails unless no running node's status lists id.
func (c *Cluster) checkStatusesForget(t testing.TB, id uint64) {
	t.Helper()
	waitFor(t, 15*time.Second, fmt.Sprintf("every node forgets node %d", id), func() error {
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			st, err := nodeStatus(t, n)
			if err != nil {
				return fmt.Errorf("node %d: %v", n.ID, err)
			}
			for _, m := range st.GetMembers() {
				if m.GetId() == id {
					return fmt.Errorf("node %d still lists node %d", n.ID, id)
				}
			}
		}
		return nil
	})
}

// waitExitRemoved waits for a removed node's process to exit and checks
// that it exited non-zero and said why.
func waitExitRemoved(t testing.TB, n *Node) {
	t.Helper()
	code := n.WaitExit(t, 20*time.Second)
	if code == 0 {
		t.Errorf("removed node %d exited with status 0", n.ID)
	}
	if log := n.LogText(); !strings.Contains(log, "removed from the cluster") {
		t.Errorf("removed node %d's log does not say it was removed:\n%s", n.ID, tail(log, 15))
	}
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// waitCaughtUp waits until n knows the agreed leader and has applied
// everything the leader had committed when it was asked.
func (c *Cluster) waitCaughtUp(t testing.TB, n *Node) {
	t.Helper()
	leader := c.WaitLeader(t)
	target := appliedIndex(t, leader)
	waitFor(t, 60*time.Second, fmt.Sprintf("node %d catches up", n.ID), func() error {
		st, err := nodeStatus(t, n)
		if err != nil {
			return err
		}
		if st.GetLeaderId() != leader.ID || st.GetAppliedIndex() < target {
			return fmt.Errorf("node %d: leader %d, applied %d of %d", n.ID, st.GetLeaderId(), st.GetAppliedIndex(), target)
		}
		return nil
	})
}

func TestMembershipGrowAndShrinkUnderLoad(t *testing.T) {
	c := StartCluster(t, 3)
	cl := c.Client(t)
	w := startWriter(t, c.Client(t), 10*time.Second)
	w.waitAcked(t, 50, 30*time.Second)

	start := time.Now()
	n4 := c.AddNode(t, 4, false)
	waitMembers(t, cl, 60*time.Second, map[uint64]bool{1: true, 2: true, 3: true, 4: true})
	t.Logf("node 4 joined and was promoted in %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	n5 := c.AddNode(t, 5, false)
	ms := waitMembers(t, cl, 60*time.Second, map[uint64]bool{1: true, 2: true, 3: true, 4: true, 5: true})
	t.Logf("node 5 joined and was promoted in %s; members %s", time.Since(start).Round(time.Millisecond), describeMembers(ms))
	if ms[4].GetClientAddr() != n4.ClientAddr || ms[5].GetPeerAddr() != n5.PeerAddr {
		t.Errorf("new members' addresses: %v %v", ms[4], ms[5])
	}
	w.waitAcked(t, 50, 30*time.Second)
	// The new nodes serve reads of what was written.
	c.waitCaughtUp(t, n5)
	mustQuery(t, NodeClient(t, n4), rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, 0, "SELECT count(*) FROM w")

	// Shrink to three: one new node and one original follower that is
	// not the writer's current endpoint (a write in flight on a node
	// being removed may have an unknown outcome, which is not the point).
	leader := c.WaitLeader(t)
	var victims []*Node
	for _, group := range [][]*Node{{n5, n4}, {c.Nodes[2], c.Nodes[1], c.Nodes[0]}} {
		for _, n := range group {
			if n != leader && n.ClientAddr != w.cl.Current() {
				victims = append(victims, n)
				break
			}
		}
	}
	if len(victims) != 2 {
		t.Fatalf("no two nodes to remove (leader %d, writer on %s)", leader.ID, w.cl.Current())
	}
	want := map[uint64]bool{1: true, 2: true, 3: true, 4: true, 5: true}
	for _, v := range victims {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := cl.RemoveMember(ctx, &rpcpb.RemoveMemberRequest{Id: v.ID})
		cancel()
		if err != nil {
			t.Fatalf("remove node %d: %v", v.ID, err)
		}
		delete(want, v.ID)
		waitExitRemoved(t, v)
		c.checkStatusesForget(t, v.ID)
		waitMembers(t, cl, 10*time.Second, want)
		t.Logf("removed node %d", v.ID)
	}
	w.waitAcked(t, 50, 30*time.Second)
	last := w.check(t, cl)
	c.waitConverged(t, last, time.Minute)
}

func TestReplaceNodeWithWipedDataDir(t *testing.T) {
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	insertRows(t, cl, 0, 2_000, 100, 100)

	// The worst case: the dead node was the leader. The operator removes
	// it right away through a survivor, before a new leader is elected.
	n3 := c.Node(3)
	if out, err := clusterCLI(t, c.Nodes[0].ClientAddr, "transfer-leader", "3"); err != nil {
		t.Fatalf("rdb cluster transfer-leader 3: %v\n%s", err, out)
	}
	n3.Kill(t)
	if err := os.RemoveAll(n3.DataDir); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := clusterCLI(t, c.Nodes[0].ClientAddr, "remove", "3")
	if err != nil {
		t.Errorf("rdb cluster remove 3 through node 1 right after the leader (3) died failed instead of waiting for a new leader: %v\n%s", err, out)
		c.WaitLeader(t)
		out, err = clusterCLI(t, c.Nodes[0].ClientAddr, "remove", "3")
		if err != nil {
			t.Fatalf("rdb cluster remove 3 once 1 and 2 have a leader: %v\n%s", err, out)
		}
	}
	t.Logf("rdb cluster remove 3 (%s): %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	waitMembers(t, cl, 10*time.Second, map[uint64]bool{1: true, 2: true})
	c.checkStatusesForget(t, 3)
	last := insertRows(t, cl, 2_000, 3_000, 100, 100)

	start = time.Now()
	n4 := c.AddNode(t, 4, false)
	waitMembers(t, cl, 60*time.Second, map[uint64]bool{1: true, 2: true, 4: true})
	c.waitConverged(t, last, time.Minute)
	t.Logf("replacement node 4 joined, caught up and was promoted in %s", time.Since(start).Round(time.Millisecond))
	res := mustQuery(t, NodeClient(t, n4), rpcpb.Consistency_CONSISTENCY_NONE, last, "SELECT count(*) FROM t")
	if got := res.GetRows()[0].GetValues()[0].GetInteger(); got != 3_000 {
		t.Fatalf("replacement has %d rows, want 3000", got)
	}
	// The three-node cluster tolerates a failure again: with node 1 down,
	// 2 and 4 still take writes.
	c.Node(1).Kill(t)
	c.WaitLeader(t)
	w := mustExec(t, newClient(t, c.Node(2).ClientAddr, n4.ClientAddr), "INSERT INTO t VALUES (-1, 'without node 1')")
	c.Node(1).Start(t)
	c.waitConverged(t, w.GetRaftIndex(), time.Minute)
}

func TestRollingRestartUnderSteadyWriter(t *testing.T) {
	c := StartCluster(t, 3)
	w := startWriter(t, c.Client(t), 5*time.Second)
	w.waitAcked(t, 50, 30*time.Second)
	for _, n := range c.Nodes {
		wasLeader := c.WaitLeader(t) == n
		start := time.Now()
		n.Stop(t)
		stopped := time.Since(start)
		n.Start(t)
		c.waitCaughtUp(t, n)
		w.waitAcked(t, 30, 30*time.Second)
		t.Logf("node %d (leader: %v) stopped in %s, back and caught up after %s; longest write gap so far %s",
			n.ID, wasLeader, stopped.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), w.maxGap(start, time.Now()).Round(time.Millisecond))
	}
	cl := c.Client(t)
	last := w.check(t, cl)
	gap := w.maxGap(time.Time{}, time.Time{})
	t.Logf("rolling restart: longest gap between two acknowledged writes %s", gap.Round(time.Millisecond))
	if gap >= 10*time.Second {
		t.Errorf("write stall of %s during the rolling restart", gap)
	}
	c.waitConverged(t, last, time.Minute)
}

func TestLeaderTransferToNamedNode(t *testing.T) {
	c := StartCluster(t, 3)
	w := startWriter(t, c.Client(t), 5*time.Second)
	w.waitAcked(t, 50, 30*time.Second)
	old := c.WaitLeader(t)
	target := c.Followers(old)[1]
	termBefore := mustStatus(t, old).GetTerm()

	start := time.Now()
	out, err := clusterCLI(t, c.Followers(old)[0].ClientAddr, "transfer-leader", fmt.Sprint(target.ID))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("rdb cluster transfer-leader %d: %v\n%s", target.ID, err, out)
	}
	if !strings.Contains(out, fmt.Sprintf("node %d is the leader", target.ID)) {
		t.Errorf("transfer-leader output: %q", out)
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("every node reports leader %d", target.ID), func() error {
		for _, n := range c.Nodes {
			st, err := nodeStatus(t, n)
			if err != nil {
				return err
			}
			if st.GetLeaderId() != target.ID || st.GetLeaderAddr() != target.ClientAddr {
				return fmt.Errorf("node %d reports leader %d at %q", n.ID, st.GetLeaderId(), st.GetLeaderAddr())
			}
		}
		return nil
	})
	end := time.Now()
	w.waitAcked(t, 50, 30*time.Second)
	termAfter := mustStatus(t, target).GetTerm()
	t.Logf("transfer %d -> %d: CLI returned in %s, term %d -> %d, longest write gap around it %s",
		old.ID, target.ID, took.Round(time.Millisecond), termBefore, termAfter, w.maxGap(start, end).Round(time.Millisecond))
	if termAfter != termBefore+1 {
		t.Errorf("term went from %d to %d: more than one election", termBefore, termAfter)
	}

	// Transferring to the current leader is a no-op; to an unknown id an error.
	if out, err := clusterCLI(t, old.ClientAddr, "transfer-leader", fmt.Sprint(target.ID)); err != nil {
		t.Errorf("transfer to the current leader: %v\n%s", err, out)
	}
	if out, err := clusterCLI(t, old.ClientAddr, "transfer-leader", "42"); err == nil {
		t.Errorf("transfer to unknown node 42 succeeded: %s", out)
	} else {
		t.Logf("transfer to unknown node 42: %s", strings.TrimSpace(out))
	}

	cl := c.Client(t)
	last := w.check(t, cl)
	c.waitConverged(t, last, time.Minute)
}

func mustStatus(t testing.TB, n *Node) *rpcpb.StatusResponse {
	t.Helper()
	st, err := nodeStatus(t, n)
	if err != nil {
		t.Fatalf("status of node %d: %v", n.ID, err)
	}
	return st
}

func TestLearnerServesReadsAndDoesNotVote(t *testing.T) {
	c := StartCluster(t, 2)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	learner := c.AddNode(t, 3, true)
	waitMembers(t, cl, 30*time.Second, map[uint64]bool{1: true, 2: true, 3: false})
	last := insertRows(t, cl, 0, 500, 50, 10)

	lc := NodeClient(t, learner)
	for _, lvl := range []rpcpb.Consistency{rpcpb.Consistency_CONSISTENCY_NONE, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE} {
		res := mustQuery(t, lc, lvl, last, "SELECT count(*) FROM t")
		if got := res.GetRows()[0].GetValues()[0].GetInteger(); got != 500 {
			t.Errorf("learner read at %v: %d rows, want 500", lvl, got)
		}
	}
	// A linearizable read right after a write sees it, without min_index.
	wr := mustExec(t, cl, "INSERT INTO t VALUES (1000, 'fresh')")
	res := mustQuery(t, lc, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, 0, "SELECT v FROM t WHERE id = 1000")
	if len(res.GetRows()) != 1 {
		t.Errorf("linearizable read on the learner misses a write acknowledged at index %d", wr.GetRaftIndex())
	}

	// It stays a learner although it is caught up.
	time.Sleep(3 * time.Second)
	ms := waitMembers(t, cl, 5*time.Second, map[uint64]bool{1: true, 2: true, 3: false})
	if !ms[3].GetStayLearner() || ms[3].GetRole() != "learner" {
		t.Errorf("learner listed as %v", ms[3])
	}
	if st := mustStatus(t, learner); st.GetRole() != "learner" {
		t.Errorf("learner's own status says role %q", st.GetRole())
	}

	// One of the two voters dies: no quorum, although two of three
	// processes run.
	leader := c.WaitLeader(t)
	leader.Kill(t)
	var other *Node
	for _, n := range c.Nodes[:2] {
		if n != leader {
			other = n
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := newClient(t, other.ClientAddr, learner.ClientAddr).Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(t, "INSERT INTO t VALUES (-1, 'no quorum')")}})
	cancel()
	if err == nil {
		t.Fatalf("a write succeeded with one of two voters down")
	}
	t.Logf("write without quorum failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	// The client retries "no leader" (NOT_APPLIED) answers until its
	// deadline; the last attempt may be cut by that deadline.
	if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
		t.Errorf("write without quorum: code %v, want Unavailable or DeadlineExceeded", code)
	}
	if d := time.Since(start); d > 12*time.Second {
		t.Errorf("write without quorum took %s", d)
	}
	// Nobody becomes leader for several election timeouts; the learner
	// never even campaigns.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range []*Node{other, learner} {
			st, err := nodeStatus(t, n)
			if err != nil {
				t.Fatalf("status of node %d: %v", n.ID, err)
			}
			if st.GetRole() == "leader" {
				t.Fatalf("node %d became leader without a quorum of voters", n.ID)
			}
			if n == learner && st.GetRole() != "learner" {
				t.Fatalf("learner is %s", st.GetRole())
			}
		}
		time.Sleep(200 * time.Millisecond)
	}

	leader.Start(t)
	c.WaitLeader(t)
	final := mustExec(t, cl, "INSERT INTO t VALUES (-2, 'quorum back')")
	c.waitConverged(t, final.GetRaftIndex(), time.Minute)
}

func TestRemovedNodeStopsServing(t *testing.T) {
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	insertRows(t, cl, 0, 300, 30, 10)

	// Removing a follower.
	leader := c.WaitLeader(t)
	victim := c.Followers(leader)[0]
	out, err := clusterCLI(t, leader.ClientAddr, "remove", fmt.Sprint(victim.ID))
	if err != nil {
		t.Fatalf("rdb cluster remove %d: %v\n%s", victim.ID, err, out)
	}
	waitExitRemoved(t, victim)
	c.checkStatusesForget(t, victim.ID)
	if _, err := nodeStatus(t, victim); err == nil {
		t.Errorf("removed node %d still answers", victim.ID)
	}

	// Removing the leader itself (from a follower): the other voter
	// takes over, and a quorum check refuses to remove the last voter.
	survivor := c.Followers(leader)[0]
	out, err = clusterCLI(t, survivor.ClientAddr, "remove", fmt.Sprint(leader.ID))
	if err != nil {
		t.Fatalf("rdb cluster remove %d (the leader): %v\n%s", leader.ID, err, out)
	}
	waitExitRemoved(t, leader)
	if got := c.WaitLeader(t); got != survivor {
		t.Fatalf("leader %d, want %d", got.ID, survivor.ID)
	}
	c.checkStatusesForget(t, leader.ID)
	waitMembers(t, cl, 10*time.Second, map[uint64]bool{survivor.ID: true})
	if out, err := clusterCLI(t, survivor.ClientAddr, "remove", fmt.Sprint(survivor.ID)); err == nil {
		t.Errorf("removing the last voter succeeded: %s", out)
	}
	final := mustExec(t, cl, "INSERT INTO t VALUES (-1, 'after removals')")
	res := mustQuery(t, cl, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, final.GetRaftIndex(), "SELECT count(*) FROM t")
	if got := res.GetRows()[0].GetValues()[0].GetInteger(); got != 301 {
		t.Errorf("%d rows, want 301", got)
	}
	c.waitConverged(t, final.GetRaftIndex(), time.Minute)
}

func TestPreVoteRejoiningFollowerDoesNotDisturbLeader(t *testing.T) {
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	leader := c.WaitLeader(t)
	term := mustStatus(t, leader).GetTerm()
	cut := c.Followers(leader)[0]

	// 50 election ticks of 100 ms cut off (SIGSTOP freezes the process:
	// nothing in or out), while the others keep writing.
	cut.Pause(t)
	start := time.Now()
	last := insertRows(t, newClient(t, leader.ClientAddr), 0, 200, 10, 10)
	time.Sleep(5*time.Second - time.Since(start))
	cut.Resume(t)

	// Several election timeouts after its return, the leader and the
	// term are what they were.
	c.waitCaughtUp(t, cut)
	time.Sleep(2 * time.Second)
	for _, n := range c.Nodes {
		st := mustStatus(t, n)
		if st.GetLeaderId() != leader.ID || st.GetTerm() != term {
			t.Errorf("node %d: leader %d term %d, want leader %d term %d", n.ID, st.GetLeaderId(), st.GetTerm(), leader.ID, term)
		}
	}
	w := mustExec(t, cl, "INSERT INTO t VALUES (-1, 'after the partition')")
	if w.GetRaftIndex() <= last {
		t.Errorf("index went backwards: %d <= %d", w.GetRaftIndex(), last)
	}
	c.waitConverged(t, w.GetRaftIndex(), time.Minute)
}

func TestJoinWithIDOrAddressInUseIsRefused(t *testing.T) {
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	join := strings.Join(c.Endpoints(), ",")
	st := mustStatus(t, c.Nodes[0])
	if st.GetClusterId() == 0 {
		t.Fatalf("status has no cluster id: %v", st)
	}
	wrongID := fmt.Sprintf("%016x", st.GetClusterId()^0xff)
	for _, tc := range []struct {
		name  string
		extra []string
		want  []string // the output holds one of these
	}{
		{"id 2 in use", []string{"--id", "2"}, []string{"already exists", "in use"}},
		{"peer address of node 1", []string{"--id", "9", "--advertise-peer", c.Nodes[0].PeerAddr}, []string{"already exists", "in use"}},
		{"another cluster's id", []string{"--id", "9", "--cluster-id", wrongID}, []string{"belongs to cluster " + fmt.Sprintf("%016x", st.GetClusterId())}},
	} {
		args := append([]string{"serve", "--data-dir", t.TempDir(), "--listen", freeAddr(t), "--peer-listen", freeAddr(t), "--join", join}, tc.extra...)
		start := time.Now()
		out, code, exited := runFor(rdbBin, args, 30*time.Second)
		if !exited {
			t.Fatalf("%s: rdb serve still running 30s after it started (goroutines dumped with SIGQUIT):\n%s", tc.name, out)
		}
		if code == 0 {
			t.Fatalf("%s: rdb serve exited 0:\n%s", tc.name, tail(out, 15))
		}
		if !slices.ContainsFunc(tc.want, func(w string) bool { return strings.Contains(out, w) }) {
			t.Errorf("%s: unclear refusal (want one of %q):\n%s", tc.name, tc.want, tail(out, 15))
		}
		t.Logf("%s: refused in %s: %s", tc.name, time.Since(start).Round(time.Millisecond), lineWith(out, "refused"))
	}
	ms := waitMembers(t, cl, 5*time.Second, map[uint64]bool{1: true, 2: true, 3: true})
	if ms[2].GetClientAddr() != c.Nodes[1].ClientAddr {
		t.Errorf("node 2's address changed to %s", ms[2].GetClientAddr())
	}
	w := mustExec(t, cl, "INSERT INTO t VALUES (1, 'still fine')")
	c.waitConverged(t, w.GetRaftIndex(), time.Minute)
}

// runFor runs a command for at most d. When it is still running then, it
// gets SIGQUIT (a Go program dumps its goroutines) and then SIGKILL.
func runFor(bin string, args []string, d time.Duration) (out string, code int, exited bool) {
	var buf bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return err.Error(), -1, true
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
		return buf.String(), cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
	}
	cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	return buf.String(), cmd.ProcessState.ExitCode(), false
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// A removed node's id may be used again by a new node with an empty data
// directory (what the removed node's own log message tells operators).
func TestJoinReusingRemovedID(t *testing.T) {
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	old := c.AddNode(t, 4, false)
	waitMembers(t, cl, 30*time.Second, map[uint64]bool{1: true, 2: true, 3: true, 4: true})
	if out, err := clusterCLI(t, c.Nodes[0].ClientAddr, "remove", "4"); err != nil {
		t.Fatalf("rdb cluster remove 4: %v\n%s", err, out)
	}
	waitExitRemoved(t, old)
	insertRows(t, cl, 0, 100, 10, 10)

	again := c.AddNode(t, 4, false)
	waitMembers(t, cl, 30*time.Second, map[uint64]bool{1: true, 2: true, 3: true, 4: true})
	w := mustExec(t, cl, "INSERT INTO t VALUES (-1, 'after the rejoin')")
	time.Sleep(time.Second)
	if !again.Running() || again.Pid() == 0 || strings.Contains(again.LogText(), "removed from the cluster") {
		t.Fatalf("the new node 4 stopped, taking itself for the removed one:\n%s", tail(again.LogText(), 8))
	}
	c.waitConverged(t, w.GetRaftIndex(), time.Minute)
}

// A node of another cluster that comes up at a member's addresses (the
// member died and its ports were reused) is refused by the cluster's
// nodes, and refuses them: neither side applies the other's log.
func TestNodeOfAnotherClusterIsRefused(t *testing.T) {
	c := StartCluster(t, 3)
	cl := c.Client(t)
	w := mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	c.waitConverged(t, w.GetRaftIndex(), time.Minute)
	ours := mustStatus(t, c.Nodes[0]).GetClusterId()

	// Node 3 dies; a one-node cluster of its own takes its addresses.
	// (Plain clients are given only nodes 1 and 2 from now on: only a
	// client pinned with Config.ClusterID checks cluster ids.)
	cl = newClient(t, c.Nodes[0].ClientAddr, c.Nodes[1].ClientAddr)
	old := c.Nodes[2]
	old.Kill(t)
	stranger := &Node{ID: 3, ClientAddr: old.ClientAddr, PeerAddr: old.PeerAddr,
		DataDir: filepath.Join(t.TempDir(), "stranger"), logPath: filepath.Join(t.TempDir(), "stranger.log"),
		Initial: "3=" + old.PeerAddr}
	stranger.Start(t)
	t.Cleanup(func() { stranger.Kill(t) })
	var theirs uint64
	waitFor(t, 30*time.Second, "the stranger to lead its own cluster", func() error {
		st, err := nodeStatus(t, stranger)
		if err != nil {
			return err
		}
		if st.GetRole() != "leader" {
			return fmt.Errorf("role %s", st.GetRole())
		}
		theirs = st.GetClusterId()
		return nil
	})
	if theirs == ours || theirs == 0 {
		t.Fatalf("cluster ids: ours %016x, the stranger's %016x", ours, theirs)
	}
	for i := 0; i < 20; i++ {
		w = mustExec(t, cl, "INSERT INTO t (v) VALUES ('x')")
	}
	// Both of our live nodes apply; the stranger never sees table t.
	waitFor(t, 30*time.Second, "the live members to apply", func() error {
		for _, n := range c.Nodes[:2] {
			if got := appliedIndex(t, n); got < w.GetRaftIndex() {
				return fmt.Errorf("node %d applied %d < %d", n.ID, got, w.GetRaftIndex())
			}
		}
		return nil
	})
	want := fmt.Sprintf("this node belongs to cluster %016x, the other side to cluster %016x", theirs, ours)
	waitFor(t, 30*time.Second, "the stranger's refusal in the members' logs", func() error {
		for _, n := range c.Nodes[:2] {
			if strings.Contains(n.LogText(), want) {
				return nil
			}
		}
		return fmt.Errorf("no log line %q", want)
	})
	scl := NodeClient(t, stranger)
	if _, err := scl.Query(context.Background(), &rpcpb.QueryRequest{Statements: []*command.Statement{stmt(t, "SELECT count(*) FROM t")}, Consistency: rpcpb.Consistency_CONSISTENCY_NONE}); err == nil {
		t.Fatalf("the stranger has our table t")
	}
	st := mustStatus(t, stranger)
	if len(st.GetMembers()) != 1 {
		t.Fatalf("the stranger's members: %v", st.GetMembers())
	}

	// A client pinned to our cluster id is refused by the stranger, even
	// where a plain client would have read from or written to it, and
	// works with our nodes.
	pinned, err := client.New(client.Config{Endpoints: []string{stranger.ClientAddr}, ClusterID: fmt.Sprintf("%016x", ours)})
	if err != nil {
		t.Fatal(err)
	}
	defer pinned.Close()
	_, err = pinned.Execute(context.Background(), &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(t, "CREATE TABLE pinned (x)")}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), want[:30]) {
		t.Fatalf("pinned write to the stranger: %v, want FailedPrecondition %q", err, want[:30])
	}
	_, err = pinned.Query(context.Background(), &rpcpb.QueryRequest{Statements: []*command.Statement{stmt(t, "SELECT 1")}, Consistency: rpcpb.Consistency_CONSISTENCY_NONE})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("pinned read from the stranger: %v, want FailedPrecondition", err)
	}
	if _, err := client.New(client.Config{Endpoints: []string{stranger.ClientAddr}, ClusterID: "not-hex"}); !errors.Is(err, client.ErrBadConfig) {
		t.Fatalf("malformed cluster id: %v, want ErrBadConfig", err)
	}
	ourPinned, err := client.New(client.Config{Endpoints: []string{c.Nodes[1].ClientAddr}, ClusterID: fmt.Sprintf("%016x", ours)})
	if err != nil {
		t.Fatal(err)
	}
	defer ourPinned.Close()
	if _, err := ourPinned.Execute(context.Background(), &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(t, "INSERT INTO t (v) VALUES ('pinned')")}}); err != nil {
		t.Fatalf("pinned write through our follower: %v", err)
	}

	// The real node 3 comes back (the stranger gone) and catches up.
	stranger.Kill(t)
	old.Start(t)
	w = mustExec(t, cl, "INSERT INTO t (v) VALUES ('after')")
	c.waitConverged(t, w.GetRaftIndex(), time.Minute)
}

// TestJoinerCrashBeforeCatchUpRecovers kills a node started with --join
// right after the cluster added it, before it received anything (the
// joinAfterAdd failpoint), and restarts it. It must catch up and be
// promoted: chaos finding 12, where the restarted joiner knew no peer
// address (it had them only from the join answer) and stayed a lagging
// learner for ever.
func TestJoinerCrashBeforeCatchUpRecovers(t *testing.T) {
	useRDB(t, taggedRDB(t, "failpoints"))
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	last := insertRows(t, cl, 0, 500, 100, 100)

	var join []string
	for _, n := range c.Nodes {
		join = append(join, n.ClientAddr)
	}
	n4 := &Node{
		ID:         4,
		ClientAddr: freeAddr(t),
		PeerAddr:   freeAddr(t),
		DataDir:    filepath.Join(c.base, "node4"),
		logPath:    filepath.Join(c.base, "node4.log"),
		Join:       strings.Join(join, ","),
		Args:       c.args,
		Env:        []string{"RDB_FAILPOINTS=joinAfterAdd=kill"},
	}
	c.Nodes = append(c.Nodes, n4)
	n4.Start(t)
	n4.WaitExit(t, 30*time.Second)
	if !strings.Contains(n4.LogText(), "failpoint joinAfterAdd: kill") {
		t.Fatalf("node 4 did not stop at joinAfterAdd:\n%s", n4.LogText())
	}
	n4.Env = nil
	n4.Start(t)
	waitMembers(t, cl, 60*time.Second, map[uint64]bool{1: true, 2: true, 3: true, 4: true})
	c.waitConverged(t, last, time.Minute)
	res := mustQuery(t, NodeClient(t, n4), rpcpb.Consistency_CONSISTENCY_NONE, last, "SELECT count(*) FROM t")
	if got := res.GetRows()[0].GetValues()[0].GetInteger(); got != 500 {
		t.Fatalf("restarted joiner has %d rows, want 500", got)
	}
}
