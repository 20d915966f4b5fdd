package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"time"

	"github.com/barge-dev/barge/raftstore/pki"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// conns is the number of client connections per system that the client
// goroutines share, like `benchmark --conns`.
const conns = 4

// Config is one `barge bench store` run.
type Config struct {
	BargeBin string
	// BargeFlags are added to every barge server's command line.
	BargeFlags []string
	EtcdBin    string
	// Etcd37Bin, when set, runs etcd 3.7 (chaos/bench/etcd37) as a third
	// system beside Debian's etcd 3.4.
	Etcd37Bin string
	OutDir    string // certificates and every member's data dir and log
	Window    Window
	Kills     int // leader kills per system
	SizeKeys  int // keys of the size section; 0 skips it
	// Rows, when set, runs only the rows whose label it matches.
	Rows    *regexp.Regexp
	Command string // as typed, recorded in the report
	Log     *slog.Logger
}

// system is one cluster under test and its client connections.
type system struct {
	c    *Cluster
	clis []*clientv3.Client
}

func (s *system) close() {
	for _, cli := range s.clis {
		cli.Close()
	}
	s.c.Stop()
}

// Run starts both clusters, runs every workload against both, then the
// size section and the failover series, and stops the clusters whatever
// happens, including when ctx is cancelled by Ctrl-C.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	begin := time.Now()
	log := cfg.Log
	certs := filepath.Join(cfg.OutDir, "certs")
	if _, err := os.Stat(filepath.Join(certs, pki.CAKeyFile)); err != nil {
		out, err := exec.CommandContext(ctx, cfg.BargeBin, "certs", "init", "--dir", certs, "--hosts", "127.0.0.1").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("barge certs init: %w: %s", err, out)
		}
	}
	// Described before the clusters start, so that the fdatasync floor is
	// the disk's alone.
	rep := &Report{Command: cfg.Command, Started: begin, Warmup: cfg.Window.Warmup.String(), Duration: cfg.Window.Duration.String(),
		Machine: DescribeMachine(ctx, cfg.OutDir, cfg.EtcdBin, cfg.Etcd37Bin)}
	log.Info("machine", "fdatasyncP50Ms", rep.Machine.FdatasyncP50Ms, "fdatasyncP99Ms", rep.Machine.FdatasyncP99Ms)
	etcd, err := NewEtcdCluster(SystemEtcd, cfg.EtcdBin, cfg.OutDir, certs, log)
	if err != nil {
		return nil, err
	}
	barge, err := NewBargeCluster(cfg.BargeBin, cfg.OutDir, certs, cfg.BargeFlags, log)
	if err != nil {
		return nil, err
	}
	// The order rotates per row so that a drift of the machine during the
	// run favours no system.
	systems := []*system{{c: barge}, {c: etcd}}
	if cfg.Etcd37Bin != "" {
		etcd37, err := NewEtcdCluster(SystemEtcd37, cfg.Etcd37Bin, cfg.OutDir, certs, log)
		if err != nil {
			return nil, err
		}
		systems = append(systems, &system{c: etcd37})
	}
	for _, s := range systems {
		defer s.close()
		if err := s.c.Start(); err != nil {
			return nil, err
		}
		for range conns {
			cli, err := s.c.Client()
			if err != nil {
				return nil, err
			}
			s.clis = append(s.clis, cli)
		}
	}
	for _, s := range systems {
		if _, err := s.c.WaitHealthy(ctx, s.clis[0], 60*time.Second); err != nil {
			return nil, err
		}
		if err := Preload(ctx, s.clis); err != nil {
			return nil, fmt.Errorf("%s: %w", s.c.System, err)
		}
	}
	for i, w := range Workloads() {
		if cfg.Rows != nil && !cfg.Rows.MatchString(Row{Workload: w.Name, Clients: w.Clients}.label()) {
			continue
		}
		order := append(slices.Clone(systems[i%len(systems):]), systems[:i%len(systems)]...)
		row, err := runRow(ctx, w, order, cfg.Window, log)
		if err != nil {
			return nil, err
		}
		rep.Rows = append(rep.Rows, row)
	}
	var errs []error
	if cfg.SizeKeys > 0 {
		if rep.Size, err = runSize(ctx, systems, cfg.SizeKeys); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range systems {
		if cfg.Kills <= 0 {
			break
		}
		// The size section leaves gigabytes of dirty pages behind; flushed
		// now, their writeback does not slow the first kills' fsyncs, and
		// neither system pays for the other's.
		syscall.Sync()
		f, err := Failover(ctx, s.c, s.clis[0], cfg.Kills)
		rep.Failover = append(rep.Failover, f)
		if err != nil {
			// One system failing to recover is a finding, not a reason to
			// lose the other's figures; the error still fails the run.
			errs = append(errs, fmt.Errorf("%s failover: %w", s.c.System, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	rep.Elapsed = time.Since(begin).Round(time.Second).String()
	return rep, errors.Join(errs...)
}

// runRow runs workload w against each system in order and counts the
// elections each saw during it.
func runRow(ctx context.Context, w Workload, order []*system, win Window, log *slog.Logger) (Row, error) {
	row := Row{Workload: w.Name, Clients: w.Clients, Unit: w.Unit}
	for _, s := range order {
		before, err := s.c.term(ctx, s.clis[0])
		if err != nil {
			return row, fmt.Errorf("%s against %s: %w", row.label(), s.c.System, err)
		}
		cpu0, err := s.c.cpuTime()
		if err != nil {
			return row, err
		}
		m, err := w.Run(ctx, s.clis, win)
		if err != nil {
			return row, fmt.Errorf("%s against %s: %w", row.label(), s.c.System, err)
		}
		cpu1, err := s.c.cpuTime()
		if err != nil {
			return row, err
		}
		// The warm-up burns CPU too; at the window's rate it did
		// OpsPerSec × Warmup operations.
		if ops := m.OpsPerSec * (win.Warmup + win.Duration).Seconds(); ops > 0 {
			m.CPUPerOpUs = float64((cpu1 - cpu0).Microseconds()) / ops
		}
		after, err := s.c.term(ctx, s.clis[0])
		if err != nil {
			return row, fmt.Errorf("%s against %s: %w", row.label(), s.c.System, err)
		}
		m.Elections = after - before
		log.Info("workload", "row", row.label(), "system", s.c.System, "opsPerSec", int(m.OpsPerSec), "p50Ms", m.P50Ms, "p99Ms", m.P99Ms, "cpuPerOpUs", int(m.CPUPerOpUs), "errors", m.Errors, "elections", m.Elections)
		*row.measure(s.c.System) = m
	}
	row.Ratio = Ratio(row.Barge.OpsPerSec, row.Etcd.OpsPerSec)
	if row.Etcd37 != nil {
		row.Ratio37 = Ratio(row.Barge.OpsPerSec, row.Etcd37.OpsPerSec)
	}
	return row, nil
}

// runSize runs the size section against each system in turn. A system
// that fails it keeps the figures it reached and the error, and the other
// still runs: as with failover, one system's failure is a finding.
func runSize(ctx context.Context, systems []*system, keys int) (*SizeReport, error) {
	rep := &SizeReport{Keys: keys, ValueBytes: valueSize, PutsPerTxn: putsPerTxn}
	var errs []error
	for _, s := range systems {
		m, err := measureSize(ctx, s.c, s.clis, keys)
		if err != nil {
			m.Error = err.Error()
			errs = append(errs, fmt.Errorf("%s size: %w", s.c.System, err))
		}
		switch s.c.System {
		case SystemBarge:
			rep.Barge = m
		case SystemEtcd:
			rep.Etcd = m
		default:
			rep.Etcd37 = &m
		}
		if ctx.Err() != nil {
			break
		}
	}
	return rep, errors.Join(errs...)
}
