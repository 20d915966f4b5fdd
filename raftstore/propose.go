package raftstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/barge-dev/barge/raftstore/peer"
	"github.com/hashicorp/raft"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// defaultRequestTimeout bounds a request whose context has no deadline, as
// etcd bounds proposals, so a lost quorum surfaces as an error.
const defaultRequestTimeout = 10 * time.Second

// propose replicates req through the leader and returns its response. A
// follower forwards to the leader; if leadership moves before the entry
// is appended anywhere, the request is retried on the new leader.
func (s *Server) propose(ctx context.Context, req *pb.InternalRaftRequest) (proto.Message, error) {
	prop, err := newFencedProposal(ctx, req)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultRequestTimeout)
		defer cancel()
	}
	// failed tells a write that did not make it into the log (or whose
	// fate is unknown) from one applied with an etcd error of its own.
	failed := false
	resp, err := withLeader(ctx, s, func(ctx context.Context) (proto.Message, error) {
		out := s.proposer.submit(ctx, nil, prop)
		if out.err != nil {
			failed = true
			return nil, out.err
		}
		failed = false
		return out.res.resp, out.res.err
	}, func(ctx context.Context, c *peer.Client) (proto.Message, error) {
		s.metrics.proposalsForwarded.Inc()
		out := s.forwarder.submit(ctx, c, prop)
		// The leader sends an applied request's own error as a result
		// error too; only the transport's and Raft's count as failures.
		failed = out.err != nil && !isEtcdResultError(out.err)
		return out.res.resp, out.err
	})
	if err != nil && (failed || ctx.Err() != nil) {
		s.metrics.proposalsFailed.Inc()
	}
	return resp, err
}

// isEtcdResultError reports errors a request applied to the store can
// answer with (a failed compare, a missing lease, a compacted revision),
// as opposed to failures to replicate it.
func isEtcdResultError(err error) bool {
	switch rpctypes.ErrorDesc(err) {
	case rpctypes.ErrorDesc(rpctypes.ErrGRPCNotLeader), rpctypes.ErrorDesc(rpctypes.ErrGRPCLeaderChanged),
		rpctypes.ErrorDesc(rpctypes.ErrGRPCTimeout), rpctypes.ErrorDesc(rpctypes.ErrGRPCStopped),
		rpctypes.ErrorDesc(rpctypes.ErrGRPCNoLeader):
		return false
	}
	return true
}

// withLeader runs local on the leader or remote against it, following
// leadership changes while the error says the request never reached a log.
func withLeader[T any](ctx context.Context, s *Server, local func(context.Context) (T, error), remote func(context.Context, *peer.Client) (T, error)) (T, error) {
	var zero T
	for {
		changed := s.leaderWatch.next()
		var (
			out T
			err error
		)
		if s.raft.State() == raft.Leader {
			out, err = local(ctx)
		} else {
			addr, _, lerr := s.leaderWatch.leader(ctx)
			if lerr != nil {
				return zero, lerr
			}
			cli, cerr := s.leaders.get(addr)
			if cerr != nil {
				return zero, cerr
			}
			out, err = remote(ctx, cli)
			err = forwardError(err)
		}
		if !retryable(err) {
			return out, err
		}
		// The leader we chose is not leading: wait for news, then retry.
		select {
		case <-changed:
		case <-ctx.Done():
			return zero, toGRPC(ctx.Err())
		case <-time.After(s.cfg.HeartbeatTimeout):
			// Knowledge of a new leader can arrive without an observation
			// on this peer (e.g. the old leader's view is stale).
		}
	}
}

// retryable reports errors that guarantee the request was not appended to
// any log, so sending it again cannot apply it twice.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, rpctypes.ErrGRPCNotLeader) {
		return true
	}
	return rpctypes.ErrorDesc(err) == rpctypes.ErrorDesc(rpctypes.ErrGRPCNotLeader)
}

// forwardError classifies a failure to reach the leader. A request that
// never left this peer (the leader's port refused the connection, as when
// it was just killed) becomes "not leader", so it is retried once a new
// leader is known. A connection lost after sending leaves the outcome
// unknown, which etcd reports as "leader changed"; clients see that
// instead of a raw transport error.
func forwardError(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return err
	}
	if _, known := rpctypes.Error(err).(rpctypes.EtcdError); known {
		return err // the leader answered with an etcd error of its own
	}
	if strings.Contains(st.Message(), "Error while dialing") {
		return rpctypes.ErrGRPCNotLeader
	}
	return rpctypes.ErrGRPCLeaderChanged
}

// applyOutcome is one request's fate in applyLocalAll: err is a failure to
// replicate, res the applied result (which may carry an etcd error).
type applyOutcome struct {
	res applyResult
	err error
}

// applyLocalAll appends every request on this peer, which must lead, in
// order and without waiting in between, so Raft can put them in one batch
// (BatchApplyCh), then waits for each to apply here.
func (s *Server) applyLocalAll(ctx context.Context, reqs []peer.Proposal) []applyOutcome {
	out := make([]applyOutcome, len(reqs))
	timeout := defaultRequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	start := time.Now()
	futures := make([]raft.ApplyFuture, len(reqs))
	for i, req := range reqs {
		data, err := encodeProposal(req)
		if err != nil {
			out[i].err = err
			continue
		}
		futures[i] = s.raft.Apply(data, timeout)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, f := range futures {
			if f != nil {
				out[i] = applyOutcomeOf(f)
				if out[i].err == nil {
					observeSince(s.metrics.commit, start)
				}
			}
		}
	}()
	select {
	case <-done:
		return out
	case <-ctx.Done():
		// The entries may still commit; the caller can only say it
		// stopped waiting. out stays with the waiter goroutine.
		lost := make([]applyOutcome, len(reqs))
		for i := range lost {
			lost[i].err = toGRPC(ctx.Err())
		}
		return lost
	}
}

func applyOutcomeOf(f raft.ApplyFuture) applyOutcome {
	if err := f.Error(); err != nil {
		return applyOutcome{err: raftError(err)}
	}
	res, ok := f.Response().(applyResult)
	if !ok {
		return applyOutcome{err: rpctypes.ErrGRPCStopped}
	}
	return applyOutcome{res: res}
}

// raftError maps hashicorp/raft errors to the etcd errors clients know.
func raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return rpctypes.ErrGRPCNotLeader
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return rpctypes.ErrGRPCLeaderChanged
	case errors.Is(err, raft.ErrRaftShutdown):
		return rpctypes.ErrGRPCStopped
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return rpctypes.ErrGRPCTimeout
	}
	return err
}

func toGRPC(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return rpctypes.ErrGRPCTimeout
	case errors.Is(err, context.Canceled):
		return err
	}
	return err
}

// leaderService is what this peer serves to followers while it leads.
type leaderService struct{ s *Server }

func (l *leaderService) ProposeBatch(ctx context.Context, reqs []peer.Proposal) ([]peer.Result, error) {
	if l.s.raft.State() != raft.Leader {
		return nil, rpctypes.ErrGRPCNotLeader
	}
	outs := l.s.proposer.submitAll(ctx, nil, reqs)
	rs := make([]peer.Result, len(outs))
	for i, o := range outs {
		switch {
		case o.err != nil:
			rs[i].Err = o.err
		case o.res.err != nil:
			rs[i].Err = o.res.err
		default:
			rs[i].Resp, rs[i].Err = anypb.New(o.res.resp)
		}
	}
	return rs, nil
}

func (l *leaderService) ReadIndex(ctx context.Context) (uint64, error) {
	return l.s.localReadIndex(ctx)
}

func (l *leaderService) LeaseKeepAlive(ctx context.Context, id int64) (int64, error) {
	return l.s.localKeepAlive(ctx, id)
}

func (l *leaderService) LeaseTimeToLive(ctx context.Context, req *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	return l.s.localTimeToLive(ctx, req)
}

func (l *leaderService) MemberAdd(ctx context.Context, req *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	return l.s.localMemberAdd(ctx, req)
}

func (l *leaderService) MemberRemove(ctx context.Context, req *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	return l.s.localMemberRemove(ctx, req)
}

func (l *leaderService) MemberPromote(ctx context.Context, req *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	return l.s.localMemberPromote(ctx, req)
}

func (l *leaderService) MoveLeader(ctx context.Context, req *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	return l.s.localMoveLeader(ctx, req)
}
