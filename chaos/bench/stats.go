package bench

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest sample such that at least p percent of
// the samples are less than or equal to it. Like an HDR histogram it
// reports a value that was actually observed, never an interpolation, so a
// p99 of a bimodal distribution is one of the modes. It returns 0 for no
// samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	if rank > n {
		rank = n
	}
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// Latency is the summary of a set of latency samples.
type Latency struct {
	Count int
	P50   time.Duration
	P99   time.Duration
	Max   time.Duration
}

// Summarize sorts samples in place and summarizes them.
func Summarize(samples []time.Duration) Latency {
	slices.Sort(samples)
	l := Latency{Count: len(samples), P50: Percentile(samples, 50), P99: Percentile(samples, 99)}
	if len(samples) > 0 {
		l.Max = samples[len(samples)-1]
	}
	return l
}

// ms converts a duration to milliseconds, the unit of every report.
func ms(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// Ratio is a/b, or 0 when b is 0: a missing etcd figure must not read as
// an infinitely better barge.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
