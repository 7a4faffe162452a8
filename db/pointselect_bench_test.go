package db

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"rdb/command"
)

// pointSelectRows is the number of rows of the point-select benchmarks,
// each with a 100-byte value as `rdb bench` writes them.
const pointSelectRows = 10_000

// fillSQL fills t(id INTEGER PRIMARY KEY, v TEXT) with pointSelectRows
// rows of 100-byte values.
const fillSQL = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000)
INSERT INTO t(id, v) SELECT x, substr(hex(zeroblob(50)), 1, 100) FROM c`

// BenchmarkPointSelect is the reference of a hardware ratio of the
// performance notes (`none` point reads reach at least 70% of a local
// modernc point-SELECT rate per core the node uses): a SELECT by primary
// key on one goroutine, prepared, through database/sql and modernc's
// driver alone ("raw"), and through rdb's read path (DB.Query: the read
// pool, the statement cache, results as command.Result). The rate per core
// is 1e9 / ns/op.
func BenchmarkPointSelect(b *testing.B) {
	ctx := context.Background()
	b.Run("raw", func(b *testing.B) {
		conn, err := sql.Open("sqlite", filepath.Join(b.TempDir(), "raw.db")+"?_pragma=journal_mode(WAL)")
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		conn.SetMaxOpenConns(1)
		for _, q := range []string{"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)", fillSQL} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
		st, err := conn.PrepareContext(ctx, "SELECT v FROM t WHERE id = ?")
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		rng := rand.New(rand.NewPCG(1, 2))
		var v string
		b.ResetTimer()
		for range b.N {
			if err := st.QueryRowContext(ctx, 1+rng.IntN(pointSelectRows)).Scan(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("db.Query", func(b *testing.B) {
		d := openTest(b)
		mustApply(b, d, 1, execCmd(false, stmt(b, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"), stmt(b, fillSQL)))
		rng := rand.New(rand.NewPCG(1, 2))
		b.ResetTimer()
		for range b.N {
			res, err := d.Query(ctx, []*command.Statement{{Sql: "SELECT v FROM t WHERE id = ?",
				Parameters: []*command.Parameter{{Value: command.Integer(int64(1 + rng.IntN(pointSelectRows)))}}}})
			if err != nil {
				b.Fatal(err)
			}
			if len(res[0].GetRows()) != 1 {
				b.Fatalf("rows %v", res[0].GetRows())
			}
		}
	})
}
