//go:build !broken_localread

package cluster

// brokenLocalRead is false in every real build (see broken_localread_on.go).
const brokenLocalRead = false
