package chaos

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// echoServer accepts connections on loopback and echoes what they send.
func echoServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
	return ln.Addr().String()
}

func startProxy(t testing.TB, cfg ProxyConfig) *Proxy {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	p, err := ListenProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads its echo, with a deadline.
func roundTrip(c net.Conn, msg []byte, within time.Duration) ([]byte, error) {
	_ = c.SetDeadline(time.Now().Add(within))
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	got := make([]byte, len(msg))
	_, err := io.ReadFull(c, got)
	return got, err
}

func TestProxy_Pass(t *testing.T) {
	p := startProxy(t, ProxyConfig{Target: echoServer(t)})
	c := dial(t, p.Addr())
	msg := make([]byte, 1<<20)
	rand.Read(msg)
	var got []byte
	var err error
	done := make(chan struct{})
	go func() { // write and read concurrently: 1 MiB exceeds socket buffers
		defer close(done)
		got = make([]byte, len(msg))
		_, err = io.ReadFull(c, got)
	}()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, werr := c.Write(msg); werr != nil {
		t.Fatal(werr)
	}
	<-done
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through proxy: err %v, equal %v", err, bytes.Equal(got, msg))
	}
	// Half-close passes through: the echo server sees EOF and closes.
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after half-close: n=%d err=%v, want EOF", n, err)
	}
}

func TestProxy_DelayKeepsOrder(t *testing.T) {
	p := startProxy(t, ProxyConfig{Target: echoServer(t), Seed: 1})
	p.Set(AnySource, BothWays, LinkFault{Mode: Delay, Delay: 60 * time.Millisecond, Jitter: 50 * time.Millisecond})
	c := dial(t, p.Addr())
	start := time.Now()
	if _, err := roundTrip(c, []byte("x"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 20*time.Millisecond {
		t.Fatalf("round trip %s through two delays of 60±50ms", rtt)
	}
	// Many small writes with jittered delays arrive in order.
	go func() {
		for i := range 200 {
			if _, err := c.Write([]byte{byte(i)}); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	got := make([]byte, 200)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	for i, b := range got {
		if b != byte(i) {
			t.Fatalf("byte %d is %d: order not preserved", i, b)
		}
	}
	if s := p.Stats(); s.Delayed == 0 {
		t.Fatalf("no chunk delayed: %+v", s)
	}
}

func TestProxy_Drop(t *testing.T) {
	p := startProxy(t, ProxyConfig{Target: echoServer(t), Seed: 7})
	p.Set(AnySource, ToTarget, LinkFault{Mode: Drop, Loss: 1})
	c := dial(t, p.Addr())
	if _, err := roundTrip(c, []byte("lost"), 5*time.Second); err == nil {
		t.Fatal("a chunk dropped with certainty was echoed")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("dropped chunk: got a timeout, want the connection reset: %v", err)
	}

	// At 50%, some connections survive a chunk and some are reset.
	p.Set(AnySource, ToTarget, LinkFault{Mode: Drop, Loss: 0.5})
	ok, lost := 0, 0
	for range 40 {
		c := dial(t, p.Addr())
		if _, err := roundTrip(c, []byte("maybe"), 5*time.Second); err == nil {
			ok++
		} else {
			lost++
		}
		c.Close()
	}
	if ok == 0 || lost == 0 {
		t.Fatalf("50%% loss: %d round trips passed, %d lost", ok, lost)
	}

	p.Heal()
	if _, err := roundTrip(dial(t, p.Addr()), []byte("healed"), 5*time.Second); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

func TestProxy_Blackhole(t *testing.T) {
	p := startProxy(t, ProxyConfig{Target: echoServer(t)})
	c := dial(t, p.Addr())
	if _, err := roundTrip(c, []byte("before"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Set(AnySource, BothWays, LinkFault{Mode: Blackhole})
	_, err := roundTrip(c, []byte("into the hole"), 300*time.Millisecond)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("blackholed: got %v, want a read timeout", err)
	}
	// New connections are accepted, and swallowed too.
	c2 := dial(t, p.Addr())
	if _, err := roundTrip(c2, []byte("new"), 300*time.Millisecond); err == nil {
		t.Fatal("a new connection passed the blackhole")
	}

	// Healed: the broken connection is reset at its next chunk, a new
	// one passes.
	p.Heal()
	if _, err := roundTrip(c, []byte("after"), 5*time.Second); err == nil {
		t.Fatal("a connection that lost bytes carried on after the heal")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("broken connection after heal: timeout, want reset: %v", err)
	}
	if _, err := roundTrip(dial(t, p.Addr()), []byte("fresh"), 5*time.Second); err != nil {
		t.Fatalf("fresh connection after heal: %v", err)
	}
	if s := p.Stats(); s.Blackholed == 0 || s.Resets == 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestProxy_PerSourceRule(t *testing.T) {
	p := startProxy(t, ProxyConfig{Target: echoServer(t), Source: func(net.Addr) int { return 1 }})
	p.Set(2, BothWays, LinkFault{Mode: Blackhole})
	c := dial(t, p.Addr())
	if _, err := roundTrip(c, []byte("from 1"), 5*time.Second); err != nil {
		t.Fatalf("rule for node 2 hit node 1's link: %v", err)
	}
	p.Set(AnySource, BothWays, LinkFault{Mode: Blackhole})
	p.Set(1, BothWays, LinkFault{Mode: Delay, Delay: time.Millisecond})
	if _, err := roundTrip(c, []byte("still 1"), 5*time.Second); err != nil {
		t.Fatalf("node 1's own rule should win over AnySource: %v", err)
	}
	p.Set(1, BothWays, LinkFault{Mode: Blackhole})
	if _, err := roundTrip(c, []byte("cut"), 300*time.Millisecond); err == nil {
		t.Fatal("node 1's link blackholed, but the chunk passed")
	}
}

func TestProxy_TargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()
	p := startProxy(t, ProxyConfig{Target: target})
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		return // refused or reset at once: fine
	}
	defer c.Close()
	if _, err := roundTrip(c, []byte("x"), 5*time.Second); err == nil {
		t.Fatal("a connection to a down target passed")
	}
}
