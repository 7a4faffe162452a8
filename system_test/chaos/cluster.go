package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"rdb/internal/clock"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
	"rdb/system_test/lazyfs"
)

// Timing is the raft timing and compaction settings of one run's servers.
type Timing struct {
	Tick             time.Duration
	ElectionTicks    int
	SnapshotEntries  uint64
	SnapshotTrailing uint64
}

// Election returns the election timeout.
func (t Timing) Election() time.Duration { return t.Tick * time.Duration(t.ElectionTicks) }

// String returns the settings as rdb serve flag values.
func (t Timing) String() string {
	return fmt.Sprintf("tick=%s election=%s snapshot-entries=%d snapshot-trailing=%d",
		t.Tick, t.Election(), t.SnapshotEntries, t.SnapshotTrailing)
}

// randomTiming picks the settings of a run from its seed: the tick and
// election pairs and compaction settings of the reliability plan, with
// small compaction values so that snapshot catch-up happens.
func randomTiming(rng *rand.Rand) Timing {
	pairs := []struct {
		tick  time.Duration
		ticks int
	}{{10 * time.Millisecond, 10}, {100 * time.Millisecond, 10}, {100 * time.Millisecond, 20}}
	p := pairs[rng.IntN(len(pairs))]
	entries := []uint64{50, 50, 1000, 10000}[rng.IntN(4)]
	trailing := []uint64{10, 100, 5000}[rng.IntN(3)]
	return Timing{Tick: p.tick, ElectionTicks: p.ticks, SnapshotEntries: entries, SnapshotTrailing: trailing}
}

// cluster is a run's set of rdb processes and the network they share.
type cluster struct {
	nodes  []*node
	net    *netns // nil on loopback: no partitions
	admin  *client.Client
	timing Timing
	log    *slog.Logger
	// proxies by node id, in front of each node's peer listener; only in
	// scenarios that fault links through them (Scenario.usesProxies).
	proxies map[int]*Proxy
	bin     string // the rdb binary
	// members tracks the membership in a membership run; nil otherwise
	// (every node is a member).
	members *membership
	// lazy holds each node's lazyfs mount in a power-cut run; nil
	// otherwise.
	lazy map[int]*lazyfs.FS
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("chaos: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// newCluster prepares (does not start) n nodes under dir for scenario.
// With nw, each node lives in its own namespace; without, on loopback.
func newCluster(bin, dir string, n int, timing Timing, nw *netns, scenario Scenario, seed uint64, log *slog.Logger) (_ *cluster, err error) {
	c := &cluster{net: nw, timing: timing, log: log, bin: bin}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.closeProxies())
		}
	}()
	var initial []string
	for i := 1; i <= n; i++ {
		nd := &node{
			id:      i,
			dataDir: filepath.Join(dir, fmt.Sprintf("node%d", i)),
			logPath: filepath.Join(dir, fmt.Sprintf("node%d.log", i)),
			// Read only by failpoints builds (clock-offset scenario).
			env: []string{clock.EnvOffsetFile + "=" + clockFile(dir, i)},
		}
		if nw != nil {
			nd.clientAddr, nd.peerAddr = nw.ClientAddr(i), nw.PeerAddr(i)
		} else {
			var err error
			if nd.clientAddr, err = freeAddr(); err != nil {
				return nil, err
			}
			if nd.peerAddr, err = freeAddr(); err != nil {
				return nil, err
			}
		}
		if err := c.prepareNode(scenario, nd, dir, seed); err != nil {
			return nil, err
		}
		initial = append(initial, fmt.Sprintf("%d=%s", i, nd.dialAddr()))
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		argv := []string{bin, "serve",
			"--id", fmt.Sprint(nd.id),
			"--data-dir", nd.dataDir,
			"--listen", nd.clientAddr,
			"--peer-listen", nd.peerAddr,
			"--initial-cluster", strings.Join(initial, ","),
			"--log-level", "info",
			"--tick", timing.Tick.String(),
			"--election-ticks", fmt.Sprint(timing.ElectionTicks),
			"--snapshot-entries", fmt.Sprint(timing.SnapshotEntries),
			"--snapshot-trailing", fmt.Sprint(timing.SnapshotTrailing),
		}
		if nd.advertise != "" {
			argv = append(argv, "--advertise-peer", nd.advertise)
		}
		if nw != nil {
			argv = nw.Wrap(nd.id, argv)
		}
		nd.argv = argv
	}
	admin, err := client.New(client.Config{Endpoints: c.endpoints(), DialTimeout: time.Second, RequestTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("chaos: admin client: %w", err)
	}
	c.admin = admin
	return c, nil
}

func (c *cluster) endpoints() []string {
	var eps []string
	for _, n := range c.nodes {
		eps = append(eps, n.clientAddr)
	}
	return eps
}

// startAll starts every node that is not running.
func (c *cluster) startAll() error {
	for _, n := range c.nodes {
		if err := n.start(); err != nil {
			return err
		}
	}
	return nil
}

// stopAll kills every node and closes the admin client.
func (c *cluster) stopAll() error {
	var errs []error
	for _, n := range c.nodes {
		errs = append(errs, n.kill())
	}
	errs = append(errs, c.admin.Close())
	errs = append(errs, c.closeProxies())
	return errors.Join(errs...)
}

// status asks one node for its status, briefly.
func (c *cluster) status(ctx context.Context, n *node) (*rpcpb.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return c.admin.StatusOf(ctx, n.clientAddr)
}

// leader returns the node that says it is leader in the highest term, or
// nil when no reachable node does.
func (c *cluster) leader(ctx context.Context) *node {
	var best *node
	var term uint64
	for _, n := range c.nodes {
		if started, exited := n.running(); !started || exited || n.isPaused() {
			continue
		}
		st, err := c.status(ctx, n)
		if err != nil || st.GetRole() != "leader" {
			continue
		}
		if st.GetTerm() > term {
			best, term = n, st.GetTerm()
		}
	}
	return best
}

// waitLeader polls until a node says it is leader and every running node
// knows that leader's client address.
func (c *cluster) waitLeader(ctx context.Context, timeout time.Duration) (*node, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	why := "no poll yet"
	for {
		l := c.leader(ctx)
		if l != nil {
			why = ""
			for _, n := range c.nodes {
				st, err := c.status(ctx, n)
				if err != nil {
					why = fmt.Sprintf("node %d: %v", n.id, err)
					break
				}
				if st.GetLeaderId() != uint64(l.id) || st.GetLeaderAddr() == "" {
					why = fmt.Sprintf("node %d follows %d (addr %q), leader is %d", n.id, st.GetLeaderId(), st.GetLeaderAddr(), l.id)
					break
				}
			}
			if why == "" {
				return l, nil
			}
		} else {
			why = "no node says it is leader"
		}
		if err := pollWait(ctx); err != nil {
			return nil, fmt.Errorf("chaos: no agreed leader within %s: %s", timeout, why)
		}
	}
}

// pollWait waits one polling interval or until ctx ends.
func pollWait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

// heal resumes paused nodes, starts stopped ones and removes partitions.
// It reports nodes whose process exited on its own (a crash) as crashed.
func (c *cluster) heal(ctx context.Context) (crashed []int, err error) {
	var errs []error
	if c.net != nil {
		errs = append(errs, c.net.Heal(ctx))
	}
	c.healLinks()
	for _, n := range c.nodes {
		if !c.members.includes(n.id) {
			continue // removed by a membership run: stays stopped
		}
		if n.isPaused() {
			errs = append(errs, n.signal(syscall.SIGCONT))
		}
		started, exited := n.running()
		if exited {
			crashed = append(crashed, n.id)
			errs = append(errs, n.kill())
			started = false
		}
		if !started {
			errs = append(errs, n.start())
		}
	}
	return crashed, errors.Join(errs...)
}

// upNodes returns the nodes whose process has not exited on its own.
func (c *cluster) upNodes() []*node {
	var out []*node
	for _, n := range c.memberNodes() {
		if _, exited := n.running(); !exited {
			out = append(out, n)
		}
	}
	return out
}

// nodeHash is one node's hash at its applied index.
type nodeHash struct {
	Node  int    `json:"node"`
	Index uint64 `json:"applied_index"`
	Hash  string `json:"hash"`
}

// converge waits until every node has applied at least minIndex and all
// report the same applied index. It returns the hashes; a different hash
// at the same index is returned with ErrHashMismatch at once.
func (c *cluster) converge(ctx context.Context, nodes []*node, minIndex uint64, timeout time.Duration) ([]nodeHash, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		hashes, why := c.hashes(ctx, nodes, minIndex)
		if why == "" {
			for _, h := range hashes[1:] {
				if h.Hash != hashes[0].Hash {
					return hashes, fmt.Errorf("%w: node %d %s, node %d %s at index %d",
						ErrHashMismatch, hashes[0].Node, hashes[0].Hash, h.Node, h.Hash, h.Index)
				}
			}
			return hashes, nil
		}
		last = why
		if err := pollWait(ctx); err != nil {
			return hashes, fmt.Errorf("chaos: replicas did not reach one applied index within %s: %s", timeout, last)
		}
	}
}

// hashes asks every node for its hash at minIndex; why says why they are
// not (yet) comparable.
func (c *cluster) hashes(ctx context.Context, nodes []*node, minIndex uint64) ([]nodeHash, string) {
	var out []nodeHash
	for _, n := range nodes {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		h, err := c.admin.HashOf(hctx, n.clientAddr, minIndex)
		cancel()
		if err != nil {
			return out, fmt.Sprintf("node %d: %v", n.id, err)
		}
		out = append(out, nodeHash{Node: n.id, Index: h.GetAppliedIndex(), Hash: h.GetHash()})
	}
	for _, h := range out[1:] {
		if h.Index != out[0].Index {
			return out, fmt.Sprintf("node %d at %d, node %d at %d", out[0].Node, out[0].Index, h.Node, h.Index)
		}
	}
	return out, ""
}
