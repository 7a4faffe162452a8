package main

import "testing"

func TestClassify(t *testing.T) {
	tests := []struct {
		sql  string
		want route
	}{
		{"SELECT 1", routeQuery},
		{"select * from t", routeQuery},
		{"  -- comment\n /* more */ SELECT 1", routeQuery},
		{"VALUES (1), (2)", routeQuery},
		{"EXPLAIN QUERY PLAN SELECT 1", routeQuery},
		{"explain delete from t", routeQuery},
		{"PRAGMA table_info(t)", routeQuery},
		{"PRAGMA user_version", routeQuery},
		{"PRAGMA user_version = 3", routeExecute},
		{"WITH x AS (SELECT 1) SELECT * FROM x", routeQuery},
		{"WITH RECURSIVE c(n) AS (VALUES(1) UNION ALL SELECT n+1 FROM c WHERE n < 5) SELECT n FROM c", routeQuery},
		{"WITH x AS (SELECT 1 AS a) INSERT INTO t SELECT a FROM x", routeExecute},
		{"WITH x(a) AS MATERIALIZED (SELECT 1), y AS (SELECT 2) DELETE FROM t WHERE a IN (SELECT a FROM x)", routeExecute},
		{"with \"select\" as (select 1) update t set a = 1", routeExecute},
		{"INSERT INTO t VALUES (1)", routeExecute},
		{"UPDATE t SET a = 'SELECT'", routeExecute},
		{"DELETE FROM t", routeExecute},
		{"CREATE TABLE t (a)", routeExecute},
		{"REPLACE INTO t VALUES (1)", routeExecute},
		{"INSERT INTO t VALUES (1) RETURNING *", routeExecute},
		{"BEGIN", routeBegin},
		{"begin immediate transaction", routeBegin},
		{"COMMIT", routeCommit},
		{"END TRANSACTION", routeCommit},
		{"ROLLBACK", routeRollback},
		{"ROLLBACK TRANSACTION TO SAVEPOINT a", routeSavepoint},
		{"SAVEPOINT a", routeSavepoint},
		{"RELEASE a", routeSavepoint},
		{"", routeExecute},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			if got := classify(tt.sql); got != tt.want {
				t.Errorf("classify(%q) = %v, want %v", tt.sql, got, tt.want)
			}
		})
	}
}
