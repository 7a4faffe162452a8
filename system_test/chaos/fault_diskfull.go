package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Disk full (F12). Every node's data directory is its own tmpfs of
// tmpfsSize, mounted before the nodes start; the source field of each
// mount is "rdbchaos-<harness pid>", so that mounts left by a harness
// process that died are found and unmounted before the next disk-full
// run (as cleanStale does for namespaces). A fault fills one node's tmpfs
// with a balloon file (first a follower's, then the leader's, then
// alternating), holds, and deletes the balloon. rdb's contract: a node
// that cannot write its raft WAL, its SQLite database or a snapshot
// either keeps going once space is back, or exits with an error naming
// the write that failed; it never stays up without persisting. A node
// that exited is restarted by the nemesis after the space is freed, and
// the run's usual checks (final write, equal hashes at one applied index,
// checkers) prove that nothing acknowledged was lost.

const (
	// tmpfsSize leaves room for etcd's two preallocated 64 MiB WAL
	// segments, the SQLite file and its WAL, and snapshot copies.
	tmpfsSize = "384m"
	// mountSourcePrefix marks the tmpfs mounts of the harness.
	mountSourcePrefix = "rdbchaos-"
	balloonName       = "chaos-balloon"
)

// mountDataDirs mounts a tmpfs on every node's data directory.
func mountDataDirs(ctx context.Context, c *cluster, log *slog.Logger) (func(bool), error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: disk-full mounts a tmpfs per node", ErrNeedsRoot)
	}
	cleanStaleMounts(ctx, log)
	src := fmt.Sprintf("%s%d", mountSourcePrefix, os.Getpid())
	var mounted []string
	release := func(keep bool) {
		for _, dir := range mounted {
			if err := unmountDataDir(ctx, dir, keep); err != nil {
				log.Warn("unmount data dir", "dir", dir, "err", err)
			}
		}
		if !keep && len(mounted) > 0 {
			// The run's directory could not be removed while mounted.
			os.RemoveAll(filepath.Dir(mounted[0]))
		}
	}
	for _, n := range c.nodes {
		if err := os.MkdirAll(n.dataDir, 0o750); err != nil {
			release(false)
			return nil, fmt.Errorf("chaos: data dir: %w", err)
		}
		if err := run(ctx, "mount", "-t", "tmpfs", "-o", "size="+tmpfsSize+",mode=0750", src, n.dataDir); err != nil {
			release(false)
			return nil, fmt.Errorf("chaos: mount tmpfs: %w", err)
		}
		mounted = append(mounted, n.dataDir)
	}
	return release, nil
}

// unmountDataDir unmounts one tmpfs; with keep, its files are copied to
// the directory underneath first, so a failed run keeps its data.
func unmountDataDir(ctx context.Context, dir string, keep bool) error {
	var saved string
	if keep {
		saved = dir + ".saved"
		if err := os.MkdirAll(saved, 0o750); err != nil {
			return fmt.Errorf("chaos: save data dir: %w", err)
		}
		os.Remove(filepath.Join(dir, balloonName))
		if err := run(ctx, "cp", "-a", dir+"/.", saved); err != nil {
			return fmt.Errorf("chaos: save data dir: %w", err)
		}
	}
	if err := run(ctx, "umount", dir); err != nil {
		if lerr := run(ctx, "umount", "-l", dir); lerr != nil {
			return errors.Join(err, lerr)
		}
	}
	if keep {
		if err := os.Remove(dir); err != nil {
			return fmt.Errorf("chaos: save data dir: %w", err)
		}
		if err := os.Rename(saved, dir); err != nil {
			return fmt.Errorf("chaos: save data dir: %w", err)
		}
	}
	return nil
}

// cleanStaleMounts lazily unmounts harness tmpfs mounts whose harness
// process is gone.
func cleanStaleMounts(ctx context.Context, log *slog.Logger) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != "tmpfs" || !strings.HasPrefix(f[0], mountSourcePrefix) {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(f[0], mountSourcePrefix))
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		// /proc/self/mounts escapes spaces and the like as octal.
		dir := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(f[1])
		log.Info("unmounting stale chaos tmpfs", "dir", dir, "pid", pid)
		if err := run(ctx, "umount", "-l", dir); err != nil {
			log.Warn("unmount stale chaos tmpfs", "dir", dir, "err", err)
		}
	}
}

// fillDisk writes a balloon file into dir until the file system is full,
// and returns the bytes written.
func fillDisk(dir string) (int64, error) {
	f, err := os.OpenFile(filepath.Join(dir, balloonName), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("chaos: balloon: %w", err)
	}
	defer f.Close()
	var total int64
	for _, chunk := range []int{1 << 20, 4096, 1} {
		buf := make([]byte, chunk)
		for i := range buf {
			buf[i] = 0xba
		}
		for {
			n, err := f.Write(buf)
			total += int64(n)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				return total, fmt.Errorf("chaos: balloon: %w", err)
			}
		}
	}
	return total, nil
}

// freeDisk deletes the balloon.
func freeDisk(dir string) error {
	if err := os.Remove(filepath.Join(dir, balloonName)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("chaos: remove balloon: %w", err)
	}
	return nil
}

// diskFull fills a node's disk (a follower on even faults, the leader on
// odd ones), holds, frees it, and restarts the node if it exited.
func (n *nemesis) diskFull(ctx context.Context, leader *node) error {
	victim, role := leader, "leader"
	if n.count%2 == 0 {
		victim, role = n.pick(leader), "follower"
	}
	d := n.hold()
	written, err := fillDisk(victim.dataDir)
	if err != nil {
		return errors.Join(err, freeDisk(victim.dataDir))
	}
	n.tl.add("disk full on %s node %d (balloon %d MiB) for %s", role, victim.id, written>>20, d.Round(time.Millisecond))
	deadline := time.Now().Add(d)
	exitedAt := time.Duration(0)
	for time.Now().Before(deadline) {
		if _, exited := victim.running(); exited && exitedAt == 0 {
			exitedAt = d - time.Until(deadline)
			n.tl.add("node %d exited %s into disk full: %s", victim.id, exitedAt.Round(time.Millisecond), lastLogError(victim.logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := freeDisk(victim.dataDir); err != nil {
		return err
	}
	started, exited := victim.running()
	switch {
	case exited:
		n.tl.add("space freed on node %d; restarting it (it exited)", victim.id)
		return errors.Join(victim.kill(), victim.start())
	case !started:
		return victim.start()
	default:
		n.tl.add("space freed on node %d; it kept running", victim.id)
	}
	return nil
}

// lastLogError returns the last line of a node's log that reports an
// error, shortened, or "no error logged".
func lastLogError(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "log unreadable: " + err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-50; i-- {
		l := lines[i]
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "Error:") || strings.Contains(l, "panic:") {
			if len(l) > 400 {
				l = l[:400] + "..."
			}
			return l
		}
	}
	return "no error logged"
}
