package chaos

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"rdb/command"
	"rdb/rpc/rpcpb"
)

// Clock offset (F13). Every node is started with RDB_CLOCK_OFFSET_FILE
// naming <run dir>/node<N>.clock (see internal/clock); a failpoints build
// of rdb adds the duration in that file to the wall-clock time it stamps
// into commands, and re-reads it on every use. A fault offsets one node's
// clock (the leader's on the first fault and every other one after, a
// random node otherwise) by 5-30 s either way, checks that a write
// through the cluster while the leader's clock is off carries the
// shifted time (so the hook is proven live), strobes the clock between
// +d and -d every 20-200 ms for a few seconds, and resets it. rdb uses
// ReadOnlySafe ReadIndex and no leases, so no checker may see an anomaly.

// maxClockOffset bounds the offsets the nemesis sets.
const maxClockOffset = 30 * time.Second

// clockFile is the offset file of node i in a run's directory.
func clockFile(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("node%d.clock", i))
}

// setClock writes a node's clock offset.
func setClock(nd *node, d time.Duration) error {
	path := clockFile(filepath.Dir(nd.dataDir), nd.id)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(d.String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("chaos: clock offset: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("chaos: clock offset: %w", err)
	}
	return nil
}

// hasBuildTag reports whether the Go binary at path was built with tag.
func hasBuildTag(path, tag string) (bool, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("chaos: read build info of %s: %w", path, err)
	}
	for _, s := range info.Settings {
		if s.Key == "-tags" {
			for _, t := range strings.Split(s.Value, ",") {
				if t == tag {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// scenarioBinary returns the rdb binary a run uses: cfg.Binary, or for
// clock-offset and failpoint-crash, when cfg.Binary lacks the failpoints
// tag, a failpoints build made in dir (the Go build cache makes it cheap
// after the first).
func scenarioBinary(ctx context.Context, cfg Config, dir string, log *slog.Logger) (string, error) {
	if cfg.Scenario != ClockOffset && cfg.Scenario != FailpointCrash {
		return cfg.Binary, nil
	}
	ok, err := hasBuildTag(cfg.Binary, "failpoints")
	if err != nil {
		return "", err
	}
	if ok {
		return cfg.Binary, nil
	}
	tags := "failpoints"
	if info, err := buildinfo.ReadFile(cfg.Binary); err == nil {
		for _, s := range info.Settings {
			if s.Key == "-tags" && s.Value != "" {
				tags = s.Value + ",failpoints"
			}
		}
	}
	log.Info("scenario needs a failpoints build of rdb; building one", "scenario", cfg.Scenario, "tags", tags)
	bin, err := BuildRDB(ctx, dir, tags)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNeedsFailpoints, err)
	}
	return bin, nil
}

// clockOffset offsets one node's clock, checks the stamped time, strobes
// and resets.
func (n *nemesis) clockOffset(ctx context.Context, leader *node) error {
	victim, role := leader, "leader"
	if n.count%2 == 1 {
		victim = n.c.nodes[n.rng.IntN(len(n.c.nodes))]
		if victim != leader {
			role = "follower"
		}
	}
	d := n.between(5*time.Second, maxClockOffset)
	if n.rng.IntN(2) == 0 {
		d = -d
	}
	hold := n.hold()
	n.tl.add("clock of %s node %d offset %s for %s", role, victim.id, d.Round(time.Millisecond), hold.Round(time.Millisecond))
	if err := setClock(victim, d); err != nil {
		return err
	}
	reset := func() error {
		n.tl.add("clock of node %d reset", victim.id)
		return setClock(victim, 0)
	}
	if victim == leader {
		if skew, err := n.stampedSkew(ctx); err != nil {
			n.tl.add("stamped-time probe failed (leadership may have moved): %v", err)
		} else {
			n.tl.add("a write through the cluster stamped a time %s off the harness clock", skew.Round(100*time.Millisecond))
			if skew < d-5*time.Second || skew > d+5*time.Second {
				return errors.Join(fmt.Errorf("chaos: clock offset %s on the leader, but a write stamped a time %s off: the clock hook is not used", d, skew), reset())
			}
		}
	}
	time.Sleep(hold)
	strobe := n.between(2*time.Second, 4*time.Second)
	period := n.between(20*time.Millisecond, 200*time.Millisecond)
	n.tl.add("strobe clock of node %d between %s and %s every %s for %s", victim.id, d.Round(time.Millisecond), (-d).Round(time.Millisecond), period.Round(time.Millisecond), strobe.Round(time.Millisecond))
	for end, sign := time.Now().Add(strobe), time.Duration(1); time.Now().Before(end); sign = -sign {
		if err := setClock(victim, -sign*d); err != nil {
			return errors.Join(err, reset())
		}
		time.Sleep(period)
	}
	return reset()
}

// stampedSkew writes unixepoch('now') through the cluster and reads it
// back, returning how far the stamped time is from the harness clock.
func (n *nemesis) stampedSkew(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := execSetup(ctx, n.c.admin, sq("CREATE TABLE IF NOT EXISTS chaos_clock (id INTEGER PRIMARY KEY, ms INTEGER)")); err != nil {
		return 0, err
	}
	s, err := command.NewStatement("INSERT INTO chaos_clock (ms) VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))")
	if err != nil {
		return 0, fmt.Errorf("chaos: clock probe: %w", err)
	}
	before := time.Now()
	resp, err := n.c.admin.Execute(ctx, &rpcpb.ExecuteRequest{Statements: []*command.Statement{s}})
	if err != nil {
		return 0, fmt.Errorf("chaos: clock probe write: %w", err)
	}
	id := resp.GetResults()[0].GetLastInsertId()
	q, err := command.NewStatement("SELECT ms FROM chaos_clock WHERE id = ?", id)
	if err != nil {
		return 0, fmt.Errorf("chaos: clock probe: %w", err)
	}
	rr, err := n.c.admin.Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{q}, Consistency: rpcpb.Consistency_CONSISTENCY_LINEARIZABLE})
	if err != nil {
		return 0, fmt.Errorf("chaos: clock probe read: %w", err)
	}
	rows := rr.GetResults()[0].GetRows()
	if len(rows) != 1 {
		return 0, fmt.Errorf("chaos: clock probe read %d rows", len(rows))
	}
	ms, err := intCell(rows[0].GetValues()[0])
	if err != nil {
		return 0, err
	}
	return time.UnixMilli(ms).Sub(before), nil
}
