package v3rpc

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

type clusterServer struct {
	pb.UnimplementedClusterServer
	b Backend
}

func (s *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	resp, err := s.b.MemberList(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("MemberList")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	return resp, nil
}

func (s *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	resp, err := s.b.MemberAdd(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("MemberAdd")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	return resp, nil
}

func (s *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	resp, err := s.b.MemberRemove(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("MemberRemove")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	return resp, nil
}

func (s *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	resp, err := s.b.MemberUpdate(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("MemberUpdate")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	return resp, nil
}

func (s *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	resp, err := s.b.MemberPromote(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp == nil {
		return nil, errNilResponse("MemberPromote")
	}
	resp.Header = newFiller(s.b).fill(resp.Header)
	return resp, nil
}
