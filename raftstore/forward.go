package raftstore

import (
	"context"
	"time"

	"github.com/barge-dev/barge/raftstore/peer"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"
)

// A follower forwards its clients' writes to the leader. One RPC per write
// costs more CPU than the write itself on a small machine, so writes that
// queue up while earlier forwards are in flight go together in one
// ProposeBatch call. An idle follower sends a lone write at once: batching
// only happens when there is a queue, and adds no latency to the first.
const (
	// forwardsInFlight bounds the concurrent batch RPCs to the leader. A
	// small number keeps the pipe to the leader full while leaving the
	// rest of the load to queue up and travel as one batch.
	forwardsInFlight = 2
	// maxForwardBatch and maxForwardBytes bound one batch; the byte limit
	// stays under gRPC's 4 MiB default message size, and one request (at
	// most 1.5 MiB, the store's limit) always fits.
	maxForwardBatch = 256
	maxForwardBytes = 3 << 20
)

// forwarder batches forwarded proposals.
type forwarder struct {
	in    chan *forwardItem
	slots chan struct{}
}

type forwardItem struct {
	ctx  context.Context
	cli  *peer.Client
	req  *pb.InternalRaftRequest
	size int
	done chan forwardOutcome // buffered: the sender never blocks
}

type forwardOutcome struct {
	resp proto.Message
	err  error
}

func newForwarder() *forwarder {
	return &forwarder{in: make(chan *forwardItem, maxForwardBatch), slots: make(chan struct{}, forwardsInFlight)}
}

// propose forwards req to the leader behind cli and returns the leader's
// response, or an error for withLeader to classify.
func (f *forwarder) propose(ctx context.Context, cli *peer.Client, req *pb.InternalRaftRequest) (proto.Message, error) {
	it := &forwardItem{ctx: ctx, cli: cli, req: req, size: proto.Size(req), done: make(chan forwardOutcome, 1)}
	select {
	case f.in <- it:
	case <-ctx.Done():
		return nil, toGRPC(ctx.Err())
	}
	select {
	case out := <-it.done:
		return out.resp, out.err
	case <-ctx.Done():
		return nil, toGRPC(ctx.Err())
	}
}

// run gathers batches until ctx ends. It takes a send slot before
// draining the queue, so everything that arrived while every slot was busy
// joins the batch.
func (f *forwarder) run(ctx context.Context) {
	var held *forwardItem // the first of the next batch, already dequeued
	for {
		first := held
		held = nil
		if first == nil {
			select {
			case <-ctx.Done():
				return
			case first = <-f.in:
			}
		}
		select {
		case <-ctx.Done():
			first.done <- forwardOutcome{err: rpctypes.ErrGRPCStopped}
			return
		case f.slots <- struct{}{}:
		}
		batch, size := []*forwardItem{first}, first.size
	drain:
		for len(batch) < maxForwardBatch {
			select {
			case it := <-f.in:
				if it.cli != first.cli || size+it.size > maxForwardBytes {
					held = it // for another leader, or too big to join
					break drain
				}
				batch, size = append(batch, it), size+it.size
			default:
				break drain
			}
		}
		go func() {
			defer func() { <-f.slots }()
			sendBatch(batch)
		}()
	}
}

// sendBatch makes one ProposeBatch call and hands each caller its result.
// The call lives as long as the most patient caller.
func sendBatch(batch []*forwardItem) {
	deadline := time.Now().Add(defaultRequestTimeout)
	for i, it := range batch {
		if dl, ok := it.ctx.Deadline(); ok && (i == 0 || dl.After(deadline)) {
			deadline = dl
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	reqs := make([]*pb.InternalRaftRequest, len(batch))
	for i, it := range batch {
		reqs[i] = it.req
	}
	rs, err := batch[0].cli.ProposeBatch(ctx, reqs)
	for i, it := range batch {
		if err != nil {
			it.done <- forwardOutcome{err: err}
			continue
		}
		if rs[i].Err != nil {
			it.done <- forwardOutcome{err: rs[i].Err}
			continue
		}
		resp, uerr := rs[i].Resp.UnmarshalNew()
		it.done <- forwardOutcome{resp: resp, err: uerr}
	}
}
