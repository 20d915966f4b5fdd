package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/barge-dev/barge/raftstore/pki"
)

// RunControl starts both setups, runs every row against both (the order
// rotating per row, so that a drift of the machine favours neither), then
// weighs the servers and runs the kill series, and stops everything
// whatever happens, Ctrl-C included. A row that fails for one setup is
// recorded and the run goes on: one setup's failure is a finding.
func RunControl(ctx context.Context, cfg ControlConfig) (*ControlReport, error) {
	begin := time.Now()
	log := cfg.Log
	certs := filepath.Join(cfg.OutDir, "certs")
	if _, err := os.Stat(filepath.Join(certs, pki.CAKeyFile)); err != nil {
		out, err := exec.CommandContext(ctx, cfg.BargeBin, "certs", "init", "--dir", certs, "--hosts", "127.0.0.1").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("barge certs init: %w: %s", err, out)
		}
	}
	rep := &ControlReport{Command: cfg.Command, Started: begin, EtcdSystem: cfg.EtcdSystem,
		Nodes: cfg.Nodes, MaxPods: cfg.MaxPods, Pods: cfg.Pods, Replicas: cfg.Replicas, MutateRate: cfg.MutateRate,
		MutateSeconds: cfg.MutateFor.Seconds(), Kills: cfg.Kills,
		Machine: DescribeMachine(ctx, cfg.OutDir, cfg.EtcdBin, ""),
		Barge:   ControlResult{Setup: SetupBarge}, Etcd: ControlResult{Setup: SetupEtcd}}
	b, e, err := newControlSetups(cfg, certs)
	if err != nil {
		return nil, err
	}
	setups := []*setup{b, e}
	result := func(s *setup) *ControlResult {
		if s == b {
			return &rep.Barge
		}
		return &rep.Etcd
	}
	for _, s := range setups {
		defer s.stop()
		t0 := time.Now()
		log.Info("starting setup", "setup", s.name, "nodes", cfg.Nodes)
		if err := s.start(ctx, cfg.Nodes); err != nil {
			return nil, fmt.Errorf("start %s: %w", s.name, err)
		}
		result(s).StartMs = ms(time.Since(t0))
		log.Info("setup ready", "setup", s.name, "in", time.Since(t0).Round(time.Millisecond))
	}
	var errs []error
	fail := func(s *setup, row string, err error) {
		err = fmt.Errorf("%s %s: %w", s.name, row, err)
		log.Error("row failed", "setup", s.name, "row", row, "err", err)
		result(s).Errors = append(result(s).Errors, err.Error())
		errs = append(errs, err)
	}
	rows := []struct {
		name string
		run  func(*setup) error
	}{
		{"pods", func(s *setup) error {
			r, err := s.runPods(ctx, cfg.Pods)
			if err == nil {
				result(s).Pods = &r
			}
			return err
		}},
		{"deployment", func(s *setup) error {
			r, err := s.runDeployment(ctx, cfg.Replicas)
			if err == nil {
				result(s).Deploy = &r
			}
			return err
		}},
		{"mutating calls", func(s *setup) error {
			r, err := s.runMutate(ctx, cfg.MutateRate, cfg.MutateFor)
			if err == nil {
				result(s).Mutate = &r
			}
			return err
		}},
	}
	for i, row := range rows {
		order := setups
		if i%2 == 1 {
			order = []*setup{e, b}
		}
		for _, s := range order {
			log.Info("row", "row", row.name, "setup", s.name)
			if err := row.run(s); err != nil {
				fail(s, row.name, err)
			}
			if ctx.Err() != nil {
				return rep, errors.Join(append(errs, ctx.Err())...)
			}
		}
	}
	// Weighed after the rows, with their pods, Deployment and ConfigMaps
	// in the stores, and before the kills restart any server.
	for _, s := range setups {
		r := result(s)
		var err error
		if r.RSS, err = rss(s.servers); err != nil {
			fail(s, "rss", err)
		}
		if s.etcd != nil {
			if r.StoreRSS, err = rss(s.etcd); err != nil {
				fail(s, "rss", err)
			}
		}
	}
	if cfg.Kills > 0 {
		for _, s := range setups {
			log.Info("row", "row", "failover", "setup", s.name, "kills", cfg.Kills)
			f, err := s.failover(ctx, cfg.Kills)
			result(s).Failover = &f
			if err != nil {
				fail(s, "failover", err)
			}
			if ctx.Err() != nil {
				break
			}
		}
	}
	rep.Elapsed = time.Since(begin).Round(time.Second).String()
	return rep, errors.Join(errs...)
}
