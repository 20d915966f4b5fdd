package raftstore

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/barge-dev/barge/raftstore/v3rpc"
)

// localBuffer is the in-memory connection buffer of the local endpoint;
// gRPC's flow control, not this, bounds what is in flight.
const localBuffer = 1 << 20

// The local endpoint serves the etcd v3 API to code in this process (the
// API server on this peer) over an in-memory connection: no TCP, no TLS,
// no kernel round trip. It is reachable only through DialLocal, so it
// needs no authentication of its own: whoever holds the *Server is
// already inside the trust boundary.
type localEndpoint struct {
	ln  *bufconn.Listener
	srv *grpc.Server
}

func (s *Server) startLocal(cfg v3rpc.Config) {
	s.local = &localEndpoint{
		ln:  bufconn.Listen(localBuffer),
		srv: grpc.NewServer(v3rpc.GRPCServerOptions(cfg)...),
	}
	v3rpc.Register(s.local.srv, s, cfg)
	s.goFn(func() { _ = s.local.srv.Serve(s.local.ln) })
}

// DialLocal opens an in-memory connection to this peer's etcd v3 API,
// for an etcd client (a grpc.WithContextDialer) in the same process.
// The address is ignored.
func (s *Server) DialLocal(ctx context.Context, _, _ string) (net.Conn, error) {
	return s.local.ln.DialContext(ctx)
}
