package rpc

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"rdb/cluster"
	"rdb/command"
	"rdb/db"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// followerNode is a follower of the node served at leaderAddr: it refuses
// writes with ErrNotLeader, as cluster.Node does on a follower, so that
// the server forwards them.
type followerNode struct {
	*fuzzNode
	leaderAddr string
	clusterID  uint64
}

func (n *followerNode) ID() uint64               { return 2 }
func (n *followerNode) ClusterID() uint64        { return n.clusterID }
func (n *followerNode) IsLeader() bool           { return false }
func (n *followerNode) Leader() (uint64, string) { return 1, n.leaderAddr }
func (n *followerNode) Status(context.Context) (cluster.Status, error) {
	return cluster.Status{ID: 2}, nil
}
func (n *followerNode) Execute(context.Context, []*command.Statement, bool) (*cluster.WriteResult, error) {
	return nil, cluster.ErrNotLeader
}
func (n *followerNode) StrongQuery(context.Context, []*command.Statement) (*cluster.WriteResult, error) {
	return nil, cluster.ErrNotLeader
}

// Execute calls of a Pipeline stream to a follower go to the leader's
// pipeline without a worker each, and every call still gets its own
// reply, id and error; once the leader is gone they fail as Unavailable.
func TestPipelineForwardsExecuteCalls(t *testing.T) {
	leaderAddr, _ := pipelineServer(t, ServerConfig{}, nil)
	metrics, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	followerAddr, _, _ := serveNode(t, ServerConfig{Metrics: metrics}, &followerNode{fuzzNode: &fuzzNode{db: openTestDB(t)}, leaderAddr: leaderAddr}, nil)

	p := client.NewPipeline(dial(t, followerAddr), metadata.MD{}, 64<<20)
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exec := func(sql string, args ...any) (*rpcpb.ExecuteResponse, error) {
		return p.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(sql, args...)}})
	}
	if _, err := exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}

	const workers, each = 64, 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	indexes := map[uint64]int64{}
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := int64(w*each + i + 1)
				resp, err := exec("INSERT INTO t(id, v) VALUES(?, ?)", command.Integer(id), command.Text(fmt.Sprint("v", id)))
				if err != nil {
					errs <- fmt.Errorf("insert %d: %w", id, err)
					return
				}
				if got := resp.GetResults()[0].GetLastInsertId(); got != id {
					errs <- fmt.Errorf("insert %d: the reply of insert %d", id, got)
					return
				}
				mu.Lock()
				if other, dup := indexes[resp.GetRaftIndex()]; dup {
					mu.Unlock()
					errs <- fmt.Errorf("inserts %d and %d got the same index %d", other, id, resp.GetRaftIndex())
					return
				}
				indexes[resp.GetRaftIndex()] = id
				mu.Unlock()
				if i%5 == 0 {
					// The leader's error comes back for this call alone.
					_, err := exec("INSERT INTO t(id, v) VALUES(?, 'dup')", command.Integer(id))
					if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "UNIQUE") {
						errs <- fmt.Errorf("duplicate %d: want InvalidArgument (UNIQUE), got %v", id, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	// The rows are in the leader's database, not the follower's.
	lc := newTestClient(t, client.Config{Endpoints: []string{leaderAddr}})
	q, err := lc.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{stmt("SELECT count(*) FROM t")}, Consistency: rpcpb.Consistency_CONSISTENCY_NONE})
	if err != nil {
		t.Fatal(err)
	}
	if n := q.GetResults()[0].GetRows()[0].GetValues()[0].GetInteger(); n != workers*each {
		t.Fatalf("leader holds %d rows, want %d", n, workers*each)
	}
	calls := workers*each + workers*each/5 + 1
	if got := testutil.ToFloat64(metrics.requests.WithLabelValues(rpcpb.DB_Execute_FullMethodName, codes.OK.String())); got != workers*each+1 {
		t.Errorf("follower counted %v successful Execute calls, want %d", got, workers*each+1)
	}
	if got := testutil.ToFloat64(metrics.requests.WithLabelValues(rpcpb.DB_Execute_FullMethodName, codes.InvalidArgument.String())); got != workers*each/5 {
		t.Errorf("follower counted %v failed Execute calls, want %d", got, workers*each/5)
	}
	// The first call may take the usual path while the connection to the
	// leader is being set up; the others are handed over directly.
	if got := testutil.ToFloat64(metrics.forwarded); got < float64(calls-workers) {
		t.Errorf("%v of %d calls handed straight to the leader's pipeline", got, calls)
	}
}

// A follower whose leader is gone fails forwarded calls as Unavailable,
// not applied when they never reached it.
func TestPipelineForwardToGoneLeader(t *testing.T) {
	leaderAddr, _, stopLeader := serveNode(t, ServerConfig{}, &fuzzNode{db: openTestDB(t)}, nil)
	followerAddr, _, _ := serveNode(t, ServerConfig{}, &followerNode{fuzzNode: &fuzzNode{db: openTestDB(t)}, leaderAddr: leaderAddr}, nil)
	p := client.NewPipeline(dial(t, followerAddr), metadata.MD{}, 64<<20)
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt("CREATE TABLE t(id INTEGER PRIMARY KEY)")}}); err != nil {
		t.Fatal(err)
	}
	stopLeader()
	_, err := p.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt("INSERT INTO t(id) VALUES(1)")}})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("insert through a follower whose leader is gone: want Unavailable, got %v", err)
	}
}

// strangerNode leads a cluster of its own, with another cluster id than
// the follower that forwards to it: as cluster.Node does, it refuses
// calls that name another cluster.
type strangerNode struct {
	*fuzzNode
	clusterID uint64
}

func (n *strangerNode) ClusterID() uint64 { return n.clusterID }
func (n *strangerNode) CheckClusterID(other uint64) error {
	return cluster.CheckClusterIDs(n.clusterID, other)
}

// A follower whose idea of the leader is out of date, so that it forwards
// to a node of another cluster that took the leader's address, has its
// forwarded calls refused there, whichever way they go (a follower's
// Pipeline hand-over, a unary write or request, a strong or weak read),
// and answers the client Unavailable, not applied, so that the client
// tries again: the stranger runs none of them.
func TestForwardedCallsAreRefusedByAnotherCluster(t *testing.T) {
	stranger := &strangerNode{fuzzNode: &fuzzNode{db: openTestDB(t)}, clusterID: 0xb}
	strangerAddr, _, _ := serveNode(t, ServerConfig{}, stranger, nil,
		grpc.ChainUnaryInterceptor(ClusterIDUnaryInterceptor(stranger)), grpc.ChainStreamInterceptor(ClusterIDStreamInterceptor(stranger)))
	followerAddr, _, _ := serveNode(t, ServerConfig{}, &followerNode{fuzzNode: &fuzzNode{db: openTestDB(t)}, leaderAddr: strangerAddr, clusterID: 0xa}, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := client.NewPipeline(dial(t, followerAddr), metadata.MD{}, 64<<20)
	t.Cleanup(p.Close)
	unary := rpcpb.NewDBClient(dial(t, followerAddr))
	create := []*command.Statement{stmt("CREATE TABLE t(id INTEGER PRIMARY KEY)")}
	calls := map[string]func() error{
		"pipelined write": func() error {
			_, err := p.Execute(ctx, &rpcpb.ExecuteRequest{Statements: create})
			return err
		},
		"unary write": func() error {
			_, err := unary.Execute(ctx, &rpcpb.ExecuteRequest{Statements: create})
			return err
		},
		"unary request": func() error {
			_, err := unary.Request(ctx, &rpcpb.RequestRequest{Statements: create})
			return err
		},
		"strong read": func() error {
			_, err := unary.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{stmt("SELECT 1")}, Consistency: rpcpb.Consistency_CONSISTENCY_STRONG})
			return err
		},
		"weak read": func() error {
			_, err := p.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{stmt("SELECT 1")}, Consistency: rpcpb.Consistency_CONSISTENCY_WEAK})
			return err
		},
	}
	for name, call := range calls {
		// The first pipelined call may take the usual path while the
		// connection to the stranger is set up; later ones are handed
		// over: try each twice.
		for range 2 {
			err := call()
			if status.Code(err) != codes.Unavailable || !client.IsNotApplied(err) || !strings.Contains(err.Error(), "another cluster") {
				t.Errorf("%s through a follower whose leader's address is another cluster's: %v, want Unavailable, not applied, naming another cluster", name, err)
			}
		}
	}
	if n := stranger.calls.Load(); n != 0 {
		t.Errorf("the stranger ran %d forwarded calls", n)
	}
	tables, err := stranger.db.Query(ctx, []*command.Statement{stmt("SELECT count(*) FROM sqlite_master WHERE name = 't'")})
	if err != nil {
		t.Fatal(err)
	}
	if n := tables[0].GetRows()[0].GetValues()[0].GetInteger(); n != 0 {
		t.Errorf("the stranger holds table t")
	}
}

func openTestDB(t *testing.T) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), db.Config{Path: filepath.Join(t.TempDir(), "db.sqlite")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
