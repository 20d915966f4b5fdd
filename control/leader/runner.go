package leader

import (
	"context"
	"log/slog"
	"sync"
)

// Leadership is what the runner needs from the store peer.
type Leadership interface {
	// LeaderTerm reports whether this server leads and is ready to act
	// (the store peer has committed an entry of its term, so everything
	// earlier is applied locally), and the term its leadership began in:
	// the Raft term writes are fenced to, or 0 where there is no fencing.
	LeaderTerm() (term uint64, ready bool)
	// LeaderChange returns a channel closed at the next change.
	LeaderChange() <-chan struct{}
}

// Run calls work with a context that lives exactly as long as one term of
// leadership, and that term, for every term this server wins, until ctx
// ends. It returns after the last work call has returned.
func Run(ctx context.Context, l Leadership, logger *slog.Logger, work func(ctx context.Context, term uint64)) {
	var (
		wg      sync.WaitGroup
		cancel  context.CancelFunc
		running uint64
	)
	stop := func() {
		if cancel != nil {
			cancel()
			cancel = nil
			wg.Wait()
			logger.Info("leader-only work stopped", "term", running)
		}
	}
	defer stop()
	for {
		// Take the channel before reading the state, so a change between
		// the two is never missed.
		changed := l.LeaderChange()
		term, lead := l.LeaderTerm()
		if cancel != nil && (!lead || term != running) {
			// Lost, or lost and won again in between: a new term's work
			// never shares a moment with an old one's.
			stop()
		}
		if lead && cancel == nil {
			termCtx, termCancel := context.WithCancel(ctx)
			cancel, running = termCancel, term
			wg.Add(1)
			go func() {
				defer wg.Done()
				work(termCtx, term)
			}()
			logger.Info("leader-only work started", "term", term)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}
