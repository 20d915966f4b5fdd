package raftstore_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/barge-dev/barge/raftstore"
	"github.com/barge-dev/barge/raftstore/storetest"
)

// BenchmarkPut16Clients measures put throughput of a 3-peer in-process
// cluster (fsync on, TLS on) with 16 concurrent clients writing 256-byte
// values over 10k keys. `make bench` runs it; `barge bench store` (issue 5)
// compares against etcd.
func BenchmarkPut16Clients(b *testing.B) {
	c := storetest.NewCluster(b, 3, storetest.WithConfig(func(cfg *raftstore.Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = 500*time.Millisecond, 500*time.Millisecond
	}))
	cli := c.Client()
	val := string(make([]byte, 256))
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, err := cli.Put(context.Background(), fmt.Sprintf("key-%05d", i%10000), val); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "puts/s")
}

// BenchmarkFailover kills the leader under a light write load and times
// the first acknowledged write after the kill, like the demo does.
func BenchmarkFailover(b *testing.B) {
	var samples []time.Duration
	for i := 0; i < b.N; i++ {
		// The production defaults, not the test harness's timeouts.
		c := storetest.NewCluster(b, 3, storetest.WithConfig(func(cfg *raftstore.Config) {
			cfg.HeartbeatTimeout, cfg.ElectionTimeout = 0, 0
		}))
		leader := c.Leader()
		var survivors []int
		for j := range c.Members {
			if j != leader {
				survivors = append(survivors, j)
			}
		}
		cli := c.Client(survivors...)
		if _, err := cli.Put(context.Background(), "warm", "x"); err != nil {
			b.Fatal(err)
		}
		kill := time.Now()
		c.Kill(leader)
		for {
			// A generous timeout: the serving peer holds the write and
			// retries it on the new leader, so it completes when the
			// cluster can take it again.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := cli.Put(ctx, "after", "x")
			cancel()
			if err == nil {
				break
			}
		}
		samples = append(samples, time.Since(kill))
		c.Close()
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	b.ReportMetric(float64(samples[len(samples)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(samples[len(samples)-1].Milliseconds()), "max-ms")
}
