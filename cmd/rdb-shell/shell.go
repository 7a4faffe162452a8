package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// Defaults of the shell's settings.
const (
	defaultEndpoints = "127.0.0.1:5001,127.0.0.1:5002,127.0.0.1:5003"
	defaultTimeout   = 10 * time.Second
	// probeTimeout bounds the status calls that check endpoints (startup,
	// .connect, .nodes, and the check after a call found no endpoint).
	probeTimeout = 3 * time.Second
	// maxReadDepth bounds nested .read commands.
	maxReadDepth = 16
)

// settings is the shell's configuration from its flags.
type settings struct {
	endpoints   []string
	consistency rpcpb.Consistency
	printer     printer
	bail        bool
	timeout     time.Duration
	// clusterID pins the client to one cluster (client.Config.ClusterID).
	clusterID string
	// interactive is set for a terminal session: write summaries and
	// failover notes are printed, and errors carry no line numbers.
	interactive bool
}

// shell holds the state of one session: the client, output settings and
// the transaction being collected. Only the session's goroutine uses it,
// except cancel, which the interrupt handler calls.
type shell struct {
	settings

	stdout io.Writer
	stderr io.Writer

	cl           *client.Client
	lastEndpoint string // the endpoint last seen in use, for failover notes
	lastWrite    uint64 // raft index of this session's last write: reads wait for it

	out     io.Writer // where results go: stdout or the .output file
	outFile *os.File  // the .output file, nil for stdout
	once    *os.File  // the .once file for the next command, if any

	timer     bool
	inTx      bool
	tx        []*command.Statement // statements collected since BEGIN
	readDepth int
	source    string // name of the input being read, for error positions

	quit     bool
	exitCode int

	tables     []string // table names cached for completion
	tablesTime time.Time

	mu     sync.Mutex // guards cancel
	cancel context.CancelFunc
}

func newShell(st settings, stdout, stderr io.Writer) (*shell, error) {
	cl, err := client.New(client.Config{Endpoints: st.endpoints, RequestTimeout: st.timeout, ClusterID: st.clusterID})
	if err != nil {
		return nil, err
	}
	return &shell{settings: st, stdout: stdout, stderr: stderr, out: stdout, cl: cl, lastEndpoint: cl.Current()}, nil
}

// close releases the client and any output file.
func (s *shell) close() error {
	var errs []error
	if s.outFile != nil {
		errs = append(errs, s.outFile.Close())
	}
	if s.once != nil {
		errs = append(errs, s.once.Close())
	}
	errs = append(errs, s.cl.Close())
	return errors.Join(errs...)
}

// interrupt cancels the statement in flight, if any (Ctrl-C).
func (s *shell) interrupt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
}

// run executes one item: a statement or a dot-command. It reports any
// error itself and returns false when the item failed.
func (s *shell) run(ctx context.Context, it item) bool {
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.cancel = nil
		s.mu.Unlock()
		cancel()
	}()

	once := s.once
	if once != nil {
		s.once = nil
		prev := s.out
		s.out = once
		defer func() {
			s.out = prev
			if err := once.Close(); err != nil {
				s.errorf(it, "close .once file: %v", err)
			}
		}()
	}
	var err error
	if it.dot {
		err = s.dotCommand(ctx, it)
	} else if it.incomplete {
		err = errors.New("incomplete input")
	} else {
		err = s.statement(ctx, it.text)
	}
	if err != nil {
		var re *resultErrors
		if errors.As(err, &re) {
			for _, msg := range re.msgs {
				s.report(it, errors.New(msg))
			}
			return false
		}
		s.report(it, err)
		return false
	}
	return true
}

// resultErrors holds the errors carried in the results of a request, one
// per failed statement.
type resultErrors struct{ msgs []string }

func (e *resultErrors) Error() string { return strings.Join(e.msgs, "; ") }

// report prints err for item it: "Error: ..." on stderr, and in JSON mode
// also {"error": ...} on the output, so that a JSON reader sees one object
// per statement.
func (s *shell) report(it item, err error) {
	msg := s.errorMessage(err)
	if s.printer.mode == modeJSON && !it.dot {
		_ = errorJSON(s.out, msg) // the stderr line below still reports it
	}
	s.errorf(it, "%s", msg)
}

func (s *shell) errorf(it item, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	switch {
	case s.interactive && s.readDepth == 0:
		fmt.Fprintf(s.stderr, "Error: %s\n", msg)
	case s.source != "":
		fmt.Fprintf(s.stderr, "Error: %s line %d: %s\n", s.source, it.line, msg)
	default:
		fmt.Fprintf(s.stderr, "Error: near line %d: %s\n", it.line, msg)
	}
}

// errorMessage turns an error into one readable line: a gRPC status
// shows as its description only, a deadline or interrupt says so, and a
// write whose outcome is unknown says that too.
func (s *shell) errorMessage(err error) string {
	var ue *unreachableError
	if errors.As(err, &ue) {
		return ue.Error()
	}
	if errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
		return "interrupted"
	}
	if st, ok := status.FromError(err); ok {
		msg := st.Message()
		if st.Code() == codes.DeadlineExceeded {
			msg = "timed out: " + msg
		}
		return msg
	}
	return err.Error()
}

// unreachableError says no endpoint answered.
type unreachableError struct {
	endpoints []string
	err       error
}

func (e *unreachableError) Error() string {
	msg := e.err.Error()
	if st, ok := status.FromError(e.err); ok {
		msg = st.Message()
	}
	return fmt.Sprintf("cannot reach any of %s: %s", strings.Join(e.endpoints, ", "), msg)
}

func (e *unreachableError) Unwrap() error { return e.err }

// rpcError interprets an error from a call. When the call found no
// endpoint it checks whether any endpoint answers at all, so that a dead
// cluster gets the message "cannot reach any of ...". A write whose outcome
// is unknown is flagged as such.
func (s *shell) rpcError(err error, write bool) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		if !s.anyReachable() {
			return &unreachableError{endpoints: s.cl.Endpoints(), err: err}
		}
	}
	if write && client.IsOutcomeUnknown(err) {
		return fmt.Errorf("%s (the write may or may not have been applied)", s.errorMessage(err))
	}
	return err
}

// anyReachable reports whether any endpoint answers a status call.
func (s *shell) anyReachable() bool {
	_, err := s.probe(context.Background())
	return err == nil
}

// rotateTo returns eps rotated so that first comes first.
func rotateTo(eps []string, first string) []string {
	for i, e := range eps {
		if e == first {
			return append(append([]string(nil), eps[i:]...), eps[:i]...)
		}
	}
	return eps
}

// probe asks every endpoint for its status at once. It returns the first
// endpoint that answers, or the last error when none does.
func (s *shell) probe(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cl := s.cl // the goroutines may outlive a .connect that replaces s.cl
	eps := cl.Endpoints()
	type answer struct {
		ep  string
		err error
	}
	answers := make(chan answer, len(eps))
	for _, ep := range eps {
		go func() {
			_, err := cl.StatusOf(ctx, ep)
			answers <- answer{ep, err}
		}()
	}
	var last error
	for range eps {
		a := <-answers
		if a.err == nil {
			return a.ep, nil
		}
		last = a.err
	}
	return "", last
}

// connect checks that the cluster answers and returns a one-line
// description of the node in use and the leader.
func (s *shell) connect(ctx context.Context) (string, error) {
	// Probe every endpoint at once first, so that a dead cluster is
	// reported after one dial timeout rather than after a failover round.
	first, err := s.probe(ctx)
	if err != nil {
		return "", &unreachableError{endpoints: s.cl.Endpoints(), err: err}
	}
	if first != s.cl.Current() {
		// Start with the endpoint that answered, rather than fail over to
		// it one dial timeout at a time.
		eps := rotateTo(s.cl.Endpoints(), first)
		cl, err := client.New(client.Config{Endpoints: eps, RequestTimeout: s.timeout, ClusterID: s.clusterID})
		if err != nil {
			return "", err
		}
		_ = s.cl.Close() // not used yet but for status probes
		s.cl = cl
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout*time.Duration(len(s.cl.Endpoints())))
	defer cancel()
	st, ep, err := s.cl.Status(ctx)
	if err != nil {
		if c := status.Code(err); c == codes.Unavailable || c == codes.DeadlineExceeded {
			return "", &unreachableError{endpoints: s.cl.Endpoints(), err: err}
		}
		return "", err
	}
	s.lastEndpoint = s.cl.Current()
	return describeNode(ep, st), nil
}

func describeNode(ep string, st *rpcpb.StatusResponse) string {
	leader := "no leader known"
	switch {
	case st.GetLeaderId() == st.GetId() && st.GetId() != 0:
		leader = "it is the leader"
	case st.GetLeaderId() != 0:
		leader = fmt.Sprintf("leader is node %d at %s", st.GetLeaderId(), orUnknown(st.GetLeaderAddr()))
	}
	return fmt.Sprintf("connected to %s (node %d, %s); %s", ep, st.GetId(), st.GetRole(), leader)
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// noteFailover tells an interactive user when the client moved to
// another endpoint.
func (s *shell) noteFailover() {
	cur := s.cl.Current()
	if cur != s.lastEndpoint {
		if s.interactive {
			fmt.Fprintf(s.stderr, "(now talking to %s)\n", cur)
		}
		s.lastEndpoint = cur
	}
}

// statement runs one SQL statement, or collects it into the open
// transaction.
func (s *shell) statement(ctx context.Context, sql string) error {
	r := classify(sql)
	switch r {
	case routeBegin:
		if s.inTx {
			return errors.New("cannot start a transaction within a transaction")
		}
		s.inTx, s.tx = true, nil
		return nil
	case routeCommit:
		if !s.inTx {
			return errors.New("cannot commit - no transaction is active")
		}
		stmts := s.tx
		s.inTx, s.tx = false, nil
		if len(stmts) == 0 {
			return nil
		}
		return s.execute(ctx, stmts, true)
	case routeRollback:
		if !s.inTx {
			return errors.New("cannot rollback - no transaction is active")
		}
		s.inTx, s.tx = false, nil
		return nil
	case routeSavepoint:
		return errors.New("SAVEPOINT, RELEASE and ROLLBACK TO are not supported: a transaction is sent as one request at COMMIT")
	}
	st := &command.Statement{Sql: sql}
	if s.inTx {
		s.tx = append(s.tx, st)
		return nil
	}
	if r == routeQuery {
		return s.query(ctx, []*command.Statement{st})
	}
	return s.execute(ctx, []*command.Statement{st}, false)
}

func (s *shell) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout > 0 {
		return context.WithTimeout(ctx, s.timeout)
	}
	return context.WithCancel(ctx)
}

func (s *shell) execute(ctx context.Context, stmts []*command.Statement, tx bool) error {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	start := time.Now()
	resp, err := s.cl.Execute(ctx, &rpcpb.ExecuteRequest{Statements: stmts, Transaction: tx})
	elapsed := time.Since(start)
	s.noteFailover()
	s.tablesTime = time.Time{} // DDL may have changed the table names
	if err != nil {
		return s.rpcError(stripStatement(err, len(stmts)), true)
	}
	s.lastWrite = max(s.lastWrite, resp.GetRaftIndex())
	err = s.results(resp.GetResults(), resp.GetRaftIndex(), len(stmts))
	s.showTimer(elapsed)
	return err
}

func (s *shell) query(ctx context.Context, stmts []*command.Statement) error {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	start := time.Now()
	resp, err := s.cl.Query(ctx, &rpcpb.QueryRequest{Statements: stmts, Consistency: s.consistency, MinIndex: s.lastWrite})
	elapsed := time.Since(start)
	s.noteFailover()
	if err != nil {
		return s.rpcError(stripStatement(err, len(stmts)), false)
	}
	err = s.results(resp.GetResults(), resp.GetRaftIndex(), len(stmts))
	s.showTimer(elapsed)
	return err
}

// results prints each result; a result carrying an error is reported as
// an error of its statement.
func (s *shell) results(rs []*command.Result, raftIndex uint64, n int) error {
	var failed resultErrors
	for i, r := range rs {
		if msg := r.GetError(); msg != "" {
			if n > 1 {
				msg = fmt.Sprintf("statement %d: %s", i+1, msg)
			}
			failed.msgs = append(failed.msgs, msg)
			continue
		}
		if err := s.printer.result(s.out, r, raftIndex, s.interactive && s.printer.mode == modeTable); err != nil {
			return err
		}
	}
	if len(failed.msgs) > 0 {
		return &failed
	}
	return nil
}

func (s *shell) showTimer(d time.Duration) {
	if !s.timer {
		return
	}
	w := s.out
	if s.printer.mode == modeJSON {
		w = s.stderr // keep the JSON stream parseable
	}
	fmt.Fprintf(w, "Run Time: %s\n", d.Round(time.Microsecond))
}

// stripStatement drops the server's "statement 1: " prefix from the error
// of a single-statement request, where it says nothing.
func stripStatement(err error, n int) error {
	st, ok := status.FromError(err)
	if !ok || n != 1 {
		return err
	}
	msg, found := strings.CutPrefix(st.Message(), "statement 1: ")
	if !found {
		return err
	}
	p := st.Proto()
	p.Message = msg
	return status.ErrorProto(p)
}

// queryRows runs read-only SQL for the shell's own use (dot-commands) at
// the session's consistency, and returns the results.
func (s *shell) queryRows(ctx context.Context, stmts ...*command.Statement) ([]*command.Result, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	resp, err := s.cl.Query(ctx, &rpcpb.QueryRequest{Statements: stmts, Consistency: s.consistency, MinIndex: s.lastWrite})
	s.noteFailover()
	if err != nil {
		return nil, s.rpcError(err, false)
	}
	for i, r := range resp.GetResults() {
		if r.GetError() != "" {
			return nil, fmt.Errorf("statement %d: %s", i+1, r.GetError())
		}
	}
	return resp.GetResults(), nil
}

// tableNames returns user table and view names, cached for a few seconds
// for completion. Errors give no names: completion must not get in the way.
func (s *shell) tableNames() []string {
	if time.Since(s.tablesTime) < 5*time.Second {
		return s.tables
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := s.cl.Query(ctx, &rpcpb.QueryRequest{
		Statements:  []*command.Statement{{Sql: tablesSQL}},
		Consistency: rpcpb.Consistency_CONSISTENCY_NONE,
	})
	if err != nil || len(resp.GetResults()) == 0 {
		return s.tables
	}
	s.tables = firstColumn(resp.GetResults()[0])
	s.tablesTime = time.Now()
	return s.tables
}

// firstColumn returns the text of the first column of each row.
func firstColumn(r *command.Result) []string {
	var out []string
	for _, row := range r.GetRows() {
		if v := cell(row, 0); !v.IsNull() {
			out = append(out, fmt.Sprint(v.ToGo()))
		}
	}
	sort.Strings(out)
	return out
}
