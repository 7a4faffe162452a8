package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BuildRDB builds the rdb binary into dir, without the race detector and
// with the Go build tags in tags (space or comma separated; for example
// the value of RDB_BUILD_TAGS), and returns its path. It must run inside
// the rdb module.
func BuildRDB(ctx context.Context, dir, tags string) (string, error) {
	bin := filepath.Join(dir, "rdb")
	args := []string{"build", "-o", bin}
	if tags = strings.TrimSpace(tags); tags != "" {
		args = append(args, "-tags", strings.Join(strings.FieldsFunc(tags, func(r rune) bool { return r == ',' || r == ' ' }), ","))
	}
	args = append(args, "rdb/cmd/rdb")
	cmd := exec.CommandContext(ctx, "go", args...)
	// modernc SQLite is pure Go: a static binary, the same as `make build`.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chaos: go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// node is one rdb serve process of a run's cluster.
type node struct {
	id         int
	clientAddr string
	peerAddr   string
	dataDir    string
	logPath    string
	argv       []string // full command line, wrapped for its namespace
	advertise  string   // the peer address others dial when not peerAddr (a proxy)
	env        []string // added to the harness's environment
	failpoints string   // the RDB_FAILPOINTS_FILE it reads, if any

	mu     sync.Mutex // guards the fields below
	cmd    *exec.Cmd
	done   chan struct{}
	paused bool
}

// start starts the process; it is a no-op when it runs already.
func (n *node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return nil
	}
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("chaos: node %d log: %w", n.id, err)
	}
	cmd := exec.Command(n.argv[0], n.argv[1:]...)
	if len(n.env) > 0 {
		cmd.Env = append(os.Environ(), n.env...)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), n.env...)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("chaos: start node %d: %w", n.id, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	n.cmd, n.done, n.paused = cmd, done, false
	return nil
}

// kill sends SIGKILL and waits for the process to exit.
func (n *node) kill() error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd, n.done, n.paused = nil, nil, false
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("chaos: node %d did not exit within 30s of SIGKILL", n.id)
	}
}

// signal sends sig (SIGSTOP or SIGCONT) to the running process.
func (n *node) signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("chaos: node %d not running", n.id)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("chaos: signal node %d: %w", n.id, err)
	}
	n.paused = sig == syscall.SIGSTOP
	return nil
}

// running reports whether the process was started and not killed, and
// whether it exited on its own since.
func (n *node) running() (started, exited bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false, false
	}
	select {
	case <-n.done:
		return true, true
	default:
		return true, false
	}
}

func (n *node) isPaused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused
}
