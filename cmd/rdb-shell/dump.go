package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"rdb/command"
)

// Batching of rows into multi-row INSERT statements in a dump: fewer
// statements keep a restore well under the server's per-request statement
// limit.
const (
	dumpRowsPerInsert  = 200
	dumpBytesPerInsert = 256 << 10
)

// schemaObject is one row of sqlite_schema.
type schemaObject struct {
	typ, name, tblName, sql string
}

// dumpSchemaSQL lists the user objects to dump, in creation order.
const dumpSchemaSQL = `SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND ` + userObjects +
	` AND (?1 = '' OR tbl_name LIKE ?1) ORDER BY rowid`

// dotDump prints the database (or the tables matching the LIKE pattern,
// with their indexes and triggers) as SQL: BEGIN TRANSACTION, the CREATE
// TABLE statements each followed by its rows, sqlite_sequence, then
// indexes, triggers and views, then COMMIT. Reading it back with .read
// sends it as one transaction.
//
// All rows are read in one Query request, so they come from one point in
// the log. Values are written exactly: integers in full, reals in their
// shortest round-trip form, text and BLOBs as literals.
func (s *shell) dotDump(ctx context.Context, args []string) error {
	pat, err := likeArg(args, "dump", "[TABLE]")
	if err != nil {
		return err
	}
	patParam := []*command.Parameter{{Value: command.Text(pat)}}

	// Phase 1: the objects, and the insertable columns of each table.
	rs, err := s.queryRows(ctx,
		&command.Statement{Sql: dumpSchemaSQL, Parameters: patParam},
		&command.Statement{Sql: `SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'`})
	if err != nil {
		return err
	}
	objs := schemaObjects(rs[0])
	hasSeq := pat == "" && len(rs[1].GetRows()) > 0 && cell(rs[1].GetRows()[0], 0).GetInteger() > 0
	var tables []schemaObject
	for _, o := range objs {
		if o.typ == "table" && !isVirtual(o.sql) {
			tables = append(tables, o)
		}
	}
	columns := make([][]string, len(tables))
	partial := make([]bool, len(tables))
	if len(tables) > 0 {
		var stmts []*command.Statement
		for _, t := range tables {
			stmts = append(stmts, &command.Statement{
				Sql:        `SELECT name, hidden FROM pragma_table_xinfo(?) ORDER BY cid`,
				Parameters: []*command.Parameter{{Value: command.Text(t.name)}},
			})
		}
		rs, err := s.queryRows(ctx, stmts...)
		if err != nil {
			return err
		}
		for i, r := range rs {
			for _, row := range r.GetRows() {
				// hidden: 0 ordinary, 1 hidden, 2 and 3 generated columns,
				// which cannot be inserted into.
				if cell(row, 1).GetInteger() == 0 {
					columns[i] = append(columns[i], cell(row, 0).GetText())
				} else {
					partial[i] = true
				}
			}
		}
	}

	// Phase 2: the schema again and every table's rows, in one request.
	stmts := []*command.Statement{{Sql: dumpSchemaSQL, Parameters: patParam}}
	for i, t := range tables {
		stmts = append(stmts, &command.Statement{Sql: "SELECT " + quoteIdents(columns[i]) + " FROM " + quoteIdent(t.name)})
	}
	if hasSeq {
		stmts = append(stmts, &command.Statement{Sql: `SELECT name, seq FROM sqlite_sequence ORDER BY name`})
	}
	rs, err = s.queryRows(ctx, stmts...)
	if err != nil {
		return err
	}
	if !sameObjects(objs, schemaObjects(rs[0])) {
		return errors.New("the schema changed while dumping; run .dump again")
	}

	w := bufio.NewWriter(s.out)
	fmt.Fprintln(w, "BEGIN TRANSACTION;")
	for i, t := range tables {
		fmt.Fprintf(w, "%s;\n", t.sql)
		cols := ""
		if partial[i] {
			cols = "(" + quoteIdents(columns[i]) + ")"
		}
		writeInserts(w, "INSERT INTO "+quoteIdent(t.name)+cols+" VALUES", rs[1+i].GetRows())
	}
	if hasSeq {
		fmt.Fprintln(w, "DELETE FROM sqlite_sequence;")
		writeInserts(w, "INSERT INTO sqlite_sequence VALUES", rs[len(rs)-1].GetRows())
	}
	for _, typ := range []string{"table", "index", "trigger", "view"} {
		for _, o := range objs {
			if o.typ != typ || typ == "table" && !isVirtual(o.sql) {
				continue
			}
			fmt.Fprintf(w, "%s;\n", o.sql)
		}
	}
	fmt.Fprintln(w, "COMMIT;")
	return w.Flush()
}

func schemaObjects(r *command.Result) []schemaObject {
	var out []schemaObject
	for _, row := range r.GetRows() {
		out = append(out, schemaObject{
			typ: cell(row, 0).GetText(), name: cell(row, 1).GetText(),
			tblName: cell(row, 2).GetText(), sql: cell(row, 3).GetText(),
		})
	}
	return out
}

func sameObjects(a, b []schemaObject) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// isVirtual reports whether a CREATE statement makes a virtual table,
// whose contents live in shadow tables and are not dumped as rows.
func isVirtual(sql string) bool {
	w := sqlWords(sql, 3)
	return len(w) >= 2 && w[0] == "CREATE" && w[1] == "VIRTUAL"
}

// writeInserts writes rows as multi-row INSERT statements, one row per
// line.
func writeInserts(w *bufio.Writer, prefix string, rows []*command.Row) {
	n, size := 0, 0
	var b strings.Builder
	for _, row := range rows {
		b.Reset()
		b.WriteByte('(')
		for j, v := range row.GetValues() {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(sqlLiteral(v))
		}
		b.WriteByte(')')
		if n == 0 {
			w.WriteString(prefix)
			w.WriteByte('\n')
		} else {
			w.WriteString(",\n")
		}
		w.WriteString(b.String())
		n++
		size += b.Len()
		if n >= dumpRowsPerInsert || size >= dumpBytesPerInsert {
			w.WriteString(";\n")
			n, size = 0, 0
		}
	}
	if n > 0 {
		w.WriteString(";\n")
	}
}

// sqlLiteral renders a value as an SQL literal that reads back as the same
// value with the same storage class.
func sqlLiteral(v *command.Value) string {
	switch k := v.GetKind().(type) {
	case *command.Value_Integer:
		if k.Integer == math.MinInt64 {
			// -9223372036854775808 would parse as minus a too-large
			// literal, which is a REAL.
			return "(-9223372036854775807-1)"
		}
		return strconv.FormatInt(k.Integer, 10)
	case *command.Value_Real:
		switch {
		case math.IsInf(k.Real, 1):
			return "9.0e999"
		case math.IsInf(k.Real, -1):
			return "-9.0e999"
		case math.IsNaN(k.Real):
			return "NULL"
		}
		return formatReal(k.Real)
	case *command.Value_Text:
		// NUL cannot appear in a literal, and a CR could be lost by an
		// editor or a line reader: such text goes as hex cast to TEXT.
		if strings.ContainsAny(k.Text, "\x00\r") || !utf8.ValidString(k.Text) {
			return "CAST(X'" + strings.ToUpper(hex.EncodeToString([]byte(k.Text))) + "' AS TEXT)"
		}
		return quoteString(k.Text)
	case *command.Value_Blob:
		return "X'" + strings.ToUpper(hex.EncodeToString(k.Blob)) + "'"
	default:
		return "NULL"
	}
}

func quoteString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func quoteIdents(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quoteIdent(n)
	}
	return strings.Join(q, ",")
}
