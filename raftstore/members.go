package raftstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/barge-dev/barge/raftstore/peer"
	"github.com/hashicorp/raft"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

const membershipTimeout = 10 * time.Second

// members lists the cluster from the Raft configuration (who votes, at
// which address) joined with the replicated attributes (name, client URL).
func (s *Server) members() ([]*pb.Member, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, raftError(err)
	}
	var out []*pb.Member
	for _, srv := range f.Configuration().Servers {
		id, err := parseServerID(srv.ID)
		if err != nil {
			continue
		}
		m := &pb.Member{ID: id, PeerURLs: []string{"https://" + string(srv.Address)}, IsLearner: srv.Suffrage == raft.Nonvoter}
		if attrs, ok := s.fsm.members.get(id); ok {
			m.Name, m.ClientURLs = attrs.Name, attrs.ClientURLs
		}
		out = append(out, m)
	}
	return out, nil
}

func (s *Server) findServer(id uint64) (raft.Server, bool) {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return raft.Server{}, false
	}
	for _, srv := range f.Configuration().Servers {
		if srv.ID == serverID(id) {
			return srv, true
		}
	}
	return raft.Server{}, false
}

func (s *Server) MemberList(ctx context.Context, req *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if req.Linearizable {
		if err := s.linearizableWait(ctx); err != nil {
			return nil, err
		}
	}
	ms, err := s.members()
	if err != nil {
		return nil, err
	}
	return &pb.MemberListResponse{Header: s.Header(), Members: ms}, nil
}

func (s *Server) MemberAdd(ctx context.Context, req *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	return withLeader(ctx, s, func(ctx context.Context) (*pb.MemberAddResponse, error) {
		return s.localMemberAdd(ctx, req)
	}, func(ctx context.Context, c *peer.Client) (*pb.MemberAddResponse, error) {
		return c.MemberAdd(ctx, req)
	})
}

func (s *Server) localMemberAdd(ctx context.Context, req *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	if _, err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	if len(req.PeerURLs) != 1 {
		return nil, rpctypes.ErrGRPCMemberBadURLs
	}
	addr := StripScheme(req.PeerURLs[0])
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, rpctypes.ErrGRPCMemberBadURLs
	}
	existing, err := s.members()
	if err != nil {
		return nil, err
	}
	for _, m := range existing {
		for _, u := range m.PeerURLs {
			if StripScheme(u) == addr {
				return nil, rpctypes.ErrGRPCPeerURLExist
			}
		}
	}
	id := rand.Uint64()
	for id == 0 {
		id = rand.Uint64()
	}
	var f raft.IndexFuture
	if req.IsLearner {
		f = s.raft.AddNonvoter(serverID(id), raft.ServerAddress(addr), 0, membershipTimeout)
	} else {
		f = s.raft.AddVoter(serverID(id), raft.ServerAddress(addr), 0, membershipTimeout)
	}
	if err := f.Error(); err != nil {
		return nil, raftError(err)
	}
	s.logger.Info("member added", "id", fmt.Sprintf("%016x", id), "peer", addr, "learner", req.IsLearner)
	ms, err := s.members()
	if err != nil {
		return nil, err
	}
	return &pb.MemberAddResponse{
		Header:  s.Header(),
		Member:  &pb.Member{ID: id, PeerURLs: []string{"https://" + addr}, IsLearner: req.IsLearner},
		Members: ms,
	}, nil
}

func (s *Server) MemberRemove(ctx context.Context, req *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	return withLeader(ctx, s, func(ctx context.Context) (*pb.MemberRemoveResponse, error) {
		return s.localMemberRemove(ctx, req)
	}, func(ctx context.Context, c *peer.Client) (*pb.MemberRemoveResponse, error) {
		return c.MemberRemove(ctx, req)
	})
}

func (s *Server) localMemberRemove(ctx context.Context, req *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	if _, err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	if _, ok := s.findServer(req.ID); !ok {
		return nil, rpctypes.ErrGRPCMemberNotFound
	}
	if err := s.raft.RemoveServer(serverID(req.ID), 0, membershipTimeout).Error(); err != nil {
		return nil, raftError(err)
	}
	s.logger.Info("member removed", "id", fmt.Sprintf("%016x", req.ID))
	ms, err := s.members()
	if err != nil {
		return nil, err
	}
	return &pb.MemberRemoveResponse{Header: s.Header(), Members: ms}, nil
}

// MemberUpdate changes a member's peer address, keeping its vote.
func (s *Server) MemberUpdate(ctx context.Context, req *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	if s.raft.State() != raft.Leader {
		return nil, rpctypes.ErrGRPCNotLeader
	}
	srv, ok := s.findServer(req.ID)
	if !ok {
		return nil, rpctypes.ErrGRPCMemberNotFound
	}
	if len(req.PeerURLs) != 1 {
		return nil, rpctypes.ErrGRPCMemberBadURLs
	}
	addr := raft.ServerAddress(StripScheme(req.PeerURLs[0]))
	var f raft.IndexFuture
	if srv.Suffrage == raft.Nonvoter {
		f = s.raft.AddNonvoter(srv.ID, addr, 0, membershipTimeout)
	} else {
		f = s.raft.AddVoter(srv.ID, addr, 0, membershipTimeout)
	}
	if err := f.Error(); err != nil {
		return nil, raftError(err)
	}
	ms, err := s.members()
	if err != nil {
		return nil, err
	}
	return &pb.MemberUpdateResponse{Header: s.Header(), Members: ms}, nil
}

func (s *Server) MemberPromote(ctx context.Context, req *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	return withLeader(ctx, s, func(ctx context.Context) (*pb.MemberPromoteResponse, error) {
		return s.localMemberPromote(ctx, req)
	}, func(ctx context.Context, c *peer.Client) (*pb.MemberPromoteResponse, error) {
		return c.MemberPromote(ctx, req)
	})
}

func (s *Server) localMemberPromote(ctx context.Context, req *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	if _, err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	srv, ok := s.findServer(req.ID)
	if !ok {
		return nil, rpctypes.ErrGRPCMemberNotFound
	}
	if srv.Suffrage != raft.Nonvoter {
		return nil, rpctypes.ErrGRPCMemberNotLearner
	}
	if err := s.raft.AddVoter(srv.ID, srv.Address, 0, membershipTimeout).Error(); err != nil {
		return nil, raftError(err)
	}
	ms, err := s.members()
	if err != nil {
		return nil, err
	}
	return &pb.MemberPromoteResponse{Header: s.Header(), Members: ms}, nil
}

func (s *Server) MoveLeader(ctx context.Context, req *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	return withLeader(ctx, s, func(ctx context.Context) (*pb.MoveLeaderResponse, error) {
		return s.localMoveLeader(ctx, req)
	}, func(ctx context.Context, c *peer.Client) (*pb.MoveLeaderResponse, error) {
		return c.MoveLeader(ctx, req)
	})
}

func (s *Server) localMoveLeader(ctx context.Context, req *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if s.raft.State() != raft.Leader {
		return nil, rpctypes.ErrGRPCNotLeader
	}
	srv, ok := s.findServer(req.TargetID)
	if !ok {
		return nil, rpctypes.ErrGRPCBadLeaderTransferee
	}
	if srv.ID == serverID(s.id.MemberID) {
		return &pb.MoveLeaderResponse{Header: s.Header()}, nil
	}
	if srv.Suffrage != raft.Voter {
		return nil, rpctypes.ErrGRPCBadLeaderTransferee
	}
	if err := s.raft.LeadershipTransferToServer(srv.ID, srv.Address).Error(); err != nil {
		return nil, raftError(err)
	}
	return &pb.MoveLeaderResponse{Header: s.Header()}, nil
}

// joinCluster asks a running cluster to add this peer and learns the IDs
// it was given.
func (s *Server) joinCluster() (*identity, error) {
	tlsCfg, err := joinTLS(s.cfg.CertsDir)
	if err != nil {
		return nil, err
	}
	endpoints := make([]string, len(s.cfg.Join))
	for i, u := range s.cfg.Join {
		endpoints[i] = StripScheme(u)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 10 * time.Second,
		TLS:         tlsCfg,
		DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg))},
		Logger:      nil,
	})
	if err != nil {
		return nil, fmt.Errorf("join %v: %w", s.cfg.Join, err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	peerURL := "https://" + s.cfg.AdvertisePeerAddr
	var resp *clientv3.MemberAddResponse
	if s.cfg.JoinAsLearner {
		resp, err = cli.MemberAddAsLearner(ctx, []string{peerURL})
	} else {
		resp, err = cli.MemberAdd(ctx, []string{peerURL})
	}
	if err != nil {
		return nil, fmt.Errorf("join %v as %s: %w", s.cfg.Join, peerURL, err)
	}
	s.logger.Info("joined cluster", "cluster", fmt.Sprintf("%016x", resp.Header.ClusterId), "member", fmt.Sprintf("%016x", resp.Member.ID))
	return &identity{Name: s.cfg.Name, MemberID: resp.Member.ID, ClusterID: resp.Header.ClusterId}, nil
}
