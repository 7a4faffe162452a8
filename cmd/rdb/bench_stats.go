package main

import (
	"math"
	"math/bits"
	"time"
)

// latencyHist is a log-linear histogram of durations in nanoseconds, in
// the manner of HdrHistogram: values below 128 ns have their own bucket,
// and above that every power of two is split into 64 equal buckets, so a
// reported value is within 1/64 (about 1.6%) of a recorded one. Bucket
// storage is allocated per power of two on first use, so a histogram
// holding a typical spread of latencies takes a few KiB whatever the
// number of values recorded. The zero value is empty and ready to use;
// it is not safe for concurrent use.
type latencyHist struct {
	chunks [histChunks][]uint64
	count  uint64
	sum    float64 // nanoseconds
	min    uint64
	max    uint64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // exact buckets below this value
	histHalf    = histSub / 2      // buckets per power of two above it
	// Largest shift is 64-histSubBits; buckets: histSub + that many halves.
	histBuckets = histSub + (64-histSubBits)*histHalf
	histChunks  = histBuckets / histHalf
)

// histIndex returns the bucket of v.
func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	s := bits.Len64(v) - histSubBits // >= 1
	m := v >> uint(s)                // in [histHalf, histSub)
	return histSub + (s-1)*histHalf + int(m-histHalf)
}

// histBounds returns the smallest and largest value of bucket i.
func histBounds(i int) (lo, hi uint64) {
	if i < histSub {
		return uint64(i), uint64(i)
	}
	j := i - histSub
	s := uint(j/histHalf + 1)
	m := uint64(j%histHalf + histHalf)
	lo = m << s
	hi = lo + (uint64(1) << s) - 1
	return lo, hi
}

// Record adds one duration; negative durations count as zero.
func (h *latencyHist) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	i := histIndex(v)
	c := h.chunks[i/histHalf]
	if c == nil {
		c = make([]uint64, histHalf)
		h.chunks[i/histHalf] = c
	}
	c[i%histHalf]++
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.count++
	h.sum += float64(v)
}

// Merge adds every value of o to h.
func (h *latencyHist) Merge(o *latencyHist) {
	if o.count == 0 {
		return
	}
	for ci, oc := range o.chunks {
		if oc == nil {
			continue
		}
		c := h.chunks[ci]
		if c == nil {
			c = make([]uint64, histHalf)
			h.chunks[ci] = c
		}
		for k, n := range oc {
			c[k] += n
		}
	}
	if h.count == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.count += o.count
	h.sum += o.sum
}

// Count returns the number of recorded values.
func (h *latencyHist) Count() uint64 { return h.count }

// Min and Max return the exact smallest and largest recorded values.
func (h *latencyHist) Min() time.Duration { return time.Duration(h.min) }
func (h *latencyHist) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the exact mean of the recorded values.
func (h *latencyHist) Mean() time.Duration {
	if h.count == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.count))
}

// Percentile returns the value at or below which p percent (0-100) of
// the recorded values lie: the midpoint of the bucket holding the value
// of that rank, clamped to the exact min and max. It is 0 when empty.
func (h *latencyHist) Percentile(p float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	if p >= 100 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.count)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for ci, c := range h.chunks {
		if c == nil {
			continue
		}
		for k, n := range c {
			seen += n
			if n == 0 || seen < rank {
				continue
			}
			lo, hi := histBounds(ci*histHalf + k)
			v := lo + (hi-lo)/2
			v = max(v, h.min)
			v = min(v, h.max)
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}

// opStats accumulates the outcome of one worker's (or, merged, all
// workers') requests of one kind.
type opStats struct {
	hist   latencyHist // latency of successful requests
	ops    int64       // successful requests
	rows   int64       // rows written or read by successful requests
	errors map[string]int64
	sample map[string]string // first error message of each kind
}

func (s *opStats) success(d time.Duration, rows int) {
	s.hist.Record(d)
	s.ops++
	s.rows += int64(rows)
}

func (s *opStats) failure(kind, msg string) {
	if s.errors == nil {
		s.errors = make(map[string]int64)
		s.sample = make(map[string]string)
	}
	if _, ok := s.sample[kind]; !ok {
		s.sample[kind] = msg
	}
	s.errors[kind]++
}

func (s *opStats) errorCount() int64 {
	var n int64
	for _, c := range s.errors {
		n += c
	}
	return n
}

func (s *opStats) merge(o *opStats) {
	s.hist.Merge(&o.hist)
	s.ops += o.ops
	s.rows += o.rows
	for k, n := range o.errors {
		if s.errors == nil {
			s.errors = make(map[string]int64)
			s.sample = make(map[string]string)
		}
		if _, ok := s.sample[k]; !ok {
			s.sample[k] = o.sample[k]
		}
		s.errors[k] += n
	}
}
