package db

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	"rdb/command"
)

// TestDB_FailedStatementTakesNoEffect: statements run without savepoints on
// the fast path; one that fails after changing rows (ON CONFLICT FAIL,
// RAISE(FAIL) in a trigger, a transaction's later statement) still takes no
// effect, because the batch is redone with savepoints. Each case runs as one
// batch and entry by entry; both must give the same rows and results, and
// the batch must be redone exactly when a write statement failed.
func TestDB_FailedStatementTakesNoEffect(t *testing.T) {
	setup := []string{
		"CREATE TABLE u(x UNIQUE)",
		"INSERT INTO u VALUES(3)",
		"CREATE TABLE a(x)",
		"CREATE TABLE log(x)",
		"CREATE TRIGGER tr AFTER INSERT ON a BEGIN INSERT INTO log VALUES(new.x); SELECT RAISE(FAIL, 'two') WHERE new.x = 2; END",
	}
	cases := []struct {
		name   string
		middle *command.Command
		// want: rows of u, a and log after the batch, as "u:..|a:..|log:.."
		want   string
		redone bool
	}{
		{"or fail", execCmd(false, stmt(t, "INSERT OR FAIL INTO u SELECT value FROM json_each('[2,3,4]')")),
			"u:1,3,5|a:|log:", true},
		{"raise fail in trigger", execCmd(false, stmt(t, "INSERT INTO a VALUES(1),(2)")),
			"u:1,3,5|a:|log:", true},
		{"transaction", execCmd(true, stmt(t, "INSERT INTO u VALUES(10)"), stmt(t, "INSERT INTO a VALUES(11)"), stmt(t, "INSERT INTO u VALUES(3)")),
			"u:1,3,5|a:|log:", true},
		{"transaction, syntax error first", execCmd(true, stmt(t, "INSERT INTO u VALUES(3"), stmt(t, "INSERT INTO u VALUES(10)")),
			"u:1,3,5|a:|log:", false},
		{"no transaction, second fails", execCmd(false, stmt(t, "INSERT INTO u VALUES(10)"), stmt(t, "INSERT INTO u VALUES(3)")),
			"u:1,3,5,10|a:|log:", true},
		{"no transaction, syntax error", execCmd(false, stmt(t, "INSERT INTO u VALUES(10)"), stmt(t, "INSERT INTO u VALUES(")),
			"u:1,3,5,10|a:|log:", false},
		{"read-only failure", execCmd(false, stmt(t, "SELECT * FROM missing")),
			"u:1,3,5|a:|log:", false},
		{"success", execCmd(false, stmt(t, "INSERT INTO a VALUES(7)")),
			"u:1,3,5|a:7|log:7", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			entries := []Entry{
				{Index: 3, Command: execCmd(false, stmt(t, "INSERT INTO u VALUES(1)")), WantResults: true},
				{Index: 4, Command: tc.middle, WantResults: true},
				{Index: 5, Command: execCmd(false, stmt(t, "INSERT INTO u VALUES(5)")), WantResults: true},
			}
			var results [2][][]*command.Result
			var contents [2]string
			var hashes [2]string
			for i, batched := range []bool{true, false} {
				d := openTest(t)
				var stmts []*command.Statement
				for _, s := range setup {
					stmts = append(stmts, stmt(t, s))
				}
				for _, r := range mustApply(t, d, 2, execCmd(false, stmts...)) {
					if r.Error != "" {
						t.Fatalf("setup: %s", r.Error)
					}
				}
				redosBefore := d.CarefulRedos()
				if batched {
					res, err := d.ApplyBatch(context.Background(), entries)
					if err != nil {
						t.Fatal(err)
					}
					results[i] = res
				} else {
					for _, e := range entries {
						res, err := d.Apply(context.Background(), e)
						if err != nil {
							t.Fatal(err)
						}
						results[i] = append(results[i], res)
					}
				}
				if got := d.CarefulRedos() - redosBefore; (got > 0) != tc.redone || got > 1 {
					t.Errorf("batched=%v: %d careful redos, want redone=%v", batched, got, tc.redone)
				}
				contents[i] = tableContents(t, d, "u", "a", "log")
				h, err := d.Hash(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				hashes[i] = h
			}
			if contents[0] != tc.want {
				t.Errorf("batched: contents %s, want %s", contents[0], tc.want)
			}
			if contents[1] != tc.want {
				t.Errorf("one by one: contents %s, want %s", contents[1], tc.want)
			}
			if hashes[0] != hashes[1] {
				t.Errorf("hash differs between batched and one by one apply")
			}
			if !sameResults(results[0], results[1]) {
				t.Errorf("results differ:\nbatched    %v\none by one %v", results[0], results[1])
			}
			failed := false
			for _, r := range results[0][1] {
				failed = failed || r.GetError() != ""
			}
			if wantFail := tc.name != "success"; failed != wantFail {
				t.Errorf("middle entry: failed=%v, want %v: %v", failed, wantFail, results[0][1])
			}
		})
	}
}

// tableContents renders the x column of each table, sorted, as
// "name:v1,v2|name:...".
func tableContents(t *testing.T, d *DB, tables ...string) string {
	t.Helper()
	out := ""
	for i, tbl := range tables {
		if i > 0 {
			out += "|"
		}
		out += tbl + ":"
		res := mustQuery(t, d, "SELECT group_concat(x, ',') FROM (SELECT x FROM "+tbl+" ORDER BY x)")
		if v := res.Rows[0].Values[0]; v != nil && v.GetText() != "" {
			out += v.GetText()
		}
	}
	return out
}

// sameResults reports whether two appliers returned equal results, entry
// by entry and statement by statement.
func sameResults(a, b [][]*command.Result) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if !proto.Equal(a[i][j], b[i][j]) {
				return false
			}
		}
	}
	return true
}
