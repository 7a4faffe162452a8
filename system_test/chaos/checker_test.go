package chaos

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"rdb/command"
)

func regOp(kind, level string, key, value int64, call, ret int64, outcome Outcome) Op {
	return Op{Workload: "register", Kind: kind, Level: level, Key: key, Value: value, Call: call, Return: ret, Outcome: outcome}
}

func checkRegister(t *testing.T, ops []Op) verdict {
	t.Helper()
	env := &checkEnv{ctx: context.Background(), ops: ops, dir: t.TempDir(), log: slog.New(slog.DiscardHandler)}
	return newRegister().Check(env)
}

func TestRegisterCheck(t *testing.T) {
	t.Run("stale linearizable read is illegal", func(t *testing.T) {
		v := checkRegister(t, []Op{
			regOp("write", "", 1, 1, 0, 10, OK),
			regOp("write", "", 1, 2, 20, 30, OK),
			regOp("read", "linearizable", 1, 1, 40, 50, OK),
		})
		if len(v.Anomalies) != 1 || !strings.Contains(v.Anomalies[0], "Illegal") {
			t.Fatalf("anomalies = %q, want one Illegal", v.Anomalies)
		}
	})
	t.Run("unknown write may take effect late", func(t *testing.T) {
		v := checkRegister(t, []Op{
			regOp("write", "", 1, 1, 0, math.MaxInt64, Unknown),
			regOp("read", "strong", 1, 0, 10, 20, OK),
			regOp("read", "linearizable", 1, 1, 30, 40, OK),
		})
		if len(v.Anomalies) != 0 || v.Checked != 3 {
			t.Fatalf("verdict = %+v, want 3 checked, no anomalies", v)
		}
	})
	t.Run("failed write must not be read", func(t *testing.T) {
		v := checkRegister(t, []Op{
			regOp("write", "", 1, 5, 0, 10, Failed),
			regOp("read", "none", 1, 5, 30, 40, OK),
			regOp("read", "linearizable", 1, 5, 30, 40, OK),
		})
		if len(v.Anomalies) != 2 {
			t.Fatalf("anomalies = %q, want the none read and porcupine", v.Anomalies)
		}
	})
	t.Run("stale weak read is not a porcupine failure", func(t *testing.T) {
		v := checkRegister(t, []Op{
			regOp("write", "", 1, 1, 0, 10, OK),
			regOp("write", "", 1, 2, 20, 30, OK),
			regOp("read", "weak", 1, 1, 40, 50, OK),
		})
		if len(v.Anomalies) != 0 {
			t.Fatalf("anomalies = %q, want none", v.Anomalies)
		}
	})
}

func TestRegisterCheck_visualization(t *testing.T) {
	dir := t.TempDir()
	env := &checkEnv{ctx: context.Background(), dir: dir, log: slog.New(slog.DiscardHandler), ops: []Op{
		regOp("write", "", 3, 1, 0, 10, OK),
		regOp("read", "strong", 3, 7, 20, 30, OK),
	}}
	if v := newRegister().Check(env); len(v.Anomalies) != 1 {
		t.Fatalf("anomalies = %q", v.Anomalies)
	}
	if _, err := os.Stat(filepath.Join(dir, "register-key-3.html")); err != nil {
		t.Fatalf("visualization: %v", err)
	}
}

func rows(vals ...int64) []*command.Row {
	var out []*command.Row
	for _, v := range vals {
		out = append(out, &command.Row{Values: []*command.Value{command.Integer(v)}})
	}
	return out
}

func TestJudgeSet(t *testing.T) {
	outcome := map[int64]Outcome{1: OK, 2: OK, 3: Failed, 4: Unknown}
	if got := judgeSet(rows(1, 2, 4), outcome, "t"); len(got) != 0 {
		t.Fatalf("clean set: %q", got)
	}
	if got := judgeSet(rows(1, 2), outcome, "t"); len(got) != 0 {
		t.Fatalf("unknown absent: %q", got)
	}
	got := strings.Join(judgeSet(rows(1, 1, 3, 9), outcome, "t"), "\n")
	for _, want := range []string{"acknowledged inserts lost", "more than once", "definitely failed", "never inserted"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in %s", want, got)
		}
	}
}

func TestBankInvariant(t *testing.T) {
	mk := func(bals ...int64) *command.Result {
		res := &command.Result{}
		for i, b := range bals {
			res.Rows = append(res.Rows, &command.Row{Values: []*command.Value{command.Integer(int64(i + 1)), command.Integer(b)}})
		}
		return res
	}
	for name, tc := range map[string]struct {
		res  *command.Result
		want bool
	}{
		"ok":       {mk(100, 100, 100, 100, 100, 100, 100, 100), true},
		"moved":    {mk(150, 50, 100, 100, 100, 100, 100, 100), true},
		"lost":     {mk(100, 100, 100, 100, 100, 100, 100, 99), false},
		"negative": {mk(-10, 110, 100, 100, 100, 100, 100, 100), false},
		"missing":  {mk(200, 100, 100, 100, 100, 100, 100), false},
	} {
		t.Run(name, func(t *testing.T) {
			var op Op
			if err := bankInvariant(tc.res, &op); (err == nil) != tc.want {
				t.Fatalf("bankInvariant = %v, want ok=%v", err, tc.want)
			}
		})
	}
}

func TestParseScenarios(t *testing.T) {
	got, err := ParseScenarios("kill,pause-leader")
	want := []Scenario{KillLeader, KillFollower, KillAll, FailpointCrash, PowerCut, PauseLeader}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ParseScenarios = %v, %v; want %v", got, err, want)
	}
	all, err := ParseScenarios("all")
	if err != nil || len(all) != len(Scenarios)-1 {
		t.Fatalf("all = %v, %v; want every scenario but none", all, err)
	}
	if _, err := ParseScenarios("bogus"); err == nil {
		t.Fatal("bogus scenario accepted")
	}
}

func regLogRows(pairs ...int64) []*command.Row {
	var out []*command.Row
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, &command.Row{Values: []*command.Value{command.Integer(pairs[i]), command.Integer(pairs[i+1])}})
	}
	return out
}

func TestJudgeRegisterLog(t *testing.T) {
	ops := []Op{
		regOp("write", "", 1, 1, 0, 10, OK),
		regOp("write", "", 1, 2, 20, 30, Failed),
		regOp("write", "", 2, 3, 40, math.MaxInt64, Unknown),
		regOp("write", "", 2, 4, 50, math.MaxInt64, Unknown),
		regOp("read", "strong", 1, 1, 60, 70, OK),
	}
	committed, anomalies, in, out := judgeRegisterLog(regLogRows(1, 1, 3, 2), ops)
	if len(anomalies) != 0 || !committed[1] || !committed[3] || committed[4] || in != 1 || out != 1 {
		t.Fatalf("clean log: committed %v anomalies %q unknown in/out %d/%d", committed, anomalies, in, out)
	}
	_, anomalies, _, _ = judgeRegisterLog(regLogRows(2, 1, 3, 2, 3, 2, 9, 1, 4, 1), ops)
	got := strings.Join(anomalies, "\n")
	for _, want := range []string{"acknowledged writes missing", "definitely failed writes", "more than once", "never written", "under another key"} {
		if !strings.Contains(got, want) {
			t.Errorf("anomalies %q lack %q", got, want)
		}
	}
}

// An unknown write that the log shows never applied cannot explain a
// read of its value: resolution makes the checker stricter.
func TestRegisterCheck_unknownResolved(t *testing.T) {
	ops := []Op{
		regOp("write", "", 1, 1, 0, 10, OK),
		regOp("write", "", 1, 2, 20, math.MaxInt64, Unknown),
		regOp("read", "strong", 1, 2, 40, 50, OK),
	}
	env := &checkEnv{ctx: context.Background(), ops: ops, dir: t.TempDir(), log: slog.New(slog.DiscardHandler)}
	if v := newRegister().judge(env, ops, nil); len(v.Anomalies) != 0 {
		t.Fatalf("unresolved: anomalies %q, want none", v.Anomalies)
	}
	if v := newRegister().judge(env, ops, map[int64]bool{1: true, 2: true}); len(v.Anomalies) != 0 {
		t.Fatalf("took effect: anomalies %q, want none", v.Anomalies)
	}
	if v := newRegister().judge(env, ops, map[int64]bool{1: true}); len(v.Anomalies) == 0 {
		t.Fatal("never applied: no anomaly for a strong read of its value")
	}
}
