package chaos

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Link faults (F7) go through one Proxy per node, in front of its peer
// listener. Each node listens on its usual peer address and advertises
// its proxy's address (--advertise-peer), so every raft message and
// snapshot stream to node i passes proxy i.
//
// Where the proxies listen: in the root namespace, which reaches every
// node. With namespaces, proxy i listens on the bridge's address
// (<subnet>.254:proxyPortBase+i), which every namespace reaches through
// its veth; the dialer's address then names the sending node, so rules
// can be per link. On loopback, proxies listen on free 127.0.0.1 ports
// and every dialer is 127.0.0.1: rules can only be per destination node.
//
// Proxied traffic reaches a node from the bridge address, not from the
// sending node's, so the iptables partition rules (which match the
// sender's address) would not cut it: proxies are used only in the
// scenarios that fault links through them (Scenario.usesProxies), and
// partition scenarios keep dialing nodes directly.
const proxyPortBase = 7100

// Link fault settings of the reliability plan.
var (
	slowLink  = LinkFault{Mode: Delay, Delay: 75 * time.Millisecond, Jitter: 50 * time.Millisecond}
	lossyLink = LinkFault{Mode: Drop, Loss: 0.5}
)

// usesProxies reports whether the scenario runs peer links through
// proxies.
func (s Scenario) usesProxies() bool {
	return s == SlowLinks || s == LossyLinks || s == BlackholeUntilSnapshot
}

// adjustTiming overrides the seed's compaction settings where the
// scenario needs them: blackhole-until-snapshot needs the leader's log
// compacted within seconds under the workload.
func (s Scenario) adjustTiming(t Timing) Timing {
	if s == BlackholeUntilSnapshot {
		t.SnapshotEntries, t.SnapshotTrailing = 50, 10
	}
	return t
}

// prepareNode readies node nd (whose own addresses are set) for the
// scenario: it starts nd's proxy, which nd advertises as its peer
// address, and sets nd's environment. The proxy listens before its
// address is handed out, so no other process can take the port.
func (c *cluster) prepareNode(s Scenario, nd *node, dir string, seed uint64) error {
	if s.usesProxies() {
		cfg := ProxyConfig{Listen: "127.0.0.1:0", Target: nd.peerAddr, Seed: seed + uint64(nd.id), Logger: c.log}
		if c.net != nil {
			cfg.Listen = net.JoinHostPort(c.net.bridgeIP(), strconv.Itoa(proxyPortBase+nd.id))
			cfg.Source = c.net.nodeOf
		}
		p, err := ListenProxy(cfg)
		if err != nil {
			return fmt.Errorf("chaos: proxy for node %d: %w", nd.id, err)
		}
		if c.proxies == nil {
			c.proxies = make(map[int]*Proxy)
		}
		c.proxies[nd.id] = p
		nd.advertise = p.Addr()
	}
	if s.needsFailpoints() {
		nd.failpoints = filepath.Join(dir, fmt.Sprintf("node%d.failpoints", nd.id))
		nd.env = append(nd.env, "RDB_FAILPOINTS_FILE="+nd.failpoints)
	}
	return nil
}

// dialAddr returns the peer address other nodes dial: the proxy's when
// there is one.
func (n *node) dialAddr() string {
	if n.advertise != "" {
		return n.advertise
	}
	return n.peerAddr
}

// bridgeIP returns the root namespace's address on the run's bridge.
func (nw *netns) bridgeIP() string { return nw.subnet + "254" }

// nodeOf returns the node whose namespace address addr has, or 0.
func (nw *netns) nodeOf(addr net.Addr) int {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return AnySource
	}
	rest, ok := strings.CutPrefix(ta.IP.String(), nw.subnet)
	if !ok {
		return AnySource
	}
	if id, err := strconv.Atoi(rest); err == nil && id >= 1 && id <= nw.nodes {
		return id
	}
	return AnySource
}

// closeProxies closes every proxy.
func (c *cluster) closeProxies() error {
	var errs []error
	for _, p := range c.proxies {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// healLinks makes every proxied link pass.
func (c *cluster) healLinks() {
	for _, p := range c.proxies {
		p.Heal()
	}
}

// faultLinks applies f to every link (victim nil) or to victim's links,
// both ways. Without namespaces the proxies cannot tell senders apart:
// only the links into victim are faulted there (its outbound messages,
// which enter the other nodes' proxies, pass).
func (c *cluster) faultLinks(victim *node, f LinkFault) {
	for id, p := range c.proxies {
		switch {
		case victim == nil || id == victim.id:
			p.Set(AnySource, BothWays, f)
		case c.net != nil:
			p.Set(victim.id, BothWays, f)
		}
	}
}

// proxyStats sums the counters of every proxy.
func (c *cluster) proxyStats() ProxyStats {
	var s ProxyStats
	for _, p := range c.proxies {
		ps := p.Stats()
		s.Conns += ps.Conns
		s.Forwarded += ps.Forwarded
		s.Delayed += ps.Delayed
		s.Dropped += ps.Dropped
		s.Blackholed += ps.Blackholed
		s.Resets += ps.Resets
	}
	return s
}

// links injects one slow-links or lossy-links fault: on every link or on
// the leader's links (slow), or on every link, the leader's or a random
// node's (lossy); slow for 2-5 s, lossy for 0.8-1.2 s.
func (n *nemesis) links(leader *node) error {
	if len(n.c.proxies) == 0 {
		return errors.New("chaos: no link proxies")
	}
	f, d := slowLink, n.between(2*time.Second, 5*time.Second)
	if n.scenario == LossyLinks {
		f, d = lossyLink, n.between(800*time.Millisecond, 1200*time.Millisecond)
	}
	var victim *node
	switch r := n.rng.IntN(3); {
	case r == 1 && leader != nil:
		victim = leader
	case r == 2 && n.scenario == LossyLinks:
		victim = n.pick(nil)
	}
	what := "every peer link"
	if victim != nil {
		what = fmt.Sprintf("the links of node %d", victim.id)
		if victim == leader {
			what += " (leader)"
		}
	}
	before := n.c.proxyStats()
	n.tl.add("%s on %s for %s", f, what, d.Round(time.Millisecond))
	n.c.faultLinks(victim, f)
	time.Sleep(d)
	n.c.healLinks()
	after := n.c.proxyStats()
	n.tl.add("heal links (chunks during the fault: %d delayed, %d dropped, %d connections reset)",
		after.Delayed-before.Delayed, after.Dropped-before.Dropped, after.Resets-before.Resets)
	return nil
}
