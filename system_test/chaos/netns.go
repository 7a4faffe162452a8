package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Names of the network objects a run creates. Every one carries the run's
// id so that stale ones from crashed runs can be found and removed:
//
//	namespace  rdbchaos-<pid>-<rid>-<n>   (pid of the harness process)
//	bridge     rcb<rid>
//	veth       rcv<rid><n> (root side), rcp<rid><n> (namespace side)
const (
	nsPrefix     = "rdbchaos-"
	bridgePrefix = "rcb"
	vethPrefix   = "rcv"
	vethPeerPfx  = "rcp"
	// Ports every node uses inside its own namespace.
	nsClientPort = 5001
	nsPeerPort   = 7001
)

// netns places each node in its own network namespace joined by a bridge
// in the root namespace, so that iptables rules inside a namespace cut
// links between nodes while the harness still reaches every node.
type netns struct {
	rid    string
	subnet string // "10.a.b."
	nodes  int
	log    *slog.Logger
	// rules currently installed: namespace index → iptables rule specs.
	rules map[int][][]string
}

// netnsAvailable reports why namespaces cannot be used, or nil.
func netnsAvailable() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root", ErrNoNetns)
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s not found", ErrNoNetns, tool)
		}
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		return fmt.Errorf("%w: ip netns list: %v: %s", ErrNoNetns, err, out)
	}
	return nil
}

func run(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func output(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// newNetns creates n namespaces, veth pairs and a bridge in a private
// 10.x.y.0/24 subnet not used on this machine.
func newNetns(ctx context.Context, rng *rand.Rand, n int, log *slog.Logger) (_ *netns, err error) {
	if err := netnsAvailable(); err != nil {
		return nil, err
	}
	cleanStale(ctx, log)
	used, err := output(ctx, "ip", "-4", "addr")
	if err != nil {
		return nil, err
	}
	routes, err := output(ctx, "ip", "-4", "route")
	if err != nil {
		return nil, err
	}
	var subnet string
	for range 100 {
		s := fmt.Sprintf("10.%d.%d.", 64+rng.IntN(190), rng.IntN(256))
		if !strings.Contains(used, s) && !strings.Contains(routes, s) {
			subnet = s
			break
		}
	}
	if subnet == "" {
		return nil, fmt.Errorf("chaos: no unused 10.x.y.0/24 subnet found")
	}
	nw := &netns{
		rid:    fmt.Sprintf("%06x", rng.IntN(1<<24)),
		subnet: subnet,
		nodes:  n,
		log:    log,
		rules:  make(map[int][][]string),
	}
	defer func() {
		if err != nil {
			nw.Close()
		}
	}()
	for i := 1; i <= n; i++ {
		if err := run(ctx, "ip", "netns", "add", nw.ns(i)); err != nil {
			return nil, err
		}
	}
	br := nw.bridge()
	steps := [][]string{
		{"ip", "link", "add", br, "type", "bridge"},
		{"ip", "addr", "add", subnet + "254/24", "dev", br},
		{"ip", "link", "set", br, "up"},
		// With br_netfilter loaded, bridged frames pass the root FORWARD
		// chain, whose policy may be DROP (Docker sets it so).
		{"iptables", "-I", "FORWARD", "-i", br, "-o", br, "-j", "ACCEPT"},
	}
	for i := 1; i <= n; i++ {
		v, p, ns := nw.veth(i), nw.vethPeer(i), nw.ns(i)
		steps = append(steps,
			[]string{"ip", "link", "add", v, "type", "veth", "peer", "name", p},
			[]string{"ip", "link", "set", p, "netns", ns},
			[]string{"ip", "link", "set", v, "master", br},
			[]string{"ip", "link", "set", v, "up"},
			[]string{"ip", "-n", ns, "addr", "add", nw.IP(i) + "/24", "dev", p},
			[]string{"ip", "-n", ns, "link", "set", p, "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
		)
	}
	for _, s := range steps {
		if err := run(ctx, s...); err != nil {
			return nil, fmt.Errorf("chaos: set up namespaces: %w", err)
		}
	}
	return nw, nil
}

func (nw *netns) ns(i int) string {
	return fmt.Sprintf("%s%d-%s-%d", nsPrefix, os.Getpid(), nw.rid, i)
}
func (nw *netns) bridge() string    { return bridgePrefix + nw.rid }
func (nw *netns) veth(i int) string { return fmt.Sprintf("%s%s%d", vethPrefix, nw.rid, i) }
func (nw *netns) vethPeer(i int) string {
	return fmt.Sprintf("%s%s%d", vethPeerPfx, nw.rid, i)
}

// IP returns node i's address.
func (nw *netns) IP(i int) string { return nw.subnet + strconv.Itoa(i) }

// ClientAddr returns node i's client address.
func (nw *netns) ClientAddr(i int) string { return fmt.Sprintf("%s:%d", nw.IP(i), nsClientPort) }

// PeerAddr returns node i's peer address.
func (nw *netns) PeerAddr(i int) string { return fmt.Sprintf("%s:%d", nw.IP(i), nsPeerPort) }

// Wrap returns the command line that runs args inside node i's namespace.
// ip netns exec execs the program directly, so its pid is the program's.
func (nw *netns) Wrap(i int, args []string) []string {
	return append([]string{"ip", "netns", "exec", nw.ns(i)}, args...)
}

// addRule installs an iptables rule in node i's namespace.
func (nw *netns) addRule(ctx context.Context, i int, spec ...string) error {
	args := append([]string{"ip", "netns", "exec", nw.ns(i), "iptables", "-A"}, spec...)
	if err := run(ctx, args...); err != nil {
		return fmt.Errorf("chaos: partition: %w", err)
	}
	nw.rules[i] = append(nw.rules[i], spec)
	return nil
}

// Partition cuts every link between nodes of different groups, both ways
// and on every port: node i drops all packets from nodes outside its group.
func (nw *netns) Partition(ctx context.Context, groups [][]int) error {
	group := make(map[int]int)
	for g, members := range groups {
		for _, m := range members {
			group[m] = g
		}
	}
	for i := 1; i <= nw.nodes; i++ {
		for j := 1; j <= nw.nodes; j++ {
			if i == j || group[i] == group[j] {
				continue
			}
			if err := nw.addRule(ctx, i, "INPUT", "-s", nw.IP(j), "-j", "DROP"); err != nil {
				return err
			}
		}
	}
	return nil
}

// DropInbound makes victim drop what the other nodes send to its peer
// port (their raft messages to it), while its own messages and the
// replies on the connections it opened still pass: a one-way partition.
func (nw *netns) DropInbound(ctx context.Context, victim int) error {
	for j := 1; j <= nw.nodes; j++ {
		if j == victim {
			continue
		}
		if err := nw.addRule(ctx, victim, "INPUT", "-s", nw.IP(j), "-p", "tcp", "--dport", strconv.Itoa(nsPeerPort), "-j", "DROP"); err != nil {
			return err
		}
	}
	return nil
}

// Heal removes every rule Partition and DropInbound installed.
func (nw *netns) Heal(ctx context.Context) error {
	var errs []error
	for i, specs := range nw.rules {
		for _, spec := range specs {
			args := append([]string{"ip", "netns", "exec", nw.ns(i), "iptables", "-D"}, spec...)
			if err := run(ctx, args...); err != nil {
				errs = append(errs, err)
			}
		}
		delete(nw.rules, i)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("chaos: heal: %w", err)
	}
	return nil
}

// Close deletes the namespaces (with their veth pairs), the bridge and the
// FORWARD rule. Errors are logged: Close runs on every path.
func (nw *netns) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	removeRun(ctx, nw.log, nw.rid, func(name string) bool {
		return strings.HasPrefix(name, fmt.Sprintf("%s%d-%s-", nsPrefix, os.Getpid(), nw.rid))
	})
}

// removeRun deletes the namespaces accepted by isRunNS and the bridge,
// veths and FORWARD rule of run rid.
func removeRun(ctx context.Context, log *slog.Logger, rid string, isRunNS func(string) bool) {
	if list, err := output(ctx, "ip", "netns", "list"); err == nil {
		for _, line := range strings.Split(list, "\n") {
			if f := strings.Fields(line); len(f) > 0 && isRunNS(f[0]) {
				// Servers of a harness that died keep running in their
				// namespace: stop them first.
				if pids, err := output(ctx, "ip", "netns", "pids", f[0]); err == nil {
					for _, p := range strings.Fields(pids) {
						if pid, err := strconv.Atoi(p); err == nil {
							_ = syscall.Kill(pid, syscall.SIGKILL)
						}
					}
				}
				if err := run(ctx, "ip", "netns", "del", f[0]); err != nil {
					log.Warn("remove namespace", "ns", f[0], "err", err)
				}
			}
		}
	}
	br := bridgePrefix + rid
	if links, err := output(ctx, "ip", "-o", "link", "show"); err == nil {
		for _, name := range linkNames(links) {
			if name == br || strings.HasPrefix(name, vethPrefix+rid) || strings.HasPrefix(name, vethPeerPfx+rid) {
				// A veth may already be gone with its namespace.
				if err := run(ctx, "ip", "link", "del", name); err != nil {
					log.Debug("remove link", "link", name, "err", err)
				}
			}
		}
	}
	for range 10 { // the rule may have been inserted more than once
		if run(ctx, "iptables", "-D", "FORWARD", "-i", br, "-o", br, "-j", "ACCEPT") != nil {
			break
		}
	}
}

// linkNames returns the interface names in `ip -o link show` output
// ("3: name@peer: <...>").
func linkNames(out string) []string {
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		if at := strings.IndexByte(name, '@'); at >= 0 {
			name = name[:at]
		}
		names = append(names, name)
	}
	return names
}

// cleanStale removes namespaces, bridges and veths left by harness
// processes that are gone (a crashed or killed run).
func cleanStale(ctx context.Context, log *slog.Logger) {
	list, err := output(ctx, "ip", "netns", "list")
	if err != nil {
		return
	}
	live := make(map[string]bool)
	stale := make(map[string]bool)
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		parts := strings.Split(strings.TrimPrefix(f[0], nsPrefix), "-")
		if len(parts) != 3 {
			continue
		}
		pid, err := strconv.Atoi(parts[0])
		if err == nil && pid != os.Getpid() && !processAlive(pid) {
			stale[parts[1]] = true
		} else {
			live[parts[1]] = true
		}
	}
	// Bridges of runs whose namespaces are all gone are stale too.
	if links, err := output(ctx, "ip", "-o", "link", "show"); err == nil {
		for _, name := range linkNames(links) {
			if rid, ok := strings.CutPrefix(name, bridgePrefix); ok && len(rid) == 6 && !live[rid] {
				stale[rid] = true
			}
		}
	}
	for rid := range stale {
		if live[rid] {
			continue
		}
		log.Info("removing stale chaos network objects", "run", rid)
		removeRun(ctx, log, rid, func(name string) bool {
			parts := strings.Split(strings.TrimPrefix(name, nsPrefix), "-")
			return strings.HasPrefix(name, nsPrefix) && len(parts) == 3 && parts[1] == rid
		})
	}
}

func processAlive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}
