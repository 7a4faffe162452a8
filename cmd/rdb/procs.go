package main

import (
	"log/slog"
	"os"
	"runtime"
)

// procsPolicy sets how many threads may run Go code at once
// (GOMAXPROCS) by the node's role. A follower's work arrives as a stream
// of small messages; with as many Ps as the leader, each one wakes an idle
// P (a futex wake, on a virtual machine an idle vCPU), and on the 2-core
// machines of docs/benchmarks.md that scheduling was most of a follower's
// CPU time. With fewer Ps the follower leaves that CPU to the leader and
// the load generator.
//
// Setting GOMAXPROCS turns off the runtime's own updates of it (from the
// CPU count, affinity and cgroup quota). Unless the GOMAXPROCS
// environment variable fixed it, the leader hands it back to the runtime
// (runtime.SetDefaultGOMAXPROCS), so a leader still follows a changed
// container quota; a follower keeps the share computed at start.
type procsPolicy struct {
	leader, follower int
	// runtimeDefault: the leader's GOMAXPROCS is the runtime's default,
	// not fixed by the environment.
	runtimeDefault bool
	log            *slog.Logger
}

// newProcsPolicy returns the policy for --follower-procs: followerProcs
// Ps for a follower (negative: half of the leader's, at least 1; 0: the
// same as the leader's), never more than the leader's, which is
// GOMAXPROCS as the process started with it. Call it before anything
// sets GOMAXPROCS.
func newProcsPolicy(followerProcs int, log *slog.Logger) *procsPolicy {
	leader := runtime.GOMAXPROCS(0)
	follower := followerProcs
	switch {
	case follower < 0:
		follower = max(1, leader/2)
	case follower == 0 || follower > leader:
		follower = leader
	}
	return &procsPolicy{leader: leader, follower: follower, runtimeDefault: os.Getenv("GOMAXPROCS") == "", log: log}
}

// apply sets GOMAXPROCS for the role: the leader's when leader is true,
// the follower's otherwise.
func (p *procsPolicy) apply(leader bool) {
	prev := runtime.GOMAXPROCS(0)
	switch {
	case leader && p.runtimeDefault:
		runtime.SetDefaultGOMAXPROCS()
	case leader:
		runtime.GOMAXPROCS(p.leader)
	default:
		runtime.GOMAXPROCS(p.follower)
	}
	if now := runtime.GOMAXPROCS(0); now != prev {
		p.log.Debug("GOMAXPROCS set for the node's role", "leader", leader, "procs", now, "was", prev)
	}
}
