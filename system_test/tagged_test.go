package system_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// Binaries built with build tags (failpoints, broken builds), without the
// race detector, once per tag set.
var (
	taggedMu   sync.Mutex
	taggedBins = map[string]string{}
)

// taggedRDB builds rdb with -tags tags (no race detector) once and
// returns its path.
func taggedRDB(t testing.TB, tags string) string {
	t.Helper()
	taggedMu.Lock()
	defer taggedMu.Unlock()
	if bin, ok := taggedBins[tags]; ok {
		return bin
	}
	bin := filepath.Join(filepath.Dir(rdbBin), "rdb-"+strings.ReplaceAll(tags, ",", "-"))
	start := time.Now()
	out, err := exec.Command("go", "build", "-tags", tags, "-o", bin, "rdb/cmd/rdb").CombinedOutput()
	if err != nil {
		t.Fatalf("build rdb -tags %s: %v\n%s", tags, err, out)
	}
	t.Logf("built rdb -tags %s in %s", tags, time.Since(start).Round(time.Millisecond))
	taggedBins[tags] = bin
	return bin
}

// useRDB makes the nodes started by this test run bin.
func useRDB(t testing.TB, bin string) {
	saved := rdbBin
	rdbBin = bin
	t.Cleanup(func() { rdbBin = saved })
}

// brokenRun reports whether RDB_BROKEN=1 asks the broken-build tests to
// run their deliberately broken build (and to demonstrate the breakage)
// instead of the normal one (and to find none).
func brokenRun() bool { return os.Getenv("RDB_BROKEN") == "1" }

// FailpointFile is where a failpoints build of the node reads its armed
// failpoints (RDB_FAILPOINTS_FILE), re-read at every hit.
func (n *Node) FailpointFile() string { return n.DataDir + ".failpoints" }

// ArmFailpoints replaces the node's armed failpoints by spec (see
// internal/failpoint; "" disarms them). It takes effect at the next hit,
// in a running process too.
func (n *Node) ArmFailpoints(t testing.TB, spec string) {
	t.Helper()
	tmp := n.FailpointFile() + ".tmp"
	if err := os.WriteFile(tmp, []byte(spec), 0o644); err != nil {
		t.Fatalf("arm failpoints: %v", err)
	}
	if err := os.Rename(tmp, n.FailpointFile()); err != nil {
		t.Fatalf("arm failpoints: %v", err)
	}
}

// ackWriter inserts rows with increasing ids into t until stopped and
// remembers which inserts were acknowledged.
type ackWriter struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex // guards acked and next
	acked []int64
	next  int64
}

// startAckWriter starts writing ids from next on through every endpoint.
func startAckWriter(t testing.TB, c *Cluster, next int64) *ackWriter {
	t.Helper()
	w := &ackWriter{stop: make(chan struct{}), next: next}
	cl, err := client.New(client.Config{Endpoints: c.Endpoints(), DialTimeout: time.Second})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer cl.Close()
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			w.mu.Lock()
			id := w.next
			w.next++
			w.mu.Unlock()
			s, err := command.NewStatement("INSERT INTO t(id) VALUES (?)", id)
			if err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err = cl.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{s}})
			cancel()
			if err == nil {
				w.mu.Lock()
				w.acked = append(w.acked, id)
				w.mu.Unlock()
			} else {
				// Outcome unknown or refused: no ack, no claim. Don't spin.
				select {
				case <-w.stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
	}()
	return w
}

// count returns how many writes were acknowledged so far.
func (w *ackWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitAcks waits until n more writes than now have been acknowledged.
func (w *ackWriter) waitAcks(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	want := w.count() + n
	waitFor(t, timeout, fmt.Sprintf("%d more acknowledged writes", n), func() error {
		if got := w.count(); got < want {
			return fmt.Errorf("%d of %d", got, want)
		}
		return nil
	})
}

// finish stops the writer and returns the acknowledged ids and the next
// unused id.
func (w *ackWriter) finish() ([]int64, int64) {
	close(w.stop)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked, w.next
}

// checkAcked fails the test unless every id in acked is in table t,
// read linearizably.
func checkAcked(t testing.TB, cl *client.Client, acked []int64) {
	t.Helper()
	res := mustQuery(t, cl, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, 0, "SELECT id FROM t")
	have := make(map[int64]bool, len(res.GetRows()))
	for _, r := range res.GetRows() {
		have[r.GetValues()[0].GetInteger()] = true
	}
	missing := 0
	for _, id := range acked {
		if !have[id] {
			if missing < 10 {
				t.Errorf("acknowledged write %d is missing", id)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged writes missing", missing, len(acked))
	}
}

// waitCrash waits for n to exit on its own at failpoint name.
func waitCrash(t testing.TB, n *Node, name string, timeout time.Duration) {
	t.Helper()
	code := n.WaitExit(t, timeout)
	if !strings.Contains(n.LogText(), "failpoint "+name+":") {
		t.Fatalf("node %d exited (code %d) but not at failpoint %s", n.ID, code, name)
	}
	t.Logf("node %d crashed at %s (exit code %d)", n.ID, name, code)
}
