package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMetrics_ReadRoundsAndCarefulRedos: concurrent linearizable reads are
// counted as ReadIndex rounds (at least one, at most one per read), and a
// failed write statement makes every node count one careful redo.
func TestMetrics_ReadRoundsAndCarefulRedos(t *testing.T) {
	c := newTestCluster(t, 3, func(c *testCluster) { c.registries = map[uint64]*prometheus.Registry{} })
	leader := c.waitLeader()
	exec(t, leader, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	exec(t, leader, "INSERT INTO t VALUES (1, 'a')")

	follower := c.follower(leader.ID())
	reg := c.registries[follower.ID()]
	before := counter(t, reg, "rdb_cluster_read_index_rounds_total")
	const reads = 20
	errc := make(chan error, reads)
	for range reads {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := follower.ReadIndex(ctx)
			errc <- err
		}()
	}
	for range reads {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if n := counter(t, reg, "rdb_cluster_read_index_rounds_total") - before; n < 1 || n > reads {
		t.Fatalf("%v rounds for %d reads", n, reads)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wr, err := leader.Execute(ctx, st(t, "INSERT OR FAIL INTO t VALUES (2, 'b'), (1, 'dup')"), false)
	if err != nil {
		t.Fatal(err)
	}
	if e := wr.Results[0].GetError(); !strings.Contains(e, "UNIQUE") {
		t.Fatalf("got result %v, want a UNIQUE constraint error", wr.Results[0])
	}
	for id, r := range c.registries {
		deadline := time.Now().Add(10 * time.Second)
		for counter(t, r, "rdb_cluster_apply_careful_redos_total") != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("node %d: careful redos %v, want 1", id, counter(t, r, "rdb_cluster_apply_careful_redos_total"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if n := linearCount(t, follower); n != 1 {
		t.Fatalf("follower has %d rows, want 1: the failed statement's first row stayed", n)
	}
}

// counter returns the value of the counter name gathered from reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
