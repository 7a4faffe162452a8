package chaos

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// Outcome is what a client knows about an operation after it returned.
type Outcome string

// Outcomes.
const (
	// OK: the operation took effect and returned a result.
	OK Outcome = "ok"
	// Failed: the operation certainly did not take effect (refused before
	// proposing, or a deterministic SQL error).
	Failed Outcome = "fail"
	// Unknown: a write that may or may not have taken effect (timeout,
	// lost connection, lost leader). It is checked as never returning.
	Unknown Outcome = "unknown"
)

// Op is one recorded operation. Times are nanoseconds since the run's
// monotonic base; an Unknown write has Return = math.MaxInt64.
type Op struct {
	Client   int     `json:"client"`
	Worker   int     `json:"worker"`
	Workload string  `json:"workload"`
	Kind     string  `json:"kind"`
	Level    string  `json:"level,omitempty"`
	Key      int64   `json:"key,omitempty"`
	Value    int64   `json:"value,omitempty"`
	Found    bool    `json:"found,omitempty"`
	Input    string  `json:"input,omitempty"`
	Output   string  `json:"output,omitempty"`
	Call     int64   `json:"call_ns"`
	Return   int64   `json:"return_ns"`
	Outcome  Outcome `json:"outcome"`
	Index    uint64  `json:"raft_index,omitempty"`
	Node     uint64  `json:"node,omitempty"`
	Err      string  `json:"error,omitempty"`
}

// Recorder collects the operations of every client of a run against one
// monotonic time base. It is safe for concurrent use.
type Recorder struct {
	base time.Time

	mu         sync.Mutex // guards the fields below
	ops        []Op
	nextClient int
}

// NewRecorder returns a Recorder whose time base is now.
func NewRecorder() *Recorder { return &Recorder{base: time.Now()} }

// Now returns nanoseconds since the base, on the monotonic clock.
func (r *Recorder) Now() int64 { return int64(time.Since(r.base)) }

func (r *Recorder) newClientID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.nextClient
	r.nextClient++
	return id
}

func (r *Recorder) add(op Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
}

// Ops returns a copy of the recorded operations, by call time.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	ops := slices.Clone(r.ops)
	r.mu.Unlock()
	slices.SortStableFunc(ops, func(a, b Op) int { return cmp.Compare(a.Call, b.Call) })
	return ops
}

// WriteJSON writes the history as JSON lines, one operation per line,
// into dir: all of it in history.jsonl and each worker's part in
// history-worker-N.jsonl.
func (r *Recorder) WriteJSON(dir string) error {
	ops := r.Ops()
	byWorker := make(map[int][]Op)
	for _, op := range ops {
		byWorker[op.Worker] = append(byWorker[op.Worker], op)
	}
	if err := writeOps(filepath.Join(dir, "history.jsonl"), ops); err != nil {
		return err
	}
	for w, wops := range byWorker {
		if err := writeOps(filepath.Join(dir, fmt.Sprintf("history-worker-%d.jsonl", w)), wops); err != nil {
			return err
		}
	}
	return nil
}

func writeOps(path string, ops []Op) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chaos: write history: %w", err)
	}
	enc := json.NewEncoder(f)
	for _, op := range ops {
		if err := enc.Encode(op); err != nil {
			f.Close()
			return fmt.Errorf("chaos: write history: %w", err)
		}
	}
	return f.Close()
}

// RecordingClient is one logical client: it sends each operation once
// through an rdb client (which repeats a write only when the server said
// it certainly did not apply) and records it. A worker uses one
// RecordingClient from one goroutine.
type RecordingClient struct {
	rec    *Recorder
	cl     *client.Client
	worker int
	id     int // porcupine client id; a new one after each Unknown op
}

// NewRecordingClient returns a client over the endpoints, tried in an
// order shuffled by rng so that workers spread over the nodes.
func NewRecordingClient(rec *Recorder, worker int, endpoints []string, rng *rand.Rand) (*RecordingClient, error) {
	eps := slices.Clone(endpoints)
	rng.Shuffle(len(eps), func(i, j int) { eps[i], eps[j] = eps[j], eps[i] })
	cl, err := client.New(client.Config{Endpoints: eps, DialTimeout: time.Second, RequestTimeout: opTimeout})
	if err != nil {
		return nil, fmt.Errorf("chaos: client: %w", err)
	}
	return &RecordingClient{rec: rec, cl: cl, worker: worker, id: rec.newClientID()}, nil
}

// opTimeout bounds one operation; past it a write's outcome is unknown.
const opTimeout = 5 * time.Second

// Close closes the underlying client.
func (rc *RecordingClient) Close() error { return rc.cl.Close() }

func (rc *RecordingClient) finish(op *Op, err error, write bool) {
	op.Client, op.Worker = rc.id, rc.worker
	switch {
	case err == nil:
		op.Outcome = OK
	case write && client.IsOutcomeUnknown(err):
		op.Outcome = Unknown
		op.Return = math.MaxInt64
		// This client "never returns" from the op; go on as a new one.
		rc.id = rc.rec.newClientID()
	default:
		op.Outcome = Failed
	}
	if err != nil {
		op.Err = err.Error()
	}
	rc.rec.add(*op)
}

// Execute sends one write request and records op with its times, outcome
// and raft index. It returns the response (nil unless OK) and the op.
func (rc *RecordingClient) Execute(ctx context.Context, op Op, req *rpcpb.ExecuteRequest) (*rpcpb.ExecuteResponse, Op) {
	// The run's end does not cut an operation short (which would turn
	// writes in flight into unknown ones): each has its own deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer cancel()
	op.Call = rc.rec.Now()
	resp, err := rc.cl.Execute(ctx, req)
	op.Return = rc.rec.Now()
	if err == nil {
		op.Index = resp.GetRaftIndex()
	}
	rc.finish(&op, err, true)
	return resp, op
}

// Query sends one read and records op. decode, called on success, fills
// the op's output from the response; an error from it is recorded as the
// op's error and returned.
func (rc *RecordingClient) Query(ctx context.Context, op Op, req *rpcpb.QueryRequest, decode func(*rpcpb.QueryResponse, *Op) error) (*rpcpb.QueryResponse, Op, error) {
	// The run's end does not cut an operation short (which would turn
	// writes in flight into unknown ones): each has its own deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer cancel()
	op.Level = levelName(req.GetConsistency())
	op.Call = rc.rec.Now()
	resp, err := rc.cl.Query(ctx, req)
	op.Return = rc.rec.Now()
	var derr error
	if err == nil {
		op.Index, op.Node = resp.GetRaftIndex(), resp.GetNodeId()
		if derr = decode(resp, &op); derr != nil {
			op.Output = "decode: " + derr.Error()
		}
	}
	rc.finish(&op, err, false)
	return resp, op, derr
}

// levelName is the short name of a consistency level.
func levelName(c rpcpb.Consistency) string {
	switch c {
	case rpcpb.Consistency_CONSISTENCY_NONE:
		return "none"
	case rpcpb.Consistency_CONSISTENCY_WEAK:
		return "weak"
	case rpcpb.Consistency_CONSISTENCY_STRONG:
		return "strong"
	default:
		return "linearizable"
	}
}

// randomLevel picks a read level: linearizable and strong (checked by
// porcupine) about half the time.
func randomLevel(rng *rand.Rand) rpcpb.Consistency {
	return []rpcpb.Consistency{
		rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE,
		rpcpb.Consistency_CONSISTENCY_STRONG,
		rpcpb.Consistency_CONSISTENCY_WEAK,
		rpcpb.Consistency_CONSISTENCY_NONE,
	}[rng.IntN(5)]
}
