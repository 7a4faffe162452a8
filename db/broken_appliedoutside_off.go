//go:build !broken_appliedoutside

package db

// brokenAppliedOutside is false in every real build: the applied index is
// stored in the same transaction as the entries (see broken_on.go).
const brokenAppliedOutside = false
