package chaos

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// Membership (F10): membership changes under faults on a 5-node cluster.
// Each injection is one step, chosen by the seed:
//
//   - learner: remove a follower, wipe it, add it back as a learner
//     (--join --learner), and promote it explicitly (PromoteMember). With
//     namespaces, while it is a learner the cluster is cut into
//     {leader, learner, one voter} | {two voters}: no side holds a quorum
//     of the four voters, so no write or quorum read may be acknowledged
//     during the cut; it would be if the learner counted (the Yugabyte
//     bug).
//   - remove-readd: remove a voter (the leader half of the time) while it
//     runs; it stops itself; wipe it and add it back with --join (rdb
//     promotes a caught-up learner by itself).
//   - replace: kill -9 a node (the leader a third of the time), wipe its
//     data directory, remove it, and start it again as a fresh member
//     that catches up by snapshot or log.
//
// With namespaces, half of the changes are proposed on a leader isolated
// from every other node right before the call (F4 combined), and some
// joiners ask to be added while the leader is isolated. A third of the
// joiners are killed (kill -9) while they catch up and restarted. A re-added
// node keeps its id: rdb allows reusing the id of a removed member once
// its data directory is wiped (cluster.Node.removedNow), unlike etcd,
// which gives a re-added member a new id and never accepts a removed one.
const Membership Scenario = "membership"

const (
	// memberSettle bounds waiting for a required change (a removal
	// before a wiped node rejoins) and for a joiner to become a member
	// or a voter once the network is healed.
	memberSettle = 90 * time.Second
	// quorumlessGrace is how long after a quorum-less cut starts an
	// acknowledgement may still arrive for something committed before it.
	quorumlessGrace = 2 * time.Second
)

// window is a span of the run's time base in which no quorum operation
// may be acknowledged.
type window struct {
	from, to int64
	what     string
}

// membership tracks a membership run's view of the cluster: the members
// as last read from the cluster, the nodes wiped whose removal is not
// confirmed, and what the nemesis found.
type membership struct {
	mu        sync.Mutex
	voters    map[int]bool
	learners  map[int]bool
	wiped     map[int]bool // data directory wiped while still a member
	baseArgv  map[int][]string
	windows   []window
	anomalies []string
}

func newMembership(c *cluster) *membership {
	m := &membership{voters: make(map[int]bool), learners: make(map[int]bool), wiped: make(map[int]bool), baseArgv: make(map[int][]string)}
	for _, nd := range c.nodes {
		m.voters[nd.id] = true
		m.baseArgv[nd.id] = slices.Clone(nd.argv)
	}
	return m
}

// includes reports whether node id should run and be checked: every node
// outside a membership run; a member that is not wiped otherwise.
func (m *membership) includes(id int) bool {
	if m == nil {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return (m.voters[id] || m.learners[id]) && !m.wiped[id]
}

func (m *membership) isVoter(id int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.voters[id]
}

func (m *membership) isMember(id int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.voters[id] || m.learners[id]
}

func (m *membership) setWiped(id int, wiped bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if wiped {
		m.wiped[id] = true
	} else {
		delete(m.wiped, id)
	}
}

func (m *membership) anomaly(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.anomalies = append(m.anomalies, fmt.Sprintf(format, args...))
}

func (m *membership) describe() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("voters %v learners %v", sortedIDs(m.voters), sortedIDs(m.learners))
}

func sortedIDs(set map[int]bool) []int {
	var out []int
	for id, ok := range set {
		if ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// refresh reads the membership from the cluster (the leader's view),
// retrying until within passes.
func (m *membership) refresh(ctx context.Context, c *cluster, tl *timeline, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := c.admin.Members(rctx)
		rcancel()
		if err == nil {
			voters, learners := make(map[int]bool), make(map[int]bool)
			for _, mi := range resp.GetMembers() {
				if mi.GetVoter() {
					voters[int(mi.GetId())] = true
				} else {
					learners[int(mi.GetId())] = true
				}
			}
			before := m.describe()
			m.mu.Lock()
			m.voters, m.learners = voters, learners
			m.mu.Unlock()
			if now := m.describe(); now != before {
				tl.add("membership now: %s (leader %d)", now, resp.GetLeaderId())
			}
			return nil
		}
		if perr := pollWait(ctx); perr != nil {
			return fmt.Errorf("chaos: read membership: %w", err)
		}
	}
}

// memberNodes returns the nodes to check at the end of a run.
func (c *cluster) memberNodes() []*node {
	var out []*node
	for _, nd := range c.nodes {
		if c.members.includes(nd.id) {
			out = append(out, nd)
		}
	}
	return out
}

// settle runs after the final heal of a membership run: it reads the
// membership again, removes a wiped node that is still a member, stops
// nodes outside the membership, and returns the anomalies found during
// the run.
func (m *membership) settle(ctx context.Context, c *cluster, tl *timeline) []string {
	if m == nil {
		return nil
	}
	if err := m.refresh(ctx, c, tl, 30*time.Second); err != nil {
		m.anomaly("after healing: %v", err)
	}
	for _, nd := range c.nodes {
		m.mu.Lock()
		wiped := m.wiped[nd.id]
		m.mu.Unlock()
		if wiped && m.isMember(nd.id) {
			tl.add("node %d is wiped but still a member: remove it", nd.id)
			if err := m.ensureRemoved(ctx, c, tl, nd.id); err != nil {
				m.anomaly("after healing: %v", err)
			}
		}
		if !m.isMember(nd.id) {
			m.setWiped(nd.id, false)
			if err := nd.kill(); err != nil {
				m.anomaly("stop non-member: %v", err)
			}
		}
	}
	tl.add("final membership: %s", m.describe())
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.anomalies)
}

// check reports quorum operations (writes, linearizable and strong
// reads) acknowledged inside a window in which no side of a partition
// held a quorum of voters.
func (m *membership) check(ops []Op) []string {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	windows := slices.Clone(m.windows)
	m.mu.Unlock()
	var out []string
	for _, w := range windows {
		var bad []Op
		for _, op := range ops {
			quorum := op.Level == "" || op.Level == "linearizable" || op.Level == "strong"
			if quorum && op.Outcome == OK && op.Return != math.MaxInt64 && op.Return > w.from+int64(quorumlessGrace) && op.Return < w.to {
				bad = append(bad, op)
			}
		}
		if len(bad) > 0 {
			out = append(out, fmt.Sprintf("%d quorum operations acknowledged during %s (%s-%s), e.g. %s %s key %d by client %d at %s (index %d, node %d)",
				len(bad), w.what, time.Duration(w.from), time.Duration(w.to), bad[0].Workload, bad[0].Kind, bad[0].Key, bad[0].Client,
				time.Duration(bad[0].Return), bad[0].Index, bad[0].Node))
		}
	}
	return out
}

// joinArgv returns node id's command line as a joiner of the members at
// eps: --initial-cluster dropped, --join (and --learner) added.
func (m *membership) joinArgv(id int, eps []string, learner bool) []string {
	m.mu.Lock()
	base := m.baseArgv[id]
	m.mu.Unlock()
	var out []string
	for i := 0; i < len(base); i++ {
		if base[i] == "--initial-cluster" {
			i++
			continue
		}
		out = append(out, base[i])
	}
	out = append(out, "--join", strings.Join(eps, ","))
	if learner {
		out = append(out, "--learner")
	}
	return out
}

// ensureRemoved retries removing id through any member until the
// membership read from the cluster no longer holds it.
func (m *membership) ensureRemoved(ctx context.Context, c *cluster, tl *timeline, id int) error {
	ctx, cancel := context.WithTimeout(ctx, memberSettle)
	defer cancel()
	for {
		if err := m.refresh(ctx, c, tl, 10*time.Second); err == nil && !m.isMember(id) {
			return nil
		}
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.admin.RemoveMember(rctx, &rpcpb.RemoveMemberRequest{Id: uint64(id)})
		rcancel()
		if err != nil {
			tl.add("retry remove node %d: %v", id, err)
		}
		if perr := pollWait(ctx); perr != nil {
			return fmt.Errorf("node %d still a member %s after healing (last error: %v)", id, memberSettle, err)
		}
	}
}

// membershipStep performs one membership step (see Membership). Changes
// that fail under faults are recorded in the timeline; the membership is
// read back from the cluster after each. It returns an error only when
// the harness cannot act (start a process, install a partition).
func (n *nemesis) membershipStep(ctx context.Context, leader *node) error {
	m := n.c.members
	if err := m.refresh(ctx, n.c, n.tl, 10*time.Second); err != nil {
		n.tl.add("membership step skipped: %v", err)
		return nil
	}
	// A node left out by an earlier step comes back first.
	for _, nd := range n.c.nodes {
		if !m.isMember(nd.id) {
			return n.rejoin(ctx, nd, false, false)
		}
	}
	isolate := n.c.net != nil && n.rng.IntN(2) == 0
	switch n.rng.IntN(3) {
	case 0:
		return n.stepLearner(ctx, leader, isolate)
	case 1:
		return n.stepRemoveReadd(ctx, leader, isolate)
	default:
		return n.stepReplace(ctx, leader, isolate)
	}
}

// victim returns the leader with probability 1/inverse, else a random
// other voter.
func (n *nemesis) victim(leader *node, inverse int) *node {
	if inverse > 0 && n.rng.IntN(inverse) == 0 {
		return leader
	}
	var cands []*node
	for _, nd := range n.c.nodes {
		if nd != leader && n.c.members.isVoter(nd.id) {
			cands = append(cands, nd)
		}
	}
	if len(cands) == 0 {
		return leader
	}
	return cands[n.rng.IntN(len(cands))]
}

func (n *nemesis) stepRemoveReadd(ctx context.Context, leader *node, isolate bool) error {
	v := n.victim(leader, 2)
	if err := n.change(ctx, fmt.Sprintf("remove voter node %d (leader %d)", v.id, leader.id), leader, isolate,
		func(ctx context.Context, cl *client.Client) error {
			_, err := cl.RemoveMember(ctx, &rpcpb.RemoveMemberRequest{Id: uint64(v.id)})
			return err
		}); err != nil {
		return err
	}
	if err := n.c.members.ensureRemoved(ctx, n.c, n.tl, v.id); err != nil {
		n.c.members.anomaly("remove-readd: %v", err)
		return nil
	}
	n.awaitStop(v)
	return n.rejoin(ctx, v, false, isolate && n.rng.IntN(2) == 0)
}

func (n *nemesis) stepReplace(ctx context.Context, leader *node, isolate bool) error {
	v := n.victim(leader, 3)
	m := n.c.members
	n.tl.add("replace node %d: kill -9, wipe its data directory", v.id)
	if err := v.kill(); err != nil {
		return err
	}
	m.setWiped(v.id, true)
	if err := os.RemoveAll(v.dataDir); err != nil {
		return fmt.Errorf("chaos: wipe node %d: %w", v.id, err)
	}
	proposer := n.awaitLeader(ctx, 30*time.Second)
	if proposer == nil {
		n.tl.add("no leader after killing node %d; remove through any member", v.id)
	} else if err := n.change(ctx, fmt.Sprintf("remove replaced node %d (leader %d)", v.id, proposer.id), proposer, isolate,
		func(ctx context.Context, cl *client.Client) error {
			_, err := cl.RemoveMember(ctx, &rpcpb.RemoveMemberRequest{Id: uint64(v.id)})
			return err
		}); err != nil {
		return err
	}
	if err := m.ensureRemoved(ctx, n.c, n.tl, v.id); err != nil {
		m.anomaly("replace: %v", err)
		return nil
	}
	m.setWiped(v.id, false)
	return n.rejoin(ctx, v, false, isolate && n.rng.IntN(2) == 0)
}

func (n *nemesis) stepLearner(ctx context.Context, leader *node, isolate bool) error {
	m := n.c.members
	v := n.victim(leader, 0)
	if v == leader {
		n.tl.add("learner step skipped: no follower")
		return nil
	}
	n.tl.add("learner step: remove node %d to add it back as a learner", v.id)
	if err := m.ensureRemoved(ctx, n.c, n.tl, v.id); err != nil {
		m.anomaly("learner: %v", err)
		return nil
	}
	n.awaitStop(v)
	if err := n.rejoin(ctx, v, true, false); err != nil || !m.isMember(v.id) || m.isVoter(v.id) {
		return err
	}
	if n.c.net != nil {
		if err := n.quorumlessCut(ctx, v); err != nil {
			return err
		}
	}
	l := n.awaitLeader(ctx, 30*time.Second)
	if l == nil {
		n.tl.add("no leader to promote node %d", v.id)
	} else if err := n.change(ctx, fmt.Sprintf("promote learner node %d (leader %d)", v.id, l.id), l, isolate,
		func(ctx context.Context, cl *client.Client) error {
			_, err := cl.PromoteMember(ctx, &rpcpb.PromoteMemberRequest{Id: uint64(v.id)})
			return err
		}); err != nil {
		return err
	}
	// Promotion is refused while the learner lags or the quorum is not
	// live: retry until it is a voter.
	deadline := time.Now().Add(memberSettle)
	for {
		if err := m.refresh(ctx, n.c, n.tl, 10*time.Second); err == nil && m.isVoter(v.id) {
			return nil
		}
		if time.Now().After(deadline) {
			m.anomaly("learner node %d not promoted within %s", v.id, memberSettle)
			return nil
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := n.c.admin.PromoteMember(rctx, &rpcpb.PromoteMemberRequest{Id: uint64(v.id)})
		cancel()
		if err != nil {
			n.tl.add("retry promote node %d: %v", v.id, err)
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// quorumlessCut partitions {leader, learner, one voter} | {other voters}
// while learner is the only learner among five members: neither side
// holds three of the four voters, so nothing may commit until healed.
func (n *nemesis) quorumlessCut(ctx context.Context, learner *node) error {
	l := n.awaitLeader(ctx, 30*time.Second)
	if l == nil || l == learner {
		n.tl.add("quorum-less cut skipped: no leader")
		return nil
	}
	var others []int
	for _, nd := range n.c.nodes {
		if nd != l && nd != learner && n.c.members.isVoter(nd.id) {
			others = append(others, nd.id)
		}
	}
	if len(others) != 3 {
		n.tl.add("quorum-less cut skipped: voters %v besides the leader", others)
		return nil
	}
	n.rng.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
	a := []int{l.id, learner.id, others[0]}
	b := slices.Sorted(slices.Values(others[1:]))
	d := n.hold()
	what := fmt.Sprintf("quorum-less cut %v | %v (learner %d)", a, b, learner.id)
	n.tl.add("%s for %s", what, d.Round(time.Millisecond))
	from := n.tl.rec.Now()
	if err := n.c.net.Partition(ctx, [][]int{a, b}); err != nil {
		return errors.Join(err, n.c.net.Heal(ctx))
	}
	time.Sleep(d)
	to := n.tl.rec.Now()
	n.tl.add("heal network")
	m := n.c.members
	m.mu.Lock()
	m.windows = append(m.windows, window{from: from, to: to, what: what})
	m.mu.Unlock()
	return n.c.net.Heal(ctx)
}

// change sends one membership change. With isolate, the leader is cut off
// from every other node right before and the change is sent to it
// directly; the partition holds for n.hold() and is healed before change
// returns. The change's result goes to the timeline, and the membership
// is read back from the cluster. The error is the harness's only.
func (n *nemesis) change(ctx context.Context, what string, leader *node, isolate bool, call func(context.Context, *client.Client) error) error {
	if !isolate {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := call(rctx, n.c.admin)
		cancel()
		n.tl.add("%s: %s", what, errText(err))
	} else {
		cl, err := client.New(client.Config{Endpoints: []string{leader.clientAddr}, DialTimeout: time.Second})
		if err != nil {
			return fmt.Errorf("chaos: leader client: %w", err)
		}
		defer cl.Close()
		var rest []int
		for _, nd := range n.c.nodes {
			if nd != leader {
				rest = append(rest, nd.id)
			}
		}
		d := n.hold()
		n.tl.add("isolate leader node %d from %v for %s while proposing: %s", leader.id, rest, d.Round(time.Millisecond), what)
		if err := n.c.net.Partition(ctx, [][]int{{leader.id}, rest}); err != nil {
			return errors.Join(err, n.c.net.Heal(ctx))
		}
		done := make(chan error, 1)
		go func() {
			rctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			done <- call(rctx, cl)
		}()
		time.Sleep(d)
		n.tl.add("heal network")
		herr := n.c.net.Heal(ctx)
		n.tl.add("%s (on isolated leader): %s", what, errText(<-done))
		if herr != nil {
			return herr
		}
	}
	if err := n.c.members.refresh(ctx, n.c, n.tl, 30*time.Second); err != nil {
		n.tl.add("after %s: %v", what, err)
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return "error: " + err.Error()
}

// awaitLeader polls for a leader among the running nodes.
func (n *nemesis) awaitLeader(ctx context.Context, within time.Duration) *node {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		if l := n.c.leader(ctx); l != nil {
			return l
		}
		if pollWait(ctx) != nil {
			return nil
		}
	}
}

// awaitStop waits for a removed node to stop itself, then kills it (the
// timeline says which).
func (n *nemesis) awaitStop(nd *node) {
	deadline := time.Now().Add(5*time.Second + 2*n.c.timing.Election())
	for time.Now().Before(deadline) {
		if started, exited := nd.running(); !started || exited {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	started, exited := nd.running()
	switch {
	case exited:
		n.tl.add("removed node %d stopped itself", nd.id)
	case started:
		n.tl.add("removed node %d still runs; kill it", nd.id)
	}
	if err := nd.kill(); err != nil {
		n.tl.add("kill removed node %d: %v", nd.id, err)
	}
}

// rejoin wipes nd's data directory and starts it with --join (and
// --learner), then waits until the cluster lists it as a learner
// (learner) or a voter. With isolate, the leader is cut off from every
// other node while the joiner asks to be added.
func (n *nemesis) rejoin(ctx context.Context, nd *node, learner, isolate bool) error {
	m := n.c.members
	if err := nd.kill(); err != nil {
		return err
	}
	if err := os.RemoveAll(nd.dataDir); err != nil {
		return fmt.Errorf("chaos: wipe node %d: %w", nd.id, err)
	}
	var eps []string
	for _, o := range n.c.nodes {
		if o != nd && m.isMember(o.id) {
			eps = append(eps, o.clientAddr)
		}
	}
	argv := m.joinArgv(nd.id, eps, learner)
	nd.mu.Lock()
	nd.argv = argv
	nd.mu.Unlock()
	kind := "voter"
	if learner {
		kind = "learner"
	}
	n.tl.add("start node %d wiped, --join (as %s)", nd.id, kind)
	if err := nd.start(); err != nil {
		return err
	}
	if isolate {
		if err := n.isolateWhileJoining(ctx, nd); err != nil {
			return err
		}
	}
	// A third of the joiners are killed while they catch up (once the
	// cluster lists them) and restarted: a joined node must recover from
	// its own log, which begins in the middle of the cluster's history.
	crash := n.rng.IntN(3) == 0
	crashAfter := n.between(0, time.Second)
	deadline := time.Now().Add(memberSettle)
	for {
		if err := m.refresh(ctx, n.c, n.tl, 10*time.Second); err == nil && crash && m.isMember(nd.id) {
			crash = false
			time.Sleep(crashAfter)
			n.tl.add("kill -9 joiner node %d while it catches up; restart it", nd.id)
			if err := nd.kill(); err != nil {
				return err
			}
			if err := nd.start(); err != nil {
				return err
			}
			continue
		}
		if err := m.refresh(ctx, n.c, n.tl, 10*time.Second); err == nil {
			if learner && m.isMember(nd.id) || m.isVoter(nd.id) {
				n.tl.add("node %d is a %s again", nd.id, kind)
				return nil
			}
		}
		if _, exited := nd.running(); exited {
			m.anomaly("node %d exited while joining as %s (see node%d.log)", nd.id, kind, nd.id)
			n.tl.add("node %d exited while joining", nd.id)
			return nd.kill()
		}
		if time.Now().After(deadline) {
			m.anomaly("node %d not a %s within %s of starting to join", nd.id, kind, memberSettle)
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// isolateWhileJoining cuts the leader off from every other node for
// n.hold() right after joiner started asking to be added, then heals.
func (n *nemesis) isolateWhileJoining(ctx context.Context, joiner *node) error {
	l := n.c.leader(ctx)
	if l == nil || l == joiner {
		n.tl.add("no leader to isolate while node %d joins", joiner.id)
		return nil
	}
	var rest []int
	for _, nd := range n.c.nodes {
		if nd != l {
			rest = append(rest, nd.id)
		}
	}
	d := n.hold()
	n.tl.add("isolate leader node %d from %v for %s while node %d joins", l.id, rest, d.Round(time.Millisecond), joiner.id)
	if err := n.c.net.Partition(ctx, [][]int{{l.id}, rest}); err != nil {
		return errors.Join(err, n.c.net.Heal(ctx))
	}
	time.Sleep(d)
	n.tl.add("heal network")
	return n.c.net.Heal(ctx)
}
