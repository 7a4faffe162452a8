//go:build failpoints

package failpoint

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	terms, err := parse("raftBeforeSave=panic, applyAfterCommit=sleep(5ms)@3+\nx=kill@2;y=off")
	if err != nil {
		t.Fatal(err)
	}
	if len(terms) != 3 {
		t.Fatalf("got %d terms, want 3", len(terms))
	}
	if a := terms["applyAfterCommit"]; a.action != "sleep" || a.sleep != 5*time.Millisecond || a.at != 3 || !a.onward {
		t.Fatalf("applyAfterCommit parsed as %+v", a)
	}
	for _, bad := range []string{"x", "x=boom", "x=panic@0", "x=sleep(zz)"} {
		if _, err := parse(bad); err == nil {
			t.Errorf("parse(%q): no error", bad)
		}
	}
}

func TestInject_SleepFromFileOnNthHit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fp")
	if err := os.WriteFile(path, []byte("p=sleep(30ms)@2"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvFile, path)
	took := func() time.Duration { s := time.Now(); Inject("p"); return time.Since(s) }
	if d := took(); d > 20*time.Millisecond {
		t.Fatalf("hit 1 slept %s", d)
	}
	if d := took(); d < 30*time.Millisecond {
		t.Fatalf("hit 2 slept only %s", d)
	}
	if d := took(); d > 20*time.Millisecond {
		t.Fatalf("hit 3 slept %s (not onward)", d)
	}
}
