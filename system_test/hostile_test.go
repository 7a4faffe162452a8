package system_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"rdb/command"
	"rdb/rpc/rpcpb"
)

// Hostile inputs (issue 6): every case is sent to the leader and to a
// follower and must get exactly its expected gRPC code. After each call
// the node that got it answers Status within a second, and when the
// request was refused (or was a read) every replica's content hash is
// still the one from before.
//
// Expectations follow README.md (error codes), rpc/errors.go,
// command/limits.go and db/auth.go. Where the server's behaviour looked
// wrong the case records the behaviour the documentation promises; such
// cases carry a "documented:" note in their name's comment below.

// hostileCall sends one request on a connection to one node.
type hostileCall func(ctx context.Context, cc *grpc.ClientConn) error

type hostileCase struct {
	name string
	call hostileCall
	// want is the exact code (codes.OK: success).
	want codes.Code
	// contains, when set, must occur in the error message.
	contains string
	// timeout is the call's deadline (default 10 s).
	timeout time.Duration
	// maxElapsed, when set, bounds how long the call may take.
	maxElapsed time.Duration
	// writes: a successful call changes the data (new hash baseline).
	writes bool
	// cleanup, when set, runs on the leader after a successful writing
	// call has converged, so that the cases after it do not hash its rows
	// on every replica again (10,000 rows cost each later case about a
	// second with the race detector).
	cleanup string
	// peer: raw bytes go to the node's peer port (raw cases only).
	peer bool
}

// Fixed request limits (command/limits.go, rpc/server.go, db/db.go).
const (
	hMaxRequest   = 4 << 20 // --max-request-bytes default
	hGRPCLimit    = hMaxRequest + 64<<10
	hMaxSQL       = 1 << 20
	hMaxStmts     = 10_000
	hMaxParams    = 32_766
	hMaxLength    = 4 << 20 // SQLITE_LIMIT_LENGTH
	hRunawayCTE   = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c) "
	hDefaultTimeo = 10 * time.Second
)

func hs(sql string, params ...*command.Parameter) *command.Statement {
	return &command.Statement{Sql: sql, Parameters: params}
}

func hp(v *command.Value) *command.Parameter { return &command.Parameter{Value: v} }

func hn(name string, v *command.Value) *command.Parameter {
	return &command.Parameter{Name: name, Value: v}
}

func hExec(tx bool, stmts ...*command.Statement) hostileCall {
	return func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := rpcpb.NewDBClient(cc).Execute(ctx, &rpcpb.ExecuteRequest{Statements: stmts, Transaction: tx})
		return err
	}
}

func hQuery(level rpcpb.Consistency, minIndex uint64, stmts ...*command.Statement) hostileCall {
	return func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := rpcpb.NewDBClient(cc).Query(ctx, &rpcpb.QueryRequest{Statements: stmts, Consistency: level, MinIndex: minIndex})
		return err
	}
}

func hRequest(level rpcpb.Consistency, stmts ...*command.Statement) hostileCall {
	return func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := rpcpb.NewDBClient(cc).Request(ctx, &rpcpb.RequestRequest{Statements: stmts, Consistency: level})
		return err
	}
}

// lazy builds the request only when the case runs (large requests).
func lazy(build func() hostileCall) hostileCall {
	return func(ctx context.Context, cc *grpc.ClientConn) error { return build()(ctx, cc) }
}

func repeatStmt(n int, sql string) []*command.Statement {
	out := make([]*command.Statement, n)
	for i := range out {
		out[i] = hs(sql)
	}
	return out
}

func positional(n int, v *command.Value) []*command.Parameter {
	out := make([]*command.Parameter, n)
	for i := range out {
		out[i] = hp(v)
	}
	return out
}

// rawCodec sends and receives bytes as they are, so that malformed
// protobuf reaches the server.
type rawCodec struct{}

type rawMsg struct{ b []byte }

func (rawCodec) Marshal(v any) ([]byte, error) { return v.(*rawMsg).b, nil }
func (rawCodec) Unmarshal(b []byte, v any) error {
	v.(*rawMsg).b = append([]byte(nil), b...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// hRaw sends b as the request message of a unary method.
func hRaw(method string, b []byte) hostileCall {
	return func(ctx context.Context, cc *grpc.ClientConn) error {
		return cc.Invoke(ctx, method, &rawMsg{b}, &rawMsg{}, grpc.ForceCodec(rawCodec{}))
	}
}

// Protobuf building blocks for raw messages.
func pbBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func pbVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// pbQuery is a QueryRequest with one statement (sql, raw parameter
// messages) and optional extra fields appended.
func pbQuery(sql []byte, params [][]byte, extra []byte) []byte {
	st := pbBytes(nil, 1, sql)
	for _, p := range params {
		st = pbBytes(st, 2, p)
	}
	return append(pbBytes(nil, 1, st), extra...)
}

// hostileConn dials a node with generous message limits so that
// oversized requests reach the server.
func hostileConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(128<<20), grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// --- raw TCP and HTTP/2 ---

// sendRaw writes b to addr on a fresh TCP connection, reads whatever
// comes back for a moment and closes.
func sendRaw(addr string, b []byte) error {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write(b); err != nil {
		return nil // the server may close on garbage before we finish
	}
	io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	return nil
}

func hRawTCP(b func() []byte) hostileCall {
	return func(ctx context.Context, cc *grpc.ClientConn) error {
		return sendRaw(ctx.Value(rawAddrKey{}).(string), b())
	}
}

type rawAddrKey struct{}

func frameHeader(length uint32, typ http2.FrameType, flags http2.Flags, stream uint32) []byte {
	h := make([]byte, 9)
	h[0], h[1], h[2] = byte(length>>16), byte(length>>8), byte(length)
	h[3], h[4] = byte(typ), byte(flags)
	binary.BigEndian.PutUint32(h[5:], stream)
	return h
}

// h2Call speaks just enough HTTP/2 to send one gRPC request whose body is
// written as given (a length prefix that lies, a truncated message), and
// returns the grpc-status the server answers with.
func h2Call(addr, path string, body []byte) error {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		return err
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		return err
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", path}, {":authority", addr},
		{"content-type", "application/grpc"}, {"te", "trailers"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		return err
	}
	if err := fr.WriteData(1, true, body); err != nil {
		return err
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return fmt.Errorf("no grpc-status: %w", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				fr.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			if s := f.PseudoValue("status"); s != "" && s != "200" {
				return fmt.Errorf("http status %s", s)
			}
			var gs, gm string
			for _, hf := range f.RegularFields() {
				switch hf.Name {
				case "grpc-status":
					gs = hf.Value
				case "grpc-message":
					gm = hf.Value
				}
			}
			if gs != "" || f.StreamEnded() {
				var code uint32
				fmt.Sscan(gs, &code)
				return status.Error(codes.Code(code), gm)
			}
		case *http2.RSTStreamFrame:
			return fmt.Errorf("stream reset: %v", f.ErrCode)
		case *http2.GoAwayFrame:
			return fmt.Errorf("goaway: %v", f.ErrCode)
		}
	}
}

func hH2(path string, body []byte) hostileCall {
	return func(ctx context.Context, cc *grpc.ClientConn) error {
		return h2Call(ctx.Value(rawAddrKey{}).(string), path, body)
	}
}

func grpcFrame(compressed byte, declared uint32, msg []byte) []byte {
	b := []byte{compressed, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], declared)
	return append(b, msg...)
}

// hRaftStream sends raw RaftMessages on the peer service's stream.
func hRaftStream(msgs ...[]byte) hostileCall {
	return func(ctx context.Context, cc *grpc.ClientConn) error {
		st, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/rdb.v1.Raft/Stream", grpc.ForceCodec(rawCodec{}))
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := st.SendMsg(&rawMsg{m}); err != nil {
				break
			}
		}
		st.CloseSend()
		return st.RecvMsg(&rawMsg{})
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// --- the cases ---

const (
	lvNone   = rpcpb.Consistency_CONSISTENCY_NONE
	lvWeak   = rpcpb.Consistency_CONSISTENCY_WEAK
	lvLin    = rpcpb.Consistency_CONSISTENCY_LINEARIZABLE
	lvStrong = rpcpb.Consistency_CONSISTENCY_STRONG
	lvUnset  = rpcpb.Consistency_CONSISTENCY_UNSPECIFIED
)

// refusedSQL are statements Execute must refuse before proposing
// (db.CheckWrite: PermissionDenied). Query gets InvalidArgument for
// them (not read-only).
var refusedSQL = []string{
	// ATTACH, DETACH, VACUUM INTO
	"ATTACH ':memory:' AS m",
	"ATTACH DATABASE '/tmp/rdb-hostile-attach.db' AS a",
	"ATTACH 'file::memory:?cache=shared' AS s",
	"DETACH m",
	"DETACH DATABASE main",
	"VACUUM INTO '/tmp/rdb-hostile-vacuum.db'",
	"VACUUM main INTO '/tmp/rdb-hostile-vacuum.db'",
	"vacuum/**/into '/tmp/rdb-hostile-vacuum.db'",
	"  VACUUM\n INTO ('/tmp/' || 'rdb-hostile-vacuum.db')",
	// documented: VACUUM INTO is refused; a form feed (SQL whitespace)
	// between the words hides it from db.isVacuumInto.
	"VACUUM\fINTO '/tmp/rdb-hostile-vacuum.db'",
	// load_extension
	"SELECT load_extension('x')",
	"SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6', 'puts')",
	"SELECT 1 WHERE load_extension('x') IS NULL",
	// PRAGMAs that change behaviour (or are not on the read-only list)
	"PRAGMA writable_schema=1",
	"PRAGMA writable_schema=ON",
	"PRAGMA writable_schema",
	"PRAGMA main.writable_schema=RESET",
	"PRAGMA journal_mode=DELETE",
	"PRAGMA journal_mode=OFF",
	"PRAGMA main.journal_mode=MEMORY",
	"PRAGMA synchronous=FULL",
	"PRAGMA synchronous=OFF",
	"PRAGMA synchronous",
	"PRAGMA foreign_keys=ON",
	"PRAGMA foreign_keys=0",
	"PRAGMA query_only=1",
	"PRAGMA query_only=0",
	"PRAGMA temp_store_directory='/tmp'",
	"PRAGMA data_store_directory='/tmp'",
	"PRAGMA temp_store=MEMORY",
	"PRAGMA mmap_size=1000000000",
	"PRAGMA mmap_size",
	"PRAGMA cache_size=-1000000",
	"PRAGMA cache_size",
	"PRAGMA locking_mode=EXCLUSIVE",
	"PRAGMA busy_timeout=0",
	"PRAGMA trusted_schema=1",
	"PRAGMA cell_size_check=OFF",
	"PRAGMA recursive_triggers=ON",
	"PRAGMA case_sensitive_like=ON",
	"PRAGMA defer_foreign_keys=ON",
	"PRAGMA ignore_check_constraints=ON",
	"PRAGMA legacy_alter_table=ON",
	"PRAGMA reverse_unordered_selects=ON",
	"PRAGMA secure_delete=ON",
	"PRAGMA auto_vacuum=FULL",
	"PRAGMA page_size=512",
	"PRAGMA max_page_count=1",
	"PRAGMA user_version=7",
	"PRAGMA application_id=7",
	"PRAGMA schema_version=1",
	"PRAGMA wal_checkpoint(TRUNCATE)",
	"PRAGMA wal_autocheckpoint=0",
	"PRAGMA incremental_vacuum(10)",
	"PRAGMA optimize",
	"PRAGMA shrink_memory",
	"PRAGMA threads=8",
	"PRAGMA soft_heap_limit=1",
	"PRAGMA hard_heap_limit=1",
	"PRAGMA encoding='UTF-16le'",
	"PRAGMA count_changes=1",
	"PRAGMA no_such_pragma=1",
	// transaction control
	"BEGIN",
	"BEGIN IMMEDIATE",
	"BEGIN EXCLUSIVE TRANSACTION",
	"COMMIT",
	"END",
	"ROLLBACK",
	"SAVEPOINT a",
	"RELEASE a",
	"RELEASE rdb_stmt",
	"ROLLBACK TO rdb_tx",
	"ROLLBACK TRANSACTION TO SAVEPOINT rdb_stmt",
	// the schema table and sqlite_dbpage
	"INSERT INTO sqlite_master VALUES('table','x','x',0,'CREATE TABLE x(a)')",
	"INSERT INTO sqlite_schema(type, name, tbl_name, rootpage, sql) VALUES('table','y','y',0,'CREATE TABLE y(a)')",
	"SELECT * FROM sqlite_dbpage",
	"SELECT count(*) FROM sqlite_dbpage('main')",
	"UPDATE sqlite_dbpage SET data=zeroblob(4096) WHERE pgno=1",
	"INSERT INTO sqlite_dbpage(pgno, data) VALUES(1, zeroblob(4096))",
	// the internal tables
	"UPDATE _rdb_applied SET idx=0",
	"DELETE FROM _rdb_applied",
	"INSERT INTO main._rdb_applied VALUES(1, 0) ON CONFLICT(id) DO UPDATE SET idx=0",
	"INSERT OR REPLACE INTO _rdb_members(id, peer_addr, client_addr) VALUES(1, 'evil:1', 'evil:2')",
	"UPDATE _RDB_MEMBERS SET client_addr='evil:1'",
	`DELETE FROM "_rdb_members"`,
	"DROP TABLE _rdb_members",
	"ALTER TABLE _rdb_applied RENAME TO x",
	"ALTER TABLE _rdb_members ADD COLUMN z",
	"CREATE INDEX hix ON _rdb_members(peer_addr)",
	"CREATE TRIGGER htr AFTER INSERT ON _rdb_members BEGIN SELECT 1; END",
	"CREATE TABLE _rdb_evil(a)",
	"DELETE FROM _rdb_restore_chunks",
	"INSERT INTO _rdb_restore_chunks VALUES('x', 0, x'00')",
	// a trigger created in setup writes _rdb_applied
	"INSERT INTO trig_t VALUES(1)",
	// documented: TEMP objects live on the writer connection only; they
	// do not survive a restart or a snapshot install, so statements that
	// use them later differ between replicas. They cannot be replicated
	// faithfully and must be refused.
	"CREATE TEMP TABLE tt(a)",
	"CREATE TEMP TRIGGER ttr AFTER INSERT ON h BEGIN SELECT 1; END",
	"CREATE TEMP VIEW tv AS SELECT 1",
}

// refusedAtApplySQL are refused too, but as SQL errors of the entry
// (InvalidArgument, nothing changes, identical on every replica) rather
// than before proposing: SQLite itself refuses to prepare UPDATE/DELETE of
// the schema table ("may not be modified"), and the table-valued PRAGMA
// form is caught by the apply authorizer.
var refusedAtApplySQL = []string{
	"UPDATE sqlite_schema SET sql='CREATE TABLE h(a)' WHERE name='h'",
	"DELETE FROM sqlite_master WHERE name='h'",
	"SELECT * FROM pragma_writable_schema",
}

// readRefusedOK are refusedSQL entries a Query may run (they only read).
var readRefusedOK = map[string]bool{"SELECT * FROM pragma_writable_schema": true}

func hostileCases() []hostileCase {
	var cs []hostileCase
	add := func(c hostileCase) { cs = append(cs, c) }
	r := strings.Repeat

	// 1. refused statements
	for _, sql := range refusedSQL {
		add(hostileCase{name: fmt.Sprintf("exec refused %q", sql), call: hExec(false, hs(sql)), want: codes.PermissionDenied})
	}
	for _, sql := range refusedAtApplySQL {
		add(hostileCase{name: fmt.Sprintf("exec refused at apply %q", sql), call: hExec(false, hs(sql)), want: codes.InvalidArgument})
	}
	for i, sql := range refusedSQL {
		if i%3 != 0 && !readRefusedOK[sql] {
			continue // a third of them is enough for the read path
		}
		want := codes.InvalidArgument
		if readRefusedOK[sql] {
			want = codes.OK
		}
		add(hostileCase{name: fmt.Sprintf("query %q", sql), call: hQuery(lvNone, 0, hs(sql)), want: want})
	}
	for _, sql := range []string{"ATTACH ':memory:' AS m", "VACUUM INTO '/tmp/rdb-hostile-vacuum.db'", "SELECT load_extension('x')",
		"PRAGMA writable_schema=1", "BEGIN", "COMMIT", "SELECT * FROM sqlite_dbpage", "UPDATE _rdb_applied SET idx=0"} {
		add(hostileCase{name: "request refused " + sql, call: hRequest(lvUnset, hs(sql)), want: codes.PermissionDenied})
	}
	for _, lv := range []rpcpb.Consistency{lvWeak, lvLin, lvStrong} {
		add(hostileCase{name: fmt.Sprintf("query %v ATTACH", lv), call: hQuery(lv, 0, hs("ATTACH ':memory:' AS m")), want: codes.InvalidArgument})
	}

	// 2. transaction control injected mid-batch
	ins := hs("INSERT INTO h(v) VALUES('mid-batch')")
	for _, tx := range []bool{false, true} {
		for _, ctl := range []string{"COMMIT", "ROLLBACK", "BEGIN", "END", "SAVEPOINT x", "RELEASE rdb_tx", "ROLLBACK TO rdb_stmt"} {
			add(hostileCase{name: fmt.Sprintf("exec tx=%v [insert, %s, insert]", tx, ctl),
				call: hExec(tx, ins, hs(ctl), ins), want: codes.PermissionDenied, contains: "statement 2"})
		}
	}
	add(hostileCase{name: "exec tx [savepoint, insert, release]", call: hExec(true, hs("SAVEPOINT s"), ins, hs("RELEASE s")), want: codes.PermissionDenied})
	// Statements that roll back the whole transaction void their entry
	// only: the earlier insert of the same entry is undone too.
	add(hostileCase{name: "exec [insert, INSERT OR ROLLBACK conflict]",
		call: hExec(false, ins, hs("INSERT OR ROLLBACK INTO h(id, v) VALUES(1, 'dup')")), want: codes.InvalidArgument})
	add(hostileCase{name: "exec [insert, RAISE(ROLLBACK) trigger]",
		call: hExec(false, ins, hs("INSERT INTO rb_t VALUES(1)")), want: codes.InvalidArgument, contains: "statement 2"})
	add(hostileCase{name: "exec tx [insert, syntax error]", call: hExec(true, ins, hs("INSERT INTO")), want: codes.InvalidArgument, contains: "statement 2"})
	add(hostileCase{name: "exec [insert; drop] in one statement",
		call: hExec(false, hs("INSERT INTO h(v) VALUES(1); DROP TABLE h")), want: codes.InvalidArgument})
	add(hostileCase{name: "query two statements in one", call: hQuery(lvNone, 0, hs("SELECT 1; SELECT 2")), want: codes.InvalidArgument})

	// 3. sizes and counts
	add(hostileCase{name: "exec SQL of 1 MiB + 1", call: lazy(func() hostileCall {
		return hExec(false, hs("SELECT 1"+r(" ", hMaxSQL+1-len("SELECT 1"))))
	}), want: codes.InvalidArgument, contains: "SQL of"})
	add(hostileCase{name: "query SQL of 1 MiB + 1", call: lazy(func() hostileCall {
		return hQuery(lvNone, 0, hs("SELECT 1"+r(" ", hMaxSQL+1-len("SELECT 1"))))
	}), want: codes.InvalidArgument, contains: "SQL of"})
	add(hostileCase{name: "query SQL of exactly 1 MiB", call: lazy(func() hostileCall {
		return hQuery(lvNone, 0, hs("SELECT 1"+r(" ", hMaxSQL-len("SELECT 1"))))
	}), want: codes.OK})
	overLimit := func() []*command.Statement { // just over 4 MiB, under the gRPC limit
		return repeatStmt(5, "SELECT 1 --"+r("x", 840_000))
	}
	add(hostileCase{name: "exec request over 4 MiB", call: lazy(func() hostileCall { return hExec(false, overLimit()...) }), want: codes.ResourceExhausted, contains: "limit"})
	add(hostileCase{name: "query request over 4 MiB", call: lazy(func() hostileCall { return hQuery(lvLin, 0, overLimit()...) }), want: codes.ResourceExhausted, contains: "limit"})
	add(hostileCase{name: "request request over 4 MiB", call: lazy(func() hostileCall { return hRequest(lvUnset, overLimit()...) }), want: codes.ResourceExhausted, contains: "limit"})
	add(hostileCase{name: "exec 4 MiB text parameter", call: lazy(func() hostileCall {
		return hExec(false, hs("INSERT INTO h(v) VALUES(?)", hp(command.Text(r("x", hMaxRequest)))))
	}), want: codes.ResourceExhausted})
	add(hostileCase{name: "exec 6 MiB (over the gRPC receive limit)", call: lazy(func() hostileCall {
		return hExec(false, repeatStmt(7, "SELECT 1 --"+r("x", 900_000))...)
	}), want: codes.ResourceExhausted})
	add(hostileCase{name: "query 20 MiB (over the gRPC receive limit)", call: lazy(func() hostileCall {
		return hQuery(lvNone, 0, hs("SELECT length(?)", hp(command.Blob(make([]byte, 20<<20)))))
	}), want: codes.ResourceExhausted})
	add(hostileCase{name: "query blob parameter just under the length limit", call: lazy(func() hostileCall {
		return hQuery(lvNone, 0, hs("SELECT length(?)", hp(command.Blob(make([]byte, hMaxLength-100)))))
	}), want: codes.OK})
	add(hostileCase{name: "query 10,000 statements", call: lazy(func() hostileCall { return hQuery(lvLin, 0, repeatStmt(hMaxStmts, "SELECT 1")...) }), want: codes.OK})
	add(hostileCase{name: "query 10,001 statements", call: lazy(func() hostileCall { return hQuery(lvLin, 0, repeatStmt(hMaxStmts+1, "SELECT 1")...) }), want: codes.InvalidArgument, contains: "10001 statements"})
	add(hostileCase{name: "exec 10,001 statements", call: lazy(func() hostileCall { return hExec(false, repeatStmt(hMaxStmts+1, "INSERT INTO h(v) VALUES(1)")...) }), want: codes.InvalidArgument, contains: "10001 statements"})
	add(hostileCase{name: "request 10,001 statements", call: lazy(func() hostileCall { return hRequest(lvUnset, repeatStmt(hMaxStmts+1, "SELECT 1")...) }), want: codes.InvalidArgument})
	add(hostileCase{name: "exec 10,000 statements, last one refused", call: lazy(func() hostileCall {
		s := repeatStmt(hMaxStmts-1, "INSERT INTO h(v) VALUES(2)")
		return hExec(false, append(s, hs("COMMIT"))...)
	}), want: codes.PermissionDenied, contains: "statement 10000"})
	add(hostileCase{name: "exec tx 10,000 statements, last one fails", call: lazy(func() hostileCall {
		s := repeatStmt(hMaxStmts-1, "INSERT INTO h(v) VALUES(3)")
		return hExec(true, append(s, hs("INSERT INTO nosuch VALUES(1)"))...)
	}), want: codes.InvalidArgument, contains: "statement 10000"})
	add(hostileCase{name: "exec 10,000 inserts", call: lazy(func() hostileCall { return hExec(false, repeatStmt(hMaxStmts, "INSERT INTO h(v) VALUES(4)")...) }), want: codes.OK, writes: true,
		cleanup: "DELETE FROM h WHERE v = 4"})
	add(hostileCase{name: "exec no statements", call: hExec(false), want: codes.InvalidArgument, contains: "no statements"})
	add(hostileCase{name: "query no statements", call: hQuery(lvNone, 0), want: codes.InvalidArgument, contains: "no statements"})
	add(hostileCase{name: "request no statements", call: hRequest(lvUnset), want: codes.InvalidArgument, contains: "no statements"})

	// 4. parameters
	add(hostileCase{name: "query 100,000 parameters", call: lazy(func() hostileCall {
		return hQuery(lvNone, 0, hs("SELECT ?", positional(100_000, command.Integer(1))...))
	}), want: codes.InvalidArgument, contains: "parameters"})
	add(hostileCase{name: "exec 100,000 parameters", call: lazy(func() hostileCall {
		return hExec(false, hs("INSERT INTO h(v) VALUES(?)", positional(100_000, command.Integer(1))...))
	}), want: codes.InvalidArgument, contains: "parameters"})
	add(hostileCase{name: "query 32,767 parameters", call: lazy(func() hostileCall {
		return hQuery(lvNone, 0, hs("SELECT ?", positional(hMaxParams+1, command.Integer(1))...))
	}), want: codes.InvalidArgument, contains: "parameters"})
	add(hostileCase{name: "query 32,766 parameters", call: lazy(func() hostileCall {
		sql := "SELECT 1 IN (" + strings.TrimSuffix(r("?,", hMaxParams), ",") + ")"
		return hQuery(lvNone, 0, hs(sql, positional(hMaxParams, command.Integer(1))...))
	}), want: codes.OK})
	add(hostileCase{name: "query ?32767", call: hQuery(lvNone, 0, hs("SELECT ?32767", hp(command.Integer(1)))), want: codes.InvalidArgument})
	add(hostileCase{name: "query 32,766 parameters for one slot", call: lazy(func() hostileCall {
		return hQuery(lvNone, 0, hs("SELECT ?", positional(hMaxParams, command.Integer(1))...))
	}), want: codes.InvalidArgument})
	for _, pc := range []struct {
		name string
		st   *command.Statement
		want codes.Code
	}{
		{"no parameter for ?", hs("SELECT ?"), codes.InvalidArgument},
		{"two parameters for ?", hs("SELECT ?", hp(command.Integer(1)), hp(command.Integer(2))), codes.InvalidArgument},
		{"one parameter for ?, ?", hs("SELECT ?, ?", hp(command.Integer(1))), codes.InvalidArgument},
		{"parameter for none", hs("SELECT 1", hp(command.Integer(1))), codes.InvalidArgument},
		{"wrong name", hs("SELECT :a", hn("b", command.Integer(1))), codes.InvalidArgument},
		{"name with wrong prefix", hs("SELECT :a", hn("$a", command.Integer(1))), codes.InvalidArgument},
		{"empty name ':'", hs("SELECT :a", hn(":", command.Integer(1))), codes.InvalidArgument},
		{"name with space", hs("SELECT :a", hn("a b", command.Integer(1))), codes.InvalidArgument},
		{"name with semicolon", hs("SELECT :a", hn("a;", command.Integer(1))), codes.InvalidArgument},
		{"name with quote", hs("SELECT :a", hn("a'", command.Integer(1))), codes.InvalidArgument},
		{"name with double quote", hs("SELECT :a", hn(`"a`, command.Integer(1))), codes.InvalidArgument},
		{"?5 with one positional", hs("SELECT ?5", hp(command.Integer(1))), codes.InvalidArgument},
		// Unnamed parameters fill slots 1, 2, ... in order (sconn.bind), and
		// :a is slot 1, so slot 2 stays unbound.
		{"named and positional mixed", hs("SELECT :a, ?", hn("a", command.Integer(1)), hp(command.Integer(2))), codes.InvalidArgument},
		{"same name twice", hs("SELECT :a", hn("a", command.Integer(1)), hn("a", command.Integer(2))), codes.OK},
		{"?1 twice in SQL", hs("SELECT ?1, ?1", hp(command.Integer(1))), codes.OK},
		{"name with prefix", hs("SELECT $a", hn("$a", command.Integer(1))), codes.OK},
		{"numbered by name", hs("SELECT ?2, ?1", hn("2", command.Integer(1)), hn("1", command.Integer(2))), codes.OK},
		{"value with no kind is NULL", hs("SELECT ? IS NULL", hp(&command.Value{})), codes.OK},
		{"nil value is NULL", hs("SELECT ? IS NULL", &command.Parameter{}), codes.OK},
		{"null=false is NULL", hs("SELECT ? IS NULL", hp(&command.Value{Kind: &command.Value_Null{Null: false}})), codes.OK},
		{"NaN", hs("SELECT ?", hp(command.Real(math.NaN()))), codes.OK},
		{"-Inf", hs("SELECT ?", hp(command.Real(math.Inf(-1)))), codes.OK},
		{"min int64", hs("SELECT ? - 1", hp(command.Integer(math.MinInt64))), codes.OK},
		{"text with NUL", hs("SELECT length(?)", hp(command.Text("a\x00b"))), codes.OK},
		{"empty blob", hs("SELECT length(?)", hp(command.Blob(nil))), codes.OK},
	} {
		add(hostileCase{name: "query params: " + pc.name, call: hQuery(lvNone, 0, pc.st), want: pc.want})
	}
	add(hostileCase{name: "exec params: wrong count", call: hExec(false, hs("INSERT INTO h(v) VALUES(?)")), want: codes.InvalidArgument, contains: "statement 1"})
	add(hostileCase{name: "exec params: wrong name", call: hExec(false, hs("INSERT INTO h(v) VALUES(:v)", hn("w", command.Integer(1)))), want: codes.InvalidArgument})
	add(hostileCase{name: "exec params: bad name", call: hExec(false, hs("INSERT INTO h(v) VALUES(:v)", hn("v;--", command.Integer(1)))), want: codes.InvalidArgument})

	// 5. empty, NUL, invalid UTF-8 and other malformed SQL
	for _, e := range []struct {
		name, sql string
		want      codes.Code
	}{
		{"empty SQL", "", codes.InvalidArgument},
		{"blank SQL", " \t\r\n ", codes.InvalidArgument},
		{"only a semicolon", ";", codes.OK},
		{"only a comment", "-- nothing", codes.OK},
		{"only a block comment", "/* nothing */", codes.OK},
		// documented: text after a NUL byte is silently dropped by SQLite;
		// the server promises one statement per Statement with at most
		// comments after it, so this is malformed (InvalidArgument).
		{"NUL then a second statement", "SELECT 1\x00; DROP TABLE h", codes.InvalidArgument},
		{"NUL then garbage", "SELECT 1\x00garbage", codes.InvalidArgument},
		// documented: a lone NUL is empty SQL (InvalidArgument).
		{"only NUL", "\x00", codes.InvalidArgument},
		{"NUL inside a string literal", "SELECT 'a\x00b'", codes.InvalidArgument},
		{"byte-order mark", "\ufeffSELECT 1", codes.OK},
		{"unterminated string", "SELECT 'abc", codes.InvalidArgument},
		{"backtick", "SELECT `", codes.InvalidArgument},
		{"bad blob literal", "SELECT x'zz'", codes.InvalidArgument},
		{"no such table", "SELECT * FROM nosuch", codes.InvalidArgument},
		{"no such function", "SELECT readfile('/etc/passwd')", codes.InvalidArgument},
		{"integer overflow", "SELECT abs(-9223372036854775808)", codes.InvalidArgument},
		{"emoji identifier", `SELECT 1 AS "🙂"`, codes.OK},
		{"VACUUM", "VACUUM", codes.InvalidArgument},
	} {
		add(hostileCase{name: "query " + e.name, call: hQuery(lvNone, 0, hs(e.sql)), want: e.want})
	}
	add(hostileCase{name: "exec empty SQL second", call: hExec(false, ins, hs("")), want: codes.InvalidArgument, contains: "statement 2"})
	// documented: as above, the DELETE after the NUL byte is dropped
	// silently while the INSERT runs.
	add(hostileCase{name: "exec NUL then a second statement", call: hExec(false, hs("INSERT INTO h(v) VALUES('nul')\x00; DELETE FROM h")), want: codes.InvalidArgument})
	add(hostileCase{name: "exec VACUUM", call: hExec(false, hs("VACUUM")), want: codes.InvalidArgument})

	// 6. huge expressions and values
	for _, e := range []struct {
		name, sql string
		want      codes.Code
	}{
		{"200 nested parentheses", "SELECT " + r("(", 200) + "1" + r(")", 200), codes.OK},
		{"100,000 nested parentheses", "SELECT " + r("(", 100_000) + "1" + r(")", 100_000), codes.InvalidArgument},
		{"1,000 additions", "SELECT 1" + r(" + 1", 1000), codes.InvalidArgument},
		{"100,000 unary minus", "SELECT " + r("- ", 100_000) + "1", codes.InvalidArgument},
		{"200 nested subqueries", "SELECT " + r("(SELECT ", 200) + "1" + r(")", 200), codes.InvalidArgument},
		{"300 nested CASE", "SELECT " + r("CASE WHEN 1 THEN ", 300) + "1" + r(" END", 300), codes.InvalidArgument},
		{"1,000 compound SELECTs", "SELECT 1" + r(" UNION ALL SELECT 1", 1000), codes.InvalidArgument},
		{"70-table join", "SELECT 1 FROM " + strings.TrimSuffix(r("h, ", 70), ", "), codes.InvalidArgument},
		{"JSON nested 3,000 deep", "SELECT json('" + r("[", 3000) + r("]", 3000) + "')", codes.InvalidArgument},
		{"LIKE pattern of 2,000", "SELECT 'a' LIKE '" + r("%a", 1000) + "'", codes.InvalidArgument},
		{"100,000-item IN list", "SELECT 5 IN (" + strings.TrimSuffix(r("1,", 100_000), ",") + ")", codes.OK},
		{"zeroblob(1e9)", "SELECT zeroblob(1e9)", codes.InvalidArgument},
		{"length(zeroblob(1e9))", "SELECT length(zeroblob(1000000000))", codes.InvalidArgument},
		{"randomblob(1e9)", "SELECT randomblob(1e9)", codes.InvalidArgument},
		{"zeroblob just over the length limit", fmt.Sprintf("SELECT zeroblob(%d)", hMaxLength+1), codes.InvalidArgument},
		{"zeroblob at the length limit", fmt.Sprintf("SELECT length(zeroblob(%d))", hMaxLength), codes.OK},
		{"printf width 1e9", "SELECT printf('%999999999d', 1)", codes.InvalidArgument},
		{"replace growing past the limit", "SELECT replace(hex(zeroblob(3000000)), '00', 'xx')", codes.InvalidArgument},
		{"group_concat past the limit", "SELECT group_concat(hex(randomblob(1000)), '') FROM (" + hRunawayCTE + "SELECT i FROM c LIMIT 3000)", codes.InvalidArgument},
		{"randomblob(-1)", "SELECT length(randomblob(-1))", codes.OK},
	} {
		add(hostileCase{name: "query " + e.name, call: hQuery(lvNone, 0, hs(e.sql)), want: e.want, timeout: hSlowQueries[e.name]})
	}
	add(hostileCase{name: "exec insert zeroblob(1e9)", call: hExec(false, hs("INSERT INTO h(v) VALUES(zeroblob(1e9))")), want: codes.InvalidArgument})
	add(hostileCase{name: "exec insert randomblob(1e9)", call: hExec(false, hs("INSERT INTO h(v) VALUES(randomblob(1e9))")), want: codes.InvalidArgument})
	add(hostileCase{name: "exec 1,000 additions", call: hExec(false, hs("INSERT INTO h(v) VALUES(1"+r(" + 1", 1000)+")")), want: codes.InvalidArgument})
	add(hostileCase{name: "exec 100,000 nested parentheses", call: hExec(false, hs("INSERT INTO h(v) VALUES("+r("(", 100_000)+"1"+r(")", 100_000)+")")), want: codes.InvalidArgument})
	// A response over the client's receive limit (64 MiB here).
	add(hostileCase{name: "query 80 MB response", call: hQuery(lvNone, 0, hs(hRunawayCTE+"SELECT zeroblob(4000000) FROM c LIMIT 20")), want: codes.ResourceExhausted})

	// 7. consistency levels, min_index and deadlines
	add(hostileCase{name: "query unknown consistency 99", call: hQuery(rpcpb.Consistency(99), 0, hs("SELECT 1")), want: codes.InvalidArgument, contains: "consistency"})
	add(hostileCase{name: "query consistency -1", call: hQuery(rpcpb.Consistency(-1), 0, hs("SELECT 1")), want: codes.InvalidArgument, contains: "consistency"})
	add(hostileCase{name: "request unknown consistency 99", call: hRequest(rpcpb.Consistency(99), hs("SELECT 1")), want: codes.InvalidArgument, contains: "consistency"})
	add(hostileCase{name: "query max_staleness_ms MaxInt64", call: func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := rpcpb.NewDBClient(cc).Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{hs("SELECT 1")}, Consistency: lvNone, MaxStalenessMs: math.MaxInt64})
		return err
	}, want: codes.OK})
	short := 500 * time.Millisecond
	for _, lv := range []rpcpb.Consistency{lvNone, lvWeak, lvLin, lvUnset, lvStrong} {
		for _, mi := range []uint64{1 << 62, math.MaxUint64} {
			// documented for STRONG too: min_index means "answer only once
			// the serving node has applied at least this index" (rdb.proto).
			add(hostileCase{name: fmt.Sprintf("query %v min_index %d", lv, mi), call: hQuery(lv, mi, hs("SELECT 1")),
				want: codes.DeadlineExceeded, timeout: short, maxElapsed: short + 2*time.Second})
		}
	}
	add(hostileCase{name: "request min_index huge", call: func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := rpcpb.NewDBClient(cc).Request(ctx, &rpcpb.RequestRequest{Statements: []*command.Statement{hs("SELECT 1")}, MinIndex: 1 << 62})
		return err
	}, want: codes.DeadlineExceeded, timeout: short, maxElapsed: short + 2*time.Second})
	// Runaway reads stop at their deadline.
	sec := time.Second
	for _, lv := range []rpcpb.Consistency{lvNone, lvWeak, lvLin} {
		add(hostileCase{name: fmt.Sprintf("query %v runaway recursive CTE", lv), call: hQuery(lv, 0, hs(hRunawayCTE+"SELECT count(*) FROM c")),
			want: codes.DeadlineExceeded, timeout: sec, maxElapsed: sec + 2*time.Second})
	}
	add(hostileCase{name: "query runaway CTE returning rows", call: hQuery(lvNone, 0, hs(hRunawayCTE+"SELECT i FROM c")),
		want: codes.DeadlineExceeded, timeout: sec, maxElapsed: sec + 2*time.Second})
	add(hostileCase{name: "query runaway CTE as second statement", call: hQuery(lvLin, 0, hs("SELECT 1"), hs(hRunawayCTE+"SELECT max(i) FROM c")),
		want: codes.DeadlineExceeded, timeout: sec, maxElapsed: sec + 2*time.Second})
	add(hostileCase{name: "request runaway recursive CTE", call: hRequest(lvUnset, hs(hRunawayCTE+"SELECT count(*) FROM c")),
		want: codes.DeadlineExceeded, timeout: sec, maxElapsed: sec + 2*time.Second})

	// 8. malformed protobuf (raw bytes as the request message): gRPC
	// fails to decode it before rdb sees it (Internal, grpc-go's code).
	sel1 := []byte("SELECT 1")
	good := pbQuery(sel1, nil, nil)
	for _, rc := range []struct {
		name   string
		method string
		b      []byte
		want   codes.Code
	}{
		{"garbage", "/rdb.v1.DB/Query", bytes.Repeat([]byte{0xff}, 64), codes.Internal},
		{"truncated", "/rdb.v1.DB/Query", good[:len(good)-3], codes.Internal},
		{"length beyond the message", "/rdb.v1.DB/Execute", []byte{0x0a, 0xff, 0xff, 0xff, 0x0f, 0x0a}, codes.Internal},
		// A field with the wrong wire type is kept as an unknown field, so
		// the statement's SQL is empty.
		{"wrong wire type for sql", "/rdb.v1.DB/Query", pbBytes(nil, 1, pbVarint(nil, 1, 7)), codes.InvalidArgument},
		{"invalid UTF-8 in sql", "/rdb.v1.DB/Query", pbQuery([]byte("SELECT '\xff\xfe'"), nil, nil), codes.Internal},
		{"invalid UTF-8 in parameter text", "/rdb.v1.DB/Query", pbQuery([]byte("SELECT ?"), [][]byte{pbBytes(nil, 2, pbBytes(nil, 4, []byte{0xc3, 0x28}))}, nil), codes.Internal},
		{"invalid UTF-8 in parameter name", "/rdb.v1.DB/Execute", pbQuery([]byte("SELECT :a"), [][]byte{pbBytes(pbBytes(nil, 1, []byte{0xe2, 0x82}), 2, pbVarint(nil, 2, 1))}, nil), codes.Internal},
		{"unknown fields", "/rdb.v1.DB/Query", pbQuery(sel1, nil, pbVarint(pbBytes(nil, 99, []byte("x")), 1000, 5)), codes.OK},
		{"value with only an unknown field is NULL", "/rdb.v1.DB/Query", pbQuery([]byte("SELECT ? IS NULL"), [][]byte{pbBytes(nil, 2, pbVarint(nil, 77, 1))}, nil), codes.OK},
		// An enum varint is truncated to 32 bits: 2^40+99 reads as 99.
		{"consistency as varint 2^40+99", "/rdb.v1.DB/Query", pbQuery(sel1, nil, pbVarint(nil, 2, 1<<40+99)), codes.InvalidArgument},
		{"empty message to Execute", "/rdb.v1.DB/Execute", nil, codes.InvalidArgument},
		{"empty message to Request", "/rdb.v1.DB/Request", nil, codes.InvalidArgument},
		{"deeply nested groups", "/rdb.v1.DB/Query", append(bytes.Repeat([]byte{0x0b}, 20000), bytes.Repeat([]byte{0x0c}, 20000)...), codes.Internal},
		{"unknown method", "/rdb.v1.DB/Nope", good, codes.Unimplemented},
		{"unknown service", "/rdb.v9.Evil/Query", good, codes.Unimplemented},
	} {
		add(hostileCase{name: "raw proto " + rc.name, call: hRaw(rc.method, rc.b), want: rc.want})
	}

	// 9. HTTP/2 level: gRPC frames that lie about their length.
	add(hostileCase{name: "h2 truncated gRPC message", call: hH2("/rdb.v1.DB/Query", grpcFrame(0, 100, good[:10])), want: codes.Internal})
	add(hostileCase{name: "h2 length prefix 4 GiB", call: hH2("/rdb.v1.DB/Query", grpcFrame(0, math.MaxUint32, good)), want: codes.ResourceExhausted})
	add(hostileCase{name: "h2 compressed flag without encoding", call: hH2("/rdb.v1.DB/Query", grpcFrame(1, uint32(len(good)), good)), want: codes.Internal})
	add(hostileCase{name: "h2 truncated frame header", call: hH2("/rdb.v1.DB/Query", []byte{0, 0, 0}), want: codes.Internal})
	add(hostileCase{name: "h2 valid frame (control)", call: hH2("/rdb.v1.DB/Query", grpcFrame(0, uint32(len(good)), good)), want: codes.OK})

	// 10. raw TCP garbage to the client port and to the peer port: the
	// node keeps serving (want OK: the bytes were written).
	rawInputs := []struct {
		name string
		b    func() []byte
	}{
		{"random 64 KiB", func() []byte { return randomBytes(64 << 10) }},
		{"HTTP/1.1 request", func() []byte { return []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n") }},
		{"TLS client hello", func() []byte { return []byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03} }},
		{"HTTP/2 preface only", func() []byte { return []byte(http2.ClientPreface) }},
		{"preface + truncated frame header", func() []byte { return append([]byte(http2.ClientPreface), 0, 0, 6) }},
		{"preface + SETTINGS of bad length", func() []byte {
			return append(append([]byte(http2.ClientPreface), frameHeader(7, http2.FrameSettings, 0, 0)...), 1, 2, 3, 4, 5, 6, 7)
		}},
		{"preface + 16 MiB DATA frame header", func() []byte {
			return append(append([]byte(http2.ClientPreface), frameHeader(1<<24-1, http2.FrameData, 0, 1)...), randomBytes(1000)...)
		}},
		{"preface + HEADERS with garbage HPACK", func() []byte {
			return append(append([]byte(http2.ClientPreface), frameHeader(64, http2.FrameHeaders, http2.FlagHeadersEndHeaders, 1)...), randomBytes(64)...)
		}},
		{"1 MiB of zeros", func() []byte { return make([]byte, 1<<20) }},
	}
	for _, in := range rawInputs {
		add(hostileCase{name: "tcp client port " + in.name, call: hRawTCP(in.b), want: codes.OK})
		add(hostileCase{name: "tcp peer port " + in.name, call: hRawTCP(in.b), want: codes.OK, peer: true})
	}
	// Peer service: malformed raft messages.
	add(hostileCase{name: "peer raft stream garbage message", call: hRaftStream(bytes.Repeat([]byte{0xff}, 32)), want: codes.Internal, peer: true})
	// documented: a RaftMessage whose data is not a raft message is a
	// malformed request (InvalidArgument), not an untyped error (Unknown).
	add(hostileCase{name: "peer raft stream undecodable data", call: hRaftStream(pbBytes(nil, 1, bytes.Repeat([]byte{0xff}, 32))), want: codes.InvalidArgument, peer: true})
	add(hostileCase{name: "peer raft stream empty message (a local MsgHup, ignored)", call: hRaftStream(nil), want: codes.OK, peer: true})

	// 11. 1,000 concurrent streams on one connection.
	add(hostileCase{name: "1,000 concurrent queries", call: concurrentQueries(1000), want: codes.OK, timeout: 60 * time.Second, maxElapsed: 60 * time.Second})
	return cs
}

// concurrentQueries runs n Query calls at once on cc; each must succeed.
func concurrentQueries(n int) hostileCall {
	return func(ctx context.Context, cc *grpc.ClientConn) error {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lv := []rpcpb.Consistency{lvNone, lvWeak, lvLin}[i%3]
				_, errs[i] = rpcpb.NewDBClient(cc).Query(ctx, &rpcpb.QueryRequest{Statements: []*command.Statement{hs("SELECT count(*), ? FROM h", hp(command.Integer(int64(i))))}, Consistency: lv})
			}()
		}
		wg.Wait()
		byCode := map[codes.Code]int{}
		var first error
		for _, err := range errs {
			byCode[status.Code(err)]++
			if err != nil && first == nil {
				first = err
			}
		}
		if first != nil {
			return status.Errorf(status.Code(first), "%v (codes: %v)", first, byCode)
		}
		return nil
	}
}

// hostileEnv is the cluster and what the checks need.
type hostileEnv struct {
	c        *Cluster
	leader   *Node // the leader when the case was sent
	conns    map[uint64]*grpc.ClientConn
	baseline string
}

func (e *hostileEnv) healthy(t *testing.T, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := rpcpb.NewDBClient(e.conns[n.ID]).Status(ctx, &rpcpb.StatusRequest{}); err != nil {
		t.Errorf("node %d not healthy within 1s: %v", n.ID, err)
	}
}

// hashesUnchanged checks every replica's content hash against the
// baseline. It returns false when one differs.
func (e *hostileEnv) hashesUnchanged(t *testing.T) bool {
	t.Helper()
	ok := true
	for _, n := range e.c.Nodes {
		h, err := hashOf(t, n, 0)
		if err != nil {
			t.Errorf("hash of node %d: %v", n.ID, err)
			ok = false
			continue
		}
		if h.GetHash() != e.baseline {
			t.Errorf("node %d content changed (hash %.12s, before %.12s) by a request that was refused", n.ID, h.GetHash(), e.baseline)
			ok = false
		}
	}
	return ok
}

func (e *hostileEnv) rebaseline(t *testing.T) {
	t.Helper()
	leader := e.c.WaitLeader(t)
	e.baseline = e.c.waitConverged(t, appliedIndex(t, leader), 60*time.Second)
}

func startHostileCluster(t *testing.T) *hostileEnv {
	// A 3 s election timeout instead of 0.5 s: the largest valid requests
	// here (10,000 statements in one entry) can keep the followers' raft
	// loops applying for longer than 0.5 s on a slow 2-core machine with
	// the race detector, and the leader then steps down for want of a
	// quorum (CheckQuorum; its log said so in make test of 2026-11-27
	// 09:41). The cases then see "no leader", which says nothing about how
	// the input was handled.
	c := StartCluster(t, 3, "--election-ticks", "60")
	leader := c.WaitLeader(t)
	cl := NodeClient(t, leader)
	for _, sql := range []string{
		"CREATE TABLE h(id INTEGER PRIMARY KEY, v)",
		"INSERT INTO h(id, v) VALUES(1, 'one')",
		"CREATE TABLE trig_t(a)",
		"CREATE TRIGGER trig_evil AFTER INSERT ON trig_t BEGIN UPDATE _rdb_applied SET idx = 0; END",
		"CREATE TABLE rb_t(a)",
		"CREATE TRIGGER rb_trig BEFORE INSERT ON rb_t BEGIN SELECT RAISE(ROLLBACK, 'rolled back by trigger'); END",
	} {
		mustExec(t, cl, sql)
	}
	e := &hostileEnv{c: c, conns: map[uint64]*grpc.ClientConn{}}
	for _, n := range c.Nodes {
		e.conns[n.ID] = hostileConn(t, n.ClientAddr)
	}
	// SET_MEMBER entries (each node's client address, published by the
	// leader up to a second after the node announced it) may still be on
	// their way: wait until every member has one, then settle.
	waitFor(t, 30*time.Second, "every member's client address in the member table", func() error {
		st, err := nodeStatus(t, leader)
		if err != nil {
			return err
		}
		for _, m := range st.GetMembers() {
			if m.GetClientAddr() == "" {
				return fmt.Errorf("member %d has no client address yet", m.GetId())
			}
		}
		if len(st.GetMembers()) != len(c.Nodes) {
			return fmt.Errorf("%d members, want %d", len(st.GetMembers()), len(c.Nodes))
		}
		return nil
	})
	e.rebaseline(t)
	return e
}

// hSlowQueries are the section 6 queries that need more than the default
// deadline: group_concat builds its 6 MB string 1,000 bytes at a time,
// which took 5.7-8.1 s with the race detector on a slow 2-core machine
// alone and hit the 10 s deadline in one make test of 2026-11-27 while
// the chaos package ran beside it. The deadline bounds a refusal that
// is CPU-bound, not a wait; the case still asserts InvalidArgument.
var hSlowQueries = map[string]time.Duration{"group_concat past the limit": 30 * time.Second}

// runCase sends c to node n and checks the outcome: the code, the
// message, the time taken, the node's health and the replicas' hashes.
func (e *hostileEnv) runCase(t *testing.T, c hostileCase, n *Node) {
	timeout := c.timeout
	if timeout == 0 {
		timeout = hDefaultTimeo
	}
	addr := n.ClientAddr
	cc := e.conns[n.ID]
	if c.peer {
		addr = n.PeerAddr
		cc = hostileConn(t, n.PeerAddr)
	}
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), rawAddrKey{}, addr), timeout)
	defer cancel()
	start := time.Now()
	err := c.call(ctx, cc)
	elapsed := time.Since(start)
	got := status.Code(err)
	if got != c.want {
		t.Errorf("code %v, want %v (after %s): %v", got, c.want, elapsed.Round(time.Millisecond), truncate(err))
	} else if c.contains != "" && !strings.Contains(status.Convert(err).Message(), c.contains) {
		t.Errorf("message %q does not mention %q", truncate(err), c.contains)
	}
	if c.maxElapsed > 0 && elapsed > c.maxElapsed {
		t.Errorf("took %s, at most %s allowed", elapsed.Round(time.Millisecond), c.maxElapsed)
	}
	// The node that got the request, and the leader (which did the work
	// of a forwarded one), answer Status within a second.
	e.healthy(t, n)
	if e.leader != nil && e.leader != n {
		e.healthy(t, e.leader)
	}
	switch {
	case c.writes && got == codes.OK:
		e.rebaseline(t)
		if c.cleanup != "" {
			mustExec(t, NodeClient(t, e.c.WaitLeader(t)), c.cleanup)
			e.rebaseline(t)
		}
	case !e.hashesUnchanged(t):
		e.rebaseline(t)
	}
}

func truncate(err error) string {
	if err == nil {
		return "<nil>"
	}
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func TestHostileInputs(t *testing.T) {
	e := startHostileCluster(t)
	leader := e.c.WaitLeader(t)
	follower := e.c.Followers(leader)[0]
	e.leader = leader

	// Idle connections held open through the whole run (slowloris).
	var idle []net.Conn
	for _, n := range e.c.Nodes {
		for _, addr := range []string{n.ClientAddr, n.PeerAddr} {
			for range 50 {
				if conn, err := net.Dial("tcp", addr); err == nil {
					idle = append(idle, conn)
				}
			}
		}
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()

	cases := hostileCases()
	t.Logf("%d cases, each to the leader (node %d) and a follower (node %d)", len(cases), leader.ID, follower.ID)
	if len(cases) < 150 {
		t.Errorf("only %d cases", len(cases))
	}
	start := time.Now()
	for _, c := range cases {
		for _, target := range []struct {
			role string
			node *Node
		}{{"leader", leader}, {"follower", follower}} {
			t.Run(c.name+"/"+target.role, func(t *testing.T) {
				e.runCase(t, c, target.node)
			})
		}
	}
	t.Logf("%d calls in %s", 2*len(cases), time.Since(start).Round(time.Millisecond))
	for _, n := range e.c.Nodes {
		if !n.Running() {
			t.Errorf("node %d exited", n.ID)
		}
		if rss := n.PeakRSS(); rss > 0 {
			t.Logf("node %d peak RSS %d MiB", n.ID, rss>>20)
		}
	}
	e.rebaseline(t)
}

// TestHostileBudget: a write that never ends is bounded by the operation
// budget, the same on every replica (db.DefaultMaxApplySteps), and a
// strong read through the log stops at its deadline. Separate from the
// table because the default budget (1e9 steps) costs tens of seconds of
// apply on every replica.
func TestHostileBudget(t *testing.T) {
	// The budget is counted in SQLite VM steps, which the race detector
	// slows several times: run these servers without it.
	usePlainRDB(t)
	e := startHostileCluster(t)
	leader := e.c.WaitLeader(t)
	follower := e.c.Followers(leader)[0]
	cases := []hostileCase{
		{name: "exec runaway recursive CTE", call: hExec(false, hs("INSERT INTO h(v) "+hRunawayCTE+"SELECT i FROM c WHERE i < 0")),
			want: codes.InvalidArgument, contains: "operation budget", timeout: 5 * time.Minute},
		// Through the log the read is bounded by the same budget as a write.
		{name: "query STRONG runaway recursive CTE", call: hQuery(lvStrong, 0, hs(hRunawayCTE+"SELECT count(*) FROM c")),
			want: codes.InvalidArgument, contains: "operation budget", timeout: 30 * time.Second, maxElapsed: 20 * time.Second},
	}
	for _, c := range cases {
		for _, target := range []struct {
			role string
			node *Node
		}{{"leader", leader}, {"follower", follower}} {
			t.Run(c.name+"/"+target.role, func(t *testing.T) {
				// Not asserted (the issue asks for health after the call):
				// how long the leader's Status stalls meanwhile.
				stop := make(chan struct{})
				probed := make(chan string)
				go func() {
					var n, failed int
					var worst time.Duration
					for {
						select {
						case <-stop:
							probed <- fmt.Sprintf("%d of %d Status probes of node %d failed within 1s, slowest %s", failed, n, leader.ID, worst.Round(time.Millisecond))
							return
						case <-time.After(500 * time.Millisecond):
						}
						ctx, cancel := context.WithTimeout(context.Background(), time.Second)
						t0 := time.Now()
						_, err := rpcpb.NewDBClient(e.conns[leader.ID]).Status(ctx, &rpcpb.StatusRequest{})
						cancel()
						n++
						worst = max(worst, time.Since(t0))
						if err != nil {
							failed++
						}
					}
				}()
				start := time.Now()
				e.leader = leader
				e.runCase(t, c, target.node)
				close(stop)
				t.Logf("took %s; %s", time.Since(start).Round(time.Millisecond), <-probed)
				// Whatever happened, let the cluster settle before the next case.
				e.rebaseline(t)
				leader = e.c.WaitLeader(t)
				follower = e.c.Followers(leader)[0]
			})
		}
	}
}

// TestHostileDeterminism: writes whose value depends on the writer
// connection's history rather than on the log. Every replica must store
// the same rows, also one that restarted in between (its connection is
// new, its data directory the same).
func TestHostileDeterminism(t *testing.T) {
	e := startHostileCluster(t)
	leader := e.c.WaitLeader(t)
	cl := NodeClient(t, leader)
	exprs := []string{"changes()", "last_insert_rowid()"}
	// total_changes() counts the connection's whole history: refused.
	if _, err := cl.Execute(context.Background(), &rpcpb.ExecuteRequest{Statements: []*command.Statement{
		hs("SELECT total_changes()")}}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("total_changes() in a write: %v, want PermissionDenied", err)
	}
	for i := range exprs {
		mustExec(t, cl, fmt.Sprintf("CREATE TABLE det%d(id INTEGER PRIMARY KEY, v)", i))
		for j := range 3 {
			mustExec(t, cl, fmt.Sprintf("INSERT INTO det%d(v) VALUES (%d), (%d)", i, j, j))
		}
	}
	// A TEMP trigger would live on the writer connections only: refused.
	mustExec(t, cl, "CREATE TABLE det_temp(id INTEGER PRIMARY KEY, v)")
	_, tempErr := cl.Execute(context.Background(), &rpcpb.ExecuteRequest{Statements: []*command.Statement{
		hs("CREATE TEMP TRIGGER det_tr AFTER INSERT ON det_temp BEGIN UPDATE det_temp SET v = 'trigger' WHERE id = new.id; END")}})
	if status.Code(tempErr) != codes.PermissionDenied {
		t.Errorf("CREATE TEMP TRIGGER: %v, want PermissionDenied", tempErr)
	}
	idx := mustExec(t, cl, "INSERT INTO det_temp(v) VALUES ('before restart')").GetRaftIndex()
	// Restart a follower: it reopens its database, which already holds idx.
	follower := e.c.Followers(leader)[0]
	e.c.waitConverged(t, idx, 30*time.Second)
	follower.Restart(t)
	e.c.WaitLeader(t)
	e.c.waitConverged(t, idx, 60*time.Second)
	leader = e.c.WaitLeader(t)
	cl = NodeClient(t, leader)

	check := func(t *testing.T, table string, idx uint64) {
		var first string
		for _, n := range e.c.Nodes {
			res := mustQuery(t, NodeClient(t, n), lvNone, idx, fmt.Sprintf("SELECT group_concat(v) FROM %s", table))
			got := res.GetRows()[0].GetValues()[0].GetText()
			if n == e.c.Nodes[0] {
				first = got
			} else if got != first {
				t.Errorf("replicas differ: node %d has %q, node %d has %q (node %d restarted)", n.ID, got, e.c.Nodes[0].ID, first, follower.ID)
			}
		}
	}
	for i, expr := range exprs {
		t.Run(expr, func(t *testing.T) {
			idx := mustExec(t, cl, fmt.Sprintf("INSERT INTO det%d(v) VALUES (%s)", i, expr)).GetRaftIndex()
			check(t, fmt.Sprintf("det%d", i), idx)
		})
	}
	t.Run("no TEMP trigger", func(t *testing.T) {
		idx := mustExec(t, cl, "INSERT INTO det_temp(v) VALUES ('after restart')").GetRaftIndex()
		check(t, "det_temp", idx)
	})
}
