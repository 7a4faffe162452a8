package system_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// runShell runs rdb-shell against endpoints with stdin as input and
// returns its stdout, stderr and exit code.
func runShell(t testing.TB, endpoints []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, shellBin, append([]string{"--endpoints", strings.Join(endpoints, ","), "--timeout", "30s"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run rdb-shell: %v", err)
	}
	return out.String(), errb.String(), code
}

// jsonLines decodes one JSON object per line, keeping numbers exact.
func jsonLines(t testing.TB, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("output line %q is not a JSON object: %v", line, err)
		}
		objs = append(objs, m)
	}
	return objs
}

func TestShellScriptsThroughStdinAndC(t *testing.T) {
	c := StartCluster(t, 3)
	eps := c.Endpoints()

	script := `-- a script with comments, a multi-line statement and a trigger
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, score REAL, avatar BLOB);
CREATE TABLE log (msg TEXT);
CREATE TRIGGER users_log AFTER INSERT ON users BEGIN
  INSERT INTO log VALUES ('added; ' || NEW.name);
END;
INSERT INTO users VALUES
  (9223372036854775807, 'max', 0.5, X'CAFE'),
  (-9223372036854775808, 'it''s; tricky', NULL, X'');
BEGIN;
INSERT INTO users (id, name) VALUES (1, 'tx one');
INSERT INTO users (id, name) VALUES (2, 'tx two');
COMMIT;
BEGIN;
INSERT INTO users (id, name) VALUES (3, 'rolled back');
ROLLBACK;
.mode json
SELECT id, name, score, avatar FROM users ORDER BY id;
SELECT count(*) AS n FROM log;
INSERT INTO users (name) VALUES ('last');
SELECT * FROM no_such_table;
`
	out, errOut, code := runShell(t, eps, script, "--format", "csv")
	if code != 1 {
		t.Fatalf("exit code %d, want 1 (one statement failed); stderr:\n%s", code, errOut)
	}
	if !strings.HasPrefix(errOut, "Error: near line 21: ") || !strings.Contains(errOut, "no such table: no_such_table") ||
		strings.Count(errOut, "\n") != 1 || strings.Contains(errOut, "rpc error") {
		t.Errorf("stderr = %q, want one clean error line for line 21", errOut)
	}
	objs := jsonLines(t, out)
	if len(objs) != 4 {
		t.Fatalf("got %d JSON objects, want 4:\n%s", len(objs), out)
	}
	rows, _ := objs[0]["rows"].([]any)
	want := [][]string{
		{"-9223372036854775808", "it's; tricky", "<nil>", ""},
		{"1", "tx one", "<nil>", "<nil>"},
		{"2", "tx two", "<nil>", "<nil>"},
		{"9223372036854775807", "max", "0.5", "yv4="},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %v, want %d rows", rows, len(want))
	}
	for i, r := range rows {
		for j, v := range r.([]any) {
			got := "<nil>"
			if v != nil {
				got = jsonScalar(v)
			}
			if got != want[i][j] {
				t.Errorf("row %d column %d = %q, want %q", i, j, got, want[i][j])
			}
		}
	}
	if cols := objs[0]["columns"].([]any); len(cols) != 4 || cols[0] != "id" {
		t.Errorf("columns = %v", cols)
	}
	if n := objs[1]["rows"].([]any)[0].([]any)[0]; jsonScalar(n) != "4" {
		t.Errorf("trigger log has %v rows, want 4", n)
	}
	if objs[2]["rows_affected"].(json.Number).String() != "1" || objs[2]["raft_index"].(json.Number).String() == "0" {
		t.Errorf("write result = %v", objs[2])
	}
	if msg, _ := objs[3]["error"].(string); !strings.Contains(msg, "no such table") {
		t.Errorf("error object = %v", objs[3])
	}

	// -c: statements and dot-commands, csv without headers by default.
	out, errOut, code = runShell(t, eps, "", "-c", "SELECT name FROM users WHERE id = 1; SELECT 'a,b';\n.headers on\nSELECT 7 AS seven")
	if code != 0 || out != "tx one\n\"a,b\"\nseven\n7\n" {
		t.Errorf("-c: code %d, stdout %q, stderr %q", code, out, errOut)
	}

	// --bail stops at the first error.
	out, _, code = runShell(t, eps, "SELECT 1;\nSELECT nope;\nSELECT 2;\n", "--bail")
	if code != 1 || out != "1\n" {
		t.Errorf("--bail: code %d, stdout %q", code, out)
	}

	// An input that ends inside a transaction is an error: nothing was sent.
	_, errOut, code = runShell(t, eps, "BEGIN;\nINSERT INTO users (name) VALUES ('lost');\n")
	if code != 1 || !strings.Contains(errOut, "not committed") {
		t.Errorf("open transaction at end: code %d, stderr %q", code, errOut)
	}

	// No endpoint answers: one clear line.
	_, errOut, code = runShell(t, []string{freeAddr(t), freeAddr(t)}, "SELECT 1;")
	if code == 0 || !strings.HasPrefix(errOut, "Error: cannot reach any of ") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("dead endpoints: code %d, stderr %q", code, errOut)
	}
}

// jsonScalar renders a decoded JSON scalar as text.
func jsonScalar(v any) string {
	switch x := v.(type) {
	case json.Number:
		return x.String()
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// richSetup creates the tables snapshotDB reads: every storage class and
// awkward values, quoted names, generated columns, indexes, a trigger, a
// view and AUTOINCREMENT.
const richSetup = `CREATE TABLE nums (id INTEGER PRIMARY KEY AUTOINCREMENT, i INTEGER, r REAL, t TEXT, b BLOB);
CREATE TABLE "odd ""name""" ("col;1" TEXT, [col 2] INTEGER, c3 GENERATED ALWAYS AS ("col;1" || 'x') VIRTUAL);
CREATE TABLE tags (nid INTEGER REFERENCES nums(id), tag TEXT NOT NULL, UNIQUE (nid, tag)) ;
CREATE TABLE audit (what TEXT);
CREATE INDEX nums_i ON nums (i);
CREATE UNIQUE INDEX tags_tag ON tags (tag, nid) WHERE tag <> '';
CREATE TRIGGER nums_audit AFTER INSERT ON nums BEGIN
  INSERT INTO audit VALUES ('insert; ' || NEW.id);
END;
CREATE VIEW big AS SELECT id, i FROM nums WHERE i > 0;
INSERT INTO nums (i, r, t, b) VALUES
  (9223372036854775807, 0.1, 'plain', X'00FF10'),
  (-9223372036854775808, 1e308, 'it''s "quoted"; -- not a comment', X''),
  (0, -2.5e-300, 'ünïcödé 名前 🎉', NULL),
  (NULL, 3.0, 'line1
line2', X'DEADBEEF'),
  (42, NULL, '', zeroblob(3)),
  (7, 1.0000000000000002, 'tab	and cr' || char(13), NULL);
DELETE FROM nums WHERE i = 7;
INSERT INTO "odd ""name""" ("col;1", [col 2]) VALUES ('a;b', 1), (NULL, NULL);
INSERT INTO tags VALUES (1, 'one'), (2, '');
`

func TestShellDumpLoadsIntoFreshCluster(t *testing.T) {
	src := StartCluster(t, 3)
	if _, errOut, code := runShell(t, src.Endpoints(), richSetup); code != 0 {
		t.Fatalf("setup failed (%d): %s", code, errOut)
	}
	dump, errOut, code := runShell(t, src.Endpoints(), ".dump\n")
	if code != 0 {
		t.Fatalf(".dump failed (%d): %s", code, errOut)
	}
	t.Logf("dump:\n%s", dump)
	want := snapshotDB(t, src.Endpoints())
	for _, n := range src.Nodes {
		n.Kill(t) // make room for the second cluster on a small machine
	}

	dst := StartCluster(t, 3)
	file := filepath.Join(t.TempDir(), "dump.sql")
	if err := os.WriteFile(file, []byte(dump), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runShell(t, dst.Endpoints(), ".read "+file+"\n"); code != 0 {
		t.Fatalf(".read failed (%d): %s", code, errOut)
	}
	got := snapshotDB(t, dst.Endpoints())
	if len(got) != len(want) {
		t.Fatalf("restored %d results, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("result %d differs:\n got %v\nwant %v", i, got[i], want[i])
		}
	}
	// Dumping the restored database gives the same text.
	again, _, _ := runShell(t, dst.Endpoints(), ".dump\n")
	if again != dump {
		t.Errorf("second dump differs:\n%s", again)
	}
}

// TestShellBackupRestoresIntoFreshCluster backs a 3-node cluster up with
// .backup (a SQLite file, and SQL text with --sql), restores both into a
// second cluster with .restore, and compares every table.
func TestShellBackupRestoresIntoFreshCluster(t *testing.T) {
	src := StartCluster(t, 3)
	if _, errOut, code := runShell(t, src.Endpoints(), richSetup); code != 0 {
		t.Fatalf("setup failed (%d): %s", code, errOut)
	}
	dir := t.TempDir()
	dbFile, sqlFile := filepath.Join(dir, "backup.db"), filepath.Join(dir, "backup.sql")
	// A file that is there already is replaced.
	if err := os.WriteFile(dbFile, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}

	backupRE := regexp.MustCompile(`^backup of (\d+) bytes at raft index (\d+) written to (.+)\n$`)
	checkBackup := func(out, errOut string, code int, file string, wantIndex bool) {
		t.Helper()
		m := backupRE.FindStringSubmatch(out)
		if code != 0 || m == nil || (wantIndex && m[2] == "0") || m[3] != file {
			t.Fatalf(".backup: code %d, stdout %q, stderr %q", code, out, errOut)
		}
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := strconv.ParseInt(m[1], 10, 64); n != fi.Size() || n == 0 {
			t.Errorf(".backup reported %s bytes, %s has %d", m[1], file, fi.Size())
		}
	}
	// The SQLite file through -c, the SQL text through stdin.
	out, errOut, code := runShell(t, src.Endpoints(), "", "-c", ".backup "+dbFile)
	checkBackup(out, errOut, code, dbFile, true)
	out, errOut, code = runShell(t, src.Endpoints(), ".backup --sql '"+sqlFile+"'\n")
	// The server sends raft index 0 with SQL text backups for now: rpc's
	// Backup sets the chunk writer's index only after Dump, whose
	// bufio.NewWriterSize returns the server's own (larger) buffered
	// writer, so Dump's Flush sends the first chunk already.
	checkBackup(out, errOut, code, sqlFile, false)
	if leftover, _ := filepath.Glob(filepath.Join(dir, ".rdb-backup-*")); len(leftover) != 0 {
		t.Errorf("temporary files left behind: %v", leftover)
	}
	if head, _ := os.ReadFile(dbFile); !bytes.HasPrefix(head, []byte("SQLite format 3\x00")) {
		t.Errorf("%s is not a SQLite file: %.40q", dbFile, head)
	}
	if text, _ := os.ReadFile(sqlFile); !bytes.Contains(text, []byte("CREATE TABLE nums")) {
		t.Errorf("%s does not look like SQL text:\n%.400s", sqlFile, text)
	}
	if _, err := os.Stat("/usr/bin/sqlite3"); err == nil {
		res, err := exec.Command("/usr/bin/sqlite3", dbFile, "PRAGMA integrity_check").CombinedOutput()
		if err != nil || strings.TrimSpace(string(res)) != "ok" {
			t.Errorf("sqlite3 integrity_check: %v: %s", err, res)
		}
	} else {
		t.Log("no /usr/bin/sqlite3: integrity check skipped")
	}
	// A failed backup leaves the file as it was.
	if _, errOut, code := runShell(t, src.Endpoints(), "", "-c", ".backup "+filepath.Join(dir, "no/such/dir/x.db")); code != 1 || !strings.HasPrefix(errOut, "Error: ") {
		t.Errorf(".backup into a missing directory: code %d, stderr %q", code, errOut)
	}

	want := snapshotDB(t, src.Endpoints())
	for _, n := range src.Nodes {
		n.Kill(t) // make room for the second cluster on a small machine
	}

	dst := StartCluster(t, 3)
	if _, errOut, code := runShell(t, dst.Endpoints(), "CREATE TABLE stale (x); INSERT INTO stale VALUES (1);\n"); code != 0 {
		t.Fatalf("dst setup failed (%d): %s", code, errOut)
	}
	restoreRE := regexp.MustCompile(`^restored (\d+) bytes at raft index (\d+)\n`)
	for _, file := range []string{dbFile, sqlFile} {
		// The read right after the restore, at consistency none, sees the
		// restored data on whichever node serves it: it waits for the
		// restore's index.
		out, errOut, code := runShell(t, dst.Endpoints(), ".restore "+file+"\n.consistency none\nSELECT count(*) FROM nums;\nSELECT count(*) FROM sqlite_schema WHERE name = 'stale';\n")
		m := restoreRE.FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf(".restore %s: code %d, stdout %q, stderr %q", file, code, out, errOut)
		}
		if rest := out[len(m[0]):]; rest != "5\n0\n" {
			t.Errorf("reads after .restore %s = %q, want 5 rows in nums and no stale table", file, rest)
		}
		fi, _ := os.Stat(file)
		if n, _ := strconv.ParseInt(m[1], 10, 64); n != fi.Size() {
			t.Errorf(".restore %s reported %s bytes, the file has %d", file, m[1], fi.Size())
		}
		index, _ := strconv.ParseUint(m[2], 10, 64)

		// Every node has the restored data once it applied the restore.
		for _, n := range dst.Nodes {
			got := snapshotWith(t, NodeClient(t, n), rpcpb.Consistency_CONSISTENCY_NONE, index)
			if len(got) != len(want) {
				t.Fatalf("node %d after .restore %s: %d results, want %d", n.ID, file, len(got), len(want))
			}
			for i := range want {
				if !proto.Equal(got[i], want[i]) {
					t.Errorf("node %d after .restore %s: result %d differs:\n got %v\nwant %v", n.ID, file, i, got[i], want[i])
				}
			}
		}
		// Make the next restore replace something.
		if _, errOut, code := runShell(t, dst.Endpoints(), "CREATE TABLE stale (x);\n"); code != 0 {
			t.Fatalf("create stale (%d): %s", code, errOut)
		}
	}

	// Restoring garbage is refused and leaves the data alone.
	bad := filepath.Join(dir, "bad.sql")
	if err := os.WriteFile(bad, []byte("this is not SQL;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runShell(t, dst.Endpoints(), ".restore "+bad+"\nSELECT count(*) FROM nums;\n"); code != 1 || out != "5\n" || !strings.HasPrefix(errOut, "Error: ") {
		t.Errorf(".restore of bad SQL: code %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// snapshotDB reads the schema and every table's rows, with exact types.
func snapshotDB(t testing.TB, eps []string) []proto.Message {
	t.Helper()
	return snapshotWith(t, newClient(t, eps...), rpcpb.Consistency_CONSISTENCY_LINEARIZABLE, 0)
}

// snapshotWith is snapshotDB through cl at a consistency level, once the
// node serving it has applied minIndex.
func snapshotWith(t testing.TB, cl *client.Client, lvl rpcpb.Consistency, minIndex uint64) []proto.Message {
	t.Helper()
	var out []proto.Message
	out = append(out, mustQuery(t, cl, lvl, minIndex, "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE '\\_rdb\\_%' ESCAPE '\\' ORDER BY name"))
	for _, q := range []string{
		"SELECT id, i, typeof(i), r, typeof(r), t, typeof(t), b, typeof(b) FROM nums ORDER BY id",
		`SELECT "col;1", [col 2], c3 FROM "odd ""name""" ORDER BY rowid`,
		"SELECT * FROM tags ORDER BY nid",
		"SELECT * FROM audit ORDER BY what",
		"SELECT * FROM big ORDER BY id",
		"SELECT * FROM sqlite_sequence",
	} {
		out = append(out, mustQuery(t, cl, lvl, minIndex, q))
	}
	return out
}

// lineReader delivers a process's output lines on a channel.
func lineReader(r io.Reader) <-chan string {
	ch := make(chan string, 100)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

func nextLine(t testing.TB, ch <-chan string, timeout time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("shell output ended")
		}
		return l
	case <-time.After(timeout):
		t.Fatalf("no shell output within %s", timeout)
	}
	return ""
}

func TestShellFailsOverWhenItsNodeIsKilled(t *testing.T) {
	c := StartCluster(t, 3)
	cmd := exec.Command(shellBin, "--endpoints", strings.Join(c.Endpoints(), ","), "--format", "json", "--timeout", "60s")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := lineReader(stdout)
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(stdin, s+"\n"); err != nil {
			t.Fatal(err)
		}
	}

	send("CREATE TABLE f (x INTEGER);")
	nextLine(t, lines, time.Minute)
	inUse := endpointInUse(t, send, lines)
	var victim *Node
	for _, n := range c.Nodes {
		if n.ClientAddr == inUse {
			victim = n
		}
	}
	if victim == nil {
		t.Fatalf("endpoint in use %q is no node's", inUse)
	}
	victim.Kill(t)
	// A write sent in the instant before the client sees the connection
	// drop has an unknown outcome, and the shell rightly says so; a user
	// types more slowly than that.
	time.Sleep(time.Second)

	for i := 0; i < 3; i++ {
		send("INSERT INTO f VALUES (1);")
		if l := nextLine(t, lines, 90*time.Second); !strings.Contains(l, `"rows_affected":1`) {
			t.Fatalf("insert %d after killing node %d: %s (stderr %s)", i, victim.ID, l, errb.String())
		}
	}
	send("SELECT count(*) FROM f;")
	if l := nextLine(t, lines, time.Minute); !strings.Contains(l, `"rows":[[3]]`) {
		t.Fatalf("count after failover: %s", l)
	}
	if now := endpointInUse(t, send, lines); now == inUse {
		t.Errorf("still talking to the killed node %s", now)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("shell exit: %v; stderr %s", err, errb.String())
	}
}

// endpointInUse asks the shell (in json mode) for .status and returns the
// endpoint it talks to.
func endpointInUse(t testing.TB, send func(string), lines <-chan string) string {
	t.Helper()
	send(".status")
	l := nextLine(t, lines, time.Minute)
	var st struct {
		Columns []string
		Rows    [][]any
	}
	if err := json.Unmarshal([]byte(l), &st); err != nil || len(st.Rows) != 1 || len(st.Columns) == 0 || st.Columns[0] != "endpoint" {
		t.Fatalf(".status output %q: %v", l, err)
	}
	ep, _ := st.Rows[0][0].(string)
	return ep
}

// tmux drives a terminal session on a private server socket.
type tmux struct {
	t    testing.TB
	sock string
}

func (m *tmux) run(args ...string) string {
	m.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", m.sock}, args...)...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("tmux %v: %v: %s", args, err, out)
	}
	return string(out)
}

// typeLine types text literally and presses Enter. tmux would take a
// trailing ';' as its own command separator, so it is escaped.
func (m *tmux) typeLine(text string) {
	m.t.Helper()
	if strings.HasSuffix(text, ";") {
		text = strings.TrimSuffix(text, ";") + `\;`
	}
	m.run("send-keys", "-t", "shell", "-l", text)
	m.run("send-keys", "-t", "shell", "Enter")
}

func (m *tmux) screen() string {
	return m.run("capture-pane", "-p", "-t", "shell", "-S", "-200")
}

// waitScreen waits until the screen shows want count times. Trailing
// spaces are not compared, as capture-pane drops them.
func (m *tmux) waitScreen(want string, count int) string {
	m.t.Helper()
	want = strings.TrimRight(want, " ")
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := m.screen()
		if strings.Count(s, want) >= count {
			return s
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("screen does not show %q %d times:\n%s", want, count, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestShellInteractiveThroughTerminal(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed")
	}
	c := StartCluster(t, 3)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	m := &tmux{t: t, sock: filepath.Join(dir, "tmux.sock")}
	shellCmd := "HOME=" + home + " TERM=xterm " + shellBin + " --endpoints " + strings.Join(c.Endpoints(), ",") + "; echo SHELL-EXITED $?; sleep 60"
	m.run("new-session", "-d", "-s", "shell", "-x", "120", "-y", "50", shellCmd)
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", m.sock, "kill-server").Run() })

	m.waitScreen("rdb> ", 1)
	m.waitScreen("connected to", 1)
	// A statement over three lines, with the continuation prompt.
	m.typeLine("SELECT 40")
	m.waitScreen("...> ", 1)
	m.typeLine("  + 2")
	m.typeLine("AS answer;")
	m.waitScreen("|     42 |", 1)
	// Up recalls the whole statement as one history entry.
	m.run("send-keys", "-t", "shell", "Up")
	m.waitScreen("rdb> SELECT 40 + 2 AS answer;", 1)
	m.run("send-keys", "-t", "shell", "Enter")
	m.waitScreen("|     42 |", 2)
	// Tab completes dot-commands; Ctrl-C drops a half-typed statement.
	m.run("send-keys", "-t", "shell", "-l", ".consis")
	m.run("send-keys", "-t", "shell", "Tab")
	m.waitScreen("rdb> .consistency ", 1)
	m.typeLine("strong")
	m.typeLine(".consistency")
	m.waitScreen("\nstrong", 1)
	m.run("send-keys", "-t", "shell", "-l", "SELECT 'never")
	m.run("send-keys", "-t", "shell", "C-c")
	m.typeLine("SELECT 'still here' AS s;")
	m.waitScreen("| still here |", 1)
	if strings.Contains(m.screen(), "| never") {
		t.Error("the interrupted statement ran")
	}
	// Ctrl-D leaves and saves the history.
	m.run("send-keys", "-t", "shell", "C-d")
	m.waitScreen("SHELL-EXITED 0", 1)
	hist, err := os.ReadFile(filepath.Join(home, ".rdb_history"))
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	if !strings.Contains(string(hist), "SELECT 40 + 2 AS answer;\n") {
		t.Errorf("history file:\n%s", hist)
	}
}
