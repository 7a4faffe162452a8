package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// workload is one kind of traffic with its checker. Workers run
// concurrently, each with its own RecordingClient and random source.
type workload interface {
	// Name is the workload's short name ("register", "bank", ...).
	Name() string
	// Setup creates the workload's tables before any fault.
	Setup(ctx context.Context, cl *client.Client) error
	// Work runs operations until ctx ends.
	Work(ctx context.Context, rc *RecordingClient, rng *rand.Rand)
	// Check judges the history after heal and convergence.
	Check(env *checkEnv) verdict
}

// verdict is what a workload's checker found.
type verdict struct {
	Checked   int      // operations checked
	Anomalies []string // empty when everything holds
}

// checkEnv is what checkers get: the healed, converged cluster, the
// history and the index every node has applied.
type checkEnv struct {
	ctx        context.Context
	c          *cluster
	nodes      []*node // the nodes checked: all, or those still up
	ops        []Op
	finalIndex uint64
	dir        string // where checkers may write artifacts
	log        *slog.Logger
}

// opsOf returns the operations of one workload.
func (e *checkEnv) opsOf(workload string) []Op {
	var out []Op
	for _, op := range e.ops {
		if op.Workload == workload {
			out = append(out, op)
		}
	}
	return out
}

// query runs one read on one node only (no failover), at the given
// level, after the final index.
func (e *checkEnv) query(n *node, level rpcpb.Consistency, sql string, args ...any) (*command.Result, error) {
	cl, err := client.New(client.Config{Endpoints: []string{n.clientAddr}, DialTimeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	s, err := command.NewStatement(sql, args...)
	if err != nil {
		return nil, fmt.Errorf("chaos: statement: %w", err)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	resp, err := cl.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{s}, Consistency: level, MinIndex: e.finalIndex})
	if err != nil {
		return nil, fmt.Errorf("chaos: %s read on node %d: %w", levelName(level), n.id, err)
	}
	return resp.GetResults()[0], nil
}

// stmts builds statements from SQL and arguments in pairs; only used with
// arguments of types command.FromGo accepts.
func stmts(parts ...stmtSpec) ([]*command.Statement, error) {
	var out []*command.Statement
	for _, p := range parts {
		s, err := command.NewStatement(p.sql, p.args...)
		if err != nil {
			return nil, fmt.Errorf("chaos: statement %q: %w", p.sql, err)
		}
		out = append(out, s)
	}
	return out, nil
}

type stmtSpec struct {
	sql  string
	args []any
}

func sq(sql string, args ...any) stmtSpec { return stmtSpec{sql: sql, args: args} }

// execSetup runs setup statements as one transaction, retrying while the
// cluster settles (they are idempotent: CREATE ... IF NOT EXISTS, INSERT
// OR IGNORE).
func execSetup(ctx context.Context, cl *client.Client, parts ...stmtSpec) error {
	ss, err := stmts(parts...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		_, err := cl.Execute(ctx, &rpcpb.ExecuteRequest{Statements: ss, Transaction: true})
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("chaos: setup: %w", err)
		}
		if err := pollWait(ctx); err != nil {
			return fmt.Errorf("chaos: setup: %w", err)
		}
	}
}

// anomalies is a concurrency-safe list of anomaly descriptions found
// while workers run.
type anomalies struct {
	mu   sync.Mutex
	list []string
}

func (a *anomalies) add(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.list = append(a.list, fmt.Sprintf(format, args...))
}

func (a *anomalies) get() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.list...)
}

// intCell returns a result cell as an integer.
func intCell(v *command.Value) (int64, error) {
	if x, ok := v.GetKind().(*command.Value_Integer); ok {
		return x.Integer, nil
	}
	return 0, fmt.Errorf("not an integer: %v", v)
}
