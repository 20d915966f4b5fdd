package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The shape of the data, as in etcd's own benchmark tool (`benchmark put
// --key-space-size 10000 --val-size 256`).
const (
	keySpace   = 10000
	valueSize  = 256
	hotKeys    = 8
	watchers   = 1000
	watchRate  = 100 // puts/s of the watch writer, etcd's `watch-latency --put-rate` default
	opTimeout  = 5 * time.Second
	leaseTTL   = 3600 // long enough that no grant expires, and is revoked, during the run
	keyPrefix  = "bench/k/"
	hotPrefix  = "bench/hot/"
	watchKey   = "bench/w/"
	failPrefix = "bench/f/"
)

// Measure is the outcome of one workload against one system.
type Measure struct {
	Ops    int64 `json:"ops"` // operations completed in the measured window
	Errors int64 `json:"errors"`
	// Elections counts Raft term changes during the workload: a healthy
	// cluster under load has none.
	Elections uint64  `json:"elections"`
	OpsPerSec float64 `json:"opsPerSec"`
	P50Ms     float64 `json:"p50Ms"`
	P99Ms     float64 `json:"p99Ms"`
	MaxMs     float64 `json:"maxMs"`
	// CPUPerOpUs is the CPU time all three members used per operation,
	// in microseconds (from /proc/<pid>/stat, so in 10 ms ticks: read it
	// over whole rows, not single ops).
	CPUPerOpUs float64 `json:"cpuPerOpUs,omitempty"`
	// Successes and Conflicts split the attempts of the compare-and-swap
	// workload; Writes is the number of puts of the watch workload.
	Successes int64 `json:"successes,omitempty"`
	Conflicts int64 `json:"conflicts,omitempty"`
	Writes    int64 `json:"writes,omitempty"`
}

// Workload is one row of the report: the same definition runs against
// both systems.
type Workload struct {
	Name    string `json:"name"`
	Clients int    `json:"clients"`
	// What the row counts, shown in the markdown.
	Unit string `json:"unit"`
	// newOp returns the operation of one client goroutine; it may keep
	// per-goroutine state (the compare-and-swap revision cache). nil for
	// the watch workload, which has its own driver, and for workloads
	// with a setup.
	newOp func() opFunc
	// setup, when set, prepares a system for the row outside the measured
	// window (the keep-alive row grants its leases) and returns the
	// operations to run and the teardown that undoes it after the row.
	setup func(ctx context.Context, clis []*clientv3.Client, clients int) (newOp func() opFunc, teardown func(context.Context) error, err error)
}

// opFunc performs one operation; conflict reports a compare that failed
// (a successful RPC that did not write).
type opFunc func(ctx context.Context, cli *clientv3.Client, rng *rand.Rand) (conflict bool, err error)

// Window is the timing of every workload.
type Window struct {
	Warmup   time.Duration
	Duration time.Duration
}

// Workloads are the rows, in the order they run. Leases come last so the
// grants they leave do not weigh on the other rows; the keep-alive row,
// which revokes its leases, runs before the grant row, which does not,
// so that it renews exactly its own leases.
func Workloads() []Workload {
	value := make([]byte, valueSize)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	val := string(value)
	put := func() opFunc {
		return func(ctx context.Context, cli *clientv3.Client, rng *rand.Rand) (bool, error) {
			_, err := cli.Put(ctx, key(rng.IntN(keySpace)), val)
			return false, err
		}
	}
	get := func(opts ...clientv3.OpOption) func() opFunc {
		return func() opFunc {
			return func(ctx context.Context, cli *clientv3.Client, rng *rand.Rand) (bool, error) {
				_, err := cli.Get(ctx, key(rng.IntN(keySpace)), opts...)
				return false, err
			}
		}
	}
	cas := func() opFunc {
		// The revision each hot key had when this client last saw it; a
		// failed compare reads the current one in the same round trip, as
		// a real CAS loop (Kubernetes' GuaranteedUpdate) does.
		seen := make([]int64, hotKeys)
		return func(ctx context.Context, cli *clientv3.Client, rng *rand.Rand) (bool, error) {
			i := rng.IntN(hotKeys)
			k := hotPrefix + strconv.Itoa(i)
			resp, err := cli.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(k), "=", seen[i])).
				Then(clientv3.OpPut(k, val)).
				Else(clientv3.OpGet(k)).
				Commit()
			if err != nil {
				return false, err
			}
			if resp.Succeeded {
				seen[i] = resp.Header.Revision
				return false, nil
			}
			seen[i] = 0
			if r := resp.Responses; len(r) > 0 {
				if kvs := r[0].GetResponseRange().GetKvs(); len(kvs) > 0 {
					seen[i] = kvs[0].ModRevision
				}
			}
			return true, nil
		}
	}
	grant := func() opFunc {
		return func(ctx context.Context, cli *clientv3.Client, _ *rand.Rand) (bool, error) {
			_, err := cli.Grant(ctx, leaseTTL)
			return false, err
		}
	}
	return []Workload{
		{Name: "put", Clients: 1, Unit: "puts", newOp: put},
		{Name: "put", Clients: 16, Unit: "puts", newOp: put},
		{Name: "put", Clients: 256, Unit: "puts", newOp: put},
		{Name: "range linearizable", Clients: 16, Unit: "gets", newOp: get()},
		{Name: "range linearizable", Clients: 256, Unit: "gets", newOp: get()},
		{Name: "range serializable", Clients: 16, Unit: "gets", newOp: get(clientv3.WithSerializable())},
		{Name: "range serializable", Clients: 256, Unit: "gets", newOp: get(clientv3.WithSerializable())},
		{Name: "txn cas 8 hot keys", Clients: 16, Unit: "attempts", newOp: cas},
		{Name: "watch 1000 watchers", Clients: 1, Unit: "events delivered", newOp: nil},
		{Name: fmt.Sprintf("lease keepalive %d leases", keepAliveLeases), Clients: 16, Unit: "keep-alives", setup: keepAliveSetup},
		{Name: "lease grant", Clients: 16, Unit: "grants", newOp: grant},
	}
}

func key(i int) string { return fmt.Sprintf("%s%05d", keyPrefix, i) }

// Run drives the workload against the connections clis (shared by the
// client goroutines, as etcd's benchmark tool shares --conns among
// --clients) and measures the window after the warm-up.
func (w Workload) Run(ctx context.Context, clis []*clientv3.Client, win Window) (_ Measure, err error) {
	newOp := w.newOp
	if w.setup != nil {
		op, teardown, serr := w.setup(ctx, clis, w.Clients)
		if serr != nil {
			return Measure{}, fmt.Errorf("set up: %w", serr)
		}
		defer func() {
			if terr := teardown(ctx); terr != nil {
				err = errors.Join(err, fmt.Errorf("tear down: %w", terr))
			}
		}()
		newOp = op
	}
	if newOp == nil {
		return runWatch(ctx, clis, win)
	}
	return runClosedLoop(ctx, clis, w.Clients, win, newOp)
}

// sampleSet is what one client goroutine measured.
type sampleSet struct {
	lat                  []time.Duration
	errs, conflicts, ops int64
}

// runClosedLoop runs clients goroutines, each issuing its next operation as
// soon as the previous one returns. Operations started during the warm-up
// or after the window are not counted.
func runClosedLoop(ctx context.Context, clis []*clientv3.Client, clients int, win Window, newOp func() opFunc) (Measure, error) {
	start := time.Now()
	from, end := start.Add(win.Warmup), start.Add(win.Warmup+win.Duration)
	sets := make([]sampleSet, clients)
	var wg sync.WaitGroup
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op, cli := newOp(), clis[g%len(clis)]
			rng := rand.New(rand.NewPCG(uint64(g), uint64(start.UnixNano())))
			s := &sets[g]
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				conflict, err := op(octx, cli, rng)
				cancel()
				if t0.Before(from) {
					continue
				}
				switch {
				case err != nil:
					s.errs++
				default:
					s.ops++
					s.lat = append(s.lat, time.Since(t0))
					if conflict {
						s.conflicts++
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Measure{}, fmt.Errorf("workload interrupted: %w", err)
	}
	var all []time.Duration
	var m Measure
	for _, s := range sets {
		all = append(all, s.lat...)
		m.Ops += s.ops
		m.Errors += s.errs
		m.Conflicts += s.conflicts
	}
	if m.Conflicts > 0 {
		m.Successes = m.Ops - m.Conflicts
	}
	m.fill(all, win.Duration)
	return m, nil
}

func (m *Measure) fill(samples []time.Duration, window time.Duration) {
	l := Summarize(samples)
	m.OpsPerSec = float64(m.Ops) / window.Seconds()
	m.P50Ms, m.P99Ms, m.MaxMs = ms(l.P50), ms(l.P99), ms(l.Max)
}

// Preload writes every key of the key space once, so that range reads
// find values, with enough concurrency to take seconds, not minutes.
func Preload(ctx context.Context, clis []*clientv3.Client) error {
	value := string(make([]byte, valueSize))
	return parallel(ctx, keySpace, setupWorkers, opTimeout, func(ctx context.Context, w, i int) error {
		if _, err := clis[w%len(clis)].Put(ctx, key(i), value); err != nil {
			return fmt.Errorf("preload %s: %w", key(i), err)
		}
		return nil
	})
}

// setupWorkers is the concurrency of the work outside the measured rows
// (preload, lease grants and revocations): enough that it takes seconds.
const setupWorkers = 64

// parallel calls do for every i in [0, n) from workers goroutines, each
// call under its own timeout, w being the calling goroutine's index (to
// spread calls over connections). It returns the first error, after which
// no new call starts: the rest of a failed setup would only add noise.
func parallel(ctx context.Context, n, workers int, timeout time.Duration, do func(ctx context.Context, w, i int) error) error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next  atomic.Int64
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for pctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				octx, ocancel := context.WithTimeout(pctx, timeout)
				err := do(octx, w, i)
				ocancel()
				if err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// runWatch measures delivery latency: watchers watchers on one prefix,
// one writer putting at watchRate with its send time in the value. Both
// systems get the same offered load, so the row compares latency, and its
// ops/s is the delivered event rate (watchers × puts/s when keeping up).
func runWatch(ctx context.Context, clis []*clientv3.Client, win Window) (Measure, error) {
	wctx, stopWatch := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer stopWatch()
	created := make(chan struct{}, watchers)
	sets := make([]sampleSet, watchers)
	var wg sync.WaitGroup
	var from, end time.Time
	window := make(chan struct{}) // closed once from and end are set
	for i := range watchers {
		wch := clis[i%len(clis)].Watch(wctx, watchKey, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &sets[i]
			for resp := range wch {
				if resp.Created {
					created <- struct{}{}
					continue
				}
				if resp.Err() != nil {
					if wctx.Err() == nil { // a cancelled watch at the end is no error
						s.errs++
					}
					continue
				}
				now := time.Now()
				<-window
				for _, ev := range resp.Events {
					sent, err := strconv.ParseInt(string(ev.Kv.Value[:19]), 10, 64)
					if err != nil {
						s.errs++
						continue
					}
					t := time.Unix(0, sent)
					if t.Before(from) || !t.Before(end) {
						continue
					}
					s.ops++
					s.lat = append(s.lat, now.Sub(t))
				}
			}
		}()
	}
	deadline := time.After(60 * time.Second)
	for range watchers {
		select {
		case <-created:
		case <-deadline:
			return Measure{}, errors.New("watch: watchers not created within 60s")
		case <-ctx.Done():
			return Measure{}, ctx.Err()
		}
	}
	start := time.Now()
	from, end = start.Add(win.Warmup), start.Add(win.Warmup+win.Duration)
	close(window)

	pad := string(make([]byte, valueSize-19))
	var writes, writeErrs int64
	tick := time.NewTicker(time.Second / watchRate)
	defer tick.Stop()
	for now := range tick.C {
		if ctx.Err() != nil || !now.Before(end) {
			break
		}
		stamp := time.Now()
		v := fmt.Sprintf("%019d", stamp.UnixNano()) + pad
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		_, err := clis[0].Put(octx, watchKey+"x", v)
		cancel()
		if stamp.Before(from) {
			continue
		}
		if err != nil {
			writeErrs++
		} else {
			writes++
		}
	}
	// Let events in flight arrive before counting: a late event is a
	// slow one, and the drain bounds how late still counts.
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
	}
	stopWatch()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Measure{}, fmt.Errorf("watch interrupted: %w", err)
	}
	m := Measure{Writes: writes, Errors: writeErrs}
	var all []time.Duration
	for _, s := range sets {
		m.Ops += s.ops
		m.Errors += s.errs
		all = append(all, s.lat...)
	}
	m.fill(all, win.Duration)
	return m, nil
}
