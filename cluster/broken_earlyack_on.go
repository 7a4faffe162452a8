//go:build broken_earlyack

package cluster

// brokenEarlyAck: this is a deliberately broken build (tag
// broken_earlyack): the WAL is written without fsync, and followers send
// their acknowledgements before writing it, so a crash or a power loss
// can lose an entry that was acknowledged to the client. Only for proving
// that the tests catch it; see docs/design.md.
const brokenEarlyAck = true
