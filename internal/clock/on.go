//go:build failpoints

package clock

import (
	"os"
	"strings"
	"time"
)

// Adjustable reports whether this binary's clock can be offset at run
// time (the failpoints build).
const Adjustable = true

// Now returns the current time plus the offset in the file named by
// RDB_CLOCK_OFFSET_FILE, read on every call.
func Now() time.Time { return time.Now().Add(Offset()) }

// Offset returns the offset currently configured, 0 when none is (or the
// file cannot be read or parsed).
func Offset() time.Duration {
	path := os.Getenv(EnvOffsetFile)
	if path == "" {
		return 0
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	d, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return d
}
