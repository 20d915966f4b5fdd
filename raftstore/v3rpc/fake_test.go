package v3rpc

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/barge-dev/barge/raftstore/mvcc"
	"github.com/barge-dev/barge/raftstore/watch"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

const (
	testClusterID = 11
	testMemberID  = 22
	testTerm      = 33
)

// fakeBackend serves keys from a real mvcc.Store and watches from a real
// watch.Hub, and canned answers for everything else.
type fakeBackend struct {
	store *mvcc.Store
	hub   *watch.Hub

	mu       sync.Mutex // serialises writes, so the hub is notified in order
	err      error      // when set, every request method fails with it
	txnResp  *pb.TxnResponse
	leases   map[int64]int64
	snapshot []byte
	streams  []context.Context // contexts of opened watch streams
}

func newFakeBackend(t *testing.T) *fakeBackend {
	t.Helper()
	return newFakeBackendWith(t, watch.Config{})
}

func newFakeBackendWith(t *testing.T, hcfg watch.Config) *fakeBackend {
	t.Helper()
	st := mvcc.New()
	if hcfg.SyncInterval == 0 {
		hcfg.SyncInterval = 5 * time.Millisecond
	}
	hcfg.Logger = slog.New(slog.DiscardHandler)
	hub := watch.NewHub(st, hcfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { hub.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &fakeBackend{store: st, hub: hub, leases: map[int64]int64{}}
}

func (f *fakeBackend) fail() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *fakeBackend) Header() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: testClusterID, MemberId: testMemberID, RaftTerm: testTerm, Revision: f.store.Rev()}
}

// put writes key=value as one revision and tells the hub.
func (f *fakeBackend) put(key, value string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.store.Write()
	w.Put([]byte(key), []byte(value), 0)
	rev, evs := w.End()
	f.hub.Notify(rev, evs)
	return rev
}

func (f *fakeBackend) del(key, end string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.store.Write()
	w.DeleteRange([]byte(key), []byte(end))
	rev, evs := w.End()
	f.hub.Notify(rev, evs)
	return rev
}

func (f *fakeBackend) Range(_ context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	res, err := f.store.Range(r.Key, r.RangeEnd, mvcc.RangeOptions{Rev: r.Revision, Limit: r.Limit})
	if err != nil {
		return nil, err
	}
	// Header left nil on purpose: v3rpc must fill it.
	return &pb.RangeResponse{Kvs: res.KVs, Count: res.Count}, nil
}

func (f *fakeBackend) Put(_ context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	rev := f.put(string(r.Key), string(r.Value))
	// Only the revision, as the FSM reports a write.
	return &pb.PutResponse{Header: &pb.ResponseHeader{Revision: rev}}, nil
}

func (f *fakeBackend) DeleteRange(_ context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	rev := f.del(string(r.Key), string(r.RangeEnd))
	return &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{Revision: rev}}, nil
}

func (f *fakeBackend) Txn(context.Context, *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.txnResp != nil {
		return f.txnResp, nil
	}
	return &pb.TxnResponse{Succeeded: true}, nil
}

func (f *fakeBackend) Compact(_ context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	if err := f.store.Compact(r.Revision); err != nil {
		return nil, rpctypes.ErrGRPCCompacted
	}
	return &pb.CompactionResponse{}, nil
}

func (f *fakeBackend) WatchStream(ctx context.Context) *watch.Stream {
	f.mu.Lock()
	f.streams = append(f.streams, ctx)
	f.mu.Unlock()
	return f.hub.NewStream(ctx)
}

func (f *fakeBackend) watchStreams() []context.Context {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]context.Context(nil), f.streams...)
}

func (f *fakeBackend) LeaseGrant(_ context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leases[r.ID] = r.TTL
	return &pb.LeaseGrantResponse{ID: r.ID, TTL: r.TTL}, nil
}

func (f *fakeBackend) LeaseRevoke(_ context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.leases[r.ID]; !ok {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	delete(f.leases, r.ID)
	return &pb.LeaseRevokeResponse{}, nil
}

// LeaseKeepAlive reports unknown lease 404 with an error and other unknown
// leases with TTL 0, the two ways a backend may say "not found".
func (f *fakeBackend) LeaseKeepAlive(_ context.Context, id int64) (int64, error) {
	if err := f.fail(); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if id == 404 {
		return 0, rpctypes.ErrGRPCLeaseNotFound
	}
	return f.leases[id], nil
}

func (f *fakeBackend) LeaseTimeToLive(_ context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ttl, ok := f.leases[r.ID]
	if !ok {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	return &pb.LeaseTimeToLiveResponse{ID: r.ID, TTL: ttl, GrantedTTL: ttl}, nil
}

func (f *fakeBackend) LeaseLeases(context.Context, *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &pb.LeaseLeasesResponse{}
	for id := range f.leases {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: id})
	}
	return resp, nil
}

func (f *fakeBackend) MemberList(context.Context, *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return &pb.MemberListResponse{Members: []*pb.Member{{ID: testMemberID, Name: "m1"}}}, nil
}

func (f *fakeBackend) MemberAdd(_ context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return &pb.MemberAddResponse{Member: &pb.Member{ID: 99, PeerURLs: r.PeerURLs}}, nil
}

func (f *fakeBackend) MemberRemove(context.Context, *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return &pb.MemberRemoveResponse{}, nil
}

func (f *fakeBackend) MemberUpdate(context.Context, *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return &pb.MemberUpdateResponse{}, nil
}

func (f *fakeBackend) MemberPromote(context.Context, *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return &pb.MemberPromoteResponse{}, nil
}

func (f *fakeBackend) Status(context.Context) (*pb.StatusResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return &pb.StatusResponse{Leader: testMemberID}, nil
}

func (f *fakeBackend) HashKV(_ context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return &pb.HashKVResponse{Header: &pb.ResponseHeader{Revision: f.store.Rev()}, Hash: 0xfeed + uint32(r.Revision), HashRevision: r.Revision}, nil
}

func (f *fakeBackend) MoveLeader(context.Context, *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return &pb.MoveLeaderResponse{}, nil
}

// Snapshot writes the canned snapshot in uneven pieces, to exercise the
// chunking.
func (f *fakeBackend) Snapshot(_ context.Context, w io.Writer) (int64, error) {
	if err := f.fail(); err != nil {
		return 0, err
	}
	f.mu.Lock()
	data := f.snapshot
	f.mu.Unlock()
	var n int64
	for len(data) > 0 {
		k := min(len(data), 10007)
		m, err := w.Write(data[:k])
		n += int64(m)
		if err != nil {
			return n, err
		}
		data = data[k:]
	}
	return n, nil
}

var _ Backend = (*fakeBackend)(nil)

// testServer runs the etcd API over b on a loopback port.
type testServer struct {
	addr string
	// active counts stream handlers still running, to prove they end.
	mu     sync.Mutex
	active int
}

func (ts *testServer) activeStreams() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.active
}

func startServer(t *testing.T, b Backend, cfg Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String()}
	count := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ts.mu.Lock()
		ts.active++
		ts.mu.Unlock()
		defer func() {
			ts.mu.Lock()
			ts.active--
			ts.mu.Unlock()
		}()
		return handler(srv, ss)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := grpc.NewServer(append(GRPCServerOptions(cfg), grpc.StreamInterceptor(count))...)
	Register(s, b, cfg)
	done := make(chan struct{})
	go func() { _ = s.Serve(ln); close(done) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return ts
}

func newClient(t *testing.T, ts *testServer) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{ts.addr},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// eventually polls cond until it holds or the test deadline nears.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (f *fakeBackend) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeBackend) setLease(id, ttl int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leases[id] = ttl
}

func (f *fakeBackend) lease(id int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leases[id]
}
