package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/grpclog"

	"github.com/barge-dev/barge/chaos/bench"
)

func newBenchControlCmd() *cobra.Command {
	var (
		cfg              bench.ControlConfig
		jsonPath, outDir string
		etcdBin, note    string
		quick            bool
	)
	cmd := &cobra.Command{
		Use:   "control",
		Short: "Run the upstream control plane on barge's Raft store and on etcd side by side, with hollow nodes",
		Long: `Start two setups on 127.0.0.1, each three servers as real processes with
hollow nodes: three barge servers (Raft store, scheduler and controllers
on the Raft leader), and three etcd members with three
barge server --etcd-servers processes (controllers under Kubernetes'
Lease election). Then, against each: create --pods pods and time them to
bound; a --replicas Deployment to Ready and a rolling update to done;
--mutate-rate mutating calls a second; --kills SIGKILLs of the server
whose controllers are active, each timed to the first pod the new leader
binds; and the servers' resident memory. Prints a table with barge/etcd
ratios; --json keeps every figure. Everything stops at the end, on error
and on Ctrl-C.`,
		Example: `  barge bench control --quick
  barge bench control --json docs/bench/control.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if quick {
				set := func(name string, apply func()) {
					if !cmd.Flags().Changed(name) {
						apply()
					}
				}
				set("pods", func() { cfg.Pods = 1000 })
				set("replicas", func() { cfg.Replicas = 300 })
				set("mutate-for", func() { cfg.MutateFor = 10 * time.Second })
				set("kills", func() { cfg.Kills = 5 })
			}
			if cfg.Nodes <= 0 || cfg.MaxPods <= 0 || cfg.Pods <= 0 || cfg.Replicas <= 0 || cfg.MutateRate <= 0 || cfg.MutateFor <= 0 || cfg.Kills < 0 {
				return errors.New("--nodes, --max-pods, --pods, --replicas, --mutate-rate and --mutate-for must be positive, --kills at least 0")
			}
			if need := cfg.Pods + cfg.Replicas*5/4 + 2*cfg.Kills + 10; cfg.Nodes*cfg.MaxPods < need {
				return fmt.Errorf("%d nodes × %d pods hold fewer than the %d pods the run places; raise --nodes or --max-pods", cfg.Nodes, cfg.MaxPods, need)
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the barge binary: %w", err)
			}
			cfg.BargeBin = exe
			if cfg.EtcdBin, cfg.EtcdSystem, err = pickEtcd(exe, etcdBin); err != nil {
				return err
			}
			if outDir == "" {
				dir, err := os.MkdirTemp("", "barge-bench-control")
				if err != nil {
					return fmt.Errorf("data dir: %w", err)
				}
				defer os.RemoveAll(dir)
				outDir = dir
			} else if err := os.MkdirAll(outDir, 0o755); err != nil {
				return fmt.Errorf("data dir: %w", err)
			}
			if entries, _ := filepath.Glob(filepath.Join(outDir, "*[0-9]")); len(entries) > 0 {
				return fmt.Errorf("--out-dir %s holds data dirs of an earlier run (%s); give an empty directory", outDir, strings.Join(entries, ", "))
			}
			cfg.OutDir = outDir
			cfg.Command = "barge bench " + strings.Join(os.Args[2:], " ")
			grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			cfg.Log.Info("bench control", "etcd", cfg.EtcdBin, "nodes", cfg.Nodes, "pods", cfg.Pods, "replicas", cfg.Replicas, "kills", cfg.Kills, "dir", outDir)
			rep, err := bench.RunControl(ctx, cfg)
			if rep == nil {
				return err
			}
			rep.Note = note
			if werr := bench.WriteControlTable(cmd.OutOrStdout(), rep); werr != nil {
				err = errors.Join(err, werr)
			}
			if jsonPath != "" {
				if jerr := os.MkdirAll(filepath.Dir(jsonPath), 0o755); jerr != nil {
					return errors.Join(err, fmt.Errorf("json: %w", jerr))
				}
				err = errors.Join(err, bench.WriteControlJSON(jsonPath, rep))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&jsonPath, "json", "", "write the full report, every failover sample and phase included, to `FILE`")
	f.BoolVar(&quick, "quick", false, "1,000 pods, a 300-replica Deployment, 10 s of mutating calls and 5 kills: a smoke run")
	f.IntVar(&cfg.Nodes, "nodes", 50, "hollow nodes per setup")
	f.IntVar(&cfg.MaxPods, "max-pods", 300, "pods each hollow node takes")
	f.IntVar(&cfg.Pods, "pods", 10_000, "pods of the pods row")
	f.IntVar(&cfg.Replicas, "replicas", 1000, "replicas of the Deployment rows")
	f.IntVar(&cfg.MutateRate, "mutate-rate", 100, "mutating calls per second")
	f.DurationVar(&cfg.MutateFor, "mutate-for", 30*time.Second, "how long the mutating calls go on")
	f.IntVar(&cfg.Kills, "kills", 20, "SIGKILLs of the active server per setup (0 skips failover)")
	f.StringVar(&etcdBin, "etcd", "", "etcd binary of the etcd-mode setup (default: etcd37 beside this binary, as make bench builds it, else etcd on PATH)")
	f.StringVar(&note, "note", "", "free text recorded in the report and rendered under the table, e.g. other load on the machine")
	f.StringVar(&outDir, "out-dir", "", "`DIR` for certificates, data dirs and logs (default a temporary dir, removed at the end)")
	return cmd
}

// pickEtcd chooses the etcd of the etcd-mode setup: the one given, else
// etcd 3.7 built beside barge (the newer, and faster on reads in
// `barge bench store`), else Debian's etcd on PATH.
func pickEtcd(exe, given string) (bin, system string, err error) {
	name := func(bin string) string {
		out, err := exec.Command(bin, "--version").Output()
		if err == nil && strings.Contains(string(out), "etcd Version: 3.4") {
			return bench.SystemEtcd
		}
		return bench.SystemEtcd37
	}
	if given != "" {
		return given, name(given), nil
	}
	if p := filepath.Join(filepath.Dir(exe), "etcd37"); fileExists(p) {
		return p, bench.SystemEtcd37, nil
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, name(p), nil
	}
	return "", "", errors.New("no etcd: build bin/etcd37 (go build -o bin/etcd37 ./chaos/bench/etcd37) or install etcd-server, or give --etcd")
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
