package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Scenario is the fault kind of a run.
type Scenario string

// Scenarios, named after the reliability plan's fault ids.
const (
	// None injects no fault (a baseline).
	None Scenario = "none"
	// KillLeader (F1): kill -9 the leader, restart it after 1-3 s.
	KillLeader Scenario = "kill-leader"
	// KillFollower (F2): kill -9 a random follower, restart it after 1-3 s.
	KillFollower Scenario = "kill-follower"
	// PauseLeader (F3): SIGSTOP the leader for longer than the election
	// timeout, then SIGCONT.
	PauseLeader Scenario = "pause-leader"
	// IsolateLeader (F4): partition the leader from every other node.
	IsolateLeader Scenario = "isolate-leader"
	// PartitionHalves (F5): random halves (2|3 in a 5-node cluster, 1|2
	// in a 3-node one).
	PartitionHalves Scenario = "partition-halves"
	// OneWayLeader (F6): the leader's inbound peer traffic is dropped, its
	// outbound traffic passes.
	OneWayLeader Scenario = "one-way-leader"
	// KillAll (F15): kill -9 every node, restart them all after 1-3 s.
	KillAll Scenario = "kill-all"
	// SlowLinks (F7): 75±50 ms delay per chunk on every peer link or on
	// the leader's links, for a few seconds (fault_links.go).
	SlowLinks Scenario = "slow-links"
	// LossyLinks (F7): 50% loss on every peer link, the leader's or one
	// node's, for about a second (fault_links.go).
	LossyLinks Scenario = "lossy-links"
	// BlackholeUntilSnapshot (F11): blackhole a follower until the
	// leader's log is compacted past it, heal, and kill -9 the follower
	// while it installs the snapshot (fault_snapshot.go).
	BlackholeUntilSnapshot Scenario = "blackhole-until-snapshot"
	// DiskFull (F12): fill one node's data directory (a tmpfs of its
	// own), first a follower's, then the leader's; free it after a hold.
	// See fault_diskfull.go.
	DiskFull Scenario = "disk-full"
	// ClockOffset (F13): offset one node's wall clock by up to ±30 s, the
	// leader's first, then strobe it; needs a failpoints build. See
	// fault_clock.go.
	ClockOffset Scenario = "clock-offset"
	// BitFlip (F14): stop a follower, corrupt one of its files (WAL,
	// snapshot or SQLite), start it again. See fault_bitflip.go.
	BitFlip Scenario = "bitflip"
	// FailpointCrash (F9): a node kills itself at a persistence boundary
	// (raft WAL save, SQLite commit of an apply, snapshot save, log
	// compaction) through an armed failpoint, and is restarted; needs a
	// failpoints build. See fault_failpoint.go.
	FailpointCrash Scenario = "failpoint-crash"
	// PowerCut (F8): kill -9 a node and drop every write its files had
	// not fsynced (data directories on lazyfs mounts); needs FUSE. See
	// fault_powercut.go.
	PowerCut Scenario = "power-cut"
)

// Scenarios lists every scenario.
var Scenarios = []Scenario{None, KillLeader, KillFollower, PauseLeader, IsolateLeader, PartitionHalves, OneWayLeader, KillAll,
	SlowLinks, LossyLinks, BlackholeUntilSnapshot,
	DiskFull, ClockOffset, BitFlip, Membership, FailpointCrash, PowerCut}

// scenarioGroups are the names accepted besides single scenarios.
var scenarioGroups = map[string][]Scenario{
	"all": {KillLeader, KillFollower, PauseLeader, IsolateLeader, PartitionHalves, OneWayLeader, KillAll,
		SlowLinks, LossyLinks, BlackholeUntilSnapshot,
		DiskFull, ClockOffset, BitFlip, Membership, FailpointCrash, PowerCut},
	"disk":       {DiskFull, BitFlip},
	"clock":      {ClockOffset},
	"kill":       {KillLeader, KillFollower, KillAll, FailpointCrash, PowerCut},
	"pause":      {PauseLeader},
	"partition":  {IsolateLeader, PartitionHalves, OneWayLeader},
	"links":      {SlowLinks, LossyLinks, BlackholeUntilSnapshot},
	"membership": {Membership},
}

// ParseScenarios turns a comma-separated list of scenarios and groups
// (all, kill, pause, partition, links, disk, clock, membership) into
// scenarios.
func ParseScenarios(s string) ([]Scenario, error) {
	var out []Scenario
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if g, ok := scenarioGroups[name]; ok {
			out = append(out, g...)
			continue
		}
		if !slices.Contains(Scenarios, Scenario(name)) {
			return nil, fmt.Errorf("%w: %q", ErrUnknownScenario, name)
		}
		out = append(out, Scenario(name))
	}
	return out, nil
}

// NeedsPartitions reports whether the scenario needs network namespaces.
func (s Scenario) NeedsPartitions() bool {
	return s == IsolateLeader || s == PartitionHalves || s == OneWayLeader
}

// nodesFor returns the cluster size for a scenario: 5 for membership
// and random halves, 3 otherwise.
func (s Scenario) nodesFor(rng *rand.Rand) int {
	if s == Membership {
		return 5
	}
	if s == PartitionHalves && rng.IntN(2) == 0 {
		return 5
	}
	return 3
}

// Event is one line of a run's fault timeline.
type Event struct {
	At   time.Duration `json:"at"` // since the run's time base
	What string        `json:"what"`
}

// timeline is a concurrency-safe list of events.
type timeline struct {
	rec *Recorder
	mu  sync.Mutex
	evs []Event
}

func (t *timeline) add(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.evs = append(t.evs, Event{At: time.Duration(t.rec.Now()), What: fmt.Sprintf(format, args...)})
}

func (t *timeline) events() []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.evs)
}

// nemesis injects one scenario's fault repeatedly until ctx ends, healing
// after each, and counts the faults it injected.
type nemesis struct {
	c        *cluster
	scenario Scenario
	rng      *rand.Rand
	tl       *timeline
	count    int
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// between returns a random duration in [lo, hi).
func (n *nemesis) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(n.rng.Int64N(int64(hi-lo)))
}

// run injects faults until ctx ends. Each fault is healed before the next
// one; the final heal is the caller's (cluster.heal). Faults hold on
// their own timer even when ctx ends, so none is cut to nothing.
func (n *nemesis) run(ctx context.Context) error {
	if n.scenario == None {
		<-ctx.Done()
		return nil
	}
	for sleep(ctx, n.between(time.Second, 2*time.Second)) {
		if err := n.inject(ctx); err != nil {
			return fmt.Errorf("chaos: %s: %w", n.scenario, err)
		}
		n.count++
	}
	return nil
}

// hold is how long a pause or partition lasts: longer than an election.
func (n *nemesis) hold() time.Duration {
	lo := max(3*time.Second, 2*n.c.timing.Election())
	return n.between(lo, lo+3*time.Second)
}

func (n *nemesis) inject(ctx context.Context) error {
	bg := context.WithoutCancel(ctx) // heal even when the run ends
	leader := n.c.leader(ctx)
	if leader == nil && n.scenario != KillFollower && n.scenario != KillAll && n.scenario != PartitionHalves &&
		n.scenario != SlowLinks && n.scenario != LossyLinks {
		n.tl.add("no leader found; %s skipped", n.scenario)
		return nil
	}
	switch n.scenario {
	case KillLeader, KillFollower:
		victim := leader
		if n.scenario == KillFollower {
			victim = n.pick(leader)
		}
		n.tl.add("kill -9 node %d (%s)", victim.id, n.scenario)
		if err := victim.kill(); err != nil {
			return err
		}
		time.Sleep(n.between(time.Second, 3*time.Second))
		n.tl.add("restart node %d", victim.id)
		return victim.start()
	case KillAll:
		n.tl.add("kill -9 every node")
		var errs []error
		for _, nd := range n.c.nodes {
			errs = append(errs, nd.kill())
		}
		time.Sleep(n.between(time.Second, 3*time.Second))
		n.tl.add("restart every node")
		errs = append(errs, n.c.startAll())
		return errors.Join(errs...)
	case PauseLeader:
		d := n.hold()
		n.tl.add("SIGSTOP leader node %d for %s", leader.id, d.Round(time.Millisecond))
		if err := leader.signal(syscall.SIGSTOP); err != nil {
			return err
		}
		time.Sleep(d)
		n.tl.add("SIGCONT node %d", leader.id)
		return leader.signal(syscall.SIGCONT)
	case IsolateLeader, PartitionHalves, OneWayLeader:
		return n.partition(bg, leader)
	case SlowLinks, LossyLinks:
		return n.links(leader)
	case BlackholeUntilSnapshot:
		return n.blackholeUntilSnapshot(bg, leader)
	case DiskFull:
		return n.diskFull(bg, leader)
	case ClockOffset:
		return n.clockOffset(bg, leader)
	case BitFlip:
		return n.bitFlip(bg, leader)
	case FailpointCrash:
		return n.failpointCrash(bg, leader)
	case PowerCut:
		return n.powerCut(bg, leader)
	case Membership:
		return n.membershipStep(bg, leader)
	}
	return fmt.Errorf("%w: %q", ErrUnknownScenario, n.scenario)
}

// pick returns a random running node other than not (which may be nil).
func (n *nemesis) pick(not *node) *node {
	var cands []*node
	for _, nd := range n.c.nodes {
		if nd != not {
			cands = append(cands, nd)
		}
	}
	return cands[n.rng.IntN(len(cands))]
}

func (n *nemesis) partition(ctx context.Context, leader *node) error {
	if n.c.net == nil {
		return ErrPartitionUnsupported
	}
	d := n.hold()
	var err error
	switch n.scenario {
	case IsolateLeader:
		var rest []int
		for _, nd := range n.c.nodes {
			if nd != leader {
				rest = append(rest, nd.id)
			}
		}
		n.tl.add("isolate leader node %d from %v for %s", leader.id, rest, d.Round(time.Millisecond))
		err = n.c.net.Partition(ctx, [][]int{{leader.id}, rest})
	case PartitionHalves:
		ids := make([]int, len(n.c.nodes))
		for i, nd := range n.c.nodes {
			ids[i] = nd.id
		}
		n.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		cut := len(ids) / 2
		a, b := slices.Sorted(slices.Values(ids[:cut])), slices.Sorted(slices.Values(ids[cut:]))
		n.tl.add("partition %v | %v for %s", a, b, d.Round(time.Millisecond))
		err = n.c.net.Partition(ctx, [][]int{a, b})
	case OneWayLeader:
		n.tl.add("drop inbound peer traffic of leader node %d for %s", leader.id, d.Round(time.Millisecond))
		err = n.c.net.DropInbound(ctx, leader.id)
	}
	if err != nil {
		return errors.Join(err, n.c.net.Heal(ctx))
	}
	time.Sleep(d)
	n.tl.add("heal network")
	return n.c.net.Heal(ctx)
}
