package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

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
	return execSetup(ctx, cl, sq("CREATE TABLE IF NOT EXISTS reg (k INTEGER PRIMARY KEY, v INTEGER)"))
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
			ss, err := stmts(sq("INSERT INTO reg (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", k, v))
			if err != nil {
				return
			}
			rc.Execute(ctx, Op{Workload: r.Name(), Kind: "write", Key: k, Value: v}, &rpcpb.ExecuteRequest{Statements: ss})
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

// Check implements workload: porcupine per key, and the written-set check
// for weak and none reads.
func (r *register) Check(env *checkEnv) verdict {
	var v verdict
	perKey := make(map[int64][]Op)
	written := make(map[int64]map[int64]Outcome) // key → value → outcome
	for _, op := range env.opsOf(r.Name()) {
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

var _ workload = (*register)(nil)
