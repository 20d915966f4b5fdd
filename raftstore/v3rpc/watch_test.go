package v3rpc

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/barge-dev/barge/raftstore/watch"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// rawStream speaks the watch protocol directly, to see every message
// clientv3 would hide.
type rawStream struct {
	t      *testing.T
	s      pb.Watch_WatchClient
	cancel context.CancelFunc
	resps  chan *pb.WatchResponse
}

func openRaw(t *testing.T, cli *clientv3.Client) *rawStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	rs := &rawStream{t: t, s: s, cancel: cancel, resps: make(chan *pb.WatchResponse, 1024)}
	go func() {
		defer close(rs.resps)
		for {
			r, err := s.Recv()
			if err != nil {
				return
			}
			rs.resps <- r
		}
	}()
	t.Cleanup(cancel)
	return rs
}

func (rs *rawStream) send(req *pb.WatchRequest) {
	rs.t.Helper()
	if err := rs.s.Send(req); err != nil {
		rs.t.Fatal(err)
	}
}

func (rs *rawStream) create(c *pb.WatchCreateRequest) {
	rs.t.Helper()
	rs.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: c}})
}

func (rs *rawStream) cancelWatch(id int64) {
	rs.t.Helper()
	rs.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: id}}})
}

func (rs *rawStream) progress() {
	rs.t.Helper()
	rs.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})
}

func (rs *rawStream) next() *pb.WatchResponse {
	rs.t.Helper()
	select {
	case r, ok := <-rs.resps:
		if !ok {
			rs.t.Fatal("watch stream ended")
		}
		return r
	case <-time.After(5 * time.Second):
		rs.t.Fatal("no watch response")
	}
	return nil
}

// created reads the reply to a create and checks it succeeded.
func (rs *rawStream) created() *pb.WatchResponse {
	rs.t.Helper()
	r := rs.next()
	if !r.Created || r.Canceled {
		rs.t.Fatalf("want created reply, got %v", r)
	}
	return r
}

func setup(t *testing.T) (*fakeBackend, *testServer, *clientv3.Client) {
	b := newFakeBackend(t)
	ts := startServer(t, b, Config{})
	return b, ts, newClient(t, ts)
}

func TestWatchCreateReplies(t *testing.T) {
	tests := []struct {
		name       string
		req        *pb.WatchCreateRequest
		wantID     int64
		wantCancel string // empty: the create succeeds
	}{
		{"single key", &pb.WatchCreateRequest{Key: []byte("a")}, 0, ""},
		{"range", &pb.WatchCreateRequest{Key: []byte("a"), RangeEnd: []byte("b")}, 0, ""},
		{"from key", &pb.WatchCreateRequest{Key: []byte("z"), RangeEnd: []byte{0}}, 0, ""},
		// etcd reads an empty key as "\x00" rather than refusing it.
		{"empty key", &pb.WatchCreateRequest{}, 0, ""},
		{"client chosen id", &pb.WatchCreateRequest{Key: []byte("a"), WatchId: 42}, 42, ""},
		{"inverted range", &pb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte("a")}, -1, reasonEmptyRange},
		{"empty range", &pb.WatchCreateRequest{Key: []byte("a"), RangeEnd: []byte("a")}, -1, reasonEmptyRange},
		{"negative start", &pb.WatchCreateRequest{Key: []byte("a"), StartRevision: -1}, -1, rpctypes.ErrCompacted.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _, cli := setup(t)
			b.put("x", "1")
			rs := openRaw(t, cli)
			rs.create(tc.req)
			r := rs.next()
			if !r.Created || r.WatchId != tc.wantID || r.Canceled != (tc.wantCancel != "") || r.CancelReason != tc.wantCancel {
				t.Fatalf("got %v", r)
			}
			wantHeader(t, "created", r.Header, 2)
		})
	}
}

func TestWatchIDs(t *testing.T) {
	_, _, cli := setup(t)
	rs := openRaw(t, cli)
	steps := []struct {
		id, want int64
	}{
		{0, 0},  // auto IDs start at 0
		{2, 2},  // client-chosen
		{0, 1},  // auto
		{0, 3},  // auto skips 2, in use
		{2, -1}, // duplicate
		{0, 4},
	}
	for i, st := range steps {
		rs.create(&pb.WatchCreateRequest{Key: []byte("k"), WatchId: st.id})
		r := rs.next()
		if !r.Created || r.WatchId != st.want || r.Canceled != (st.want == -1) {
			t.Fatalf("step %d: got %v", i, r)
		}
		if st.want == -1 && r.CancelReason != reasonDuplicateID {
			t.Fatalf("step %d: reason %q", i, r.CancelReason)
		}
	}
	// Once cancelled, an ID may be used again.
	rs.cancelWatch(2)
	if r := rs.next(); !r.Canceled || r.WatchId != 2 || r.Created {
		t.Fatalf("cancel reply %v", r)
	}
	rs.create(&pb.WatchCreateRequest{Key: []byte("k"), WatchId: 2})
	if r := rs.created(); r.WatchId != 2 {
		t.Fatalf("re-created as %d", r.WatchId)
	}
}

type evWant struct {
	typ        mvccpb.Event_EventType
	key, value string
	prev       string // "" means no prev_kv
}

func TestWatchEvents(t *testing.T) {
	type op struct{ put, del, value string }
	tests := []struct {
		name   string
		before []op // applied before the watch starts
		key    string
		opts   []clientv3.OpOption
		after  []op
		want   []evWant
	}{
		{
			name:  "single key",
			key:   "a",
			after: []op{{put: "a", value: "1"}, {put: "b", value: "1"}, {put: "a", value: "2"}, {del: "a"}},
			want:  []evWant{{mvccpb.PUT, "a", "1", ""}, {mvccpb.PUT, "a", "2", ""}, {mvccpb.DELETE, "a", "", ""}},
		},
		{
			name:  "prefix",
			key:   "p/",
			opts:  []clientv3.OpOption{clientv3.WithPrefix()},
			after: []op{{put: "p/1", value: "x"}, {put: "q", value: "x"}, {put: "p/2", value: "y"}},
			want:  []evWant{{mvccpb.PUT, "p/1", "x", ""}, {mvccpb.PUT, "p/2", "y", ""}},
		},
		{
			name:  "prev kv",
			key:   "a",
			opts:  []clientv3.OpOption{clientv3.WithPrevKV()},
			after: []op{{put: "a", value: "1"}, {put: "a", value: "2"}, {del: "a"}},
			want:  []evWant{{mvccpb.PUT, "a", "1", ""}, {mvccpb.PUT, "a", "2", "1"}, {mvccpb.DELETE, "a", "", "2"}},
		},
		{
			name:  "no prev kv unless asked",
			key:   "a",
			after: []op{{put: "a", value: "1"}, {put: "a", value: "2"}},
			want:  []evWant{{mvccpb.PUT, "a", "1", ""}, {mvccpb.PUT, "a", "2", ""}},
		},
		{
			name:  "filter puts",
			key:   "a",
			opts:  []clientv3.OpOption{clientv3.WithFilterPut()},
			after: []op{{put: "a", value: "1"}, {del: "a"}, {put: "a", value: "2"}, {del: "a"}},
			want:  []evWant{{mvccpb.DELETE, "a", "", ""}, {mvccpb.DELETE, "a", "", ""}},
		},
		{
			name:  "filter deletes",
			key:   "a",
			opts:  []clientv3.OpOption{clientv3.WithFilterDelete()},
			after: []op{{put: "a", value: "1"}, {del: "a"}, {put: "a", value: "2"}},
			want:  []evWant{{mvccpb.PUT, "a", "1", ""}, {mvccpb.PUT, "a", "2", ""}},
		},
		{
			name:   "from history",
			before: []op{{put: "a", value: "1"}, {put: "a", value: "2"}}, // revisions 2, 3
			key:    "a",
			opts:   []clientv3.OpOption{clientv3.WithRev(3), clientv3.WithPrevKV()},
			after:  []op{{put: "a", value: "3"}},
			want:   []evWant{{mvccpb.PUT, "a", "2", "1"}, {mvccpb.PUT, "a", "3", "2"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _, cli := setup(t)
			apply := func(ops []op) {
				for _, o := range ops {
					if o.put != "" {
						b.put(o.put, o.value)
					} else {
						b.del(o.del, "")
					}
				}
			}
			apply(tc.before)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wch := cli.Watch(ctx, tc.key, append([]clientv3.OpOption{clientv3.WithCreatedNotify()}, tc.opts...)...)
			if r := <-wch; !r.Created {
				t.Fatalf("first response not created: %+v", r)
			}
			apply(tc.after)
			var got []*mvccpb.Event
			timeout := time.After(5 * time.Second)
			for len(got) < len(tc.want) {
				select {
				case r, ok := <-wch:
					if !ok || r.Err() != nil {
						t.Fatalf("watch ended: %v", r.Err())
					}
					for _, ev := range r.Events {
						got = append(got, (*mvccpb.Event)(ev))
					}
				case <-timeout:
					t.Fatalf("got %d of %d events", len(got), len(tc.want))
				}
			}
			for i, w := range tc.want {
				ev := got[i]
				if ev.Type != w.typ || string(ev.Kv.Key) != w.key || string(ev.Kv.Value) != w.value {
					t.Errorf("event %d = %v %q=%q, want %v %q=%q", i, ev.Type, ev.Kv.Key, ev.Kv.Value, w.typ, w.key, w.value)
				}
				prev := ""
				if ev.PrevKv != nil {
					prev = string(ev.PrevKv.Value)
				}
				if prev != w.prev {
					t.Errorf("event %d prev = %q, want %q", i, prev, w.prev)
				}
			}
		})
	}
}

func TestWatchCancel(t *testing.T) {
	b, _, cli := setup(t)
	rs := openRaw(t, cli)
	rs.create(&pb.WatchCreateRequest{Key: []byte("a"), WatchId: 7})
	rs.created()
	rev := b.put("a", "1")
	if r := rs.next(); r.WatchId != 7 || len(r.Events) != 1 || r.Header.Revision != rev {
		t.Fatalf("event %v", r)
	}

	rs.cancelWatch(7)
	r := rs.next()
	if !r.Canceled || r.Created || r.WatchId != 7 {
		t.Fatalf("cancel reply %v", r)
	}
	wantHeader(t, "cancel", r.Header, rev)

	// Neither the cancelled watcher nor a cancel of an unknown ID produce
	// anything more: the next message is the progress reply.
	b.put("a", "2")
	rs.cancelWatch(99)
	rs.progress()
	r = rs.next()
	if r.WatchId != -1 || len(r.Events) != 0 || r.Canceled || r.Created {
		t.Fatalf("want progress reply, got %v", r)
	}
}

func TestWatchProgressRequest(t *testing.T) {
	b, _, cli := setup(t)
	b.put("x", "1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wch := cli.Watch(ctx, "a", clientv3.WithCreatedNotify())
	<-wch
	rev := b.put("x", "2") // an event the watcher does not see
	if err := cli.RequestProgress(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-wch:
		if !r.IsProgressNotify() || r.Header.Revision != rev {
			t.Fatalf("want progress at %d, got %+v", rev, r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no progress notification")
	}
}

func TestWatchProgressNotify(t *testing.T) {
	b := newFakeBackendWith(t, watch.Config{ProgressInterval: 20 * time.Millisecond})
	cli := newClient(t, startServer(t, b, Config{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wch := cli.Watch(ctx, "a", clientv3.WithCreatedNotify(), clientv3.WithProgressNotify())
	<-wch
	select {
	case r := <-wch:
		if !r.IsProgressNotify() {
			t.Fatalf("want progress notification, got %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no progress notification")
	}
}

func TestWatchCompacted(t *testing.T) {
	b, _, cli := setup(t)
	for i := range 4 {
		b.put("a", fmt.Sprint(i)) // revisions 2..5
	}
	if err := b.store.Compact(4); err != nil {
		t.Fatal(err)
	}
	rs := openRaw(t, cli)
	rs.create(&pb.WatchCreateRequest{Key: []byte("a"), StartRevision: 2, WatchId: 3})
	rs.created()
	r := rs.next()
	if !r.Canceled || r.WatchId != 3 || r.CompactRevision != 4 {
		t.Fatalf("want compaction cancel, got %v", r)
	}
	// The hub dropped the watcher, so its ID is free again.
	rs.create(&pb.WatchCreateRequest{Key: []byte("a"), WatchId: 3})
	rs.created()
}

// TestWatchCreatedPrecedesEvents creates watchers while their key is being
// written to, through both the live path (start at the current revision)
// and the catch-up path (start in history), and checks that no event ever
// arrives for a watch ID whose created reply has not.
func TestWatchCreatedPrecedesEvents(t *testing.T) {
	b, _, cli := setup(t)
	b.put("k", "0")
	rs := openRaw(t, cli)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b.put("k", fmt.Sprint(i))
		}
	}()

	const n = 100
	for i := range n {
		req := &pb.WatchCreateRequest{Key: []byte("k")}
		if i%2 == 1 {
			req.StartRevision = 2
		}
		rs.create(req)
	}
	created := map[int64]bool{}
	events := 0
	for len(created) < n || events < n {
		r := rs.next()
		switch {
		case r.Created:
			if r.Canceled {
				t.Fatalf("create refused: %v", r)
			}
			created[r.WatchId] = true
		case len(r.Events) > 0:
			if !created[r.WatchId] {
				t.Fatalf("events for watch %d before its created reply", r.WatchId)
			}
			events += len(r.Events)
		}
	}
}

func TestWatchHalfClose(t *testing.T) {
	b, _, cli := setup(t)
	rs := openRaw(t, cli)
	rs.create(&pb.WatchCreateRequest{Key: []byte("a")})
	rs.created()
	if err := rs.s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	// As in etcd (and as the grpc-gateway needs), watchers outlive the
	// request half of the stream.
	b.put("a", "1")
	if r := rs.next(); len(r.Events) != 1 {
		t.Fatalf("want event after half-close, got %v", r)
	}
}

func TestWatchStreamEnds(t *testing.T) {
	tests := []struct {
		name      string
		halfClose bool
	}{
		{"cancel", false},
		{"half close then cancel", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, ts, cli := setup(t)
			rs := openRaw(t, cli)
			rs.create(&pb.WatchCreateRequest{Key: []byte("a")})
			rs.created()
			if tc.halfClose {
				_ = rs.s.CloseSend()
			}
			rs.cancel()
			eventually(t, "handler to return", func() bool { return ts.activeStreams() == 0 })
			streams := b.watchStreams()
			if len(streams) != 1 {
				t.Fatalf("%d hub streams opened", len(streams))
			}
			select {
			case <-streams[0].Done():
			default:
				t.Fatal("hub stream context still live; watchers leak")
			}
			b.put("a", "1") // nobody to deliver to; must not block or panic
		})
	}
}

// sendRecorder is a server stream that records what is sent.
type sendRecorder struct {
	grpc.ServerStream
	ctx  context.Context
	mu   sync.Mutex
	sent []*pb.WatchResponse
}

func (r *sendRecorder) Context() context.Context { return r.ctx }
func (r *sendRecorder) Recv() (*pb.WatchRequest, error) {
	<-r.ctx.Done()
	return nil, r.ctx.Err()
}
func (r *sendRecorder) Send(m *pb.WatchResponse) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, m)
	return nil
}

// TestWatchReusedIDDropsStaleEvents checks that events the hub queued for
// a cancelled watcher are not delivered under a new watcher that reuses
// its ID. The sender is driven by hand to hold the stale event in the
// hub's queue across the cancel and re-create.
func TestWatchReusedIDDropsStaleEvents(t *testing.T) {
	b := newFakeBackend(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &sendRecorder{ctx: ctx}
	ws := &watchSession{b: b, maxBytes: 1 << 20, stream: rec, hub: b.WatchStream(ctx),
		byClient: map[int64]int64{}, byHub: map[int64]*watchEntry{}}

	if err := ws.create(&pb.WatchCreateRequest{Key: []byte("old"), WatchId: 5}); err != nil {
		t.Fatal(err)
	}
	b.put("old", "stale")
	if err := ws.cancel(5); err != nil {
		t.Fatal(err)
	}
	if err := ws.create(&pb.WatchCreateRequest{Key: []byte("new"), WatchId: 5}); err != nil {
		t.Fatal(err)
	}
	b.put("new", "fresh")
	for range 2 {
		select {
		case r := <-ws.hub.Out():
			if err := ws.forward(r); err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("hub queued nothing")
		}
	}
	var keys []string
	for _, m := range rec.sent {
		for _, ev := range m.Events {
			keys = append(keys, string(ev.Kv.Key))
		}
	}
	if len(keys) != 1 || keys[0] != "new" {
		t.Fatalf("delivered events for keys %q, want only \"new\"", keys)
	}
}

func TestSendFragments(t *testing.T) {
	ev := func(size int) *mvccpb.Event {
		return &mvccpb.Event{Kv: &mvccpb.KeyValue{Key: []byte("k"), Value: bytes.Repeat([]byte("v"), size)}}
	}
	tests := []struct {
		name      string
		sizes     []int
		wantSizes []int // events per message
	}{
		{"small", []int{10, 10, 10}, []int{3}},
		{"one huge event", []int{5000}, []int{1}},
		{"split", []int{400, 400, 400, 400, 400}, []int{2, 2, 1}},
		{"huge among small", []int{10, 5000, 10}, []int{1, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wr := &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 9}, WatchId: 4}
			for _, s := range tc.sizes {
				wr.Events = append(wr.Events, ev(s))
			}
			var got []*pb.WatchResponse
			err := sendFragments(wr, 1000, func(m *pb.WatchResponse) error { got = append(got, m); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.wantSizes) {
				t.Fatalf("%d messages, want %d", len(got), len(tc.wantSizes))
			}
			for i, m := range got {
				if len(m.Events) != tc.wantSizes[i] {
					t.Errorf("message %d has %d events, want %d", i, len(m.Events), tc.wantSizes[i])
				}
				if last := i == len(got)-1; m.Fragment == last {
					t.Errorf("message %d fragment=%v", i, m.Fragment)
				}
				if m.WatchId != 4 || m.Header.Revision != 9 {
					t.Errorf("message %d lost its identity: %v", i, m)
				}
			}
		})
	}
}

func TestWatchNoGoroutineLeak(t *testing.T) {
	b, ts, cli := setup(t)
	openAndClose := func(n int) {
		var streams []*rawStream
		for range n {
			rs := openRaw(t, cli)
			rs.create(&pb.WatchCreateRequest{Key: []byte("a"), StartRevision: 1})
			rs.create(&pb.WatchCreateRequest{Key: []byte("a")})
			for created := 0; created < 2; {
				if r := rs.next(); r.Created {
					created++
				}
			}
			streams = append(streams, rs)
		}
		b.put("a", "x")
		for _, rs := range streams {
			rs.next()
			rs.cancel()
			for range rs.resps { // until the reader goroutine ends
			}
		}
		eventually(t, "handlers to return", func() bool { return ts.activeStreams() == 0 })
	}
	openAndClose(1) // warm up the connection's own goroutines
	base := runtime.NumGoroutine()
	openAndClose(20)
	eventually(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}

// TestWatchFragmentEndToEnd has one revision's events exceed the message
// limit; the watcher asked for fragments and clientv3 reassembles them.
func TestWatchFragmentEndToEnd(t *testing.T) {
	b := newFakeBackend(t)
	cli := newClient(t, startServer(t, b, Config{MaxRequestBytes: 1024}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wch := cli.Watch(ctx, "f/", clientv3.WithPrefix(), clientv3.WithFragment(), clientv3.WithCreatedNotify())
	<-wch
	rs := openRaw(t, cli)
	rs.create(&pb.WatchCreateRequest{Key: []byte("f/"), RangeEnd: []byte("f0"), Fragment: true})
	rs.created()

	value := bytes.Repeat([]byte("v"), 200<<10)
	b.mu.Lock()
	w := b.store.Write()
	for i := range 4 {
		w.Put([]byte(fmt.Sprintf("f/%d", i)), value, 0)
	}
	rev, evs := w.End()
	b.hub.Notify(rev, evs)
	b.mu.Unlock()

	select {
	case r := <-wch:
		if len(r.Events) != 4 || r.Header.Revision != rev {
			t.Fatalf("got %d events at %d", len(r.Events), r.Header.Revision)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no events")
	}
	for n, events := 0, 0; events < 4; n++ {
		r := rs.next()
		events += len(r.Events)
		if r.Fragment != (events < 4) {
			t.Fatalf("message %d: fragment=%v after %d events", n, r.Fragment, events)
		}
		if n == 0 && !r.Fragment {
			t.Fatal("oversized response was not fragmented")
		}
	}
}
