package raftstore

import (
	"context"
	"time"

	"github.com/barge-dev/barge/raftstore/peer"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"
)

// Writes are batched twice on their way into the log, both times the same
// way: a batch goes out at once while the in-flight limit is not reached,
// and whatever queues meanwhile goes out together next. An idle cluster
// adds no latency to a lone write; a busy one pays for one disk commit,
// one Raft round and one forward per batch rather than per write, which
// is what bounds throughput on a small machine.
//
//   - A follower forwards its clients' writes to the leader in one
//     ProposeBatch call per batch (Server.forwarder, forwardBatch below).
//   - The leader appends the writes it receives, its own clients' and the
//     followers' batches alike, with back-to-back raft.Apply calls, which
//     Raft (BatchApplyCh) stores with one commit (Server.proposer,
//     appendBatch below).
const (
	// forwardsInFlight bounds a follower's concurrent batch calls; two
	// keep the leader's queue fed while one call travels back.
	forwardsInFlight = 2
	// appendsInFlight bounds the leader's batches between raft.Apply and
	// their apply. With one, everything that arrives while a batch
	// commits goes into the next, as etcd's leader gathers proposals
	// while it persists. Two let the leader's disk write overlap the
	// followers', but halve the batches: in `barge bench store` (16
	// clients, one shared disk) that cost 20-30% more CPU per write.
	appendsInFlight = 1
	// maxBatch and maxBatchBytes bound one batch. The byte limit stays
	// under gRPC's 4 MiB default message size, and one request (at most
	// 1.5 MiB, the store's limit) always fits.
	maxBatch      = 256
	maxBatchBytes = 3 << 20
)

// proposal is one write on its way to the log.
type proposal struct {
	ctx  context.Context
	p    peer.Proposal
	size int
	cli  *peer.Client      // the leader to forward to; nil on the leader
	done chan applyOutcome // buffered: the batch never blocks on a caller
}

func newProposal(ctx context.Context, cli *peer.Client, p peer.Proposal) *proposal {
	return &proposal{ctx: ctx, p: p, size: proto.Size(p.Req), cli: cli, done: make(chan applyOutcome, 1)}
}

// batcher gathers proposals into batches and hands each to process, with
// at most inFlight batches being processed at once.
type batcher struct {
	in      chan *proposal
	slots   chan struct{}
	process func([]*proposal)
}

func newBatcher(inFlight int, process func([]*proposal)) *batcher {
	return &batcher{in: make(chan *proposal, maxBatch), slots: make(chan struct{}, inFlight), process: process}
}

// submit queues one proposal and waits for its outcome or for ctx to end.
func (b *batcher) submit(ctx context.Context, cli *peer.Client, p peer.Proposal) applyOutcome {
	return b.submitAll(ctx, cli, []peer.Proposal{p})[0]
}

// submitAll queues every request before waiting for any, so that they can
// share a batch.
func (b *batcher) submitAll(ctx context.Context, cli *peer.Client, reqs []peer.Proposal) []applyOutcome {
	if out, ok := b.direct(ctx, cli, reqs); ok {
		return out
	}
	out := make([]applyOutcome, len(reqs))
	queued := make([]*proposal, 0, len(reqs))
	for i, req := range reqs {
		p := newProposal(ctx, cli, req)
		select {
		case b.in <- p:
			queued = append(queued, p)
		case <-ctx.Done():
			out[i].err = toGRPC(ctx.Err())
		}
	}
	for i, p := range queued {
		select {
		case out[i] = <-p.done:
		case <-ctx.Done():
			out[i].err = toGRPC(ctx.Err())
		}
	}
	return out
}

// direct processes reqs as one batch on the caller's goroutine when a slot
// is free and nothing is queued: then there is nothing to wait for or to
// join, and two goroutine hand-offs are a measurable part of an idle
// cluster's write latency. It reports false, having done nothing, when
// the requests must queue.
func (b *batcher) direct(ctx context.Context, cli *peer.Client, reqs []peer.Proposal) ([]applyOutcome, bool) {
	if len(b.in) > 0 {
		return nil, false
	}
	select {
	case b.slots <- struct{}{}:
	default:
		return nil, false
	}
	defer func() { <-b.slots }()
	batch, size := make([]*proposal, len(reqs)), 0
	for i, req := range reqs {
		batch[i] = newProposal(ctx, cli, req)
		size += batch[i].size
	}
	if len(batch) > maxBatch || size > maxBatchBytes {
		return nil, false
	}
	b.process(batch)
	out := make([]applyOutcome, len(batch))
	for i, p := range batch {
		out[i] = <-p.done // process answers every proposal before returning
	}
	return out, true
}

// run gathers batches until ctx ends. It takes a slot before draining the
// queue, so everything that arrived while every slot was busy joins.
func (b *batcher) run(ctx context.Context) {
	var held *proposal // the first of the next batch, already dequeued
	for {
		first := held
		held = nil
		if first == nil {
			select {
			case <-ctx.Done():
				return
			case first = <-b.in:
			}
		}
		select {
		case <-ctx.Done():
			first.done <- applyOutcome{err: rpctypes.ErrGRPCStopped}
			return
		case b.slots <- struct{}{}:
		}
		batch, size := []*proposal{first}, first.size
	drain:
		for len(batch) < maxBatch {
			select {
			case p := <-b.in:
				if p.cli != first.cli || size+p.size > maxBatchBytes {
					held = p // for another leader, or too big to join
					break drain
				}
				batch, size = append(batch, p), size+p.size
			default:
				break drain
			}
		}
		go func() {
			defer func() { <-b.slots }()
			b.process(batch)
		}()
	}
}

// batchContext lives as long as the most patient proposal of the batch:
// one caller giving up must not cancel the others. A batch of one
// caller's requests simply uses that caller's context.
func batchContext(batch []*proposal) (context.Context, context.CancelFunc) {
	if shared := batch[0].ctx; allWithContext(batch, shared) {
		return shared, func() {}
	}
	deadline := time.Now().Add(defaultRequestTimeout)
	for i, p := range batch {
		if dl, ok := p.ctx.Deadline(); ok && (i == 0 || dl.After(deadline)) {
			deadline = dl
		}
	}
	return context.WithDeadline(context.Background(), deadline)
}

func allWithContext(batch []*proposal, ctx context.Context) bool {
	for _, p := range batch {
		if p.ctx != ctx {
			return false
		}
	}
	return true
}

func proposalsOf(batch []*proposal) []peer.Proposal {
	ps := make([]peer.Proposal, len(batch))
	for i, p := range batch {
		ps[i] = p.p
	}
	return ps
}

// appendBatch is the leader's process: append the batch here.
func (s *Server) appendBatch(batch []*proposal) {
	ctx, cancel := batchContext(batch)
	defer cancel()
	outs := s.applyLocalAll(ctx, proposalsOf(batch))
	for i, p := range batch {
		p.done <- outs[i]
	}
}

// forwardBatch is a follower's process: one ProposeBatch call to the
// leader, each caller getting its own result. Errors are left for
// withLeader to classify.
func forwardBatch(batch []*proposal) {
	ctx, cancel := batchContext(batch)
	defer cancel()
	rs, err := batch[0].cli.ProposeBatch(ctx, proposalsOf(batch))
	for i, p := range batch {
		switch {
		case err != nil:
			p.done <- applyOutcome{err: err}
		case rs[i].Err != nil:
			p.done <- applyOutcome{err: rs[i].Err}
		default:
			resp, uerr := rs[i].Resp.UnmarshalNew()
			p.done <- applyOutcome{res: applyResult{resp: resp}, err: uerr}
		}
	}
}
