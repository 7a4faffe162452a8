//go:build !broken_earlyack

package cluster

// brokenEarlyAck is false in every real build (see broken_earlyack_on.go).
const brokenEarlyAck = false
