package leader

import (
	"context"
	"log/slog"
	"sync"
)

// Leadership is what the runner needs from the store peer.
type Leadership interface {
	// ReadyLeader reports whether this peer leads and has committed an
	// entry of its term, so everything earlier is applied locally.
	ReadyLeader() bool
	// LeaderChange returns a channel closed at the next change.
	LeaderChange() <-chan struct{}
}

// Run calls work with a context that lives exactly as long as one term of
// leadership, for every term this peer wins, until ctx ends. It returns
// after the last work call has returned.
func Run(ctx context.Context, l Leadership, logger *slog.Logger, work func(ctx context.Context)) {
	var (
		wg     sync.WaitGroup
		cancel context.CancelFunc
	)
	stop := func() {
		if cancel != nil {
			cancel()
			cancel = nil
			wg.Wait()
			logger.Info("leader-only work stopped")
		}
	}
	defer stop()
	for {
		// Take the channel before reading the state, so a change between
		// the two is never missed.
		changed := l.LeaderChange()
		switch lead := l.ReadyLeader(); {
		case lead && cancel == nil:
			termCtx, termCancel := context.WithCancel(ctx)
			cancel = termCancel
			wg.Add(1)
			go func() {
				defer wg.Done()
				work(termCtx)
			}()
			logger.Info("leader-only work started")
		case !lead:
			stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}
