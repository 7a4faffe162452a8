package main

import (
	"log/slog"
	"runtime"
	"testing"
)

// With GOMAXPROCS fixed by the environment, the leader gets that value
// and a follower its share of it.
func TestProcsPolicyFixedByEnvironment(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0)) // the test binary's own setting
	log := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		start, flag      int
		leader, follower int
	}{
		{start: 2, flag: -1, leader: 2, follower: 1},
		{start: 1, flag: -1, leader: 1, follower: 1},
		{start: 8, flag: -1, leader: 8, follower: 4},
		{start: 7, flag: -5, leader: 7, follower: 3},
		{start: 4, flag: 0, leader: 4, follower: 4},
		{start: 4, flag: 1, leader: 4, follower: 1},
		{start: 4, flag: 9, leader: 4, follower: 4},
	} {
		t.Setenv("GOMAXPROCS", "set")
		runtime.GOMAXPROCS(c.start)
		p := newProcsPolicy(c.flag, log)
		if p.leader != c.leader || p.follower != c.follower || p.runtimeDefault {
			t.Errorf("GOMAXPROCS %d, --follower-procs %d: leader %d follower %d (runtime default %v), want %d and %d",
				c.start, c.flag, p.leader, p.follower, p.runtimeDefault, c.leader, c.follower)
		}
		p.apply(false)
		if got := runtime.GOMAXPROCS(0); got != c.follower {
			t.Errorf("GOMAXPROCS %d, --follower-procs %d: as follower %d, want %d", c.start, c.flag, got, c.follower)
		}
		p.apply(true)
		if got := runtime.GOMAXPROCS(0); got != c.leader {
			t.Errorf("GOMAXPROCS %d, --follower-procs %d: as leader %d, want %d", c.start, c.flag, got, c.leader)
		}
	}
}

// Without the environment variable, the leader hands GOMAXPROCS back to
// the runtime, which keeps following the CPU count and quota.
func TestProcsPolicyRuntimeDefault(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0)) // the test binary's own setting
	t.Setenv("GOMAXPROCS", "")
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	p := newProcsPolicy(-1, slog.New(slog.DiscardHandler))
	if !p.runtimeDefault || p.leader != def || p.follower != max(1, def/2) {
		t.Fatalf("policy %+v, want the runtime default %d for the leader and %d for a follower", p, def, max(1, def/2))
	}
	p.apply(false)
	if got := runtime.GOMAXPROCS(0); got != p.follower {
		t.Errorf("as follower %d, want %d", got, p.follower)
	}
	// Fixed by hand meanwhile: the leader still gets the runtime's value.
	runtime.GOMAXPROCS(def + 3)
	p.apply(true)
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Errorf("as leader %d, want the runtime default %d", got, def)
	}
}
