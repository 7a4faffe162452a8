package db

import (
	"context"
	"fmt"
	"testing"
	"strings"

	"rdb/command"
)

func TestZZExplore(t *testing.T) {
	d := openTest(t)
	mustApply(t, d, 1, execCmd(false, stmt(t, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)")))
	ctx := context.Background()
	idx := uint64(2)
	for _, q := range append(strings.Split(sqls, "\n"), extra()...) {
		if q == "" { continue }
		q = strings.ReplaceAll(q, `\0`, "\x00")
		q = strings.ReplaceAll(q, `\f`, "\f")
		s := &command.Statement{Sql: q}
		cw := d.CheckWrite(ctx, []*command.Statement{s})
		ro, roErr := d.ReadOnly(ctx, []*command.Statement{s})
		_, qErr := d.Query(ctx, []*command.Statement{s})
		ap := "-"
		if cw == nil {
			res, err := d.Apply(ctx, Entry{Index: idx, Command: execCmd(false, s), WantResults: true})
			idx++
			if err != nil { ap = "FATAL " + err.Error() } else if res[0].Error != "" { ap = "ERR " + res[0].Error } else { ap = fmt.Sprintf("OK rows=%d", len(res[0].Rows)) }
		}
		fmt.Printf("%-.100q\n   CW=%v\n   RO=%v %v\n   Q=%v\n   AP=%s\n", q, cw, ro, roErr, qErr, ap)
	}
}


func extra() []string {
	r := strings.Repeat
	return []string{
		"SELECT " + r("(", 200) + "1" + r(")", 200),
		"SELECT " + r("(", 100000) + "1" + r(")", 100000),
		"SELECT 1" + r(" + 1", 100000),
		"SELECT " + r("-", 100000) + "1",
		"SELECT " + r("(SELECT ", 200) + "1" + r(")", 200),
		"SELECT " + r("CASE WHEN 1 THEN ", 300) + "1" + r(" END", 300),
		"SELECT 1" + r(" UNION ALL SELECT 1", 1000),
		"SELECT json('" + r("[", 3000) + r("]", 3000) + "')",
		"SELECT 'a' LIKE '" + r("%a", 1000) + "'",
		"SELECT printf('%999999999d', 1)",
		"SELECT 1 FROM " + strings.TrimSuffix(r("t, ", 70), ", "),
		"CREATE TEMP TRIGGER ttr AFTER INSERT ON t BEGIN SELECT 1; END",
		"CREATE TEMP VIEW tv AS SELECT 1",
		"SELECT * FROM temp.sqlite_master",
		"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c LIMIT 100000000) SELECT count(*) FROM c",
	}
}
const sqls = "CREATE TEMP TABLE tt(a)"
