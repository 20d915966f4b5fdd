package run

import (
	"context"
	"time"
)

// inject runs the schedule: each step injects its fault, holds it, and
// heals it, logging what it did and whether the leader was removed.
func (r *runner) inject(ctx context.Context, steps []Step, start time.Time) {
	lab := r.cfg.Lab
	servers := lab.Servers()
	for _, s := range steps {
		if !sleepUntil(ctx, start.Add(s.At)) {
			return
		}
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		leader, _ := lab.Leader(lctx)
		cancel()
		target := servers[s.Target]
		if s.Fault == FaultLeaderPartition && leader != "" {
			target = leader
		}
		others := make([]string, 0, len(servers)-1)
		for _, h := range servers {
			if h != target {
				others = append(others, h)
			}
		}
		fr := FaultReport{Fault: s.Fault, Target: target, At: time.Since(start), RemovedLeader: target == leader && s.Fault != FaultOneWay}
		var err error
		switch s.Fault {
		case FaultKill:
			err = lab.Kill(target)
		case FaultRestart:
			if err = lab.Kill(target); err == nil {
				err = lab.Start(target)
			}
		case FaultPause:
			err = lab.Pause(target)
		case FaultPartition, FaultLeaderPartition:
			err = lab.Partition([]string{target}, others, false)
		case FaultOneWay:
			// The target hears nothing but can still send: a leader in
			// this state keeps its followers' heartbeats coming.
			err = lab.Partition([]string{target}, others, true)
			fr.RemovedLeader = target == leader
		}
		if err != nil {
			fr.Error = err.Error()
			r.log.Warn("inject fault", "fault", s.Fault, "target", target, "err", err)
		}
		r.log.Info("fault", "fault", s.Fault, "target", target, "leader", leader, "at", fr.At.Round(time.Millisecond))
		sleepUntil(ctx, start.Add(s.At+s.Hold))
		fr.HealedAt = time.Since(start)
		switch s.Fault {
		case FaultKill:
			err = lab.Start(target)
		case FaultPause:
			err = lab.Resume(target)
		case FaultPartition, FaultLeaderPartition, FaultOneWay:
			err = lab.Heal()
		}
		if err != nil {
			r.log.Warn("heal fault", "fault", s.Fault, "target", target, "err", err)
		}
		r.mu.Lock()
		r.faults = append(r.faults, fr)
		r.mu.Unlock()
	}
	sleepUntil(ctx, start.Add(r.cfg.Duration))
}

// sleepUntil waits for a point on the run's own timeline; the schedule is
// wall-clock by design. It reports false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
