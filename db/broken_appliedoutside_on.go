//go:build broken_appliedoutside

package db

// brokenAppliedOutside: this is a deliberately broken build (tag
// broken_appliedoutside) that stores the applied index in a transaction
// of its own after the data, so a crash in between re-applies entries.
// Only for proving that the tests catch it; see docs/design.md.
const brokenAppliedOutside = true
