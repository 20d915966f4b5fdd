package raftstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/barge-dev/barge/raftstore/peer"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// echoProcess answers every proposal of a batch with a PutResponse whose
// revision is the batch's size, and reports each batch on seen once it
// may finish (release).
func echoProcess(seen chan<- []*proposal, release <-chan struct{}) func([]*proposal) {
	return func(batch []*proposal) {
		seen <- batch
		<-release
		for _, p := range batch {
			p.done <- applyOutcome{res: applyResult{resp: &pb.PutResponse{Header: &pb.ResponseHeader{Revision: int64(len(batch))}}}}
		}
	}
}

func putReq(i int) peer.Proposal {
	return peer.Proposal{Req: &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: fmt.Appendf(nil, "k%d", i)}}}
}

// TestBatcherGathersWhileBusy: a lone proposal goes at once; those that
// queue while the only slot is busy go out together, in order.
func TestBatcherGathersWhileBusy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen, release := make(chan []*proposal, 4), make(chan struct{})
	b := newBatcher(1, echoProcess(seen, release))
	go b.run(ctx)

	first := make(chan applyOutcome, 1)
	go func() { first <- b.submit(ctx, nil, putReq(0)) }()
	if got := len(<-seen); got != 1 {
		t.Fatalf("first batch has %d proposals, want the lone one", got)
	}
	// The only slot is busy until release: queue three directly (as
	// submitAll would), so they are all waiting when it frees.
	rest := []*proposal{newProposal(ctx, nil, putReq(1)), newProposal(ctx, nil, putReq(2)), newProposal(ctx, nil, putReq(3))}
	for _, p := range rest {
		b.in <- p
	}
	release <- struct{}{}
	batch := <-seen
	if len(batch) != 3 {
		t.Fatalf("second batch has %d proposals, want 3", len(batch))
	}
	for i, p := range batch {
		if p != rest[i] {
			t.Errorf("proposal %d of the batch is %s, want %s", i, p.p.Req.Put.Key, rest[i].p.Req.Put.Key)
		}
	}
	release <- struct{}{}
	if out := <-first; out.err != nil || out.res.resp.(*pb.PutResponse).Header.Revision != 1 {
		t.Errorf("first outcome %+v", out)
	}
	for i, p := range rest {
		if out := <-p.done; out.err != nil || out.res.resp.(*pb.PutResponse).Header.Revision != 3 {
			t.Errorf("outcome %d: %+v", i, out)
		}
	}
}

// TestBatcherSplitsByLeader: proposals for different leaders never share
// a batch, since one batch is one call to one leader.
func TestBatcherSplitsByLeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen, release := make(chan []*proposal, 4), make(chan struct{})
	close(release)
	b := newBatcher(1, echoProcess(seen, release))
	a, c := &peer.Client{}, &peer.Client{}
	// Queue before run starts, so all three are waiting together.
	ps := []*proposal{newProposal(ctx, a, putReq(0)), newProposal(ctx, a, putReq(1)), newProposal(ctx, c, putReq(2))}
	for _, p := range ps {
		b.in <- p
	}
	go b.run(ctx)
	if got := <-seen; len(got) != 2 || got[0].cli != a || got[1].cli != a {
		t.Fatalf("first batch %v, want the two for leader a", got)
	}
	if got := <-seen; len(got) != 1 || got[0].cli != c {
		t.Fatalf("second batch %v, want the one for leader c", got)
	}
}

// TestBatcherCallerGivesUp: a caller whose context has ended gets its
// error at once, whether or not its proposal made it into the queue.
func TestBatcherCallerGivesUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen, release := make(chan []*proposal, 4), make(chan struct{})
	close(release)
	b := newBatcher(1, echoProcess(seen, release))
	b.slots <- struct{}{} // every slot busy: the proposal cannot go direct
	go b.run(ctx)
	callerCtx, giveUp := context.WithCancel(ctx)
	giveUp()
	if got := b.submit(callerCtx, nil, putReq(0)); !errors.Is(got.err, context.Canceled) {
		t.Fatalf("caller got %v, want context.Canceled", got.err)
	}
}

// TestBatcherDirectWhenIdle: with a slot free and nothing queued, the
// caller's goroutine processes its own batch, without the run loop.
func TestBatcherDirectWhenIdle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen, release := make(chan []*proposal, 4), make(chan struct{})
	close(release)
	b := newBatcher(1, echoProcess(seen, release)) // run is never started
	outs := b.submitAll(ctx, nil, []peer.Proposal{putReq(0), putReq(1)})
	for i, out := range outs {
		if out.err != nil || out.res.resp.(*pb.PutResponse).Header.Revision != 2 {
			t.Errorf("outcome %d: %+v", i, out)
		}
	}
	if len(b.slots) != 0 {
		t.Fatal("the slot was not given back")
	}
}
