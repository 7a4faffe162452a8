package main

import (
	"log/slog"
	"runtime"
)

// procsPolicy sets how many threads may run Go code at once
// (GOMAXPROCS) by the node's role. A follower's work arrives as a stream
// of small messages; with as many Ps as the leader, each one wakes an idle
// P (a futex wake, on a virtual machine an idle vCPU), and on the 2-core
// machines of docs/benchmarks.md that scheduling was most of a follower's
// CPU time. With fewer Ps the follower leaves that CPU to the leader and
// the load generator.
type procsPolicy struct {
	leader, follower int
	log              *slog.Logger
}

// newProcsPolicy returns the policy for --follower-procs: followerProcs
// Ps for a follower (negative: half of the leader's, at least 1; 0: the
// same as the leader's), never more than the leader's, which is
// GOMAXPROCS as the process started with it.
func newProcsPolicy(followerProcs int, log *slog.Logger) *procsPolicy {
	leader := runtime.GOMAXPROCS(0)
	follower := followerProcs
	switch {
	case follower < 0:
		follower = max(1, leader/2)
	case follower == 0 || follower > leader:
		follower = leader
	}
	return &procsPolicy{leader: leader, follower: follower, log: log}
}

// apply sets GOMAXPROCS for the role: the leader's when leader is true,
// the follower's otherwise.
func (p *procsPolicy) apply(leader bool) {
	n := p.follower
	if leader {
		n = p.leader
	}
	if prev := runtime.GOMAXPROCS(0); prev != n {
		runtime.GOMAXPROCS(n)
		p.log.Debug("GOMAXPROCS set for the node's role", "leader", leader, "procs", n, "was", prev)
	}
}
