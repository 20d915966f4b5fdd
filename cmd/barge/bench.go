package main

import (
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
		Short: "Measure the store side by side with etcd",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newBenchStoreCmd(), newBenchReportCmd(), newBenchNetCmd())
	return cmd
}

func newBenchStoreCmd() *cobra.Command {
	var (
		jsonPath, outDir, bargeBin, etcdBin string
		bargeFlags                          []string
		quick                               bool
		duration                            time.Duration
		kills, sizeKeys                     int
		rows                                string
	)
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Run the same workloads against a 3-peer barge and a 3-member etcd cluster on loopback",
		Long: `Start a 3-member etcd cluster and a 3-peer barge cluster on 127.0.0.1, with
the same certificates, drive both with one etcd v3 client load generator
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
				BargeBin: bargeBin, BargeFlags: bargeFlags, EtcdBin: etcdBin, OutDir: outDir, Window: win, Kills: kills, SizeKeys: sizeKeys, Rows: rowsRE,
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
	f.StringArrayVar(&bargeFlags, "barge-flag", nil, "extra `FLAG` for every barge server, repeatable, e.g. --barge-flag=--log-store=wal")
	return cmd
}

func newBenchReportCmd() *cobra.Command {
	var jsonPath, mdPath string
	cmd := &cobra.Command{
		Use:     "report",
		Short:   "Render docs/benchmarks.md from a `barge bench store --json` report, keeping its hand-written analysis",
		Example: `  barge bench report --json docs/bench/store.json --markdown docs/benchmarks.md`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := bench.ReadReport(jsonPath)
			if err != nil {
				return err
			}
			if mdPath == "" {
				_, err := fmt.Fprint(cmd.OutOrStdout(), bench.Markdown(rep))
				return err
			}
			previous, err := os.ReadFile(mdPath)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("read the page to keep its hand-written part: %w", err)
			}
			page := bench.KeepHandWritten(bench.Markdown(rep), string(previous))
			if err := os.WriteFile(mdPath, []byte(page), 0o644); err != nil {
				return fmt.Errorf("write markdown: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&jsonPath, "json", "docs/bench/store.json", "report to read")
	cmd.Flags().StringVar(&mdPath, "markdown", "", "markdown file to write (default stdout)")
	return cmd
}
