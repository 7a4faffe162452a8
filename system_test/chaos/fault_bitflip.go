package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"rdb/rpc/rpcpb"
)

// Bit flip (F14). A fault stops a follower (SIGTERM, or kill -9), damages
// one of its files and starts it again:
//
//   - wal-tail: truncate the last raft WAL segment a few bytes before the
//     end of its data (a torn final write);
//   - wal-flip: flip one bit inside the data of a random WAL segment;
//   - snap-flip: flip one bit of a stored snapshot file (payload or
//     metadata); falls back to wal-flip when there is none;
//   - sqlite-flip: flip one bit of the SQLite database file.
//
// The node then either starts (its data must then be right: the run's
// final hash comparison at one applied index, the set, bank and
// integrity checks on every replica report it if not) or refuses to
// start. A refusal is what an operator sees; the harness then does what
// README tells the operator ("Replacing a dead node"): remove the member,
// wipe its data directory and add it back with a new id (--join), in the
// same network slot. The next fault waits until the node caught up. The
// outcome of each corruption goes to the timeline.

// corruption kinds.
const (
	corruptWALTail    = "wal-tail"
	corruptWALFlip    = "wal-flip"
	corruptSnapFlip   = "snap-flip"
	corruptSQLiteFlip = "sqlite-flip"
)

var corruptionKinds = []string{corruptWALTail, corruptWALFlip, corruptSnapFlip, corruptSQLiteFlip}

// errNothingToCorrupt means the chosen kind of file does not exist.
var errNothingToCorrupt = errors.New("chaos: no file of that kind")

// startWithin bounds how long a restarted node may take to answer or
// exit.
const startWithin = 30 * time.Second

// bitFlip stops a follower, corrupts one of its files and restarts it.
func (n *nemesis) bitFlip(ctx context.Context, leader *node) error {
	victim := n.pick(leader)
	how := "kill -9"
	if n.rng.IntN(2) == 0 {
		how = "SIGTERM"
		if err := victim.terminate(10 * time.Second); err != nil {
			return err
		}
	} else if err := victim.kill(); err != nil {
		return err
	}
	kind := corruptionKinds[n.rng.IntN(len(corruptionKinds))]
	what, err := corrupt(victim.dataDir, kind, n.rng)
	if errors.Is(err, errNothingToCorrupt) && kind != corruptWALFlip {
		n.tl.add("node %d has no file for %s; corrupting its WAL instead", victim.id, kind)
		kind = corruptWALFlip
		what, err = corrupt(victim.dataDir, kind, n.rng)
	}
	if err != nil {
		return errors.Join(err, victim.start())
	}
	n.tl.add("stopped node %d (%s); %s: %s; starting it", victim.id, how, kind, what)
	if err := victim.start(); err != nil {
		return err
	}
	outcome, up := n.awaitStart(ctx, victim)
	if up {
		n.tl.add("outcome %s on node %d: started (%s); its data is checked at the end of the run", kind, victim.id, outcome)
		err := n.awaitCatchUp(ctx, victim)
		if !errors.Is(err, errNoCatchUp) {
			return err
		}
		// The cut took records the node had acknowledged (its log now ends
		// below the leader's record of it): raft never re-sends them; rdb
		// stops such a node with ErrLogLost (chaos finding 6), and an
		// operator replaces it.
		n.tl.add("outcome %s on node %d: started but never caught up (it lost acknowledged log records; chaos finding 6): replacing it", kind, victim.id)
		if err := victim.kill(); err != nil {
			return err
		}
		return n.replace(ctx, victim)
	}
	n.tl.add("outcome %s on node %d: refused to start: %s", kind, victim.id, outcome)
	if err := victim.kill(); err != nil {
		return err
	}
	return n.replace(ctx, victim)
}

// replace does what README ("Replacing a dead node") tells an operator:
// remove the member, wipe its data directory, and start it again with a
// new raft id and --join, in the same network slot. (Raft cannot take
// back a node under the same id once it forgot its log: the leader's
// record of what the node holds would be wrong, and the node forgot its
// votes.)
func (n *nemesis) replace(ctx context.Context, nd *node) error {
	oldID, err := argvID(nd.argv)
	if err != nil {
		return err
	}
	newID := oldID + 10
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := n.c.admin.RemoveMember(rctx, &rpcpb.RemoveMemberRequest{Id: oldID})
		if err == nil {
			break
		}
		if pollWait(rctx) != nil {
			return fmt.Errorf("chaos: remove member %d: %w", oldID, err)
		}
	}
	if err := wipeDir(nd.dataDir); err != nil {
		return err
	}
	var join []string
	for _, o := range n.c.nodes {
		if o != nd {
			join = append(join, o.clientAddr)
		}
	}
	nd.argv = joinArgv(nd.argv, newID, strings.Join(join, ","))
	n.tl.add("recovery: removed member %d, wiped node %d's data directory, starting it as member %d with --join", oldID, nd.id, newID)
	if err := nd.start(); err != nil {
		return err
	}
	if outcome, up := n.awaitStart(ctx, nd); !up {
		return fmt.Errorf("chaos: node %d did not start as member %d: %s", nd.id, newID, outcome)
	}
	return n.awaitCatchUp(ctx, nd)
}

// argvID returns the value of --id in a serve command line.
func argvID(argv []string) (uint64, error) {
	for i, a := range argv[:len(argv)-1] {
		if a == "--id" {
			id, err := strconv.ParseUint(argv[i+1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("chaos: --id %q: %w", argv[i+1], err)
			}
			return id, nil
		}
	}
	return 0, fmt.Errorf("chaos: no --id in %v", argv)
}

// joinArgv returns argv with --id set to id, without --initial-cluster,
// and with --join set to join.
func joinArgv(argv []string, id uint64, join string) []string {
	var out []string
	for i := 0; i < len(argv); i++ {
		switch argv[i] {
		case "--id":
			out = append(out, "--id", strconv.FormatUint(id, 10))
			i++
		case "--initial-cluster", "--join":
			i++
		default:
			out = append(out, argv[i])
		}
	}
	return append(out, "--join", join)
}

// catchUpWithin bounds how long a restarted node may take to apply what
// the leader had committed when it came back.
const catchUpWithin = 30 * time.Second

// errNoCatchUp means a restarted node did not catch up within
// catchUpWithin.
var errNoCatchUp = errors.New("chaos: node did not catch up")

// awaitCatchUp waits until nd has applied the leader's commit index of
// now. Raft tolerates one faulty node: a second corruption before the
// first victim caught up would make two nodes of three forget
// acknowledged entries (a wiped node, or a WAL cut before its last
// fsynced record), and such a majority may elect a leader that lacks
// committed entries. That is outside the fault model, so the next fault
// waits for this.
func (n *nemesis) awaitCatchUp(ctx context.Context, nd *node) error {
	ctx, cancel := context.WithTimeout(ctx, catchUpWithin)
	defer cancel()
	began := time.Now()
	var target uint64
	for {
		if _, exited := nd.running(); exited {
			n.tl.add("node %d exited while catching up: %s", nd.id, lastLogError(nd.logPath))
			return fmt.Errorf("%w: node %d exited", errNoCatchUp, nd.id)
		}
		if target == 0 {
			if l := n.c.leader(ctx); l != nil && l != nd {
				if st, err := n.c.status(ctx, l); err == nil {
					target = st.GetCommitIndex()
				}
			}
		} else if st, err := n.c.status(ctx, nd); err == nil && st.GetAppliedIndex() >= target {
			n.tl.add("node %d caught up to index %d after %s", nd.id, target, time.Since(began).Round(100*time.Millisecond))
			return nil
		}
		if pollWait(ctx) != nil {
			n.tl.add("node %d did not catch up to index %d within %s", nd.id, target, catchUpWithin)
			return fmt.Errorf("%w: node %d, to the leader's commit index %d within %s of its restart", errNoCatchUp, nd.id, target, catchUpWithin)
		}
	}
}

// awaitStart waits until a just started node answers a status request
// (up) or exits; outcome describes which, with the error it logged.
func (n *nemesis) awaitStart(ctx context.Context, nd *node) (outcome string, up bool) {
	ctx, cancel := context.WithTimeout(ctx, startWithin)
	defer cancel()
	began := time.Now()
	for {
		if _, exited := nd.running(); exited {
			return "exited: " + lastLogError(nd.logPath), false
		}
		if _, err := n.c.status(ctx, nd); err == nil {
			return fmt.Sprintf("answering after %s", time.Since(began).Round(100*time.Millisecond)), true
		}
		if pollWait(ctx) != nil {
			return fmt.Sprintf("neither answering nor exited within %s", startWithin), false
		}
	}
}

// terminate sends SIGTERM and waits up to d for the process to exit, then
// kills it.
func (nd *node) terminate(d time.Duration) error {
	nd.mu.Lock()
	cmd, done := nd.cmd, nd.done
	nd.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err == nil {
		select {
		case <-done:
		case <-time.After(d):
		}
	}
	return nd.kill()
}

// corrupt damages one file of kind in dataDir and describes what it did.
func corrupt(dataDir, kind string, rng *rand.Rand) (string, error) {
	switch kind {
	case corruptWALTail, corruptWALFlip:
		segs, err := walSegments(dataDir)
		if err != nil {
			return "", err
		}
		if kind == corruptWALTail {
			path := segs[len(segs)-1]
			end, err := dataEnd(path)
			if err != nil {
				return "", err
			}
			cut := 1 + rng.IntN(min(64, max(end-1, 1)))
			if err := os.Truncate(path, int64(end-cut)); err != nil {
				return "", fmt.Errorf("chaos: truncate: %w", err)
			}
			return fmt.Sprintf("truncated %s to %d bytes (%d before the end of its data)", rel(dataDir, path), end-cut, cut), nil
		}
		path := segs[rng.IntN(len(segs))]
		end, err := dataEnd(path)
		if err != nil {
			return "", err
		}
		return flipBit(dataDir, path, end, rng)
	case corruptSnapFlip:
		files, _ := filepath.Glob(filepath.Join(dataDir, "snapshots", "*.snap"))
		metas, _ := filepath.Glob(filepath.Join(dataDir, "snapshots", "*.meta"))
		files = append(files, metas...)
		if len(files) == 0 {
			return "", errNothingToCorrupt
		}
		slices.Sort(files)
		path := files[rng.IntN(len(files))]
		info, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("chaos: %w", err)
		}
		return flipBit(dataDir, path, int(info.Size()), rng)
	case corruptSQLiteFlip:
		path := filepath.Join(dataDir, "db.sqlite")
		info, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("%w: %v", errNothingToCorrupt, err)
		}
		return flipBit(dataDir, path, int(info.Size()), rng)
	}
	return "", fmt.Errorf("chaos: unknown corruption %q", kind)
}

// walSegments lists a data directory's WAL segments in order.
func walSegments(dataDir string) ([]string, error) {
	segs, err := filepath.Glob(filepath.Join(dataDir, "raft", "*.wal"))
	if err != nil || len(segs) == 0 {
		return nil, fmt.Errorf("%w: no wal segment in %s", errNothingToCorrupt, dataDir)
	}
	slices.Sort(segs) // names are <seq>-<index> in fixed-width hex
	return segs, nil
}

// dataEnd returns the offset after the last non-zero byte of a file (WAL
// segments are preallocated with zeros).
func dataEnd(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("chaos: %w", err)
	}
	end := len(bytes.TrimRight(b, "\x00"))
	if end == 0 {
		return 0, fmt.Errorf("%w: %s holds no data", errNothingToCorrupt, path)
	}
	return end, nil
}

// flipBit flips one random bit in the first end bytes of path.
func flipBit(dataDir, path string, end int, rng *rand.Rand) (string, error) {
	if end <= 0 {
		return "", fmt.Errorf("%w: %s is empty", errNothingToCorrupt, path)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("chaos: %w", err)
	}
	defer f.Close()
	off, bit := int64(rng.IntN(end)), rng.IntN(8)
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		return "", fmt.Errorf("chaos: read %s: %w", path, err)
	}
	b[0] ^= 1 << bit
	if _, err := f.WriteAt(b, off); err != nil {
		return "", fmt.Errorf("chaos: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("chaos: sync %s: %w", path, err)
	}
	return fmt.Sprintf("flipped bit %d of byte %d of %s (%d bytes of data)", bit, off, rel(dataDir, path), end), nil
}

func rel(dir, path string) string {
	if r, err := filepath.Rel(dir, path); err == nil {
		return r
	}
	return path
}

// wipeDir removes everything inside dir, keeping dir.
func wipeDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("chaos: wipe %s: %w", dir, err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("chaos: wipe %s: %w", dir, err)
		}
	}
	return nil
}
