package cluster

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"rdb/db"
)

// TestNodeStopsWhenItsLogWasLost: a node that keeps receiving heartbeats
// claiming a commit beyond its log lost entries it had acknowledged and
// can never catch up (raft does not re-send them); it stops with
// ErrLogLost instead of staying up as a follower that never catches up
// (chaos finding 6).
func TestNodeStopsWhenItsLogWasLost(t *testing.T) {
	dir := t.TempDir()
	database, err := db.Open(context.Background(), db.Config{Path: filepath.Join(dir, "db.sqlite")})
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close()
	nw := newMemNetwork()
	node, err := New(Config{
		ID: 1, DataDir: dir, PeerAddr: "p1", ClientAddr: "c1",
		InitialCluster: map[uint64]string{1: "p1", 2: "p2", 3: "p3"},
		TickInterval:   10 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1,
		Logger: testLogger(),
	}, database, &memTransport{nw: nw, self: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	hb := func() *raftpb.Message {
		return &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(5)), Commit: new(uint64(1000))}
	}
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if !errors.Is(err, ErrLogLost) {
				t.Fatalf("run ended with %v, want ErrLogLost", err)
			}
			return
		case <-tick.C:
			select {
			case node.recvc <- hb():
			default:
			}
		case <-deadline:
			t.Fatal("node still running after 30 s of heartbeats beyond its log")
		}
	}
}
