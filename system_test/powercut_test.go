package system_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
	"rdb/system_test/lazyfs"
)

// TestPowerCut is fault F8 of the reliability notes: SIGKILL plus the
// loss of every write not yet fsynced, on one node. The node's data
// directory is a lazyfs mount (package lazyfs), whose raft WAL and
// snapshot files keep written data in memory until fsync; the cut kills
// the node and drops that data, then starts it again on the same mount.
//
// Odd cuts hold the node's fsyncs (lazyfs.FS.HoldSyncs) until it has
// unsynced log data and cut then, so that data is really lost; even cuts
// come at a random moment.
//
// Sub-tests: a follower of a 3-node cluster, the leader of a 3-node
// cluster (leadership is moved to the lazy node before each cut), and the
// only node of a 1-node cluster. A writer inserts rows with unique ids
// and records every acknowledged one. After each cut the test checks that
// the node restarts and that every acknowledged write is present (in the
// 1-node cluster this is the durability check proper: no other copy
// exists); at the end, that the nodes converge to the same applied index
// and hash and that PRAGMA integrity_check passes on every node.
//
// RDB_POWERCUT_CUTS sets the cuts per sub-test (default 3),
// RDB_POWERCUT_SEED the seed of the cut moments (default: the clock; it
// is logged). Skipped when FUSE is not available.
func TestPowerCut(t *testing.T) {
	if testing.Short() {
		t.Skip("system test: skipped with -short")
	}
	cuts := 3
	if v := os.Getenv("RDB_POWERCUT_CUTS"); v != "" {
		cuts, _ = strconv.Atoi(v)
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("RDB_POWERCUT_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (RDB_POWERCUT_SEED), %d cuts per sub-test", seed, cuts)
	// Built without -race: the test is about the disk, and the race
	// detector slows the nodes down several times.
	usePlainRDB(t)

	for i, tc := range []struct {
		name   string
		nodes  int
		lazy   uint64 // the node on lazyfs
		leader bool   // cut the lazy node as leader (else as follower)
		sqlite bool   // the SQLite database and its WAL file are lazy too
	}{
		{name: "follower", nodes: 3, lazy: 3},
		{name: "leader", nodes: 3, lazy: 1, leader: true},
		{name: "single", nodes: 1, lazy: 1, leader: true},
		{name: "leader-sqlite", nodes: 3, lazy: 1, leader: true, sqlite: true},
		{name: "single-sqlite", nodes: 1, lazy: 1, leader: true, sqlite: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			// Frequent snapshots, so that snapshot files and WAL
			// snapshot records are written (and cut) too.
			c := newCluster(t, tc.nodes, "--snapshot-entries", "100")
			node := c.Node(tc.lazy)
			var opts []lazyfs.Option
			if tc.sqlite {
				opts = append(opts, lazyfs.WithLazyRule(lazyfs.IsLazyWithSQLite))
			}
			lfs := mountLazy(t, node, opts...)
			for _, n := range c.Nodes {
				n.Start(t)
			}
			c.WaitLeader(t)
			cl := c.Client(t)
			mustExec(t, cl, "CREATE TABLE p (id INTEGER PRIMARY KEY, v TEXT)")
			modes := []string{cutInFsync, cutAtRandom}
			valueSize := 16
			if tc.sqlite {
				modes = append(modes, cutInDBSync)
				// Large rows, so that SQLite checkpoints (every 1,000
				// WAL pages, about 120 rows) within seconds.
				valueSize = 32 << 10
			}
			w := startPowerCutWriter(t, cl, valueSize)

			for k := 1; k <= cuts; k++ {
				if tc.nodes > 1 {
					// Writes pause meanwhile: with 32 KiB rows a node
					// restarted on lazyfs can trail the other two for
					// good, and raft transfers leadership only to a
					// caught-up node (CI, 2026-11-26).
					func() {
						w.pause()
						defer w.resume() // also when placeLeader fails the test
						placeLeader(t, c, node, tc.leader)
					}()
				}
				// Cut at a random moment after some writes have gone
				// through since the last cut.
				before := time.Now()
				w.waitAcks(t, w.count()+20, 30*time.Second)
				writing := time.Since(before)
				how := modes[(k-1)%len(modes)]
				before = time.Now()
				switch how {
				case cutInFsync:
					// The node has written log data and waits for an
					// fsync that never completes. A random moment alone
					// rarely finds unsynced data: rdb fsyncs every Ready.
					lfs.HoldSyncs(nil)
					waitFor(t, 20*time.Second, "unsynced data to cut", func() error {
						if lfs.Pending() == 0 || lfs.HeldSyncs() == 0 {
							return errors.New("no fsync of unsynced data held")
						}
						return nil
					})
				case cutInDBSync:
					// SQLite writes db.sqlite only when it checkpoints
					// WAL frames into it. Hold the database file's fsyncs
					// and cut at one that finds checkpointed pages not
					// yet synced: with synchronous=OFF that is db.Sync,
					// after it has fsynced the reused -wal file.
					isDB := func(rel string) bool { return rel == "db.sqlite" }
					lfs.HoldSyncs(isDB)
					waitFor(t, 60*time.Second, "an fsync of db.sqlite with checkpointed pages", func() error {
						if lfs.HeldSyncs() == 0 {
							return errors.New("no fsync of db.sqlite held")
						}
						if lfs.PendingOf("db.sqlite") == 0 {
							// No checkpoint since the last fsync: let
							// this one go and hold the next.
							lfs.ReleaseSyncs()
							lfs.HoldSyncs(isDB)
							return errors.New("no checkpoint since the last fsync of db.sqlite")
						}
						return nil
					})
				}
				waited := time.Since(before)
				time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
				node.Kill(t)
				acked := w.acked()
				dropped := lfs.DropUnsynced()
				lfs.ReleaseSyncs()
				start := time.Now()
				node.Start(t)
				waitFor(t, 60*time.Second, fmt.Sprintf("cut %d (%s): node %d serves again", k, how, node.ID), func() error {
					if node.exited() {
						t.Fatalf("cut %d (%s): node %d exited after restart (seed %d)", k, how, node.ID, seed)
					}
					_, err := nodeStatus(t, node)
					return err
				})
				c.WaitLeader(t)
				missing := missingWrites(t, cl, acked)
				t.Logf("cut %d %s: node %d killed with %d acknowledged writes (20 more took %s, the moment %s), %d unsynced bytes dropped; serving again after %s",
					k, how, node.ID, len(acked), writing.Round(time.Millisecond), waited.Round(time.Millisecond), dropped, time.Since(start).Round(time.Millisecond))
				if len(missing) > 0 {
					t.Fatalf("cut %d: %d acknowledged writes lost, ids %v (seed %d)", k, len(missing), head(missing, 20), seed)
				}
			}

			w.stop()
			endStart := time.Now()
			final := mustExec(t, cl, "INSERT INTO p (id, v) VALUES (?, 'final')", -1)
			c.waitConverged(t, final.GetRaftIndex(), 60*time.Second)
			t.Logf("final write and convergence took %s", time.Since(endStart).Round(time.Millisecond))
			acked := w.acked()
			for _, n := range c.Nodes {
				nc := NodeClient(t, n)
				if got := mustQuery(t, nc, rpcpb.Consistency_CONSISTENCY_NONE, final.GetRaftIndex(), "PRAGMA integrity_check").GetRows(); len(got) != 1 || got[0].GetValues()[0].GetText() != "ok" {
					t.Errorf("node %d: integrity_check: %v", n.ID, got)
				}
				have := idsOn(t, nc, rpcpb.Consistency_CONSISTENCY_NONE, final.GetRaftIndex())
				var lost []int64
				for id := range acked {
					if !have[id] {
						lost = append(lost, id)
					}
				}
				if len(lost) > 0 {
					slices.Sort(lost)
					t.Errorf("node %d: %d acknowledged writes missing at the end, ids %v (seed %d)", n.ID, len(lost), head(lost, 20), seed)
				}
			}
			t.Logf("%d cuts, %d acknowledged writes (%d attempted), all present on every node", cuts, len(acked), w.attempted())
		})
	}
}

// exited reports whether the node's process, started and not yet killed,
// has exited on its own.
func (n *Node) exited() bool {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// Moments of a power cut.
const (
	cutInFsync  = "inside an fsync"
	cutAtRandom = "at a random moment"
	cutInDBSync = "at an fsync of db.sqlite after a checkpoint"
)

// mountLazy mounts a lazyfs over a fresh backing directory at n's data
// directory. At cleanup the node is killed first, then the mount removed.
// It skips the test when FUSE is not available.
func mountLazy(t testing.TB, n *Node, opts ...lazyfs.Option) *lazyfs.FS {
	t.Helper()
	backing := t.TempDir()
	if err := os.MkdirAll(n.DataDir, 0o750); err != nil {
		t.Fatalf("data dir: %v", err)
	}
	l, err := lazyfs.Mount(backing, n.DataDir, opts...)
	if errors.Is(err, lazyfs.ErrNoFUSE) {
		t.Skipf("power-cut test needs a FUSE mount (/dev/fuse and mount permission): %v", err)
	}
	if err != nil {
		t.Fatalf("mount lazyfs: %v", err)
	}
	// Registered after TempDir and the cluster's cleanup, so it runs
	// before both: the process must be gone before the unmount.
	t.Cleanup(func() {
		n.Kill(t)
		if err := l.Unmount(); err != nil {
			t.Errorf("unmount lazyfs: %v", err)
		}
	})
	return l
}

// placeLeader moves leadership to n (asLeader) or away from it, and waits
// until every running node agrees.
func placeLeader(t testing.TB, c *Cluster, n *Node, asLeader bool) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("leadership placed (node %d leader: %v)", n.ID, asLeader), func() error {
		leader, why := c.agreedLeader(t)
		if leader == nil {
			return errors.New(why)
		}
		if (leader == n) == asLeader {
			return nil
		}
		target := n
		if !asLeader {
			target = c.Followers(n)[0]
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := NodeClient(t, leader).TransferLeader(ctx, &rpcpb.TransferLeaderRequest{Id: target.ID}); err != nil {
			return fmt.Errorf("transfer to %d: %w", target.ID, err)
		}
		return errors.New("transferred; checking")
	})
}

// powerCutWriter inserts rows with increasing ids, one at a time, and records the
// ids whose insert was acknowledged. A failed or timed-out insert is not
// retried (its id is not reused), so an id is either acknowledged or
// indeterminate.
type powerCutWriter struct {
	done chan struct{}
	quit chan struct{}
	gate sync.RWMutex // held shared by each insert, exclusively by pause

	mu    sync.Mutex // guards the fields below
	ack   map[int64]bool
	tried int
	cond  chan struct{} // closed and replaced on every acknowledgement
}

func startPowerCutWriter(t testing.TB, cl *client.Client, valueSize int) *powerCutWriter {
	w := &powerCutWriter{done: make(chan struct{}), quit: make(chan struct{}), ack: map[int64]bool{}, cond: make(chan struct{})}
	go func() {
		defer close(w.done)
		for id := int64(1); ; id++ {
			select {
			case <-w.quit:
				return
			default:
			}
			s, err := command.NewStatement("INSERT INTO p (id, v) VALUES (?, ?)", id, fmt.Sprintf("row %-*d", valueSize, id))
			if err != nil {
				panic(err) // constant SQL: cannot happen
			}
			w.gate.RLock()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			resp, err := cl.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{s}})
			cancel()
			w.gate.RUnlock()
			w.mu.Lock()
			w.tried++
			if err == nil && resp.GetResults()[0].GetError() == "" {
				w.ack[id] = true
				close(w.cond)
				w.cond = make(chan struct{})
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.stop)
	return w
}

// stop stops the writer and waits for it; it may be called twice.
func (w *powerCutWriter) stop() {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.done
}

// pause waits for the insert in flight and holds back the next until resume.
func (w *powerCutWriter) pause() { w.gate.Lock() }

// resume lets a paused writer go on.
func (w *powerCutWriter) resume() { w.gate.Unlock() }

func (w *powerCutWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ack)
}

func (w *powerCutWriter) attempted() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tried
}

// acked returns a copy of the acknowledged ids.
func (w *powerCutWriter) acked() map[int64]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[int64]bool, len(w.ack))
	for id := range w.ack {
		out[id] = true
	}
	return out
}

// waitAcks waits until n writes have been acknowledged.
func (w *powerCutWriter) waitAcks(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		got, cond := len(w.ack), w.cond
		w.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-cond:
		case <-deadline:
			t.Fatalf("only %d of %d writes acknowledged within %s", got, n, timeout)
		}
	}
}

// missingWrites returns the ids of acked that a linearizable read through
// cl does not find, sorted.
func missingWrites(t testing.TB, cl *client.Client, acked map[int64]bool) []int64 {
	t.Helper()
	have := idsOn(t, cl, rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, 0)
	var missing []int64
	for id := range acked {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	return missing
}

// idsOn returns the ids in table p, read at level through cl.
func idsOn(t testing.TB, cl *client.Client, level rpcpb.Consistency, minIndex uint64) map[int64]bool {
	t.Helper()
	res := mustQuery(t, cl, level, minIndex, "SELECT id FROM p")
	have := make(map[int64]bool, len(res.GetRows()))
	for _, row := range res.GetRows() {
		have[row.GetValues()[0].GetInteger()] = true
	}
	return have
}

func head(ids []int64, n int) []int64 { return ids[:min(n, len(ids))] }
