package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/barge-dev/barge/chaos/check"
	"github.com/barge-dev/barge/raftstore/pki"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Lab is what a run needs from the hosts it runs on.
type Lab interface {
	Servers() []string             // server host names, in order
	ClientAddr(host string) string // host:port of the etcd API
	CertsDir() string              // cluster certificates
	Leader(ctx context.Context) (string, error)
	Kill(host string) error
	Start(host string) error
	Pause(host string) error
	Resume(host string) error
	Partition(hosts, from []string, oneWay bool) error
	Heal() error
}

// Config describes a run.
type Config struct {
	Lab      Lab
	Duration time.Duration
	Faults   []string
	Seed     int64
	Clients  int // workload clients (default 8)
	Watchers int // watchers (default 3)
	Keys     int // keys under test (default 10)
	// ReadConsistency is "linearizable" (default) or "serializable". In
	// serializable mode every client is pinned to one server and reads
	// locally, so partitions produce stale reads the checker must catch.
	ReadConsistency string
	ReportDir       string // where the porcupine visualisation goes on failure
	Logger          *slog.Logger
}

const prefix = "chaos/k/"

type runner struct {
	cfg     Config
	log     *slog.Logger
	hist    *check.History
	tlsDir  string
	mu      sync.Mutex
	writes  []span     // successful writes: call and return offsets
	leases  []check.Op // acknowledged lease-attached puts
	faults  []FaultReport
	watches []*watcher
}

// Run executes a chaos run and returns its report. The error is for
// failures of the harness itself; violations are in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Clients == 0 {
		cfg.Clients = 8
	}
	if cfg.Watchers == 0 {
		cfg.Watchers = 3
	}
	if cfg.Keys == 0 {
		cfg.Keys = 10
	}
	if cfg.ReadConsistency == "" {
		cfg.ReadConsistency = "linearizable"
	}
	if cfg.ReadConsistency != "linearizable" && cfg.ReadConsistency != "serializable" {
		return nil, fmt.Errorf("read consistency %q: want linearizable or serializable", cfg.ReadConsistency)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	steps, err := Schedule(cfg.Seed, cfg.Faults, len(cfg.Lab.Servers()), cfg.Duration)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, log: cfg.Logger, hist: check.NewHistory(), tlsDir: cfg.Lab.CertsDir()}
	return r.run(ctx, steps)
}

func (r *runner) client(endpoints ...string) (*clientv3.Client, error) {
	tlsCfg, err := pki.ClientTLS(r.tlsDir)
	if err != nil {
		return nil, err
	}
	if len(endpoints) == 0 {
		for _, h := range r.cfg.Lab.Servers() {
			endpoints = append(endpoints, r.cfg.Lab.ClientAddr(h))
		}
	}
	return clientv3.New(clientv3.Config{
		Endpoints: endpoints, TLS: tlsCfg, DialTimeout: 2 * time.Second, Logger: zap.NewNop(),
		DialKeepAliveTime: 2 * time.Second, DialKeepAliveTimeout: 2 * time.Second,
	})
}

func (r *runner) run(ctx context.Context, steps []Step) (*Report, error) {
	setup, err := r.client()
	if err != nil {
		return nil, err
	}
	defer setup.Close()
	// Start from a known state: every key absent, history from here on.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	del, err := setup.Delete(sctx, prefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		return nil, fmt.Errorf("reset keys: %w", err)
	}
	startRev := del.Header.Revision + 1

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	for i := 0; i < r.cfg.Watchers; i++ {
		w, err := r.startWatcher(wctx, i, startRev)
		if err != nil {
			return nil, err
		}
		r.watches = append(r.watches, w)
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := 0; i < r.cfg.Clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.clientLoop(loadCtx, i)
		}()
	}
	runStart := r.hist.Start()
	r.inject(ctx, steps, runStart)
	stopLoad()
	wg.Wait()

	rep := &Report{
		Seed: r.cfg.Seed, Duration: r.cfg.Duration.String(), Servers: len(r.cfg.Lab.Servers()),
		Faults: r.cfg.Faults, ReadConsistency: r.cfg.ReadConsistency, Schedule: steps,
	}
	r.healAll()
	endRev, err := r.converge(ctx, setup)
	if err != nil {
		rep.violate("convergence: %v", err)
	}
	stopWatch()
	r.judge(ctx, setup, rep, startRev, endRev)
	return rep, nil
}

// clientLoop issues random operations until ctx ends, recording each.
func (r *runner) clientLoop(ctx context.Context, id int) {
	var cli *clientv3.Client
	var err error
	serial := r.cfg.ReadConsistency == "serializable"
	if serial {
		servers := r.cfg.Lab.Servers()
		cli, err = r.client(r.cfg.Lab.ClientAddr(servers[id%len(servers)]))
	} else {
		cli, err = r.client()
	}
	if err != nil {
		r.log.Error("client", "err", err)
		return
	}
	defer cli.Close()
	rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), uint64(id)+1))
	var leaseID clientv3.LeaseID
	for seq := 0; ctx.Err() == nil; seq++ {
		key := fmt.Sprintf("%s%02d", prefix, rng.IntN(r.cfg.Keys))
		value := fmt.Sprintf("c%d-%d", id, seq)
		opCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		call := time.Since(r.hist.Start()).Nanoseconds()
		op := check.Op{ClientID: id, Key: key, Call: call}
		switch p := rng.IntN(100); {
		case p < 40:
			op.Kind = check.Get
			var opts []clientv3.OpOption
			if serial {
				opts = append(opts, clientv3.WithSerializable())
			}
			resp, err := cli.Get(opCtx, key, opts...)
			op.Outcome = outcome(err, false)
			if err == nil && len(resp.Kvs) > 0 {
				op.Found, op.Result = true, string(resp.Kvs[0].Value)
			}
		case p < 70:
			op.Kind, op.Value = check.Put, value
			_, err := cli.Put(opCtx, key, value)
			op.Outcome = outcome(err, true)
		case p < 90:
			// Compare against what this client last believes; a miss is
			// as informative as a hit.
			expected := ""
			if g, err := cli.Get(opCtx, key, clientv3.WithSerializable()); err == nil && len(g.Kvs) > 0 {
				expected = string(g.Kvs[0].Value)
			}
			call = time.Since(r.hist.Start()).Nanoseconds()
			op.Call = call
			op.Kind, op.Value, op.Expected = check.CAS, value, expected
			cmp := clientv3.Compare(clientv3.Value(key), "=", expected)
			if expected == "" {
				cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
			}
			resp, err := cli.Txn(opCtx).If(cmp).Then(clientv3.OpPut(key, value)).Commit()
			op.Outcome = outcome(err, true)
			if err == nil {
				op.Succeeded = resp.Succeeded
			}
		default:
			// Lease-attached puts live outside the checked keys: expiry
			// deletes are not part of the register model.
			if leaseID == 0 {
				if g, err := cli.Grant(opCtx, 60); err == nil {
					leaseID = g.ID
					if ka, err := cli.KeepAlive(ctx, leaseID); err == nil {
						go func() {
							for range ka {
							}
						}()
					}
				}
			}
			lkey := fmt.Sprintf("chaos/lease/%d", id)
			if leaseID != 0 {
				if _, err := cli.Put(opCtx, lkey, value, clientv3.WithLease(leaseID)); err == nil {
					r.mu.Lock()
					r.leases = append(r.leases, check.Op{Kind: check.Put, Key: lkey, Value: value, Outcome: check.OK})
					r.mu.Unlock()
					r.wrote(time.Duration(call))
				}
			}
			cancel()
			continue
		}
		cancel()
		op.Return = time.Since(r.hist.Start()).Nanoseconds()
		if ctx.Err() != nil && op.Outcome != check.OK {
			// Cut off by the end of the run, not by a fault.
			if op.Kind == check.Get {
				continue
			}
			op.Outcome = check.Unknown
		}
		r.hist.Add(op)
		if op.Outcome == check.OK && op.Kind != check.Get {
			r.wrote(time.Duration(op.Call))
		}
	}
}

// span is when a successful write was sent and acknowledged.
type span struct{ call, ret time.Duration }

func (r *runner) wrote(call time.Duration) {
	r.mu.Lock()
	r.writes = append(r.writes, span{call: call, ret: time.Since(r.hist.Start())})
	r.mu.Unlock()
}

// outcome classifies a client error. A failed read changed nothing; a
// failed write may still have been applied, so it is unknown.
func outcome(err error, write bool) check.Outcome {
	switch {
	case err == nil:
		return check.OK
	case !write:
		return check.Failed
	}
	return check.Unknown
}

// healAll undoes every fault: network, paused and killed processes.
func (r *runner) healAll() {
	if err := r.cfg.Lab.Heal(); err != nil {
		r.log.Warn("heal", "err", err)
	}
	for _, h := range r.cfg.Lab.Servers() {
		_ = r.cfg.Lab.Resume(h)
		_ = r.cfg.Lab.Start(h) // no-op error when it runs already
	}
}

// converge waits until the cluster takes writes again and every watcher
// has caught up to the final revision.
func (r *runner) converge(ctx context.Context, cli *clientv3.Client) (int64, error) {
	deadline := time.Now().Add(60 * time.Second)
	var rev int64
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := cli.Put(cctx, prefix+"~end", "end")
		cancel()
		if err == nil {
			rev = resp.Header.Revision
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no write succeeded within 60s of healing: %w", err)
		}
	}
	for _, w := range r.watches {
		select {
		case <-w.reached(rev):
		case <-time.After(time.Until(deadline)):
			return rev, fmt.Errorf("watcher %d did not reach revision %d", w.id, rev)
		}
	}
	return rev, nil
}

// judge runs every check and fills the report.
func (r *runner) judge(ctx context.Context, cli *clientv3.Client, rep *Report, startRev, endRev int64) {
	ops := r.hist.Ops()
	for _, op := range ops {
		switch op.Outcome {
		case check.OK:
			rep.Operations.OK++
		case check.Failed:
			rep.Operations.Failed++
		case check.Unknown:
			rep.Operations.Unknown++
		}
	}
	lin := check.CheckLinearizable(ops, 2*time.Minute)
	rep.Linearizability = lin
	for _, v := range lin.Violations {
		rep.violate("linearizability: %s", v)
	}
	if !lin.Linearizable && !lin.TimedOut && r.cfg.ReportDir != "" {
		path := filepath.Join(r.cfg.ReportDir, "linearizability.html")
		if err := check.WriteVisualization(ops, path); err == nil {
			rep.Visualization = path
		}
	}
	if endRev == 0 {
		return
	}
	auth, err := authoritative(ctx, cli, startRev, endRev)
	if err != nil {
		rep.violate("read the authoritative history: %v", err)
		return
	}
	for _, w := range r.watches {
		seen, werr := w.result()
		if werr != nil {
			rep.violate("watcher %d: %v", w.id, werr)
		}
		for _, v := range check.CheckWatch(fmt.Sprintf("watcher %d", w.id), auth.keys, seen, startRev, endRev) {
			rep.violate("%s", v)
		}
		rep.WatchEvents += len(seen)
	}
	for _, v := range check.CheckAcknowledged(ops, auth.keys) {
		rep.violate("acknowledged write lost: %s", v)
	}
	r.mu.Lock()
	leases := append([]check.Op(nil), r.leases...)
	r.mu.Unlock()
	for _, v := range check.CheckAcknowledged(leases, auth.leases) {
		rep.violate("acknowledged lease write lost: %s", v)
	}
	r.compareHashes(ctx, cli, rep, endRev)
	r.failover(rep)
}

type history struct{ keys, leases []check.WatchEvent }

// authoritative reads every event from startRev to endRev with one fresh
// watch: the cluster's own account of what was committed.
func authoritative(ctx context.Context, cli *clientv3.Client, startRev, endRev int64) (history, error) {
	var h history
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for resp := range cli.Watch(wctx, "chaos/", clientv3.WithPrefix(), clientv3.WithRev(startRev)) {
		if err := resp.Err(); err != nil {
			return h, err
		}
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision > endRev {
				return h, nil
			}
			we := check.WatchEvent{Revision: ev.Kv.ModRevision, Key: string(ev.Kv.Key), Value: string(ev.Kv.Value), Delete: ev.Type == clientv3.EventTypeDelete}
			if len(we.Key) >= len(prefix) && we.Key[:len(prefix)] == prefix {
				h.keys = append(h.keys, we)
			} else {
				h.leases = append(h.leases, we)
			}
			if ev.Kv.ModRevision == endRev {
				return h, nil
			}
		}
	}
	return h, errors.New("authoritative watch ended early")
}

func (r *runner) compareHashes(ctx context.Context, cli *clientv3.Client, rep *Report, rev int64) {
	hashes := map[string]uint32{}
	for _, h := range r.cfg.Lab.Servers() {
		var got uint32
		var err error
		// A peer that just restarted may still be catching up; HashKV
		// at the final revision waits for nothing, so retry briefly.
		for try := 0; try < 50; try++ {
			hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			var resp *clientv3.HashKVResponse
			resp, err = cli.HashKV(hctx, r.cfg.Lab.ClientAddr(h), rev)
			cancel()
			if err == nil {
				got = resp.Hash
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			rep.violate("hashkv %s: %v", h, err)
			continue
		}
		hashes[h] = got
	}
	rep.Hashes = map[string]string{}
	var first *uint32
	for h, v := range hashes {
		rep.Hashes[h] = fmt.Sprintf("%08x", v)
		if first == nil {
			first = &v
		} else if *first != v {
			rep.violate("peers disagree at revision %d: %v", rev, rep.Hashes)
			return
		}
	}
}

// failover measures, for each fault that removed the leader, the time to
// the first successful write after it, and the longest write outage.
func (r *runner) failover(rep *Report) {
	r.mu.Lock()
	writes := append([]span(nil), r.writes...)
	faults := append([]FaultReport(nil), r.faults...)
	r.mu.Unlock()
	var samples []time.Duration
	for i, f := range faults {
		if !f.RemovedLeader {
			continue
		}
		// Only writes sent after the fault count: one already in flight
		// may have committed before the leader went away.
		first := time.Duration(-1)
		for _, w := range writes {
			if w.call >= f.At && (first < 0 || w.ret < first) {
				first = w.ret
			}
		}
		if first >= 0 {
			d := first - f.At
			faults[i].FirstWriteAfter = d.String()
			samples = append(samples, d)
		}
	}
	rep.FaultLog = faults
	rets := make([]time.Duration, len(writes))
	for i, w := range writes {
		rets[i] = w.ret
	}
	sort.Slice(rets, func(i, j int) bool { return rets[i] < rets[j] })
	for i := 1; i < len(rets); i++ {
		if gap := rets[i] - rets[i-1]; gap > rep.longestOutage {
			rep.longestOutage = gap
		}
	}
	rep.LongestWriteOutage = rep.longestOutage.String()
	if len(samples) > 0 {
		sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
		rep.Failover = &Percentiles{
			Count: len(samples),
			P50:   samples[len(samples)/2].String(),
			P99:   samples[min(len(samples)-1, len(samples)*99/100)].String(),
			Max:   samples[len(samples)-1].String(),
		}
	}
}
