package v3rpc

import (
	"context"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

type leaseServer struct {
	pb.UnimplementedLeaseServer
	b   Backend
	cfg Config
}

func (s *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	resp, err := s.b.LeaseGrant(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("LeaseGrant")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	return resp, nil
}

func (s *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	resp, err := s.b.LeaseRevoke(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("LeaseRevoke")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	return resp, nil
}

// LeaseTimeToLive answers an unknown lease with TTL -1 rather than an
// error, which is what etcd clients expect.
func (s *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	resp, err := s.b.LeaseTimeToLive(ctx, r)
	if errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) {
		resp, err = &pb.LeaseTimeToLiveResponse{ID: r.ID, TTL: -1}, nil
	}
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("LeaseTimeToLive")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	return resp, nil
}

func (s *leaseServer) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	resp, err := s.b.LeaseLeases(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("LeaseLeases")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	return resp, nil
}

// LeaseKeepAlive renews leases one request at a time. Recv runs in its own
// goroutine so that the handler returns as soon as the stream context ends,
// even when an interceptor cancels a derived context that Recv does not
// watch; only the handler goroutine sends.
func (s *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx := stream.Context()
	reqs, recvErr := receive(ctx, stream.Recv)

	for {
		select {
		case <-ctx.Done():
			return toGRPCError(ctx.Err())
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case req := <-reqs:
			// The header is taken before the renewal so that its revision
			// is never later than the renewal: a client must not see a
			// keepalive succeed at a revision after which the lease was
			// already revoked.
			hdr := newFiller(s.b).fill(nil)
			ttl, err := s.b.LeaseKeepAlive(ctx, req.ID)
			if errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) {
				ttl, err = 0, nil // TTL 0 tells the client the lease is gone
			}
			if err != nil {
				return toGRPCError(err)
			}
			if err := stream.Send(&pb.LeaseKeepAliveResponse{Header: hdr, ID: req.ID, TTL: ttl}); err != nil {
				if !isClientGone(ctx, err) {
					s.cfg.Logger.Warn("lease keepalive send failed", "lease", req.ID, "err", err)
				}
				return err
			}
		}
	}
}
