package chaos

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Direction selects the way of a proxied connection a link fault applies
// to.
type Direction int

// Directions. A connection is opened by a dialer (a peer sending raft
// messages) to the proxy, which forwards it to its target (a node's real
// peer listener).
const (
	// ToTarget is the bytes from the dialer to the target.
	ToTarget Direction = 1 << iota
	// FromTarget is the bytes from the target back to the dialer.
	FromTarget
	// BothWays is both directions.
	BothWays = ToTarget | FromTarget
)

// AnySource, as the source of a rule, matches connections from every
// dialer; a rule for the dialer's own node id takes precedence.
const AnySource = 0

// LinkMode is what a proxy does with the chunks it reads.
type LinkMode int

// Link modes.
const (
	// Pass forwards every chunk at once.
	Pass LinkMode = iota
	// Delay holds each chunk for Delay±Jitter before forwarding it; a
	// chunk never overtakes the one read before it on its connection, so
	// order within a connection is preserved.
	Delay
	// Drop loses each chunk with probability Loss. TCP does not lose
	// bytes inside a connection, and a byte stream with a hole in it is
	// garbage to HTTP/2, so a lost chunk resets the connection (RST both
	// ways): the chunk and everything queued behind it on that connection
	// are lost, the sender sees a broken stream, redials (gRPC reconnect
	// backoff), and raft must resend what was lost. "50% drop" means each
	// chunk has even odds of being the one that kills its connection.
	Drop
	// Blackhole accepts connections and reads from both ends but forwards
	// nothing: the sender's writes succeed and vanish. A connection that
	// lost bytes this way is reset at its next chunk once the link passes
	// again (its stream is broken), so a healed link is usable at once.
	Blackhole
)

// String returns the mode's name.
func (m LinkMode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Delay:
		return "delay"
	case Drop:
		return "drop"
	case Blackhole:
		return "blackhole"
	}
	return fmt.Sprintf("LinkMode(%d)", int(m))
}

// LinkFault is the behaviour of one direction of a link.
type LinkFault struct {
	// Mode is what happens to each chunk; the zero value passes.
	Mode LinkMode
	// Delay and Jitter: with Mode Delay, each chunk waits a duration drawn
	// uniformly from [Delay-Jitter, Delay+Jitter] (at least 0).
	Delay, Jitter time.Duration
	// Loss: with Mode Drop, the probability (0..1) that a chunk is lost
	// (and its connection reset).
	Loss float64
}

// String describes the fault, for timelines.
func (f LinkFault) String() string {
	switch f.Mode {
	case Delay:
		return fmt.Sprintf("delay %s±%s", f.Delay, f.Jitter)
	case Drop:
		return fmt.Sprintf("drop %.0f%%", 100*f.Loss)
	}
	return f.Mode.String()
}

// ProxyConfig configures a Proxy.
type ProxyConfig struct {
	// Listen is the address the proxy listens on (host:port; port 0
	// picks one).
	Listen string
	// Target is the address every accepted connection is forwarded to.
	Target string
	// Source names the node a connection comes from, by the dialer's
	// address, for per-link rules; nil or 0 means unknown (only AnySource
	// rules apply).
	Source func(net.Addr) int
	// Seed seeds the loss and jitter draws.
	Seed uint64
	// Logger receives connection errors at debug level; nil discards.
	Logger *slog.Logger
}

// ProxyStats counts what a proxy did with the chunks it read.
type ProxyStats struct {
	Conns      int64 // connections accepted and forwarded
	Forwarded  int64 // chunks written on
	Delayed    int64 // chunks read under a Delay rule
	Dropped    int64 // chunks lost under a Drop rule
	Blackholed int64 // chunks swallowed under a Blackhole rule
	Resets     int64 // connections reset for a lost chunk
}

// Proxy is a fault-injecting TCP proxy in front of one listener. Its
// rules can be changed at any time, from any goroutine; a change applies
// to the next chunk read on every connection, existing ones included.
type Proxy struct {
	cfg ProxyConfig
	ln  net.Listener
	log *slog.Logger
	wg  sync.WaitGroup

	mu     sync.Mutex // guards the fields below
	rules  map[ruleKey]LinkFault
	conns  map[*proxyConn]struct{}
	rng    *rand.Rand
	closed bool

	stats struct{ conns, forwarded, delayed, dropped, blackholed, resets atomic.Int64 }
}

type ruleKey struct {
	source int
	dir    Direction // ToTarget or FromTarget
}

// chunkSize is the largest chunk read at once.
const chunkSize = 32 << 10

// ListenProxy starts a proxy: it listens on cfg.Listen and forwards
// every accepted connection to cfg.Target until Close. Every link
// passes until Set says otherwise.
func ListenProxy(cfg ProxyConfig) (*Proxy, error) {
	if cfg.Target == "" {
		return nil, errors.New("chaos: proxy: no target")
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("chaos: proxy listen: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{
		cfg:   cfg,
		ln:    ln,
		log:   log.With("proxy", ln.Addr().String(), "target", cfg.Target),
		rules: make(map[ruleKey]LinkFault),
		conns: make(map[*proxyConn]struct{}),
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x9e0)),
	}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr returns the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set makes the links from source (a node id, or AnySource) behave as f
// in the directions dir.
func (p *Proxy) Set(source int, dir Direction, f LinkFault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range []Direction{ToTarget, FromTarget} {
		if dir&d == 0 {
			continue
		}
		if f.Mode == Pass {
			delete(p.rules, ruleKey{source, d})
		} else {
			p.rules[ruleKey{source, d}] = f
		}
	}
}

// Heal removes every rule: all links pass.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.rules)
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() ProxyStats {
	return ProxyStats{
		Conns:      p.stats.conns.Load(),
		Forwarded:  p.stats.forwarded.Load(),
		Delayed:    p.stats.delayed.Load(),
		Dropped:    p.stats.dropped.Load(),
		Blackholed: p.stats.blackholed.Load(),
		Resets:     p.stats.resets.Load(),
	}
}

// Close stops listening, resets every open connection and waits for the
// proxy's goroutines. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range conns {
		c.reset()
	}
	p.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("chaos: proxy close: %w", err)
	}
	return nil
}

// fault returns the rule for a chunk from source going dir.
func (p *Proxy) fault(source int, dir Direction) LinkFault {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.rules[ruleKey{source, dir}]; ok && source != AnySource {
		return f
	}
	return p.rules[ruleKey{AnySource, dir}]
}

// chance reports true with probability prob.
func (p *Proxy) chance(prob float64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.Float64() < prob
}

// delayOf draws a chunk's delay under f.
func (p *Proxy) delayOf(f LinkFault) time.Duration {
	d := f.Delay
	if f.Jitter > 0 {
		p.mu.Lock()
		d += time.Duration(p.rng.Int64N(int64(2*f.Jitter)+1)) - f.Jitter
		p.mu.Unlock()
	}
	return max(d, 0)
}

func (p *Proxy) accept() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Warn("proxy accept", "err", err)
			}
			return
		}
		up, err := net.DialTimeout("tcp", p.cfg.Target, 5*time.Second)
		if err != nil {
			// The target is down (a killed node): refuse like it would.
			p.log.Debug("proxy dial target", "err", err)
			resetConn(down)
			continue
		}
		source := AnySource
		if p.cfg.Source != nil {
			source = p.cfg.Source(down.RemoteAddr())
		}
		c := &proxyConn{p: p, source: source, down: down, up: up, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.reset()
			return
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.stats.conns.Add(1)
		p.wg.Go(c.run)
	}
}

// proxyConn is one proxied connection: down is the dialer's side, up the
// connection to the target.
type proxyConn struct {
	p        *Proxy
	source   int
	down, up net.Conn
	done     chan struct{} // closed by reset
	once     sync.Once
	tainted  atomic.Bool // bytes were lost: the stream is broken
}

type chunk struct {
	data    []byte
	release time.Time
}

func (c *proxyConn) run() {
	var wg sync.WaitGroup
	wg.Go(func() { c.pipe(c.down, c.up, ToTarget) })
	wg.Go(func() { c.pipe(c.up, c.down, FromTarget) })
	wg.Wait()
	c.down.Close()
	c.up.Close()
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
}

// reset closes both ends with RST (SO_LINGER 0), once.
func (c *proxyConn) reset() {
	c.once.Do(func() {
		close(c.done)
		resetConn(c.down)
		resetConn(c.up)
	})
}

func resetConn(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

// pipe copies src to dst in one direction, applying the rules to each
// chunk read. A reader goroutine (this one) stamps each chunk with its
// release time; a writer goroutine forwards chunks in order when due.
func (c *proxyConn) pipe(src, dst net.Conn, dir Direction) {
	queue := make(chan chunk, 64)
	var wg sync.WaitGroup
	wg.Go(func() { c.write(dst, queue) })
	defer wg.Wait()
	defer close(queue)
	var last time.Time // release time of the previous chunk
	buf := make([]byte, chunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f := c.p.fault(c.source, dir)
			switch {
			case f.Mode == Blackhole:
				c.p.stats.blackholed.Add(1)
				c.tainted.Store(true)
				continue
			case f.Mode == Drop && c.p.chance(f.Loss):
				c.p.stats.dropped.Add(1)
				c.p.stats.resets.Add(1)
				c.reset()
				return
			case c.tainted.Load():
				c.p.stats.resets.Add(1)
				c.reset()
				return
			}
			release := time.Now()
			if f.Mode == Delay {
				release = release.Add(c.p.delayOf(f))
				c.p.stats.delayed.Add(1)
			}
			if release.Before(last) {
				release = last // never overtake the previous chunk
			}
			last = release
			select {
			case queue <- chunk{data: append([]byte(nil), buf[:n]...), release: release}:
			case <-c.done:
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.p.log.Debug("proxy read", "dir", dir, "err", err)
			}
			if errors.Is(err, io.EOF) {
				return // the writer half-closes dst once the queue is drained
			}
			c.reset()
			return
		}
	}
}

// write forwards queued chunks to dst when due; once the queue is closed
// and drained it half-closes dst, passing the EOF on.
func (c *proxyConn) write(dst net.Conn, queue <-chan chunk) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ch := range queue {
		if d := time.Until(ch.release); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-c.done:
				return
			}
		}
		if _, err := dst.Write(ch.data); err != nil {
			c.reset()
			return
		}
		c.p.stats.forwarded.Add(1)
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
