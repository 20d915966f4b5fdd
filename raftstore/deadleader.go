package raftstore

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// A leader killed with its host still up (kill -9, a crash, the OOM
// killer: the usual way a server dies) closes its Raft streams at once and
// leaves its port refusing connections. hashicorp/raft does not use that:
// each follower waits for its heartbeat timer, 1-2x HeartbeatTimeout, and
// the first to fire cannot win, because pre-vote and vote are refused by
// every peer that still knows a leader. An election therefore waits for
// the last of the followers' timers, 300-600 ms at 200 ms, and often for
// an election timeout more (measured: barge bench control).
//
// Here a follower whose inbound stream ends probes the leader; if the
// leader's port refuses the connection, it lowers its heartbeat timeout
// to the leader lease (the least hashicorp/raft allows) at a moment
// staggered by its rank among the surviving voters, which fires its timer
// at once. The lower ranks give up their leader first, so the one that
// goes last in a quorum finds every vote it needs free: an election about
// LeaderLeaseTimeout after the leader's last heartbeat. A partition or a
// dead host refuses nothing, and a starved leader closes nothing, so
// neither changes what Raft does; nor does a live leader, which answers
// the probe. The timeout goes back once a leader is seen.

// deadLeaderStagger separates the survivors' elections: enough for a
// lower rank to have become a candidate (and let go of its leader) before
// the next one asks for its vote.
const deadLeaderStagger = 25 * time.Millisecond

// watchDeadLeader runs for the server's lifetime.
func (s *Server) watchDeadLeader(ctx context.Context) {
	if s.cfg.LeaderLeaseTimeout >= s.cfg.HeartbeatTimeout {
		s.logger.Debug("fast election after a leader's death off: the leader lease is not below the heartbeat timeout")
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.mux.RaftStreamEnded():
		}
		s.electIfLeaderGone(ctx)
	}
}

func (s *Server) electIfLeaderGone(ctx context.Context) {
	r := s.raft
	if r.State() != raft.Follower {
		return
	}
	addr, id := r.LeaderWithID()
	if id == "" {
		return
	}
	last := r.LastContact()
	pctx, cancel := context.WithTimeout(ctx, s.cfg.HeartbeatTimeout/2)
	err := s.mux.Probe(pctx, string(addr))
	cancel()
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return // alive, or unreachable: Raft's own timers decide
	}
	rank, ok := s.survivorRank(id)
	if !ok {
		return
	}
	at := last.Add(s.cfg.LeaderLeaseTimeout + time.Duration(rank)*deadLeaderStagger)
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	if _, now := r.LeaderWithID(); now != id || r.State() != raft.Follower || r.LastContact().After(last) {
		return // a leader spoke since, or this peer moved on
	}
	changed := s.leaderWatch.next()
	rc := r.ReloadableConfig()
	rc.HeartbeatTimeout = s.cfg.LeaderLeaseTimeout
	if err := r.ReloadConfig(rc); err != nil {
		s.logger.Warn("fast election after a leader's death", "err", err)
		return
	}
	s.metrics.fastElections.Inc()
	s.logger.Info("leader's process is gone; electing now", "leader", string(id), "rank", rank,
		"sinceContactMs", time.Since(last).Milliseconds())
	defer func() {
		rc := r.ReloadableConfig()
		rc.HeartbeatTimeout = s.cfg.HeartbeatTimeout
		if err := r.ReloadConfig(rc); err != nil {
			s.logger.Warn("restore the heartbeat timeout", "err", err)
		}
	}()
	// Until a new leader is seen (or an election's worth of time), so a
	// candidate that lost keeps the short timer for its retry.
	wait := time.NewTimer(2 * (s.cfg.HeartbeatTimeout + s.cfg.ElectionTimeout))
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
			return
		case <-changed:
		}
		if _, now := r.LeaderWithID(); now != "" && now != id {
			return
		}
		changed = s.leaderWatch.next()
	}
}

// survivorRank is this peer's place among the voters other than the dead
// leader, ordered by ID, so that every survivor computes the same order.
func (s *Server) survivorRank(dead raft.ServerID) (int, bool) {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return 0, false
	}
	var ids []raft.ServerID
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter && srv.ID != dead {
			ids = append(ids, srv.ID)
		}
	}
	slices.Sort(ids)
	i := slices.Index(ids, serverID(s.id.MemberID))
	return i, i >= 0
}
