package raftstore

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/barge-dev/barge/raftstore/peer"
	"github.com/hashicorp/raft"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// leaderWatch lets callers wait for the next leader change without
// polling: each observation closes the current channel and opens a new one.
type leaderWatch struct {
	r   *raft.Raft
	obs chan raft.Observation
	// onNewLeader is called when a peer other than the last one seen
	// becomes leader (the first one seen counts too).
	onNewLeader func()
	lastLeader  raft.ServerID

	mu      sync.Mutex
	changed chan struct{}
}

func newLeaderWatch(r *raft.Raft, onNewLeader func()) *leaderWatch {
	lw := &leaderWatch{r: r, obs: make(chan raft.Observation, 16), changed: make(chan struct{}), onNewLeader: onNewLeader}
	r.RegisterObserver(raft.NewObserver(lw.obs, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	}))
	return lw
}

func (lw *leaderWatch) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-lw.obs:
			if lo, ok := o.Data.(raft.LeaderObservation); ok && lo.LeaderID != "" && lo.LeaderID != lw.lastLeader {
				lw.lastLeader = lo.LeaderID
				lw.onNewLeader()
			}
			lw.bump()
		}
	}
}

// bump wakes every waiter, for leadership events Raft does not observe
// itself (a new leader becoming ready).
func (lw *leaderWatch) bump() {
	lw.mu.Lock()
	close(lw.changed)
	lw.changed = make(chan struct{})
	lw.mu.Unlock()
}

func (lw *leaderWatch) next() <-chan struct{} {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.changed
}

// leader waits until some peer is known to lead and returns its address
// and ID.
func (lw *leaderWatch) leader(ctx context.Context) (raft.ServerAddress, raft.ServerID, error) {
	for {
		ch := lw.next()
		if addr, id := lw.r.LeaderWithID(); id != "" {
			return addr, id, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", "", rpctypes.ErrGRPCNoLeader
		}
	}
}

// leaderClients caches one peer RPC client for the current leader.
type leaderClients struct {
	mux *peer.Mux

	mu   sync.Mutex
	addr raft.ServerAddress
	cli  *peer.Client
}

func newLeaderClients(m *peer.Mux) *leaderClients { return &leaderClients{mux: m} }

func (lc *leaderClients) get(addr raft.ServerAddress) (*peer.Client, error) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.cli != nil && lc.addr == addr {
		return lc.cli, nil
	}
	if lc.cli != nil {
		lc.cli.Close()
		lc.cli = nil
	}
	cli, err := lc.mux.NewClient(string(addr))
	if err != nil {
		return nil, err
	}
	lc.addr, lc.cli = addr, cli
	return cli, nil
}

func (lc *leaderClients) close() {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.cli != nil {
		lc.cli.Close()
		lc.cli = nil
	}
}

// runLeadership reacts to Raft leadership changes: the leader-only duties
// (lease expiry, compaction, read-index service) start when this peer wins
// and stop the moment it loses, before any other peer can win.
func (s *Server) runLeadership(notify <-chan bool) {
	for {
		select {
		case <-s.ctx.Done():
			s.endTerm()
			return
		case isLeader := <-notify:
			if isLeader {
				s.beginTerm()
			} else {
				s.endTerm()
			}
		}
	}
}

func (s *Server) beginTerm() {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	if s.term.Load() != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	t := &leaderTerm{ctx: ctx, cancel: cancel, ready: make(chan struct{})}
	s.term.Store(t)
	s.goFn(func() { s.leadTerm(t) })
}

func (s *Server) endTerm() {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	if t := s.term.Swap(nil); t != nil {
		t.cancel()
		s.fsm.lessor.Demote()
		s.logger.Info("lost leadership")
	}
}

// leadTerm commits a no-op of the new term, which guarantees every entry
// of earlier terms is applied here, then takes up the leader's duties.
func (s *Server) leadTerm(t *leaderTerm) {
	start := time.Now()
	f := s.raft.Apply(encodeNoop(), 0)
	if err := f.Error(); err != nil {
		s.logger.Warn("leadership ended before the first commit", "err", err)
		return
	}
	res, _ := f.Response().(applyResult)
	s.termMu.Lock()
	if t.ctx.Err() != nil {
		s.termMu.Unlock()
		return
	}
	s.fsm.lessor.Promote()
	t.raftTerm = res.term
	close(t.ready)
	s.termMu.Unlock()
	s.leaderWatch.bump()
	s.logger.Info("became leader", "term", res.term, "ready_after", time.Since(start))
	s.goFn(func() { s.expireLeases(t.ctx) })
}

// waitReady returns the current term once this peer leads and has applied
// every earlier entry, or ErrGRPCNotLeader.
func (s *Server) waitReady(ctx context.Context) (*leaderTerm, error) {
	t := s.term.Load()
	if t == nil {
		return nil, rpctypes.ErrGRPCNotLeader
	}
	select {
	case <-t.ready:
		return t, nil
	case <-t.ctx.Done():
		return nil, rpctypes.ErrGRPCNotLeader
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// expireLeases proposes the revocation of leases whose TTL ran out. The
// decision is the leader's alone; the revoke is replicated like any write.
func (s *Server) expireLeases(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	inflight := map[int64]bool{}
	var mu sync.Mutex
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, id := range s.fsm.lessor.Expired(1000) {
			mu.Lock()
			busy := inflight[id]
			inflight[id] = true
			mu.Unlock()
			if busy {
				continue
			}
			go func(id int64) {
				defer func() { mu.Lock(); delete(inflight, id); mu.Unlock() }()
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				_, err := s.propose(rctx, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}})
				if err != nil && !errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) && ctx.Err() == nil {
					s.logger.Warn("lease expiry revoke failed", "lease", id, "err", err)
				}
			}(id)
		}
	}
}

// publishAttributes records this member's name and client URL in the
// replicated member table, retrying until it lands.
func (s *Server) publishAttributes() {
	req := &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
		Member_ID: s.id.MemberID,
		MemberAttributes: &membershippb.Attributes{
			Name:       s.cfg.Name,
			ClientUrls: []string{"https://" + s.cfg.AdvertiseClientAddr},
		},
	}}
	backoff := 50 * time.Millisecond
	for {
		if m, ok := s.fsm.members.get(s.id.MemberID); ok && m.Name == s.cfg.Name && len(m.ClientURLs) == 1 && m.ClientURLs[0] == "https://"+s.cfg.AdvertiseClientAddr {
			return
		}
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		_, err := s.propose(ctx, req)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff + rand.N(backoff)):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}
