package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// set is W3: inserts of unique values into a table without a uniqueness
// constraint, so a write applied twice shows as a duplicate. At the end,
// a strong read through every node and a local read of every replica
// must hold every acknowledged value once, no value whose insert
// certainly failed, and nothing never inserted.
type set struct {
	next atomic.Int64
}

// Name implements workload.
func (s *set) Name() string { return "set" }

// Setup implements workload.
func (s *set) Setup(ctx context.Context, cl *client.Client) error {
	return execSetup(ctx, cl, sq("CREATE TABLE IF NOT EXISTS sett (id INTEGER PRIMARY KEY AUTOINCREMENT, v INTEGER NOT NULL)"))
}

// Work implements workload.
func (s *set) Work(ctx context.Context, rc *RecordingClient, _ *rand.Rand) {
	for ctx.Err() == nil {
		v := s.next.Add(1)
		ss, err := stmts(sq("INSERT INTO sett (v) VALUES (?)", v))
		if err != nil {
			return
		}
		rc.Execute(ctx, Op{Workload: s.Name(), Kind: "insert", Value: v}, &rpcpb.ExecuteRequest{Statements: ss})
	}
}

// Check implements workload.
func (s *set) Check(env *checkEnv) verdict {
	var v verdict
	outcome := make(map[int64]Outcome)
	for _, op := range env.opsOf(s.Name()) {
		outcome[op.Value] = op.Outcome
	}
	v.Checked = len(outcome)
	for _, n := range env.nodes {
		for _, level := range []rpcpb.Consistency{rpcpb.Consistency_CONSISTENCY_STRONG, rpcpb.Consistency_CONSISTENCY_NONE} {
			res, err := env.query(n, level, "SELECT v FROM sett")
			if err != nil {
				v.Anomalies = append(v.Anomalies, fmt.Sprintf("set: final read: %v", err))
				continue
			}
			where := fmt.Sprintf("%s read via node %d", levelName(level), n.id)
			v.Anomalies = append(v.Anomalies, judgeSet(res.GetRows(), outcome, where)...)
		}
	}
	return v
}

// judgeSet compares the rows of a final read with the inserts' outcomes.
func judgeSet(rows []*command.Row, outcome map[int64]Outcome, where string) []string {
	var out []string
	seen := make(map[int64]int)
	for _, row := range rows {
		x, err := intCell(row.GetValues()[0])
		if err != nil {
			out = append(out, fmt.Sprintf("set (%s): %v", where, err))
			continue
		}
		seen[x]++
	}
	var lost, dup, failed, foreign []int64
	for x, o := range outcome {
		if o == OK && seen[x] == 0 {
			lost = append(lost, x)
		}
		if o == Failed && seen[x] > 0 {
			failed = append(failed, x)
		}
	}
	for x, c := range seen {
		if c > 1 {
			dup = append(dup, x)
		}
		if _, ok := outcome[x]; !ok {
			foreign = append(foreign, x)
		}
	}
	report := func(what string, xs []int64) {
		if len(xs) > 0 {
			out = append(out, fmt.Sprintf("set (%s): %d %s, e.g. %v", where, len(xs), what, xs[:min(len(xs), 10)]))
		}
	}
	report("acknowledged inserts lost", lost)
	report("values present more than once", dup)
	report("definitely failed inserts present", failed)
	report("values never inserted present", foreign)
	return out
}

var _ workload = (*set)(nil)
