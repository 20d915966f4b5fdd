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
	changed chan struct{}
}

func newFake() *fakeLeadership { return &fakeLeadership{changed: make(chan struct{})} }

func (f *fakeLeadership) ReadyLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

func (f *fakeLeadership) LeaderChange() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func (f *fakeLeadership) set(leader bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
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
		Run(ctx, f, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c context.Context) {
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
