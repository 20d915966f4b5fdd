package raftstore

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/barge-dev/barge/raftstore/lease"
	"github.com/barge-dev/barge/raftstore/peer"
	"github.com/barge-dev/barge/raftstore/v3rpc"
	"github.com/barge-dev/barge/raftstore/watch"
	"github.com/hashicorp/raft"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"
)

var _ v3rpc.Backend = (*Server)(nil)

// Header describes this peer for response headers.
func (s *Server) Header() *pb.ResponseHeader {
	return &pb.ResponseHeader{
		ClusterId: s.id.ClusterID,
		MemberId:  s.id.MemberID,
		Revision:  s.fsm.store.Rev(),
		RaftTerm:  s.currentTerm(),
	}
}

// currentTerm is on every response header, so it must be cheap:
// raft.CurrentTerm reads one atomic, where Stats builds a whole map.
func (s *Server) currentTerm() uint64 { return s.raft.CurrentTerm() }

// stamp fills the identity part of a header the FSM left partial.
func (s *Server) stamp(h *pb.ResponseHeader) *pb.ResponseHeader {
	if h == nil {
		return s.Header()
	}
	h.ClusterId, h.MemberId, h.RaftTerm = s.id.ClusterID, s.id.MemberID, s.currentTerm()
	if h.Revision == 0 {
		h.Revision = s.fsm.store.Rev()
	}
	return h
}

// Range serves a read locally, after a read-index wait unless the client
// accepts a possibly stale (serializable) answer.
func (s *Server) Range(ctx context.Context, req *pb.RangeRequest) (*pb.RangeResponse, error) {
	if !req.Serializable {
		if err := s.linearizableWait(ctx); err != nil {
			return nil, err
		}
	}
	resp, err := execRange(s.fsm.store, req)
	if err != nil {
		return nil, err
	}
	resp.Header = s.stamp(resp.Header)
	return resp, nil
}

func proposeAs[T proto.Message](ctx context.Context, s *Server, req *pb.InternalRaftRequest) (T, error) {
	var zero T
	m, err := s.propose(ctx, req)
	if err != nil {
		return zero, err
	}
	out, ok := m.(T)
	if !ok {
		return zero, rpctypes.ErrGRPCNotCapable
	}
	return out, nil
}

func (s *Server) Put(ctx context.Context, req *pb.PutRequest) (*pb.PutResponse, error) {
	resp, err := proposeAs[*pb.PutResponse](ctx, s, &pb.InternalRaftRequest{Put: req})
	if err != nil {
		return nil, err
	}
	resp.Header = s.stamp(resp.Header)
	return resp, nil
}

func (s *Server) DeleteRange(ctx context.Context, req *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	resp, err := proposeAs[*pb.DeleteRangeResponse](ctx, s, &pb.InternalRaftRequest{DeleteRange: req})
	if err != nil {
		return nil, err
	}
	resp.Header = s.stamp(resp.Header)
	return resp, nil
}

// Txn replicates transactions that write; read-only ones are served as a
// linearizable (or serializable) read, as etcd does.
func (s *Server) Txn(ctx context.Context, req *pb.TxnRequest) (*pb.TxnResponse, error) {
	if isReadOnlyTxn(req) {
		if !isSerializableTxn(req) {
			if err := s.linearizableWait(ctx); err != nil {
				return nil, err
			}
		}
		return s.readOnlyTxn(req)
	}
	resp, err := proposeAs[*pb.TxnResponse](ctx, s, &pb.InternalRaftRequest{Txn: req})
	if err != nil {
		return nil, err
	}
	resp.Header = s.stamp(resp.Header)
	return resp, nil
}

// readOnlyTxn evaluates a read-only txn against the store without Raft.
// It takes a write transaction only for its consistent view; nothing is
// written, so the revision does not move.
func (s *Server) readOnlyTxn(req *pb.TxnRequest) (*pb.TxnResponse, error) {
	w := s.fsm.store.Write()
	path := choosePath(w, req)
	if err := checkPath(w, s.fsm.lessor, req, path); err != nil {
		w.End()
		return nil, err
	}
	a := &applier{store: s.fsm.store, lessor: s.fsm.lessor}
	resp, err := a.execTxn(w, req, &path)
	rev, _ := w.End()
	if err != nil {
		return nil, err
	}
	fillRevs(resp, rev)
	resp.Header = s.stamp(resp.Header)
	return resp, nil
}

func isReadOnlyTxn(t *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			switch r := op.Request.(type) {
			case *pb.RequestOp_RequestRange:
			case *pb.RequestOp_RequestTxn:
				if !isReadOnlyTxn(r.RequestTxn) {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

// isSerializableTxn: a read-only txn is served without a read index only
// if every range in it asked for serializable reads.
func isSerializableTxn(t *pb.TxnRequest) bool {
	n := 0
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			switch r := op.Request.(type) {
			case *pb.RequestOp_RequestRange:
				n++
				if !r.RequestRange.Serializable {
					return false
				}
			case *pb.RequestOp_RequestTxn:
				n++
				if !isSerializableTxn(r.RequestTxn) {
					return false
				}
			}
		}
	}
	return n > 0
}

func (s *Server) Compact(ctx context.Context, req *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := proposeAs[*pb.CompactionResponse](ctx, s, &pb.InternalRaftRequest{Compaction: req})
	if err != nil {
		return nil, err
	}
	resp.Header = s.stamp(resp.Header)
	return resp, nil
}

// WatchStream opens a watch stream on this peer's hub. Followers apply the
// same log, so any peer serves watches without involving the leader.
func (s *Server) WatchStream(ctx context.Context) *watch.Stream { return s.fsm.hub.NewStream(ctx) }

func (s *Server) LeaseGrant(ctx context.Context, req *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if req.TTL > lease.MaxTTL {
		return nil, rpctypes.ErrGRPCLeaseTTLTooLarge
	}
	g := &pb.LeaseGrantRequest{ID: req.ID, TTL: req.TTL}
	if g.ID == 0 {
		// The proposer picks the ID so the log entry is deterministic.
		g.ID = rand.Int64N(1<<62) + 1
	}
	if g.ID < 0 {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	resp, err := proposeAs[*pb.LeaseGrantResponse](ctx, s, &pb.InternalRaftRequest{LeaseGrant: g})
	if err != nil {
		return nil, err
	}
	resp.Header = s.stamp(resp.Header)
	return resp, nil
}

func (s *Server) LeaseRevoke(ctx context.Context, req *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	resp, err := proposeAs[*pb.LeaseRevokeResponse](ctx, s, &pb.InternalRaftRequest{LeaseRevoke: req})
	if err != nil {
		return nil, err
	}
	resp.Header = s.stamp(resp.Header)
	return resp, nil
}

// LeaseKeepAlive renews on the leader, the only peer that tracks expiry.
func (s *Server) LeaseKeepAlive(ctx context.Context, id int64) (int64, error) {
	return withLeader(ctx, s, func(ctx context.Context) (int64, error) {
		return s.localKeepAlive(ctx, id)
	}, func(ctx context.Context, c *peer.Client) (int64, error) {
		return c.LeaseKeepAlive(ctx, id)
	})
}

func (s *Server) localKeepAlive(ctx context.Context, id int64) (int64, error) {
	if _, err := s.waitReady(ctx); err != nil {
		return 0, err
	}
	ttl, err := s.fsm.lessor.Renew(id)
	switch {
	case err == nil:
		return ttl, nil
	case err == lease.ErrNotFound:
		return 0, nil
	case err == lease.ErrNotPrimary:
		return 0, rpctypes.ErrGRPCNotLeader
	}
	return 0, err
}

func (s *Server) LeaseTimeToLive(ctx context.Context, req *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	resp, err := withLeader(ctx, s, func(ctx context.Context) (*pb.LeaseTimeToLiveResponse, error) {
		return s.localTimeToLive(ctx, req)
	}, func(ctx context.Context, c *peer.Client) (*pb.LeaseTimeToLiveResponse, error) {
		return c.LeaseTimeToLive(ctx, req)
	})
	if err != nil {
		return nil, err
	}
	resp.Header = s.stamp(resp.Header)
	return resp, nil
}

func (s *Server) localTimeToLive(ctx context.Context, req *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if _, err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	info, err := s.fsm.lessor.Lookup(req.ID)
	if err != nil {
		// etcd answers an unknown lease with TTL -1, not an error.
		return &pb.LeaseTimeToLiveResponse{Header: s.Header(), ID: req.ID, TTL: -1}, nil
	}
	resp := &pb.LeaseTimeToLiveResponse{Header: s.Header(), ID: req.ID, TTL: info.Remaining, GrantedTTL: info.TTL}
	if req.Keys {
		for _, k := range info.Keys {
			resp.Keys = append(resp.Keys, []byte(k))
		}
	}
	return resp, nil
}

func (s *Server) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	if err := s.linearizableWait(ctx); err != nil {
		return nil, err
	}
	resp := &pb.LeaseLeasesResponse{Header: s.Header()}
	for _, l := range s.fsm.lessor.List() {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: l.ID})
	}
	return resp, nil
}

// Status reports this peer's view of the cluster.
func (s *Server) Status(ctx context.Context) (*pb.StatusResponse, error) {
	st := s.fsm.store.Stats()
	resp := &pb.StatusResponse{
		Header:      s.Header(),
		Version:     EtcdAPIVersion,
		DbSize:      s.diskSize(),
		DbSizeInUse: st.SizeBytes,
		RaftIndex:   s.raft.CommitIndex(),
		RaftTerm:    s.currentTerm(),
		// Not raft.AppliedIndex: that moves when entries are queued for
		// the FSM, which after a restart can be seconds ahead of what the
		// store holds.
		RaftAppliedIndex: s.fsm.appliedIndex(),
		StorageVersion:   "barge-" + Version,
	}
	if _, id := s.raft.LeaderWithID(); id != "" {
		resp.Leader, _ = parseServerID(id)
	} else {
		resp.Errors = append(resp.Errors, "no leader")
	}
	if f := s.raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			if srv.ID == serverID(s.id.MemberID) && srv.Suffrage == raft.Nonvoter {
				resp.IsLearner = true
			}
		}
	}
	return resp, nil
}

// diskSize is the bytes this peer keeps on disk: Raft log and snapshots.
func (s *Server) diskSize() int64 {
	var n int64
	_ = filepath.Walk(s.cfg.DataDir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func (s *Server) HashKV(ctx context.Context, req *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	view := s.fsm.store.View()
	h, rev, err := view.Hash(req.Revision)
	if err != nil {
		return nil, mvccError(err)
	}
	return &pb.HashKVResponse{Header: s.Header(), Hash: h, CompactRevision: view.CompactRev(), HashRevision: rev}, nil
}

// Snapshot streams a consistent snapshot of this peer's state. It waits
// for a read index first, so a backup taken from a follower still holds
// every write acknowledged before the save began.
func (s *Server) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	if err := s.linearizableWait(ctx); err != nil {
		return 0, err
	}
	snap, err := s.fsm.Snapshot()
	if err != nil {
		return 0, err
	}
	cw := &countingWriter{w: w}
	if err := snap.(*fsmSnapshot).writeTo(cw); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
