package v3rpc

import (
	"context"
	"io"

	"github.com/barge-dev/barge/raftstore/watch"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Backend is the store peer as the etcd API sees it. raftstore.Server
// implements it; v3rpc adds validation, streaming and the etcd wire
// contract on top. Errors returned are already etcd gRPC errors
// (go.etcd.io/etcd/api/v3/v3rpc/rpctypes) or context errors.
type Backend interface {
	// Header returns a response header with cluster ID, member ID, the
	// current revision and Raft term.
	Header() *pb.ResponseHeader

	// Range serves a read: linearizable unless req.Serializable.
	Range(ctx context.Context, req *pb.RangeRequest) (*pb.RangeResponse, error)
	Put(ctx context.Context, req *pb.PutRequest) (*pb.PutResponse, error)
	DeleteRange(ctx context.Context, req *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error)
	// Txn serves read-only txns as linearizable reads and replicates others.
	Txn(ctx context.Context, req *pb.TxnRequest) (*pb.TxnResponse, error)
	Compact(ctx context.Context, req *pb.CompactionRequest) (*pb.CompactionResponse, error)

	// WatchStream opens a hub stream that lives as long as ctx.
	WatchStream(ctx context.Context) *watch.Stream

	LeaseGrant(ctx context.Context, req *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error)
	LeaseRevoke(ctx context.Context, req *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error)
	// LeaseKeepAlive renews a lease and returns its TTL, or 0 if it does not exist.
	LeaseKeepAlive(ctx context.Context, id int64) (int64, error)
	LeaseTimeToLive(ctx context.Context, req *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error)
	LeaseLeases(ctx context.Context, req *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error)

	MemberList(ctx context.Context, req *pb.MemberListRequest) (*pb.MemberListResponse, error)
	MemberAdd(ctx context.Context, req *pb.MemberAddRequest) (*pb.MemberAddResponse, error)
	MemberRemove(ctx context.Context, req *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error)
	MemberUpdate(ctx context.Context, req *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error)
	MemberPromote(ctx context.Context, req *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error)

	Status(ctx context.Context) (*pb.StatusResponse, error)
	HashKV(ctx context.Context, req *pb.HashKVRequest) (*pb.HashKVResponse, error)
	MoveLeader(ctx context.Context, req *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error)
	// Snapshot writes a consistent snapshot file (raftstore/snapfile
	// format) of the current state to w and returns its size.
	Snapshot(ctx context.Context, w io.Writer) (int64, error)
}
