package chaos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Blackhole-until-snapshot (F11). One injection:
//
//  1. Blackhole every link of a random follower (its proxy swallows what
//     the others send it and, with namespaces, the others' proxies
//     swallow what it sends).
//  2. Poll the leader's status until its first log index is past the
//     follower's last index + 1: the entries the follower needs are gone
//     and only a snapshot can catch it up. The run's compaction is forced
//     to --snapshot-entries 50 --snapshot-trailing 10 (adjustTiming), so
//     this takes seconds under the workload.
//  3. Pick a kill point at random; for a failpoint, arm it in the
//     follower (through its RDB_FAILPOINTS_FILE,
//     which it re-reads on every hit): snapshotBeforeInstall=kill (the
//     received file is verified, the live database not yet replaced) or
//     snapshotAfterInstall=kill (the database is swapped in, the WAL does
//     not record the snapshot yet: the database is ahead of the log).
//     "kill" is SIGKILL to itself, so the crash lands exactly in the
//     install, which a kill -9 from outside could not time: the file of
//     a small database streams and installs within milliseconds.
//  4. Heal the links: the leader sends the snapshot and the follower
//     dies at the chosen point. Disarm, restart it 0.5-1.5 s later,
//     and wait until it has caught up with the leader's commit index.
//     The run's final check requires the same applied index and hash on
//     every node.
//
// The third kill point, "receive", is a SIGKILL from the harness as soon
// as a received file (snapshots/incoming/recv-*.db) appears in the
// follower's data directory, polled every millisecond: the kill lands
// while the file streams in or is verified (PRAGMA integrity_check), or,
// for a small file, just after (best effort; the restart must cope with
// a partial file either way).
//
// The failpoints need an rdb built with -tags failpoints (the chaos
// runner and TestChaos add the tag when a scenario needs it); with a
// binary without failpoints every kill is a "receive" one. The timeline
// says which kill each injection used.
const (
	compactWithin = 30 * time.Second // for the leader to compact past the victim
	installWithin = 30 * time.Second // for the snapshot to reach the install
)

// receiveKill names the kill by the harness while the snapshot file is
// received or verified.
const receiveKill = "receive"

// snapshotKillPoints are where the victim is killed: two failpoints and
// receiveKill.
var snapshotKillPoints = []string{"snapshotBeforeInstall", "snapshotAfterInstall", receiveKill}

// needsFailpoints reports whether the scenario wants an rdb built with
// the failpoints tag.
func (s Scenario) needsFailpoints() bool {
	return s == BlackholeUntilSnapshot || s == FailpointCrash
}

// NeedsFailpoints reports whether any of scs wants an rdb built with the
// failpoints tag (see BuildRDB); without it they fall back to less
// precise fault timing.
func NeedsFailpoints(scs []Scenario) bool {
	for _, s := range scs {
		if s.needsFailpoints() {
			return true
		}
	}
	return false
}

// WithFailpointsTag returns tags (as for BuildRDB) with failpoints added.
func WithFailpointsTag(tags string) string {
	for _, t := range strings.FieldsFunc(tags, func(r rune) bool { return r == ',' || r == ' ' }) {
		if t == "failpoints" {
			return tags
		}
	}
	if strings.TrimSpace(tags) == "" {
		return "failpoints"
	}
	return tags + ",failpoints"
}

// hasFailpoints reports whether the binary was built with the failpoints
// tag.
func hasFailpoints(bin string) bool {
	ok, err := hasBuildTag(bin, "failpoints")
	return err == nil && ok
}

// armFailpoints replaces the failpoint spec nd reads; "" disarms.
func armFailpoints(nd *node, spec string) error {
	tmp := nd.failpoints + ".tmp"
	if err := os.WriteFile(tmp, []byte(spec+"\n"), 0o644); err != nil {
		return fmt.Errorf("chaos: arm failpoints: %w", err)
	}
	if err := os.Rename(tmp, nd.failpoints); err != nil {
		return fmt.Errorf("chaos: arm failpoints: %w", err)
	}
	return nil
}

func (n *nemesis) blackholeUntilSnapshot(ctx context.Context, leader *node) error {
	if len(n.c.proxies) == 0 {
		return fmt.Errorf("chaos: no link proxies")
	}
	victim := n.pick(leader)
	n.c.faultLinks(victim, LinkFault{Mode: Blackhole})
	healed := false
	defer func() {
		if !healed {
			n.c.healLinks()
		}
	}()
	st, err := n.c.status(ctx, victim)
	if err != nil {
		n.tl.add("blackhole of node %d skipped: status: %v", victim.id, err)
		return nil
	}
	last := st.GetLastIndex()
	n.tl.add("blackhole the links of follower node %d (applied %d, last index %d) until the leader compacts past it",
		victim.id, st.GetAppliedIndex(), last)
	first, ok := n.waitCompacted(ctx, last)
	if !ok {
		n.tl.add("leader did not compact past %d within %s (first index %d); heal node %d without a snapshot", last+1, compactWithin, first, victim.id)
		return nil
	}

	// The kill point: a failpoint inside the install, or (receiveKill, and
	// always for a binary without failpoints) a SIGKILL from the harness
	// while the received file is being streamed or verified.
	point := snapshotKillPoints[n.rng.IntN(len(snapshotKillPoints))]
	if !hasFailpoints(n.c.bin) {
		point = receiveKill
	}
	if point != receiveKill {
		if err := armFailpoints(victim, point+"=kill"); err != nil {
			return err
		}
		defer func() { _ = armFailpoints(victim, "") }()
	}
	victimLog := logSize(victim)
	n.tl.add("leader's first index %d > %d: heal node %d's links; it must install a snapshot", first, last+1, victim.id)
	n.c.healLinks()
	healed = true

	if point == receiveKill {
		incoming := filepath.Join(victim.dataDir, "snapshots", "incoming")
		file, ok := n.waitReceiving(ctx, incoming, installWithin)
		if !ok {
			n.tl.add("node %d received no snapshot within %s", victim.id, installWithin)
			return nil
		}
		if err := victim.kill(); err != nil {
			return err
		}
		n.tl.add("kill -9 node %d while it receives or verifies the snapshot (%s seen)", victim.id, file)
	} else {
		if !n.waitExit(ctx, victim, installWithin) {
			n.tl.add("node %d did not reach %s within %s", victim.id, point, installWithin)
			return nil
		}
		if !logHas(victim.logPath, victimLog, "failpoint "+point+": kill") {
			// Not our kill: a crash. Leave it down for the final check,
			// which reports a node that exited on its own.
			n.tl.add("node %d exited, but not at failpoint %s: a crash (left down)", victim.id, point)
			return nil
		}
		n.tl.add("node %d killed itself (SIGKILL) at failpoint %s: kill -9 during snapshot install", victim.id, point)
		if err := armFailpoints(victim, ""); err != nil {
			return err
		}
	}
	if err := victim.kill(); err != nil {
		return err
	}
	return n.restartCaughtUp(ctx, victim, 500*time.Millisecond, 1500*time.Millisecond)
}

// waitCompacted polls the leader until its first log index is above
// last+1; it returns the last first index seen.
func (n *nemesis) waitCompacted(ctx context.Context, last uint64) (uint64, bool) {
	deadline := time.Now().Add(compactWithin)
	var first uint64
	for time.Now().Before(deadline) {
		if l := n.c.leader(ctx); l != nil {
			if st, err := n.c.status(ctx, l); err == nil {
				first = st.GetFirstIndex()
				if first > last+1 {
					return first, true
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return first, false
}

// waitExit polls until nd's process has exited on its own.
func (n *nemesis) waitExit(ctx context.Context, nd *node, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, exited := nd.running(); exited {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// waitReceiving polls dir (a node's incoming snapshot directory) every
// millisecond until a received file (recv-*.db) is there, and returns its
// name.
func (n *nemesis) waitReceiving(ctx context.Context, dir string, within time.Duration) (string, bool) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if m, _ := filepath.Glob(filepath.Join(dir, "recv-*.db")); len(m) > 0 {
			return filepath.Base(m[0]), true
		}
		time.Sleep(time.Millisecond)
	}
	return "", false
}

// logSize returns the size of nd's log file (0 if unknown).
func logSize(nd *node) int64 {
	fi, err := os.Stat(nd.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logHas reports whether a line of the log at path, from byte offset on,
// contains every one of subs.
func logHas(path string, offset int64, subs ...string) bool {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) <= offset {
		return false
	}
	for _, line := range bytes.Split(b[offset:], []byte("\n")) {
		all := true
		for _, s := range subs {
			all = all && bytes.Contains(line, []byte(s))
		}
		if all {
			return true
		}
	}
	return false
}

// restartCaughtUp starts the stopped node nd after a pause in [lo, hi)
// and waits until it caught up (waitCaughtUp).
func (n *nemesis) restartCaughtUp(ctx context.Context, nd *node, lo, hi time.Duration) error {
	time.Sleep(n.between(lo, hi))
	n.tl.add("restart node %d", nd.id)
	if err := nd.start(); err != nil {
		return err
	}
	n.waitCaughtUp(ctx, nd)
	return nil
}

// waitCaughtUp waits until nd has applied the leader's commit index as of
// the call (awaitCatchUp); the timeline records how long it took, or that
// it did not, and the run's final checks judge a node left behind.
func (n *nemesis) waitCaughtUp(ctx context.Context, nd *node) {
	_ = n.awaitCatchUp(ctx, nd) // recorded in the timeline
}
