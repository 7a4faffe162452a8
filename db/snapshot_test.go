package db

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"rdb/command"
)

func mustHash(t testing.TB, d *DB) string {
	t.Helper()
	h, err := d.Hash(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func applied(t testing.TB, d *DB) uint64 {
	t.Helper()
	idx, err := d.AppliedIndex(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func mustOK(t testing.TB, res []*command.Result) {
	t.Helper()
	for i, r := range res {
		if r.GetError() != "" {
			t.Fatalf("result %d: %s", i, r.GetError())
		}
	}
}

// restoreEntries cuts data into chunks and returns the RESTORE_CHUNK entries
// followed by a RESTORE_COMMIT, from index first on.
func restoreEntries(id string, data []byte, format command.RestoreFormat, chunk int, first uint64) []Entry {
	var es []Entry
	idx := first
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		es = append(es, Entry{Index: idx, WantResults: true, Command: &command.Command{
			Type:         command.CommandType_COMMAND_TYPE_RESTORE_CHUNK,
			RestoreChunk: &command.RestoreChunk{RestoreId: id, Offset: int64(off), Data: data[off:end]},
		}})
		idx++
	}
	sum := sha256.Sum256(data)
	es = append(es, Entry{Index: idx, WantResults: true, Command: &command.Command{
		Type: command.CommandType_COMMAND_TYPE_RESTORE_COMMIT, TimeUnixNanos: testTime.UnixNano(), RandomSeed: 7,
		RestoreCommit: &command.RestoreCommit{RestoreId: id, Format: format, Size: int64(len(data)), Sha256: sum[:]},
	}})
	return es
}

// stagedRows counts the rows of the restore staging table.
func stagedRows(t testing.TB, d *DB) int64 {
	t.Helper()
	return mustQuery(t, d, "SELECT count(*) FROM _rdb_restore_chunks").Rows[0].Values[0].GetInteger()
}

func applyAll(t testing.TB, d *DB, es []Entry) [][]*command.Result {
	t.Helper()
	out, err := d.ApplyBatch(context.Background(), es)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func snapshotBytes(t testing.TB, d *DB) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "snap.db")
	if _, err := d.Snapshot(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSnapshot_ConsistentWhileWriting(t *testing.T) {
	d := openTest(t)
	mustOK(t, mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"))))
	const n = 400
	var wg sync.WaitGroup
	wg.Add(1)
	errc := make(chan error, 1)
	go func() {
		defer wg.Done()
		for i := 2; i <= n; i++ {
			// Several rows per entry: a torn copy would show a count that is
			// not 3*(index-1).
			_, err := d.Apply(context.Background(), Entry{Index: uint64(i), Command: execCmd(true,
				stmt(t, "INSERT INTO t(v) VALUES(?)", strings.Repeat("x", 200)),
				stmt(t, "INSERT INTO t(v) VALUES(?)", "b"),
				stmt(t, "INSERT INTO t(v) VALUES(?)", "c"))})
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	dir := t.TempDir()
	var paths []string
	for i := 0; i < 4; i++ {
		p := filepath.Join(dir, fmt.Sprintf("copy%d.db", i))
		idx, err := d.Snapshot(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		vidx, err := VerifyFile(context.Background(), p)
		if err != nil || vidx != idx {
			t.Fatalf("VerifyFile = %d, %v; Snapshot said %d", vidx, err, idx)
		}
		rdb, err := openReadOnly(p)
		if err != nil {
			t.Fatal(err)
		}
		var count int64
		var mode string
		if err := rdb.QueryRow("SELECT count(*) FROM t").Scan(&count); err != nil {
			t.Fatal(err)
		}
		if err := rdb.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		rdb.Close()
		if count != 3*int64(idx-1) {
			t.Fatalf("copy at index %d has %d rows, want %d", idx, count, 3*(idx-1))
		}
		if mode != "delete" {
			t.Fatalf("journal_mode of copy = %q", mode)
		}
		for _, suffix := range []string{".tmp", "-wal", "-shm", "-journal"} {
			if _, err := os.Stat(p + suffix); err == nil {
				t.Fatalf("%s left behind", p+suffix)
			}
		}
		paths = append(paths, p)
	}
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	if _, err := d.Snapshot(context.Background(), paths[0]); err == nil {
		t.Fatal("Snapshot over an existing file succeeded")
	}
	if bin, err := exec.LookPath("sqlite3"); err == nil {
		out, err := exec.Command(bin, paths[len(paths)-1], "PRAGMA integrity_check").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "ok" {
			t.Fatalf("sqlite3 integrity_check: %v: %s", err, out)
		}
	} else {
		t.Log("sqlite3 not installed: CLI check skipped")
	}
}

func TestVerifyFile(t *testing.T) {
	ctx := context.Background()
	d := openTest(t)
	mustOK(t, mustApply(t, d, 5, execCmd(false, stmt(t, "CREATE TABLE t(x)"),
		stmt(t, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < 50) INSERT INTO t SELECT randomblob(3000) FROM c"))))
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	if _, err := d.Snapshot(ctx, good); err != nil {
		t.Fatal(err)
	}
	if idx, err := VerifyFile(ctx, good); err != nil || idx != 5 {
		t.Fatalf("good: %d, %v", idx, err)
	}
	data, _ := os.ReadFile(good)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrNotSQLite},
		{"junk", bytes.Repeat([]byte("not a database "), 1000), ErrNotSQLite},
		{"short", data[:50], ErrNotSQLite},
		{"truncated-odd", data[:len(data)/2+100], ErrCorruptFile},
		{"truncated-pages", data[:len(data)/2/4096*4096], ErrCorruptFile},
		{"scribbled", func() []byte {
			b := bytes.Clone(data)
			for i := 2 * 4096; i < 3*4096; i++ {
				b[i] = 0x5a
			}
			return b
		}(), ErrCorruptFile},
	} {
		_, err := VerifyFile(ctx, write(tc.name, tc.data))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
	// A plain SQLite database without rdb's tables.
	plain := filepath.Join(dir, "plain.db")
	pdb, err := sql.Open("sqlite", plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pdb.Exec("CREATE TABLE u(a); INSERT INTO u VALUES(1)"); err != nil {
		t.Fatal(err)
	}
	pdb.Close()
	if idx, err := VerifyFile(ctx, plain); err != nil || idx != 0 {
		t.Fatalf("plain: %d, %v", idx, err)
	}
	if _, err := VerifyFile(ctx, filepath.Join(dir, "missing.db")); err == nil {
		t.Fatal("missing file verified")
	}
}

func TestInstall(t *testing.T) {
	ctx := context.Background()
	src := openTest(t)
	mustOK(t, mustApply(t, src, 10, execCmd(false, stmt(t, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)"),
		stmt(t, "INSERT INTO t(v) VALUES('from src'), (2), (x'00ff')"))))
	dir := t.TempDir()
	snap := filepath.Join(dir, "snap.db")
	if _, err := src.Snapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	dst := openTest(t)
	mustOK(t, mustApply(t, dst, 3, execCmd(false, stmt(t, "CREATE TABLE other(a)"), stmt(t, "INSERT INTO other VALUES(1)"))))
	old := mustHash(t, dst)

	// A junk file is refused and the old database keeps working.
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte("junk junk junk"), 0o644)
	if err := dst.Install(ctx, junk); !errors.Is(err, ErrNotSQLite) {
		t.Fatalf("install junk: %v", err)
	}
	if mustHash(t, dst) != old || applied(t, dst) != 3 {
		t.Fatal("failed install changed the database")
	}
	mustOK(t, mustApply(t, dst, 4, execCmd(false, stmt(t, "INSERT INTO other VALUES(2)"))))

	// Readers in flight while installing.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := dst.Hash(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	if err := dst.Install(ctx, snap); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if _, err := os.Stat(snap); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("installed file still at its old path")
	}
	if applied(t, dst) != 10 || mustHash(t, dst) != mustHash(t, src) {
		t.Fatal("installed database differs from the source")
	}
	// Keeps working: apply (with the deterministic functions) and query.
	for _, d := range []*DB{src, dst} {
		mustOK(t, mustApply(t, d, 11, execCmd(false, stmt(t, "INSERT INTO t(v) VALUES(random()), (datetime('now'))"))))
	}
	if mustHash(t, dst) != mustHash(t, src) {
		t.Fatal("replicas diverge after install")
	}
	if r := mustQuery(t, dst, "SELECT count(*) FROM t"); r.Rows[0].Values[0].GetInteger() != 5 {
		t.Fatalf("count = %v", r.Rows[0])
	}
	// Writes to internal tables are still refused (authorizer reinstalled).
	if res := mustApply(t, dst, 12, execCmd(false, stmt(t, "DELETE FROM _rdb_members"))); res[0].Error == "" {
		t.Fatal("authorizer missing after install")
	}

	// A plain SQLite file gets the internal tables.
	plain := filepath.Join(dir, "plain.db")
	pdb, _ := sql.Open("sqlite", plain)
	if _, err := pdb.Exec("CREATE TABLE u(a); INSERT INTO u VALUES(1)"); err != nil {
		t.Fatal(err)
	}
	pdb.Close()
	if err := dst.Install(ctx, plain); err != nil {
		t.Fatal(err)
	}
	if applied(t, dst) != 0 {
		t.Fatal("applied index of a plain file should be 0")
	}
	mustOK(t, mustApply(t, dst, 1, execCmd(false, stmt(t, "INSERT INTO u VALUES(2)"))))
	if r := mustQuery(t, dst, "SELECT count(*) FROM u"); r.Rows[0].Values[0].GetInteger() != 2 {
		t.Fatal("plain install not writable")
	}
}

// awkwardDB fills d with values that are hard to dump exactly.
func awkwardDB(t testing.TB, d *DB, idx uint64) {
	t.Helper()
	mustOK(t, mustApply(t, d, idx, execCmd(false,
		stmt(t, `CREATE TABLE "we""ird"(id INTEGER PRIMARY KEY, v ANY, r REAL, t TEXT, "select" BLOB)`),
		stmt(t, `CREATE TABLE plain(a, b)`),
		stmt(t, `CREATE TABLE wr(k TEXT PRIMARY KEY, v) WITHOUT ROWID`),
		stmt(t, `CREATE TABLE gen(a INTEGER, b AS (a*2), c AS (a||'x') STORED)`),
		stmt(t, `CREATE TABLE seq(id INTEGER PRIMARY KEY AUTOINCREMENT, v)`),
		stmt(t, `CREATE INDEX plain_b ON plain(b)`),
		stmt(t, `CREATE VIEW v AS SELECT id, v FROM "we""ird" WHERE id > 1`),
		stmt(t, `CREATE TRIGGER trg AFTER INSERT ON plain BEGIN INSERT INTO seq(v) VALUES(new.a); END`),
	)))
	vals := []*command.Value{
		command.Integer(math.MinInt64), command.Integer(math.MaxInt64), command.Integer(0), command.Integer(-1),
		command.Real(0.1), command.Real(1e308), command.Real(-1e308), command.Real(5e-324), command.Real(2.2250738585072014e-308),
		command.Real(1.0 / 3), command.Real(math.Pi), command.Real(3), command.Real(-2.5e-7), command.Real(1e21),
		command.Real(math.Inf(1)), command.Real(math.Inf(-1)), command.Real(math.Copysign(0, -1)), command.Real(123456789012345678),
		command.Text("héllo ✓ 世界"), command.Text("it's \"quoted\"; -- not a comment\n/* nor this */ ;"), command.Text(""),
		command.Text("nul\x00inside"), command.Text("line1\r\nline2;\n"), command.Text("123"), command.Text("1.5"),
		command.Blob([]byte{}), command.Blob([]byte{0, 1, 2, 0xff, '\''}), command.Null(),
	}
	var stmts []*command.Statement
	for i, v := range vals {
		stmts = append(stmts, &command.Statement{Sql: `INSERT INTO "we""ird"(id, v, r, t, "select") VALUES(?, ?, ?, ?, ?)`,
			Parameters: []*command.Parameter{{Value: command.Integer(int64(i + 1))}, {Value: v}, {Value: v}, {Value: v}, {Value: v}}})
	}
	stmts = append(stmts,
		stmt(t, "INSERT INTO plain VALUES(1, 'a'), (2, 'b'), (3, 'c')"),
		stmt(t, "DELETE FROM plain WHERE a = 2"), // a rowid gap
		stmt(t, "INSERT INTO wr VALUES('z', 1), ('a', 2.5)"),
		stmt(t, "INSERT INTO gen(a) VALUES(1), (NULL), (7)"),
		stmt(t, "DELETE FROM seq WHERE id = 3"),
		stmt(t, "ANALYZE"),
	)
	mustOK(t, mustApply(t, d, idx+1, execCmd(false, stmts...)))
}

func TestDump_RestoreSQL(t *testing.T) {
	ctx := context.Background()
	src := openTest(t)
	awkwardDB(t, src, 1)
	var buf bytes.Buffer
	if err := src.Dump(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	dump := buf.Bytes()
	if bytes.Contains(dump, []byte("_rdb_")) {
		t.Fatalf("dump contains internal tables:\n%s", dump)
	}
	t.Logf("dump:\n%s", dump)

	p := filepath.Join(t.TempDir(), "dump.sql")
	os.WriteFile(p, dump, 0o644)
	if err := ValidateRestoreFile(ctx, p, command.RestoreFormat_RESTORE_FORMAT_SQL); err != nil {
		t.Fatal(err)
	}

	// Two replicas with different previous contents apply the same restore.
	var hashes []string
	for i := 0; i < 2; i++ {
		dst := openTest(t)
		mustOK(t, mustApply(t, dst, 1, execCmd(false, stmt(t, "CREATE TABLE old(x)"), stmt(t, fmt.Sprintf("INSERT INTO old VALUES(%d)", i)))))
		es := restoreEntries("dump-1", dump, command.RestoreFormat_RESTORE_FORMAT_SQL, 97+i*50, 2)
		res := applyAll(t, dst, es)
		for _, r := range res {
			mustOK(t, r)
		}
		last := es[len(es)-1].Index
		if applied(t, dst) != last {
			t.Fatalf("applied = %d, want %d", applied(t, dst), last)
		}
		if n := stagedRows(t, dst); n != 0 {
			t.Fatalf("%d staged chunk rows left after commit", n)
		}
		if got, want := mustHash(t, dst), mustHash(t, src); got != want {
			var b2 bytes.Buffer
			dst.Dump(ctx, &b2)
			t.Fatalf("restored hash differs:\n%s", b2.String())
		}
		hashes = append(hashes, mustHash(t, dst))
		// The trigger and AUTOINCREMENT state came along.
		for _, d := range []*DB{src, dst} {
			mustOK(t, mustApply(t, d, last+1, execCmd(false, stmt(t, "INSERT INTO plain VALUES(9, 'z')"))))
		}
		if mustHash(t, dst) != mustHash(t, src) {
			t.Fatal("diverged after restore")
		}
		if r := mustQuery(t, dst, "SELECT max(id) FROM seq"); r.Rows[0].Values[0].GetInteger() != 4 {
			t.Fatalf("autoincrement state lost: %v", r.Rows[0])
		}
		// Reset src for the next replica.
		src.Close()
		src = openTest(t)
		awkwardDB(t, src, 1)
	}
	if hashes[0] != hashes[1] {
		t.Fatal("replicas differ")
	}

	// The sqlite3 shell reads the dump too.
	if bin, err := exec.LookPath("sqlite3"); err == nil {
		cmd := exec.Command(bin, filepath.Join(t.TempDir(), "cli.db"))
		cmd.Stdin = bytes.NewReader(dump)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
			t.Fatalf("sqlite3 < dump: %v: %s", err, out)
		}
	}
}

func TestRestore_SQLiteFile(t *testing.T) {
	src := openTest(t)
	awkwardDB(t, src, 1)
	member := &command.Command{Type: command.CommandType_COMMAND_TYPE_SET_MEMBER,
		Member: &command.Member{Id: 1, PeerAddr: "p1", ClientAddr: "c1"}}
	mustApply(t, src, 3, member)
	file := snapshotBytes(t, src)

	var hashes []string
	for i := 0; i < 2; i++ {
		dst := openTest(t)
		mustApply(t, dst, 1, member)
		mustOK(t, mustApply(t, dst, 2, execCmd(false, stmt(t, "CREATE TABLE old(x)"))))
		es := restoreEntries("file-1", file, command.RestoreFormat_RESTORE_FORMAT_SQLITE, 4096*(i+3), 100)
		// Apply in several batches.
		applyAll(t, dst, es[:2])
		for _, r := range applyAll(t, dst, es[2:]) {
			mustOK(t, r)
		}
		if got := applied(t, dst); got != es[len(es)-1].Index {
			t.Fatalf("applied %d", got)
		}
		if mustHash(t, dst) != mustHash(t, src) {
			t.Fatal("restored file differs")
		}
		hashes = append(hashes, mustHash(t, dst))
		ms, err := dst.Members(context.Background())
		if err != nil || len(ms) != 1 || ms[0].GetPeerAddr() != "p1" {
			t.Fatalf("members %v %v", ms, err)
		}
	}
	if hashes[0] != hashes[1] {
		t.Fatal("replicas differ")
	}
}

func TestRestore_Failures(t *testing.T) {
	ctx := context.Background()
	d := openTest(t)
	mustOK(t, mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE keep(x)"), stmt(t, "INSERT INTO keep VALUES(1)"))))
	before := mustHash(t, d)
	idx := uint64(2)
	try := func(name string, es []Entry, want string) {
		t.Helper()
		for i := range es {
			es[i].Index = idx
			idx++
		}
		res := applyAll(t, d, es)
		got := res[len(res)-1][0].GetError()
		if !strings.Contains(got, want) {
			t.Fatalf("%s: error %q, want %q", name, got, want)
		}
		t.Logf("%s: %s", name, got)
		if applied(t, d) != idx-1 {
			t.Fatalf("%s: applied %d, want %d", name, applied(t, d), idx-1)
		}
		if mustHash(t, d) != before {
			t.Fatalf("%s: database changed", name)
		}
		matches, _ := filepath.Glob(filepath.Join(filepath.Dir(d.cfg.Path), "restore-*"))
		if len(matches) != 0 {
			t.Fatalf("%s: left %v", name, matches)
		}
		if n := stagedRows(t, d); n != 0 {
			t.Fatalf("%s: %d staged chunk rows left", name, n)
		}
		mustOK(t, mustApply(t, d, idx, execCmd(false, stmt(t, "SELECT 1"))))
		idx++
	}
	good := snapshotBytes(t, d)
	es := restoreEntries("bad-sum", good, command.RestoreFormat_RESTORE_FORMAT_SQLITE, 8192, 0)
	es[len(es)-1].Command.RestoreCommit.Sha256[0] ^= 1
	try("checksum", es, "restore: checksum mismatch")

	es = restoreEntries("bad-size", good, command.RestoreFormat_RESTORE_FORMAT_SQLITE, 8192, 0)
	es[len(es)-1].Command.RestoreCommit.Size++
	try("size", es, "restore: size mismatch")

	try("junk", restoreEntries("junk", bytes.Repeat([]byte("junk"), 5000), command.RestoreFormat_RESTORE_FORMAT_SQLITE, 4096, 0),
		"restore: not a SQLite database")

	try("truncated", restoreEntries("trunc", good[:len(good)-4096], command.RestoreFormat_RESTORE_FORMAT_SQLITE, 4096, 0),
		"restore: corrupt SQLite database")

	try("sql error", restoreEntries("sql", []byte("CREATE TABLE a(x);\nINSERT INTO nope VALUES(1);\n"), command.RestoreFormat_RESTORE_FORMAT_SQL, 10, 0),
		"restore: statement 2: no such table: nope")

	try("attach", restoreEntries("att", []byte("ATTACH 'x.db' AS x;"), command.RestoreFormat_RESTORE_FORMAT_SQL, 10, 0),
		"refused: ATTACH")

	try("vacuum into", restoreEntries("vac", []byte("CREATE TABLE a(x); VACUUM INTO 'y.db';"), command.RestoreFormat_RESTORE_FORMAT_SQL, 10, 0),
		"VACUUM INTO")

	try("open tx", restoreEntries("tx", []byte("BEGIN; CREATE TABLE a(x);"), command.RestoreFormat_RESTORE_FORMAT_SQL, 10, 0),
		"transaction open")

	try("empty", restoreEntries("empty", nil, command.RestoreFormat_RESTORE_FORMAT_SQLITE, 10, 0),
		"restore: no data staged")

	// Chunks must cover the data contiguously from offset 0.
	es = restoreEntries("gap", good, command.RestoreFormat_RESTORE_FORMAT_SQLITE, 4096, 0)
	es = append(es[:1:1], es[2:]...)
	try("gap", es, "restore: data missing at offset 4096")

	es = restoreEntries("overlap", good, command.RestoreFormat_RESTORE_FORMAT_SQLITE, 4096, 0)
	es = append([]Entry{{WantResults: true, Command: &command.Command{Type: command.CommandType_COMMAND_TYPE_RESTORE_CHUNK,
		RestoreChunk: &command.RestoreChunk{RestoreId: "overlap", Offset: 100, Data: good[100:200]}}}}, es...)
	try("overlap", es, "restore: staged chunks overlap at offset 100")

	try("bad id", restoreEntries("../x", []byte("x"), command.RestoreFormat_RESTORE_FORMAT_SQL, 10, 0),
		"invalid restore_id")

	try("format", restoreEntries("fmt", []byte("x"), command.RestoreFormat_RESTORE_FORMAT_UNSPECIFIED, 10, 0),
		"unknown format")

	// Abort removes the staged data; a commit after it finds none.
	es = restoreEntries("ab", good, command.RestoreFormat_RESTORE_FORMAT_SQLITE, 8192, 0)
	abort := Entry{WantResults: true, Command: &command.Command{Type: command.CommandType_COMMAND_TYPE_RESTORE_ABORT,
		RestoreCommit: &command.RestoreCommit{RestoreId: "ab"}}}
	es = append(es[:len(es)-1:len(es)-1], abort, es[len(es)-1])
	try("abort", es, "restore: no data staged")

	// ValidateRestoreFile gives clear errors before proposing.
	dir := t.TempDir()
	for _, tc := range []struct {
		data   string
		format command.RestoreFormat
		want   []error
		msg    string
	}{
		{"CREATE TABLE a(x); INSERT INTO nope VALUES(1);", command.RestoreFormat_RESTORE_FORMAT_SQL, []error{ErrInvalidRestore}, "no such table: nope"},
		{"ATTACH 'x' AS y;", command.RestoreFormat_RESTORE_FORMAT_SQL, []error{ErrInvalidRestore, ErrRefused}, "ATTACH"},
		{"junk", command.RestoreFormat_RESTORE_FORMAT_SQLITE, []error{ErrInvalidRestore, ErrNotSQLite}, "not a SQLite"},
		{"x", command.RestoreFormat_RESTORE_FORMAT_UNSPECIFIED, []error{ErrInvalidRestore}, "format"},
	} {
		p := filepath.Join(dir, "v")
		os.WriteFile(p, []byte(tc.data), 0o644)
		err := ValidateRestoreFile(ctx, p, tc.format)
		for _, w := range tc.want {
			if !errors.Is(err, w) {
				t.Errorf("validate %q: %v, want %v", tc.data, err, w)
			}
		}
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("validate %q: %v, want message %q", tc.data, err, tc.msg)
		}
	}
}

func TestRestore_ReplayAfterReopen(t *testing.T) {
	ctx := context.Background()
	src := openTest(t)
	awkwardDB(t, src, 1)
	file := snapshotBytes(t, src)
	path := filepath.Join(t.TempDir(), "db.sqlite")
	d, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	es := restoreEntries("rp", file, command.RestoreFormat_RESTORE_FORMAT_SQLITE, 4096, 1)
	half := len(es) / 2
	applyAll(t, d, es[:half])
	d.Close()
	d, err = Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if applied(t, d) != es[half-1].Index {
		t.Fatal("applied index lost")
	}
	// The log replays everything: applied entries are skipped, the staged
	// chunks survived the restart.
	res := applyAll(t, d, es)
	for _, r := range res[half:] {
		mustOK(t, r)
	}
	if mustHash(t, d) != mustHash(t, src) {
		t.Fatal("restore after reopen differs")
	}
	// Replaying the whole log again changes nothing.
	res = applyAll(t, d, es)
	for _, r := range res {
		if r != nil {
			t.Fatal("replayed entries were applied again")
		}
	}
}

func TestRestore_CommitMidBatch(t *testing.T) {
	src := openTest(t)
	mustOK(t, mustApply(t, src, 1, execCmd(false, stmt(t, "CREATE TABLE n(x)"))))
	file := snapshotBytes(t, src)

	d := openTest(t)
	mustOK(t, mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE before(x)"))))
	es := []Entry{{Index: 2, WantResults: true, Command: execCmd(false, stmt(t, "INSERT INTO before VALUES(1)"))}}
	es = append(es, restoreEntries("mid", file, command.RestoreFormat_RESTORE_FORMAT_SQLITE, 1<<20, 3)...)
	next := es[len(es)-1].Index + 1
	es = append(es, Entry{Index: next, WantResults: true, Command: execCmd(false, stmt(t, "INSERT INTO n VALUES(42)"))})
	res := applyAll(t, d, es)
	for _, r := range res {
		mustOK(t, r)
	}
	if applied(t, d) != next {
		t.Fatalf("applied %d", applied(t, d))
	}
	if r := mustQuery(t, d, "SELECT x FROM n"); len(r.Rows) != 1 || r.Rows[0].Values[0].GetInteger() != 42 {
		t.Fatalf("rows after restore: %v", r.Rows)
	}
	if _, err := d.Query(context.Background(), []*command.Statement{stmt(t, "SELECT * FROM before")}); err == nil {
		t.Fatal("old table still there")
	}
}

func TestSnapshot_Cancelled(t *testing.T) {
	d := openTest(t)
	mustOK(t, mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE t(x)"))))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := filepath.Join(t.TempDir(), "c.db")
	if _, err := d.Snapshot(ctx, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("Snapshot with a cancelled context: %v", err)
	}
	for _, q := range []string{p, p + ".tmp"} {
		if _, err := os.Stat(q); err == nil {
			t.Fatalf("%s left behind", q)
		}
	}
	good := filepath.Join(t.TempDir(), "g.db")
	if _, err := d.Snapshot(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	if err := ValidateRestoreFile(context.Background(), good, command.RestoreFormat_RESTORE_FORMAT_SQLITE); err != nil {
		t.Fatal(err)
	}
}

// A follower that installs a snapshot taken between a restore's chunks and
// its commit has the staged chunks (they are in the database): the rest of
// the restore gives the same database on both.
func TestRestore_SnapshotMidRestore(t *testing.T) {
	ctx := context.Background()
	member := &command.Command{Type: command.CommandType_COMMAND_TYPE_SET_MEMBER,
		Member: &command.Member{Id: 1, PeerAddr: "p1", ClientAddr: "c1"}}
	src := openTest(t)
	awkwardDB(t, src, 1)
	mustApply(t, src, 3, member)
	var dump bytes.Buffer
	if err := src.Dump(ctx, &dump); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		format command.RestoreFormat
	}{
		{"sqlite", snapshotBytes(t, src), command.RestoreFormat_RESTORE_FORMAT_SQLITE},
		{"sql", dump.Bytes(), command.RestoreFormat_RESTORE_FORMAT_SQL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leader := openTest(t)
			mustApply(t, leader, 1, member)
			mustOK(t, mustApply(t, leader, 2, execCmd(false, stmt(t, "CREATE TABLE old(x)"), stmt(t, "INSERT INTO old VALUES(1)"))))
			before := mustHash(t, leader)
			es := restoreEntries("mid-"+tc.name, tc.data, tc.format, 1000, 3)
			k := (len(es) - 1) / 2
			if k < 2 {
				t.Fatalf("only %d chunks", len(es)-1)
			}
			for _, r := range applyAll(t, leader, es[:k]) {
				mustOK(t, r)
			}
			if n := stagedRows(t, leader); n != int64(k) {
				t.Fatalf("staged rows %d, want %d", n, k)
			}
			// Staged chunks are replicated state but not part of Hash or Dump.
			if mustHash(t, leader) != before {
				t.Fatal("staging chunks changed the hash")
			}
			var mid bytes.Buffer
			if err := leader.Dump(ctx, &mid); err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(mid.Bytes(), []byte("_rdb_")) {
				t.Fatal("dump contains the staging table")
			}

			snap := filepath.Join(t.TempDir(), "mid.db")
			idx, err := leader.Snapshot(ctx, snap)
			if err != nil {
				t.Fatal(err)
			}
			if idx != es[k-1].Index {
				t.Fatalf("snapshot index %d, want %d", idx, es[k-1].Index)
			}
			midFile, err := os.ReadFile(snap)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := VerifyFile(ctx, snap); err != nil {
				t.Fatal(err)
			}
			follower := openTest(t)
			mustOK(t, mustApply(t, follower, 1, execCmd(false, stmt(t, "CREATE TABLE stale(x)"))))
			if err := follower.Install(ctx, snap); err != nil {
				t.Fatal(err)
			}
			if applied(t, follower) != idx || stagedRows(t, follower) != int64(k) || mustHash(t, follower) != before {
				t.Fatal("installed snapshot differs from the leader")
			}

			// The rest of the log, on both; the follower also replays the
			// entries the snapshot covers (skipped).
			for _, r := range applyAll(t, leader, es[k:]) {
				mustOK(t, r)
			}
			res := applyAll(t, follower, es)
			for i, r := range res {
				if i < k {
					if r != nil {
						t.Fatalf("entry %d below the snapshot applied again", es[i].Index)
					}
					continue
				}
				mustOK(t, r)
			}
			last := es[len(es)-1].Index
			for _, d := range []*DB{leader, follower} {
				if applied(t, d) != last {
					t.Fatalf("applied %d, want %d", applied(t, d), last)
				}
				if n := stagedRows(t, d); n != 0 {
					t.Fatalf("%d staged rows left", n)
				}
				if r := mustQuery(t, d, "SELECT a, b FROM plain ORDER BY a"); len(r.Rows) != 2 || r.Rows[1].Values[1].GetText() != "c" {
					t.Fatalf("restored rows: %v", r.Rows)
				}
				if _, err := d.Query(ctx, []*command.Statement{stmt(t, "SELECT * FROM old")}); err == nil {
					t.Fatal("old table still there")
				}
			}
			if h := mustHash(t, leader); h != mustHash(t, follower) || h != mustHash(t, src) {
				t.Fatal("replicas differ after the restore")
			}

			// A database image holding staged chunks (the mid-restore
			// snapshot) restored elsewhere brings none of them along.
			other := openTest(t)
			mustApply(t, other, 1, member)
			for _, r := range applyAll(t, other, restoreEntries("img", midFile, command.RestoreFormat_RESTORE_FORMAT_SQLITE, 1<<16, 2)) {
				mustOK(t, r)
			}
			if n := stagedRows(t, other); n != 0 {
				t.Fatalf("restored image kept %d staged rows", n)
			}
			if mustHash(t, other) != before {
				t.Fatal("restored image differs")
			}
		})
	}
}

// Chunks larger than a row may be (Config.MaxLength) are stored in pieces.
func TestRestore_ChunkPieces(t *testing.T) {
	d, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "db.sqlite"), MaxLength: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var script bytes.Buffer
	script.WriteString("CREATE TABLE p(x);\n")
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&script, "INSERT INTO p VALUES(%d);\n", i)
	}
	es := restoreEntries("pieces", script.Bytes(), command.RestoreFormat_RESTORE_FORMAT_SQL, 2500, 1)
	for _, r := range applyAll(t, d, es[:1]) {
		mustOK(t, r)
	}
	if n := stagedRows(t, d); n != 5 {
		t.Fatalf("a 2500-byte chunk with MaxLength 1000 is stored as %d rows, want 5", n)
	}
	for _, r := range applyAll(t, d, es[1:]) {
		mustOK(t, r)
	}
	if r := mustQuery(t, d, "SELECT count(*), sum(x) FROM p"); r.Rows[0].Values[0].GetInteger() != 300 || r.Rows[0].Values[1].GetInteger() != 299*300/2 {
		t.Fatalf("restored: %v", r.Rows[0])
	}
}
