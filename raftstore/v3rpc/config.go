package v3rpc

import (
	"log/slog"
	"math"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

const (
	// DefaultMaxRequestBytes is etcd's default --max-request-bytes.
	DefaultMaxRequestBytes = 1536 * 1024
	// DefaultMaxTxnOps is etcd's default --max-txn-ops.
	DefaultMaxTxnOps = 128

	// grpcOverheadBytes leaves room for the gRPC framing and the other
	// fields of a request whose payload is just under MaxRequestBytes, so
	// such a request reaches our size check (and gets etcd's error) instead
	// of being cut off by the transport. Same value as etcd.
	grpcOverheadBytes = 512 * 1024
)

// Config tunes the etcd API. Zero values take etcd's defaults.
type Config struct {
	// MaxRequestBytes caps the encoded size of a write request.
	MaxRequestBytes int
	// MaxTxnOps caps each of the compare, success and failure lists of a
	// Txn.
	MaxTxnOps int
	// Version is reported as the etcd API version of snapshots and, when
	// the backend leaves it empty, of Status.
	Version string
	Logger  *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxTxnOps <= 0 {
		c.MaxTxnOps = DefaultMaxTxnOps
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// maxMessageBytes is the largest message the transport accepts, and the
// size above which watch responses of fragmenting watchers are split.
func (c Config) maxMessageBytes() int {
	return c.MaxRequestBytes + grpcOverheadBytes
}

// GRPCServerOptions returns the server options etcd uses for its client
// API: message limits that match cfg and etcd's keepalive policy, so
// clients tuned for etcd behave the same against barge.
func GRPCServerOptions(cfg Config) []grpc.ServerOption {
	cfg = cfg.withDefaults()
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.maxMessageBytes()),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    2 * time.Hour,
			Timeout: 20 * time.Second,
		}),
	}
}

// Register adds the etcd KV, Watch, Lease, Cluster and Maintenance
// services, served by b, to s.
func Register(s *grpc.Server, b Backend, cfg Config) {
	cfg = cfg.withDefaults()
	pb.RegisterKVServer(s, &kvServer{b: b, cfg: cfg})
	pb.RegisterWatchServer(s, &watchServer{b: b, cfg: cfg})
	pb.RegisterLeaseServer(s, &leaseServer{b: b, cfg: cfg})
	pb.RegisterClusterServer(s, &clusterServer{b: b})
	pb.RegisterMaintenanceServer(s, &maintenanceServer{b: b, cfg: cfg})
}
