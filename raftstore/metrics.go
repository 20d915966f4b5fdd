package raftstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/barge-dev/barge/raftstore/pki"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are one peer's Prometheus figures. They belong to the Server,
// not to a global registry, so that several peers in one process (tests)
// and the API server's own registry can each hold theirs.
type metrics struct {
	commit, apply, logAppend         prometheus.Histogram
	snapshotSave, snapshotInstall    prometheus.Histogram
	leaderChanges, proposalsFailed   prometheus.Counter
	proposalsForwarded, slowWatchers prometheus.Counter
	fastElections                    prometheus.Counter
	funcs                            []prometheus.Collector
}

// latencyBuckets span 0.1 ms (an fdatasync here) to 4 s (an election
// under load), as etcd's disk histograms do.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2, 16)

func newMetrics() *metrics {
	h := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "barge", Name: name, Help: help, Buckets: buckets})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "barge", Name: name, Help: help})
	}
	return &metrics{
		commit:          h("store_commit_duration_seconds", "Time from raft.Apply on the leader until the entry is committed by a quorum and applied on the leader.", latencyBuckets),
		apply:           h("store_apply_duration_seconds", "Time the state machine takes to apply one Raft log entry.", latencyBuckets),
		logAppend:       h("disk_log_fsync_duration_seconds", "Time of one durable append to the Raft log: the write (to the page cache) and its fdatasync.", latencyBuckets),
		snapshotSave:    h("snapshot_save_duration_seconds", "Time to write one Raft snapshot of the store to disk.", prometheus.ExponentialBuckets(0.01, 2, 14)),
		snapshotInstall: h("snapshot_install_duration_seconds", "Time to load and install a Raft snapshot (from a leader, or a restore).", prometheus.ExponentialBuckets(0.01, 2, 14)),
		leaderChanges:   c("raft_leader_changes_seen_total", "Leader changes this peer has seen."),
		proposalsFailed: c("store_proposals_failed_total", "Writes that failed to reach the log or to commit (no leader, leadership lost, timeout)."),
		proposalsForwarded: c("store_proposals_forwarded_total",
			"Writes this peer forwarded to the leader, retries included."),
		slowWatchers: c("watch_slow_watchers_total", "Times a watcher found its stream full and began holding its responses."),
		fastElections: c("raft_fast_elections_total",
			"Elections this peer started early because the leader's port refused connections (its process was gone)."),
	}
}

// addFuncs adds the gauges read from the live server at scrape time.
func (m *metrics) addFuncs(s *Server) {
	g := func(name, help string, fn func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "barge", Name: name, Help: help}, fn)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	m.funcs = []prometheus.Collector{
		g("raft_is_leader", "1 while this peer is the Raft leader.", func() float64 { return b(s.raft.State() == raft.Leader) }),
		g("raft_has_leader", "1 while this peer knows a leader.", func() float64 { _, id := s.raft.LeaderWithID(); return b(id != "") }),
		g("raft_term", "This peer's current Raft term.", func() float64 { return float64(s.currentTerm()) }),
		g("raft_commit_index", "The last Raft index this peer knows committed.", func() float64 { return float64(s.raft.CommitIndex()) }),
		g("raft_applied_index", "The last Raft index applied to this peer's store.", func() float64 { return float64(s.fsm.appliedIndex()) }),
		g("store_revision", "The store's current revision.", func() float64 { return float64(s.fsm.store.Rev()) }),
		g("store_db_size_bytes", "Bytes the store keeps on disk: Raft log, stable state and snapshots.", func() float64 { return float64(s.diskSize()) }),
		g("store_db_size_in_use_bytes", "Bytes of live keys and history the store holds in memory.", func() float64 { return float64(s.fsm.store.Stats().SizeBytes) }),
		g("watch_watchers", "Watchers open on this peer.", func() float64 { return float64(s.fsm.hub.Watchers()) }),
		g("watch_slow_watchers", "Watchers holding responses their full stream could not take yet.", func() float64 {
			_, victims, _ := s.fsm.hub.Counts()
			return float64(victims)
		}),
		g("watch_unsynced_watchers", "Watchers catching up from history (they started in the past, or fell too far behind).", func() float64 {
			_, _, unsynced := s.fsm.hub.Counts()
			return float64(unsynced)
		}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return append([]prometheus.Collector{m.commit, m.apply, m.logAppend, m.snapshotSave, m.snapshotInstall,
		m.leaderChanges, m.proposalsFailed, m.proposalsForwarded, m.slowWatchers, m.fastElections}, m.funcs...)
}

// Collectors returns this peer's Raft and store metrics, for a registry
// of the caller's (the API server adds them to its /metrics). They are
// the same ones Config.Registerer receives and --metrics-addr serves.
func (s *Server) Collectors() []prometheus.Collector { return s.metrics.collectors() }

// observeSince is a nil-safe Observe for code that also runs without a
// server (the FSM in unit tests).
func observeSince(h prometheus.Observer, start time.Time) {
	if h != nil {
		h.Observe(time.Since(start).Seconds())
	}
}

// timedLogStore measures every append of whichever log store is in use.
// It keeps the MonotonicLogStore promise of the store it wraps.
type timedLogStore struct {
	raft.LogStore
	h prometheus.Observer
}

func (t timedLogStore) StoreLog(l *raft.Log) error { return t.StoreLogs([]*raft.Log{l}) }

func (t timedLogStore) StoreLogs(logs []*raft.Log) error {
	defer observeSince(t.h, time.Now())
	return t.LogStore.StoreLogs(logs)
}

func (t timedLogStore) IsMonotonic() bool {
	m, ok := t.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// serveMetrics serves this peer's metrics, the Go runtime's and the
// process's at https://addr/metrics, with the client port's TLS (a
// client certificate from the cluster CA is required, as for etcd's).
func (s *Server) serveMetrics() error {
	tlsCfg, err := pki.ServerTLS(s.cfg.CertsDir)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	for _, c := range append(s.Collectors(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})) {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	ln, err := net.Listen("tcp", s.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("metrics listen on %s: %w", s.cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Failed handshakes (a scraper without a certificate) are the
	// client's problem; they are logged at debug level only.
	srv := &http.Server{Handler: mux, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug)}
	s.metricsLn = ln
	s.goFn(func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Warn("metrics server", "err", err)
		}
	})
	s.goFn(func() {
		<-s.ctx.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return nil
}

// MetricsAddr is the address the metrics listener is bound to, "" without
// one.
func (s *Server) MetricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}
