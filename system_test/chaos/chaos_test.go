package chaos

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// TestChaos is the short tier: a few seeded runs covering kill, pause,
// partition, link, disk-full, clock, bit-flip, membership, failpoint and
// power-cut faults against real rdb processes built without the race
// detector (RDB_BUILD_TAGS adds build tags, for deliberately broken
// builds). Skipped with -short.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: skipped with -short")
	}
	// With failpoints (unarmed they do nothing), so that
	// blackhole-until-snapshot kills inside the snapshot install and
	// clock-offset can move a node's clock.
	bin, err := BuildRDB(context.Background(), t.TempDir(), WithFailpointsTag(os.Getenv("RDB_BUILD_TAGS")))
	if err != nil {
		t.Fatal(err)
	}
	runs := []struct {
		scenario Scenario
		seed     int64
	}{
		// Seeds picked so that the runs cover each election timeout and
		// compaction every 50 entries with 10 trailing (snapshot catch-up).
		{KillLeader, 7},             // election 1s, snapshot-entries 50
		{PauseLeader, 1},            // election 100ms
		{IsolateLeader, 2},          // election 1s, snapshot-entries 50
		{OneWayLeader, 8},           // election 100ms
		{PartitionHalves, 7},        // 5 nodes, election 100ms, snapshot-entries 50
		{KillAll, 3},                // election 2s, snapshot-entries 50
		{LossyLinks, 1},             // election 100ms (F7; slow-links runs in make chaos)
		{BlackholeUntilSnapshot, 2}, // election 1s; kills while receiving and at both install failpoints
		{DiskFull, 1},               // election 100ms; a follower, then the leader
		{BitFlip, 2},                // election 1s, snapshot-entries 50
		{ClockOffset, 1},            // election 100ms
		{Membership, 1},             // 5 nodes, election 100ms, two membership steps (about 25 s)
		{FailpointCrash, 5},         // election 2s; kills at applyAfterCommit, snapshotAfterSave and more
		{PowerCut, 7},               // election 1s, snapshot-entries 50; unsynced WAL and SQLite data lost
	}
	var sum Summary
	for _, r := range runs {
		d := 12 * time.Second
		t.Run(string(r.scenario), func(t *testing.T) {
			log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
			res, err := Run(context.Background(), Config{
				Seed:     r.seed,
				Scenario: r.scenario,
				Duration: d,
				Binary:   bin,
				Logger:   log,
			})
			if errors.Is(err, ErrNoNetns) {
				t.Skipf("partition scenario needs network namespaces: %v", err)
			}
			if errors.Is(err, ErrNeedsRoot) || errors.Is(err, ErrNeedsFailpoints) {
				t.Skipf("%s: %v", r.scenario, err)
			}
			sum.Add(r.scenario, r.seed, res, err)
			if err != nil {
				t.Fatalf("seed %d: %v", r.seed, err)
			}
			t.Logf("seed %d: %d ops (%d unknown), %d checked, %d faults, %s, %s", r.seed, res.Ops, res.Unknown, res.Checked, res.Faults, res.Timing, res.Elapsed.Round(time.Second))
			if res.Failed() {
				t.Errorf("seed %d %s: %d anomalies, artifacts kept in %s:\n%s", r.seed, r.scenario, len(res.Anomalies), res.Dir, strings.Join(res.Anomalies, "\n"))
			}
		})
	}
	var sb strings.Builder
	if err := sum.Write(&sb); err == nil {
		t.Logf("summary:\n%s", sb.String())
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
