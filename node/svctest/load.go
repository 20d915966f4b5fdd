package svctest

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/barge-dev/barge/overlay/netnstest"
)

// Rate is what a load run measured: operations completed per second and
// the time of each, and how many failed.
type Rate struct {
	PerSec   float64
	P50, P99 time.Duration
	Errors   int
}

// Load runs workers threads inside the namespace at nsPath for d, each
// repeating the operation newOp builds for it (newOp runs in the
// namespace too, so sockets it opens are there). The loop stays on its
// thread, so no operation pays for a namespace switch. An operation's
// error is counted, not returned; Load fails only if newOp does or if
// nothing completed.
func Load(nsPath string, workers int, d time.Duration, newOp func(worker int) (op func() error, done func(), err error)) (Rate, error) {
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs int
		wg   sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	werrc := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			werrc <- netnstest.Do(nsPath, func() error {
				op, done, err := newOp(w)
				if err != nil {
					return err
				}
				if done != nil {
					defer done()
				}
				var mine []time.Duration
				bad := 0
				for time.Now().Before(deadline) {
					start := time.Now()
					if err := op(); err != nil {
						bad++
						continue
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, mine...)
				errs += bad
				mu.Unlock()
				return nil
			})
		}()
	}
	wg.Wait()
	close(werrc)
	for err := range werrc {
		if err != nil {
			return Rate{}, err
		}
	}
	if len(lat) == 0 {
		return Rate{}, fmt.Errorf("svctest: no operation completed in %v (%d failed)", d, errs)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) time.Duration { return lat[int(f*float64(len(lat)-1)+0.5)] }
	return Rate{PerSec: float64(len(lat)) / d.Seconds(), P50: q(0.5), P99: q(0.99), Errors: errs}, nil
}

// MedianRate is the run with the median rate, its latencies with it.
func MedianRate(rs []Rate) Rate {
	s := append([]Rate(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].PerSec < s[j].PerSec })
	return s[len(s)/2]
}

// ForEach calls fn for every i in [from, to) from workers goroutines:
// how the benches make thousands of API objects without waiting on each
// round trip. It returns every error fn returned.
func ForEach(from, to, workers int, fn func(i int) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	work := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := from; i < to; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

// LogMedians logs a markdown table of each row's median run, its rate
// beside the first row's: what the node benches print for benchmarks.md.
func LogMedians(t testing.TB, what, unit, vs string, names []string, runs [][]Rate) {
	t.Helper()
	t.Logf("| %s | %s | p50 | p99 | vs %s |", what, unit, vs)
	t.Logf("|---|---:|---:|---:|---:|")
	base := MedianRate(runs[0]).PerSec
	for i, name := range names {
		m := MedianRate(runs[i])
		t.Logf("| %s | %.0f | %v | %v | %.2f× |", name, m.PerSec, m.P50.Round(time.Microsecond), m.P99.Round(time.Microsecond), m.PerSec/base)
	}
}
