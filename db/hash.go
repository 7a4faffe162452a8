package db

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"math"
	"strings"

	sqlite3 "modernc.org/sqlite/lib"

	"rdb/command"
)

// Hash returns a hex SHA-256 of the schema (sqlite_schema rows, sorted) and
// of every table's rows in rowid (or primary key) order with their exact
// storage classes. Replicas with equal data have equal hashes. The applied
// index is not part of it; the member table is. Hash reads one consistent
// snapshot, streams rows (memory does not grow with the database) and is
// safe for concurrent use.
func (d *DB) Hash(ctx context.Context) (string, error) {
	h, _, err := d.HashAt(ctx)
	return h, err
}

// HashAt is Hash, also returning the applied index of the snapshot it
// hashed, so that replicas can be compared while writes continue.
func (d *DB) HashAt(ctx context.Context) (string, uint64, error) {
	h := sha256.New()
	var applied uint64
	err := d.withReader(ctx, func(c *sconn) error {
		return inMode(c, authInternal, func() error {
			return readTx(c, func() error {
				rows, err := query(c, sqlGetApplied)
				if err != nil {
					return err
				}
				if len(rows) > 0 {
					applied = uint64(rows[0].GetValues()[0].GetInteger())
				}
				return hashDB(c, h)
			})
		})
	})
	if err != nil {
		return "", 0, fmt.Errorf("db: hash: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), applied, nil
}

func hashDB(c *sconn, h hash.Hash) error {
	schema, err := query(c, `SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE tbl_name NOT IN ('_rdb_applied', '_rdb_restore_chunks') ORDER BY type, name`)
	if err != nil {
		return err
	}
	var tables []string
	for _, r := range schema {
		hashRow(h, 'S', r)
		v := r.GetValues()
		sql := v[3].GetText()
		if v[0].GetText() == "table" && !strings.HasPrefix(v[1].GetText(), "sqlite_") &&
			!strings.HasPrefix(strings.ToUpper(sql), "CREATE VIRTUAL") {
			tables = append(tables, v[1].GetText())
		}
	}
	for _, t := range tables {
		q := `"` + strings.ReplaceAll(t, `"`, `""`) + `"`
		h.Write([]byte{'T'})
		writeStr(h, t)
		hashOne := func(r *command.Row) { hashRow(h, 'R', r) }
		if err := each(c, "SELECT * FROM "+q+" ORDER BY rowid", hashOne); err != nil {
			// WITHOUT ROWID: a full scan visits the primary key in order.
			if err := each(c, "SELECT * FROM "+q, hashOne); err != nil {
				return err
			}
		}
	}
	return nil
}

func query(c *sconn, sql string) ([]*command.Row, error) {
	st, err := c.prepare(sql, 0)
	if err != nil {
		return nil, err
	}
	defer c.finalize(st)
	res, err := c.run(st, true)
	if err != nil {
		return nil, err
	}
	return res.Rows, nil
}

// each runs sql and calls fn for every row, one at a time.
func each(c *sconn, sql string, fn func(*command.Row)) error {
	st, err := c.prepare(sql, 0)
	if err != nil {
		return err
	}
	defer c.finalize(st)
	var res command.Result
	n := c.columns(st, &res)
	for {
		rc := sqlite3.Xsqlite3_step(c.tls, st)
		if rc == sqlite3.SQLITE_ROW {
			fn(c.row(st, n))
			continue
		}
		if rc != sqlite3.SQLITE_DONE {
			return c.err(rc)
		}
		return nil
	}
}

func writeStr(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

func hashRow(h hash.Hash, tag byte, r *command.Row) {
	var b [9]byte
	b[0] = tag
	binary.BigEndian.PutUint64(b[1:], uint64(len(r.GetValues())))
	h.Write(b[:])
	for _, v := range r.GetValues() {
		switch k := v.GetKind().(type) {
		case *command.Value_Integer:
			b[0] = sqlite3.SQLITE_INTEGER
			binary.BigEndian.PutUint64(b[1:], uint64(k.Integer))
			h.Write(b[:])
		case *command.Value_Real:
			b[0] = sqlite3.SQLITE_FLOAT
			binary.BigEndian.PutUint64(b[1:], math.Float64bits(k.Real))
			h.Write(b[:])
		case *command.Value_Text:
			h.Write([]byte{sqlite3.SQLITE_TEXT})
			writeStr(h, k.Text)
		case *command.Value_Blob:
			h.Write([]byte{sqlite3.SQLITE_BLOB})
			writeStr(h, string(k.Blob))
		default:
			h.Write([]byte{sqlite3.SQLITE_NULL})
		}
	}
}
