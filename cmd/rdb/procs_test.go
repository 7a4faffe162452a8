package main

import (
	"log/slog"
	"runtime"
	"testing"
)

func TestProcsPolicy(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
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
		runtime.GOMAXPROCS(c.start)
		p := newProcsPolicy(c.flag, log)
		if p.leader != c.leader || p.follower != c.follower {
			t.Errorf("GOMAXPROCS %d, --follower-procs %d: leader %d follower %d, want %d and %d", c.start, c.flag, p.leader, p.follower, c.leader, c.follower)
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
