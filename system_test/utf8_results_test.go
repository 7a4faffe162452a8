package system_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"rdb/command"
	"rdb/rpc/rpcpb"
)

// TestTextThatIsNotUTF8: SQLite can hold TEXT that is not UTF-8 (a BLOB
// cast to TEXT), which the API cannot carry (protobuf strings are UTF-8).
// Reading it fails that call alone with a clear error, while calls sharing
// its Pipeline stream succeed; a write returning it says it was applied;
// the value reads back as a BLOB.
func TestTextThatIsNotUTF8(t *testing.T) {
	c := StartCluster(t, 3)
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE u (id INTEGER PRIMARY KEY, v TEXT)")
	mustExec(t, cl, "INSERT INTO u VALUES (1, CAST(x'ff41' AS TEXT)), (2, 'fine')")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	query := func(sql string) (*rpcpb.QueryResponse, error) {
		return cl.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{stmt(t, sql)}, Consistency: rpcpb.Consistency_CONSISTENCY_LINEARIZABLE})
	}
	// Good reads run on the same client (one Pipeline stream per node)
	// while the bad ones fail.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sql := "SELECT v FROM u WHERE id = 2"
			if i%5 == 0 {
				sql = "SELECT v FROM u WHERE id = 1"
			}
			resp, err := query(sql)
			switch {
			case i%5 == 0 && (status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "UTF-8")):
				errs <- fmt.Errorf("read %d of TEXT that is not UTF-8: want InvalidArgument naming UTF-8, got %v", i, err)
			case i%5 != 0 && err != nil:
				errs <- err
			case i%5 != 0 && resp.GetResults()[0].GetRows()[0].GetValues()[0].GetText() != "fine":
				errs <- status.Errorf(codes.Unknown, "read %v", resp)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("read: %v", err)
	}

	// A write whose results hold such TEXT took effect, and says so.
	_, err := cl.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(t, "INSERT INTO u VALUES (3, CAST(x'fe' AS TEXT)) RETURNING v")}})
	if status.Code(err) != codes.Internal || !strings.Contains(status.Convert(err).Message(), "the write was applied") {
		t.Fatalf("write returning TEXT that is not UTF-8: %v", err)
	}
	res := mustQuery(t, cl, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, 0, "SELECT CAST(v AS BLOB) FROM u WHERE id IN (1, 3) ORDER BY id")
	if rows := res.GetRows(); len(rows) != 2 || string(rows[0].GetValues()[0].GetBlob()) != "\xffA" || string(rows[1].GetValues()[0].GetBlob()) != "\xfe" {
		t.Fatalf("values as BLOB: %v", res)
	}
}
