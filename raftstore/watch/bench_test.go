package watch

import (
	"context"
	"fmt"
	"testing"

	"github.com/barge-dev/barge/raftstore/mvcc"
)

// BenchmarkNotifyFanOut is the apply-side cost of one put seen by 1,000
// watchers on its prefix, spread over 4 streams as 4 client connections
// would spread them. The streams are drained after each put, so no
// watcher ever falls back to catch-up and only the fan-out is measured.
func BenchmarkNotifyFanOut(b *testing.B) {
	s := mvcc.New()
	h := NewHub(s, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	streams := make([]*Stream, 4)
	for i := range streams {
		streams[i] = h.NewStream(ctx)
		for j := range 250 {
			streams[i].Watch(Spec{ID: int64(i*250 + j), Key: []byte("w/"), End: []byte("w0")})
		}
	}
	val := make([]byte, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		w := s.Write()
		w.Put(fmt.Appendf(nil, "w/%d", i%100), val, 0)
		rev, evs := w.End()
		h.Notify(rev, evs)
		for _, st := range streams {
			for range 250 {
				if r := <-st.Out(); len(r.Events) != 1 {
					b.Fatalf("response with %d events, want 1", len(r.Events))
				}
			}
		}
	}
}
