package rpc

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"rdb/cluster"
	"rdb/command"
	"rdb/db"
	"rdb/rpc/rpcpb"
)

// fuzzNode is a single-node stand-in for cluster.Node backed by a real
// database: writes are checked and applied at once, reads are local.
type fuzzNode struct {
	db    *db.DB
	mu    sync.Mutex
	index uint64
	calls atomic.Int64 // calls that got past the server's request checks
}

func (n *fuzzNode) ID() uint64        { return 1 }
func (n *fuzzNode) ClusterID() uint64 { return 0 }

func (n *fuzzNode) apply(ctx context.Context, typ command.CommandType, stmts []*command.Statement, tx bool) (*cluster.WriteResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.index++
	res, err := n.db.Apply(ctx, db.Entry{Index: n.index, WantResults: true, Command: &command.Command{
		Type: typ, Statements: stmts, Transaction: tx, TimeUnixNanos: 1e18, RandomSeed: 1}})
	if err != nil {
		return nil, err
	}
	return &cluster.WriteResult{Results: res, Index: n.index}, nil
}

func (n *fuzzNode) Execute(ctx context.Context, stmts []*command.Statement, tx bool) (*cluster.WriteResult, error) {
	n.calls.Add(1)
	if err := n.db.CheckWrite(ctx, stmts); err != nil {
		return nil, err
	}
	return n.apply(ctx, command.CommandType_COMMAND_TYPE_EXECUTE, stmts, tx)
}

func (n *fuzzNode) StrongQuery(ctx context.Context, stmts []*command.Statement) (*cluster.WriteResult, error) {
	n.calls.Add(1)
	ro, err := n.db.ReadOnly(ctx, stmts)
	if err != nil {
		return nil, err
	}
	if !ro {
		return nil, cluster.ErrNotReadOnly
	}
	return n.apply(ctx, command.CommandType_COMMAND_TYPE_QUERY, stmts, false)
}

func (n *fuzzNode) ReadIndex(ctx context.Context) (uint64, error) {
	n.calls.Add(1)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.index, nil
}

func (n *fuzzNode) WaitApplied(ctx context.Context, index uint64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if index > n.index {
		return fmt.Errorf("wait for applied index %d: %w", index, context.DeadlineExceeded)
	}
	return nil
}

func (n *fuzzNode) LocalQuery(ctx context.Context, stmts []*command.Statement) ([]*command.Result, uint64, error) {
	n.calls.Add(1)
	res, err := n.db.Query(ctx, stmts)
	return res, 0, err
}

func (n *fuzzNode) ReadOnly(ctx context.Context, stmts []*command.Statement) (bool, error) {
	n.calls.Add(1)
	return n.db.ReadOnly(ctx, stmts)
}

func (n *fuzzNode) CheckFresh(time.Duration) error { return nil }
func (n *fuzzNode) IsLeader() bool                 { return true }
func (n *fuzzNode) Leader() (uint64, string)       { return 1, "" }
func (n *fuzzNode) Status(context.Context) (cluster.Status, error) {
	return cluster.Status{ID: 1}, nil
}
func (n *fuzzNode) HashAt(ctx context.Context) (string, uint64, error) { return n.db.HashAt(ctx) }

// fuzzLimits are small so that the fuzzer reaches every limit.
var fuzzLimits = command.Limits{MaxStatements: 4, MaxParameters: 4, MaxSQLBytes: 256}

const fuzzMaxRequest = 2048

// FuzzServerRequest decodes arbitrary bytes as an Execute, Query or
// Request message (as gRPC would) and hands them to a Server over a real
// database. Properties: no panic; only the codes the README lists for
// these calls (never Internal or Unknown); a request over the size limit
// is ResourceExhausted and one that breaks the limits InvalidArgument,
// both before the node is asked anything.
func FuzzServerRequest(f *testing.F) {
	enc := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	st := func(sql string, params ...*command.Parameter) *command.Statement {
		return &command.Statement{Sql: sql, Parameters: params}
	}
	f.Add(uint8(0), enc(&rpcpb.ExecuteRequest{Statements: []*command.Statement{st("CREATE TABLE IF NOT EXISTS t(a)")}}))
	f.Add(uint8(0), enc(&rpcpb.ExecuteRequest{Statements: []*command.Statement{st("INSERT INTO t VALUES(?)", &command.Parameter{Value: command.Integer(1)})}, Transaction: true}))
	f.Add(uint8(0), enc(&rpcpb.ExecuteRequest{Statements: []*command.Statement{st("BEGIN")}}))
	f.Add(uint8(1), enc(&rpcpb.QueryRequest{Statements: []*command.Statement{st("SELECT :a", &command.Parameter{Name: "a", Value: command.Text("x")})}}))
	f.Add(uint8(1), enc(&rpcpb.QueryRequest{Statements: []*command.Statement{st("SELECT 1")}, Consistency: rpcpb.Consistency_CONSISTENCY_STRONG, MinIndex: 5}))
	f.Add(uint8(1), enc(&rpcpb.QueryRequest{Statements: []*command.Statement{st("SELECT 1")}, Consistency: 9}))
	f.Add(uint8(2), enc(&rpcpb.RequestRequest{Statements: []*command.Statement{st("SELECT 1"), st("DELETE FROM t")}}))
	f.Add(uint8(2), enc(&rpcpb.RequestRequest{Statements: []*command.Statement{st(""), st("SELECT 1")}}))
	f.Add(uint8(1), []byte{0x0a, 0x02, 0x0a, 0x00})

	d, err := db.Open(context.Background(), db.Config{Path: filepath.Join(f.TempDir(), "db.sqlite"), MaxApplySteps: 2_000_000})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	node := &fuzzNode{db: d}
	srv := NewServer(ServerConfig{MaxRequestBytes: fuzzMaxRequest, Limits: fuzzLimits}, node)

	allowed := map[codes.Code]bool{codes.OK: true, codes.InvalidArgument: true, codes.ResourceExhausted: true,
		codes.PermissionDenied: true, codes.DeadlineExceeded: true, codes.FailedPrecondition: true}
	f.Fuzz(func(t *testing.T, method uint8, data []byte) {
		var req proto.Message
		var stmts func() []*command.Statement
		switch method % 3 {
		case 0:
			r := &rpcpb.ExecuteRequest{}
			req, stmts = r, r.GetStatements
		case 1:
			r := &rpcpb.QueryRequest{}
			req, stmts = r, r.GetStatements
		default:
			r := &rpcpb.RequestRequest{}
			req, stmts = r, r.GetStatements
		}
		if proto.Unmarshal(data, req) != nil {
			return // gRPC refuses it before the server sees it
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		before := node.calls.Load()
		var callErr error
		switch r := req.(type) {
		case *rpcpb.ExecuteRequest:
			_, callErr = srv.Execute(ctx, r)
		case *rpcpb.QueryRequest:
			_, callErr = srv.Query(ctx, r)
		case *rpcpb.RequestRequest:
			_, callErr = srv.Request(ctx, r)
		}
		code := status.Code(callErr)
		if !allowed[code] {
			t.Fatalf("code %v: %v", code, callErr)
		}
		oversized := proto.Size(req) > fuzzMaxRequest
		invalid := fuzzLimits.Validate(stmts()) != nil
		switch {
		case oversized && code != codes.ResourceExhausted:
			t.Fatalf("request of %d bytes: code %v, want ResourceExhausted", proto.Size(req), code)
		case !oversized && invalid && code != codes.InvalidArgument:
			t.Fatalf("request breaking the limits: code %v, want InvalidArgument: %v", code, callErr)
		}
		if (oversized || invalid) && node.calls.Load() != before {
			t.Fatalf("a refused request reached the node")
		}
	})
}
