package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitter_Split(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []item
	}{
		{"one", "SELECT 1;", []item{{text: "SELECT 1", line: 1}}},
		{"two on a line", "SELECT 1; SELECT 2;", []item{{text: "SELECT 1", line: 1}, {text: "SELECT 2", line: 1}}},
		{"multi-line", "SELECT\n  1\n;", []item{{text: "SELECT\n  1", line: 1}}},
		{"no final semicolon", "SELECT 1", []item{{text: "SELECT 1", line: 1}}},
		{"empty statements", ";;\n ; SELECT 1;;", []item{{text: "SELECT 1", line: 2}}},
		{"semicolon in string", "INSERT INTO t VALUES('a;b');", []item{{text: "INSERT INTO t VALUES('a;b')", line: 1}}},
		{"doubled quote", "SELECT 'it''s; ok';", []item{{text: "SELECT 'it''s; ok'", line: 1}}},
		{"string across lines", "SELECT 'a\n;b';\nSELECT 2;", []item{{text: "SELECT 'a\n;b'", line: 1}, {text: "SELECT 2", line: 3}}},
		{"quoted identifiers", "SELECT \"a;\", `b;`, [c;] FROM t;", []item{{text: "SELECT \"a;\", `b;`, [c;] FROM t", line: 1}}},
		{"line comment", "SELECT 1 -- not the end;\n;", []item{{text: "SELECT 1 -- not the end;", line: 1}}},
		{"block comment", "SELECT /* ; */ 1;", []item{{text: "SELECT /* ; */ 1", line: 1}}},
		{"block comment across lines", "SELECT 1 /* a;\n b; */ + 1;", []item{{text: "SELECT 1 /* a;\n b; */ + 1", line: 1}}},
		{"leading comments dropped", "-- hello\n/* x */ SELECT 1;", []item{{text: "SELECT 1", line: 2}}},
		{"comment only", "-- nothing here;\n/* nor; here */", nil},
		{"trigger", "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  INSERT INTO u VALUES(1);\n  UPDATE u SET x = 2;\nEND;\nSELECT 1;",
			[]item{{text: "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  INSERT INTO u VALUES(1);\n  UPDATE u SET x = 2;\nEND", line: 1}, {text: "SELECT 1", line: 5}}},
		{"temp trigger with case end", "create temp trigger tr after insert on t begin select case when 1 then 2 end; end; select 3;",
			[]item{{text: "create temp trigger tr after insert on t begin select case when 1 then 2 end; end", line: 1}, {text: "select 3", line: 1}}},
		{"trigger with comment before end", "CREATE TRIGGER tr AFTER DELETE ON t BEGIN DELETE FROM u; -- x;\n END;",
			[]item{{text: "CREATE TRIGGER tr AFTER DELETE ON t BEGIN DELETE FROM u; -- x;\n END", line: 1}}},
		{"begin end transaction is not a trigger", "BEGIN;\nINSERT INTO t VALUES(1);\nEND;",
			[]item{{text: "BEGIN", line: 1}, {text: "INSERT INTO t VALUES(1)", line: 2}, {text: "END", line: 3}}},
		{"dot-command", ".tables\nSELECT 1;\n  .mode csv  ", []item{{text: ".tables", dot: true, line: 1}, {text: "SELECT 1", line: 2}, {text: ".mode csv", dot: true, line: 3}}},
		{"dot inside statement is SQL", "SELECT\n.5;", []item{{text: "SELECT\n.5", line: 1}}},
		{"dot after comment tail", "SELECT 1; -- done\n.quit", []item{{text: "SELECT 1", line: 1}, {text: ".quit", dot: true, line: 2}}},
		{"unterminated string", "SELECT 'abc;\n", []item{{text: "SELECT 'abc;", line: 1, incomplete: true}}},
		{"unterminated trigger", "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1;", []item{{text: "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1;", line: 1, incomplete: true}}},
		{"unterminated block comment", "SELECT 1 /* open", []item{{text: "SELECT 1 /* open", line: 1}}},
		{"unicode", "SELECT 'héllo; wörld', 名前 FROM t;", []item{{text: "SELECT 'héllo; wörld', 名前 FROM t", line: 1}}},
		{"crlf", "SELECT 1;\r\nSELECT 2;\r\n", []item{{text: "SELECT 1", line: 1}, {text: "SELECT 2", line: 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitAll(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitAll(%q)\n got %#v\nwant %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestSplitter_Pending(t *testing.T) {
	var s splitter
	steps := []struct {
		line    string
		items   int
		pending bool
	}{
		{"SELECT", 0, true},
		{"  1;", 1, false},
		{"SELECT 'a", 0, true},
		{"b';", 1, false},
		{"/* start", 0, true},
		{"end */", 0, false},
		{"CREATE TRIGGER x AFTER INSERT ON t BEGIN", 0, true},
		{"SELECT 1;", 0, true},
		{"END;", 1, false},
		{".help", 1, false},
	}
	for i, st := range steps {
		items := s.feed(st.line)
		if len(items) != st.items || s.pending() != st.pending {
			t.Fatalf("step %d %q: %d items, pending %v; want %d, %v", i, st.line, len(items), s.pending(), st.items, st.pending)
		}
	}
	s.feed("SELECT 'abc")
	s.reset()
	if s.pending() {
		t.Fatal("pending after reset")
	}
	if got := s.feed("SELECT 2;"); len(got) != 1 || got[0].text != "SELECT 2" {
		t.Fatalf("after reset: %#v", got)
	}
}

// FuzzSplitter checks that the splitter never panics and never loses
// non-space text outside comments: every statement it returns appears in
// the input in order.
func FuzzSplitter(f *testing.F) {
	for _, s := range []string{"SELECT 1;", "SELECT 'a;b'; -- c\n.x", "CREATE TRIGGER t BEGIN x; END;", "/* ; */ [a;]; `b`;\"c\"", "'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rest := in
		for _, it := range splitAll(in) {
			i := strings.Index(rest, it.text)
			if i < 0 {
				t.Fatalf("item %q not found in order in %q", it.text, in)
			}
			rest = rest[i+len(it.text):]
		}
	})
}
