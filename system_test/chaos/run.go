package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"rdb/command"
	"rdb/rpc/rpcpb"
)

// Defaults for Config.
const (
	DefaultDuration = 15 * time.Second
	DefaultClients  = 8
	// MaxClients bounds concurrent clients: porcupine's cost grows with
	// the concurrency of a history.
	MaxClients = 10
	// FinalWriteWithin is how soon after healing a write must succeed.
	FinalWriteWithin = 10 * time.Second
	// convergeWithin bounds waiting for replicas to reach one index.
	convergeWithin = 60 * time.Second
)

// Config describes one run.
type Config struct {
	// Seed determines the timing settings, cluster size, workload mix,
	// client routing and fault choices (process scheduling is not seeded,
	// so a seed reproduces the plan of a run, not its exact history).
	Seed int64
	// Scenario is the fault injected, repeatedly, while clients run.
	Scenario Scenario
	// Duration is how long clients run (with faults).
	Duration time.Duration
	// Clients is the number of concurrent clients, at most MaxClients.
	Clients int
	// Binary is the rdb binary (see BuildRDB).
	Binary string
	// BaseDir holds the run's directory; default os.TempDir().
	BaseDir string
	// KeepAll keeps the run's directory even when the run passes.
	KeepAll bool
	// Loopback runs on 127.0.0.1 even when namespaces are available
	// (partition scenarios then fail with ErrNoNetns).
	Loopback bool
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Duration <= 0 {
		c.Duration = DefaultDuration
	}
	if c.Clients <= 0 {
		c.Clients = DefaultClients
	}
	c.Clients = min(c.Clients, MaxClients)
	if c.BaseDir == "" {
		c.BaseDir = os.TempDir()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Result is the outcome of one run.
type Result struct {
	Seed     int64          `json:"seed"`
	Scenario Scenario       `json:"scenario"`
	Nodes    int            `json:"nodes"`
	Timing   string         `json:"timing"`
	Netns    bool           `json:"netns"`
	Workers  map[string]int `json:"workers"`
	Ops      int            `json:"ops"`     // operations recorded
	Unknown  int            `json:"unknown"` // writes of unknown outcome
	Checked  int            `json:"checked"` // operations judged by checkers
	Faults   int            `json:"faults"`  // faults injected
	// Anomalies is empty when every check held.
	Anomalies []string      `json:"anomalies"`
	Hashes    []nodeHash    `json:"hashes"`
	Elapsed   time.Duration `json:"elapsed"`
	// Dir holds the seed, histories, timeline, visualizations, node logs
	// and data directories; it is kept (non-empty) only for failed runs
	// and with Config.KeepAll.
	Dir string `json:"dir,omitempty"`
}

// Failed reports whether the run found anomalies.
func (r *Result) Failed() bool { return len(r.Anomalies) > 0 }

// Run performs one run: it starts a cluster, runs the workloads while
// the nemesis injects the scenario's fault, heals, checks, and removes
// the run's directory unless the run failed or cfg.KeepAll is set. It
// returns an error only when the harness itself could not do its job
// (for example, no namespaces for a partition scenario: ErrNoNetns).
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	cfg = cfg.withDefaults()
	start := time.Now()
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed))
	res = &Result{Seed: cfg.Seed, Scenario: cfg.Scenario, Workers: make(map[string]int)}
	log := cfg.Logger.With("scenario", cfg.Scenario, "seed", cfg.Seed)

	res.Nodes = cfg.Scenario.nodesFor(rng)
	timing := cfg.Scenario.adjustTiming(randomTiming(rng))
	res.Timing = timing.String()
	var nw *netns
	if !cfg.Loopback {
		// The subnet search has its own stream: how many draws it takes
		// depends on the machine, and must not change the run's plan.
		netRng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6e7))
		if nw, err = newNetns(ctx, netRng, res.Nodes, log); err != nil && !errors.Is(err, ErrNoNetns) {
			return nil, err
		}
	}
	if nw == nil && cfg.Scenario.NeedsPartitions() {
		if err == nil {
			err = fmt.Errorf("%w: loopback requested", ErrNoNetns)
		}
		return nil, err
	}
	if nw != nil {
		defer nw.Close()
	}
	res.Netns = nw != nil

	if err := os.MkdirAll(cfg.BaseDir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: base dir: %w", err)
	}
	dir, err := os.MkdirTemp(cfg.BaseDir, fmt.Sprintf("rdb-chaos-%s-%d-", cfg.Scenario, cfg.Seed))
	if err != nil {
		return nil, fmt.Errorf("chaos: run dir: %w", err)
	}
	bin, err := scenarioBinary(ctx, cfg, dir, log)
	if err != nil {
		return nil, err
	}
	c, err := newCluster(bin, dir, res.Nodes, timing, nw, cfg.Scenario, uint64(cfg.Seed), log)
	if err != nil {
		return nil, err
	}
	// Scenario resources (tmpfs data directories) are released after the
	// cluster stopped and the artifacts were written (defers run LIFO).
	release, err := prepareScenario(ctx, cfg.Scenario, c, log)
	if err != nil {
		return nil, err
	}
	defer func() { release(res.Dir != "") }()
	if cfg.Scenario == Membership {
		c.members = newMembership(c)
	}
	rec := NewRecorder()
	tl := &timeline{rec: rec}
	defer func() {
		if serr := c.stopAll(); serr != nil {
			log.Warn("stop cluster", "err", serr)
		}
		res.Elapsed = time.Since(start)
		if werr := writeArtifacts(dir, cfg, res, rec, tl); werr != nil {
			log.Warn("write artifacts", "err", werr)
		}
		if err == nil && !res.Failed() && !cfg.KeepAll {
			os.RemoveAll(dir)
		} else {
			res.Dir = dir
		}
	}()

	log.Info("run starting", "nodes", res.Nodes, "timing", res.Timing, "netns", res.Netns, "dir", dir)
	tl.add("start %d nodes (%s)", res.Nodes, res.Timing)
	if err := c.startAll(); err != nil {
		return res, err
	}
	if _, err := c.waitLeader(ctx, 60*time.Second); err != nil {
		return res, err
	}
	wls := []workload{newRegister(), &bank{}, &set{}, &ddl{}}
	for _, w := range wls {
		if err := w.Setup(ctx, c.admin); err != nil {
			return res, fmt.Errorf("%s setup: %w", w.Name(), err)
		}
	}
	if err := execSetup(ctx, c.admin, sq("CREATE TABLE IF NOT EXISTS chaos_final (id INTEGER PRIMARY KEY, n INTEGER)")); err != nil {
		return res, err
	}

	workCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	nem := &nemesis{c: c, scenario: cfg.Scenario, rng: rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())), tl: tl}
	var wg sync.WaitGroup
	var nemErr error
	wg.Go(func() { nemErr = nem.run(workCtx) })
	for i, w := range assignWorkers(rng, cfg.Clients, wls) {
		res.Workers[w.Name()]++
		wrng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		rc, err := NewRecordingClient(rec, i, c.endpoints(), wrng)
		if err != nil {
			cancel()
			wg.Wait()
			return res, err
		}
		wg.Go(func() {
			defer rc.Close()
			w.Work(workCtx, rc, wrng)
		})
	}
	wg.Wait()
	res.Faults = nem.count
	if nemErr != nil {
		return res, nemErr
	}

	res.Anomalies = append(res.Anomalies, verify(ctx, c, tl, rec, wls, dir, res, log)...)
	for _, op := range rec.Ops() {
		res.Ops++
		if op.Outcome == Unknown {
			res.Unknown++
		}
	}
	log.Info("run done", "ops", res.Ops, "checked", res.Checked, "faults", res.Faults, "anomalies", len(res.Anomalies))
	return res, nil
}

// assignWorkers gives each client a workload: two on the register and
// one on each other workload (as far as clients go), the rest spread by
// the seed.
func assignWorkers(rng *rand.Rand, clients int, wls []workload) []workload {
	out := append([]workload{wls[0]}, wls...)
	out = out[:min(len(out), clients)]
	for len(out) < clients {
		out = append(out, wls[rng.IntN(len(wls))])
	}
	return out
}

// verify heals the cluster, requires a final write and converged hashes,
// and runs every workload's checker. It returns the anomalies.
func verify(ctx context.Context, c *cluster, tl *timeline, rec *Recorder, wls []workload, dir string, res *Result, log *slog.Logger) []string {
	var out []string
	tl.add("heal everything")
	crashed, err := c.heal(ctx)
	if err != nil {
		out = append(out, fmt.Sprintf("heal: %v", err))
	}
	for _, id := range crashed {
		out = append(out, fmt.Sprintf("node %d exited on its own during the run (see node%d.log)", id, id))
	}
	out = append(out, c.members.settle(ctx, c, tl)...)
	index, err := finalWrite(ctx, c)
	if err != nil {
		out = append(out, err.Error())
	}
	tl.add("final write at index %d", index)
	nodes := c.memberNodes()
	hashes, err := c.converge(ctx, nodes, index, convergeWithin)
	// A node that crashed again after healing is reported already; check
	// what the others hold rather than nothing.
	if up := c.upNodes(); err != nil && !errors.Is(err, ErrHashMismatch) && len(up) > 0 && len(up) < len(nodes) {
		out = append(out, err.Error())
		nodes = up
		tl.add("checking only nodes that are up: %v", nodeIDs(up))
		hashes, err = c.converge(ctx, nodes, index, convergeWithin)
	}
	res.Hashes = hashes
	if err != nil {
		out = append(out, err.Error())
		return append(out, scanLogs(c)...)
	}
	tl.add("converged at index %d", hashes[0].Index)
	env := &checkEnv{ctx: ctx, c: c, nodes: nodes, ops: rec.Ops(), finalIndex: hashes[0].Index, dir: dir, log: log}
	for _, w := range wls {
		v := w.Check(env)
		res.Checked += v.Checked
		out = append(out, v.Anomalies...)
	}
	out = append(out, integrity(env)...)
	out = append(out, c.members.check(env.ops)...)
	return append(out, scanLogs(c)...)
}

// finalWrite retries an idempotent write until it succeeds, at most
// FinalWriteWithin, and returns its raft index.
func finalWrite(ctx context.Context, c *cluster) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, FinalWriteWithin)
	defer cancel()
	s, err := command.NewStatement("INSERT INTO chaos_final (id, n) VALUES (1, 1) ON CONFLICT(id) DO UPDATE SET n = n + 1")
	if err != nil {
		return 0, fmt.Errorf("chaos: final write: %w", err)
	}
	for {
		resp, err := c.admin.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{s}})
		if err == nil {
			return resp.GetRaftIndex(), nil
		}
		if perr := pollWait(ctx); perr != nil {
			return 0, fmt.Errorf("final write did not succeed within %s of healing: %v", FinalWriteWithin, err)
		}
	}
}

// integrity runs PRAGMA integrity_check on every replica.
func integrity(env *checkEnv) []string {
	var out []string
	for _, n := range env.nodes {
		res, err := env.query(n, rpcpb.Consistency_CONSISTENCY_NONE, "PRAGMA integrity_check")
		if err != nil {
			out = append(out, fmt.Sprintf("integrity check: %v", err))
			continue
		}
		rows := res.GetRows()
		if len(rows) != 1 || rows[0].GetValues()[0].GetText() != "ok" {
			out = append(out, fmt.Sprintf("node %d: integrity_check: %v", n.id, rows))
		}
	}
	return out
}

func nodeIDs(nodes []*node) []int {
	var ids []int
	for _, n := range nodes {
		ids = append(ids, n.id)
	}
	return ids
}

// scanLogs reports panics, fatal errors and races in the node logs.
func scanLogs(c *cluster) []string {
	var out []string
	for _, n := range c.nodes {
		b, err := os.ReadFile(n.logPath)
		if err != nil {
			continue
		}
		for _, marker := range []string{"panic:", "fatal error:", "DATA RACE"} {
			if containsLine(b, marker) {
				out = append(out, fmt.Sprintf("node %d log contains %q (see node%d.log)", n.id, marker, n.id))
			}
		}
	}
	return out
}
