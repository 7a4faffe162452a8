// Command chaos runs randomized fault-injection runs against real rdb
// processes for a while and prints a summary table; see package
// rdb/system_test/chaos. It must run inside the rdb module (it builds
// rdb), as root for partition scenarios (network namespaces).
//
//	go run ./system_test/chaos/cmd/chaos --duration 30m --scenario all --seed 1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"rdb/system_test/chaos"
)

func main() {
	os.Exit(run())
}

func run() int {
	duration := flag.Duration("duration", 10*time.Minute, "total time to keep starting runs")
	runFor := flag.Duration("run", 20*time.Second, "client time of each run (faults are injected throughout)")
	seed := flag.Int64("seed", 0, "seed of the first run; run i uses seed+i (0: from the clock)")
	scenario := flag.String("scenario", "all", "scenarios, comma-separated: all, kill, pause, partition, links, disk, clock, membership, or "+scenarioNames())
	clients := flag.Int("clients", chaos.DefaultClients, fmt.Sprintf("concurrent clients per run (at most %d)", chaos.MaxClients))
	baseDir := flag.String("dir", os.TempDir(), "where run directories are created (failed runs are kept there)")
	keep := flag.Bool("keep", false, "keep every run's directory, not only failed ones")
	tags := flag.String("tags", os.Getenv("RDB_BUILD_TAGS"), "Go build tags for the rdb binary (default $RDB_BUILD_TAGS)")
	bin := flag.String("bin", "", "use this rdb binary instead of building one")
	loopback := flag.Bool("loopback", false, "run nodes on 127.0.0.1 even as root (partition scenarios are then skipped)")
	verbose := flag.Bool("v", false, "log progress of each run")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	scs, err := chaos.ParseScenarios(*scenario)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if *seed == 0 {
		*seed = time.Now().UnixNano() % 1_000_000_000
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *bin == "" {
		if chaos.NeedsFailpoints(scs) {
			// blackhole-until-snapshot kills a node inside a snapshot
			// install through a failpoint; unarmed, failpoints do nothing.
			*tags = chaos.WithFailpointsTag(*tags)
		}
		dir, err := os.MkdirTemp("", "rdb-chaos-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		if *bin, err = chaos.BuildRDB(ctx, dir, *tags); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Printf("chaos: scenarios %v, first seed %d, %s per run, for %s, tags %q\n", scs, *seed, *runFor, *duration, *tags)
	var sum chaos.Summary
	deadline := time.Now().Add(*duration)
	for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		sc := scs[i%len(scs)]
		s := *seed + int64(i)
		res, err := chaos.Run(ctx, chaos.Config{
			Seed: s, Scenario: sc, Duration: *runFor, Clients: *clients,
			Binary: *bin, BaseDir: *baseDir, KeepAll: *keep, Loopback: *loopback, Logger: log,
		})
		if errors.Is(err, chaos.ErrNoNetns) || errors.Is(err, chaos.ErrNeedsRoot) || errors.Is(err, chaos.ErrNeedsFailpoints) {
			fmt.Printf("skip %s: %v\n", sc, err)
			if allNeedPartitions(scs) {
				break
			}
			continue
		}
		if ctx.Err() != nil {
			break // interrupted: the run is incomplete
		}
		sum.Add(sc, s, res, err)
		printRun(sc, s, res, err)
	}
	fmt.Println()
	if err := sum.Write(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
	}
	if sum.Failed > 0 || sum.Errors > 0 {
		return 1
	}
	return 0
}

func printRun(sc chaos.Scenario, seed int64, res *chaos.Result, err error) {
	if err != nil {
		fmt.Printf("%-16s seed %-10d HARNESS ERROR: %v\n", sc, seed, err)
		return
	}
	verdict := "ok"
	if res.Failed() {
		verdict = fmt.Sprintf("FAILED (%d anomalies) kept in %s\n  %s", len(res.Anomalies), res.Dir, strings.Join(res.Anomalies, "\n  "))
	}
	fmt.Printf("%-16s seed %-10d nodes %d %-70s ops %5d unknown %4d checked %5d faults %2d %6s  %s\n",
		sc, seed, res.Nodes, res.Timing, res.Ops, res.Unknown, res.Checked, res.Faults, res.Elapsed.Round(time.Second), verdict)
}

func allNeedPartitions(scs []chaos.Scenario) bool {
	for _, sc := range scs {
		if !sc.NeedsPartitions() {
			return false
		}
	}
	return true
}

func scenarioNames() string {
	var names []string
	for _, sc := range chaos.Scenarios {
		names = append(names, string(sc))
	}
	return strings.Join(names, ", ")
}
