package cluster

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"rdb/command"
	"rdb/db"
)

// A single voter commits its own append when the Ready carrying it is
// advanced; the loop must handle the resulting Ready at once, not at the
// next tick. With a 500 ms tick, each write must finish well within one
// tick (before the fix every write waited for the next tick: 19 writes/s
// at the 50 ms default).
func TestSingleNodeWritesDoNotWaitForTicks(t *testing.T) {
	dir := t.TempDir()
	database, err := db.Open(context.Background(), db.Config{Path: filepath.Join(dir, "db.sqlite")})
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close()
	nw := newMemNetwork()
	node, err := New(Config{
		ID: 1, DataDir: dir, PeerAddr: "p1", ClientAddr: "c1",
		InitialCluster: map[uint64]string{1: "p1"},
		TickInterval:   500 * time.Millisecond, ElectionTicks: 2, HeartbeatTicks: 1,
		Logger: testLogger(),
	}, database, &memTransport{nw: nw, self: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !node.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leader within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	exec := func(sql string) error {
		wctx, wcancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		defer wcancel()
		s, err := command.NewStatement(sql)
		if err != nil {
			return err
		}
		_, err = node.Execute(wctx, []*command.Statement{s}, false)
		return err
	}
	if err := exec("CREATE TABLE t (id INTEGER PRIMARY KEY)"); err != nil {
		t.Fatalf("create: %v", err)
	}
	for i := 0; i < 10; i++ {
		if err := exec("INSERT INTO t DEFAULT VALUES"); err != nil {
			t.Fatalf("insert %d did not finish within 400 ms (ticks are 500 ms): %v", i, err)
		}
	}
}
