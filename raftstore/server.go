package raftstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/barge-dev/barge/raftstore/peer"
	"github.com/barge-dev/barge/raftstore/pki"
	"github.com/barge-dev/barge/raftstore/v3rpc"
	"github.com/barge-dev/barge/raftstore/watch"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Server is one store peer: Raft, the replicated FSM, the peer transport
// and the etcd v3 gRPC API.
type Server struct {
	cfg    Config
	logger *slog.Logger
	id     *identity

	fsm       *fsm
	raft      *raft.Raft
	stable    *raftboltdb.BoltStore // Raft's term and vote, and the log with LogStoreBolt
	logCloser io.Closer             // the log store when it is not stable
	snaps     *raft.FileSnapshotStore
	transport *raft.NetworkTransport
	mux       *peer.Mux

	peerGRPC   *grpc.Server
	clientGRPC *grpc.Server
	clientLn   net.Listener
	local      *localEndpoint

	ctx    context.Context // lives until Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	leaderWatch *leaderWatch
	leaders     *leaderClients
	proposer    *batcher // writes appended here, as leader
	forwarder   *batcher // writes forwarded to the leader
	reads       *readBatcher

	// gate is held shared by every local proposal and exclusively by a
	// live restore, which must see no write between its steps.
	gate sync.RWMutex

	termMu sync.Mutex
	term   atomic.Pointer[leaderTerm] // non-nil while leading

	metrics   *metrics
	metricsLn net.Listener

	stopOnce sync.Once
}

// leaderTerm is the state of one stretch of leadership.
type leaderTerm struct {
	ctx    context.Context
	cancel context.CancelFunc
	ready  chan struct{} // closed once every earlier entry is applied here
	// raftTerm is the Raft term of the leadership, from its first entry;
	// set before ready closes.
	raftTerm uint64
}

// Start opens the data directory, starts Raft and serves the peer and
// client ports. It returns once the listeners are up; leadership and
// catch-up happen in the background.
func Start(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	s := &Server{cfg: cfg, logger: cfg.Logger.With("member", cfg.Name), metrics: newMetrics()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.start(); err != nil {
		s.closeAll(true)
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	cfg := s.cfg
	peerServerTLS, peerClientTLS, err := pki.PeerTLS(cfg.CertsDir)
	if err != nil {
		return err
	}
	clientTLS, err := pki.ServerTLS(cfg.CertsDir)
	if err != nil {
		return err
	}

	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: s.raftLogOutput()})
	s.stable, err = openStable(cfg.DataDir)
	if err != nil {
		return err
	}
	logStore, logCloser, kind, err := openLogStore(cfg.DataDir, cfg.LogStore, s.stable, logStoreOptions{hlog: hlog, logger: s.logger})
	if err != nil {
		return err
	}
	s.logCloser = logCloser
	s.snaps, err = raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hlog)
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	hasState, err := raft.HasExistingState(logStore, s.stable, s.snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}

	s.id, err = loadIdentity(cfg.DataDir)
	if err != nil {
		return err
	}
	if hasState && s.id == nil {
		return fmt.Errorf("data dir %s holds Raft state but no %s; refusing to guess this member's identity", cfg.DataDir, identityFile)
	}
	if s.id != nil && s.id.Name != cfg.Name {
		return fmt.Errorf("data dir %s belongs to member %q, not %q", cfg.DataDir, s.id.Name, cfg.Name)
	}

	s.mux, err = peer.Listen(cfg.PeerAddr, cfg.AdvertisePeerAddr, peerServerTLS, peerClientTLS, s.logger)
	if err != nil {
		return err
	}
	s.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: s.mux.RaftLayer(), MaxPool: 5, Timeout: 10 * time.Second, Logger: hlog,
	})

	var bootstrap *raft.Configuration
	if !hasState {
		bootstrap, err = s.establishIdentity()
		if err != nil {
			return err
		}
	}

	s.fsm = newFSM(s.logger, cfg.MinLeaseTTL, watch.Config{ProgressInterval: cfg.WatchProgressInterval, OnSlow: s.metrics.slowWatchers.Inc})
	s.fsm.applyObs, s.fsm.saveObs, s.fsm.installObs = s.metrics.apply, s.metrics.snapshotSave, s.metrics.snapshotInstall
	s.fsm.clusterID, s.fsm.memberID = s.id.ClusterID, s.id.MemberID
	s.fsm.logBytesLimit = cfg.SnapshotLogBytes

	rc := raft.DefaultConfig()
	rc.LocalID = serverID(s.id.MemberID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = 5 * time.Millisecond
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.MaxAppendEntries = 256
	rc.BatchApplyCh = true
	rc.Logger = hlog
	notify := make(chan bool, 16)
	rc.NotifyCh = notify

	// The leader reads every entry back to replicate it; the cache serves
	// those reads from memory instead of a read and a decode each. The
	// etcd WAL store keeps its entries in memory already.
	var logs raft.LogStore = timedLogStore{LogStore: logStore, h: s.metrics.logAppend}
	if kind != LogStoreEtcdWAL {
		if logs, err = raft.NewLogCache(logCacheEntries, logs); err != nil {
			return fmt.Errorf("log cache: %w", err)
		}
	}
	s.raft, err = raft.NewRaft(rc, s.fsm, logs, s.stable, s.snaps, s.transport)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	if bootstrap != nil {
		if err := s.raft.BootstrapCluster(*bootstrap).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("bootstrap cluster: %w", err)
		}
	}

	s.leaderWatch = newLeaderWatch(s.raft, s.metrics.leaderChanges.Inc)
	s.metrics.addFuncs(s)
	if cfg.Registerer != nil {
		for _, c := range s.Collectors() {
			if err := cfg.Registerer.Register(c); err != nil {
				return fmt.Errorf("register metrics: %w", err)
			}
		}
	}
	if cfg.MetricsAddr != "" {
		if err := s.serveMetrics(); err != nil {
			return err
		}
	}
	s.leaders = newLeaderClients(s.mux)
	s.proposer = newBatcher(appendsInFlight, s.appendBatch)
	s.forwarder = newBatcher(forwardsInFlight, forwardBatch)
	s.reads = newReadBatcher(s.raft, s.fsm)

	s.peerGRPC = grpc.NewServer()
	peer.RegisterLeader(s.peerGRPC, &leaderService{s: s})
	s.goFn(func() { _ = s.peerGRPC.Serve(s.mux.RPCListener()) })

	s.clientLn, err = net.Listen("tcp", cfg.ClientAddr)
	if err != nil {
		return fmt.Errorf("client listen on %s: %w", cfg.ClientAddr, err)
	}
	rpcCfg := v3rpc.Config{Logger: s.logger, Version: EtcdAPIVersion}
	opts := append(v3rpc.GRPCServerOptions(rpcCfg), grpc.Creds(credentials.NewTLS(clientTLS)))
	s.clientGRPC = grpc.NewServer(opts...)
	v3rpc.Register(s.clientGRPC, s, rpcCfg)
	s.clientGRPC.RegisterService(&adminDesc, s)
	if cfg.RegisterServices != nil {
		cfg.RegisterServices(s.clientGRPC)
	}
	s.goFn(func() { _ = s.clientGRPC.Serve(s.clientLn) })
	s.startLocal(rpcCfg)

	s.goFn(func() { s.leaderWatch.run(s.ctx) })
	s.goFn(func() { s.watchDeadLeader(s.ctx) })
	s.goFn(func() { s.reads.run(s.ctx) })
	s.goFn(func() { s.proposer.run(s.ctx) })
	s.goFn(func() { s.forwarder.run(s.ctx) })
	s.goFn(func() { s.fsm.hub.Run(s.ctx) })
	s.goFn(func() { s.runLeadership(notify) })
	s.goFn(func() { s.runCompactor(s.ctx) })
	s.goFn(s.snapshotBigLogs)
	s.goFn(s.publishAttributes)
	s.logger.Info("store peer started", "id", fmt.Sprintf("%016x", s.id.MemberID),
		"peer", cfg.AdvertisePeerAddr, "client", cfg.AdvertiseClientAddr, "restored", hasState, "logStore", kind)
	return nil
}

// logCacheEntries covers several full AppendEntries batches
// (MaxAppendEntries), so followers that keep up never cause a log read.
const logCacheEntries = 1024

func (s *Server) raftLogOutput() io.Writer {
	if s.cfg.RaftLog != nil {
		return s.cfg.RaftLog
	}
	return os.Stderr
}

func (s *Server) goFn(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// establishIdentity decides, on the very first start, this member's ID and
// the cluster's, and returns the configuration to bootstrap (nil when
// joining an existing cluster).
func (s *Server) establishIdentity() (*raft.Configuration, error) {
	cfg := s.cfg
	switch {
	case s.id != nil && len(cfg.Join) > 0:
		// Added to the cluster before a crash; Raft will catch us up.
		return nil, nil
	case len(cfg.InitialCluster) > 0:
		conf := raft.Configuration{}
		for _, p := range cfg.InitialCluster {
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: serverID(memberIDOf(p)), Address: raft.ServerAddress(p.Addr)})
		}
		if s.id == nil {
			s.id = &identity{Name: cfg.Name, MemberID: memberIDOf(Peer{Name: cfg.Name, Addr: cfg.AdvertisePeerAddr}), ClusterID: clusterIDOf(cfg.InitialCluster)}
			if err := saveIdentity(cfg.DataDir, s.id); err != nil {
				return nil, err
			}
		}
		return &conf, nil
	case len(cfg.Join) > 0:
		id, err := s.joinCluster()
		if err != nil {
			return nil, err
		}
		s.id = id
		return nil, saveIdentity(cfg.DataDir, s.id)
	default:
		return nil, errors.New("empty data dir: give --initial-cluster to bootstrap a cluster or --join to join one")
	}
}

// joinTLS authenticates a new peer to an existing cluster's client port
// with its server certificate, which carries the client-auth usage.
func joinTLS(dir string) (*tls.Config, error) {
	return pki.LoadClientTLS(dir, "server.crt", "server.key")
}

// Stop shuts the peer down. A leader first hands leadership to another
// voter so the cluster does not wait an election timeout.
func (s *Server) Stop() {
	s.stop(true)
}

// Kill stops the peer abruptly, as a crash would (for tests): no
// leadership transfer, no graceful drain.
func (s *Server) Kill() {
	s.stop(false)
}

func (s *Server) stop(graceful bool) {
	s.stopOnce.Do(func() {
		if graceful && s.raft != nil && s.raft.State() == raft.Leader && s.voterCount() > 1 {
			if err := s.raft.LeadershipTransfer().Error(); err != nil {
				s.logger.Warn("leadership transfer before shutdown failed", "err", err)
			} else {
				s.logger.Info("handed leadership over before shutdown")
			}
		}
		s.closeAll(graceful)
		if graceful {
			s.logger.Info("store peer stopped")
		}
	})
}

func (s *Server) closeAll(graceful bool) {
	s.cancel()
	if !graceful && s.mux != nil {
		// A crashed process's port refuses connections the moment its
		// streams break; peers tell a death from a partition by that.
		s.mux.Close()
	}
	if s.clientGRPC != nil {
		s.clientGRPC.Stop()
	}
	if s.local != nil {
		s.local.srv.Stop()
	}
	if s.peerGRPC != nil {
		s.peerGRPC.Stop()
	}
	if s.raft != nil {
		if err := s.raft.Shutdown().Error(); err != nil {
			s.logger.Warn("raft shutdown", "err", err)
		}
	}
	if s.transport != nil {
		s.transport.Close()
	}
	if s.mux != nil {
		s.mux.Close()
	}
	if s.leaders != nil {
		s.leaders.close()
	}
	s.wg.Wait()
	if s.logCloser != nil {
		s.logCloser.Close()
	}
	if s.stable != nil {
		s.stable.Close()
	}
}

func (s *Server) voterCount() int {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	n := 0
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			n++
		}
	}
	return n
}

// ClientAddr is the address the etcd API listens on.
func (s *Server) ClientAddr() string { return s.clientLn.Addr().String() }

// MemberID is this peer's etcd member ID.
func (s *Server) MemberID() uint64 { return s.id.MemberID }

// ClusterID is the cluster's ID.
func (s *Server) ClusterID() uint64 { return s.id.ClusterID }

// IsLeader reports whether this peer currently leads.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader }

// Watchers is the number of watches open on this peer; the API server's
// watch cache keeps it at one per resource however many clients watch.
func (s *Server) Watchers() int { return s.fsm.hub.Watchers() }

// SnapshotsInstalled counts snapshots this peer has installed from a
// leader or a restore since it started.
func (s *Server) SnapshotsInstalled() int64 { return s.fsm.restores.Load() }

// TakeSnapshot forces a Raft snapshot and log truncation now.
func (s *Server) TakeSnapshot() error { return s.raft.Snapshot().Error() }

// snapshotBigLogs takes a snapshot whenever the FSM reports that the log
// applied since the last one passed SnapshotLogBytes.
func (s *Server) snapshotBigLogs() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.fsm.bigLog:
		}
		// Raft may have snapshotted meanwhile, by its own entry count.
		if s.fsm.logBytes.Load() < s.cfg.SnapshotLogBytes {
			continue
		}
		err := s.raft.Snapshot().Error()
		switch {
		case err == nil:
			s.logger.Info("snapshot taken", "reason", "log bytes", "limit", s.cfg.SnapshotLogBytes)
		case errors.Is(err, raft.ErrNothingNewToSnapshot), errors.Is(err, raft.ErrRaftShutdown):
		default:
			s.logger.Warn("snapshot for log size failed", "err", err)
		}
	}
}

// Raft exposes the Raft node to in-module tests and tools.
func (s *Server) Raft() *raft.Raft { return s.raft }

// LeaderChange returns a channel closed at the next leadership change this
// peer observes, so callers can wait for elections without polling.
func (s *Server) LeaderChange() <-chan struct{} { return s.leaderWatch.next() }

// ReadyLeader reports whether this peer leads and has applied every
// earlier entry, i.e. serves leader-only requests without waiting.
func (s *Server) ReadyLeader() bool {
	_, ok := s.LeaderTerm()
	return ok
}

// LeaderTerm returns the Raft term this peer's current leadership began
// in, once it leads and has applied every earlier entry. Writes fenced to
// it (FenceMetadataKey) land only while that leadership lasts.
func (s *Server) LeaderTerm() (uint64, bool) {
	t := s.term.Load()
	if t == nil {
		return 0, false
	}
	select {
	case <-t.ready:
		return t.raftTerm, true
	default:
		return 0, false
	}
}

// WaitApplied blocks until the command at index is applied here.
func (s *Server) WaitApplied(ctx context.Context, index uint64) error {
	return s.fsm.waitApplied(ctx, index)
}

// AppliedIndex is the index of the last command applied here.
func (s *Server) AppliedIndex() uint64 { return s.fsm.appliedIndex() }
