//go:build !failpoints

package failpoint

// Enabled reports whether this binary was built with failpoints.
const Enabled = false

// Inject marks the failpoint name. Without the failpoints build tag it
// does nothing and is inlined away.
func Inject(name string) {}
