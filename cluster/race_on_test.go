//go:build race

package cluster

// raceEnabled: the race detector slows the single-goroutine ReadIndex
// simulation about tenfold and finds nothing in it, so it runs fewer
// iterations (see simRuns).
const raceEnabled = true
