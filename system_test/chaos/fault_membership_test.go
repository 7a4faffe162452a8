package chaos

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestMembershipCheck_QuorumlessWindow checks that quorum operations
// acknowledged inside a quorum-less cut (after the grace period) are
// reported, and that reads at weak levels, failed or unknown operations
// and acknowledgements inside the grace period are not.
func TestMembershipCheck_QuorumlessWindow(t *testing.T) {
	sec := int64(time.Second)
	m := &membership{windows: []window{{from: 10 * sec, to: 20 * sec, what: "cut"}}}
	ok := []Op{
		{Kind: "write", Outcome: OK, Return: 11 * sec},                             // within the grace period
		{Kind: "read", Level: "none", Outcome: OK, Return: 15 * sec},               // local read
		{Kind: "read", Level: "weak", Outcome: OK, Return: 15 * sec},               // leader-local read
		{Kind: "write", Outcome: Failed, Return: 15 * sec},                         // refused
		{Kind: "write", Outcome: Unknown, Return: math.MaxInt64},                   // unknown
		{Kind: "write", Outcome: OK, Return: 21 * sec},                             // after the heal
		{Kind: "read", Level: "linearizable", Outcome: OK, Return: 9 * sec},        // before the cut
		{Kind: "read", Level: "strong", Outcome: OK, Return: 20*sec + 1},           // after the heal
		{Kind: "transfer", Workload: "bank", Outcome: Failed, Return: 13 * sec},    // refused
		{Kind: "insert", Workload: "set", Outcome: Unknown, Return: math.MaxInt64}, // unknown
	}
	if got := m.check(ok); len(got) != 0 {
		t.Fatalf("anomalies for allowed operations: %v", got)
	}
	bad := append(ok, Op{Workload: "register", Kind: "read", Level: "linearizable", Key: 3, Outcome: OK, Return: 15 * sec})
	got := m.check(bad)
	if len(got) != 1 || !strings.Contains(got[0], "1 quorum operations acknowledged during cut") {
		t.Fatalf("check = %v, want one anomaly for the linearizable read", got)
	}
	var nilM *membership
	if got := nilM.check(bad); got != nil {
		t.Fatalf("nil membership reported %v", got)
	}
}

// TestMembershipJoinArgv checks that a joiner's command line drops
// --initial-cluster and adds --join (and --learner).
func TestMembershipJoinArgv(t *testing.T) {
	m := &membership{baseArgv: map[int][]string{2: {"ip", "netns", "exec", "ns2", "rdb", "serve", "--id", "2", "--initial-cluster", "1=a,2=b", "--tick", "10ms"}}}
	got := strings.Join(m.joinArgv(2, []string{"x:1", "y:1"}, true), " ")
	want := "ip netns exec ns2 rdb serve --id 2 --tick 10ms --join x:1,y:1 --learner"
	if got != want {
		t.Fatalf("joinArgv = %q, want %q", got, want)
	}
}
