package db

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	"rdb/command"
)

// TestReaders_SnapshotKeptUntilWrite: a query reuses the read transaction
// of the one before while nothing is written, and a write makes the next
// query begin a new one that sees it.
func TestReaders_SnapshotKeptUntilWrite(t *testing.T) {
	d := openTest(t)
	mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE t(id INTEGER PRIMARY KEY)"), stmt(t, "INSERT INTO t VALUES(1)")))
	mustQuery(t, d, "SELECT count(*) FROM t")
	before := d.ReadSnapshots()
	for range 10 {
		if n := mustQuery(t, d, "SELECT count(*) FROM t").Rows[0].Values[0].GetInteger(); n != 1 {
			t.Fatalf("count %d, want 1", n)
		}
	}
	after := d.ReadSnapshots()
	if after.Reused-before.Reused != 10 || after.Begun != before.Begun {
		t.Fatalf("10 queries without writes: %+v -> %+v, want 10 reused and none begun", before, after)
	}
	mustApply(t, d, 2, execCmd(false, stmt(t, "INSERT INTO t VALUES(2)")))
	if n := mustQuery(t, d, "SELECT count(*) FROM t").Rows[0].Values[0].GetInteger(); n != 2 {
		t.Fatalf("count %d after the write, want 2", n)
	}
	if got := d.ReadSnapshots(); got.Begun == after.Begun {
		t.Fatalf("the query after a write began no transaction: %+v", got)
	}
}

// TestReaders_QueriesSeeEveryReturnedApply: while one goroutine applies
// entries, queries started after an Apply returned see its row, whichever
// reader (and kept snapshot) serves them.
func TestReaders_QueriesSeeEveryReturnedApply(t *testing.T) {
	d := openTest(t)
	mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE t(id INTEGER PRIMARY KEY)")))
	const applies = 1500
	var returned atomic.Int64 // highest id whose Apply returned
	var queries atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				want := returned.Load()
				res, err := d.Query(ctx, []*command.Statement{{Sql: "SELECT coalesce(max(id), 0) FROM t"}})
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				if got := res[0].Rows[0].Values[0].GetInteger(); got < want {
					errs <- fmt.Errorf("query saw max id %d after the apply of %d returned", got, want)
					return
				}
				queries.Add(1)
			}
		})
	}
	for i := int64(1); i <= applies; i++ {
		mustApply(t, d, uint64(i+1), execCmd(false, stmt(t, "INSERT INTO t VALUES(?)", i)))
		returned.Store(i)
		if i%10 == 0 {
			// Let the readers query a few times without writes, so that
			// kept snapshots are reused too.
			for q := queries.Load(); queries.Load() < q+32 && len(errs) == 0; {
				runtime.Gosched()
			}
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s := d.ReadSnapshots(); s.Reused == 0 {
		t.Fatalf("no snapshot was reused: %+v", s)
	}
}

// TestReaders_IdleSnapshotsReleased: readers left idle with kept snapshots
// do not hold back the WAL while writes continue.
func TestReaders_IdleSnapshotsReleased(t *testing.T) {
	d := openTest(t)
	mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE b(v BLOB)")))
	// Four concurrent queries leave the four readers with open snapshots.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if _, err := d.Query(context.Background(), []*command.Statement{{Sql: "SELECT count(*) FROM b"}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if d.keptOpen.Load() == 0 {
		t.Fatal("no reader kept a snapshot")
	}
	// 40 MB written in 80 applies.
	for i := range 80 {
		mustApply(t, d, uint64(i+2), execCmd(false, stmt(t, "INSERT INTO b VALUES(randomblob(500000))")))
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.keptOpen.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d readers still keep a snapshot 10 s after the writes: %+v", d.keptOpen.Load(), d.ReadSnapshots())
		}
		time.Sleep(5 * time.Millisecond)
	}
	fi, err := os.Stat(d.cfg.Path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	// The WAL starts over after each checkpoint (1,000 pages) once no
	// reader needs it; readers pinning it would have let it grow past
	// 40 MB.
	if fi.Size() > 16<<20 {
		t.Fatalf("WAL is %d bytes after 40 MB of writes", fi.Size())
	}
	if s := d.ReadSnapshots(); s.Released == 0 {
		t.Fatalf("no snapshot released: %+v", s)
	}
}

// TestReaders_ShortDeadlinesStopRunawayQueries: runaway queries with
// deadlines of a few milliseconds all end, while writes go on. An
// interrupt that lands before the statement starts is forgotten by
// SQLite; with a single interrupt per query and no progress-handler poll
// some of these queries ran for ever (and the test hangs until go test's
// timeout). Each of the two means alone (the poll, the watchdog's
// repeated interrupts) passes it.
func TestReaders_ShortDeadlinesStopRunawayQueries(t *testing.T) {
	d := openTest(t)
	mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)")))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	const runaway = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c) SELECT count(*) FROM c"
	var wg sync.WaitGroup
	var slow, runs atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				sql := "SELECT count(*) FROM t"
				if (g+i)%3 == 0 {
					sql = runaway
				}
				qctx, qcancel := context.WithTimeout(ctx, time.Duration(1+(g+i)%5)*time.Millisecond)
				start := time.Now()
				_, err := d.Query(qctx, []*command.Statement{{Sql: sql}})
				qcancel()
				if sql == runaway && err == nil {
					t.Error("a runaway query returned without error")
					return
				}
				if time.Since(start) > 5*time.Second {
					slow.Add(1)
				}
				runs.Add(1)
			}
		})
	}
	wg.Go(func() {
		for i := uint64(2); ctx.Err() == nil; i++ {
			if _, err := d.Apply(context.Background(), Entry{Index: i, Command: execCmd(false, stmt(t, "INSERT INTO t(v) VALUES(1)"))}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	if slow.Load() > 0 {
		t.Fatalf("%d of %d queries took over 5 s with deadlines of 1-5 ms", slow.Load(), runs.Load())
	}
}

// TestWatchdog_InterruptsEndedQueries: the watchdog interrupts the
// connection of a query whose context has ended, also after it went to
// sleep for want of running queries (the query's start wakes it), and
// counts each such query once.
func TestWatchdog_InterruptsEndedQueries(t *testing.T) {
	d := openTest(t)
	r, err := d.getReader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer d.putReader(r)
	tls := libc.NewTLS()
	defer tls.Close()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 20 s", what)
			}
		}
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for round := uint64(1); round <= 2; round++ {
		if round == 2 {
			waitFor("sleep of the watchdog", d.watch.asleep.Load)
		}
		r.setQuery(ended)
		d.watch.started()
		waitFor("interrupt", func() bool { return sqlite3.Xsqlite3_is_interrupted(tls, r.c.db) != 0 })
		waitFor("count", func() bool { return d.InterruptedReads() == round })
		r.setQuery(nil)
		// The flag is cleared when the connection's next statement
		// (here the BEGIN of a read transaction) starts.
		if err := d.keep(r); err != nil {
			t.Fatal(err)
		}
		if sqlite3.Xsqlite3_is_interrupted(tls, r.c.db) != 0 {
			t.Fatal("the interrupt outlived the query")
		}
		if err := d.endRead(r); err != nil {
			t.Fatal(err)
		}
	}
	// A running query whose context has not ended is counted as running
	// and left alone (a look of the watchdog's, made here).
	live, stop := context.WithCancel(context.Background())
	defer stop()
	r.setQuery(live)
	if running := d.watch.look(tls); running != 1 {
		t.Fatalf("the watchdog saw %d running queries, want 1", running)
	}
	if sqlite3.Xsqlite3_is_interrupted(tls, r.c.db) != 0 || d.InterruptedReads() != 2 {
		t.Fatal("the watchdog interrupted a live query")
	}
	r.setQuery(nil)
}

// TestColumns_FollowSchemaChanges: a cached statement that a schema change
// made SQLite prepare again reports its new columns, in names and in row
// values (before 35b879c `SELECT *` after ADD COLUMN kept returning the
// old columns alone until the statement left the cache); results share
// names and types only while they stay the same, and earlier results keep
// theirs.
func TestColumns_FollowSchemaChanges(t *testing.T) {
	d, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "db.sqlite"), MaxReaders: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	names := func(r *command.Result) string { return fmt.Sprint(r.GetColumns(), r.GetTypes()) }
	mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE t(a INTEGER)"), stmt(t, "INSERT INTO t VALUES(1)")))
	first := mustQuery(t, d, "SELECT * FROM t")
	again := mustQuery(t, d, "SELECT * FROM t")
	if names(first) != "[a] [INTEGER]" || names(again) != names(first) {
		t.Fatalf("columns %s then %s, want [a] [INTEGER]", names(first), names(again))
	}
	mustApply(t, d, 2, execCmd(false, stmt(t, "ALTER TABLE t ADD COLUMN b TEXT")))
	added := mustQuery(t, d, "SELECT * FROM t")
	if got := names(added); got != "[a b] [INTEGER TEXT]" || len(added.GetRows()[0].GetValues()) != 2 {
		t.Fatalf("after ADD COLUMN: %s with a row of %d values, want [a b] [INTEGER TEXT] and 2", got, len(added.GetRows()[0].GetValues()))
	}
	mustApply(t, d, 3, execCmd(false, stmt(t, "DROP TABLE t"), stmt(t, "CREATE TABLE t(a BLOB, c REAL)")))
	if got := names(mustQuery(t, d, "SELECT * FROM t")); got != "[a c] [BLOB REAL]" {
		t.Fatalf("after the table was made again: %s, want [a c] [BLOB REAL]", got)
	}
	if names(first) != "[a] [INTEGER]" {
		t.Fatalf("an earlier result's columns changed to %s", names(first))
	}
}
