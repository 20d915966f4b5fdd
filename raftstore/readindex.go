package raftstore

import (
	"context"

	"github.com/barge-dev/barge/raftstore/peer"
	"github.com/hashicorp/raft"
)

// readBatcher shares one leadership confirmation among every linearizable
// read that arrives while the previous confirmation is in flight, which is
// what keeps read throughput from being bounded by heartbeat round trips.
type readBatcher struct {
	r   *raft.Raft
	f   *fsm
	req chan chan readResult
}

type readResult struct {
	index uint64
	err   error
}

func newReadBatcher(r *raft.Raft, f *fsm) *readBatcher {
	return &readBatcher{r: r, f: f, req: make(chan chan readResult, 1024)}
}

func (b *readBatcher) run(ctx context.Context) {
	for {
		var batch []chan readResult
		select {
		case <-ctx.Done():
			return
		case first := <-b.req:
			batch = append(batch, first)
		}
	drain:
		for {
			select {
			case more := <-b.req:
				batch = append(batch, more)
			default:
				break drain
			}
		}
		// Every request in the batch arrived before this index was read,
		// so any write acknowledged before they started is covered by it.
		res := readResult{index: b.f.appliedIndex()}
		if err := b.r.VerifyLeader().Error(); err != nil {
			res = readResult{err: raftError(err)}
		}
		for _, ch := range batch {
			ch <- res
		}
	}
}

// localReadIndex confirms this peer still leads and returns the index a
// reader must wait for.
func (s *Server) localReadIndex(ctx context.Context) (uint64, error) {
	if _, err := s.waitReady(ctx); err != nil {
		return 0, err
	}
	ch := make(chan readResult, 1)
	select {
	case s.reads.req <- ch:
	case <-ctx.Done():
		return 0, toGRPC(ctx.Err())
	}
	select {
	case res := <-ch:
		return res.index, res.err
	case <-ctx.Done():
		return 0, toGRPC(ctx.Err())
	}
}

// linearizableWait returns once this peer has applied everything that was
// committed when the read began, wherever the read was sent.
func (s *Server) linearizableWait(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultRequestTimeout)
		defer cancel()
	}
	idx, err := withLeader(ctx, s, s.localReadIndex, func(ctx context.Context, c *peer.Client) (uint64, error) {
		return c.ReadIndex(ctx)
	})
	if err != nil {
		return err
	}
	return toGRPC(s.fsm.waitApplied(ctx, idx))
}
