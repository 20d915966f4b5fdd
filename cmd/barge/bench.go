package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/barge-dev/barge/chaos/bench"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/grpclog"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the store and the control plane side by side with etcd",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newBenchStoreCmd(), newBenchReportCmd(), newBenchTortureCmd(), newBenchStarveCmd(), newBenchHogCmd(), newBenchNetCmd(), newBenchNodefailCmd(), newBenchControlCmd())
	return cmd
}

func newBenchStoreCmd() *cobra.Command {
	var (
		jsonPath, outDir, bargeBin, etcdBin string
		etcd37Bin                           string
		bargeFlags                          []string
		quick                               bool
		duration                            time.Duration
		kills, sizeKeys                     int
		rows                                string
	)
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Run the same workloads against a 3-peer barge and 3-member etcd clusters on loopback",
		Long: `Start a 3-member etcd cluster (and, with --etcd37, an etcd 3.7 one) and a
3-peer barge cluster on 127.0.0.1, with the same certificates, drive both with one etcd v3 client load generator
(put, range, compare-and-swap, watch, lease), load --size-keys keys into
each to weigh memory, disk, snapshot and restart, and kill their leaders
to time failover. Prints a table; --json keeps everything, raw samples
included.
Both clusters are stopped at the end, on error and on Ctrl-C.`,
		Example: `  barge bench store --quick
  barge bench store --json docs/bench/store.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			win := bench.Window{Warmup: 2 * time.Second, Duration: duration}
			if quick {
				win = bench.Window{Warmup: 500 * time.Millisecond, Duration: 3 * time.Second}
				if !cmd.Flags().Changed("kills") {
					kills = 3
				}
				if !cmd.Flags().Changed("size-keys") {
					sizeKeys = 100_000
				}
			}
			if bargeBin == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find the barge binary: %w", err)
				}
				bargeBin = exe
			}
			if outDir == "" {
				dir, err := os.MkdirTemp("", "barge-bench")
				if err != nil {
					return fmt.Errorf("data dir: %w", err)
				}
				defer os.RemoveAll(dir)
				outDir = dir
			} else if err := os.MkdirAll(outDir, 0o755); err != nil {
				return fmt.Errorf("data dir: %w", err)
			}
			// Members from an earlier run would refuse a new cluster token
			// or replay old data; a run starts from empty data dirs.
			if entries, _ := filepath.Glob(filepath.Join(outDir, "*[0-9]")); len(entries) > 0 {
				return fmt.Errorf("--out-dir %s holds data dirs of an earlier run (%s); give an empty directory", outDir, strings.Join(entries, ", "))
			}
			// Every leader kill makes gRPC log each refused reconnection to
			// stderr; the run reports what matters through slog.
			grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var rowsRE *regexp.Regexp
			if rows != "" {
				re, err := regexp.Compile(rows)
				if err != nil {
					return fmt.Errorf("--rows %q: %w", rows, err)
				}
				rowsRE = re
			}
			rep, err := bench.Run(ctx, bench.Config{
				BargeBin: bargeBin, BargeFlags: bargeFlags, EtcdBin: etcdBin, Etcd37Bin: etcd37Bin, OutDir: outDir, Window: win, Kills: kills, SizeKeys: sizeKeys, Rows: rowsRE,
				Command: "barge bench " + strings.Join(os.Args[2:], " "),
				Log:     slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)),
			})
			if rep == nil {
				return err
			}
			if werr := bench.WriteTable(cmd.OutOrStdout(), rep); werr != nil {
				err = errors.Join(err, werr)
			}
			if jsonPath != "" {
				if jerr := os.MkdirAll(filepath.Dir(jsonPath), 0o755); jerr != nil {
					return errors.Join(err, fmt.Errorf("json: %w", jerr))
				}
				err = errors.Join(err, bench.WriteJSON(jsonPath, rep))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&jsonPath, "json", "", "write the full report, raw failover samples included, to `FILE`")
	f.BoolVar(&quick, "quick", false, "3 s rows after 0.5 s warm-up, 100,000 keys in the size section and 3 leader kills: a smoke run in under 3 minutes")
	f.DurationVar(&duration, "duration", 10*time.Second, "measured duration of each row (after a 2 s warm-up)")
	f.IntVar(&kills, "kills", 20, "leader kills per system (0 skips failover)")
	f.StringVar(&rows, "rows", "", "run only the rows whose label matches `REGEXP`, e.g. 'put|cas' (default all)")
	f.IntVar(&sizeKeys, "size-keys", 1_000_000, "keys loaded into each system to weigh memory, disk, snapshot and restart (0 skips)")
	f.StringVar(&outDir, "out-dir", "", "`DIR` for certificates, data dirs and member logs (default a temporary dir, removed at the end)")
	f.StringVar(&bargeBin, "barge", "", "barge binary to run as the store (default this binary)")
	f.StringVar(&etcdBin, "etcd", "etcd", "etcd binary (3.4 flags)")
	f.StringVar(&etcd37Bin, "etcd37", "", "etcd 3.7 binary to run as a third system (make bench builds chaos/bench/etcd37 into bin/etcd37); none when empty")
	f.StringArrayVar(&bargeFlags, "barge-flag", nil, "extra `FLAG` for every barge server, repeatable, e.g. --barge-flag=--log-store=bolt")
	return cmd
}

func newBenchReportCmd() *cobra.Command {
	var jsonPath, controlPath, mdPath string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Render docs/benchmarks.md from `barge bench store --json` and `barge bench control --json` reports, keeping its hand-written analysis",
		Long: `Render the store section of the page from --json (unless --json is
empty) and its "Control plane" section from --control (when given). Each
replaces only its own part: the store section is everything above the
hand-written marker, the control plane section lies between its own
markers in the hand-written part, and the rest of the page is kept.`,
		Example: `  barge bench report --json docs/bench/store.json --markdown docs/benchmarks.md
  barge bench report --json= --control docs/bench/control.json --markdown docs/benchmarks.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var page string
			if mdPath != "" {
				previous, err := os.ReadFile(mdPath)
				if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("read the page to keep its hand-written part: %w", err)
				}
				page = string(previous)
			}
			if jsonPath == "" && controlPath == "" {
				return errors.New("nothing to render: give --json or --control")
			}
			if jsonPath != "" {
				rep, err := bench.ReadReport(jsonPath)
				if err != nil {
					return err
				}
				page = bench.KeepHandWritten(bench.Markdown(rep), page)
			}
			if controlPath != "" {
				rep, err := bench.ReadControlReport(controlPath)
				if err != nil {
					return err
				}
				page = bench.WithControlSection(page, bench.ControlMarkdown(rep))
			}
			if mdPath == "" {
				_, err := fmt.Fprint(cmd.OutOrStdout(), page)
				return err
			}
			if err := os.WriteFile(mdPath, []byte(page), 0o644); err != nil {
				return fmt.Errorf("write markdown: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&jsonPath, "json", "docs/bench/store.json", "store report to read (empty: leave the store section as it is)")
	cmd.Flags().StringVar(&controlPath, "control", "", "control plane report to read (`barge bench control --json`)")
	cmd.Flags().StringVar(&mdPath, "markdown", "", "markdown file to write (default stdout)")
	return cmd
}

func newBenchTortureCmd() *cobra.Command {
	var (
		kills, writers int
		seed           uint64
		outDir         string
		jsonPath       string
	)
	cmd := &cobra.Command{
		Use:   "torture",
		Short: "Kill -9 members of a 3-peer barge cluster under write load, then check every acknowledged write",
		Long: `Start a 3-peer barge cluster on 127.0.0.1 whose Raft logs (etcd's WAL)
cut a segment every few dozen writes and snapshot and compact every few
hundred, write to it from --writers clients, and SIGKILL one member --kills
times: at random instants and as a segment is cut, a snapshot written or
a log compacted. Each killed member restarts at once. At the end every
acknowledged write is read back and every member's HashKV compared.
Exits non-zero on any loss or disagreement.`,
		Example: `  barge bench torture --kills 300`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the barge binary: %w", err)
			}
			if outDir == "" {
				dir, err := os.MkdirTemp("", "barge-torture")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				outDir = dir
			}
			if !cmd.Flags().Changed("seed") {
				seed = uint64(time.Now().UnixNano())
			}
			grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			log.Info("torture", "kills", kills, "seed", seed, "dir", outDir)
			rep, err := bench.Torture(ctx, bench.TortureConfig{BargeBin: exe, Dir: outDir, Kills: kills, Seed: seed, Writers: writers, Log: log})
			if rep != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "kills %d %v (targeted kills whose moment did not come: %d)\nacknowledged writes %d, all read back: %v; failed or timed-out writes %d\nHashKV agreed: %08x at revision %d %s\ntorn tails repaired %d; %s\n",
					rep.Kills, rep.ByMoment, rep.Missed, rep.Acked, len(rep.Lost) == 0, rep.Unknown, rep.Hash, rep.Revision, rep.HashError, rep.Repaired, rep.Elapsed)
				if jsonPath != "" {
					b, jerr := json.MarshalIndent(rep, "", "  ")
					if jerr == nil {
						jerr = os.WriteFile(jsonPath, append(b, '\n'), 0o644)
					}
					err = errors.Join(err, jerr)
				}
				if rep.HashError != "" {
					err = errors.Join(err, errors.New(rep.HashError))
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&kills, "kills", 300, "SIGKILLs to deliver")
	f.IntVar(&writers, "writers", 8, "concurrent writers")
	f.Uint64Var(&seed, "seed", 0, "random seed (default: the time)")
	f.StringVar(&outDir, "out-dir", "", "`DIR` for certificates, data dirs and member logs (default a temporary dir, removed at the end)")
	f.StringVar(&jsonPath, "json", "", "write the report to `FILE`")
	return cmd
}

func newBenchStarveCmd() *cobra.Command {
	var (
		cfg      bench.StarveConfig
		jsonPath string
	)
	cmd := &cobra.Command{
		Use:   "starve",
		Short: "Count the elections a CPU hog provokes in a 3-peer barge cluster under write load, then time leader kills under it",
		Long: `Start a 3-peer barge cluster on 127.0.0.1 and a separate process of --hog
busy-looping goroutines (niced by --hog-nice), put from --clients writers
for --duration while counting Raft elections (term rises), then kill the
leader --kills times under the same hog and time each recovery to the
first acknowledged write.`,
		Example: `  barge bench starve --hog 4 --duration 60s --kills 20
  barge bench starve --hog 4 --barge-flag=--heartbeat-timeout=300ms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the barge binary: %w", err)
			}
			cfg.BargeBin = exe
			if cfg.Dir == "" {
				dir, err := os.MkdirTemp("", "barge-starve")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				cfg.Dir = dir
			}
			grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			rep, err := bench.Starve(ctx, cfg)
			if rep != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "hog %d goroutines (nice %d, %.1f CPU-s), %s of puts from %d clients: %d puts, %d errors %v, %d elections, p99 %.1f ms, max %.1f ms\nleader kills: %d, p50 %.0f ms, max %.0f ms, no ack %d; samples %v\n",
					rep.Hog, rep.HogNice, rep.HogCPUSecs, rep.Duration, cfg.Clients, rep.Puts, rep.PutErrors, rep.ErrorKinds, rep.Elections, rep.P99Ms, rep.MaxMs,
					rep.Failover.Kills, rep.Failover.P50Ms, rep.Failover.MaxMs, rep.Failover.Failed, rep.Failover.SamplesMs)
				if jsonPath != "" {
					b, jerr := json.MarshalIndent(rep, "", "  ")
					if jerr == nil {
						jerr = os.WriteFile(jsonPath, append(b, '\n'), 0o644)
					}
					err = errors.Join(err, jerr)
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Hog, "hog", 4, "busy-looping goroutines in the hog process (0: none)")
	f.IntVar(&cfg.HogNice, "hog-nice", 0, "nice value of the hog process")
	f.DurationVar(&cfg.Duration, "duration", 60*time.Second, "how long to write under the hog")
	f.IntVar(&cfg.Clients, "clients", 16, "concurrent writers")
	f.IntVar(&cfg.Kills, "kills", 20, "leader kills under the hog after the load (0: none)")
	f.StringArrayVar(&cfg.BargeFlags, "barge-flag", nil, "extra `FLAG` for every barge server, repeatable")
	f.StringVar(&jsonPath, "json", "", "write the report to `FILE`")
	f.StringVar(&cfg.Dir, "out-dir", "", "`DIR` for certificates, data dirs and member logs, kept (default a temporary dir, removed)")
	return cmd
}

func newBenchHogCmd() *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use:    "cpu-hog",
		Short:  "Busy-loop on N goroutines until killed (the hog of barge bench starve)",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			bench.Hog(ctx, n)
			return nil
		},
	}
	cmd.Flags().IntVar(&n, "goroutines", 4, "busy-looping goroutines")
	return cmd
}
