package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// Register workload (W1) settings.
const (
	// registerKeyOps is the most operations one key gets before it is
	// retired for a fresh one: porcupine's search grows fast with the
	// operations on one key.
	registerKeyOps = 500
	// registerActiveKeys keys are in use at a time.
	registerActiveKeys = 3
	// CheckTimeout bounds porcupine on one key; a timeout is a failure.
	CheckTimeout = 60 * time.Second
)

// register is W1: one integer register per key in reg(k, v). Writes set a
// key to a value never written before; reads run at every level.
// Writes and linearizable and strong reads must be linearizable per key;
// weak and none reads must return a value that was written (or 0, the
// value of a key never written).
type register struct {
	nextVal atomic.Int64

	mu      sync.Mutex // guards the fields below
	active  []int64
	count   map[int64]int
	nextKey int64
}

func newRegister() *register {
	r := &register{count: make(map[int64]int)}
	for range registerActiveKeys {
		r.nextKey++
		r.active = append(r.active, r.nextKey)
	}
	return r
}

// Name implements workload.
func (r *register) Name() string { return "register" }

// Setup implements workload.
func (r *register) Setup(ctx context.Context, cl *client.Client) error {
	return execSetup(ctx, cl,
		sq("CREATE TABLE IF NOT EXISTS reg (k INTEGER PRIMARY KEY, v INTEGER)"),
		sq("CREATE TABLE IF NOT EXISTS reg_log (v INTEGER NOT NULL, k INTEGER NOT NULL)"))
}

// key picks an active key and retires it once it had its share of ops.
func (r *register) key(rng *rand.Rand) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := rng.IntN(len(r.active))
	k := r.active[i]
	if r.count[k]++; r.count[k] >= registerKeyOps {
		r.nextKey++
		r.active[i] = r.nextKey
	}
	return k
}

// Work implements workload.
func (r *register) Work(ctx context.Context, rc *RecordingClient, rng *rand.Rand) {
	for ctx.Err() == nil {
		k := r.key(rng)
		if rng.IntN(100) < 40 {
			v := r.nextVal.Add(1)
			// The write also logs itself, in the same transaction, so that
			// the end of the run can tell which unknown writes took effect.
			ss, err := stmts(
				sq("INSERT INTO reg (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", k, v),
				sq("INSERT INTO reg_log (v, k) VALUES (?, ?)", v, k))
			if err != nil {
				return
			}
			rc.Execute(ctx, Op{Workload: r.Name(), Kind: "write", Key: k, Value: v}, &rpcpb.ExecuteRequest{Statements: ss, Transaction: true})
			continue
		}
		ss, err := stmts(sq("SELECT v FROM reg WHERE k = ?", k))
		if err != nil {
			return
		}
		req := &rpcpb.QueryRequest{Statements: ss, Consistency: randomLevel(rng)}
		rc.Query(ctx, Op{Workload: r.Name(), Kind: "read", Key: k}, req, decodeRegister)
	}
}

func decodeRegister(resp *rpcpb.QueryResponse, op *Op) error {
	rows := resp.GetResults()[0].GetRows()
	switch len(rows) {
	case 0:
		op.Value, op.Found = 0, false
	case 1:
		v, err := intCell(rows[0].GetValues()[0])
		if err != nil {
			return err
		}
		op.Value, op.Found = v, true
	default:
		return fmt.Errorf("%d rows for one key", len(rows))
	}
	op.Output = fmt.Sprint(op.Value)
	return nil
}

// registerInput and registerOutput are porcupine's view of an operation.
type registerInput struct {
	write bool
	value int64
}

// registerModel is a single integer register starting at 0.
var registerModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(registerInput)
		if in.write {
			return true, in.value
		}
		return output.(int64) == state.(int64), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(registerInput)
		if in.write {
			return fmt.Sprintf("write(%d)", in.value)
		}
		return fmt.Sprintf("read() -> %v", output)
	},
	DescribeState: func(state any) string { return fmt.Sprint(state) },
}

// isChecked reports whether porcupine checks a register operation:
// writes that did or may have taken effect, and successful linearizable
// and strong reads.
func isChecked(op Op) bool {
	if op.Kind == "write" {
		return op.Outcome != Failed
	}
	return op.Outcome == OK && (op.Level == "linearizable" || op.Level == "strong") && op.Err == ""
}

// Check implements workload: the write log against the outcomes,
// porcupine per key, and the written-set check for weak and none reads.
func (r *register) Check(env *checkEnv) verdict {
	ops := env.opsOf(r.Name())
	committed, anomalies := r.resolve(env, ops)
	v := r.judge(env, ops, committed)
	v.Anomalies = append(anomalies, v.Anomalies...)
	return v
}

// judge checks the history, with the unknown writes whose values are not
// in committed (when it is not nil) taken as never applied.
func (r *register) judge(env *checkEnv, ops []Op, committed map[int64]bool) verdict {
	var v verdict
	perKey := make(map[int64][]Op)
	written := make(map[int64]map[int64]Outcome) // key → value → outcome
	for _, op := range ops {
		if op.Kind == "write" && op.Outcome == Unknown && committed != nil && !committed[op.Value] {
			// Resolved against the log: it never took effect.
			op.Outcome = Failed
		}
		perKey[op.Key] = append(perKey[op.Key], op)
		if op.Kind == "write" {
			if written[op.Key] == nil {
				written[op.Key] = make(map[int64]Outcome)
			}
			written[op.Key][op.Value] = op.Outcome
		}
	}
	keys := make([]int64, 0, len(perKey))
	for k := range perKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var hist []porcupine.Operation
		for _, op := range perKey[k] {
			if op.Kind == "read" && op.Outcome == OK && op.Err != "" {
				v.Anomalies = append(v.Anomalies, fmt.Sprintf("register key %d: bad read result at %s: %s", k, op.Level, op.Output))
			}
			if op.Kind == "read" && op.Outcome == OK && (op.Level == "weak" || op.Level == "none") {
				v.Checked++
				if out, ok := written[k][op.Value]; op.Value != 0 && (!ok || out == Failed) {
					v.Anomalies = append(v.Anomalies, fmt.Sprintf("register key %d: %s read on node %d returned %d, never (successfully) written", k, op.Level, op.Node, op.Value))
				}
			}
			if !isChecked(op) {
				continue
			}
			hist = append(hist, porcupine.Operation{
				ClientId: op.Client,
				Input:    registerInput{write: op.Kind == "write", value: op.Value},
				Call:     op.Call,
				Output:   op.Value,
				Return:   op.Return,
			})
		}
		v.Checked += len(hist)
		res, info := porcupine.CheckOperationsVerbose(registerModel, hist, CheckTimeout)
		if res == porcupine.Ok {
			continue
		}
		path := filepath.Join(env.dir, fmt.Sprintf("register-key-%d.html", k))
		if err := porcupine.VisualizePath(registerModel, info, path); err != nil {
			env.log.Warn("porcupine visualization", "key", k, "err", err)
		}
		v.Anomalies = append(v.Anomalies, fmt.Sprintf("register key %d: porcupine %s over %d ops (writes + linearizable/strong reads); see %s",
			k, res, len(hist), filepath.Base(path)))
	}
	return v
}

// resolve reads the write log (reg_log, written in each write's
// transaction) at the strong level after the final write and judges it
// with judgeRegisterLog. It returns the set of values that took effect,
// with which the caller resolves unknown writes (etcd's robustness suite
// does the same against its WAL), or nil when there is no node to read
// (checker unit tests) or none answered.
func (r *register) resolve(env *checkEnv, ops []Op) (map[int64]bool, []string) {
	if len(env.nodes) == 0 {
		return nil, nil
	}
	var errs []string
	for _, n := range env.nodes {
		res, err := env.query(n, rpcpb.Consistency_CONSISTENCY_STRONG, "SELECT v, k FROM reg_log")
		if err != nil {
			errs = append(errs, fmt.Sprintf("node %d: %v", n.id, err))
			continue
		}
		committed, anomalies, unknownIn, unknownOut := judgeRegisterLog(res.GetRows(), ops)
		env.log.Info("register: unknown writes resolved against the write log",
			"took_effect", unknownIn, "never_applied", unknownOut)
		return committed, anomalies
	}
	return nil, []string{fmt.Sprintf("register: final read of the write log failed on every node: %s", strings.Join(errs, "; "))}
}

// judgeRegisterLog compares the write log's rows (v, k) with the writes:
// every acknowledged write present once, no definitely failed or never
// issued write present, each under its own key. It returns the values
// that took effect, the anomalies, and how many unknown writes took
// effect and how many never applied.
func judgeRegisterLog(rows []*command.Row, ops []Op) (committed map[int64]bool, out []string, unknownIn, unknownOut int) {
	seen := make(map[int64]int)
	keyOf := make(map[int64]int64)
	for _, row := range rows {
		val, err1 := intCell(row.GetValues()[0])
		key, err2 := intCell(row.GetValues()[1])
		if err := errors.Join(err1, err2); err != nil {
			return nil, []string{fmt.Sprintf("register: write log: %v", err)}, 0, 0
		}
		seen[val]++
		keyOf[val] = key
	}
	issued := make(map[int64]Op)
	var lost, failed []int64
	for _, op := range ops {
		if op.Kind != "write" {
			continue
		}
		issued[op.Value] = op
		switch {
		case op.Outcome == OK && seen[op.Value] == 0:
			lost = append(lost, op.Value)
		case op.Outcome == Failed && seen[op.Value] > 0:
			failed = append(failed, op.Value)
		case op.Outcome == Unknown && seen[op.Value] > 0:
			unknownIn++
		case op.Outcome == Unknown:
			unknownOut++
		}
	}
	var dup, foreign, wrongKey []int64
	for val, c := range seen {
		if c > 1 {
			dup = append(dup, val)
		}
		op, ok := issued[val]
		if !ok {
			foreign = append(foreign, val)
		} else if op.Key != keyOf[val] {
			wrongKey = append(wrongKey, val)
		}
	}
	report := func(what string, xs []int64) {
		if len(xs) > 0 {
			slices.Sort(xs)
			out = append(out, fmt.Sprintf("register: %d %s, e.g. %v", len(xs), what, xs[:min(len(xs), 10)]))
		}
	}
	report("acknowledged writes missing from the write log", lost)
	report("definitely failed writes in the write log", failed)
	report("writes applied more than once", dup)
	report("values in the write log never written", foreign)
	report("values logged under another key", wrongKey)
	committed = make(map[int64]bool, len(seen))
	for val := range seen {
		committed[val] = true
	}
	return committed, out, unknownIn, unknownOut
}

var _ workload = (*register)(nil)
