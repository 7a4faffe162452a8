package main

import (
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/mattn/go-runewidth"

	"rdb/command"
)

// outputMode is an output format of the shell (.mode, --format).
type outputMode int

const (
	modeTable outputMode = iota
	modeCSV
	modeJSON
	modeLine
)

var modeNames = []string{"table", "csv", "json", "line"}

func (m outputMode) String() string { return modeNames[m] }

func parseMode(s string) (outputMode, error) {
	for i, n := range modeNames {
		if strings.EqualFold(s, n) {
			return outputMode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown mode %q (want one of %s)", s, strings.Join(modeNames, ", "))
}

// printer renders results in one output mode. Its fields are the shell's
// .mode, .headers and .nullvalue settings.
type printer struct {
	mode      outputMode
	headers   bool
	nullValue string
}

// result prints the result of one statement. Results with columns
// (queries, RETURNING) print as rows; others print as a write summary in
// JSON mode, and as the changes line when changes is set, or not at all
// (as in sqlite3).
func (p *printer) result(w io.Writer, r *command.Result, raftIndex uint64, changes bool) error {
	if len(r.GetColumns()) > 0 {
		return p.rows(w, r)
	}
	if p.mode == modeJSON {
		_, err := fmt.Fprintf(w, `{"rows_affected":%d,"last_insert_id":%d,"raft_index":%d}`+"\n",
			r.GetRowsAffected(), r.GetLastInsertId(), raftIndex)
		return err
	}
	if changes {
		noun := "rows"
		if r.GetRowsAffected() == 1 {
			noun = "row"
		}
		_, err := fmt.Fprintf(w, "%d %s affected, last insert id %d, raft index %d\n",
			r.GetRowsAffected(), noun, r.GetLastInsertId(), raftIndex)
		return err
	}
	return nil
}

// errorJSON prints an error in JSON mode's form.
func errorJSON(w io.Writer, msg string) error {
	b, _ := json.Marshal(msg) // a string always marshals
	_, err := fmt.Fprintf(w, "{\"error\":%s}\n", b)
	return err
}

// rows prints a result that has columns.
func (p *printer) rows(w io.Writer, r *command.Result) error {
	switch p.mode {
	case modeCSV:
		return p.csv(w, r)
	case modeJSON:
		return jsonRows(w, r)
	case modeLine:
		return p.line(w, r)
	default:
		return p.table(w, r)
	}
}

// text renders a value for the table, csv and line modes: integers exactly,
// reals in their shortest round-trip form, BLOBs as X'hex', NULL as the
// null value.
func (p *printer) text(v *command.Value) string {
	switch k := v.GetKind().(type) {
	case *command.Value_Integer:
		return strconv.FormatInt(k.Integer, 10)
	case *command.Value_Real:
		return formatReal(k.Real)
	case *command.Value_Text:
		return k.Text
	case *command.Value_Blob:
		return "X'" + strings.ToUpper(hex.EncodeToString(k.Blob)) + "'"
	default:
		return p.nullValue
	}
}

// formatReal formats f in the shortest form that reads back as the same
// float64, always with a '.' or an exponent so it reads back as a REAL
// rather than an INTEGER. Infinities use SQLite's spelling.
func formatReal(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

func isNumeric(v *command.Value) bool {
	switch v.GetKind().(type) {
	case *command.Value_Integer, *command.Value_Real:
		return true
	}
	return false
}

func (p *printer) csv(w io.Writer, r *command.Result) error {
	cw := csv.NewWriter(w)
	if p.headers {
		if err := cw.Write(r.GetColumns()); err != nil {
			return err
		}
	}
	rec := make([]string, len(r.GetColumns()))
	for _, row := range r.GetRows() {
		for i := range rec {
			rec[i] = p.text(cell(row, i))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// cell returns value i of row, NULL if the row is short.
func cell(row *command.Row, i int) *command.Value {
	if vs := row.GetValues(); i < len(vs) {
		return vs[i]
	}
	return nil
}

// jsonRows prints {"columns":[...],"types":[...],"rows":[[...],...]} on
// one line. Integers are printed exactly, reals in shortest round-trip
// form (non-finite reals as null), BLOBs as base64 strings.
func jsonRows(w io.Writer, r *command.Result) error {
	var b strings.Builder
	b.WriteString(`{"columns":`)
	writeJSONStrings(&b, r.GetColumns())
	b.WriteString(`,"types":`)
	types := r.GetTypes()
	if len(types) < len(r.GetColumns()) {
		types = append(append([]string(nil), types...), make([]string, len(r.GetColumns())-len(types))...)
	}
	writeJSONStrings(&b, types)
	b.WriteString(`,"rows":[`)
	for i, row := range r.GetRows() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		for j := range r.GetColumns() {
			if j > 0 {
				b.WriteByte(',')
			}
			writeJSONValue(&b, cell(row, j))
		}
		b.WriteByte(']')
	}
	b.WriteString("]}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeJSONStrings(b *strings.Builder, ss []string) {
	if ss == nil {
		ss = []string{}
	}
	out, _ := json.Marshal(ss) // strings always marshal
	b.Write(out)
}

func writeJSONValue(b *strings.Builder, v *command.Value) {
	switch k := v.GetKind().(type) {
	case *command.Value_Integer:
		b.WriteString(strconv.FormatInt(k.Integer, 10))
	case *command.Value_Real:
		if math.IsInf(k.Real, 0) || math.IsNaN(k.Real) {
			b.WriteString("null")
			return
		}
		b.WriteString(formatReal(k.Real))
	case *command.Value_Text:
		out, _ := json.Marshal(k.Text)
		b.Write(out)
	case *command.Value_Blob:
		b.WriteByte('"')
		b.WriteString(base64.StdEncoding.EncodeToString(k.Blob))
		b.WriteByte('"')
	default:
		b.WriteString("null")
	}
}

// line prints each row as "column = value" lines, names right-aligned,
// with a blank line between rows, like sqlite3's line mode.
func (p *printer) line(w io.Writer, r *command.Result) error {
	width := 0
	for _, c := range r.GetColumns() {
		width = max(width, runewidth.StringWidth(c))
	}
	var b strings.Builder
	for i, row := range r.GetRows() {
		if i > 0 {
			b.WriteByte('\n')
		}
		for j, c := range r.GetColumns() {
			b.WriteString(strings.Repeat(" ", width-runewidth.StringWidth(c)))
			b.WriteString(c)
			b.WriteString(" = ")
			b.WriteString(p.text(cell(row, j)))
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// table prints rows in an ASCII box:
//
//	+----+-------+
//	| id | name  |
//	+----+-------+
//	|  1 | alice |
//	+----+-------+
//
// Numbers are right-aligned, everything else left-aligned; a cell with
// newlines spans several lines. A result with no rows prints nothing, as
// in sqlite3.
func (p *printer) table(w io.Writer, r *command.Result) error {
	cols := r.GetColumns()
	if len(r.GetRows()) == 0 {
		return nil
	}
	widths := make([]int, len(cols))
	if p.headers {
		for i, c := range cols {
			widths[i] = cellWidth(cellLines(c))
		}
	}
	cells := make([][][]string, len(r.GetRows()))
	right := make([][]bool, len(r.GetRows()))
	for i, row := range r.GetRows() {
		cells[i] = make([][]string, len(cols))
		right[i] = make([]bool, len(cols))
		for j := range cols {
			v := cell(row, j)
			cells[i][j] = cellLines(p.text(v))
			right[i][j] = isNumeric(v)
			widths[j] = max(widths[j], cellWidth(cells[i][j]))
		}
	}
	var b strings.Builder
	sep := func() {
		b.WriteByte('+')
		for _, wd := range widths {
			b.WriteString(strings.Repeat("-", wd+2))
			b.WriteByte('+')
		}
		b.WriteByte('\n')
	}
	writeRow := func(cs [][]string, right []bool) {
		height := 1
		for _, c := range cs {
			height = max(height, len(c))
		}
		for l := 0; l < height; l++ {
			b.WriteByte('|')
			for j, c := range cs {
				s := ""
				if l < len(c) {
					s = c[l]
				}
				pad := strings.Repeat(" ", widths[j]-runewidth.StringWidth(s))
				b.WriteByte(' ')
				if right != nil && right[j] {
					b.WriteString(pad + s)
				} else {
					b.WriteString(s + pad)
				}
				b.WriteString(" |")
			}
			b.WriteByte('\n')
		}
	}
	sep()
	if p.headers {
		hs := make([][]string, len(cols))
		for i, c := range cols {
			hs[i] = cellLines(c)
		}
		writeRow(hs, nil)
		sep()
	}
	for i := range cells {
		writeRow(cells[i], right[i])
	}
	sep()
	_, err := io.WriteString(w, b.String())
	return err
}

// cellLines splits a cell's text into display lines, with tabs expanded
// and carriage returns dropped so they cannot break the box.
func cellLines(s string) []string {
	s = strings.ReplaceAll(s, "\r", "")
	s = strings.ReplaceAll(s, "\t", "    ")
	return strings.Split(s, "\n")
}

func cellWidth(lines []string) int {
	w := 0
	for _, l := range lines {
		w = max(w, runewidth.StringWidth(l))
	}
	return w
}
