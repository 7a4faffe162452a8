//go:build broken_localread

package cluster

// brokenLocalRead: this is a deliberately broken build (tag
// broken_localread) whose linearizable reads are served from the local
// database without a ReadIndex round. Only for proving that the tests
// catch it; see docs/design.md.
const brokenLocalRead = true
