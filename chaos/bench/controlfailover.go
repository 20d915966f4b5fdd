package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ControlFailover is the kill series of one setup: SIGKILL of the server
// whose scheduler and controllers are active, timed to the first pod the
// new leader binds.
type ControlFailover struct {
	Kills     int       `json:"kills"`
	SamplesMs []float64 `json:"samplesMs"` // kill → probe pod seen bound, in kill order
	Failed    int       `json:"failed"`    // kills after which no probe was bound within failoverWait
	P50Ms     float64   `json:"p50Ms"`
	MaxMs     float64   `json:"maxMs"`
	// Phases are where each kill's time went; PhasesP50 their medians.
	Phases    []FailoverPhases `json:"phases"`
	PhasesP50 FailoverPhases   `json:"phasesP50"`
}

// FailoverPhases times one failover from the kill, in milliseconds, from
// the new leader's log (ms resolution) and the bench's own clock; 0 where
// the log had no such line.
type FailoverPhases struct {
	NewLeader string `json:"newLeader"`
	// LeaderMs: barge — the new Raft leader has committed its first entry
	// (raftstore "became leader"); etcd mode — the Lease was won.
	LeaderMs    float64 `json:"leaderMs"`
	StartedMs   float64 `json:"startedMs"`   // leader-only work started
	BuiltMs     float64 `json:"builtMs"`     // scheduler and controllers constructed
	SchedulerMs float64 `json:"schedulerMs"` // scheduler synced and running
	CreatedMs   float64 `json:"createdMs"`   // the probe pod's create acknowledged
	BoundMs     float64 `json:"boundMs"`     // the probe pod seen bound
}

// activeServer is the index of the server whose controllers are active:
// barge's Raft leader, or etcd mode's Lease holder.
func (s *setup) activeServer(ctx context.Context) (int, error) {
	if s.etcd == nil {
		cli, err := s.servers.Client()
		if err != nil {
			return -1, err
		}
		defer cli.Close()
		return s.servers.WaitHealthy(ctx, cli, controlReadyWait)
	}
	var idx = -1
	err := s.poll(ctx, controlReadyWait, func(ctx context.Context) (bool, error) {
		for _, c := range s.clients {
			l, err := c.CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, controlLeaseName, metav1.GetOptions{})
			if err != nil || l.Spec.HolderIdentity == nil {
				continue
			}
			for i, m := range s.servers.Members {
				if h := *l.Spec.HolderIdentity; h == m.Name || strings.HasPrefix(h, m.Name+"_") {
					idx = i
					return m.running(), nil
				}
			}
		}
		return false, nil
	})
	return idx, err
}

// failover kills the active server kills times. Before each kill a pod
// is bound (the active scheduler works); right after it a probe pod is
// created through a survivor, retried until a survivor takes it, and the
// sample is the kill → the probe seen bound. The killed server restarts
// on its data dir, and the next kill waits until it is ready and warm.
func (s *setup) failover(ctx context.Context, kills int) (ControlFailover, error) {
	res := ControlFailover{Kills: kills}
	if err := s.createNamespace(ctx, nsFailover); err != nil {
		return res, err
	}
	var samples []time.Duration
	for k := range kills {
		lead, err := s.activeServer(ctx)
		if err != nil {
			return res, fmt.Errorf("%s before kill %d: %w", s.name, k+1, err)
		}
		var survivors []int
		for i := range s.servers.Members {
			if i != lead {
				survivors = append(survivors, i)
			}
		}
		w, err := s.watchBound(ctx, nsFailover, survivors[0])
		if err != nil {
			return res, err
		}
		pre := fmt.Sprintf("before-%02d", k)
		if _, err := s.clients[survivors[0]].CoreV1().Pods(nsFailover).Create(ctx, benchPod(pre, nil), metav1.CreateOptions{}); err != nil {
			w.stop()
			return res, fmt.Errorf("%s before kill %d: %w", s.name, k+1, err)
		}
		if err := s.poll(ctx, controlReadyWait, func(context.Context) (bool, error) { _, ok := w.at(pre); return ok, nil }); err != nil {
			w.stop()
			return res, fmt.Errorf("%s before kill %d: pod %s not bound: %w", s.name, k+1, pre, err)
		}
		offsets := make([]int64, len(s.servers.Members))
		for i, m := range s.servers.Members {
			offsets[i] = logSize(m)
		}
		m := s.servers.Members[lead]
		// Timed from the SIGKILL: waiting for the process to be reaped
		// takes a moment on a busy machine, and the survivors' clocks run
		// from the signal.
		killed := time.Now()
		m.kill()
		probe := fmt.Sprintf("probe-%02d", k)
		created := s.createProbe(ctx, survivors, probe, killed)
		var bound time.Time
		_ = s.poll(ctx, failoverWait, func(context.Context) (bool, error) {
			t, ok := w.at(probe)
			bound = t
			return ok, nil
		})
		w.stop()
		off := logSize(m)
		if err := m.start(); err != nil {
			return res, fmt.Errorf("restart %s: %w", m.Name, err)
		}
		if err := s.waitServer(ctx, lead, off); err != nil {
			return res, err
		}
		// Read once the killed server is back: the new leader builds its
		// controllers while its scheduler already binds, so their line
		// comes after the probe's bind.
		ph := s.phases(survivors, offsets, killed)
		if !created.IsZero() {
			ph.CreatedMs = ms(created.Sub(killed))
		}
		if bound.IsZero() {
			res.Failed++
			s.log.Warn("no probe pod bound after the kill", "kill", k+1, "killed", m.Name, "within", failoverWait)
		} else {
			d := bound.Sub(killed)
			ph.BoundMs = ms(d)
			samples = append(samples, d)
			res.SamplesMs = append(res.SamplesMs, ms(d))
			s.log.Info("active server killed", "kill", k+1, "of", kills, "killed", m.Name, "newLeader", ph.NewLeader,
				"boundMs", ph.BoundMs, "leaderMs", ph.LeaderMs, "startedMs", ph.StartedMs, "builtMs", ph.BuiltMs, "schedulerMs", ph.SchedulerMs, "createdMs", ph.CreatedMs)
		}
		res.Phases = append(res.Phases, ph)
	}
	l := Summarize(slices.Clone(samples))
	res.P50Ms, res.MaxMs = ms(l.P50), ms(l.Max)
	res.PhasesP50 = medianPhases(res.Phases)
	return res, nil
}

// createProbe creates the probe pod through the survivors in turn, each
// attempt with a short deadline, until one takes it or failoverWait
// passes; it returns when the create was acknowledged (zero: never).
func (s *setup) createProbe(ctx context.Context, survivors []int, name string, since time.Time) time.Time {
	for i := 0; time.Since(since) < failoverWait && ctx.Err() == nil; i++ {
		c := s.clients[survivors[i%len(survivors)]]
		cctx, cancel := context.WithTimeout(ctx, probeAttemptTO)
		_, err := c.CoreV1().Pods(nsFailover).Create(cctx, benchPod(name, nil), metav1.CreateOptions{})
		cancel()
		if err == nil || isAlreadyExists(err) {
			return time.Now()
		}
	}
	return time.Time{}
}

// phases reads the survivors' logs past the kill for the new leader's
// milestones. The new leader is the survivor that started leader-only
// work.
func (s *setup) phases(survivors []int, offsets []int64, killed time.Time) FailoverPhases {
	var ph FailoverPhases
	since := func(t time.Time, ok bool) float64 {
		if !ok {
			return 0
		}
		return ms(t.Sub(killed))
	}
	leaderMsg := msgRaftLeader
	if s.etcd != nil {
		leaderMsg = msgLeaseWon
	}
	for _, i := range survivors {
		m := s.servers.Members[i]
		t, ok := findLog(m.logPath, offsets[i], msgWorkStarted)
		if !ok {
			continue
		}
		ph.NewLeader = m.Name
		ph.StartedMs = since(t, ok)
		ph.LeaderMs = since(findLog(m.logPath, offsets[i], leaderMsg))
		ph.BuiltMs = since(findLog(m.logPath, offsets[i], msgBuilt))
		ph.SchedulerMs = since(findLog(m.logPath, offsets[i], msgSchedStarted))
		break
	}
	return ph
}

// medianPhases is each phase's median over the kills that had it.
func medianPhases(all []FailoverPhases) FailoverPhases {
	med := func(f func(FailoverPhases) float64) float64 {
		var v []time.Duration
		for _, p := range all {
			if x := f(p); x > 0 {
				v = append(v, time.Duration(x*float64(time.Millisecond)))
			}
		}
		return ms(Summarize(v).P50)
	}
	return FailoverPhases{
		LeaderMs:    med(func(p FailoverPhases) float64 { return p.LeaderMs }),
		StartedMs:   med(func(p FailoverPhases) float64 { return p.StartedMs }),
		BuiltMs:     med(func(p FailoverPhases) float64 { return p.BuiltMs }),
		SchedulerMs: med(func(p FailoverPhases) float64 { return p.SchedulerMs }),
		CreatedMs:   med(func(p FailoverPhases) float64 { return p.CreatedMs }),
		BoundMs:     med(func(p FailoverPhases) float64 { return p.BoundMs }),
	}
}
