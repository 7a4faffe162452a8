// Command delayproxy forwards TCP connections to a target and delays every
// chunk of bytes, both ways, by a fixed time (chunks keep their order and
// stream on while earlier ones wait: added latency, not a bandwidth cap).
// It is the chaos harness's fault proxy (system_test/chaos.Proxy) with one
// rule, for measurements that need a peer link with a round trip of
// 2 x -delay on a machine without tc netem; see ../README.md.
//
//	delayproxy -listen 127.0.0.1:7101 -target 127.0.0.1:7001 -delay 5ms
//
// It runs until SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"rdb/system_test/chaos"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	target := flag.String("target", "", "address to forward to")
	delay := flag.Duration("delay", 0, "delay of every chunk, each way")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "delayproxy: -target is required")
		os.Exit(2)
	}
	p, err := chaos.ListenProxy(chaos.ProxyConfig{Listen: *listen, Target: *target})
	if err != nil {
		fmt.Fprintln(os.Stderr, "delayproxy:", err)
		os.Exit(1)
	}
	if *delay > 0 {
		p.Set(chaos.AnySource, chaos.BothWays, chaos.LinkFault{Mode: chaos.Delay, Delay: *delay})
	}
	fmt.Println(p.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	if err := p.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "delayproxy:", err)
	}
	st := p.Stats()
	fmt.Fprintf(os.Stderr, "delayproxy: %d connections, %d chunks forwarded, %d delayed\n", st.Conns, st.Forwarded, st.Delayed)
}
