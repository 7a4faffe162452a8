package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// options are the command-line flags.
type options struct {
	endpoints   string
	consistency string
	format      string
	command     string
	bail        bool
	headers     bool
	timeout     time.Duration
	clusterID   string
}

// run parses args, runs the shell and returns the exit status: 0 when
// every statement succeeded, 1 otherwise (or the code given to .exit).
func run(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	var opts options
	code := 0
	cmd := &cobra.Command{
		Use:   "rdb-shell [flags]",
		Short: "Interactive SQL shell for an rdb cluster",
		Long: `rdb-shell is the SQL shell of rdb. It talks to a cluster through the
endpoints given (client addresses of its nodes) and fails over between them.

With -c it runs the given statements and exits; when standard input is not
a terminal it runs the statements and dot-commands read from it; otherwise
it is interactive. Enter ".help" in the shell for its commands.`,
		Args:          cobra.NoArgs,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			code, err = runShell(cmd, opts, stdin, stdout, stderr)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.endpoints, "endpoints", defaultEndpoints, "comma-separated client addresses (host:port) of cluster nodes")
	f.StringVar(&opts.consistency, "consistency", "linearizable", "read consistency of queries: none, weak, linearizable or strong")
	f.StringVar(&opts.format, "format", "", "output mode: table, csv, json or line (default table on a terminal, csv otherwise)")
	f.StringVar(&opts.format, "mode", "", "same as --format")
	f.StringVarP(&opts.command, "command", "c", "", "run these statements and dot-commands, then exit")
	f.BoolVar(&opts.bail, "bail", false, "stop at the first error")
	f.BoolVar(&opts.headers, "headers", true, "print column headers (default on, except for the csv output used when stdout is not a terminal)")
	f.DurationVar(&opts.timeout, "timeout", defaultTimeout, "time limit of each statement")
	f.StringVar(&opts.clusterID, "cluster-id", "", "refuse nodes of any other cluster (the id `rdb status` prints)")
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	return code
}

// runShell builds the shell from the flags and runs it in the mode the
// flags and terminals call for.
func runShell(cmd *cobra.Command, opts options, stdin *os.File, stdout, stderr io.Writer) (int, error) {
	ctx := context.Background()
	interactive := opts.command == "" && isTerminal(stdin) && isTerminal(stdout)
	st := settings{bail: opts.bail, timeout: opts.timeout, interactive: interactive, clusterID: opts.clusterID}
	for _, e := range strings.Split(opts.endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			st.endpoints = append(st.endpoints, e)
		}
	}
	var err error
	if st.consistency, err = parseConsistency(opts.consistency); err != nil {
		return 1, err
	}
	st.printer.headers = opts.headers
	switch {
	case opts.format != "":
		if st.printer.mode, err = parseMode(opts.format); err != nil {
			return 1, err
		}
	case isTerminal(stdout):
		st.printer.mode = modeTable
	default:
		// Like sqlite3's list mode for pipes: plain values, no headers.
		st.printer.mode = modeCSV
		if !cmd.Flags().Changed("headers") {
			st.printer.headers = false
		}
	}

	s, err := newShell(st, stdout, stderr)
	if err != nil {
		return 1, err
	}
	defer func() {
		if err := s.close(); err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
		}
	}()

	msg, err := s.connect(ctx)
	if err != nil {
		return 1, errors.New(s.errorMessage(err))
	}

	var ok bool
	switch {
	case opts.command != "":
		s.source = ""
		ok = s.runScript(ctx, strings.NewReader(opts.command))
	case interactive:
		fmt.Fprintf(stdout, "rdb-shell %s: %s.\nEnter \".help\" for usage hints.\n", version, msg)
		s.repl(ctx)
		ok = true
	default:
		ok = s.runScript(ctx, stdin)
	}
	if !interactive && s.inTx && !s.quit {
		fmt.Fprintf(stderr, "Error: input ended inside a transaction; %d statements not committed\n", len(s.tx))
		ok = false
	}
	switch {
	case s.quit:
		return s.exitCode, nil
	case !ok:
		return 1, nil
	}
	return 0, nil
}

func isTerminal(f any) bool {
	fd, ok := f.(interface{ Fd() uintptr })
	return ok && isatty.IsTerminal(fd.Fd())
}
