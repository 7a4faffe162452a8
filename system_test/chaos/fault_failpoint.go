package chaos

import (
	"context"
	"fmt"
	"time"

	"rdb/internal/failpoint"
)

// crashPoints are the persistence boundaries failpoint-crash kills a node
// at (F9): around the raft WAL save, after the SQLite commit of an applied
// batch (before anything else of the apply), around the save of a
// snapshot for a follower, and inside log compaction.
var crashPoints = []string{
	failpoint.RaftBeforeSave, failpoint.RaftAfterSave, failpoint.ApplyAfterCommit,
	failpoint.SnapshotBeforeSave, failpoint.SnapshotAfterSave, failpoint.CompactBeforePurge,
}

// crashWithin bounds how long an armed failpoint may take to be hit
// before it is disarmed (compaction and snapshot points are hit only when
// compaction happens, or a follower needs a snapshot).
const crashWithin = 10 * time.Second

// failpointCrash arms one persistence-boundary failpoint with the kill
// action (SIGKILL of the process by itself, exactly there) on the leader
// or a follower, waits for the node to die at it, disarms it and restarts
// the node. The failpoint is armed to fire at one of its next few hits
// (@N), so that not every kill lands on the first crossing after arming.
func (n *nemesis) failpointCrash(ctx context.Context, leader *node) error {
	victim, role := leader, "leader"
	if n.rng.IntN(2) == 0 {
		victim, role = n.pick(leader), "follower"
	}
	point := crashPoints[n.rng.IntN(len(crashPoints))]
	nth := 1 + n.rng.IntN(5)
	spec := fmt.Sprintf("%s=kill@%d", point, nth)
	victimLog := logSize(victim)
	if err := armFailpoints(victim, spec); err != nil {
		return err
	}
	n.tl.add("arm %s on %s node %d", spec, role, victim.id)
	deadline := time.Now().Add(crashWithin)
	exited := false
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, exited = victim.running(); exited {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := armFailpoints(victim, ""); err != nil {
		return err
	}
	if !exited {
		n.tl.add("%s not hit on node %d within %s; disarmed", point, victim.id, crashWithin)
		return nil
	}
	if !logHas(victim.logPath, victimLog, "failpoint "+point+": kill") {
		// Not our kill: a crash. Leave it down for the final check,
		// which reports a node that exited on its own.
		n.tl.add("node %d exited, but not at failpoint %s: a crash (left down)", victim.id, point)
		return nil
	}
	n.tl.add("node %d killed itself (SIGKILL) at failpoint %s", victim.id, point)
	if err := victim.kill(); err != nil { // reap it: an exit the harness caused
		return err
	}
	return n.restartCaughtUp(ctx, victim, 500*time.Millisecond, 2*time.Second)
}
