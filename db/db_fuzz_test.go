package db

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"rdb/command"
)

// fuzzTime and fuzzSeed fix "now" and random() for every fuzz entry.
var fuzzTime = time.Date(2024, 3, 5, 6, 7, 8, 0, time.UTC).UnixNano()

const fuzzSeed = 7

// fuzzSetup gives the fuzzed statements something to work on.
var fuzzSetup = []string{
	"CREATE TABLE t(id INTEGER PRIMARY KEY, a, b TEXT DEFAULT CURRENT_TIMESTAMP)",
	"INSERT INTO t(a) VALUES (1), ('x'), (NULL), (x'00ff')",
	"CREATE INDEX t_a ON t(a)",
}

// fuzzParams builds the parameters of a fuzzed statement: none, one or
// two positional, or two named.
func fuzzParams(mode uint8, i int64, s string) []*command.Parameter {
	switch mode % 4 {
	case 1:
		return []*command.Parameter{{Value: command.Integer(i)}}
	case 2:
		return []*command.Parameter{{Value: command.Integer(i)}, {Value: command.Text(s)}}
	case 3:
		return []*command.Parameter{{Name: "a", Value: command.Integer(i)}, {Name: "b", Value: command.Blob([]byte(s))}}
	}
	return nil
}

func fuzzOpen(t *testing.T, path string) *DB {
	t.Helper()
	// A small operation budget keeps runaway statements cheap; it is the
	// same on every replica, as it must be.
	d, err := Open(context.Background(), Config{Path: path, MaxApplySteps: 2_000_000})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func fuzzEntry(idx uint64, stmts ...*command.Statement) Entry {
	return Entry{Index: idx, WantResults: true, Command: &command.Command{Type: command.CommandType_COMMAND_TYPE_EXECUTE,
		Statements: stmts, TimeUnixNanos: fuzzTime + int64(idx)*1e6, RandomSeed: fuzzSeed + idx}}
}

func fuzzHash(t *testing.T, d *DB) string {
	t.Helper()
	h, err := d.Hash(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// FuzzCheckWriteAndApply: for arbitrary SQL, CheckWrite and ReadOnly never
// panic; a read-only statement changes nothing when queried; and what
// CheckWrite accepts applies without panic and identically (results and
// content hash) on fresh replicas that apply the same entries one by one,
// in one batch, or with a restart (Close and Open) in between.
func FuzzCheckWriteAndApply(f *testing.F) {
	for _, s := range []struct {
		sql1, sql2 string
		mode       uint8
	}{
		{"INSERT INTO t(a) VALUES (?)", "SELECT * FROM t", 1},
		{"UPDATE t SET a = random() WHERE id > ?", "INSERT INTO t(a) VALUES (datetime('now'))", 1},
		{"INSERT INTO t(a, b) VALUES (:a, :b)", "DELETE FROM t WHERE a = 1", 3},
		{"CREATE TABLE u(x) ", "INSERT INTO u SELECT randomblob(?) ", 1},
		{"SELECT ?, ?", "", 2},
		{"ATTACH ':memory:' AS m", "", 0},
		{"PRAGMA writable_schema=1", "PRAGMA journal_mode", 0},
		{"BEGIN", "COMMIT", 0},
		{"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c) SELECT count(*) FROM c", "", 0},
		{"INSERT OR ROLLBACK INTO t(id) VALUES (1)", "INSERT INTO t(a) VALUES (2)", 0},
		{"INSERT OR FAIL INTO t(id) VALUES (7), (1), (8)", "INSERT INTO t(a) VALUES (2)", 0},
		{"CREATE TRIGGER tf AFTER INSERT ON t BEGIN SELECT RAISE(FAIL, 'x') WHERE new.a = 2; END", "INSERT INTO t(a) VALUES (1), (2)", 0},
		{"VACUUM", "SELECT zeroblob(1e9)", 0},
		{"CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = a + 1 WHERE id = new.id; END", "INSERT INTO t(a) VALUES (5)", 0},
	} {
		f.Add(s.sql1, s.sql2, s.mode, int64(3), "p")
	}
	f.Fuzz(func(t *testing.T, sql1, sql2 string, mode uint8, i int64, s string) {
		if len(sql1) > 4096 || len(sql2) > 4096 || len(s) > 4096 {
			return
		}
		ctx := context.Background()
		dir := t.TempDir()
		a := fuzzOpen(t, filepath.Join(dir, "a.db"))
		defer func() { a.Close() }()
		b := fuzzOpen(t, filepath.Join(dir, "b.db"))
		defer func() { b.Close() }()
		restart := mode&4 != 0
		var setup []*command.Statement
		for _, q := range fuzzSetup {
			setup = append(setup, &command.Statement{Sql: q})
		}
		for _, d := range []*DB{a, b} {
			if _, err := d.Apply(ctx, fuzzEntry(1, setup...)); err != nil {
				t.Fatal(err)
			}
		}
		s1 := &command.Statement{Sql: sql1, Parameters: fuzzParams(mode, i, s)}
		entries := []Entry{fuzzEntry(2, s1)}
		if strings.TrimSpace(sql2) != "" {
			entries = append(entries, fuzzEntry(3, &command.Statement{Sql: sql2}))
		}

		// Classification never panics; a statement classified read-only
		// is served by Query and changes nothing.
		before := fuzzHash(t, a)
		for _, e := range entries {
			stmts := e.Command.GetStatements()
			ro, roErr := a.ReadOnly(ctx, stmts)
			if roErr != nil && !errors.Is(roErr, ErrSQL) {
				t.Fatalf("ReadOnly(%q): %v", stmts[0].GetSql(), roErr)
			}
			if ro {
				qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				_, qErr := a.Query(qctx, stmts)
				cancel()
				if errors.Is(qErr, ErrNotReadOnly) {
					t.Fatalf("ReadOnly says %q is read-only, Query refuses it: %v", stmts[0].GetSql(), qErr)
				}
				if h := fuzzHash(t, a); h != before {
					t.Fatalf("read-only %q changed the database", stmts[0].GetSql())
				}
			}
		}

		// Only what CheckWrite accepts is proposed.
		var accepted []Entry
		for _, e := range entries {
			err := a.CheckWrite(ctx, e.Command.GetStatements())
			if err != nil {
				if !errors.Is(err, ErrRefused) {
					t.Fatalf("CheckWrite: %v", err)
				}
				continue
			}
			e.Index = uint64(2 + len(accepted))
			accepted = append(accepted, e)
		}
		if len(accepted) == 0 {
			return
		}
		// Replica a applies entry by entry; replica b in one batch, or
		// with a restart between entries.
		var resA, resB [][]*command.Result
		for _, e := range accepted {
			r, err := a.Apply(ctx, e)
			if err != nil {
				t.Fatalf("apply on a: %v", err)
			}
			resA = append(resA, r)
		}
		if restart {
			for k, e := range accepted {
				if k > 0 {
					if err := b.Close(); err != nil {
						t.Fatal(err)
					}
					b = fuzzOpen(t, filepath.Join(dir, "b.db"))
				}
				r, err := b.Apply(ctx, e)
				if err != nil {
					t.Fatalf("apply on b: %v", err)
				}
				resB = append(resB, r)
			}
		} else {
			var err error
			if resB, err = b.ApplyBatch(ctx, accepted); err != nil {
				t.Fatalf("apply batch on b: %v", err)
			}
		}
		for k := range accepted {
			if len(resA[k]) != len(resB[k]) {
				t.Fatalf("entry %d: %d results vs %d", k, len(resA[k]), len(resB[k]))
			}
			for j := range resA[k] {
				if !proto.Equal(resA[k][j], resB[k][j]) {
					t.Fatalf("entry %d (%q) statement %d: results differ (restart=%v):\n%v\n%v", k,
						accepted[k].Command.GetStatements()[0].GetSql(), j, restart, resA[k][j], resB[k][j])
				}
			}
		}
		if ha, hb := fuzzHash(t, a), fuzzHash(t, b); ha != hb {
			t.Fatalf("replicas differ (restart=%v): %q then %q", restart, sql1, sql2)
		}
	})
}
