package gossip

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/barge-dev/barge/raftstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The admin service lets the CLI ask a server about the pool. It rides
// on the store's client port (raftstore.Config.RegisterServices), whose
// TLS already demands a cluster certificate, and answers administrators
// only. Messages are well-known protobuf types carrying JSON, as the
// store's own admin service does.
const adminService = "barge.gossip.v1.Gossip"

// MemberInfo is a member as the admin service reports it.
type MemberInfo struct {
	Name       string            `json:"name"`
	Address    string            `json:"address"`
	State      State             `json:"state"`
	Role       Role              `json:"role,omitempty"`
	UnderlayIP string            `json:"underlayIP,omitempty"`
	PodCIDR    string            `json:"podCIDR,omitempty"`
	Overlay    OverlayMode       `json:"overlay,omitempty"`
	VTEPMAC    string            `json:"vtepMAC,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	MetaError  string            `json:"metaError,omitempty"`
	Since      time.Time         `json:"since"`
}

// Info flattens a Member for display.
func (m Member) Info() MemberInfo {
	i := MemberInfo{Name: m.Name, Address: m.Addr.String(), State: m.State, Role: m.Meta.Role,
		Overlay: m.Meta.Overlay, Tags: m.Meta.Tags, MetaError: m.MetaErr, Since: m.Since}
	if m.Meta.UnderlayIP.IsValid() {
		i.UnderlayIP = m.Meta.UnderlayIP.String()
	}
	if m.Meta.PodCIDR.IsValid() {
		i.PodCIDR = m.Meta.PodCIDR.String()
	}
	if len(m.Meta.VTEPMAC) > 0 {
		i.VTEPMAC = m.Meta.VTEPMAC.String()
	}
	return i
}

type keyringCall struct {
	Op      KeyOp         `json:"op"`
	Key     string        `json:"key,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
}

// keyringReply carries a partial failure next to the result, which a
// gRPC error alone could not.
type keyringReply struct {
	Result *KeyringResult `json:"result"`
	Error  string         `json:"error,omitempty"`
}

// DefaultKeyringTimeout bounds how long a server waits for the members'
// answers when the caller gives no timeout.
const DefaultKeyringTimeout = 5 * time.Second

// AdminServer serves the admin service over a pool. Authorize decides
// who may call; RegisterAdmin sets it to raftstore.RequireAdmin.
type AdminServer struct {
	Pool      *Pool
	Authorize func(context.Context) error
}

// RegisterAdmin adds the admin service over p to s, for administrators
// only. Pass it to raftstore.Config.RegisterServices:
//
//	cfg.RegisterServices = func(s *grpc.Server) { gossip.RegisterAdmin(s, pool) }
func RegisterAdmin(s grpc.ServiceRegistrar, p *Pool) {
	s.RegisterService(AdminDesc(), &AdminServer{Pool: p, Authorize: raftstore.RequireAdmin})
}

// AdminDesc describes the admin service; its handlers expect an
// *AdminServer.
func AdminDesc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: adminService,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "Members", Handler: membersHandler},
			{MethodName: "Keyring", Handler: keyringHandler},
		},
	}
}

func membersHandler(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	in := &emptypb.Empty{}
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(*AdminServer)
	if err := s.authorize(ctx); err != nil {
		return nil, err
	}
	members := s.Pool.Members()
	infos := make([]MemberInfo, len(members))
	for i, m := range members {
		infos[i] = m.Info()
	}
	b, err := json.Marshal(infos)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode members: %v", err)
	}
	return wrapperspb.Bytes(b), nil
}

func keyringHandler(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	in := &wrapperspb.BytesValue{}
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(*AdminServer)
	if err := s.authorize(ctx); err != nil {
		return nil, err
	}
	var call keyringCall
	if err := json.Unmarshal(in.Value, &call); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "keyring request: %v", err)
	}
	timeout := call.Timeout
	if timeout <= 0 || timeout > time.Minute {
		timeout = DefaultKeyringTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := s.Pool.Keyring(cctx, call.Op, call.Key)
	if res == nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	reply := keyringReply{Result: res}
	if err != nil {
		reply.Error = err.Error()
	}
	b, err := json.Marshal(reply)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode keyring result: %v", err)
	}
	return wrapperspb.Bytes(b), nil
}

func (s *AdminServer) authorize(ctx context.Context) error {
	if s.Authorize == nil {
		return status.Error(codes.PermissionDenied, "gossip admin service has no authorizer")
	}
	return s.Authorize(ctx)
}

// RemoteMembers asks the server behind cc for its view of the pool.
func RemoteMembers(ctx context.Context, cc grpc.ClientConnInterface) ([]MemberInfo, error) {
	out := &wrapperspb.BytesValue{}
	if err := cc.Invoke(ctx, "/"+adminService+"/Members", &emptypb.Empty{}, out); err != nil {
		return nil, err
	}
	var infos []MemberInfo
	if err := json.Unmarshal(out.Value, &infos); err != nil {
		return nil, fmt.Errorf("decode members: %w", err)
	}
	return infos, nil
}

// RemoteKeyring has the server behind cc run a keyring operation across
// the pool, waiting up to timeout (0: DefaultKeyringTimeout) for the
// members. A result comes back whenever the server got as far as asking
// the members; the error then says which failed.
func RemoteKeyring(ctx context.Context, cc grpc.ClientConnInterface, op KeyOp, key string, timeout time.Duration) (*KeyringResult, error) {
	b, _ := json.Marshal(keyringCall{Op: op, Key: key, Timeout: timeout})
	out := &wrapperspb.BytesValue{}
	if err := cc.Invoke(ctx, "/"+adminService+"/Keyring", wrapperspb.Bytes(b), out); err != nil {
		return nil, err
	}
	var reply keyringReply
	if err := json.Unmarshal(out.Value, &reply); err != nil {
		return nil, fmt.Errorf("decode keyring result: %w", err)
	}
	if reply.Error != "" {
		return reply.Result, fmt.Errorf("%s", reply.Error)
	}
	return reply.Result, nil
}
