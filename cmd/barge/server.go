package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/barge-dev/barge/control/apiserver"
	"github.com/barge-dev/barge/control/controllers"
	"github.com/barge-dev/barge/control/leader"
	"github.com/barge-dev/barge/control/plane"
	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/raftstore"
	"github.com/barge-dev/barge/raftstore/raftlog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
)

func newServerCmd() *cobra.Command {
	var (
		cfg            raftstore.Config
		initialCluster string
		join           []string
		apiAddr        string
		tokenFile      string
		compaction     string
		retention      string
		logLevel       string
		logFormat      string
		logStore       string
		etcdServers    []string
		advertiseAPI   string
		apiArgs        []string
		migrateTo      string
		segmentBytes   int64
		gossipAddr     string
		gossipAdv      string
		gossipJoin     []string
		gossipProfile  string
		podRoutes      bool
		health         nodeHealthFlags
		podNet         podNetFlags
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a server: a store peer (etcd v3 API) and the Kubernetes API server",
		Long: `Run one peer of the barge control plane: a member of the Raft group that
holds all cluster state and serves it over the etcd v3 gRPC API (TLS,
client certificates required) on --client-addr. Peers talk Raft to each
other over mutual TLS on --peer-addr. With --api-addr the peer also serves
the Kubernetes API over TLS (kubectl works with admin.kubeconfig), and runs
the controllers while it is the Raft leader.

On first start, give --initial-cluster (the same list on every peer) to
bootstrap a new cluster, or --join with a client URL of a running cluster
to add this peer to it. Later starts reuse --data-dir and ignore both.
SIGTERM or SIGINT stop the peer; a leader hands leadership over first.

With --gossip-addr the server joins the gossip pool (key from the
certificates folder's gossip-keyring.json, which barge certs init writes),
serves 'barge gossip' on --client-addr, and while it leads turns the pool's
view of the agents into Node conditions: a node whose agent gossip declares
dead, or that left, gets Ready=Unknown at once. With barge's default
timings a dead node is NotReady in about 4 s and its pods run elsewhere
within 15 s:

  --node-unreachable-toleration  5s   pods' default toleration of the
  --node-not-ready-toleration    5s   unreachable / not-ready taints (300s
                                      in Kubernetes); a pod's own, and a
                                      DaemonSet's, still win
  --node-monitor-period          1s   node lifecycle controller pass (5s)
  --node-monitor-grace-period    40s  Lease fallback for nodes without
                                      gossip (50s)
  --node-eviction-rate           1    nodes a second tainted NoExecute
                                      (0.1); zone-wide failures still stop it

With --migrate-log-store=STORE the command serves nothing: it moves the
Raft log of the stopped member in --data-dir into STORE (etcd-wal or
bolt) and exits. Run it again if it was interrupted.`,
		Example: `  barge server --name s1 --data-dir /var/lib/barge/s1 --certs /etc/barge \
    --peer-addr 10.0.0.1:2380 --client-addr 10.0.0.1:2379 --api-addr 10.0.0.1:6443 \
    --initial-cluster s1=10.0.0.1:2380,s2=10.0.0.2:2380,s3=10.0.0.3:2380

  barge server --name s4 --data-dir /var/lib/barge/s4 --certs /etc/barge \
    --peer-addr 10.0.0.4:2380 --client-addr 10.0.0.4:2379 --join https://10.0.0.1:2379

  barge server --data-dir /var/lib/barge/s1 --migrate-log-store=etcd-wal`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(logLevel, logFormat)
			if err != nil {
				return err
			}
			cfg.Logger = logger
			if migrateTo != "" {
				if cfg.DataDir == "" {
					return errors.New("--migrate-log-store needs --data-dir")
				}
				to, err := raftstore.ParseLogStoreKind(migrateTo)
				if err != nil {
					return fmt.Errorf("--migrate-log-store: %w", err)
				}
				return raftstore.MigrateLogStore(cfg.DataDir, to, logger)
			}
			// etcd's WAL sizes segments per process; only tests change it.
			raftlog.SetSegmentBytes(segmentBytes)
			if initialCluster != "" {
				if cfg.InitialCluster, err = raftstore.ParseInitialCluster(initialCluster); err != nil {
					return fmt.Errorf("--initial-cluster: %w", err)
				}
			}
			cfg.Join = join
			if cfg.LogStore, err = raftstore.ParseLogStoreKind(logStore); err != nil {
				return fmt.Errorf("--log-store: %w", err)
			}
			cfg.CompactionMode = raftstore.CompactionMode(compaction)
			if err := parseRetention(&cfg, retention); err != nil {
				return err
			}
			api := apiserver.Config{
				Addr:         apiAddr,
				CertsDir:     cfg.CertsDir,
				Identity:     cfg.Name,
				StateDir:     filepath.Join(cfg.DataDir, "apiserver"),
				EtcdServers:  etcdServers,
				TokenFile:    tokenFile,
				BargeVersion: raftstore.Version,
				ExtraArgs:    apiArgs,
				Logger:       logger.With("component", "control"),

				NotReadyToleration:    health.notReadyToleration,
				UnreachableToleration: health.unreachableToleration,
			}
			if err := health.validate(); err != nil {
				return err
			}
			if err := podNet.validate(); err != nil {
				return err
			}
			if advertiseAPI != "" {
				if api.AdvertiseAddr = net.ParseIP(advertiseAPI); api.AdvertiseAddr == nil {
					return fmt.Errorf("--advertise-api-addr %q is not an IP address", advertiseAPI)
				}
			}
			// The API server's own log lines go through our logger.
			klog.SetSlogLogger(logger.With("component", "apiserver"))
			var pool *gossip.Pool
			if gossipAddr != "" {
				if pool, err = startServerGossip(cfg, gossipAddr, gossipAdv, gossipJoin, gossipProfile, logger); err != nil {
					return err
				}
				defer func() {
					if err := pool.Leave(2 * time.Second); err != nil {
						logger.Warn("gossip leave", "err", err)
					}
				}()
				cfg.RegisterServices = func(s *grpc.Server) { gossip.RegisterAdmin(s, pool) }
				if podRoutes {
					rctx, stopRoutes := context.WithCancel(context.Background())
					defer stopRoutes()
					go syncPodRoutes(rctx, pool, logger.With("component", "pod-routes"))
				}
			} else if len(gossipJoin) > 0 || gossipAdv != "" || podRoutes {
				return errors.New("--gossip-join, --gossip-advertise and --pod-routes need --gossip-addr")
			}
			var srv *raftstore.Server
			var lead leader.Leadership
			if len(etcdServers) > 0 {
				// External etcd: no store peer here; the API server uses
				// etcd, and leader-only work follows a Kubernetes Lease.
				if apiAddr == "" {
					return errors.New("--etcd-servers needs --api-addr: without the API server there is nothing to run")
				}
			} else {
				if apiAddr != "" {
					// The store's figures join the API server's own /metrics.
					cfg.Registerer = legacyregistry.Registerer()
				}
				if srv, err = raftstore.Start(cfg); err != nil {
					return err
				}
				api.LocalStore = srv.DialLocal
				lead = srv
			}
			var cp *plane.Plane
			if apiAddr != "" {
				cp, err = plane.Start(api, lead, plane.Options{Gossip: pool, Controllers: controllers.Config{
					NodeMonitorPeriod: health.monitorPeriod, NodeMonitorGracePeriod: health.monitorGrace,
					NodeEvictionRate: health.evictionRate,
					ClusterCIDR:      podNet.clusterCIDR, NodeCIDRMaskSize: podNet.nodeMaskSize}})
				if err != nil {
					if srv != nil {
						srv.Stop()
					}
					return err
				}
				logger.Info("API server listening", "api", cp.Addr())
			}
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
			got := <-sig
			logger.Info("stopping", "signal", got.String())
			if cp != nil {
				if err := cp.Stop(); err != nil {
					logger.Warn("API server", "err", err)
				}
			}
			if srv != nil {
				srv.Stop()
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", "", "member name, unique in the cluster (required)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for the Raft log, snapshots and identity (required)")
	f.StringVar(&cfg.CertsDir, "certs", "", "certificate directory from `barge certs init` (required)")
	f.StringVar(&cfg.PeerAddr, "peer-addr", "", "IP:PORT for Raft traffic between peers (required)")
	f.StringVar(&cfg.ClientAddr, "client-addr", "", "IP:PORT for the etcd v3 gRPC API (required)")
	f.StringVar(&apiAddr, "api-addr", "", "IP:PORT for the Kubernetes API (HTTPS; off when empty)")
	f.StringVar(&advertiseAPI, "advertise-api-addr", "", "IP published for this API server in default/kubernetes (default: the --api-addr IP)")
	f.StringSliceVar(&etcdServers, "etcd-servers", nil, "run the API server on an existing etcd cluster (https://IP:PORT,...) instead of a barge store peer; the certificates folder's server certificate authenticates to it")
	f.StringArrayVar(&apiArgs, "kube-apiserver-arg", nil, "extra kube-apiserver flag (--name=value), repeatable; applied after barge's own")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "IP:PORT to serve the store's Prometheus metrics at https://IP:PORT/metrics (TLS and client certificates as on --client-addr; off when empty)")
	f.StringVar(&tokenFile, "token-auth-file", "", "static bearer tokens for the Kubernetes API, CSV: token,user,uid,\"group1,group2\"")
	f.StringVar(&cfg.AdvertisePeerAddr, "advertise-peer-addr", "", "peer address other peers dial (default --peer-addr)")
	f.StringVar(&cfg.AdvertiseClientAddr, "advertise-client-addr", "", "client address published to clients (default --client-addr)")
	f.StringVar(&initialCluster, "initial-cluster", "", "bootstrap membership: NAME=IP:PORT,... (peer addresses)")
	f.StringSliceVar(&join, "join", nil, "client URL(s) of a running cluster to join: https://IP:PORT")
	f.BoolVar(&cfg.JoinAsLearner, "learner", false, "with --join: join as a non-voting learner")
	f.DurationVar(&cfg.HeartbeatTimeout, "heartbeat-timeout", raftstore.DefaultHeartbeatTimeout, "Raft heartbeat timeout: a follower that hears nothing from the leader for 1-2x this starts an election")
	f.DurationVar(&cfg.ElectionTimeout, "election-timeout", raftstore.DefaultElectionTimeout, "Raft election timeout")
	f.DurationVar(&cfg.LeaderLeaseTimeout, "leader-lease-timeout", 0, "a leader that hears from no quorum for this long steps down (at most --heartbeat-timeout; default 9/10 of it, and below it a follower that finds the leader's process gone elects at once)")
	f.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", 16384, "log entries between Raft snapshots")
	f.Uint64Var(&cfg.TrailingLogs, "trailing-logs", 10240, "log entries kept after a snapshot, for followers that lag a little")
	_ = f.MarkHidden("trailing-logs")
	f.Int64Var(&cfg.SnapshotLogBytes, "snapshot-log-bytes", 64<<20, "also snapshot once the log applied since the last snapshot reaches this many bytes, bounding replay after a restart")
	f.StringVar(&logStore, "log-store", "", "where a new data dir keeps the Raft log: etcd-wal (etcd's write-ahead log, one fdatasync per append; the default) or bolt (raft-boltdb, two fdatasyncs per commit); empty keeps the data dir's. Data dirs made with the retired wal (hashicorp/raft-wal) still open")
	f.StringVar(&migrateTo, "migrate-log-store", "", "move the stopped member's Raft log in --data-dir to `STORE` (etcd-wal or bolt), then exit")
	f.Int64Var(&segmentBytes, "wal-segment-bytes", 0, "size of etcd-wal segment files (default 64 MB); small ones make crash tests cut and purge segments often")
	_ = f.MarkHidden("wal-segment-bytes")
	f.StringVar(&compaction, "auto-compaction-mode", "periodic", "automatic history compaction: periodic, revision or off")
	f.StringVar(&retention, "auto-compaction-retention", "5m", "periodic: how long to keep history (e.g. 1h); revision: how many revisions")
	f.Int64Var(&cfg.MinLeaseTTL, "min-lease-ttl", 2, "shortest lease TTL in seconds; shorter grants are raised to it")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	f.StringVar(&gossipAddr, "gossip-addr", "", "IP:PORT to gossip on (TCP and UDP; port 7946 when only an IP is given); off when empty")
	f.StringVar(&gossipAdv, "gossip-advertise", "", "IP other members reach this one at (default the --gossip-addr IP)")
	f.StringSliceVar(&gossipJoin, "gossip-join", nil, "gossip members to join, IP:PORT,... (other servers; retried until one answers)")
	f.StringVar(&gossipProfile, "gossip-profile", gossip.ProfileBarge, "failure detector timing: barge, lan or local (see node/gossip)")
	f.BoolVar(&podRoutes, "pod-routes", false, "route every node's pod CIDR through its underlay address as gossip reports them (flannel's host-gw), so the API server reaches pods (pods/proxy, webhooks, aggregated APIs) without running an agent here; needs --gossip-addr and a link shared with the nodes")
	health.register(f)
	podNet.register(f)
	return cmd
}

// nodeHealthFlags are the timings from a node's death to its pods running
// elsewhere (see the command's help).
type nodeHealthFlags struct {
	notReadyToleration, unreachableToleration time.Duration
	monitorPeriod, monitorGrace               time.Duration
	evictionRate                              float32
}

func (h *nodeHealthFlags) register(f *pflag.FlagSet) {
	f.DurationVar(&h.unreachableToleration, "node-unreachable-toleration", apiserver.DefaultUnreachableToleration, "how long pods without a toleration of their own stay on an unreachable node (whole seconds; the API server's --default-unreachable-toleration-seconds)")
	f.DurationVar(&h.notReadyToleration, "node-not-ready-toleration", apiserver.DefaultNotReadyToleration, "the same for a not-ready node (--default-not-ready-toleration-seconds)")
	f.DurationVar(&h.monitorPeriod, "node-monitor-period", controllers.DefaultNodeMonitorPeriod, "how often the node lifecycle controller taints nodes by their Ready condition")
	f.DurationVar(&h.monitorGrace, "node-monitor-grace-period", controllers.DefaultNodeMonitorGracePeriod, "how long a node may miss Lease renewals before it is marked Unknown (the fallback without gossip)")
	f.Float32Var(&h.evictionRate, "node-eviction-rate", controllers.DefaultNodeEvictionRate, "nodes per second the node lifecycle controller may taint NoExecute (Kubernetes: 0.1)")
}

func (h *nodeHealthFlags) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--node-unreachable-toleration", h.unreachableToleration}, {"--node-not-ready-toleration", h.notReadyToleration}} {
		if d.v < time.Second || d.v%time.Second != 0 {
			return fmt.Errorf("%s %v: want a whole number of seconds, at least 1s", d.name, d.v)
		}
	}
	if h.evictionRate <= 0 {
		return fmt.Errorf("--node-eviction-rate %v must be positive", h.evictionRate)
	}
	if h.monitorPeriod <= 0 {
		return fmt.Errorf("--node-monitor-period %v must be positive", h.monitorPeriod)
	}
	if h.monitorGrace <= h.monitorPeriod {
		return fmt.Errorf("--node-monitor-grace-period %v must be longer than --node-monitor-period %v", h.monitorGrace, h.monitorPeriod)
	}
	return nil
}

// podNetFlags are node IPAM's: where each node's spec.podCIDR comes from.
type podNetFlags struct {
	clusterCIDR  string
	nodeMaskSize int32
}

func (p *podNetFlags) register(f *pflag.FlagSet) {
	f.StringVar(&p.clusterCIDR, "cluster-cidr", controllers.DefaultClusterCIDR, "the pod network node IPAM splits into one podCIDR per node (kube-controller-manager's --cluster-cidr); agents given --cluster-cidr must be given the same")
	f.Int32Var(&p.nodeMaskSize, "node-cidr-mask-size", controllers.DefaultNodeCIDRMaskSize, "prefix length of each node's podCIDR: the default /24 out of a /16 allows 256 nodes of 254 pods")
}

// validate refuses at startup what the range allocator would refuse only
// once a leader builds it, leaving every node without a podCIDR.
func (p *podNetFlags) validate() error {
	pfx, err := netip.ParsePrefix(p.clusterCIDR)
	if err != nil {
		return fmt.Errorf("--cluster-cidr %q: %w", p.clusterCIDR, err)
	}
	if !pfx.Addr().Is4() {
		return fmt.Errorf("--cluster-cidr %s: the overlay is IPv4 only", pfx)
	}
	if pfx != pfx.Masked() {
		return fmt.Errorf("--cluster-cidr %s has host bits set; did you mean %s?", pfx, pfx.Masked())
	}
	bits := int32(pfx.Bits())
	switch {
	case p.nodeMaskSize <= bits || p.nodeMaskSize > 30:
		return fmt.Errorf("--node-cidr-mask-size %d: want %d-30, longer than --cluster-cidr %s", p.nodeMaskSize, bits+1, pfx)
	case p.nodeMaskSize-bits > 16:
		// The range allocator's own limit: at most 65,536 node CIDRs.
		return fmt.Errorf("--node-cidr-mask-size %d splits --cluster-cidr %s into more than 65536 node CIDRs", p.nodeMaskSize, pfx)
	}
	return nil
}

// startServerGossip starts this server's member of the gossip pool, role
// server, named as the store member.
func startServerGossip(cfg raftstore.Config, addr, advertise string, join []string, profile string, logger *slog.Logger) (*gossip.Pool, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		host, portStr = addr, strconv.Itoa(gossip.DefaultPort)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("--gossip-addr %q: port: %w", addr, err)
	}
	if cfg.CertsDir == "" {
		return nil, errors.New("--gossip-addr needs --certs: the pool's key is in the certificates folder")
	}
	timing, err := gossip.TimingProfile(profile)
	if err != nil {
		return nil, fmt.Errorf("--gossip-profile: %w", err)
	}
	keyring := filepath.Join(cfg.CertsDir, gossip.KeyringFile)
	if _, err := os.Stat(keyring); err != nil {
		return nil, fmt.Errorf("gossip: %w (barge certs init writes it; or barge gossip keygen --certs %s)", err, cfg.CertsDir)
	}
	return gossip.Start(gossip.Config{
		Name: cfg.Name, Role: gossip.RoleServer, BindAddr: host, AdvertiseAddr: advertise, Port: port,
		KeyringFile: keyring, Join: join, Timing: timing, Logger: logger,
	})
}

func parseRetention(cfg *raftstore.Config, s string) error {
	switch cfg.CompactionMode {
	case raftstore.CompactionPeriodic:
		d, err := time.ParseDuration(s)
		if err != nil {
			// etcd accepts a bare number of hours.
			h, herr := strconv.Atoi(s)
			if herr != nil {
				return fmt.Errorf("--auto-compaction-retention %q: want a duration such as 1h: %w", s, err)
			}
			d = time.Duration(h) * time.Hour
		}
		if d <= 0 {
			return fmt.Errorf("--auto-compaction-retention %q must be positive", s)
		}
		cfg.CompactionRetention = d
	case raftstore.CompactionRevision:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("--auto-compaction-retention %q: revision mode wants a positive number of revisions", s)
		}
		cfg.CompactionRevisions = n
	}
	return nil
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
