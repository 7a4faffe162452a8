package system_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// plainBin is rdb built without the race detector, for measuring memory
// (the race detector multiplies a process's memory use).
var (
	plainOnce sync.Once
	plainBin  string
	plainErr  error
)

func plainRDB(t testing.TB) string {
	t.Helper()
	plainOnce.Do(func() {
		plainBin = filepath.Join(filepath.Dir(rdbBin), "rdb-plain")
		out, err := exec.Command("go", "build", "-o", plainBin, "rdb/cmd/rdb").CombinedOutput()
		if err != nil {
			plainErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if plainErr != nil {
		t.Fatal(plainErr)
	}
	return plainBin
}

// usePlainRDB makes the rest of the test start servers built without
// -race (what is measured or stressed is the server, not the race
// detector); the race-built binary is back when the test ends.
func usePlainRDB(t testing.TB) {
	t.Helper()
	saved := rdbBin
	rdbBin = plainRDB(t)
	t.Cleanup(func() { rdbBin = saved })
}

// TestNewMemberCatchesUpOnLargeDatabase adds a fourth node to a cluster
// holding RDB_CATCHUP_MB megabytes (default 100) while writes continue,
// and checks that it catches up with bounded memory.
func TestNewMemberCatchesUpOnLargeDatabase(t *testing.T) {
	mb := 100
	if v := os.Getenv("RDB_CATCHUP_MB"); v != "" {
		mb, _ = strconv.Atoi(v)
	}
	// Real processes built without -race: memory is what is measured.
	usePlainRDB(t)

	c := StartCluster(t, 3, "--snapshot-entries", "1000")
	cl := c.Client(t)
	mustExec(t, cl, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	const valueSize = 1000
	rows := mb << 20 / valueSize
	loadStart := time.Now()
	last := insertRows(t, cl, 0, rows, 1000, valueSize)
	t.Logf("loaded %d rows (%d MB of values) in %s", rows, mb, time.Since(loadStart).Round(time.Millisecond))
	leader := c.WaitLeader(t)

	// A steady writer keeps going while the new node catches up.
	var writes atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	endpoints := c.Endpoints() // c.Nodes grows below
	go func() {
		defer wg.Done()
		wc, err := client.New(client.Config{Endpoints: endpoints})
		if err != nil {
			return
		}
		defer wc.Close()
		for i := rows; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := wc.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{stmt(t, "INSERT INTO t VALUES (?, 'during catch-up')", i)}})
			cancel()
			if err == nil {
				writes.Add(1)
			}
		}
	}()

	n4 := &Node{
		ID:         4,
		ClientAddr: freeAddr(t),
		PeerAddr:   freeAddr(t),
		DataDir:    filepath.Join(t.TempDir(), "node4"),
		logPath:    filepath.Join(t.TempDir(), "node4.log"),
		Args:       []string{"--join", strings.Join(c.Endpoints(), ",")},
	}
	start := time.Now()
	n4.Start(t)
	c.Nodes = append(c.Nodes, n4)
	var peak int64
	waitFor(t, 5*time.Minute, "new node catches up", func() error {
		if rss := n4.PeakRSS(); rss > peak {
			peak = rss
		}
		st, err := nodeStatus(t, n4)
		if err != nil {
			return err
		}
		if st.GetAppliedIndex() < last {
			return fmt.Errorf("at %d of %d", st.GetAppliedIndex(), last)
		}
		return nil
	})
	caughtUp := time.Since(start)
	if rss := n4.PeakRSS(); rss > peak {
		peak = rss
	}
	close(stop)
	wg.Wait()
	leaderPeak := leader.PeakRSS()
	final := mustExec(t, cl, "INSERT INTO t VALUES (-1, 'final')")
	c.waitConverged(t, final.GetRaftIndex(), 2*time.Minute)

	dbSize := int64(0)
	if fi, err := os.Stat(filepath.Join(leader.DataDir, "db.sqlite")); err == nil {
		dbSize = fi.Size()
	}
	t.Logf("database %d MB: new node caught up in %s with peak RSS %d MB (leader peak %d MB); %d writes during catch-up",
		dbSize>>20, caughtUp.Round(time.Millisecond), peak>>20, leaderPeak>>20, writes.Load())
	if writes.Load() == 0 {
		t.Errorf("no write succeeded while the new node caught up")
	}
	// Generous bound: well under the database size, whatever its size.
	if limit := int64(150<<20) + dbSize/4; peak > limit {
		t.Errorf("new node peak RSS %d MB over the bound %d MB", peak>>20, limit>>20)
	}
	// The leader too: the log it keeps in memory is bounded by the
	// compaction settings, not by the data written.
	if limit := int64(200<<20) + dbSize/4; leaderPeak > limit {
		t.Errorf("leader peak RSS %d MB over the bound %d MB", leaderPeak>>20, limit>>20)
	}
}
