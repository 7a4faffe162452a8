package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"rdb/command"
	"rdb/rpc/rpcpb"
)

func TestBenchHistIndexBounds(t *testing.T) {
	// Every bucket's bounds map back to the bucket, and buckets tile the
	// value range without gaps.
	var next uint64
	for i := range histBuckets {
		lo, hi := histBounds(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if histIndex(lo) != i || histIndex(hi) != i {
			t.Fatalf("bucket %d [%d,%d]: indexes %d, %d", i, lo, hi, histIndex(lo), histIndex(hi))
		}
		if i >= histSub && float64(hi-lo+1)/float64(lo) > 1.0/64+1e-12 {
			t.Fatalf("bucket %d [%d,%d] wider than 1/64 of its values", i, lo, hi)
		}
		next = hi + 1
	}
	if next != 0 { // wrapped: the last bucket ends at the largest uint64
		t.Fatalf("buckets end at %d, want the whole uint64 range", next-1)
	}
	if got := histIndex(math.MaxUint64); got != histBuckets-1 {
		t.Fatalf("index of MaxUint64 = %d, want %d", got, histBuckets-1)
	}
}

func TestBenchHistEmptyAndSingle(t *testing.T) {
	var h latencyHist
	if h.Percentile(50) != 0 || h.Max() != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Fatal("empty histogram should report zeros")
	}
	h.Record(1234567 * time.Nanosecond)
	for _, p := range []float64{0, 1, 50, 99, 100} {
		if got := h.Percentile(p); got != 1234567 {
			t.Errorf("single value: p%v = %d, want exact 1234567", p, got)
		}
	}
	h.Record(-time.Second) // counts as zero
	if h.Min() != 0 || h.Count() != 2 {
		t.Errorf("negative duration: min %v count %d", h.Min(), h.Count())
	}
}

func TestBenchHistPercentilesMatchSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h latencyHist
	var all []time.Duration
	for range 200000 {
		// Log-normal-ish latencies from ~50 µs to ~1 s.
		d := time.Duration(math.Exp(rng.NormFloat64()*1.5 + 14))
		h.Record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	exact := func(p float64) time.Duration {
		rank := int(math.Ceil(p / 100 * float64(len(all))))
		return all[max(rank, 1)-1]
	}
	for _, p := range []float64{1, 10, 50, 90, 99, 99.9} {
		got, want := h.Percentile(p), exact(p)
		if rel := math.Abs(float64(got-want)) / float64(want); rel > 1.0/64 {
			t.Errorf("p%v = %v, exact %v (off by %.2f%%)", p, got, want, 100*rel)
		}
	}
	if h.Max() != all[len(all)-1] || h.Min() != all[0] {
		t.Errorf("min/max %v/%v, want exact %v/%v", h.Min(), h.Max(), all[0], all[len(all)-1])
	}
	var sum float64
	for _, d := range all {
		sum += float64(d)
	}
	if mean := time.Duration(sum / float64(len(all))); h.Mean()-mean > time.Microsecond || mean-h.Mean() > time.Microsecond {
		t.Errorf("mean %v, want %v", h.Mean(), mean)
	}
	// Memory stays bounded: only the powers of two used are allocated.
	used := 0
	for _, c := range h.chunks {
		if c != nil {
			used++
		}
	}
	if used > 30 {
		t.Errorf("%d chunks allocated for values spanning ~20 powers of two (of 59)", used)
	}
}

func TestBenchHistMerge(t *testing.T) {
	var a, b, both latencyHist
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Microsecond
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		both.Record(d)
	}
	var m latencyHist
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&latencyHist{}) // empty: no change
	if m.Count() != both.Count() || m.Min() != both.Min() || m.Max() != both.Max() || m.Mean() != both.Mean() {
		t.Fatalf("merged count/min/max/mean %d %v %v %v, want %d %v %v %v",
			m.Count(), m.Min(), m.Max(), m.Mean(), both.Count(), both.Min(), both.Max(), both.Mean())
	}
	for _, p := range []float64{50, 90, 99} {
		if m.Percentile(p) != both.Percentile(p) {
			t.Errorf("p%v: merged %v, direct %v", p, m.Percentile(p), both.Percentile(p))
		}
	}
	if p50 := m.Percentile(50); p50 < 492*time.Microsecond || p50 > 508*time.Microsecond {
		t.Errorf("p50 of 1..1000 µs = %v", p50)
	}
}

func TestBenchOpStatsMerge(t *testing.T) {
	var a, b, m opStats
	a.success(time.Millisecond, 100)
	a.failure("Unavailable", "first")
	b.failure("Unavailable", "second")
	b.failure("DeadlineExceeded", "slow")
	m.merge(&a)
	m.merge(&b)
	if m.ops != 1 || m.rows != 100 || m.errorCount() != 3 || m.errors["Unavailable"] != 2 || m.sample["Unavailable"] != "first" {
		t.Fatalf("merged %+v", m)
	}
}

func TestBenchThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// runBenchArgs runs `rdb bench` with args and returns stdout and the error.
func runBenchArgs(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"bench"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestBenchFlagValidation(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--workload", "scan"}, `--workload "scan"`},
		{[]string{"--concurrency", "0"}, "--concurrency 0"},
		{[]string{"--concurrency", "100000"}, "--concurrency 100000"},
		{[]string{"--duration", "0s"}, "--duration 0s"},
		{[]string{"--duration", "-1s"}, "--duration -1s"},
		{[]string{"--warmup", "-1s"}, "--warmup -1s"},
		{[]string{"--timeout", "0s"}, "--timeout 0s"},
		{[]string{"--endpoints", ","}, "--endpoints"},
		{[]string{"--batch", "10"}, "--batch applies only to --workload batch"},
		{[]string{"--workload", "batch", "--batch", "0"}, "--batch 0"},
		{[]string{"--workload", "point-read", "--read-ratio", "0.5"}, "--read-ratio applies only to --workload mixed"},
		{[]string{"--workload", "mixed", "--read-ratio", "1.5"}, "--read-ratio 1.5"},
		{[]string{"--workload", "mixed", "--read-ratio", "NaN"}, "--read-ratio NaN"},
		{[]string{"--consistency", "none"}, "--consistency applies only to read workloads"},
		{[]string{"--workload", "point-read", "--consistency", "eventual"}, `--consistency "eventual"`},
		{[]string{"--rows", "5"}, "--rows applies only to read workloads"},
		{[]string{"--workload", "point-read", "--rows", "0"}, "--rows 0"},
		{[]string{"--target", "random"}, `--target "random"`},
		{[]string{"--value-size", "-1"}, "--value-size -1"},
		{[]string{"--table", "t; DROP TABLE x"}, "--table"},
		{[]string{"--table", "sqlite_master"}, "reserved"},
		{[]string{"--format", "csv"}, `--format "csv"`},
		{[]string{"--duration", "ten"}, "invalid argument"},
		{[]string{"extra"}, "unknown command"},
	} {
		_, err := runBenchArgs(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}

func TestBenchValidOptions(t *testing.T) {
	for _, args := range [][]string{
		{"--workload", "insert"},
		{"--workload", "batch", "--batch", "500"},
		{"--workload", "point-read", "--consistency", "none", "--rows", "10", "--target", "follower"},
		{"--workload", "mixed", "--read-ratio", "0", "--consistency", "strong", "--target", "all", "--format", "json"},
		{"--endpoints", " a:1 , ,b:2", "--table", "bench_2"},
	} {
		o := &benchOptions{}
		cmd := benchCommand(o)
		if err := cmd.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		if err := o.validate(cmd.Flags().Changed); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// fakeNode is an in-process DB server that answers like an rdb node:
// every node knows the leader (id 1), inserts record their ids and reads
// find every id inserted anywhere in the fake cluster.
type fakeNode struct {
	rpcpb.UnimplementedDBServer
	id      uint64
	addr    string
	cluster *fakeCluster

	mu       sync.Mutex
	executes int
	queries  int
}

type fakeCluster struct {
	nodes []*fakeNode
	mu    sync.Mutex
	ids   map[int64]int // id -> times inserted
	index uint64
	fail  codes.Code // when set, reads fail with this code
}

func newFakeCluster(t *testing.T, n int) *fakeCluster {
	fc := &fakeCluster{ids: map[int64]int{}}
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		node := &fakeNode{id: uint64(i + 1), addr: l.Addr().String(), cluster: fc}
		s := grpc.NewServer()
		rpcpb.RegisterDBServer(s, node)
		go s.Serve(l)
		t.Cleanup(s.Stop)
		fc.nodes = append(fc.nodes, node)
	}
	return fc
}

func (fc *fakeCluster) endpoints() string {
	var eps []string
	for _, n := range fc.nodes {
		eps = append(eps, n.addr)
	}
	return strings.Join(eps, ",")
}

func (n *fakeNode) Status(context.Context, *rpcpb.StatusRequest) (*rpcpb.StatusResponse, error) {
	st := &rpcpb.StatusResponse{Id: n.id, Role: "follower", LeaderId: 1, LeaderAddr: n.cluster.nodes[0].addr}
	if n.id == 1 {
		st.Role = "leader"
	}
	for _, m := range n.cluster.nodes {
		st.Members = append(st.Members, &rpcpb.MemberStatus{Id: m.id, ClientAddr: m.addr, Voter: true})
	}
	return st, nil
}

func (n *fakeNode) Execute(_ context.Context, req *rpcpb.ExecuteRequest) (*rpcpb.ExecuteResponse, error) {
	n.mu.Lock()
	n.executes++
	n.mu.Unlock()
	fc := n.cluster
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(req.GetStatements()) > 1 && !req.GetTransaction() && strings.HasPrefix(req.GetStatements()[0].GetSql(), "INSERT") {
		return nil, status.Error(codes.InvalidArgument, "batch without transaction")
	}
	resp := &rpcpb.ExecuteResponse{}
	for _, st := range req.GetStatements() {
		if strings.HasPrefix(st.GetSql(), "DROP") {
			clear(fc.ids)
		}
		if strings.HasPrefix(st.GetSql(), "INSERT") {
			fc.ids[st.GetParameters()[0].GetValue().GetInteger()]++
		}
		resp.Results = append(resp.Results, &command.Result{RowsAffected: 1})
	}
	fc.index++
	resp.RaftIndex = fc.index
	return resp, nil
}

func (n *fakeNode) Query(_ context.Context, req *rpcpb.QueryRequest) (*rpcpb.QueryResponse, error) {
	n.mu.Lock()
	n.queries++
	n.mu.Unlock()
	fc := n.cluster
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.fail != codes.OK && req.GetConsistency() != rpcpb.Consistency_CONSISTENCY_NONE {
		return nil, status.Error(fc.fail, "injected")
	}
	res := &command.Result{Columns: []string{"id", "v"}}
	st := req.GetStatements()[0]
	if strings.HasPrefix(st.GetSql(), "SELECT id") {
		id := st.GetParameters()[0].GetValue().GetInteger()
		if fc.ids[id] > 0 {
			res.Rows = append(res.Rows, &command.Row{Values: []*command.Value{command.Integer(id), command.Text("x")}})
		}
	}
	return &rpcpb.QueryResponse{Results: []*command.Result{res}, RaftIndex: fc.index, NodeId: n.id}, nil
}

func (n *fakeNode) counts() (int, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.executes, n.queries
}

func benchJSON(t *testing.T, args ...string) *benchReport {
	t.Helper()
	out, err := runBenchArgs(t, append(args, "--format", "json")...)
	if err != nil {
		t.Fatalf("bench %v: %v\n%s", args, err, out)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench output is not JSON: %v\n%s", err, out)
	}
	for _, key := range []string{"ops_per_sec", "rows_per_sec", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors", "workload", "concurrency", "duration_s", "target", "consistency"} {
		if !strings.Contains(out, `"`+key+`"`) {
			t.Errorf("JSON lacks %q:\n%s", key, out)
		}
	}
	return &rep
}

func TestBenchRunAgainstFakeCluster(t *testing.T) {
	fc := newFakeCluster(t, 3)
	common := []string{"--endpoints", fc.endpoints(), "--duration", "300ms", "--warmup", "50ms"}

	// Batches to the leader: ids unique across workers, rows = ops*batch.
	profile := filepath.Join(t.TempDir(), "bench.pprof")
	rep := benchJSON(t, append(common, "--workload", "batch", "--batch", "7", "--concurrency", "8", "--cpuprofile", profile)...)
	if b, err := os.ReadFile(profile); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("no CPU profile (gzip-compressed pprof data) written: %v", err)
	}
	if rep.Ops == 0 || rep.RowsDone != 7*rep.Ops || rep.ErrorCount != 0 || rep.Target != "leader" || rep.Batch != 7 {
		t.Fatalf("batch report %+v", rep)
	}
	fc.mu.Lock()
	for id, n := range fc.ids {
		if n != 1 {
			t.Errorf("id %d inserted %d times", id, n)
		}
	}
	fc.mu.Unlock()
	if !slices.Equal(rep.Nodes, []string{fc.nodes[0].addr}) {
		t.Errorf("leader target used nodes %v", rep.Nodes)
	}
	if e2, _ := fc.nodes[1].counts(); e2 != 0 {
		t.Errorf("follower got %d executes with --target leader", e2)
	}

	// Point reads on one follower find the prepared rows.
	rep = benchJSON(t, append(common, "--workload", "point-read", "--rows", "1200", "--concurrency", "4", "--target", "follower", "--consistency", "none")...)
	if rep.Ops == 0 || rep.RowsDone != rep.Ops || rep.ErrorCount != 0 || rep.Consistency != "none" || rep.Rows != 1200 {
		t.Fatalf("point-read report %+v", rep)
	}
	if _, q := fc.nodes[1].counts(); q == 0 {
		t.Errorf("follower 2 served no reads")
	}
	if _, q := fc.nodes[2].counts(); q > 1 { // one catch-up check only
		t.Errorf("follower 3 served %d reads; only one follower should be targeted", q)
	}

	// Mixed over all nodes, with injected read errors counted by code.
	fc.mu.Lock()
	fc.fail = codes.FailedPrecondition
	fc.mu.Unlock()
	rep = benchJSON(t, append(common, "--workload", "mixed", "--read-ratio", "0.5", "--rows", "10", "--concurrency", "6", "--target", "all")...)
	if rep.Writes == nil || rep.Writes.Ops == 0 || rep.Reads == nil || rep.Reads.Ops != 0 || rep.Errors["FailedPrecondition"] == 0 || len(rep.Nodes) != 3 {
		t.Fatalf("mixed report %+v", rep)
	}

	// Text output, and interrupting a run reports what was measured.
	fc.mu.Lock()
	fc.fail = codes.OK
	fc.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background()) // as Ctrl-C does
	defer cancel()
	time.AfterFunc(400*time.Millisecond, cancel)
	o := &benchOptions{endpoints: []string{fc.nodes[0].addr}, workload: "insert", concurrency: 2, duration: time.Hour,
		batch: 1, consistency: "linearizable", target: "leader", valueSize: 100, rows: 1, table: "t", format: "text", timeout: time.Second}
	var out bytes.Buffer
	if err := runBench(ctx, o, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"(interrupted)", "ops/s", "p99", "errors       0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBenchTargetFollowerNeedsFollower(t *testing.T) {
	fc := newFakeCluster(t, 1)
	_, err := runBenchArgs(t, "--endpoints", fc.endpoints(), "--target", "follower", "--duration", "100ms")
	if err == nil || !strings.Contains(err.Error(), "no reachable follower") {
		t.Fatalf("error %v", err)
	}
}
