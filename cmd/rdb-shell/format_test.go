package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"rdb/command"
)

// sample is a result with every storage class and int64 extremes.
func sample() *command.Result {
	return &command.Result{
		Columns: []string{"id", "name", "score", "data"},
		Types:   []string{"INTEGER", "TEXT", "REAL", "BLOB"},
		Rows: []*command.Row{
			{Values: []*command.Value{command.Integer(math.MaxInt64), command.Text("alice"), command.Real(0.1), command.Blob([]byte{0xde, 0xad})}},
			{Values: []*command.Value{command.Integer(math.MinInt64), command.Null(), command.Real(1e308), command.Blob(nil)}},
			{Values: []*command.Value{command.Integer(3), command.Text("x,\"y\""), command.Real(2), nil}},
		},
	}
}

func render(t *testing.T, p printer, r *command.Result) string {
	t.Helper()
	var b strings.Builder
	if err := p.result(&b, r, 7, false); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestPrinter_Modes(t *testing.T) {
	tests := []struct {
		name string
		p    printer
		r    *command.Result
		want string
	}{
		{"table", printer{mode: modeTable, headers: true}, sample(), `+----------------------+-------+--------+---------+
| id                   | name  | score  | data    |
+----------------------+-------+--------+---------+
|  9223372036854775807 | alice |    0.1 | X'DEAD' |
| -9223372036854775808 |       | 1e+308 | X''     |
|                    3 | x,"y" |    2.0 |         |
+----------------------+-------+--------+---------+
`},
		{"table nullvalue no headers", printer{mode: modeTable, nullValue: "NULL"}, sample(), `+----------------------+-------+--------+---------+
|  9223372036854775807 | alice |    0.1 | X'DEAD' |
| -9223372036854775808 | NULL  | 1e+308 | X''     |
|                    3 | x,"y" |    2.0 | NULL    |
+----------------------+-------+--------+---------+
`},
		{"table multi-line and wide", printer{mode: modeTable, headers: true}, &command.Result{
			Columns: []string{"a", "b"},
			Rows:    []*command.Row{{Values: []*command.Value{command.Text("one\ntwo"), command.Text("名前")}}},
		}, `+-----+------+
| a   | b    |
+-----+------+
| one | 名前 |
| two |      |
+-----+------+
`},
		{"table empty", printer{mode: modeTable, headers: true}, &command.Result{Columns: []string{"a"}}, ""},
		{"csv", printer{mode: modeCSV, headers: true}, sample(), `id,name,score,data
9223372036854775807,alice,0.1,X'DEAD'
-9223372036854775808,,1e+308,X''
3,"x,""y""",2.0,
`},
		{"csv no headers", printer{mode: modeCSV, nullValue: "-"}, sample(), `9223372036854775807,alice,0.1,X'DEAD'
-9223372036854775808,-,1e+308,X''
3,"x,""y""",2.0,-
`},
		{"json", printer{mode: modeJSON}, sample(), `{"columns":["id","name","score","data"],"types":["INTEGER","TEXT","REAL","BLOB"],"rows":[[9223372036854775807,"alice",0.1,"3q0="],[-9223372036854775808,null,1e+308,""],[3,"x,\"y\"",2.0,null]]}
`},
		{"json empty", printer{mode: modeJSON}, &command.Result{Columns: []string{"a"}}, `{"columns":["a"],"types":[""],"rows":[]}
`},
		{"json write", printer{mode: modeJSON}, &command.Result{RowsAffected: 2, LastInsertId: math.MaxInt64}, `{"rows_affected":2,"last_insert_id":9223372036854775807,"raft_index":7}
`},
		{"table write is silent", printer{mode: modeTable}, &command.Result{RowsAffected: 2}, ""},
		{"line", printer{mode: modeLine}, sample(), `   id = 9223372036854775807
 name = alice
score = 0.1
 data = X'DEAD'

   id = -9223372036854775808
 name = 
score = 1e+308
 data = X''

   id = 3
 name = x,"y"
score = 2.0
 data = 
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := render(t, tt.p, tt.r); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestPrinter_JSONParses(t *testing.T) {
	out := render(t, printer{mode: modeJSON}, sample())
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	var v struct {
		Columns []string
		Rows    [][]any
	}
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if got := v.Rows[1][0].(json.Number).String(); got != "-9223372036854775808" {
		t.Errorf("min int64 = %s", got)
	}
	var b strings.Builder
	if err := errorJSON(&b, `no such table: "x"`); err != nil {
		t.Fatal(err)
	}
	if want := `{"error":"no such table: \"x\""}` + "\n"; b.String() != want {
		t.Errorf("errorJSON = %q, want %q", b.String(), want)
	}
}

func TestFormatReal(t *testing.T) {
	for in, want := range map[float64]string{
		0.1: "0.1", 1: "1.0", -2.5: "-2.5", 1e308: "1e+308", 5e-324: "5e-324",
		math.Inf(1): "Inf", 123456789012345680: "1.2345678901234568e+17",
	} {
		if got := formatReal(in); got != want {
			t.Errorf("formatReal(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestSQLLiteral(t *testing.T) {
	tests := []struct {
		v    *command.Value
		want string
	}{
		{command.Integer(math.MaxInt64), "9223372036854775807"},
		{command.Integer(math.MinInt64), "(-9223372036854775807-1)"},
		{command.Real(0.1), "0.1"},
		{command.Real(3), "3.0"},
		{command.Real(math.Inf(-1)), "-9.0e999"},
		{command.Text("it's"), "'it''s'"},
		{command.Text("a\r\nb"), "CAST(X'610D0A62' AS TEXT)"},
		{command.Text("é\n"), "'é\n'"},
		{command.Blob(nil), "X''"},
		{command.Blob([]byte{0, 1, 255}), "X'0001FF'"},
		{command.Null(), "NULL"},
		{nil, "NULL"},
	}
	for _, tt := range tests {
		if got := sqlLiteral(tt.v); got != tt.want {
			t.Errorf("sqlLiteral(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	got, err := splitArgs(`nullvalue 'a b' "c" d`)
	if err != nil || strings.Join(got, "|") != "nullvalue|a b|c|d" {
		t.Fatalf("splitArgs = %q, %v", got, err)
	}
	if _, err := splitArgs(`once 'x`); err == nil {
		t.Fatal("unterminated quote accepted")
	}
}

func TestComplete(t *testing.T) {
	s := &shell{}
	s.tablesTime = time.Now()
	s.tables = []string{"users", "orders"}
	tests := []struct {
		line string
		want string
	}{
		{".ta", ".tables "},
		{".mode j", "json"},
		{"sel", "select"},
		{"SELECT * FROM use", "users"},
		{".schema or", "orders"},
	}
	for _, tt := range tests {
		_, got, _ := s.complete(tt.line, len(tt.line))
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("complete(%q) = %q, want [%q]", tt.line, got, tt.want)
		}
	}
}
