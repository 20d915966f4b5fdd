package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/barge-dev/barge/chaos/lab"
	"github.com/barge-dev/barge/chaos/run"
	"github.com/spf13/cobra"
)

func newChaosCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Fault-injection runs against a store cluster in a lab, judged by a linearizability checker",
	}
	cmd.AddCommand(newChaosRunCmd())
	return cmd
}

func newChaosRunCmd() *cobra.Command {
	var (
		cfg     run.Config
		servers int
		faults  string
		dir     string
		report  string
		keep    bool
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run clients against a lab cluster while injecting faults, then check what they saw",
		Long: `Bring up a lab (or use --dir), run concurrent clients (put, linearizable
get, compare-and-swap, lease-attached puts, watches), inject faults on a
schedule derived from --seed (the same seed gives the same schedule), heal,
wait for convergence, and check:

  - the recorded history is linearizable (porcupine; an HTML visualisation
    is written next to the report when it is not);
  - every watcher saw every committed event of its range exactly once, in
    revision order, across its own reconnects;
  - no acknowledged write is missing, and all peers report the same HashKV;
  - failover: for each fault that removed the leader, the time to the first
    successful write, and the longest window without one.

Faults: kill, restart, pause, partition, leader-partition, one-way.
Exit status is non-zero on any violation. Needs root (network namespaces).`,
		Example: `  barge chaos run --servers 3 --duration 60s --faults kill,partition --seed 1 --report chaos.json
  barge chaos run --servers 5 --duration 5m --faults kill,pause,partition,leader-partition,one-way,restart --report chaos.json
  barge chaos run --read-consistency serializable --faults partition --report stale.json   # the checker must object`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			for _, f := range strings.Split(faults, ",") {
				if f = strings.TrimSpace(f); f != "" {
					cfg.Faults = append(cfg.Faults, f)
				}
			}
			if _, err := run.Schedule(cfg.Seed, cfg.Faults, max(servers, 1), cfg.Duration); err != nil {
				return err
			}
			logger, err := newLogger("info", "text")
			if err != nil {
				return err
			}
			cfg.Logger = logger
			var l *lab.Lab
			if dir != "" {
				if l, err = lab.Load(dir); err != nil {
					return err
				}
			} else {
				tmp, err := os.MkdirTemp("", "barge-chaos-")
				if err != nil {
					return err
				}
				self, err := os.Executable()
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "bringing up a %d-server lab in %s\n", servers, tmp)
				l, err = lab.Up(ctx, lab.Config{Dir: tmp, Servers: servers, Barge: self, Logger: logger, ServerArgs: []string{"--auto-compaction-mode", "off"}})
				if err != nil {
					_ = lab.Down(tmp)
					return err
				}
				if !keep {
					defer lab.Down(tmp)
				}
			}
			cfg.Lab = l
			if report != "" {
				cfg.ReportDir = filepath.Dir(report)
			}
			rep, err := run.Run(ctx, cfg)
			if err != nil {
				return err
			}
			if report != "" {
				if err := rep.WriteJSON(report); err != nil {
					return err
				}
			}
			rep.Summary(cmd.OutOrStdout())
			if !rep.OK() {
				return fmt.Errorf("%d violations", len(rep.Violations))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&servers, "servers", 3, "servers in the lab (3 or 5)")
	f.DurationVar(&cfg.Duration, "duration", 60*time.Second, "how long to run the workload and faults")
	f.StringVar(&faults, "faults", "kill,partition", "comma-separated faults: "+strings.Join(run.AllFaults(), ","))
	f.Int64Var(&cfg.Seed, "seed", 1, "seed of the fault schedule and the workload")
	f.StringVar(&report, "report", "", "write the JSON report here (the visualisation goes beside it)")
	f.StringVar(&dir, "dir", "", "use the running lab in this directory instead of bringing one up")
	f.BoolVar(&keep, "keep", false, "leave the lab running after the run")
	f.IntVar(&cfg.Clients, "clients", 8, "concurrent workload clients")
	f.IntVar(&cfg.Keys, "keys", 10, "keys under test")
	f.StringVar(&cfg.ReadConsistency, "read-consistency", "linearizable", "linearizable, or serializable (reads go to any peer, stale ones included)")
	return cmd
}
