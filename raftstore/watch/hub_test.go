package watch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/barge-dev/barge/raftstore/mvcc"
)

// apply writes key=value to the store and tells the hub, as the FSM does.
func apply(s *mvcc.Store, h *Hub, kvs ...string) int64 {
	w := s.Write()
	for i := 0; i+1 < len(kvs); i += 2 {
		w.Put([]byte(kvs[i]), []byte(kvs[i+1]), 0)
	}
	rev, evs := w.End()
	h.Notify(rev, evs)
	return rev
}

func collect(t *testing.T, st *Stream, n int) []string {
	t.Helper()
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case r := <-st.Out():
			if r.Canceled {
				t.Fatalf("watch cancelled: %s", r.CancelReason)
			}
			for _, ev := range r.Events {
				got = append(got, fmt.Sprintf("%s=%s@%d", ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision))
			}
		case <-timeout:
			t.Fatalf("got %d of %d events: %v", len(got), n, got)
		}
	}
	return got
}

// TestSlowStreamNeverBlocksApply fills a tiny stream buffer far beyond its
// size while nobody reads, then checks the watcher still gets every event
// exactly once and in order from the catch-up path.
func TestSlowStreamNeverBlocksApply(t *testing.T) {
	s := mvcc.New()
	h := NewHub(s, Config{StreamBuffer: 2, SyncInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	st := h.NewStream(ctx)
	st.Watch(Spec{ID: 1, Key: []byte("k"), End: []byte("l")})
	var want []string
	for i := 0; i < 500; i++ { // would deadlock if Notify blocked
		rev := apply(s, h, "k", fmt.Sprint(i), "x", "ignored")
		want = append(want, fmt.Sprintf("k=%d@%d", i, rev))
	}
	got := collect(t, st, len(want))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events out of order or duplicated:\n got %v\nwant %v", got, want)
	}
	select {
	case r := <-st.Out():
		t.Fatalf("extra response after all events: %+v", r)
	default:
	}
}

func TestWatchFromPastRevisionAndFilters(t *testing.T) {
	s := mvcc.New()
	h := NewHub(s, Config{SyncInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	r1 := apply(s, h, "a", "1")
	apply(s, h, "b", "1")
	w := s.Write()
	w.DeleteRange([]byte("a"), nil)
	rev, evs := w.End()
	h.Notify(rev, evs)

	st := h.NewStream(ctx)
	st.Watch(Spec{ID: 7, Key: []byte("a"), End: []byte{0}, StartRev: r1, Filter: Filter{NoDelete: true}, PrevKV: true})
	got := collect(t, st, 2)
	if fmt.Sprint(got) != fmt.Sprint([]string{"a=1@2", "b=1@3"}) {
		t.Fatalf("got %v", got)
	}
	// Live events follow without a gap.
	apply(s, h, "c", "1")
	if got := collect(t, st, 1); got[0] != "c=1@5" {
		t.Fatalf("live event %v", got)
	}
}

func TestCompactedWatcherIsCancelled(t *testing.T) {
	s := mvcc.New()
	h := NewHub(s, Config{SyncInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	apply(s, h, "a", "1")
	apply(s, h, "a", "2")
	r3 := apply(s, h, "a", "3")
	if err := s.Compact(r3); err != nil {
		t.Fatal(err)
	}
	st := h.NewStream(ctx)
	st.Watch(Spec{ID: 1, Key: []byte("a"), StartRev: 2})
	select {
	case r := <-st.Out():
		if !r.Canceled || r.CompactRevision != r3 {
			t.Fatalf("got %+v, want a cancellation at compact revision %d", r, r3)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no cancellation for a compacted start revision")
	}
}

func TestProgressRequestOnlyWhenSynced(t *testing.T) {
	s := mvcc.New()
	h := NewHub(s, Config{StreamBuffer: 8})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rev := apply(s, h, "a", "1")
	st := h.NewStream(ctx)
	st.Watch(Spec{ID: 1, Key: []byte("a"), StartRev: rev}) // unsynced: hub not running
	if st.RequestProgress() {
		t.Fatal("progress promised while a watcher is still catching up")
	}
	st2 := h.NewStream(ctx)
	st2.Watch(Spec{ID: 1, Key: []byte("z")})
	if !st2.RequestProgress() {
		t.Fatal("no progress for a synced stream")
	}
	if r := <-st2.Out(); !r.Progress || r.WatchID != -1 || r.Revision != rev {
		t.Fatalf("progress response %+v", r)
	}
}

// countingSource counts the history reads a hub makes.
type countingSource struct {
	*mvcc.Store
	reads int
}

func (c *countingSource) EventsSince(key, end []byte, from int64, max int) ([]mvcc.RevEvent, int64, error) {
	c.reads++
	return c.Store.EventsSince(key, end, from, max)
}

// TestFullStreamHoldsResponses fills the streams of many watchers at once,
// as a GC pause or a busy core does to a gRPC sender, then drains them:
// each watcher gets every event once, in order, from the responses held
// for it, with no read of history; a progress request waits until nothing
// is held. A watcher that falls further behind than MaxPending goes back
// to history and still gets everything.
func TestFullStreamHoldsResponses(t *testing.T) {
	for _, tc := range []struct {
		name       string
		puts       int
		maxPending int
		reads      bool // history must be read
	}{
		{"held responses", 40, 64, false},
		{"too far behind", 1200, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st0 := mvcc.New()
			src := &countingSource{Store: st0}
			var slow int
			h := NewHub(src, Config{StreamBuffer: 8, MaxPending: tc.maxPending, SyncInterval: time.Hour, RetryInterval: time.Hour, OnSlow: func() { slow++ }})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st := h.NewStream(ctx)
			const watchers = 5
			for id := int64(1); id <= watchers; id++ {
				st.Watch(Spec{ID: id, Key: []byte("k"), End: []byte("l"), ProgressNotify: true})
			}
			var want []string
			for i := 0; i < tc.puts; i++ {
				rev := apply(st0, h, "k", fmt.Sprint(i))
				want = append(want, fmt.Sprintf("k=%d@%d", i, rev))
			}
			if slow == 0 {
				t.Fatal("no watcher found its stream full")
			}
			if st.RequestProgress() {
				t.Fatal("progress promised while responses are held")
			}
			got := map[int64][]string{}
			for done := false; !done; {
				select {
				case r := <-st.Out():
					for _, ev := range r.Events {
						got[r.WatchID] = append(got[r.WatchID], fmt.Sprintf("%s=%s@%d", ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision))
					}
				default:
					// The stream is empty: what the hub holds may go now,
					// as its timers would send it.
					h.retryPending()
					h.syncOnce()
					if len(st.Out()) == 0 {
						done = true
						for id := int64(1); id <= watchers; id++ {
							done = done && len(got[id]) == len(want)
						}
					}
				}
			}
			for id := int64(1); id <= watchers; id++ {
				if fmt.Sprint(got[id]) != fmt.Sprint(want) {
					t.Fatalf("watcher %d:\n got %v\nwant %v", id, got[id], want)
				}
			}
			if (src.reads > 0) != tc.reads {
				t.Fatalf("%d history reads; want reads: %v", src.reads, tc.reads)
			}
			if _, victims, unsynced := h.Counts(); victims != 0 || unsynced != 0 {
				t.Fatalf("after the drain %d watchers hold responses and %d are unsynced", victims, unsynced)
			}
			if !st.RequestProgress() {
				t.Fatal("no progress once everything was delivered")
			}
		})
	}
}
