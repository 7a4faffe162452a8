package db

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unsafe"

	sqlite3 "modernc.org/sqlite/lib"
)

// Dump writes the user schema and data as SQL text, like the sqlite3
// shell's .dump: PRAGMA foreign_keys=OFF and BEGIN TRANSACTION; each table's
// CREATE statement followed by one INSERT per row (rowids preserved, exact
// literals: integers as written, reals in shortest round-trip form that
// stays REAL, text in single quotes (doubled inside), blobs as X'hex', NULL); the
// sqlite_sequence and sqlite_stat1 contents; then indexes, triggers and
// views in creation order; COMMIT. The internal _rdb_* tables and SQLite's
// own objects are left out; virtual tables are written as CREATE VIRTUAL
// TABLE plus their rows (their shadow tables are not dumped).
//
// Everything is read in one read transaction on a reader, streamed row by
// row to w (memory does not grow with the database). Writes continue
// meanwhile; Install waits for Dump to end. ctx's end interrupts it. The
// output can be restored with RESTORE_FORMAT_SQL or by the sqlite3 shell.
func (d *DB) Dump(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	err := d.withReader(ctx, func(c *sconn) error {
		return inMode(c, authInternal, func() error {
			return readTx(c, func() error { return dumpDB(ctx, c, bw) })
		})
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("db: dump: %w", err)
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func dumpDB(ctx context.Context, c *sconn, w *bufio.Writer) error {
	kinds := map[string]string{} // table name -> table, view, shadow, virtual
	list, err := query(c, "PRAGMA main.table_list")
	if err != nil {
		return err
	}
	for _, r := range list {
		v := r.GetValues()
		if v[0].GetText() == "main" {
			kinds[v[1].GetText()] = v[2].GetText()
		}
	}
	schema, err := query(c, `SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid`)
	if err != nil {
		return err
	}
	if _, err := w.WriteString("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n"); err != nil {
		return err
	}
	hasSeq, hasStat := false, false
	for _, r := range schema {
		v := r.GetValues()
		typ, name, sql := v[0].GetText(), v[1].GetText(), v[3].GetText()
		if typ != "table" || isInternalName(name) {
			continue
		}
		switch lname := strings.ToLower(name); {
		case lname == "sqlite_sequence":
			hasSeq = true
			continue
		case lname == "sqlite_stat1":
			hasStat = true
			continue
		case strings.HasPrefix(lname, "sqlite_"):
			continue
		}
		if kinds[name] == "shadow" {
			continue
		}
		if _, err := fmt.Fprintf(w, "%s;\n", sql); err != nil {
			return err
		}
		if err := dumpRows(ctx, c, w, name, "", false); err != nil {
			return err
		}
	}
	if hasSeq {
		if _, err := w.WriteString("DELETE FROM sqlite_sequence;\n"); err != nil {
			return err
		}
		if err := dumpRows(ctx, c, w, "sqlite_sequence", "name NOT LIKE '\\_rdb\\_%' ESCAPE '\\'", true); err != nil {
			return err
		}
	}
	if hasStat {
		if _, err := w.WriteString("ANALYZE sqlite_schema;\n"); err != nil {
			return err
		}
		if err := dumpRows(ctx, c, w, "sqlite_stat1", "tbl NOT LIKE '\\_rdb\\_%' ESCAPE '\\'", true); err != nil {
			return err
		}
	}
	for _, r := range schema {
		v := r.GetValues()
		typ, name, tbl, sql := v[0].GetText(), v[1].GetText(), v[2].GetText(), v[3].GetText()
		if typ == "table" || isInternalName(name) || isInternalName(tbl) || kinds[tbl] == "shadow" {
			continue
		}
		if _, err := fmt.Fprintf(w, "%s;\n", sql); err != nil {
			return err
		}
	}
	_, err = w.WriteString("COMMIT;\n")
	return err
}

// dumpRows writes an INSERT for every row of table (matching where, if not
// empty). Generated and hidden columns are left out; the rowid is kept for
// rowid tables without an INTEGER PRIMARY KEY. With noRowid the rowid is
// never written (SQLite's own tables).
func dumpRows(ctx context.Context, c *sconn, w *bufio.Writer, table, where string, noRowid bool) error {
	qt := quoteIdent(table)
	info, err := query(c, "PRAGMA main.table_xinfo("+qt+")")
	if err != nil {
		return err
	}
	var cols []string
	used := map[string]bool{}
	var pk []string
	for _, r := range info {
		v := r.GetValues()
		name := v[1].GetText()
		used[strings.ToLower(name)] = true
		if v[5].GetInteger() > 0 {
			pk = append(pk, strings.ToUpper(strings.TrimSpace(v[2].GetText())))
		}
		if v[6].GetInteger() == 0 {
			cols = append(cols, quoteIdent(name))
		}
	}
	if len(cols) == 0 {
		return nil
	}
	rowid := ""
	if !noRowid && !(len(pk) == 1 && pk[0] == "INTEGER") {
		for _, cand := range []string{"rowid", "_rowid_", "oid"} {
			if !used[cand] {
				rowid = cand
				break
			}
		}
		if rowid != "" {
			// WITHOUT ROWID tables (and some virtual tables) have none.
			st, err := c.prepare("SELECT "+rowid+" FROM "+qt+" LIMIT 0", 0)
			c.finalize(st)
			if err != nil {
				rowid = ""
			}
		}
	}
	sel := cols
	if rowid != "" {
		sel = append([]string{rowid}, cols...)
	}
	sql := "SELECT " + strings.Join(sel, ", ") + " FROM " + qt
	if where != "" {
		sql += " WHERE " + where
	}
	if rowid != "" {
		sql += " ORDER BY " + rowid
	}
	st, err := c.prepare(sql, 0)
	if err != nil {
		return err
	}
	defer c.finalize(st)
	prefix := "INSERT INTO " + qt + "(" + strings.Join(sel, ",") + ") VALUES("
	n := int32(len(sel))
	var line []byte
	for i := 0; ; i++ {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rc := sqlite3.Xsqlite3_step(c.tls, st)
		if rc == sqlite3.SQLITE_DONE {
			return nil
		}
		if rc != sqlite3.SQLITE_ROW {
			return c.err(rc)
		}
		line = append(line[:0], prefix...)
		for col := range n {
			if col > 0 {
				line = append(line, ',')
			}
			line = appendLiteral(line, c, st, col)
		}
		line = append(line, ");\n"...)
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
}

// appendLiteral appends column col of the current row as a SQL literal that
// reads back as the same value and storage class.
func appendLiteral(b []byte, c *sconn, st uintptr, col int32) []byte {
	switch sqlite3.Xsqlite3_column_type(c.tls, st, col) {
	case sqlite3.SQLITE_INTEGER:
		return strconv.AppendInt(b, sqlite3.Xsqlite3_column_int64(c.tls, st, col), 10)
	case sqlite3.SQLITE_FLOAT:
		return appendReal(b, sqlite3.Xsqlite3_column_double(c.tls, st, col))
	case sqlite3.SQLITE_TEXT:
		p := sqlite3.Xsqlite3_column_text(c.tls, st, col)
		nb := int(sqlite3.Xsqlite3_column_bytes(c.tls, st, col))
		var s []byte
		if p != 0 && nb > 0 {
			s = unsafe.Slice((*byte)(cptr(p)), nb)
		}
		if bytes.IndexByte(s, 0) >= 0 {
			// A NUL cannot appear in a literal: write the bytes as a blob.
			b = append(b, "CAST(X'"...)
			b = hex.AppendEncode(b, s)
			return append(b, "' AS TEXT)"...)
		}
		b = append(b, '\'')
		for _, ch := range s {
			if ch == '\'' {
				b = append(b, '\'')
			}
			b = append(b, ch)
		}
		return append(b, '\'')
	case sqlite3.SQLITE_BLOB:
		p := sqlite3.Xsqlite3_column_blob(c.tls, st, col)
		nb := int(sqlite3.Xsqlite3_column_bytes(c.tls, st, col))
		b = append(b, "X'"...)
		if p != 0 && nb > 0 {
			b = hex.AppendEncode(b, unsafe.Slice((*byte)(cptr(p)), nb))
		}
		return append(b, '\'')
	default:
		return append(b, "NULL"...)
	}
}

// appendReal writes f so that SQLite reads back the same double as a REAL:
// the shortest round-trip form, with ".0" added when it would otherwise
// read as an integer; infinities as 1e999.
func appendReal(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "1e999"...)
	case math.IsInf(f, -1):
		return append(b, "-1e999"...)
	case math.IsNaN(f):
		return append(b, "NULL"...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if !bytes.ContainsAny(b[start:], ".e") {
		b = append(b, ".0"...)
	}
	return b
}
