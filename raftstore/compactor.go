package raftstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// runCompactor compacts history automatically. Every peer samples
// revisions for as long as it runs, but only the leader compacts; the
// compaction is a replicated request like any. Sampling on followers too
// (etcd pauses its compactor on followers but keeps recording) means a
// new leader compacts on schedule instead of waiting a whole retention
// window of its own: with leadership moving more often than that, history
// would otherwise never be compacted, and continue tokens and watches of
// old revisions would never expire as Kubernetes expects.
func (s *Server) runCompactor(ctx context.Context) {
	switch s.cfg.CompactionMode {
	case CompactionPeriodic:
		s.compactPeriodic(ctx, s.cfg.CompactionRetention)
	case CompactionRevision:
		s.compactByRevision(ctx, s.cfg.CompactionRevisions)
	}
}

// compactPeriodic keeps history for retention: it samples the revision ten
// times per retention window and compacts to the sample that has aged
// past it, as etcd's periodic compactor does.
func (s *Server) compactPeriodic(ctx context.Context, retention time.Duration) {
	interval := max(retention/10, 100*time.Millisecond)
	type sample struct {
		at  time.Time
		rev int64
	}
	var samples []sample
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			samples = append(samples, sample{at: now, rev: s.fsm.store.Rev()})
			target := int64(0)
			for len(samples) > 0 && now.Sub(samples[0].at) >= retention {
				target = samples[0].rev
				samples = samples[1:]
			}
			if target > 0 {
				if tctx, ok := s.leading(); ok {
					s.compactTo(tctx, target)
				}
			}
		}
	}
}

func (s *Server) compactByRevision(ctx context.Context, keep int64) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			tctx, ok := s.leading()
			if rev := s.fsm.store.Rev() - keep; ok && rev > 0 {
				s.compactTo(tctx, rev)
			}
		}
	}
}

// compactRevKey is where Kubernetes API servers record the revision they
// compacted to, and where every API server's watch cache learns of
// compactions (and so answers 410 for older list snapshots). The automatic
// compactor records its compactions there too, so API servers on barge
// need no compactor of their own.
const compactRevKey = "compact_rev_key"

// leading returns the current term's context once this peer leads and
// has committed its term's first entry.
func (s *Server) leading() (context.Context, bool) {
	t := s.term.Load()
	if t == nil {
		return nil, false
	}
	select {
	case <-t.ready:
		return t.ctx, true
	default:
		return nil, false
	}
}

func (s *Server) compactTo(ctx context.Context, rev int64) {
	// Revision 1 is the empty store: compacting to it removes nothing.
	if rev <= 1 || rev <= s.fsm.store.CompactRev() {
		return
	}
	_, err := s.propose(ctx, &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: rev}})
	if err == nil {
		_, err = s.propose(ctx, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(compactRevKey), Value: []byte(strconv.FormatInt(rev, 10))}})
	}
	switch {
	case err == nil:
		s.logger.Info("compacted history", "revision", rev)
	case errors.Is(err, rpctypes.ErrGRPCCompacted), ctx.Err() != nil:
	default:
		s.logger.Warn("automatic compaction failed", "revision", rev, "err", err)
	}
}
