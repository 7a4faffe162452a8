// Command load drives an etcd cluster with the workloads rdb bench runs
// against rdb: single puts of 100-byte values, transactions of --batch
// such puts (rdb's atomic batches), or linearizable / serializable gets,
// from N concurrent workers over C shared client connections, and prints
// one JSON object (ops_per_sec, rows_per_sec, p50_ms, p99_ms, errors),
// the fields rdb bench --format json prints.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func main() {
	endpoint := flag.String("endpoint", "", "etcd client URL the workers use (one node)")
	workload := flag.String("workload", "put", "put, txn (--batch puts in one transaction), get-linearizable or get-serializable")
	batch := flag.Int("batch", 100, "puts per transaction of the txn workload (etcd's --max-txn-ops is 128 by default)")
	concurrency := flag.Int("concurrency", 1, "concurrent workers")
	conns := flag.Int("conns", 1, "client connections, shared round-robin by the workers")
	duration := flag.Duration("duration", 5*time.Second, "measured time")
	warmup := flag.Duration("warmup", time.Second, "unmeasured time first")
	flag.Parse()
	known := map[string]bool{"put": true, "txn": true, "get-linearizable": true, "get-serializable": true}
	if *endpoint == "" || !known[*workload] || *concurrency < 1 || *conns < 1 || *batch < 1 {
		fmt.Fprintln(os.Stderr, "usage: load --endpoint URL [--workload put|txn|get-linearizable|get-serializable] [--batch K] [--concurrency N] [--conns C] [--duration D]")
		os.Exit(2)
	}
	clients := make([]*clientv3.Client, *conns)
	for i := range clients {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{*endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			fmt.Fprintln(os.Stderr, "connect:", err)
			os.Exit(1)
		}
		defer c.Close()
		clients[i] = c
	}
	value := strings.Repeat("v", 100)
	ctx := context.Background()
	if strings.HasPrefix(*workload, "get") {
		// The keys the readers read: one per worker, written first.
		for w := 0; w < *concurrency; w++ {
			if _, err := clients[0].Put(ctx, fmt.Sprintf("r%d", w), value); err != nil {
				fmt.Fprintln(os.Stderr, "prepare:", err)
				os.Exit(1)
			}
		}
	}
	start := time.Now()
	measureFrom, end := start.Add(*warmup), start.Add(*warmup+*duration)
	var mu sync.Mutex
	var lats []time.Duration
	errs := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := clients[w%len(clients)]
			var mine []time.Duration
			myErrs := map[string]int{}
			for i := 0; ; i++ {
				t := time.Now()
				if t.After(end) {
					break
				}
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				var err error
				switch *workload {
				case "put":
					_, err = c.Put(rctx, fmt.Sprintf("k%d-%d", w, i), value)
				case "txn":
					ops := make([]clientv3.Op, *batch)
					for j := range ops {
						ops[j] = clientv3.OpPut(fmt.Sprintf("k%d-%d-%d", w, i, j), value)
					}
					_, err = c.Txn(rctx).Then(ops...).Commit()
				case "get-linearizable":
					_, err = c.Get(rctx, fmt.Sprintf("r%d", w))
				case "get-serializable":
					_, err = c.Get(rctx, fmt.Sprintf("r%d", w), clientv3.WithSerializable())
				}
				cancel()
				if err != nil {
					// Errors of the warm-up count too, under their own key.
					key := err.Error()
					if t.Before(measureFrom) {
						key = "warmup: " + key
					}
					myErrs[key]++
					continue
				}
				if t.Before(measureFrom) {
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lats = append(lats, mine...)
			for k, v := range myErrs {
				errs[k] += v
			}
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return float64(lats[int(p*float64(len(lats)-1))]) / 1e6
	}
	rows := 1
	if *workload == "txn" {
		rows = *batch
	}
	ops := float64(len(lats)) / duration.Seconds()
	out := map[string]any{
		"peer": "etcd", "workload": *workload, "concurrency": *concurrency, "conns": *conns,
		"ops_per_sec": ops, "rows_per_sec": ops * float64(rows), "p50_ms": pct(0.50), "p99_ms": pct(0.99), "errors": errs,
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
