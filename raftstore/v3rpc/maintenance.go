package v3rpc

import (
	"context"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	b   Backend
	cfg Config
}

func (s *maintenanceServer) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	resp, err := s.b.Status(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("Status")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	if resp.Version == "" {
		resp.Version = s.cfg.Version
	}
	return resp, nil
}

func (s *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	resp, err := s.b.HashKV(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("HashKV")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	return resp, nil
}

// Hash has no database file to hash here; it answers with the HashKV of
// the current revision, which serves its one use (comparing members, whose
// answers are computed the same way) equally well.
func (s *maintenanceServer) Hash(ctx context.Context, _ *pb.HashRequest) (*pb.HashResponse, error) {
	kv, err := s.b.HashKV(ctx, &pb.HashKVRequest{})
	if err != nil {
		return nil, toGRPCError(err)
	}
	if kv == nil {
		return nil, errNilResponse("HashKV")
	}
	return &pb.HashResponse{Header: newFiller(s.b).fill(kv.Header), Hash: kv.Hash}, nil
}

func (s *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	resp, err := s.b.MoveLeader(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("MoveLeader")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	return resp, nil
}

// Alarm reports no alarms and accepts every change without effect: the
// store is in memory, so there is no backend quota to run out of
// (NOSPACE), and corruption checks are not alarm-driven. Clients and
// operators that routinely disarm alarms keep working.
func (s *maintenanceServer) Alarm(_ context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	switch r.Action {
	case pb.AlarmRequest_GET, pb.AlarmRequest_ACTIVATE, pb.AlarmRequest_DEACTIVATE:
		return &pb.AlarmResponse{Header: newFiller(s.b).fill(nil)}, nil
	default:
		return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("etcdserver: unknown alarm action %d", r.Action))
	}
}

// Defragment succeeds at once: the in-memory store has no file to compact.
func (s *maintenanceServer) Defragment(_ context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	return &pb.DefragmentResponse{Header: newFiller(s.b).fill(nil)}, nil
}

func (s *maintenanceServer) Downgrade(_ context.Context, _ *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	return nil, status.Error(codes.Unimplemented, "barge: cluster downgrade is not supported")
}

// snapshotChunkBytes is the blob size of Snapshot messages.
const snapshotChunkBytes = 64 * 1024

// Snapshot streams a snapfile of the current state. The backend writes it
// synchronously into a writer that sends as it goes, so memory stays at one
// chunk however large the store.
//
// etcd sets RemainingBytes from the size of its database file, known
// before sending. A snapfile's size is only known once written, so
// RemainingBytes is 1 on every message but the last and 0 on the last:
// clients that stop at 0, or treat non-zero as "more to come", behave
// correctly, and clientv3 uses only the blobs. Unlike etcd no SHA-256
// trailer is appended, since a snapfile is not a bbolt file and carries
// its own checks.
func (s *maintenanceServer) Snapshot(_ *pb.SnapshotRequest, stream pb.Maintenance_SnapshotServer) error {
	ctx := stream.Context()
	w := &snapshotWriter{
		send:    stream.Send,
		version: s.cfg.Version,
		// clientv3 returns the first message's header with the snapshot.
		header: newFiller(s.b).fill(nil),
		buf:    make([]byte, 0, snapshotChunkBytes),
	}
	n, err := s.b.Snapshot(ctx, w)
	if err != nil {
		if w.err != nil {
			err = w.err // the backend saw our send failure
		}
		if !isClientGone(ctx, err) {
			s.cfg.Logger.Warn("snapshot failed", "sent", w.sent, "err", err)
		}
		return toGRPCError(err)
	}
	if err := w.finish(); err != nil {
		return err
	}
	if n != w.sent {
		s.cfg.Logger.Warn("snapshot size mismatch", "reported", n, "sent", w.sent)
	}
	return nil
}

// snapshotWriter holds back each full chunk until it sees more data or
// finish, so it knows whether the chunk is the last.
type snapshotWriter struct {
	send    func(*pb.SnapshotResponse) error
	version string
	header  *pb.ResponseHeader // sent with the first message only
	buf     []byte
	sent    int64
	err     error
}

func (w *snapshotWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		if len(w.buf) == cap(w.buf) {
			if err := w.emit(1); err != nil {
				return written, err
			}
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
		written += k
	}
	return written, nil
}

// finish sends the last message; even an empty snapshot gets one, since
// clients wait for a first message.
func (w *snapshotWriter) finish() error {
	if w.err != nil {
		return w.err
	}
	return w.emit(0)
}

func (w *snapshotWriter) emit(remaining uint64) error {
	resp := &pb.SnapshotResponse{Header: w.header, RemainingBytes: remaining, Blob: w.buf, Version: w.version}
	w.header = nil
	if err := w.send(resp); err != nil {
		w.err = fmt.Errorf("send snapshot chunk: %w", err)
		return w.err
	}
	w.sent += int64(len(w.buf))
	// A fresh buffer: the sent message keeps referring to the old one.
	w.buf = make([]byte, 0, snapshotChunkBytes)
	return nil
}
