package db

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rdb/command"
)

func openTest(t testing.TB) *DB {
	t.Helper()
	d, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "db.sqlite")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func stmt(t testing.TB, sql string, args ...any) *command.Statement {
	t.Helper()
	s, err := command.NewStatement(sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testTime = time.Date(2024, 3, 5, 6, 7, 8, 123456789, time.UTC)

func execCmd(tx bool, stmts ...*command.Statement) *command.Command {
	return &command.Command{Type: command.CommandType_COMMAND_TYPE_EXECUTE, Statements: stmts, Transaction: tx,
		TimeUnixNanos: testTime.UnixNano(), RandomSeed: 42}
}

func mustApply(t testing.TB, d *DB, idx uint64, c *command.Command) []*command.Result {
	t.Helper()
	res, err := d.Apply(context.Background(), Entry{Index: idx, Command: c, WantResults: true})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func mustQuery(t testing.TB, d *DB, sql string, args ...any) *command.Result {
	t.Helper()
	res, err := d.Query(context.Background(), []*command.Statement{stmt(t, sql, args...)})
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func TestDB_TypesRoundTrip(t *testing.T) {
	d := openTest(t)
	res := mustApply(t, d, 1, execCmd(false,
		stmt(t, "CREATE TABLE t(id INTEGER PRIMARY KEY, v ANY, d DATETIME, ts TIMESTAMP)"),
	))
	if res[0].Error != "" {
		t.Fatal(res[0].Error)
	}
	vals := []*command.Value{
		command.Integer(math.MinInt64), command.Integer(math.MaxInt64), command.Integer(0),
		command.Real(3.25), command.Real(-0.5), command.Text("héllo ✓ 世界"), command.Text(""),
		command.Blob([]byte{0, 1, 2, 255}), command.Blob([]byte{}), command.Null(),
	}
	var stmts []*command.Statement
	for i, v := range vals {
		stmts = append(stmts, &command.Statement{Sql: "INSERT INTO t(id, v, d, ts) VALUES(?, ?, ?, ?)",
			Parameters: []*command.Parameter{{Value: command.Integer(int64(i))}, {Value: v},
				{Value: command.Text("2024-01-02 03:04:05")}, {Value: command.Text("not a time")}}})
	}
	for _, r := range mustApply(t, d, 2, execCmd(false, stmts...)) {
		if r.Error != "" || r.RowsAffected != 1 {
			t.Fatalf("insert: %+v", r)
		}
	}
	got := mustQuery(t, d, "SELECT v, d, ts FROM t ORDER BY id")
	if want := []string{"ANY", "DATETIME", "TIMESTAMP"}; strings.Join(got.Types, ",") != strings.Join(want, ",") {
		t.Fatalf("types %v", got.Types)
	}
	if len(got.Rows) != len(vals) {
		t.Fatalf("rows %d", len(got.Rows))
	}
	for i, r := range got.Rows {
		if fmt.Sprintf("%v", r.Values[0]) != fmt.Sprintf("%v", vals[i]) {
			t.Errorf("row %d: got %v want %v", i, r.Values[0], vals[i])
		}
		if r.Values[1].GetText() != "2024-01-02 03:04:05" || r.Values[2].GetText() != "not a time" {
			t.Errorf("row %d: time text changed: %v %v", i, r.Values[1], r.Values[2])
		}
	}
	if _, ok := got.Rows[8].Values[0].Kind.(*command.Value_Blob); !ok {
		t.Errorf("empty blob came back as %v", got.Rows[8].Values[0])
	}
	if !got.Rows[9].Values[0].IsNull() {
		t.Errorf("null came back as %v", got.Rows[9].Values[0])
	}
	// Expression without declared type.
	e := mustQuery(t, d, "SELECT 1+1 AS two")
	if e.Columns[0] != "two" || e.Types[0] != "" || e.Rows[0].Values[0].GetInteger() != 2 {
		t.Fatalf("expr: %+v", e)
	}
}

func TestDB_Params(t *testing.T) {
	d := openTest(t)
	mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE t(a, b)")))
	p := func(name string, v *command.Value) *command.Parameter {
		return &command.Parameter{Name: name, Value: v}
	}
	res := mustApply(t, d, 2, execCmd(false,
		&command.Statement{Sql: "INSERT INTO t VALUES(?, ?)", Parameters: []*command.Parameter{p("", command.Integer(1)), p("", command.Text("x"))}},
		&command.Statement{Sql: "INSERT INTO t VALUES(?2, ?1)", Parameters: []*command.Parameter{p("", command.Text("y")), p("", command.Integer(2))}},
		&command.Statement{Sql: "INSERT INTO t VALUES(:a, :b)", Parameters: []*command.Parameter{p("b", command.Text("z")), p("a", command.Integer(3))}},
		&command.Statement{Sql: "INSERT INTO t VALUES(@a, $b)", Parameters: []*command.Parameter{p("@a", command.Integer(4)), p("b", command.Text("w"))}},
		&command.Statement{Sql: "INSERT INTO t VALUES(?, ?)", Parameters: []*command.Parameter{p("", command.Integer(5))}},
		&command.Statement{Sql: "INSERT INTO t VALUES(?, ?)", Parameters: []*command.Parameter{p("", command.Integer(5)), p("", command.Integer(5)), p("", command.Integer(5))}},
		&command.Statement{Sql: "INSERT INTO t VALUES(:a, :b)", Parameters: []*command.Parameter{p("a", command.Integer(5)), p("c", command.Integer(5))}},
	))
	for i := 0; i < 4; i++ {
		if res[i].Error != "" {
			t.Fatalf("stmt %d: %s", i, res[i].Error)
		}
	}
	for i := 4; i < 7; i++ {
		if !strings.Contains(res[i].Error, "parameter") {
			t.Errorf("stmt %d: want parameter error, got %q", i, res[i].Error)
		}
	}
	got := mustQuery(t, d, "SELECT a, b FROM t WHERE a >= ? ORDER BY a", 1)
	want := "1x2y3z4w"
	s := ""
	for _, r := range got.Rows {
		s += fmt.Sprint(r.Values[0].GetInteger()) + r.Values[1].GetText()
	}
	if s != want {
		t.Fatalf("got %q want %q", s, want)
	}
}

func TestDB_TransactionRollback(t *testing.T) {
	d := openTest(t)
	mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE t(id INTEGER PRIMARY KEY)")))
	res := mustApply(t, d, 2, execCmd(true,
		stmt(t, "INSERT INTO t VALUES(1)"), stmt(t, "INSERT INTO t VALUES(1)"), stmt(t, "INSERT INTO t VALUES(3)")))
	if len(res) != 3 || res[0].Error != "" || !strings.Contains(res[1].Error, "UNIQUE") || !strings.Contains(res[2].Error, "not executed") {
		t.Fatalf("results %v", res)
	}
	if n := mustQuery(t, d, "SELECT count(*) FROM t").Rows[0].Values[0].GetInteger(); n != 0 {
		t.Fatalf("rows %d, want 0", n)
	}
	if idx, _ := d.AppliedIndex(context.Background()); idx != 2 {
		t.Fatalf("applied %d", idx)
	}
	// Non-transaction: partial.
	res = mustApply(t, d, 3, execCmd(false,
		stmt(t, "INSERT INTO t VALUES(1)"), stmt(t, "INSERT INTO t VALUES(1)"), stmt(t, "INSERT INTO t VALUES(3) RETURNING id")))
	if res[0].Error != "" || res[1].Error == "" || res[2].Error != "" {
		t.Fatalf("results %v", res)
	}
	if len(res[2].Rows) != 1 || res[2].Rows[0].Values[0].GetInteger() != 3 || res[2].LastInsertId != 3 {
		t.Fatalf("returning %v", res[2])
	}
	if n := mustQuery(t, d, "SELECT count(*) FROM t").Rows[0].Values[0].GetInteger(); n != 2 {
		t.Fatalf("rows %d, want 2", n)
	}
	// A statement that rolls back the whole SQLite transaction only undoes its own entry.
	res2, err := d.ApplyBatch(context.Background(), []Entry{
		{Index: 4, Command: execCmd(false, stmt(t, "INSERT INTO t VALUES(10)")), WantResults: true},
		{Index: 5, Command: execCmd(false, stmt(t, "INSERT INTO t VALUES(11)"), stmt(t, "INSERT OR ROLLBACK INTO t VALUES(1)"), stmt(t, "INSERT INTO t VALUES(12)")), WantResults: true},
		{Index: 6, Command: execCmd(false, stmt(t, "INSERT INTO t VALUES(13)")), WantResults: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res2[1][1].Error == "" || res2[0][0].Error != "" || res2[2][0].Error != "" {
		t.Fatalf("results %v", res2)
	}
	got := mustQuery(t, d, "SELECT group_concat(id) FROM (SELECT id FROM t ORDER BY id)").Rows[0].Values[0].GetText()
	if got != "1,3,10,13" {
		t.Fatalf("rows %s", got)
	}
	if idx, _ := d.AppliedIndex(context.Background()); idx != 6 {
		t.Fatalf("applied %d", idx)
	}
}

func TestDB_IdempotentReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sqlite")
	ctx := context.Background()
	d, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, d, 5, execCmd(false, stmt(t, "CREATE TABLE t(x)")))
	mustApply(t, d, 6, execCmd(false, stmt(t, "INSERT INTO t VALUES(1)")))
	if r := mustApply(t, d, 6, execCmd(false, stmt(t, "INSERT INTO t VALUES(1)"))); r != nil {
		t.Fatalf("replay returned %v", r)
	}
	if _, err := d.Apply(ctx, Entry{Index: 7}); err != nil { // nil command advances the index
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Query(ctx, []*command.Statement{stmt(t, "SELECT 1")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("query after close: %v", err)
	}
	d, err = Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if idx, _ := d.AppliedIndex(ctx); idx != 7 {
		t.Fatalf("applied after reopen %d", idx)
	}
	res, err := d.ApplyBatch(ctx, []Entry{
		{Index: 6, Command: execCmd(false, stmt(t, "INSERT INTO t VALUES(1)")), WantResults: true},
		{Index: 8, Command: execCmd(false, stmt(t, "INSERT INTO t VALUES(2)")), WantResults: true},
	})
	if err != nil || res[0] != nil || res[1][0].Error != "" {
		t.Fatalf("batch %v %v", res, err)
	}
	if s := mustQuery(t, d, "SELECT group_concat(x) FROM t").Rows[0].Values[0].GetText(); s != "1,2" {
		t.Fatalf("rows %s", s)
	}
}

func TestDB_ReadOnly(t *testing.T) {
	d := openTest(t)
	mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE t(x)")))
	ctx := context.Background()
	for _, tc := range []struct {
		sql string
		ro  bool
	}{
		{"SELECT * FROM t", true},
		{"WITH c AS (SELECT 1) SELECT * FROM c", true},
		{"EXPLAIN SELECT * FROM t", true},
		{"PRAGMA table_info(t)", true},
		{"PRAGMA user_version", true},
		{"INSERT INTO t VALUES(1)", false},
		{"UPDATE t SET x=1", false},
		{"DELETE FROM t", false},
		{"CREATE TABLE u(x)", false},
		{"DROP TABLE t", false},
		{"BEGIN", false},
		{"COMMIT", false},
		{"SAVEPOINT a", false},
		{"PRAGMA user_version=3", false},
		{"ATTACH 'x.db' AS x", false},
	} {
		t.Run(tc.sql, func(t *testing.T) {
			ro, err := d.ReadOnly(ctx, []*command.Statement{stmt(t, tc.sql)})
			if err != nil {
				t.Fatal(err)
			}
			if ro != tc.ro {
				t.Fatalf("ReadOnly = %v, want %v", ro, tc.ro)
			}
		})
	}
	if _, err := d.Query(ctx, []*command.Statement{stmt(t, "SELECT 1"), stmt(t, "INSERT INTO t VALUES(1)")}); !errors.Is(err, ErrNotReadOnly) {
		t.Fatalf("Query write: %v", err)
	}
	_, err := d.Query(ctx, []*command.Statement{stmt(t, "SELECT 1"), stmt(t, "SELECT * FROM nope")})
	var se *StatementError
	if !errors.Is(err, ErrSQL) || !errors.As(err, &se) || se.Index != 1 {
		t.Fatalf("Query bad sql: %v", err)
	}
}

func TestDB_CheckWrite(t *testing.T) {
	d := openTest(t)
	mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE t(x)")))
	ctx := context.Background()
	for _, tc := range []struct {
		sql     string
		refused bool
	}{
		{"INSERT INTO t VALUES(1)", false},
		{"CREATE TABLE u(x)", false},
		{"INSERT INTO nope VALUES(1)", false}, // ordinary error: apply reports it
		{"SELEC 1", false},
		{"DROP TABLE t", false},
		{"PRAGMA table_info(t)", false},
		{"ATTACH 'x.db' AS x", true},
		{"DETACH x", true},
		{"VACUUM INTO '/tmp/x.db'", true},
		{"PRAGMA writable_schema=1", true},
		{"PRAGMA foreign_keys=0", true},
		{"SELECT load_extension('x')", true},
		{"BEGIN", true},
		{"COMMIT", true},
		{"ROLLBACK", true},
		{"SAVEPOINT a", true},
		{"RELEASE a", true},
		{"INSERT INTO _rdb_applied VALUES(1, 5)", true},
		{"UPDATE _rdb_members SET peer_addr='x'", true},
		{"DROP TABLE _rdb_members", true},
		{"CREATE TRIGGER tr AFTER INSERT ON _rdb_applied BEGIN SELECT 1; END", true},
		{"DELETE FROM _rdb_restore_chunks", true},
		{"INSERT INTO _rdb_restore_chunks VALUES('a', 0, x'00')", true},
		{"CREATE INDEX ix ON _rdb_restore_chunks(data)", true},
		{"DROP TABLE _rdb_restore_chunks", true},
		{"SELECT count(*) FROM _rdb_restore_chunks", false},
		{"INSERT INTO sqlite_schema VALUES('table','x','x',0,'')", true},
		{"SELECT * FROM sqlite_dbpage", true},
	} {
		t.Run(tc.sql, func(t *testing.T) {
			err := d.CheckWrite(ctx, []*command.Statement{stmt(t, tc.sql)})
			if tc.refused != errors.Is(err, ErrRefused) || (!tc.refused && err != nil) {
				t.Fatalf("CheckWrite = %v, refused want %v", err, tc.refused)
			}
		})
	}
	err := d.CheckWrite(ctx, []*command.Statement{stmt(t, "BEGIN")})
	if !strings.Contains(err.Error(), "transaction flag") {
		t.Fatalf("message %q", err)
	}
	// Defense in depth: refused statements at apply time become Result.Error.
	res := mustApply(t, d, 2, execCmd(false,
		stmt(t, "ATTACH 'x.db' AS x"), stmt(t, "BEGIN"), stmt(t, "PRAGMA writable_schema=1"),
		stmt(t, "DELETE FROM _rdb_applied"), stmt(t, "SELECT load_extension('x')"), stmt(t, "INSERT INTO t VALUES(1)")))
	for i := 0; i < 5; i++ {
		if !strings.Contains(res[i].Error, "refused") {
			t.Errorf("stmt %d: %q", i, res[i].Error)
		}
	}
	if res[5].Error != "" {
		t.Fatal(res[5].Error)
	}
	if idx, _ := d.AppliedIndex(ctx); idx != 2 {
		t.Fatalf("applied %d", idx)
	}
}

func TestDB_Determinism(t *testing.T) {
	ctx := context.Background()
	a, b := openTest(t), openTest(t)
	entries := []Entry{
		{Index: 1, Command: execCmd(false,
			stmt(t, "CREATE TABLE t(id INTEGER PRIMARY KEY, c TEXT DEFAULT CURRENT_TIMESTAMP, d TEXT DEFAULT (datetime('now')), r INTEGER DEFAULT (random()), note TEXT)"),
			stmt(t, "CREATE TABLE log(id INTEGER PRIMARY KEY, at TEXT, rb BLOB)"),
			stmt(t, "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log(at, rb) VALUES(datetime('now'), randomblob(8)); END"),
		)},
		{Index: 2, Command: execCmd(false,
			stmt(t, "INSERT INTO t(note) VALUES('a')"),
			stmt(t, "INSERT INTO t(note) VALUES(CURRENT_DATE || ' ' || CURRENT_TIME || ' ' || unixepoch() || ' ' || unixepoch('now') || ' ' || julianday('now') || ' ' || strftime('%Y-%m-%d %H:%M:%f', 'now') || ' ' || date('now') || ' ' || time('now'))"),
			stmt(t, "INSERT INTO t(note) VALUES(random())"),
		)},
	}
	for _, d := range []*DB{a, b} {
		res, err := d.ApplyBatch(ctx, entries)
		if err != nil {
			t.Fatal(err)
		}
		for _, rr := range res {
			for _, r := range rr {
				if r != nil && r.Error != "" {
					t.Fatal(r.Error)
				}
			}
		}
	}
	ha, err := a.Hash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := b.Hash(ctx)
	if ha != hb {
		t.Fatalf("hashes differ: %s %s", ha, hb)
	}
	rows := mustQuery(t, a, "SELECT c, d, r, note FROM t ORDER BY id").Rows
	if got := rows[0].Values[0].GetText(); got != "2024-03-05 06:07:08" {
		t.Errorf("CURRENT_TIMESTAMP default = %q", got)
	}
	if got := rows[0].Values[1].GetText(); got != "2024-03-05 06:07:08" {
		t.Errorf("datetime('now') default = %q", got)
	}
	if rows[0].Values[2].GetInteger() == rows[1].Values[2].GetInteger() {
		t.Errorf("random() repeats within an entry")
	}
	want := fmt.Sprintf("2024-03-05 06:07:08 %d %d 2460374.7549551274 2024-03-05 06:07:08.123 2024-03-05 06:07:08",
		testTime.Unix(), testTime.Unix())
	if got := rows[1].Values[3].GetText(); got != want {
		t.Errorf("now forms:\n got %q\nwant %q", got, want)
	}
	at := mustQuery(t, a, "SELECT DISTINCT at FROM log").Rows
	if len(at) != 1 || at[0].Values[0].GetText() != "2024-03-05 06:07:08" {
		t.Errorf("trigger time %v", at)
	}
	// Reads use the real clock.
	now := mustQuery(t, a, "SELECT unixepoch()").Rows[0].Values[0].GetInteger()
	if d := time.Now().Unix() - now; d < -5 || d > 5 {
		t.Errorf("read clock off by %ds", d)
	}
	// A different seed gives different data.
	c := openTest(t)
	e2 := []Entry{entries[0], {Index: 2, Command: execCmd(false, entries[1].Command.Statements...)}}
	e2[1].Command.RandomSeed = 7
	if _, err := c.ApplyBatch(ctx, e2); err != nil {
		t.Fatal(err)
	}
	if hc, _ := c.Hash(ctx); hc == ha {
		t.Fatal("hash equal with different data")
	}
}

func TestDB_OperationBudget(t *testing.T) {
	d, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "db"), MaxApplySteps: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res := mustApply(t, d, 1, execCmd(false,
		stmt(t, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"),
		stmt(t, "SELECT 1")))
	if !strings.Contains(res[0].Error, "budget") || res[1].Error != "" {
		t.Fatalf("results %v", res)
	}
}

func TestDB_QueryCancel(t *testing.T) {
	d := openTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := d.Query(ctx, []*command.Statement{stmt(t, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	// The connection is usable afterwards.
	for range 8 {
		mustQuery(t, d, "SELECT 1")
	}
}

func TestDB_Members(t *testing.T) {
	d := openTest(t)
	ctx := context.Background()
	set := func(idx uint64, m *command.Member) {
		if _, err := d.Apply(ctx, Entry{Index: idx, Command: &command.Command{Type: command.CommandType_COMMAND_TYPE_SET_MEMBER, Member: m}}); err != nil {
			t.Fatal(err)
		}
	}
	set(1, &command.Member{Id: 2, PeerAddr: "p2", ClientAddr: "c2"})
	set(2, &command.Member{Id: 1, PeerAddr: "p1", ClientAddr: "c1"})
	set(3, &command.Member{Id: 2, PeerAddr: "p2b", ClientAddr: "c2b"})
	ms, err := d.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].GetPeerAddr() != "p1" || ms[1].GetClientAddr() != "c2b" {
		t.Fatalf("members %v", ms)
	}
}

func TestDB_HashDiffers(t *testing.T) {
	ctx := context.Background()
	a, b := openTest(t), openTest(t)
	mustApply(t, a, 1, execCmd(false, stmt(t, "CREATE TABLE t(x)"), stmt(t, "INSERT INTO t VALUES(1)")))
	mustApply(t, b, 1, execCmd(false, stmt(t, "CREATE TABLE t(x)"), stmt(t, "INSERT INTO t VALUES('1')")))
	ha, _ := a.Hash(ctx)
	hb, _ := b.Hash(ctx)
	if ha == hb {
		t.Fatal("hash ignores storage class")
	}
	mustApply(t, b, 2, execCmd(false, stmt(t, "UPDATE t SET x=1")))
	hb, _ = b.Hash(ctx)
	if ha != hb {
		t.Fatal("hash differs with equal data")
	}
}

func BenchmarkApplyBatch(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			d := openTest(b)
			mustApply(b, d, 1, execCmd(false, stmt(b, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")))
			idx := uint64(1)
			entries := make([]Entry, n)
			b.ResetTimer()
			for i := 0; i < b.N; i += n {
				for j := range entries {
					idx++
					entries[j] = Entry{Index: idx, WantResults: true, Command: execCmd(false, &command.Statement{
						Sql: "INSERT INTO t(v) VALUES(?)", Parameters: []*command.Parameter{{Value: command.Text("value")}}})}
				}
				if _, err := d.ApplyBatch(context.Background(), entries); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestDB_Concurrent(t *testing.T) {
	d := openTest(t)
	ctx := context.Background()
	mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE t(x)")))
	done := make(chan struct{})
	errc := make(chan error, 8)
	for g := 0; g < 4; g++ {
		go func() {
			for {
				select {
				case <-done:
					errc <- nil
					return
				default:
				}
				if _, err := d.Query(ctx, []*command.Statement{stmt(t, "SELECT count(*) FROM t")}); err != nil {
					errc <- err
					return
				}
				if _, err := d.Hash(ctx); err != nil {
					errc <- err
					return
				}
				if _, err := d.ReadOnly(ctx, []*command.Statement{stmt(t, "SELECT 1")}); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for i := uint64(2); i < 200; i++ {
		mustApply(t, d, i, execCmd(false, stmt(t, "INSERT INTO t VALUES(?)", i)))
	}
	close(done)
	for g := 0; g < 4; g++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}
