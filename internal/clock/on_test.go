//go:build failpoints

package clock

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestNowFollowsTheOffsetFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offset")
	t.Setenv(EnvOffsetFile, path)
	if d := Offset(); d != 0 {
		t.Fatalf("offset without a file: %s", d)
	}
	for _, want := range []time.Duration{30 * time.Second, -30 * time.Second, 0} {
		if err := os.WriteFile(path, []byte(want.String()+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		got := System.Now().Sub(time.Now())
		if got < want-time.Second || got > want+time.Second {
			t.Fatalf("offset %s: Now is %s from time.Now", want, got)
		}
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if d := Offset(); d != 0 {
		t.Fatalf("offset from garbage: %s", d)
	}
}
