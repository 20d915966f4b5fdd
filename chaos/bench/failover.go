package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Failover timing.
const (
	failoverInterval = 5 * time.Millisecond // a write every 5 ms: 200 writes/s, a light load
	failoverInFlight = 1024                 // more than 2 s of writes: a stuck write never holds back a new one
	failoverTimeout  = 2 * time.Second      // each write's deadline, as a client with a short timeout
	recoverTimeout   = 30 * time.Second     // from the kill to an acknowledged write
	healthyTimeout   = 60 * time.Second     // for the restarted member to rejoin
)

// FailoverResult is the leader-kill series of one system.
type FailoverResult struct {
	System    string    `json:"system"`
	Kills     int       `json:"kills"`
	SamplesMs []float64 `json:"samplesMs"` // kill → first acknowledged write sent after it, in kill order
	Failed    int       `json:"failed"`    // kills after which no write was acknowledged within recoverTimeout
	P50Ms     float64   `json:"p50Ms"`
	MaxMs     float64   `json:"maxMs"`
}

// ackWatch hands the failover loop the first write acknowledged among
// those sent after a given instant.
type ackWatch struct {
	mu    sync.Mutex
	after time.Time
	got   chan time.Time
}

// arm starts waiting for a write sent after t.
func (a *ackWatch) arm(t time.Time) <-chan time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.after, a.got = t, make(chan time.Time, 1)
	return a.got
}

func (a *ackWatch) ack(sent, acked time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.got != nil && sent.After(a.after) {
		a.got <- acked
		a.got = nil
	}
}

// Failover kills the leader of c kills times under a light write load and
// times each recovery. The killed member restarts with its data dir and
// flags, and the next kill waits until all three members are healthy.
func Failover(ctx context.Context, c *Cluster, cli *clientv3.Client, kills int) (FailoverResult, error) {
	res := FailoverResult{System: c.System, Kills: kills}
	lctx, stopLoad := context.WithCancel(ctx)
	var acks ackWatch
	var wg sync.WaitGroup
	defer func() { stopLoad(); wg.Wait() }() // the writers use cli, which the caller closes next
	// Writes go out on a clock, each in its own goroutine, rather than
	// back to back: a writer stuck on a write to the dead leader until
	// its timeout would otherwise hide the moment the cluster took writes
	// again, and the figure would measure the client's timeout.
	wg.Add(1)
	go func() {
		defer wg.Done()
		sem := make(chan struct{}, failoverInFlight)
		tick := time.NewTicker(failoverInterval)
		defer tick.Stop()
		rng := rand.New(rand.NewPCG(1, 1))
		for {
			select {
			case <-lctx.Done():
				return
			case <-tick.C:
			}
			select {
			case sem <- struct{}{}:
			default:
				continue // enough writes in flight; skip a beat
			}
			key := fmt.Sprintf("%s%d", failPrefix, rng.IntN(1000))
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				sent := time.Now()
				wctx, cancel := context.WithTimeout(lctx, failoverTimeout)
				_, err := cli.Put(wctx, key, "v")
				cancel()
				if err == nil {
					acks.ack(sent, time.Now())
				}
			}()
		}
	}()
	var samples []time.Duration
	for i := range kills {
		lead, err := c.WaitHealthy(ctx, cli, healthyTimeout)
		if err != nil {
			return res, fmt.Errorf("before kill %d: %w", i+1, err)
		}
		m := c.Members[lead]
		m.kill()
		killed := time.Now()
		got := acks.arm(killed)
		select {
		case acked := <-got:
			d := acked.Sub(killed)
			samples = append(samples, d)
			res.SamplesMs = append(res.SamplesMs, ms(d))
			c.log.Info("leader killed", "kill", i+1, "member", m.Name, "recoveredMs", ms(d))
		case <-time.After(recoverTimeout):
			res.Failed++
			c.log.Warn("no write acknowledged after leader kill", "kill", i+1, "member", m.Name, "within", recoverTimeout)
		case <-ctx.Done():
			return res, ctx.Err()
		}
		if err := m.start(); err != nil {
			return res, fmt.Errorf("restart %s: %w", m.Name, err)
		}
	}
	if _, err := c.WaitHealthy(ctx, cli, healthyTimeout); err != nil {
		return res, fmt.Errorf("after the last kill: %w", err)
	}
	l := Summarize(slices.Clone(samples))
	res.P50Ms, res.MaxMs = ms(l.P50), ms(l.Max)
	return res, nil
}
