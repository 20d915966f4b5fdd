package leader

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
)

// fakeLeadership is a hand-driven leadership signal.
type fakeLeadership struct {
	mu      sync.Mutex
	leader  bool
	term    uint64
	changed chan struct{}
}

func newFake() *fakeLeadership { return &fakeLeadership{changed: make(chan struct{})} }

func (f *fakeLeadership) LeaderTerm() (uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.term, f.leader
}

func (f *fakeLeadership) LeaderChange() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func (f *fakeLeadership) set(leader bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if leader {
		f.term++
	}
	f.leader = leader
	close(f.changed)
	f.changed = make(chan struct{})
}

func TestRunFollowsLeadership(t *testing.T) {
	f := newFake()
	started := make(chan context.Context)
	ended := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Run(ctx, f, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c context.Context, _ uint64) {
			started <- c
			<-c.Done()
			ended <- struct{}{}
		})
		close(done)
	}()
	for term := 0; term < 3; term++ {
		f.set(true)
		c := <-started
		if c.Err() != nil {
			t.Fatalf("term %d: work started with a dead context", term)
		}
		f.set(false)
		<-ended
	}
	f.set(true)
	<-started
	cancel()
	<-ended
	<-done
}

// TestRunRestartsOnANewTerm: leadership lost and won again between two
// looks (a new term, no non-leader state seen) still stops the old
// term's work before the new one starts.
func TestRunRestartsOnANewTerm(t *testing.T) {
	f := newFake()
	type start struct {
		ctx  context.Context
		term uint64
	}
	started := make(chan start)
	ended := make(chan uint64)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Run(ctx, f, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c context.Context, term uint64) {
		started <- start{c, term}
		<-c.Done()
		ended <- term
	})
	f.set(true)
	first := <-started
	f.set(true) // term 2 without a loss in between
	if got := <-ended; got != first.term {
		t.Fatalf("term %d ended, want %d", got, first.term)
	}
	if second := <-started; second.term != first.term+1 {
		t.Fatalf("second work got term %d, want %d", second.term, first.term+1)
	}
}
