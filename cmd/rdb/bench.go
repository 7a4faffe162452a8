package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"regexp"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// Workloads of `rdb bench`.
const (
	workloadInsert    = "insert"
	workloadBatch     = "batch"
	workloadPointRead = "point-read"
	workloadMixed     = "mixed"
)

// Targets of `rdb bench`.
const (
	targetLeader   = "leader"
	targetFollower = "follower"
	targetAll      = "all"
)

// Limits on bench flags.
const (
	benchMaxConcurrency = 10000
	benchMaxBatch       = 100000
	benchMaxValueSize   = 16 << 20
	benchLoadBatch      = 500 // rows per transaction when preparing rows to read
	benchLoadParallel   = 4   // concurrent load requests
)

var benchTableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// benchOptions holds the flags of `rdb bench`.
type benchOptions struct {
	endpoints   []string
	workload    string
	concurrency int
	conns       int // 0: one per worker
	pipeline    bool
	duration    time.Duration
	warmup      time.Duration
	batch       int
	consistency string
	readRatio   float64
	target      string
	valueSize   int
	rows        int
	table       string
	format      string
	progress    bool
	timeout     time.Duration
	seed        uint64
	cpuProfile  string // file for a CPU profile of the bench process
}

func newBenchCommand() *cobra.Command { return benchCommand(&benchOptions{}) }

// benchCommand returns the bench command with its flags bound to o.
func benchCommand(o *benchOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Drive a running cluster with a load and report throughput and latency",
		Long: `Drive a running cluster with a load and report throughput and latency.

bench drops and recreates its table (--table, default t) as
  CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)
then runs --concurrency workers for --warmup (not measured) and then
--duration (measured). Each worker has its own client connection.

Workloads:
  insert      one single-row INSERT per request (--value-size bytes of text)
  batch       --batch single-row INSERTs per request, as one transaction
  point-read  SELECT by primary key at --consistency, over --rows rows it
              inserts first (in transactions of 500 rows)
  mixed       point reads with probability --read-ratio, else single-row
              INSERTs; reads at --consistency over --rows prepared rows

--target picks the node requests go to: the leader, one follower, or all
nodes (workers spread round-robin). The leader is found from the status of
the --endpoints; a worker's client fails over to the other nodes only if
its node is unreachable.

The report gives ops/s (requests), rows/s (rows written or read), latency
percentiles of successful requests (from a histogram accurate to 1.6%)
and failed requests by gRPC code. A progress line is printed to stderr
every second when stderr is a terminal, or with --progress. Ctrl-C stops
the run early and reports what was measured so far.

  rdb bench --endpoints 127.0.0.1:5001,127.0.0.1:5002,127.0.0.1:5003 \
    --workload insert --concurrency 64 --duration 10s
  rdb bench --workload point-read --consistency none --target follower \
    --concurrency 16 --format json

'rdb bench chart' draws an SVG chart of throughput and p99 latency
against concurrency from saved JSON reports, one line per workload,
consistency and target:

  rdb bench chart --out chart.svg results/*.json

scripts/bench-sweep.sh (make bench-chart) starts a local three-node
cluster, runs the sweep (insert to the leader; point reads at each
consistency, and linearizable reads at a follower; concurrency 1 to 64)
and writes the reports and chart.svg to bench-results/<time>.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if !cmd.Flags().Changed("progress") {
				o.progress = isatty.IsTerminal(os.Stderr.Fd()) || isatty.IsCygwinTerminal(os.Stderr.Fd())
			}
			if err := o.validate(cmd.Flags().Changed); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if o.cpuProfile != "" {
				stopProfile, perr := startCPUProfile(o.cpuProfile)
				if perr != nil {
					return perr
				}
				defer func() {
					if serr := stopProfile(); serr != nil && err == nil {
						err = serr // err is RunE's result
					}
				}()
			}
			return runBench(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.AddCommand(benchChartCommand())
	f := cmd.Flags()
	f.StringSliceVar(&o.endpoints, "endpoints", []string{"127.0.0.1:5001"}, "client addresses of cluster nodes, comma-separated")
	f.StringVar(&o.workload, "workload", workloadInsert, "insert, batch, point-read or mixed")
	f.IntVar(&o.concurrency, "concurrency", 1, "number of concurrent workers")
	f.IntVar(&o.conns, "conns", 0, "client connections per target node, shared round-robin by the workers on it (default: one per worker)")
	f.BoolVar(&o.pipeline, "pipeline", true, "send the calls of workers that share a connection over one Pipeline stream (false: one unary call each)")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "measured run time")
	f.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured run time before --duration")
	f.IntVar(&o.batch, "batch", 100, "rows per request (batch workload)")
	f.StringVar(&o.consistency, "consistency", "linearizable", "read consistency: none, weak, linearizable or strong (point-read and mixed)")
	f.Float64Var(&o.readRatio, "read-ratio", 0.9, "fraction of requests that are reads, 0 to 1 (mixed workload)")
	f.StringVar(&o.target, "target", targetLeader, "where requests go: leader, follower or all")
	f.IntVar(&o.valueSize, "value-size", 100, "bytes of text in each inserted row's v column")
	f.IntVar(&o.rows, "rows", 10000, "rows inserted before the run for reads (point-read and mixed)")
	f.StringVar(&o.table, "table", "t", "table to drop, recreate and use")
	f.StringVar(&o.format, "format", "text", "report format: text or json")
	f.BoolVar(&o.progress, "progress", false, "print progress to stderr every second (default: when stderr is a terminal)")
	f.DurationVar(&o.timeout, "timeout", client.DefaultRequestTimeout, "timeout of each request")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the bench process (the whole run) to this file, for go tool pprof")
	f.Uint64Var(&o.seed, "seed", 0, "seed of the random read keys and values (default: from the clock)")
	return cmd
}

// validate checks the options; changed reports whether a flag was given
// explicitly, so that flags meaningless for the workload are refused.
func (o *benchOptions) validate(changed func(string) bool) error {
	var eps []string
	for _, e := range o.endpoints {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		return errors.New("--endpoints: at least one endpoint is required")
	}
	o.endpoints = eps
	reads := false
	switch o.workload {
	case workloadInsert, workloadBatch:
	case workloadPointRead, workloadMixed:
		reads = true
	default:
		return fmt.Errorf("--workload %q: want insert, batch, point-read or mixed", o.workload)
	}
	if o.conns < 0 || o.conns > benchMaxConcurrency {
		return fmt.Errorf("--conns %d: want 1 to %d, or 0 for one per worker", o.conns, benchMaxConcurrency)
	}
	if o.concurrency < 1 || o.concurrency > benchMaxConcurrency {
		return fmt.Errorf("--concurrency %d: want 1 to %d", o.concurrency, benchMaxConcurrency)
	}
	if o.duration <= 0 {
		return fmt.Errorf("--duration %s: must be positive", o.duration)
	}
	if o.warmup < 0 {
		return fmt.Errorf("--warmup %s: must not be negative", o.warmup)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout %s: must be positive", o.timeout)
	}
	if changed("batch") && o.workload != workloadBatch {
		return fmt.Errorf("--batch applies only to --workload batch, not %s", o.workload)
	}
	if o.batch < 1 || o.batch > benchMaxBatch {
		return fmt.Errorf("--batch %d: want 1 to %d", o.batch, benchMaxBatch)
	}
	if changed("read-ratio") && o.workload != workloadMixed {
		return fmt.Errorf("--read-ratio applies only to --workload mixed, not %s", o.workload)
	}
	if !(o.readRatio >= 0 && o.readRatio <= 1) {
		return fmt.Errorf("--read-ratio %v: want a fraction from 0 to 1", o.readRatio)
	}
	if changed("consistency") && !reads {
		return fmt.Errorf("--consistency applies only to read workloads (point-read, mixed), not %s", o.workload)
	}
	if _, err := parseConsistency(o.consistency); err != nil {
		return err
	}
	if changed("rows") && !reads {
		return fmt.Errorf("--rows applies only to read workloads (point-read, mixed), not %s", o.workload)
	}
	if o.rows < 1 {
		return fmt.Errorf("--rows %d: must be at least 1", o.rows)
	}
	switch o.target {
	case targetLeader, targetFollower, targetAll:
	default:
		return fmt.Errorf("--target %q: want leader, follower or all", o.target)
	}
	if o.valueSize < 0 || o.valueSize > benchMaxValueSize {
		return fmt.Errorf("--value-size %d: want 0 to %d", o.valueSize, benchMaxValueSize)
	}
	if !benchTableName.MatchString(o.table) {
		return fmt.Errorf("--table %q: want a plain identifier (letters, digits, underscore)", o.table)
	}
	if strings.HasPrefix(strings.ToLower(o.table), "sqlite_") {
		return fmt.Errorf("--table %q: names starting with sqlite_ are reserved", o.table)
	}
	switch o.format {
	case "text", "json":
	default:
		return fmt.Errorf("--format %q: want text or json", o.format)
	}
	return nil
}

func parseConsistency(s string) (rpcpb.Consistency, error) {
	switch s {
	case "none":
		return rpcpb.Consistency_CONSISTENCY_NONE, nil
	case "weak":
		return rpcpb.Consistency_CONSISTENCY_WEAK, nil
	case "linearizable":
		return rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, nil
	case "strong":
		return rpcpb.Consistency_CONSISTENCY_STRONG, nil
	}
	return 0, fmt.Errorf("--consistency %q: want none, weak, linearizable or strong", s)
}

func (o *benchOptions) reads() bool {
	return o.workload == workloadPointRead || o.workload == workloadMixed
}

// benchTopology is the cluster as bench sees it: the leader's client
// address and the followers' (voters only).
type benchTopology struct {
	leader    string
	followers []string
}

// resolveTopology asks every endpoint for its status and works out the
// leader and followers, waiting up to timeout for a leader to be known.
func resolveTopology(ctx context.Context, endpoints []string, timeout time.Duration) (*benchTopology, error) {
	deadline := time.Now().Add(timeout)
	for {
		topo, err := tryResolveTopology(ctx, endpoints)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return topo, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func tryResolveTopology(ctx context.Context, endpoints []string) (*benchTopology, error) {
	type answer struct {
		endpoint string
		st       *rpcpb.StatusResponse
		err      error
	}
	answers := make([]answer, len(endpoints))
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Go(func() {
			answers[i].endpoint = ep
			c, err := client.New(client.Config{Endpoints: []string{ep}, DialTimeout: 2 * time.Second})
			if err != nil {
				answers[i].err = err
				return
			}
			defer c.Close()
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			answers[i].st, answers[i].err = c.StatusOf(cctx, ep)
		})
	}
	wg.Wait()

	addrOf := make(map[uint64]string) // node id -> client address
	voter := make(map[uint64]bool)
	var leaderID uint64
	var leaderAddr string
	var errs []string
	for _, a := range answers {
		if a.err != nil {
			errs = append(errs, fmt.Sprintf("%s: %s", a.endpoint, status.Convert(a.err).Message()))
			continue
		}
		if _, ok := addrOf[a.st.GetId()]; !ok {
			addrOf[a.st.GetId()] = a.endpoint
		}
		if a.st.GetRole() == "leader" || (leaderID == 0 && a.st.GetLeaderId() != 0) {
			leaderID, leaderAddr = a.st.GetLeaderId(), a.st.GetLeaderAddr()
			if a.st.GetRole() == "leader" {
				leaderID = a.st.GetId()
			}
		}
	}
	if len(addrOf) == 0 {
		return nil, fmt.Errorf("no endpoint answered: %s", strings.Join(errs, "; "))
	}
	// Members not reached through the given endpoints are reached through
	// the client addresses the cluster advertises.
	for _, a := range answers {
		for _, m := range a.st.GetMembers() {
			voter[m.GetId()] = voter[m.GetId()] || m.GetVoter()
			if _, ok := addrOf[m.GetId()]; !ok && m.GetClientAddr() != "" && !slices.Contains(endpoints, m.GetClientAddr()) {
				addrOf[m.GetId()] = m.GetClientAddr()
			}
		}
	}
	if leaderID == 0 {
		return nil, errors.New("no leader is known to the cluster (is it still electing?)")
	}
	topo := &benchTopology{leader: addrOf[leaderID]}
	if topo.leader == "" {
		topo.leader = leaderAddr
	}
	if topo.leader == "" {
		return nil, fmt.Errorf("the client address of leader %d is not known", leaderID)
	}
	ids := make([]uint64, 0, len(addrOf))
	for id := range addrOf {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if id != leaderID && (voter[id] || len(voter) == 0) && addrOf[id] != topo.leader {
			topo.followers = append(topo.followers, addrOf[id])
		}
	}
	return topo, nil
}

// workerEndpoints returns the endpoint list of worker i: its node first,
// then the others for failover.
func (t *benchTopology) workerEndpoints(target string, i int) ([]string, error) {
	nodes := append([]string{t.leader}, t.followers...)
	switch target {
	case targetLeader:
		return nodes, nil
	case targetFollower:
		if len(t.followers) == 0 {
			return nil, errors.New("--target follower: the cluster has no reachable follower")
		}
		return append(slices.Clone(t.followers), t.leader), nil
	default: // all
		k := i % len(nodes)
		return append(slices.Clone(nodes[k:]), nodes[:k]...), nil
	}
}

// benchReport is the result of a run; its JSON form is `--format json`.
type benchReport struct {
	Workload    string            `json:"workload"`
	Concurrency int               `json:"concurrency"`
	Conns       int               `json:"conns"` // per target node
	Pipeline    bool              `json:"pipeline"`
	DurationS   float64           `json:"duration_s"`
	WarmupS     float64           `json:"warmup_s"`
	Target      string            `json:"target"`
	Nodes       []string          `json:"nodes"`
	Consistency string            `json:"consistency"`
	Batch       int               `json:"batch,omitempty"`
	ReadRatio   *float64          `json:"read_ratio,omitempty"`
	ValueSize   int               `json:"value_size"`
	Rows        int               `json:"prepared_rows,omitempty"`
	Ops         int64             `json:"ops"`
	RowsDone    int64             `json:"rows"`
	OpsPerSec   float64           `json:"ops_per_sec"`
	RowsPerSec  float64           `json:"rows_per_sec"`
	P50ms       float64           `json:"p50_ms"`
	P90ms       float64           `json:"p90_ms"`
	P99ms       float64           `json:"p99_ms"`
	MaxMs       float64           `json:"max_ms"`
	MeanMs      float64           `json:"mean_ms"`
	MinMs       float64           `json:"min_ms"`
	ErrorCount  int64             `json:"error_count"`
	Errors      map[string]int64  `json:"errors"`
	ErrorSample map[string]string `json:"error_samples,omitempty"`
	Reads       *benchSub         `json:"reads,omitempty"`
	Writes      *benchSub         `json:"writes,omitempty"`
	Interrupted bool              `json:"interrupted"`
}

// benchSub summarises one kind of request of the mixed workload.
type benchSub struct {
	Ops       int64   `json:"ops"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// newBenchReport summarises stats measured over elapsed.
func newBenchReport(o *benchOptions, nodes []string, all, reads, writes *opStats, elapsed time.Duration, interrupted bool) *benchReport {
	secs := elapsed.Seconds()
	rate := func(n int64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(n) / secs
	}
	r := &benchReport{
		Workload: o.workload, Concurrency: o.concurrency, Conns: min(cmp.Or(o.conns, o.concurrency), o.concurrency), Pipeline: o.pipeline, DurationS: secs, WarmupS: o.warmup.Seconds(),
		Target: o.target, Nodes: nodes, ValueSize: o.valueSize,
		Ops: all.ops, RowsDone: all.rows, OpsPerSec: rate(all.ops), RowsPerSec: rate(all.rows),
		P50ms: ms(all.hist.Percentile(50)), P90ms: ms(all.hist.Percentile(90)), P99ms: ms(all.hist.Percentile(99)),
		MaxMs: ms(all.hist.Max()), MeanMs: ms(all.hist.Mean()), MinMs: ms(all.hist.Min()),
		ErrorCount: all.errorCount(), Errors: map[string]int64{}, ErrorSample: all.sample,
		Interrupted: interrupted,
	}
	for k, n := range all.errors {
		r.Errors[k] = n
	}
	if o.workload == workloadBatch {
		r.Batch = o.batch
	}
	if o.reads() {
		r.Consistency = o.consistency
		r.Rows = o.rows
	}
	if o.workload == workloadMixed {
		rr := o.readRatio
		r.ReadRatio = &rr
		sub := func(s *opStats) *benchSub {
			return &benchSub{Ops: s.ops, OpsPerSec: rate(s.ops), P50ms: ms(s.hist.Percentile(50)), P99ms: ms(s.hist.Percentile(99)), MaxMs: ms(s.hist.Max())}
		}
		r.Reads, r.Writes = sub(reads), sub(writes)
	}
	return r
}

func (r *benchReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "workload     %s", r.Workload)
	if r.Batch > 0 {
		fmt.Fprintf(w, " (%d rows per request, one transaction)", r.Batch)
	}
	if r.Consistency != "" {
		fmt.Fprintf(w, " at %s", r.Consistency)
	}
	if r.ReadRatio != nil {
		fmt.Fprintf(w, ", read ratio %g", *r.ReadRatio)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "target       %s (%s)\n", r.Target, strings.Join(r.Nodes, ", "))
	calls := "pipelined"
	if !r.Pipeline {
		calls = "unary calls"
	}
	fmt.Fprintf(w, "concurrency  %d (up to %d connections per node, %s)\n", r.Concurrency, r.Conns, calls)
	fmt.Fprintf(w, "duration     %.2fs measured after %.2fs warmup", r.DurationS, r.WarmupS)
	if r.Interrupted {
		fmt.Fprint(w, " (interrupted)")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "requests     %s ok, %.1f ops/s\n", thousands(r.Ops), r.OpsPerSec)
	fmt.Fprintf(w, "rows         %s, %.1f rows/s\n", thousands(r.RowsDone), r.RowsPerSec)
	fmt.Fprintf(w, "latency ms   p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  (min %.3f, mean %.3f)\n",
		r.P50ms, r.P90ms, r.P99ms, r.MaxMs, r.MinMs, r.MeanMs)
	if r.Reads != nil {
		for _, s := range []struct {
			name string
			b    *benchSub
		}{{"reads", r.Reads}, {"writes", r.Writes}} {
			fmt.Fprintf(w, "  %-10s %s ok, %.1f ops/s, p50 %.3f  p99 %.3f  max %.3f ms\n",
				s.name, thousands(s.b.Ops), s.b.OpsPerSec, s.b.P50ms, s.b.P99ms, s.b.MaxMs)
		}
	}
	fmt.Fprintf(w, "errors       %s\n", thousands(r.ErrorCount))
	kinds := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  %-18s %s  (first: %s)\n", k, thousands(r.Errors[k]), r.ErrorSample[k])
	}
}

// thousands formats n with comma separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// errorKind names the kind of a failed request: its gRPC code name.
func errorKind(err error) (kind, msg string) {
	st := status.Convert(err)
	return st.Code().String(), st.Message()
}

// benchRun is one run of the load.
type benchRun struct {
	o           *benchOptions
	consistency rpcpb.Consistency
	insertSQL   string
	selectSQL   string
	nextID      atomic.Int64 // last id handed out for inserts
	measureFrom time.Time    // requests started before this are not counted
	stopAt      time.Time    // no request starts at or after this
	okOps       atomic.Int64 // measured successes, for progress
	errOps      atomic.Int64 // measured failures, for progress
}

// benchWorker is one worker's state; only its goroutine touches it
// until the run ends.
type benchWorker struct {
	c      *client.Client
	rng    *rand.Rand
	value  string
	reads  opStats
	writes opStats
}

// startCPUProfile starts profiling this process's CPU into path; the
// returned function stops and closes it.
func startCPUProfile(path string) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		return nil
	}, nil
}

func runBench(ctx context.Context, o *benchOptions, stdout, stderr io.Writer) error {
	consistency, err := parseConsistency(o.consistency)
	if err != nil {
		return err
	}
	topo, err := resolveTopology(ctx, o.endpoints, 10*time.Second)
	if err != nil {
		return fmt.Errorf("finding the leader: %w", err)
	}
	if _, err := topo.workerEndpoints(o.target, 0); err != nil {
		return err
	}
	seed := o.seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	r := &benchRun{
		o:           o,
		consistency: consistency,
		insertSQL:   fmt.Sprintf("INSERT INTO %s(id, v) VALUES(?, ?)", o.table),
		selectSQL:   fmt.Sprintf("SELECT id, v FROM %s WHERE id = ?", o.table),
	}
	if err := r.prepare(ctx, topo, stderr, seed); err != nil {
		return err
	}

	// Start the workers with their clients already connected. Workers
	// that target the same node share its --conns connections
	// round-robin (each worker has its own by default), so --target all
	// still spreads them over the nodes.
	perNode := map[string][]*client.Client{}
	workersOn := map[string]int{}
	workers := make([]*benchWorker, o.concurrency)
	for i := range workers {
		eps, err := topo.workerEndpoints(o.target, i)
		if err != nil {
			return err
		}
		node := eps[0]
		k := workersOn[node]
		workersOn[node]++
		var c *client.Client
		if o.conns > 0 && k >= o.conns {
			c = perNode[node][k%o.conns]
		} else {
			if c, err = client.New(client.Config{Endpoints: eps, RequestTimeout: o.timeout, DisablePipeline: !o.pipeline}); err != nil {
				return err
			}
			defer c.Close()
			perNode[node] = append(perNode[node], c)
		}
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		workers[i] = &benchWorker{c: c, rng: rng, value: randomText(rng, o.valueSize)}
	}
	var nodes []string
	for _, n := range append([]string{topo.leader}, topo.followers...) {
		if workersOn[n] > 0 {
			nodes = append(nodes, n)
		}
	}
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			_, _ = w.c.StatusOf(cctx, w.c.Current()) // dial; failures show in the run
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted before the run: %w", context.Cause(ctx))
	}

	start := time.Now()
	r.measureFrom = start.Add(o.warmup)
	r.stopAt = r.measureFrom.Add(o.duration)
	done := make(chan struct{})
	var progressDone sync.WaitGroup
	if o.progress {
		progressDone.Go(func() { r.showProgress(ctx, stderr, done) })
	}
	for _, w := range workers {
		wg.Go(func() { r.work(ctx, w) })
	}
	wg.Wait()
	end := time.Now()
	close(done)
	progressDone.Wait()

	interrupted := ctx.Err() != nil
	elapsed := end.Sub(r.measureFrom)
	if elapsed < 0 {
		elapsed = 0
	}
	var all, reads, writes opStats
	for _, w := range workers {
		reads.merge(&w.reads)
		writes.merge(&w.writes)
	}
	all.merge(&reads)
	all.merge(&writes)
	rep := newBenchReport(o, nodes, &all, &reads, &writes, elapsed, interrupted)
	if o.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.writeText(stdout)
	}
	if all.ops == 0 && all.errorCount() > 0 {
		return fmt.Errorf("no request succeeded (%d failed)", all.errorCount())
	}
	return nil
}

const benchLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randomText(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = benchLetters[rng.IntN(len(benchLetters))]
	}
	return string(b)
}

// prepare drops and recreates the table and, for reads, inserts the rows
// to read and waits until every node that will be read has them.
func (r *benchRun) prepare(ctx context.Context, topo *benchTopology, stderr io.Writer, seed uint64) error {
	o := r.o
	nodes := append([]string{topo.leader}, topo.followers...)
	c, err := client.New(client.Config{Endpoints: nodes, RequestTimeout: max(o.timeout, 30*time.Second)})
	if err != nil {
		return err
	}
	defer c.Close()
	drop, _ := command.NewStatement(fmt.Sprintf("DROP TABLE IF EXISTS %s", o.table))
	create, _ := command.NewStatement(fmt.Sprintf("CREATE TABLE %s(id INTEGER PRIMARY KEY, v TEXT)", o.table))
	resp, err := c.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{drop, create}, Transaction: true})
	if err != nil {
		return fmt.Errorf("creating table %s: %s", o.table, status.Convert(err).Message())
	}
	lastIndex := resp.GetRaftIndex()
	if !o.reads() {
		return nil
	}

	began := time.Now()
	rng := rand.New(rand.NewPCG(seed, ^uint64(0)))
	value := randomText(rng, o.valueSize)
	var mu sync.Mutex
	var firstErr error
	var loaded atomic.Int64
	batches := make(chan int)
	var wg sync.WaitGroup
	for range benchLoadParallel {
		wg.Go(func() {
			for from := range batches {
				to := min(from+benchLoadBatch-1, o.rows)
				stmts := make([]*command.Statement, 0, to-from+1)
				for id := from; id <= to; id++ {
					st, err := command.NewStatement(r.insertSQL, id, value)
					if err != nil {
						panic(err) // int and string always convert
					}
					stmts = append(stmts, st)
				}
				resp, err := c.Execute(ctx, &rpcpb.ExecuteRequest{Statements: stmts, Transaction: true})
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("inserting rows %d-%d: %s", from, to, status.Convert(err).Message())
				}
				lastIndex = max(lastIndex, resp.GetRaftIndex())
				mu.Unlock()
				loaded.Add(int64(to - from + 1))
			}
		})
	}
feed:
	for from := 1; from <= o.rows; from += benchLoadBatch {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		select {
		case batches <- from:
		case <-ctx.Done():
			break feed
		}
		if o.progress {
			fmt.Fprintf(stderr, "\rpreparing: %d of %d rows", loaded.Load(), o.rows)
		}
	}
	close(batches)
	wg.Wait()
	if o.progress {
		fmt.Fprintln(stderr)
	}
	if firstErr != nil {
		return firstErr
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted while preparing rows: %w", context.Cause(ctx))
	}
	r.nextID.Store(int64(o.rows))

	// Every node that serves reads must have applied the rows, or reads at
	// consistency none would miss them.
	for _, n := range nodes {
		nc, err := client.New(client.Config{Endpoints: []string{n}, RequestTimeout: 10 * time.Second})
		if err != nil {
			return err
		}
		q, _ := command.NewStatement(fmt.Sprintf("SELECT count(*) FROM %s", o.table))
		_, err = nc.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{q}, Consistency: rpcpb.Consistency_CONSISTENCY_NONE, MinIndex: lastIndex})
		nc.Close()
		if err != nil {
			fmt.Fprintf(stderr, "warning: %s has not caught up with the prepared rows: %s\n", n, status.Convert(err).Message())
		}
	}
	fmt.Fprintf(stderr, "prepared %d rows in %s\n", o.rows, time.Since(began).Round(time.Millisecond))
	return nil
}

// work runs requests until the run stops or ctx is cancelled.
func (r *benchRun) work(ctx context.Context, w *benchWorker) {
	o := r.o
	for ctx.Err() == nil {
		began := time.Now()
		if !began.Before(r.stopAt) {
			return
		}
		measured := !began.Before(r.measureFrom)
		read := o.workload == workloadPointRead || (o.workload == workloadMixed && w.rng.Float64() < o.readRatio)
		var rows int
		var err error
		if read {
			rows, err = r.pointRead(ctx, w)
		} else {
			rows, err = r.write(ctx, w)
		}
		latency := time.Since(began)
		if err != nil && ctx.Err() != nil {
			return // cut short by Ctrl-C: neither a success nor a failure
		}
		if !measured {
			continue
		}
		s := &w.writes
		if read {
			s = &w.reads
		}
		if err != nil {
			kind, msg := errorKind(err)
			s.failure(kind, msg)
			r.errOps.Add(1)
			continue
		}
		s.success(latency, rows)
		r.okOps.Add(1)
	}
}

func (r *benchRun) write(ctx context.Context, w *benchWorker) (int, error) {
	n := 1
	if r.o.workload == workloadBatch {
		n = r.o.batch
	}
	last := r.nextID.Add(int64(n))
	stmts := make([]*command.Statement, n)
	for k := range stmts {
		st, err := command.NewStatement(r.insertSQL, last-int64(n)+int64(k)+1, w.value)
		if err != nil {
			return 0, err
		}
		stmts[k] = st
	}
	resp, err := w.c.Execute(ctx, &rpcpb.ExecuteRequest{Statements: stmts, Transaction: n > 1})
	if err != nil {
		return 0, err
	}
	for _, res := range resp.GetResults() {
		if res.GetError() != "" {
			return 0, status.Error(codes.Unknown, res.GetError())
		}
	}
	return n, nil
}

func (r *benchRun) pointRead(ctx context.Context, w *benchWorker) (int, error) {
	id := 1 + w.rng.Int64N(int64(r.o.rows))
	st, err := command.NewStatement(r.selectSQL, id)
	if err != nil {
		return 0, err
	}
	resp, err := w.c.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{st}, Consistency: r.consistency})
	if err != nil {
		return 0, err
	}
	res := resp.GetResults()
	if len(res) != 1 || res[0].GetError() != "" {
		return 0, status.Errorf(codes.Unknown, "unexpected results: %v", res)
	}
	if len(res[0].GetRows()) != 1 {
		return 0, status.Errorf(codes.NotFound, "row %d not found", id)
	}
	return 1, nil
}

// showProgress prints the measured rate every second until done.
func (r *benchRun) showProgress(ctx context.Context, w io.Writer, done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastOps int64
	lastAt := r.measureFrom
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case now := <-t.C:
			if now.Before(r.measureFrom) {
				fmt.Fprintf(w, "warmup: %.0fs left\n", r.measureFrom.Sub(now).Seconds())
				continue
			}
			elapsed := now.Sub(r.measureFrom)
			if elapsed < 500*time.Millisecond {
				continue // the tick right at the end of the warmup
			}
			ops, errs := r.okOps.Load(), r.errOps.Load()
			interval := now.Sub(lastAt)
			fmt.Fprintf(w, "%5.1fs  %s ops  %.1f ops/s (last %.1fs: %.1f ops/s)  %s errors\n",
				elapsed.Seconds(), thousands(ops), float64(ops)/elapsed.Seconds(),
				interval.Seconds(), float64(ops-lastOps)/interval.Seconds(), thousands(errs))
			lastOps, lastAt = ops, now
		}
	}
}
