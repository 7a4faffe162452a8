package system_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// Paths of the binaries built by TestMain.
var (
	rdbBin   string
	shellBin string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "rdb-system-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	rdbBin = filepath.Join(dir, "rdb")
	shellBin = filepath.Join(dir, "rdb-shell")
	args := []string{"build"}
	if os.Getenv("RDB_SYSTEM_RACE") != "0" {
		// Servers run with the race detector too, unless turned off.
		args = append(args, "-race")
	}
	for bin, pkg := range map[string]string{rdbBin: "rdb/cmd/rdb", shellBin: "rdb/cmd/rdb-shell"} {
		cmd := exec.Command("go", append(args, "-o", bin, pkg)...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
			return 1
		}
	}
	return m.Run()
}

// freeAddr returns a loopback address whose port was free a moment ago.
// Ports come from below the kernel's ephemeral range (so no outgoing
// connection of any process takes one as its source port between this
// check and the node's listen) and are never handed out twice by one test
// process.
func freeAddr(t testing.TB) string {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	lo, hi := portRange()
	for try := 0; try < 1000; try++ {
		port := lo + portRand.IntN(hi-lo)
		if portsUsed[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		portsUsed[port] = true
		return l.Addr().String()
	}
	t.Fatalf("free port: none found in %d-%d", lo, hi)
	return ""
}

var (
	portMu    sync.Mutex
	portsUsed = map[int]bool{}
	portRand  = rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())))
)

// portRange returns the ports freeAddr picks from: [10000, start of the
// ephemeral range), or a fixed range when that cannot be read.
func portRange() (lo, hi int) {
	lo, hi = 10000, 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	var start, end int
	if _, err := fmt.Sscan(string(b), &start, &end); err == nil && start > lo+1000 {
		hi = start
	}
	return lo, hi
}

// Node is one rdb server process of a test cluster.
type Node struct {
	ID         uint64
	ClientAddr string
	PeerAddr   string
	DataDir    string
	Initial    string   // --initial-cluster
	Join       string   // --join (client addresses); used instead of Initial when set
	Learner    bool     // with Join: --learner
	Args       []string // extra flags for rdb serve
	Env        []string // extra environment (KEY=value) for the process
	logPath    string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Cluster is a set of Nodes started together.
type Cluster struct {
	Nodes []*Node
	base  string   // temp dir holding every node's data dir and log
	args  []string // extra flags for every node's rdb serve
}

// StartCluster starts n nodes as one cluster and waits for a leader.
// args are extra flags for every node's rdb serve.
func StartCluster(t testing.TB, n int, args ...string) *Cluster {
	t.Helper()
	c := newCluster(t, n, args...)
	for _, node := range c.Nodes {
		node.Start(t)
	}
	c.WaitLeader(t)
	return c
}

// newCluster prepares n nodes of one cluster without starting them, so
// that a test can set up their data directories first (a lazyfs mount).
// At cleanup it kills them and, on failure, dumps their logs.
func newCluster(t testing.TB, n int, args ...string) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("system test: skipped with -short")
	}
	base := t.TempDir()
	c := &Cluster{base: base, args: args}
	var parts []string
	for i := 1; i <= n; i++ {
		node := &Node{
			ID:         uint64(i),
			ClientAddr: freeAddr(t),
			PeerAddr:   freeAddr(t),
			DataDir:    filepath.Join(base, fmt.Sprintf("node%d", i)),
			logPath:    filepath.Join(base, fmt.Sprintf("node%d.log", i)),
			Args:       args,
		}
		c.Nodes = append(c.Nodes, node)
		parts = append(parts, fmt.Sprintf("%d=%s", i, node.PeerAddr))
	}
	for _, node := range c.Nodes {
		node.Initial = strings.Join(parts, ",")
	}
	t.Cleanup(func() {
		for _, node := range c.Nodes {
			node.Kill(t)
		}
		if t.Failed() {
			for _, node := range c.Nodes {
				node.dumpLog(t)
			}
			if dir := os.Getenv("RDB_SYSTEM_KEEP_LOGS"); dir != "" {
				// Whole logs of a failed test, for a closer look.
				for _, node := range c.Nodes {
					dst := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"), filepath.Base(node.logPath))
					if b, err := os.ReadFile(node.logPath); err == nil && os.MkdirAll(filepath.Dir(dst), 0o755) == nil {
						os.WriteFile(dst, b, 0o644)
					}
				}
				t.Logf("node logs kept in %s", filepath.Join(dir, t.Name()))
			}
		}
	})
	return c
}

// Start starts the node's process (again, after Kill or Stop).
func (n *Node) Start(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		t.Fatalf("node %d already running", n.ID)
	}
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("node log: %v", err)
	}
	cmd := exec.Command(rdbBin, "serve",
		"--id", fmt.Sprint(n.ID),
		"--data-dir", n.DataDir,
		"--listen", n.ClientAddr,
		"--peer-listen", n.PeerAddr,
		"--log-level", "info")
	if n.Join != "" {
		cmd.Args = append(cmd.Args, "--join", n.Join)
		if n.Learner {
			cmd.Args = append(cmd.Args, "--learner")
		}
	} else {
		cmd.Args = append(cmd.Args, "--initial-cluster", n.Initial)
	}
	cmd.Args = append(cmd.Args, n.Args...)
	// A binary built with -tags failpoints reads its armed failpoints
	// from this file (see ArmFailpoints); others ignore the variable.
	cmd.Env = append(os.Environ(), "RDB_FAILPOINTS_FILE="+n.FailpointFile())
	cmd.Env = append(cmd.Env, n.Env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start node %d: %v", n.ID, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logFile.Close()
		close(done)
	}()
	n.cmd, n.done = cmd, done
}

// Kill sends SIGKILL and waits for the process to exit.
func (n *Node) Kill(t testing.TB) { n.signal(t, syscall.SIGKILL) }

// Stop sends SIGTERM and waits for a clean exit.
func (n *Node) Stop(t testing.TB) { n.signal(t, syscall.SIGTERM) }

func (n *Node) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd, n.done = nil, nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("node %d did not exit within 30s of %v", n.ID, sig)
	}
}

// Restart kills the node and starts it again.
func (n *Node) Restart(t testing.TB) {
	t.Helper()
	n.Kill(t)
	n.Start(t)
}

// PeakRSS returns the process's peak resident memory in bytes (VmHWM),
// or 0 when not running.
func (n *Node) PeakRSS() int64 {
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%d", &kb)
			return kb * 1024
		}
	}
	return 0
}

// Running reports whether the process is running.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

func (n *Node) dumpLog(t testing.TB) {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	t.Logf("--- node %d log (tail) ---\n%s", n.ID, strings.Join(lines, "\n"))
}

// Endpoints returns every node's client address.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, n := range c.Nodes {
		eps = append(eps, n.ClientAddr)
	}
	return eps
}

// Client returns a client over every endpoint, closed at cleanup.
func (c *Cluster) Client(t testing.TB) *client.Client {
	t.Helper()
	return newClient(t, c.Endpoints()...)
}

// NodeClient returns a client bound to one node, closed at cleanup.
func NodeClient(t testing.TB, n *Node) *client.Client {
	t.Helper()
	return newClient(t, n.ClientAddr)
}

func newClient(t testing.TB, endpoints ...string) *client.Client {
	t.Helper()
	cl, err := client.New(client.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// Node returns the node with the given id.
func (c *Cluster) Node(id uint64) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// WaitLeader polls the running nodes until they agree on a leader whose
// client address every one of them knows, and returns it.
func (c *Cluster) WaitLeader(t testing.TB) *Node {
	t.Helper()
	var last string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		leader, why := c.agreedLeader(t)
		if leader != nil {
			return leader
		}
		last = why
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no agreed leader within 60s: %s", last)
	return nil
}

func (c *Cluster) agreedLeader(t testing.TB) (*Node, string) {
	var lead uint64
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		st, err := nodeStatus(t, n)
		if err != nil {
			return nil, fmt.Sprintf("node %d: %v", n.ID, err)
		}
		if st.GetLeaderId() == 0 {
			return nil, fmt.Sprintf("node %d knows no leader", n.ID)
		}
		if lead != 0 && st.GetLeaderId() != lead {
			return nil, fmt.Sprintf("node %d follows %d, another follows %d", n.ID, st.GetLeaderId(), lead)
		}
		if st.GetLeaderAddr() == "" {
			return nil, fmt.Sprintf("node %d does not know the leader's address yet", n.ID)
		}
		lead = st.GetLeaderId()
	}
	if lead == 0 {
		return nil, "no running node"
	}
	if ln := c.Node(lead); ln == nil || !ln.Running() {
		return nil, fmt.Sprintf("nodes still follow stopped node %d", lead)
	}
	return c.Node(lead), ""
}

func nodeStatus(t testing.TB, n *Node) (*rpcpb.StatusResponse, error) {
	cl, err := client.New(client.Config{Endpoints: []string{n.ClientAddr}, DialTimeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return cl.StatusOf(ctx, n.ClientAddr)
}

// Followers returns the running nodes other than leader.
func (c *Cluster) Followers(leader *Node) []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n != leader && n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// stmt builds a statement or fails the test.
func stmt(t testing.TB, sql string, args ...any) *command.Statement {
	t.Helper()
	s, err := command.NewStatement(sql, args...)
	if err != nil {
		t.Fatalf("statement: %v", err)
	}
	return s
}

// mustExec runs one write and returns its response.
func mustExec(t testing.TB, cl *client.Client, sql string, args ...any) *rpcpb.ExecuteResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := cl.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(t, sql, args...)}})
	if err != nil {
		t.Fatalf("execute %q: %v", sql, err)
	}
	return resp
}

// mustQuery runs one read at a level, optionally after minIndex.
func mustQuery(t testing.TB, cl *client.Client, level rpcpb.Consistency, minIndex uint64, sql string, args ...any) *command.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := cl.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{stmt(t, sql, args...)}, Consistency: level, MinIndex: minIndex})
	if err != nil {
		t.Fatalf("query %q at %v: %v", sql, level, err)
	}
	return resp.GetResults()[0]
}

// appliedIndex returns a node's applied index.
func appliedIndex(t testing.TB, n *Node) uint64 {
	t.Helper()
	st, err := nodeStatus(t, n)
	if err != nil {
		t.Fatalf("status of node %d: %v", n.ID, err)
	}
	return st.GetAppliedIndex()
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, timeout, err)
}

// hashOf returns a node's content hash once it has applied minIndex.
func hashOf(t testing.TB, n *Node, minIndex uint64) (*rpcpb.HashResponse, error) {
	cl, err := client.New(client.Config{Endpoints: []string{n.ClientAddr}, DialTimeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return cl.HashOf(ctx, n.ClientAddr, minIndex)
}

// waitConverged waits until every running node has applied at least
// minIndex and all of them report the same applied index and hash.
func (c *Cluster) waitConverged(t testing.TB, minIndex uint64, timeout time.Duration) string {
	t.Helper()
	var hash string
	waitFor(t, timeout, "replicas converge", func() error {
		var first *rpcpb.HashResponse
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			h, err := hashOf(t, n, minIndex)
			if err != nil {
				return fmt.Errorf("node %d: %v", n.ID, err)
			}
			if first == nil {
				first = h
				continue
			}
			if h.GetAppliedIndex() != first.GetAppliedIndex() {
				return fmt.Errorf("node %d at %d, node %d at %d", h.GetNodeId(), h.GetAppliedIndex(), first.GetNodeId(), first.GetAppliedIndex())
			}
			if h.GetHash() != first.GetHash() {
				t.Fatalf("nodes %d and %d differ at index %d", h.GetNodeId(), first.GetNodeId(), h.GetAppliedIndex())
			}
		}
		hash = first.GetHash()
		return nil
	})
	return hash
}

// AddNode starts a new node with a fresh data directory and free ports
// that joins the cluster through the running members' client addresses
// (rdb serve --join [--learner]), and appends it to c.Nodes. It does not
// wait for the node to be added.
func (c *Cluster) AddNode(t testing.TB, id uint64, learner bool) *Node {
	t.Helper()
	var join []string
	for _, n := range c.Nodes {
		if n.Running() {
			join = append(join, n.ClientAddr)
		}
	}
	node := &Node{
		ID:         id,
		ClientAddr: freeAddr(t),
		PeerAddr:   freeAddr(t),
		DataDir:    filepath.Join(c.base, fmt.Sprintf("node%d-%d", id, len(c.Nodes))),
		logPath:    filepath.Join(c.base, fmt.Sprintf("node%d-%d.log", id, len(c.Nodes))),
		Join:       strings.Join(join, ","),
		Learner:    learner,
		Args:       c.args,
	}
	c.Nodes = append(c.Nodes, node)
	node.Start(t)
	return node
}

// Pid returns the process id, or 0 when not running.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Pause stops the process with SIGSTOP: to its peers it looks cut off
// (no messages in or out) while its state stays as it was.
func (n *Node) Pause(t testing.TB) {
	t.Helper()
	if pid := n.Pid(); pid == 0 {
		t.Fatalf("pause node %d: not running", n.ID)
	} else if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("pause node %d: %v", n.ID, err)
	}
}

// Resume continues a paused process with SIGCONT.
func (n *Node) Resume(t testing.TB) {
	t.Helper()
	if pid := n.Pid(); pid == 0 {
		t.Fatalf("resume node %d: not running", n.ID)
	} else if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatalf("resume node %d: %v", n.ID, err)
	}
}

// WaitExit waits up to timeout for the process to exit on its own and
// returns its exit code; the node then counts as not running.
func (n *Node) WaitExit(t testing.TB, timeout time.Duration) int {
	t.Helper()
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		t.Fatalf("node %d is not running", n.ID)
	}
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("node %d did not exit within %s", n.ID, timeout)
	}
	n.mu.Lock()
	if n.cmd == cmd {
		n.cmd, n.done = nil, nil
	}
	n.mu.Unlock()
	return cmd.ProcessState.ExitCode()
}

// LogText returns the node's log so far (every run of the process).
func (n *Node) LogText() string {
	b, _ := os.ReadFile(n.logPath)
	return string(b)
}
