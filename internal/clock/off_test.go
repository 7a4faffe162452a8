//go:build !failpoints

package clock

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestNowIgnoresTheOffsetFile: a production build has no way to shift
// its clock.
func TestNowIgnoresTheOffsetFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offset")
	if err := os.WriteFile(path, []byte("1h"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvOffsetFile, path)
	if d := Now().Sub(time.Now()); d > time.Minute || d < -time.Minute {
		t.Fatalf("production clock moved by %s", d)
	}
}
