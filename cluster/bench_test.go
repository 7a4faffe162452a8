package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// BenchmarkCluster_Execute measures replicated single-row inserts through
// the whole node (Ready loop, WAL with fsync, SQLite apply) of an
// in-process 3-node cluster with an in-memory transport. Run with
// -cpu and -benchtime; parallelism comes from b.RunParallel.
func BenchmarkCluster_Execute(b *testing.B) {
	c := newTestCluster(b, 3)
	leader := c.waitLeader()
	exec(b, leader, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	stmt := st(b, "INSERT INTO t (v) VALUES (?)", string(make([]byte, 100)))
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := leader.Execute(context.Background(), stmt, false); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCluster_ReadIndex measures linearizable read barriers from a
// follower; concurrent calls share ReadIndex rounds.
func BenchmarkCluster_ReadIndex(b *testing.B) {
	c := newTestCluster(b, 3)
	leader := c.waitLeader()
	f := c.follower(leader.ID())
	c.waitLeader()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.ReadIndex(context.Background()); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLogStore_Save measures appending one 200-byte entry with its
// HardState to the WAL, fsync included, per operation.
func BenchmarkLogStore_Save(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ls, err := openLogStore(filepath.Join(b.TempDir(), "n"), 1, 0, 0, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer ls.close()
			data := make([]byte, 200)
			idx := uint64(0)
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				ents := make([]*raftpb.Entry, batch)
				for j := range ents {
					idx++
					ents[j] = &raftpb.Entry{Index: new(idx), Term: new(uint64(1)), Data: data}
				}
				if err := ls.save(&raftpb.HardState{Term: new(uint64(1)), Commit: new(idx)}, ents); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
