package peer

import (
	"context"
	"fmt"
	"math"
	"net"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Leader is what a leader serves to its followers. Every method fails with
// rpctypes.ErrGRPCNotLeader on a peer that is not (or no longer) leader, so
// the caller re-resolves the leader and retries.
type Leader interface {
	// ProposeBatch replicates every proposal, in order, and returns one
	// result per proposal. The error is for the batch as a whole (this
	// peer does not lead, or the call failed): then no request was
	// appended by this call.
	ProposeBatch(ctx context.Context, ps []Proposal) ([]Result, error)
	// ReadIndex confirms leadership and returns the index every peer must
	// have applied to serve a linearizable read.
	ReadIndex(ctx context.Context) (uint64, error)
	LeaseKeepAlive(ctx context.Context, id int64) (int64, error)
	LeaseTimeToLive(ctx context.Context, req *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error)
	MemberAdd(ctx context.Context, req *pb.MemberAddRequest) (*pb.MemberAddResponse, error)
	MemberRemove(ctx context.Context, req *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error)
	MemberPromote(ctx context.Context, req *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error)
	MoveLeader(ctx context.Context, req *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error)
}

const serviceName = "barge.peer.v1.Leader"

func unary[Req any, Resp any](name string, call func(Leader, context.Context, *Req) (Resp, error)) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(Req)
			if err := dec(in); err != nil {
				return nil, err
			}
			return call(srv.(Leader), ctx, in)
		},
	}
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*Leader)(nil),
	Methods: []grpc.MethodDesc{
		unary("ProposeBatch", func(l Leader, ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
			ps, err := DecodeProposals(in.GetValue())
			if err != nil {
				return nil, status.Error(codes.InvalidArgument, err.Error())
			}
			rs, err := l.ProposeBatch(ctx, ps)
			if err != nil {
				return nil, err
			}
			return EncodeResults(rs)
		}),
		unary("ReadIndex", func(l Leader, ctx context.Context, _ *emptypb.Empty) (*wrapperspb.UInt64Value, error) {
			idx, err := l.ReadIndex(ctx)
			if err != nil {
				return nil, err
			}
			return wrapperspb.UInt64(idx), nil
		}),
		unary("LeaseKeepAlive", func(l Leader, ctx context.Context, in *wrapperspb.Int64Value) (*wrapperspb.Int64Value, error) {
			ttl, err := l.LeaseKeepAlive(ctx, in.GetValue())
			if err != nil {
				return nil, err
			}
			return wrapperspb.Int64(ttl), nil
		}),
		unary("LeaseTimeToLive", Leader.LeaseTimeToLive),
		unary("MemberAdd", Leader.MemberAdd),
		unary("MemberRemove", Leader.MemberRemove),
		unary("MemberPromote", Leader.MemberPromote),
		unary("MoveLeader", Leader.MoveLeader),
	},
}

// RegisterLeader installs the leader service on s.
func RegisterLeader(s *grpc.Server, l Leader) { s.RegisterService(&serviceDesc, l) }

// Client calls a leader's service.
type Client struct{ cc *grpc.ClientConn }

// NewClient connects to the peer at addr through the mux. The connection
// is already mutual TLS, so gRPC itself adds no credentials.
func (m *Mux) NewClient(addr string) (*Client, error) {
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return m.DialRPC(ctx, a) }),
		// A batch's results can be larger than gRPC's 4 MiB default (many
		// txns that each read), and refusing them after the leader applied
		// the writes would turn successes into errors; etcd's clients
		// accept any size for the same reason.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
	)
	if err != nil {
		return nil, err
	}
	return &Client{cc: cc}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.cc.Close() }

func invoke[Resp any](ctx context.Context, c *Client, method string, in any) (*Resp, error) {
	out := new(Resp)
	if err := c.cc.Invoke(ctx, "/"+serviceName+"/"+method, in, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Client) ProposeBatch(ctx context.Context, reqs []Proposal) ([]Result, error) {
	in, err := EncodeProposals(reqs)
	if err != nil {
		return nil, err
	}
	out, err := invoke[wrapperspb.BytesValue](ctx, c, "ProposeBatch", in)
	if err != nil {
		return nil, err
	}
	rs, err := DecodeResults(out.GetValue())
	if err != nil {
		return nil, err
	}
	if len(rs) != len(reqs) {
		return nil, fmt.Errorf("%w: %d results for %d proposals", ErrBadBatch, len(rs), len(reqs))
	}
	return rs, nil
}

func (c *Client) ReadIndex(ctx context.Context) (uint64, error) {
	v, err := invoke[wrapperspb.UInt64Value](ctx, c, "ReadIndex", &emptypb.Empty{})
	if err != nil {
		return 0, err
	}
	return v.GetValue(), nil
}

func (c *Client) LeaseKeepAlive(ctx context.Context, id int64) (int64, error) {
	v, err := invoke[wrapperspb.Int64Value](ctx, c, "LeaseKeepAlive", wrapperspb.Int64(id))
	if err != nil {
		return 0, err
	}
	return v.GetValue(), nil
}

func (c *Client) LeaseTimeToLive(ctx context.Context, req *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	return invoke[pb.LeaseTimeToLiveResponse](ctx, c, "LeaseTimeToLive", req)
}

func (c *Client) MemberAdd(ctx context.Context, req *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	return invoke[pb.MemberAddResponse](ctx, c, "MemberAdd", req)
}

func (c *Client) MemberRemove(ctx context.Context, req *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	return invoke[pb.MemberRemoveResponse](ctx, c, "MemberRemove", req)
}

func (c *Client) MemberPromote(ctx context.Context, req *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	return invoke[pb.MemberPromoteResponse](ctx, c, "MemberPromote", req)
}

func (c *Client) MoveLeader(ctx context.Context, req *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	return invoke[pb.MoveLeaderResponse](ctx, c, "MoveLeader", req)
}

var _ Leader = (*Client)(nil)
