package rpc

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// roundTripRows is the number of rows the round-trip benchmark reads from.
const roundTripRows = 1000

// BenchmarkGRPCRoundTrip measures the gRPC round trip of a call, the last
// hot path of issue 7: the real Server on a loopback port, called through
// the Go client, over a single-node database (fuzzNode: a write is applied
// at once, with no raft log or peers), so that what is measured is the
// client, gRPC, the server's dispatch and the database call, not the
// consensus. Each op is one call and its checked reply:
//
//   - query: a point SELECT by primary key at consistency none;
//   - execute: a single-row INSERT of a 100-byte value;
//   - seq: one call in flight (the latency of a round trip);
//   - par16: 16 goroutines per GOMAXPROCS calling at once (the CPU of a
//     round trip when calls share the connection).
//
// "pipeline" is the client's default (calls share a Pipeline stream),
// "unary" one gRPC call per request (client.Config.DisablePipeline).
func BenchmarkGRPCRoundTrip(b *testing.B) {
	ctx := context.Background()
	for _, mode := range []struct {
		name  string
		unary bool
	}{{"pipeline", false}, {"unary", true}} {
		addr, _ := pipelineServer(b, ServerConfig{}, nil)
		c := newTestClient(b, client.Config{Endpoints: []string{addr}, DisablePipeline: mode.unary})
		if _, err := c.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{
			stmt("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"),
			stmt(fmt.Sprintf(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d)
INSERT INTO t(id, v) SELECT x, 'v' || x FROM c`, roundTripRows)),
		}}); err != nil {
			b.Fatal(err)
		}
		var next atomic.Int64
		query := func() error {
			id := 1 + next.Add(1)%roundTripRows
			resp, err := c.Query(ctx, &rpcpb.QueryRequest{Consistency: rpcpb.Consistency_CONSISTENCY_NONE,
				Statements: []*command.Statement{stmt("SELECT v FROM t WHERE id = ?", command.Integer(id))}})
			if err != nil {
				return err
			}
			if got, want := resp.GetResults()[0].GetRows()[0].GetValues()[0].GetText(), fmt.Sprint("v", id); got != want {
				return fmt.Errorf("row %d: got %q, want %q", id, got, want)
			}
			return nil
		}
		value := fmt.Sprintf("%0100d", 7)
		execute := func() error {
			resp, err := c.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{
				stmt("INSERT INTO t(v) VALUES(?)", command.Text(value))}})
			if err != nil {
				return err
			}
			if n := resp.GetResults()[0].GetRowsAffected(); n != 1 {
				return fmt.Errorf("insert: %d rows affected", n)
			}
			return nil
		}
		for _, call := range []struct {
			name string
			fn   func() error
		}{{"query", query}, {"execute", execute}} {
			b.Run(mode.name+"/"+call.name+"/seq", func(b *testing.B) {
				for b.Loop() {
					if err := call.fn(); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(mode.name+"/"+call.name+"/par16", func(b *testing.B) {
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := call.fn(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
