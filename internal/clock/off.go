//go:build !failpoints

package clock

import "time"

// Adjustable reports whether this binary's clock can be offset at run
// time (the failpoints build).
const Adjustable = false

// Now returns the current time.
func Now() time.Time { return time.Now() }
