package raftstore

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
)

// Peer names one member of an initial cluster.
type Peer struct {
	Name string
	Addr string // host:port of the peer (Raft) listener
}

// ParseInitialCluster parses "n1=IP:PORT,n2=IP:PORT". A scheme prefix
// (https://) is accepted and dropped, for etcd muscle memory.
func ParseInitialCluster(s string) ([]Peer, error) {
	var peers []Peer
	seen := map[string]bool{}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, addr, ok := strings.Cut(part, "=")
		if !ok || name == "" || addr == "" {
			return nil, fmt.Errorf("initial cluster entry %d %q: want NAME=IP:PORT", i+1, part)
		}
		addr = StripScheme(addr)
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("initial cluster entry %d %q: %w", i+1, part, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("initial cluster names %q twice", name)
		}
		seen[name] = true
		peers = append(peers, Peer{Name: name, Addr: addr})
	}
	if len(peers) == 0 {
		return nil, errors.New("initial cluster is empty")
	}
	return peers, nil
}

// StripScheme turns "https://h:p" into "h:p".
func StripScheme(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		return u[i+3:]
	}
	return u
}

// CompactionMode selects automatic compaction.
type CompactionMode string

const (
	CompactionOff      CompactionMode = "off"
	CompactionPeriodic CompactionMode = "periodic" // keep history for Retention
	CompactionRevision CompactionMode = "revision" // keep the last Revisions revisions
)

// Config configures a store peer.
type Config struct {
	Name     string
	DataDir  string
	CertsDir string

	PeerAddr   string // listen address for Raft and peer RPC
	ClientAddr string // listen address for the etcd v3 gRPC API
	// Advertised addresses default to the listen addresses.
	AdvertisePeerAddr   string
	AdvertiseClientAddr string

	// Exactly one of InitialCluster (bootstrap) and Join (client URLs of a
	// running cluster) is used on first start; both are ignored when the
	// data directory already holds state.
	InitialCluster []Peer
	Join           []string
	JoinAsLearner  bool

	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// LeaderLeaseTimeout is how long a leader keeps leading without
	// hearing from a quorum before it steps down (at most
	// HeartbeatTimeout; default DefaultLeaderLeaseTimeout of it).
	LeaderLeaseTimeout time.Duration
	// SnapshotThreshold is how many log entries trigger a Raft snapshot;
	// TrailingLogs how many stay after one, for slow followers.
	SnapshotThreshold uint64
	TrailingLogs      uint64
	SnapshotInterval  time.Duration
	// SnapshotLogBytes also triggers a snapshot once the entries applied
	// since the last one add up to this many bytes. hashicorp/raft counts
	// entries only, and one entry may be a 1.5 MiB txn: without a byte
	// bound a restarted peer could have gigabytes of log to replay, and a
	// peer replaying cannot vote promptly.
	SnapshotLogBytes int64
	// LogStore is where the Raft log lives; "" keeps the data
	// directory's, or takes DefaultLogStore for a new one.
	LogStore LogStoreKind

	CompactionMode      CompactionMode
	CompactionRetention time.Duration // periodic mode
	CompactionRevisions int64         // revision mode

	// MinLeaseTTL in seconds; shorter grants are raised to it so a lease
	// always outlives an election.
	MinLeaseTTL int64
	// WatchProgressInterval is how often idle watchers that asked for it
	// get a progress notification.
	WatchProgressInterval time.Duration

	// MetricsAddr, when set, serves this peer's Prometheus metrics at
	// https://MetricsAddr/metrics (TLS as on the client port), for servers
	// that run no API server.
	MetricsAddr string
	// Registerer, when set, receives this peer's metrics at Start (see
	// Server.Collectors).
	Registerer prometheus.Registerer
	// RegisterServices, if set, adds more gRPC services to the client
	// port's server before it starts serving: that server's TLS demands a
	// client certificate from the cluster CA, and RequireAdmin narrows a
	// method to administrators. This is how services of packages the
	// store may not import (node/gossip's admin service) reach the CLI.
	RegisterServices func(*grpc.Server)

	Logger *slog.Logger
	// RaftLog receives hashicorp/raft's own log lines (default: discarded
	// below warnings, to stderr).
	RaftLog io.Writer
}

// Raft timing. A follower that hears nothing from the leader for a random
// time between HeartbeatTimeout and twice that starts an election, so the
// heartbeat timeout bounds failover: at 200 ms a killed leader is replaced
// within about 200-400 ms. The leader heartbeats every tenth of it on a
// path of its own, independent of log writes and fsync, so a loaded
// leader is not mistaken for a dead one.
//
// Under CPU starvation (`barge bench starve`: a 4-goroutine busy loop in
// another process, on a 2-core machine already at load 20) two things
// elect: a follower whose heartbeat timer fires while the leader's
// heartbeats wait for a core, and a leader that has not processed a
// quorum's replies within LeaderLeaseTimeout and steps down. Pre-vote
// (on in hashicorp/raft 1.7) answers the first: a follower's pre-vote is
// refused by every peer that still has a leader, so it costs no term.
// The second was every spurious election measured: with the lease at
// half the heartbeat timeout (100 ms) the leader stepped down 3-7 times a
// minute; at 200 ms never, over the same minute. The lease is 9/10 of
// the heartbeat timeout: close to that, and below it, because a follower
// that finds the leader's process gone lowers its heartbeat timeout to
// the lease to elect at once (deadleader.go), and hashicorp/raft allows
// no heartbeat timeout under the lease. Reads do not depend on the lease
// (they confirm leadership with a quorum round, VerifyLeader), so a
// longer one only delays a partitioned leader's step-down.
const (
	DefaultHeartbeatTimeout = 200 * time.Millisecond
	DefaultElectionTimeout  = 200 * time.Millisecond
)

// DefaultLeaderLeaseTimeout is the lease for a heartbeat timeout.
func DefaultLeaderLeaseTimeout(heartbeat time.Duration) time.Duration { return heartbeat * 9 / 10 }

func (c *Config) setDefaults() {
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = DefaultElectionTimeout
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = DefaultLeaderLeaseTimeout(c.HeartbeatTimeout)
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 16384
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 2 * time.Minute
	}
	if c.SnapshotLogBytes == 0 {
		c.SnapshotLogBytes = 64 << 20
	}
	if c.CompactionMode == "" {
		c.CompactionMode = CompactionPeriodic
	}
	if c.CompactionRetention == 0 {
		c.CompactionRetention = 5 * time.Minute
	}
	if c.CompactionRevisions == 0 {
		c.CompactionRevisions = 10000
	}
	if c.MinLeaseTTL == 0 {
		c.MinLeaseTTL = 2
	}
	if c.AdvertisePeerAddr == "" {
		c.AdvertisePeerAddr = c.PeerAddr
	}
	if c.AdvertiseClientAddr == "" {
		c.AdvertiseClientAddr = c.ClientAddr
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("--name is required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is required"))
	}
	if c.CertsDir == "" {
		errs = append(errs, errors.New("--certs is required"))
	}
	for flag, addr := range map[string]string{"--peer-addr": c.PeerAddr, "--client-addr": c.ClientAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", flag, addr, err))
		}
	}
	if len(c.InitialCluster) > 0 && len(c.Join) > 0 {
		errs = append(errs, errors.New("--initial-cluster and --join are mutually exclusive"))
	}
	if len(c.InitialCluster) > 0 {
		found := false
		for _, p := range c.InitialCluster {
			if p.Name == c.Name {
				found = true
				if p.Addr != c.AdvertisePeerAddr {
					errs = append(errs, fmt.Errorf("--initial-cluster gives %s the peer address %s, but this peer advertises %s", p.Name, p.Addr, c.AdvertisePeerAddr))
				}
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("--initial-cluster does not include this peer's name %q", c.Name))
		}
	}
	switch c.CompactionMode {
	case CompactionOff, CompactionPeriodic, CompactionRevision:
	default:
		errs = append(errs, fmt.Errorf("auto compaction mode %q: want off, periodic or revision", c.CompactionMode))
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("leader lease timeout %s is longer than heartbeat timeout %s", c.LeaderLeaseTimeout, c.HeartbeatTimeout))
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("election timeout %s is shorter than heartbeat timeout %s", c.ElectionTimeout, c.HeartbeatTimeout))
	}
	return errors.Join(errs...)
}

// clusterIDOf derives the cluster ID every bootstrapping peer agrees on
// from the initial membership alone.
func clusterIDOf(peers []Peer) uint64 {
	parts := make([]string, len(peers))
	for i, p := range peers {
		parts[i] = p.Name + "=" + p.Addr
	}
	sort.Strings(parts)
	return fnv64(strings.Join(parts, ","))
}

// memberIDOf derives a bootstrap member's ID from its name and address, so
// that every peer computes the same initial Raft configuration.
func memberIDOf(p Peer) uint64 { return fnv64(p.Name + "\x00" + p.Addr) }

func fnv64(s string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	if h == 0 {
		h = 1
	}
	return h
}
