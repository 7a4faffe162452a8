package rpc

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"rdb/command"
	"rdb/db"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// pipelineServer serves a Server over a single-node database (fuzzNode)
// on a loopback port and returns its address. register chooses what the
// gRPC server offers (the Server itself by default).
func pipelineServer(t testing.TB, cfg ServerConfig, register func(*grpc.Server, *Server)) (string, *Server) {
	t.Helper()
	d, err := db.Open(context.Background(), db.Config{Path: filepath.Join(t.TempDir(), "db.sqlite")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	addr, srv, _ := serveNode(t, cfg, &fuzzNode{db: d}, register)
	return addr, srv
}

// serveNode serves a Server over node on a loopback port, with the gRPC
// server options opts, until the test ends; stop ends it sooner (and may
// be called again).
func serveNode(t testing.TB, cfg ServerConfig, node Node, register func(*grpc.Server, *Server), opts ...grpc.ServerOption) (addr string, srv *Server, stop func()) {
	t.Helper()
	srv = NewServer(cfg, node)
	g := grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(srv.MaxRecvMsgSize()))...)
	if register == nil {
		rpcpb.RegisterDBServer(g, srv)
	} else {
		register(g, srv)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Serve(lis)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Drain()
			g.GracefulStop()
			<-done
			srv.Close()
		})
	}
	t.Cleanup(stop)
	return lis.Addr().String(), srv, stop
}

func newTestClient(t testing.TB, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// stmt is command.NewStatement for arguments known to convert.
func stmt(sql string, args ...any) *command.Statement {
	s, err := command.NewStatement(sql, args...)
	if err != nil {
		panic(err)
	}
	return s
}

// dial returns a plain gRPC connection to addr, closed with the test.
func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// Concurrent calls share messages and each gets its own result and error,
// as unary calls do; the metrics count every call under its own method.
func TestPipelineConcurrentCalls(t *testing.T) {
	metrics, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := pipelineServer(t, ServerConfig{Metrics: metrics}, nil)
	c := newTestClient(t, client.Config{Endpoints: []string{addr}})
	ctx := context.Background()
	if _, err := c.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")}}); err != nil {
		t.Fatal(err)
	}
	const workers, each = 32, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := int64(w*each + i + 1)
				resp, err := c.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{
					stmt("INSERT INTO t(id, v) VALUES(?, ?)", command.Integer(id), command.Text(fmt.Sprint("v", id)))}})
				if err != nil {
					errs <- fmt.Errorf("insert %d: %w", id, err)
					return
				}
				if got := resp.GetResults()[0].GetLastInsertId(); got != id {
					errs <- fmt.Errorf("insert %d: last insert id %d", id, got)
					return
				}
				// A failing statement fails this call alone.
				if i%10 == 0 {
					_, err := c.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{
						stmt("INSERT INTO t(id, v) VALUES(?, 'dup')", command.Integer(id))}})
					if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "UNIQUE") {
						errs <- fmt.Errorf("duplicate %d: want InvalidArgument (UNIQUE), got %v", id, err)
						return
					}
				}
				q, err := c.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{stmt("SELECT v FROM t WHERE id = ?", command.Integer(id))},
					Consistency: rpcpb.Consistency_CONSISTENCY_NONE})
				if err != nil {
					errs <- fmt.Errorf("read %d: %w", id, err)
					return
				}
				if rows := q.GetResults()[0].GetRows(); len(rows) != 1 || rows[0].GetValues()[0].GetText() != fmt.Sprint("v", id) {
					errs <- fmt.Errorf("read %d: rows %v", id, rows)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	q, err := c.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{stmt("SELECT count(*) FROM t")}})
	if err != nil {
		t.Fatal(err)
	}
	if n := q.GetResults()[0].GetRows()[0].GetValues()[0].GetInteger(); n != workers*each {
		t.Fatalf("rows: %d, want %d", n, workers*each)
	}
	if n := testutil.ToFloat64(metrics.requests.WithLabelValues(rpcpb.DB_Execute_FullMethodName, "OK")); n != workers*each+1 {
		t.Errorf("Execute calls recorded OK: %v, want %d", n, workers*each+1)
	}
	if n := testutil.ToFloat64(metrics.requests.WithLabelValues(rpcpb.DB_Execute_FullMethodName, "InvalidArgument")); n != workers*each/10 {
		t.Errorf("Execute calls recorded InvalidArgument: %v, want %d", n, workers*each/10)
	}
	messages, single := histogramCounts(t, metrics.batch)
	if messages == 0 {
		t.Error("no pipeline message was recorded")
	}
	if single == messages {
		t.Errorf("%d concurrent workers never shared a message (%d messages, each of one call)", workers, messages)
	}
	// Every Execute call's reply was counted in a reply message before
	// the reply of the later Query was sent.
	m := &dto.Metric{}
	if err := metrics.replies.Write(m); err != nil {
		t.Fatal(err)
	}
	if got, want := m.GetHistogram().GetSampleSum(), float64(workers*each+workers*each/10+1); got < want || m.GetHistogram().GetSampleCount() == 0 {
		t.Errorf("replies counted in %d reply messages: %v, want at least %v", m.GetHistogram().GetSampleCount(), got, want)
	}
}

// histogramCounts returns the number of observations of h and how many
// of them were at most 1.
func histogramCounts(t *testing.T, h prometheus.Histogram) (total, atMostOne uint64) {
	t.Helper()
	m := &dto.Metric{}
	if err := h.Write(m); err != nil {
		t.Fatal(err)
	}
	for _, b := range m.GetHistogram().GetBucket() {
		if b.GetUpperBound() == 1 {
			atMostOne = b.GetCumulativeCount()
		}
	}
	return m.GetHistogram().GetSampleCount(), atMostOne
}

// A server without the Pipeline method (an older version) gets unary
// calls.
func TestPipelineFallsBackToUnary(t *testing.T) {
	addr, _ := pipelineServer(t, ServerConfig{}, func(g *grpc.Server, s *Server) {
		rpcpb.RegisterDBServer(g, unaryOnly{s: s})
	})
	c := newTestClient(t, client.Config{Endpoints: []string{addr}})
	ctx := context.Background()
	for i := range 3 {
		if _, err := c.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(fmt.Sprintf("CREATE TABLE t%d(x)", i))}}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	q, err := c.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{stmt("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('t0', 't1', 't2')")}})
	if err != nil {
		t.Fatal(err)
	}
	if n := q.GetResults()[0].GetRows()[0].GetValues()[0].GetInteger(); n != 3 {
		t.Fatalf("tables: %d, want 3", n)
	}
}

// unaryOnly offers the unary calls of a Server and not Pipeline.
type unaryOnly struct {
	rpcpb.UnimplementedDBServer
	s *Server
}

func (u unaryOnly) Execute(ctx context.Context, r *rpcpb.ExecuteRequest) (*rpcpb.ExecuteResponse, error) {
	return u.s.Execute(ctx, r)
}

func (u unaryOnly) Query(ctx context.Context, r *rpcpb.QueryRequest) (*rpcpb.QueryResponse, error) {
	return u.s.Query(ctx, r)
}

// Sizes: a call larger than a message goes alone as a unary call; one
// larger than the server takes is refused with ResourceExhausted; a reply
// larger than the client takes fails that call alone. Calls in flight
// beside them are not disturbed.
func TestPipelineSizeLimits(t *testing.T) {
	addr, _ := pipelineServer(t, ServerConfig{MaxRequestBytes: 3 << 20}, nil)
	c := newTestClient(t, client.Config{Endpoints: []string{addr}, MaxMessageSize: 4 << 20})
	ctx := context.Background()
	if _, err := c.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt("CREATE TABLE b(id INTEGER PRIMARY KEY, v BLOB)")}}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	bgErr := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := c.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{
					stmt("INSERT INTO b(id, v) VALUES(?, x'00')", command.Integer(int64(1000+w*100000+i)))}})
				if err != nil {
					bgErr <- err
					return
				}
			}
		})
	}
	big := make([]byte, 2<<20)
	if _, err := c.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{
		stmt("INSERT INTO b(id, v) VALUES(1, ?)", command.Blob(big))}}); err != nil {
		t.Fatalf("2 MiB insert (over a message, under the server's limit): %v", err)
	}
	_, err := c.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{
		stmt("INSERT INTO b(id, v) VALUES(2, ?)", command.Blob(make([]byte, 3<<20+1)))}})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("insert over the server's limit: want ResourceExhausted, got %v", err)
	}
	if !client.IsNotApplied(err) {
		t.Errorf("refused insert not marked NOT_APPLIED: %v", err)
	}
	// 2 MiB twice: larger than the client's 4 MiB receive limit.
	if _, err := c.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{
		stmt("INSERT INTO b(id, v) VALUES(3, ?)", command.Blob(big))}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{stmt("SELECT v FROM b WHERE id IN (1, 3)")},
		Consistency: rpcpb.Consistency_CONSISTENCY_NONE})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("4 MiB reply: want ResourceExhausted, got %v", err)
	}
	close(stop)
	wg.Wait()
	close(bgErr)
	for err := range bgErr {
		t.Errorf("a small insert beside the large calls failed: %v", err)
	}
}

// A call whose deadline passes returns DeadlineExceeded at once; the
// pipeline goes on serving other calls.
func TestPipelineDeadline(t *testing.T) {
	addr, _ := pipelineServer(t, ServerConfig{}, nil)
	c := newTestClient(t, client.Config{Endpoints: []string{addr}})
	if _, err := c.Execute(context.Background(), &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt("CREATE TABLE first(x)")}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err := c.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt("CREATE TABLE late(x)")}})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("want DeadlineExceeded, got %v", err)
	}
	if _, err := c.Execute(context.Background(), &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt("CREATE TABLE ok(x)")}}); err != nil {
		t.Fatal(err)
	}
}

// Drain ends open streams: a call sent after it fails as not applied (a
// client sends it again elsewhere), and a graceful stop does not wait for
// the client to hang up.
func TestPipelineDrain(t *testing.T) {
	addr, srv := pipelineServer(t, ServerConfig{}, nil)
	p := client.NewPipeline(dial(t, addr), nil, 4<<20)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt("CREATE TABLE d(x)")}}); err != nil {
		t.Fatal(err)
	}
	srv.Drain()
	_, err := p.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt("INSERT INTO d VALUES(1)")}})
	if !client.IsNotApplied(err) || status.Code(err) != codes.Unavailable {
		t.Fatalf("call after drain: want Unavailable NOT_APPLIED, got %v", err)
	}
	q, err := srv.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{stmt("SELECT count(*) FROM d")}})
	if err != nil {
		t.Fatal(err)
	}
	if n := q.GetResults()[0].GetRows()[0].GetValues()[0].GetInteger(); n != 0 {
		t.Fatalf("the refused insert took effect: %d rows", n)
	}
}

// Hostile streams: too many calls in one message end the stream with
// InvalidArgument after the calls before it are answered; a call without
// a request, or with a timeout that would overflow, gets a clear answer.
func TestPipelineHostileMessages(t *testing.T) {
	st := rawPipeline(t, 10*time.Second)
	exec := func(id uint64, sql string, timeoutMs int64) *rpcpb.PipelineCall {
		return &rpcpb.PipelineCall{Id: id, TimeoutMs: timeoutMs, Call: &rpcpb.PipelineCall_Execute{Execute: &rpcpb.ExecuteRequest{
			Statements: []*command.Statement{stmt(sql)}}}}
	}
	if err := st.Send(&rpcpb.PipelineRequest{Calls: []*rpcpb.PipelineCall{
		exec(1, "CREATE TABLE h(x)", 1<<62),
		{Id: 2},
	}}); err != nil {
		t.Fatal(err)
	}
	got := map[uint64]*rpcpb.PipelineReply{}
	for len(got) < 2 {
		resp, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.GetReplies() {
			got[r.GetId()] = r
		}
	}
	if e := got[1].GetError(); e != nil {
		t.Fatalf("call with a huge timeout: %v", e.GetMessage())
	}
	if e := got[2].GetError(); codes.Code(e.GetCode()) != codes.InvalidArgument || !strings.Contains(e.GetMessage(), "no request") {
		t.Fatalf("call without a request: want InvalidArgument, got %v", e)
	}
	many := make([]*rpcpb.PipelineCall, pipelineMaxCalls+1)
	for i := range many {
		many[i] = &rpcpb.PipelineCall{Id: uint64(10 + i)}
	}
	if err := st.Send(&rpcpb.PipelineRequest{Calls: many}); err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "at most") {
				t.Fatalf("stream end: want InvalidArgument (too many calls), got %v", err)
			}
			break
		}
		if n := len(resp.GetReplies()); n > 0 {
			t.Fatalf("%d replies to a message that was refused", n)
		}
	}
}

// A call's timeout_ms ends a long read on the server.
func TestPipelineTimeoutInterruptsQuery(t *testing.T) {
	st := rawPipeline(t, 30*time.Second)
	forever := stmt("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c")
	start := time.Now()
	if err := st.Send(&rpcpb.PipelineRequest{Calls: []*rpcpb.PipelineCall{{Id: 1, TimeoutMs: 200, Call: &rpcpb.PipelineCall_Query{
		Query: &rpcpb.QueryRequest{Statements: []*command.Statement{forever}, Consistency: rpcpb.Consistency_CONSISTENCY_NONE}}}}}); err != nil {
		t.Fatal(err)
	}
	resp, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if len(resp.GetReplies()) != 1 {
		t.Fatalf("%d replies", len(resp.GetReplies()))
	}
	if e := resp.GetReplies()[0].GetError(); codes.Code(e.GetCode()) != codes.DeadlineExceeded {
		t.Fatalf("endless query with a 200 ms timeout: want DeadlineExceeded, got %v", e)
	}
	if took > 20*time.Second {
		t.Fatalf("the query ran %v past a 200 ms timeout", took)
	}
}

// rawPipeline opens a Pipeline stream, with no client library in between,
// to a new test server; the stream ends after timeout.
func rawPipeline(t *testing.T, timeout time.Duration) rpcpb.DB_PipelineClient {
	t.Helper()
	addr, _ := pipelineServer(t, ServerConfig{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	st, err := rpcpb.NewDBClient(dial(t, addr)).Pipeline(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
