package cluster

import (
	"fmt"
	"strings"
	"testing"
)

// TestRaftMessageSizeBoundsCatchUp checks that Config.MaxSizePerMsg
// reaches raft: a follower cut off while 60 entries of about 1.5 KB were
// committed catches up in MsgApps of at most that many bytes of entries
// when it is set to 4 KiB (and with one message in flight), and in larger
// ones with the default of 1 MiB. Both clusters converge to the same data.
func TestRaftMessageSizeBoundsCatchUp(t *testing.T) {
	for _, tc := range []struct {
		name        string
		maxSize     uint64
		maxInflight int
	}{
		{"default", 0, 0},
		{"4KiB-1-inflight", 4 << 10, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, 3, func(c *testCluster) {
				c.maxSizePerMsg = tc.maxSize
				c.maxInflightMsgs = tc.maxInflight
			})
			leader := c.waitLeader()
			exec(t, leader, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
			lagging := c.follower(leader.ID())
			c.nw.isolate(lagging.ID())
			// The other follower keeps the quorum.
			for i := range 60 {
				exec(t, leader, "INSERT INTO t VALUES (?, ?)", i, fmt.Sprintf("%d%s", i, strings.Repeat("v", 1500)))
			}
			c.nw.mu.Lock()
			c.nw.largestAppend[leader.ID()] = 0 // from here on: the catch-up
			c.nw.mu.Unlock()
			c.nw.heal()
			c.assertConverged()
			if got := linearCount(t, lagging); got != 60 {
				t.Fatalf("lagging follower has %d rows, want 60", got)
			}
			c.nw.mu.Lock()
			largest := c.nw.largestAppend[leader.ID()]
			c.nw.mu.Unlock()
			t.Logf("largest MsgApp of the catch-up: %d bytes of entries", largest)
			switch {
			case tc.maxSize == 0 && largest <= 4<<10:
				t.Errorf("with the default message size the catch-up sent at most %d bytes a message; want more than 4 KiB (the check below would not tell)", largest)
			case tc.maxSize > 0 && largest > int(tc.maxSize):
				t.Errorf("a MsgApp carried %d bytes of entries, over MaxSizePerMsg %d", largest, tc.maxSize)
			}
		})
	}
}

// TestConfigValidateRaftMessageBounds checks the bounds Validate puts on
// the raft message settings that rdb serve exposes.
func TestConfigValidateRaftMessageBounds(t *testing.T) {
	base := Config{ID: 1, DataDir: t.TempDir()}.withDefaults()
	for _, tc := range []struct {
		name     string
		size     uint64
		inflight int
		ok       bool
	}{
		{"defaults", DefaultMaxSizePerMsg, DefaultMaxInflightMsgs, true},
		{"smallest", MinMaxSizePerMsg, 1, true},
		{"largest", MaxMaxSizePerMsg, MaxMaxInflightMsgs, true},
		{"size too small", MinMaxSizePerMsg - 1, 1, false},
		{"size too large", MaxMaxSizePerMsg + 1, 1, false},
		{"too many in flight", DefaultMaxSizePerMsg, MaxMaxInflightMsgs + 1, false},
	} {
		cfg := base
		cfg.MaxSizePerMsg, cfg.MaxInflightMsgs = tc.size, tc.inflight
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	cfg := base
	cfg.MaxInflightBytes = cfg.MaxSizePerMsg - 1
	if err := cfg.Validate(); err == nil {
		t.Error("Validate() accepted fewer bytes in flight than one message (raft would panic)")
	}
}

// TestRaftAcceptsEveryValidatedMessageSetting starts a node at each end of
// the accepted raft message settings: raft panics on a configuration it
// refuses, so every setting Validate lets through must start.
func TestRaftAcceptsEveryValidatedMessageSetting(t *testing.T) {
	for _, tc := range []struct {
		size     uint64
		inflight int
	}{{MinMaxSizePerMsg, 1}, {MaxMaxSizePerMsg, MaxMaxInflightMsgs}} {
		c := newTestCluster(t, 1, func(c *testCluster) {
			c.maxSizePerMsg = tc.size
			c.maxInflightMsgs = tc.inflight
		})
		exec(t, c.waitLeader(), "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	}
}
