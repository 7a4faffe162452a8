package db

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestZZBudgetTiming(t *testing.T) {
	d, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "db"), MaxApplySteps: 100_000_000})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)")))
	for i, q := range []string{
		"CREATE TABLE x AS WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c) SELECT i FROM c",
		"DELETE FROM t WHERE id IN (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c) SELECT i FROM c WHERE i < 0)",
		"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c) SELECT count(*) FROM c",
		"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT 1 FROM c) SELECT count(*) FROM c",
		"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT 1 FROM c) INSERT INTO t(v) SELECT i FROM c WHERE i=0",
	} {
		start := time.Now()
		res := mustApply(t, d, uint64(i+2), execCmd(false, stmt(t, q)))
		t.Logf("%d %v %q", i, time.Since(start), res[0].Error)
	}
}
