package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"rdb/system_test/lazyfs"
)

// powerCutSyncWait bounds how long a power cut waits for the victim to
// have unsynced data with its fsync held before it cuts anyway.
const powerCutSyncWait = 10 * time.Second

// mountLazyDataDirs puts every node's data directory on a lazyfs mount
// (package lazyfs, backed by <data dir>.backing, which a kept run keeps)
// for power-cut. The returned release unmounts them after the cluster
// stopped.
func mountLazyDataDirs(c *cluster, log *slog.Logger) (func(bool), error) {
	var mounted []*lazyfs.FS
	release := func(bool) {
		for _, l := range mounted {
			if err := l.Unmount(); err != nil {
				log.Warn("unmount lazyfs", "dir", l.Mountpoint(), "err", err)
			}
		}
	}
	c.lazy = make(map[int]*lazyfs.FS)
	for _, n := range c.nodes {
		backing := n.dataDir + ".backing"
		for _, d := range []string{backing, n.dataDir} {
			if err := os.MkdirAll(d, 0o750); err != nil {
				release(false)
				return nil, fmt.Errorf("chaos: data dir: %w", err)
			}
		}
		l, err := lazyfs.Mount(backing, n.dataDir, lazyfs.WithLazyRule(lazyfs.IsLazyWithSQLite))
		if err != nil {
			release(false)
			if errors.Is(err, lazyfs.ErrNoFUSE) {
				return nil, fmt.Errorf("%w: power-cut mounts a FUSE file system per node: %v", ErrNeedsRoot, err)
			}
			return nil, fmt.Errorf("chaos: mount lazyfs: %w", err)
		}
		mounted = append(mounted, l)
		c.lazy[n.id] = l
	}
	return release, nil
}

// powerCut (F8) kills the leader or a follower and drops every write its
// files had not fsynced, as a power cut would, then starts it again on
// the same disk. Half of the cuts first hold the node's fsyncs until it
// has written log data it is waiting to sync, so that data is really
// lost; the others come at a random moment (rdb fsyncs every Ready, so
// there is often nothing to lose then).
func (n *nemesis) powerCut(ctx context.Context, leader *node) error {
	victim, role := leader, "leader"
	if n.rng.IntN(2) == 0 {
		victim, role = n.pick(leader), "follower"
	}
	l := n.c.lazy[victim.id]
	if l == nil {
		return fmt.Errorf("chaos: node %d has no lazyfs mount", victim.id)
	}
	how := "at a random moment"
	if n.rng.IntN(2) == 0 {
		how = "in a held fsync"
		l.HoldSyncs(nil)
		deadline := time.Now().Add(powerCutSyncWait)
		for time.Now().Before(deadline) && (l.Pending() == 0 || l.HeldSyncs() == 0) {
			time.Sleep(5 * time.Millisecond)
		}
	} else {
		time.Sleep(n.between(time.Millisecond, 500*time.Millisecond))
	}
	if err := victim.kill(); err != nil {
		l.ReleaseSyncs()
		return err
	}
	// Drop before releasing: a released fsync would make the data durable.
	dropped := l.DropUnsynced()
	l.ReleaseSyncs()
	n.tl.add("power cut on %s node %d %s: %d unsynced bytes lost", role, victim.id, how, dropped)
	return n.restartCaughtUp(ctx, victim, time.Second, 3*time.Second)
}
