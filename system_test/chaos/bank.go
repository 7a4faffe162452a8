package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

// Bank workload (W2) settings.
const (
	bankAccounts = 8
	bankInitial  = 100
	bankTotal    = bankAccounts * bankInitial
)

// bank is W2: transfers between 8 accounts that start at 100 each. A
// transfer is one transactional request of two statements: the debit
// happens only if the balance covers it, and the credit only if the debit
// changed a row (changes() is the row count of the previous statement of
// the same entry), so both happen or neither. Every read at every level
// must see 8 accounts summing to 800, none negative.
type bank struct {
	found anomalies
}

// Name implements workload.
func (b *bank) Name() string { return "bank" }

// Setup implements workload.
func (b *bank) Setup(ctx context.Context, cl *client.Client) error {
	parts := []stmtSpec{sq("CREATE TABLE IF NOT EXISTS acct (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL)")}
	for i := 1; i <= bankAccounts; i++ {
		parts = append(parts, sq("INSERT OR IGNORE INTO acct (id, bal) VALUES (?, ?)", i, bankInitial))
	}
	return execSetup(ctx, cl, parts...)
}

// Work implements workload.
func (b *bank) Work(ctx context.Context, rc *RecordingClient, rng *rand.Rand) {
	for ctx.Err() == nil {
		if rng.IntN(2) == 0 {
			from := 1 + rng.IntN(bankAccounts)
			to := 1 + (from+rng.IntN(bankAccounts-1))%bankAccounts
			amt := 1 + rng.IntN(60)
			ss, err := stmts(
				sq("UPDATE acct SET bal = bal - ? WHERE id = ? AND bal >= ?", amt, from, amt),
				sq("UPDATE acct SET bal = bal + ? WHERE id = ? AND changes() = 1", amt, to),
			)
			if err != nil {
				return
			}
			rc.Execute(ctx, Op{Workload: b.Name(), Kind: "transfer", Input: fmt.Sprintf("%d->%d %d", from, to, amt)},
				&rpcpb.ExecuteRequest{Statements: ss, Transaction: true})
			continue
		}
		ss, err := stmts(sq("SELECT id, bal FROM acct ORDER BY id"))
		if err != nil {
			return
		}
		req := &rpcpb.QueryRequest{Statements: ss, Consistency: randomLevel(rng)}
		_, op, derr := rc.Query(ctx, Op{Workload: b.Name(), Kind: "read"}, req, decodeBank)
		if derr != nil {
			b.found.add("bank: %s read on node %d at index %d: %v", op.Level, op.Node, op.Index, derr)
		}
	}
}

// decodeBank checks the invariant on a read's rows.
func decodeBank(resp *rpcpb.QueryResponse, op *Op) error {
	return bankInvariant(resp.GetResults()[0], op)
}

func bankInvariant(res *command.Result, op *Op) error {
	var sum int64
	var bals []string
	var bad []string
	for _, row := range res.GetRows() {
		bal, err := intCell(row.GetValues()[1])
		if err != nil {
			return err
		}
		sum += bal
		bals = append(bals, fmt.Sprint(bal))
		if bal < 0 {
			bad = append(bad, fmt.Sprintf("negative balance %d", bal))
		}
	}
	op.Output = strings.Join(bals, " ")
	if n := len(res.GetRows()); n != bankAccounts {
		bad = append(bad, fmt.Sprintf("%d accounts", n))
	}
	if sum != bankTotal {
		bad = append(bad, fmt.Sprintf("sum %d", sum))
	}
	if len(bad) > 0 {
		return fmt.Errorf("invariant broken (%s): balances %s", strings.Join(bad, ", "), op.Output)
	}
	return nil
}

// Check implements workload: the invariant on every read (checked as
// they happened) and on every node's copy now.
func (b *bank) Check(env *checkEnv) verdict {
	v := verdict{Anomalies: b.found.get()}
	for _, op := range env.opsOf(b.Name()) {
		if op.Kind == "read" && op.Outcome == OK {
			v.Checked++
		}
	}
	for _, n := range env.nodes {
		res, err := env.query(n, rpcpb.Consistency_CONSISTENCY_NONE, "SELECT id, bal FROM acct ORDER BY id")
		if err != nil {
			v.Anomalies = append(v.Anomalies, fmt.Sprintf("bank: final read: %v", err))
			continue
		}
		var op Op
		if err := bankInvariant(res, &op); err != nil {
			v.Anomalies = append(v.Anomalies, fmt.Sprintf("bank: final read on node %d: %v", n.id, err))
		}
		v.Checked++
	}
	return v
}

var _ workload = (*bank)(nil)
