package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// SQL the dot-commands use. Names starting with sqlite_ are SQLite's own
// and names starting with _rdb_ are rdb's internal tables.
const (
	userObjects = `name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE '\_rdb\_%' ESCAPE '\'`
	tablesSQL   = `SELECT name FROM sqlite_schema WHERE type IN ('table','view') AND ` + userObjects + ` ORDER BY name`
)

// dotCmd describes one dot-command for dispatch, .help and completion.
type dotCmd struct {
	name     string
	args     string
	help     string
	run      func(s *shell, ctx context.Context, args []string) error
	complete func(s *shell) []string
}

// dotCommands returns the dot-commands in .help order.
func dotCommands() []dotCmd {
	onOff := func(*shell) []string { return []string{"on", "off"} }
	tables := func(s *shell) []string { return s.tableNames() }
	return []dotCmd{
		{name: "backup", args: backupUsage, help: "Write a consistent backup to FILE: a SQLite database, or SQL text with --sql", run: (*shell).dotBackup,
			complete: func(*shell) []string { return []string{"--sql"} }},
		{name: "consistency", args: "[none|weak|linearizable|strong]", help: "Show or set the read consistency of queries", run: (*shell).dotConsistency,
			complete: func(*shell) []string { return []string{"none", "weak", "linearizable", "strong"} }},
		{name: "connect", args: "ENDPOINTS", help: "Connect to other nodes (comma-separated host:port list)", run: (*shell).dotConnect},
		{name: "dump", args: "[TABLE]", help: "Print the database (or matching tables) as SQL that .read loads back", run: (*shell).dotDump, complete: tables},
		{name: "exit", args: "[CODE]", help: "Leave the shell", run: (*shell).dotQuit},
		{name: "headers", args: "on|off", help: "Turn column headers on or off", run: (*shell).dotHeaders, complete: onOff},
		{name: "help", help: "Show this message", run: (*shell).dotHelp},
		{name: "indexes", args: "[TABLE]", help: "List indexes (of tables matching the LIKE pattern TABLE)", run: (*shell).dotIndexes, complete: tables},
		{name: "mode", args: "[table|csv|json|line]", help: "Show or set the output mode", run: (*shell).dotMode,
			complete: func(*shell) []string { return modeNames }},
		{name: "nodes", help: "List cluster members: role, addresses, leader, how far each lags", run: (*shell).dotNodes},
		{name: "nullvalue", args: "STRING", help: "Print STRING for NULL values", run: (*shell).dotNullValue},
		{name: "once", args: "FILE", help: "Send the output of the next command to FILE", run: (*shell).dotOnce},
		{name: "output", args: "[FILE]", help: "Send output to FILE, or back to stdout with no FILE", run: (*shell).dotOutput},
		{name: "quit", help: "Leave the shell", run: (*shell).dotQuit},
		{name: "read", args: "FILE", help: "Run the statements and dot-commands in FILE", run: (*shell).dotRead},
		{name: "restore", args: restoreUsage, help: "Replace the database on every node with FILE (a SQLite database or SQL text)", run: (*shell).dotRestore},
		{name: "schema", args: "[TABLE]", help: "Show CREATE statements (of tables matching the LIKE pattern TABLE)", run: (*shell).dotSchema, complete: tables},
		{name: "status", help: "Show the node in use, the leader and the session settings", run: (*shell).dotStatus},
		{name: "tables", args: "[PATTERN]", help: "List tables and views (matching the LIKE pattern)", run: (*shell).dotTables},
		{name: "timer", args: "on|off", help: "Print the round-trip time of each statement", run: (*shell).dotTimer, complete: onOff},
		{name: "bail", args: "on|off", help: "Stop a script at the first error", run: (*shell).dotBail, complete: onOff},
	}
}

// lookupDot finds a dot-command by name or unique prefix.
func lookupDot(name string) (dotCmd, error) {
	var found []dotCmd
	for _, c := range dotCommands() {
		if c.name == name {
			return c, nil
		}
		if strings.HasPrefix(c.name, name) {
			found = append(found, c)
		}
	}
	if len(found) == 1 && name != "" {
		return found[0], nil
	}
	return dotCmd{}, fmt.Errorf("unknown command or invalid arguments: %q. Enter \".help\" for help", name)
}

func (s *shell) dotCommand(ctx context.Context, it item) error {
	args, err := splitArgs(strings.TrimPrefix(it.text, "."))
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return errors.New(`empty command. Enter ".help" for help`)
	}
	c, err := lookupDot(args[0])
	if err != nil {
		return err
	}
	return c.run(s, ctx, args[1:])
}

// splitArgs splits a dot-command line into words; '...' and "..." quote
// a word with spaces.
func splitArgs(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\r' || r == '\n':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote in command arguments")
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

func usage(name, args string) error {
	return fmt.Errorf("usage: .%s %s", name, args)
}

func parseOnOff(name string, args []string) (bool, error) {
	if len(args) != 1 {
		return false, usage(name, "on|off")
	}
	switch strings.ToLower(args[0]) {
	case "on", "yes", "true", "1":
		return true, nil
	case "off", "no", "false", "0":
		return false, nil
	}
	return false, usage(name, "on|off")
}

func (s *shell) dotHelp(_ context.Context, _ []string) error {
	var b strings.Builder
	for _, c := range dotCommands() {
		left := "." + c.name
		if c.args != "" {
			left += " " + c.args
		}
		fmt.Fprintf(&b, "%-40s %s\n", left, c.help)
	}
	b.WriteString(`
Statements end with ';' and may span lines. SELECT, VALUES, EXPLAIN, WITH ... SELECT
and PRAGMA without '=' are queries, read at the .consistency level; everything else
is a write through the raft log. BEGIN; ...; COMMIT; is sent as one atomic transaction
when COMMIT is entered (ROLLBACK discards it). .backup and .restore must finish within
--timeout.
`)
	_, err := io.WriteString(s.out, b.String())
	return err
}

func (s *shell) dotQuit(_ context.Context, args []string) error {
	s.quit = true
	if len(args) > 0 {
		code, err := strconv.Atoi(args[0])
		if err != nil {
			return usage("exit", "[CODE]")
		}
		s.exitCode = code
	}
	return nil
}

func (s *shell) dotHeaders(_ context.Context, args []string) error {
	on, err := parseOnOff("headers", args)
	if err != nil {
		return err
	}
	s.printer.headers = on
	return nil
}

func (s *shell) dotTimer(_ context.Context, args []string) error {
	on, err := parseOnOff("timer", args)
	if err != nil {
		return err
	}
	s.timer = on
	return nil
}

func (s *shell) dotBail(_ context.Context, args []string) error {
	on, err := parseOnOff("bail", args)
	if err != nil {
		return err
	}
	s.bail = on
	return nil
}

func (s *shell) dotNullValue(_ context.Context, args []string) error {
	if len(args) != 1 {
		return usage("nullvalue", "STRING")
	}
	s.printer.nullValue = args[0]
	return nil
}

func (s *shell) dotMode(_ context.Context, args []string) error {
	if len(args) == 0 {
		_, err := fmt.Fprintf(s.out, "current output mode: %s\n", s.printer.mode)
		return err
	}
	if len(args) > 1 {
		return usage("mode", "[table|csv|json|line]")
	}
	m, err := parseMode(args[0])
	if err != nil {
		return err
	}
	s.printer.mode = m
	return nil
}

// consistencyNames maps .consistency words to levels.
var consistencyNames = map[string]rpcpb.Consistency{
	"none":         rpcpb.Consistency_CONSISTENCY_NONE,
	"weak":         rpcpb.Consistency_CONSISTENCY_WEAK,
	"linearizable": rpcpb.Consistency_CONSISTENCY_LINEARIZABLE,
	"strong":       rpcpb.Consistency_CONSISTENCY_STRONG,
}

func parseConsistency(s string) (rpcpb.Consistency, error) {
	c, ok := consistencyNames[strings.ToLower(s)]
	if !ok {
		return 0, fmt.Errorf("unknown consistency %q (want none, weak, linearizable or strong)", s)
	}
	return c, nil
}

func consistencyName(c rpcpb.Consistency) string {
	for n, v := range consistencyNames {
		if v == c {
			return n
		}
	}
	return "linearizable"
}

func (s *shell) dotConsistency(_ context.Context, args []string) error {
	switch len(args) {
	case 0:
		_, err := fmt.Fprintf(s.out, "%s\n", consistencyName(s.consistency))
		return err
	case 1:
		c, err := parseConsistency(args[0])
		if err != nil {
			return err
		}
		s.consistency = c
		return nil
	}
	return usage("consistency", "[none|weak|linearizable|strong]")
}

func (s *shell) dotOutput(_ context.Context, args []string) error {
	if len(args) > 1 {
		return usage("output", "[FILE]")
	}
	if s.outFile != nil {
		err := s.outFile.Close()
		s.outFile, s.out = nil, s.stdout
		if err != nil {
			return fmt.Errorf("close output file: %w", err)
		}
	}
	if len(args) == 0 || args[0] == "stdout" {
		return nil
	}
	f, err := os.Create(args[0])
	if err != nil {
		return err
	}
	s.outFile, s.out = f, f
	return nil
}

func (s *shell) dotOnce(_ context.Context, args []string) error {
	if len(args) != 1 {
		return usage("once", "FILE")
	}
	f, err := os.Create(args[0])
	if err != nil {
		return err
	}
	if s.once != nil {
		_ = s.once.Close() // replaced before it was used; nothing was written
	}
	s.once = f
	return nil
}

func (s *shell) dotRead(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usage("read", "FILE")
	}
	if s.readDepth >= maxReadDepth {
		return fmt.Errorf(".read nested more than %d deep", maxReadDepth)
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	s.readDepth++
	prev := s.source
	s.source = args[0]
	defer func() { s.readDepth--; s.source = prev }()
	if !s.runScript(ctx, f) {
		return fmt.Errorf("errors in %s", args[0])
	}
	return nil
}

// runScript runs the statements and dot-commands read from r until its
// end, a .quit, or (with bail) the first error. It reports whether all
// of them succeeded.
func (s *shell) runScript(ctx context.Context, r io.Reader) bool {
	br := bufio.NewReaderSize(r, 1<<20)
	var sp splitter
	ok := true
	runAll := func(items []item) bool {
		for _, it := range items {
			if ctx.Err() != nil {
				return false
			}
			if !s.run(ctx, it) {
				ok = false
				if s.bail {
					return false
				}
			}
			if s.quit {
				return false
			}
		}
		return true
	}
	for {
		line, err := br.ReadString('\n')
		if line != "" || err == nil {
			if !runAll(sp.feed(strings.TrimSuffix(line, "\n"))) {
				return ok
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintf(s.stderr, "Error: read input: %v\n", err)
				return false
			}
			break
		}
	}
	if it, found := sp.flush(); found {
		runAll([]item{it})
	}
	return ok
}

func likeArg(args []string, name, usageArgs string) (string, error) {
	switch len(args) {
	case 0:
		return "", nil
	case 1:
		return args[0], nil
	}
	return "", usage(name, usageArgs)
}

func (s *shell) dotTables(ctx context.Context, args []string) error {
	pat, err := likeArg(args, "tables", "[PATTERN]")
	if err != nil {
		return err
	}
	st := &command.Statement{Sql: tablesSQL}
	if pat != "" {
		st = &command.Statement{
			Sql:        `SELECT name FROM sqlite_schema WHERE type IN ('table','view') AND ` + userObjects + ` AND name LIKE ? ORDER BY name`,
			Parameters: []*command.Parameter{{Value: command.Text(pat)}},
		}
	}
	rs, err := s.queryRows(ctx, st)
	if err != nil {
		return err
	}
	names := firstColumn(rs[0])
	if pat == "" {
		s.tables, s.tablesTime = names, time.Now()
	}
	return printLines(s.out, names)
}

func (s *shell) dotIndexes(ctx context.Context, args []string) error {
	pat, err := likeArg(args, "indexes", "[TABLE]")
	if err != nil {
		return err
	}
	if pat == "" {
		pat = "%"
	}
	rs, err := s.queryRows(ctx, &command.Statement{
		Sql:        `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name LIKE ? AND ` + userObjects + ` ORDER BY name`,
		Parameters: []*command.Parameter{{Value: command.Text(pat)}},
	})
	if err != nil {
		return err
	}
	return printLines(s.out, firstColumn(rs[0]))
}

func (s *shell) dotSchema(ctx context.Context, args []string) error {
	pat, err := likeArg(args, "schema", "[TABLE]")
	if err != nil {
		return err
	}
	if pat == "" {
		pat = "%"
	}
	rs, err := s.queryRows(ctx, &command.Statement{
		Sql: `SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND ` + userObjects +
			` AND (name LIKE ?1 OR tbl_name LIKE ?1) ORDER BY type = 'table' DESC, tbl_name, type DESC, name`,
		Parameters: []*command.Parameter{{Value: command.Text(pat)}},
	})
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, row := range rs[0].GetRows() {
		b.WriteString(cell(row, 0).GetText())
		b.WriteString(";\n")
	}
	_, err = io.WriteString(s.out, b.String())
	return err
}

func printLines(w io.Writer, lines []string) error {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (s *shell) dotConnect(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usage("connect", "HOST:PORT[,HOST:PORT...]")
	}
	var eps []string
	for _, a := range args {
		for _, e := range strings.Split(a, ",") {
			if e = strings.TrimSpace(e); e != "" {
				eps = append(eps, e)
			}
		}
	}
	cl, err := client.New(client.Config{Endpoints: eps, RequestTimeout: s.timeout, ClusterID: s.clusterID})
	if err != nil {
		return err
	}
	old, oldLast, oldWrite := s.cl, s.lastEndpoint, s.lastWrite
	s.cl, s.lastWrite = cl, 0
	msg, err := s.connect(ctx)
	if err != nil {
		_ = s.cl.Close() // cl, or the client connect replaced it with; the error that matters is err
		s.cl, s.lastEndpoint, s.lastWrite = old, oldLast, oldWrite
		return err
	}
	_ = old.Close() // nothing in flight on it; a close error changes nothing
	s.endpoints, s.tablesTime = s.cl.Endpoints(), time.Time{}
	_, err = fmt.Fprintln(s.out, msg)
	return err
}

// nodeStatus is one member's status as .nodes shows it.
type nodeStatus struct {
	member *rpcpb.MemberStatus
	st     *rpcpb.StatusResponse
	err    error
}

func (s *shell) dotNodes(ctx context.Context, _ []string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout*time.Duration(len(s.cl.Endpoints())))
	defer cancel()
	st, _, err := s.cl.Status(ctx)
	if err != nil {
		return s.rpcError(err, false)
	}
	s.noteFailover()
	members := st.GetMembers()
	sort.Slice(members, func(i, j int) bool { return members[i].GetId() < members[j].GetId() })
	nodes := make([]nodeStatus, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		nodes[i].member = m
		if m.GetClientAddr() == "" {
			nodes[i].err = errors.New("client address unknown")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			nodes[i].st, nodes[i].err = s.cl.StatusOf(pctx, m.GetClientAddr())
		}()
	}
	wg.Wait()

	// The leader's commit index is the reference for lag; without an
	// answer from the leader, the highest commit index seen is.
	var commit uint64
	leader := st.GetLeaderId()
	for _, n := range nodes {
		if n.st == nil {
			continue
		}
		if n.st.GetRole() == "leader" {
			leader = n.st.GetId()
		}
		commit = max(commit, n.st.GetCommitIndex())
	}
	for _, n := range nodes {
		if n.st != nil && n.st.GetId() == leader {
			commit = n.st.GetCommitIndex()
		}
	}
	current := s.cl.Current()
	res := &command.Result{
		Columns: []string{"id", "client_addr", "peer_addr", "voter", "role", "term", "applied", "lag", "note"},
	}
	for _, n := range nodes {
		m := n.member
		row := &command.Row{Values: []*command.Value{
			command.Integer(int64(m.GetId())), command.Text(m.GetClientAddr()), command.Text(m.GetPeerAddr()),
			command.Text(yesNo(m.GetVoter())),
		}}
		var notes []string
		if m.GetId() == leader {
			notes = append(notes, "leader")
		}
		if m.GetClientAddr() == current {
			notes = append(notes, "in use")
		}
		if n.err != nil {
			row.Values = append(row.Values, command.Text("unreachable"), command.Null(), command.Null(), command.Null())
			notes = append(notes, s.errorMessage(n.err))
		} else {
			lag := int64(0)
			if commit > n.st.GetAppliedIndex() {
				lag = int64(commit - n.st.GetAppliedIndex())
			}
			row.Values = append(row.Values, command.Text(n.st.GetRole()), command.Integer(int64(n.st.GetTerm())),
				command.Integer(int64(n.st.GetAppliedIndex())), command.Integer(lag))
		}
		row.Values = append(row.Values, command.Text(strings.Join(notes, ", ")))
		res.Rows = append(res.Rows, row)
	}
	p := s.printer
	p.headers = true
	return p.rows(s.out, res)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (s *shell) dotStatus(ctx context.Context, _ []string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout*time.Duration(len(s.cl.Endpoints())))
	defer cancel()
	st, ep, err := s.cl.Status(ctx)
	if err != nil {
		return s.rpcError(err, false)
	}
	s.noteFailover()
	tx := "none"
	if s.inTx {
		tx = fmt.Sprintf("open, %d statements collected", len(s.tx))
	}
	res := &command.Result{
		Columns: []string{"endpoint", "node", "role", "term", "leader", "commit_index", "applied_index",
			"first_index", "last_index", "version", "data_dir", "endpoints", "consistency", "mode", "transaction"},
		Rows: []*command.Row{{Values: []*command.Value{
			command.Text(ep), command.Integer(int64(st.GetId())), command.Text(st.GetRole()), command.Integer(int64(st.GetTerm())),
			command.Text(fmt.Sprintf("node %d at %s", st.GetLeaderId(), orUnknown(st.GetLeaderAddr()))),
			command.Integer(int64(st.GetCommitIndex())), command.Integer(int64(st.GetAppliedIndex())),
			command.Integer(int64(st.GetFirstIndex())), command.Integer(int64(st.GetLastIndex())),
			command.Text(st.GetVersion()), command.Text(st.GetDataDir()),
			command.Text(strings.Join(s.cl.Endpoints(), ",")), command.Text(consistencyName(s.consistency)),
			command.Text(s.printer.mode.String()), command.Text(tx),
		}}},
	}
	p := s.printer
	p.headers = true
	if p.mode == modeTable {
		p.mode = modeLine // one record reads better vertically
	}
	return p.rows(s.out, res)
}
