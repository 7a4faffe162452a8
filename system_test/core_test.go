package system_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

var allLevels = []rpcpb.Consistency{
	rpcpb.Consistency_CONSISTENCY_NONE,
	rpcpb.Consistency_CONSISTENCY_WEAK,
	rpcpb.Consistency_CONSISTENCY_LINEARIZABLE,
	rpcpb.Consistency_CONSISTENCY_STRONG,
}

func rowsText(r *command.Result) string {
	var b strings.Builder
	for _, row := range r.GetRows() {
		b.WriteString(prototext.MarshalOptions{}.Format(row))
		b.WriteByte('\n')
	}
	return b.String()
}

func TestWriteThroughFollowerAndLeaderReadEverywhere(t *testing.T) {
	c := StartCluster(t, 3)
	leader := c.WaitLeader(t)
	follower := c.Followers(leader)[0]

	lc, fc := NodeClient(t, leader), NodeClient(t, follower)
	mustExec(t, fc, "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)")
	r1 := mustExec(t, fc, "INSERT INTO kv VALUES (?, ?)", "via-follower", 1)
	r2 := mustExec(t, lc, "INSERT INTO kv VALUES (?, ?)", "via-leader", 2)
	if r1.GetRaftIndex() == 0 || r2.GetRaftIndex() <= r1.GetRaftIndex() {
		t.Fatalf("raft indexes %d then %d", r1.GetRaftIndex(), r2.GetRaftIndex())
	}
	if got := r1.GetResults()[0].GetRowsAffected(); got != 1 {
		t.Fatalf("rows affected via follower = %d", got)
	}
	want := "values:{text:\"via-follower\"} values:{integer:1}\nvalues:{text:\"via-leader\"} values:{integer:2}\n"
	for _, n := range c.Nodes {
		nc := NodeClient(t, n)
		for _, level := range allLevels {
			// NONE reads the local copy: ask for the last write's index
			// (read your writes) so the answer is deterministic.
			res := mustQuery(t, nc, level, r2.GetRaftIndex(), "SELECT k, v FROM kv ORDER BY k")
			if got := strings.ReplaceAll(rowsText(res), "  ", " "); got != want {
				t.Errorf("node %d level %v: rows\n%s\nwant\n%s", n.ID, level, got, want)
			}
		}
	}
}

// TestLargeWritesThroughFollower sends writes larger than one Pipeline
// message (1 MiB) to a follower, through Execute and Request: the client
// sends them as unary calls, and the follower forwards them to the
// leader. (The forwarded call once carried the follower's cluster id
// twice, and the leader refused it with InvalidArgument.)
func TestLargeWritesThroughFollower(t *testing.T) {
	c := StartCluster(t, 3)
	leader := c.WaitLeader(t)
	fc := NodeClient(t, c.Followers(leader)[0])
	mustExec(t, fc, "CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT)")
	value := strings.Repeat("b", 2<<20)
	mustExec(t, fc, "INSERT INTO big VALUES (1, ?)", value)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := fc.Request(ctx, &rpcpb.RequestRequest{Statements: []*command.Statement{stmt(t, "INSERT INTO big VALUES (2, ?)", value)}})
	if err != nil {
		t.Fatalf("request of %d bytes through a follower: %v", len(value), err)
	}
	res := mustQuery(t, NodeClient(t, leader), lvLin, resp.GetRaftIndex(), "SELECT count(*), sum(length(v)) FROM big")
	row := res.GetRows()[0].GetValues()
	if n, size := row[0].GetInteger(), row[1].GetInteger(); n != 2 || size != int64(2*len(value)) {
		t.Fatalf("leader has %d rows of %d bytes, want 2 of %d", n, size, 2*len(value))
	}
}

func TestConcurrentInsertsExactlyOnce(t *testing.T) {
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, client INTEGER, v TEXT)")
	const clients, total = 16, 1000
	var wg sync.WaitGroup
	var failed atomic.Int64
	var maxIndex atomic.Uint64
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			// Each client talks to all nodes, starting at a different one.
			eps := c.Endpoints()
			eps = append(eps[w%len(eps):], eps[:w%len(eps)]...)
			wc, err := client.New(client.Config{Endpoints: eps})
			if err != nil {
				failed.Add(1)
				return
			}
			defer wc.Close()
			for i := w; i < total; i += clients {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				resp, err := wc.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{
					stmt(t, "INSERT INTO t (id, client, v) VALUES (?, ?, ?)", i, w, fmt.Sprintf("row-%d", i)),
				}})
				cancel()
				if err != nil {
					t.Errorf("insert %d: %v", i, err)
					failed.Add(1)
					continue
				}
				for {
					cur := maxIndex.Load()
					if resp.GetRaftIndex() <= cur || maxIndex.CompareAndSwap(cur, resp.GetRaftIndex()) {
						break
					}
				}
			}
		}(w)
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d inserts failed", failed.Load())
	}
	for _, n := range c.Nodes {
		res := mustQuery(t, NodeClient(t, n), rpcpb.Consistency_CONSISTENCY_NONE, maxIndex.Load(),
			"SELECT count(*), count(DISTINCT id), min(id), max(id) FROM t")
		row := res.GetRows()[0].GetValues()
		got := fmt.Sprint(row[0].GetInteger(), row[1].GetInteger(), row[2].GetInteger(), row[3].GetInteger())
		if got != fmt.Sprint(total, total, 0, total-1) {
			t.Errorf("node %d: count, distinct, min, max = %s", n.ID, got)
		}
	}
}

func TestNonDeterministicFunctionsReplicateIdentically(t *testing.T) {
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, `CREATE TABLE d (id INTEGER PRIMARY KEY AUTOINCREMENT, r INTEGER, b BLOB, now TEXT,
		created TEXT DEFAULT CURRENT_TIMESTAMP, rnd INTEGER DEFAULT (random()), j REAL, u INTEGER)`)
	mustExec(t, cl, `CREATE TABLE audit (id INTEGER, at TEXT)`)
	mustExec(t, cl, `CREATE TRIGGER d_audit AFTER INSERT ON d BEGIN INSERT INTO audit VALUES (new.id, datetime('now')); END`)
	var last uint64
	for i := 0; i < 20; i++ {
		resp := mustExec(t, cl, `INSERT INTO d (r, b, now, j, u) VALUES (random(), randomblob(16), datetime('now'), julianday('now'), unixepoch())`)
		last = resp.GetRaftIndex()
	}
	var want string
	for _, n := range c.Nodes {
		nc := NodeClient(t, n)
		a := mustQuery(t, nc, rpcpb.Consistency_CONSISTENCY_NONE, last, "SELECT * FROM d ORDER BY id")
		b := mustQuery(t, nc, rpcpb.Consistency_CONSISTENCY_NONE, last, "SELECT * FROM audit ORDER BY id")
		got := rowsText(a) + rowsText(b)
		if len(a.GetRows()) != 20 || len(b.GetRows()) != 20 {
			t.Fatalf("node %d: %d rows, %d audit rows", n.ID, len(a.GetRows()), len(b.GetRows()))
		}
		if want == "" {
			want = got
		} else if got != want {
			t.Errorf("node %d differs:\n%s\nfirst node:\n%s", n.ID, got, want)
		}
	}
	// The fixed time is real time, not a constant.
	res := mustQuery(t, cl, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, 0, "SELECT now, created FROM d WHERE id = 1")
	now := res.GetRows()[0].GetValues()[0].GetText()
	ts, err := time.Parse("2006-01-02 15:04:05", now)
	if err != nil || time.Since(ts) > 5*time.Minute || time.Since(ts) < -time.Minute {
		t.Errorf("datetime('now') = %q (%v), not close to the real time", now, err)
	}
}

func TestLeaderKilledUnderLoadLosesNothingAcknowledged(t *testing.T) {
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")

	var mu sync.Mutex
	var acked []int64
	var next atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wc, err := client.New(client.Config{Endpoints: c.Endpoints()})
			if err != nil {
				return
			}
			defer wc.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := next.Add(1)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := wc.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(t, "INSERT INTO t VALUES (?, 'x')", id)}})
				cancel()
				if err == nil {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		}()
	}
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitFor(t, 30*time.Second, "first writes acknowledged", func() error {
		if ackedCount() < 50 {
			return fmt.Errorf("%d acknowledged", ackedCount())
		}
		return nil
	})
	old := c.WaitLeader(t)
	old.Kill(t)
	before := ackedCount()
	newLeader := c.WaitLeader(t)
	if newLeader == old {
		t.Fatalf("killed leader %d still reported as leader", old.ID)
	}
	waitFor(t, 30*time.Second, "writes acknowledged under the new leader", func() error {
		if ackedCount() < before+50 {
			return fmt.Errorf("%d acknowledged since the kill", ackedCount()-before)
		}
		return nil
	})
	close(stop)
	wg.Wait()

	old.Start(t)
	c.WaitLeader(t)
	final := mustExec(t, cl, "INSERT INTO t VALUES (-1, 'final')")
	mu.Lock()
	defer mu.Unlock()
	for _, n := range c.Nodes {
		res := mustQuery(t, NodeClient(t, n), rpcpb.Consistency_CONSISTENCY_NONE, final.GetRaftIndex(), "SELECT id FROM t")
		have := make(map[int64]bool, len(res.GetRows()))
		for _, row := range res.GetRows() {
			have[row.GetValues()[0].GetInteger()] = true
		}
		missing := 0
		for _, id := range acked {
			if !have[id] {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("node %d: %d of %d acknowledged inserts missing", n.ID, missing, len(acked))
		}
	}
	t.Logf("%d inserts acknowledged, %d attempted", len(acked), next.Load())
}

func TestRestartAllNodesKeepsData(t *testing.T) {
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	for i := 0; i < 50; i++ {
		mustExec(t, cl, "INSERT INTO t VALUES (?, ?)", i, fmt.Sprint("v", i))
	}
	for i, n := range c.Nodes {
		if i == 0 {
			n.Stop(t) // a clean stop
		} else {
			n.Kill(t)
		}
	}
	for _, n := range c.Nodes {
		n.Start(t)
	}
	c.WaitLeader(t)
	for _, n := range c.Nodes {
		res := mustQuery(t, NodeClient(t, n), rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, 0, "SELECT count(*), sum(id) FROM t")
		row := res.GetRows()[0].GetValues()
		if row[0].GetInteger() != 50 || row[1].GetInteger() != 49*50/2 {
			t.Errorf("node %d after restart: count %d sum %d", n.ID, row[0].GetInteger(), row[1].GetInteger())
		}
	}
	mustExec(t, cl, "INSERT INTO t VALUES (1000, 'after restart')")
}

func TestMinorityRefusesWritesAndLinearizableReads(t *testing.T) {
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	leader := c.WaitLeader(t)
	// Keep the old leader alone: it must step down (CheckQuorum).
	for _, f := range c.Followers(leader) {
		f.Kill(t)
	}
	lone := NodeClient(t, leader)
	check := func(name string, call func(ctx context.Context) error) {
		t.Helper()
		waitFor(t, 20*time.Second, name+" refused with Unavailable", func() error {
			// The client retries Unavailable reads on its endpoints until
			// its deadline; the answer must still be Unavailable, on time.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			start := time.Now()
			err := call(ctx)
			if status.Code(err) != codes.Unavailable {
				return fmt.Errorf("got %v after %s", err, time.Since(start))
			}
			if d := time.Since(start); d > 5*time.Second {
				return fmt.Errorf("took %s", d)
			}
			return nil
		})
	}
	check("write", func(ctx context.Context) error {
		_, err := lone.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(t, "INSERT INTO t VALUES (1)")}})
		return err
	})
	check("linearizable read", func(ctx context.Context) error {
		_, err := lone.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{stmt(t, "SELECT * FROM t")}, Consistency: rpcpb.Consistency_CONSISTENCY_LINEARIZABLE})
		return err
	})
	// A stale read at level none is still served.
	mustQuery(t, lone, rpcpb.Consistency_CONSISTENCY_NONE, 0, "SELECT count(*) FROM t")
}

func TestBadInputGetsClearErrors(t *testing.T) {
	c := StartCluster(t, 3)
	leader := c.WaitLeader(t)
	follower := c.Followers(leader)[0]
	mustExec(t, c.Client(t), "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	big := strings.Repeat("x", 5<<20)
	cases := []struct {
		name string
		call func(ctx context.Context, cl *client.Client) error
		code codes.Code
		msg  string
	}{
		{"invalid SQL", func(ctx context.Context, cl *client.Client) error {
			_, err := cl.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(t, "INSERT INTO")}})
			return err
		}, codes.InvalidArgument, "incomplete input"},
		{"syntax error", func(ctx context.Context, cl *client.Client) error {
			_, err := cl.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(t, "SELEC 1")}})
			return err
		}, codes.InvalidArgument, "syntax error"},
		{"no such table", func(ctx context.Context, cl *client.Client) error {
			_, err := cl.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{stmt(t, "SELECT * FROM nope")}})
			return err
		}, codes.InvalidArgument, "no such table"},
		{"wrong parameter count", func(ctx context.Context, cl *client.Client) error {
			_, err := cl.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(t, "INSERT INTO t VALUES (?, ?)", 1)}})
			return err
		}, codes.InvalidArgument, ""},
		{"query that writes", func(ctx context.Context, cl *client.Client) error {
			_, err := cl.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{stmt(t, "DELETE FROM t")}})
			return err
		}, codes.InvalidArgument, "Execute"},
		{"oversized request", func(ctx context.Context, cl *client.Client) error {
			_, err := cl.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(t, "INSERT INTO t VALUES (1, ?)", big)}})
			return err
		}, codes.ResourceExhausted, ""},
		{"unknown consistency level", func(ctx context.Context, cl *client.Client) error {
			_, err := cl.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{stmt(t, "SELECT 1")}, Consistency: 42})
			return err
		}, codes.InvalidArgument, "consistency"},
		{"attach", func(ctx context.Context, cl *client.Client) error {
			_, err := cl.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(t, "ATTACH DATABASE '/tmp/x.db' AS x")}})
			return err
		}, codes.PermissionDenied, ""},
		{"no statements", func(ctx context.Context, cl *client.Client) error {
			_, err := cl.Execute(ctx, &rpcpb.ExecuteRequest{})
			return err
		}, codes.InvalidArgument, ""},
	}
	for _, n := range []*Node{leader, follower} {
		cl := NodeClient(t, n)
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/node%d", tc.name, n.ID), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err := tc.call(ctx, cl)
				if status.Code(err) != tc.code {
					t.Fatalf("got %v, want code %v", err, tc.code)
				}
				if !strings.Contains(status.Convert(err).Message(), tc.msg) {
					t.Fatalf("message %q does not mention %q", status.Convert(err).Message(), tc.msg)
				}
			})
		}
	}
	// A node that is down: a clear Unavailable, quickly.
	down := freeAddr(t)
	dc := newClient(t, down)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := dc.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{stmt(t, "SELECT 1")}})
	if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
		t.Fatalf("down endpoint: %v", err)
	}
	// The cluster still serves.
	resp := mustExec(t, c.Client(t), "INSERT INTO t VALUES (7, 'still serving')")
	for _, n := range c.Nodes {
		res := mustQuery(t, NodeClient(t, n), rpcpb.Consistency_CONSISTENCY_NONE, resp.GetRaftIndex(), "SELECT count(*) FROM t")
		if got := res.GetRows()[0].GetValues()[0].GetInteger(); got != 1 {
			t.Errorf("node %d holds %d rows, want 1", n.ID, got)
		}
	}
}
