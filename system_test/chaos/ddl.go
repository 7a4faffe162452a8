package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"

	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// ddl is W5 and W6: schema changes under faults (CREATE TABLE, ALTER
// TABLE ADD COLUMN with a DEFAULT, CREATE INDEX) mixed with writes whose
// values come from non-deterministic SQL (random(), randomblob(),
// datetime('now'), AUTOINCREMENT, last_insert_rowid()). The checker is
// the replica hash (compared for every run) and, on every replica, no
// row with a NULL or wrong value in an added column.
type ddl struct {
	mu      sync.Mutex // guards columns
	columns []addedColumn
}

// addedColumn is a column whose ALTER TABLE was acknowledged.
type addedColumn struct {
	table, column string
	def           int
}

// Name implements workload.
func (d *ddl) Name() string { return "ddl" }

// Setup implements workload.
func (d *ddl) Setup(context.Context, *client.Client) error { return nil }

// Work implements workload. Each worker has its own tables.
func (d *ddl) Work(ctx context.Context, rc *RecordingClient, rng *rand.Rand) {
	var tables []string // created, acknowledged or unknown
	ncols := 0
	for ctx.Err() == nil {
		p := rng.IntN(100)
		var kind string
		var parts []stmtSpec
		var col addedColumn
		switch {
		case len(tables) == 0 || p < 3:
			t := fmt.Sprintf("ddl_%d_%d", rc.worker, len(tables)+1)
			tables = append(tables, t)
			kind = "create-table"
			parts = []stmtSpec{sq(fmt.Sprintf("CREATE TABLE %s (id INTEGER PRIMARY KEY AUTOINCREMENT, r INTEGER, ts TEXT, b BLOB)", t))}
		case p < 10:
			ncols++
			col = addedColumn{table: tables[rng.IntN(len(tables))], column: fmt.Sprintf("c%d", ncols), def: 7*ncols + 1}
			kind = "add-column"
			parts = []stmtSpec{sq(fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s INTEGER NOT NULL DEFAULT %d", col.table, col.column, col.def))}
		case p < 15:
			t := tables[rng.IntN(len(tables))]
			kind = "create-index"
			parts = []stmtSpec{sq(fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s_r ON %s (r)", t, t))}
		default:
			t := tables[rng.IntN(len(tables))]
			kind = "insert"
			parts = []stmtSpec{
				sq(fmt.Sprintf("INSERT INTO %s (r, ts, b) VALUES (random(), datetime('now'), randomblob(8))", t)),
				sq(fmt.Sprintf("UPDATE %s SET r = r / 2 WHERE id = last_insert_rowid()", t)),
			}
		}
		ss, err := stmts(parts...)
		if err != nil {
			return
		}
		_, op := rc.Execute(ctx, Op{Workload: d.Name(), Kind: kind, Input: parts[0].sql}, &rpcpb.ExecuteRequest{Statements: ss, Transaction: len(ss) > 1})
		if kind == "add-column" && op.Outcome == OK {
			d.mu.Lock()
			d.columns = append(d.columns, col)
			d.mu.Unlock()
		}
	}
}

// Check implements workload.
func (d *ddl) Check(env *checkEnv) verdict {
	var v verdict
	d.mu.Lock()
	cols := append([]addedColumn(nil), d.columns...)
	d.mu.Unlock()
	for _, op := range env.opsOf(d.Name()) {
		if op.Outcome == OK {
			v.Checked++
		}
	}
	for _, c := range cols {
		for _, n := range env.nodes {
			res, err := env.query(n, rpcpb.Consistency_CONSISTENCY_NONE,
				fmt.Sprintf("SELECT count(*) FROM %s WHERE %s IS NULL OR %s != %d", c.table, c.column, c.column, c.def))
			if err != nil {
				v.Anomalies = append(v.Anomalies, fmt.Sprintf("ddl: final read: %v", err))
				continue
			}
			if cnt, err := intCell(res.GetRows()[0].GetValues()[0]); err != nil || cnt != 0 {
				v.Anomalies = append(v.Anomalies, fmt.Sprintf("ddl: node %d: %s.%s has %d rows without its DEFAULT %d (%v)", n.id, c.table, c.column, cnt, c.def, err))
			}
		}
	}
	return v
}

var _ workload = (*ddl)(nil)
