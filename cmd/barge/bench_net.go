package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/barge-dev/barge/chaos/bench"
	"github.com/spf13/cobra"
)

func newBenchNetCmd() *cobra.Command {
	var (
		jsonPath, mdPath string
		modes            []string
		duration, rrDur  time.Duration
		rrSize           int
		quick            bool
		profileDir       string
		perPacket        bool
		rounds           int
	)
	cmd := &cobra.Command{
		Use:   "net",
		Short: "Measure pod-to-pod throughput and latency over VXLAN and IPIP beside host-to-host",
		Long: `Build two hosts out of network namespaces on one bridge (root needed), run an
agent in each with one pod, and measure with iperf3 (TCP throughput) and a
request/response test (one connection, back-to-back round trips) host to
host over the underlay and pod to pod over each overlay, in one run, host
and pod runs taking turns for --rounds rounds. CPU is what iperf3 and the
agents used, per Gbit/s moved.
Prints a markdown table; --json keeps every figure. Everything the run makes
is removed at the end, on error and on Ctrl-C.`,
		Example: `  barge bench net --quick
  barge bench net --json docs/bench/net.json --markdown docs/bench/net.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if quick {
				if !cmd.Flags().Changed("duration") {
					duration = 3 * time.Second
				}
				if !cmd.Flags().Changed("rr-duration") {
					rrDur = 2 * time.Second
				}
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the barge binary: %w", err)
			}
			dir, err := os.MkdirTemp("", "barge-bench-net")
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			rep, err := bench.RunNet(ctx, bench.NetConfig{
				Barge: exe, Modes: modes, Duration: duration, RRDuration: rrDur, RRSize: rrSize, Dir: dir, ProfileDir: profileDir, PerPacketRow: perPacket, Rounds: rounds, Logger: log,
			})
			if err != nil {
				return fmt.Errorf("%w (agent logs in %s)", err, dir)
			}
			os.RemoveAll(dir)
			md := rep.Markdown()
			fmt.Fprint(cmd.OutOrStdout(), md)
			if mdPath != "" {
				if err := os.WriteFile(mdPath, []byte(md), 0o644); err != nil {
					return err
				}
			}
			if jsonPath != "" {
				b, err := json.MarshalIndent(rep, "", "  ")
				if err != nil {
					return err
				}
				if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&jsonPath, "json", "", "write the full report as JSON to this file")
	cmd.Flags().StringVar(&mdPath, "markdown", "", "write the table to this file too")
	cmd.Flags().StringSliceVar(&modes, "modes", bench.NetModes, "overlays to measure (vxlan, vxlan-txcsum-off, ipip-userspace, ipip)")
	cmd.Flags().DurationVar(&duration, "duration", 10*time.Second, "length of each iperf3 run")
	cmd.Flags().DurationVar(&rrDur, "rr-duration", 5*time.Second, "length of each request/response run")
	cmd.Flags().IntVar(&rrSize, "rr-size", 64, "request and response size in bytes")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "times each path is measured, host and pod runs taking turns (rows are medians)")
	cmd.Flags().StringVar(&profileDir, "cpuprofile-dir", "", "write a Go CPU profile of each host's agent into this directory")
	cmd.Flags().BoolVar(&perPacket, "no-offload-row", true, "also measure host to host with the underlay's offloads off (needs ethtool): the ceiling of the userspace IPIP tunnel")
	cmd.Flags().BoolVar(&quick, "quick", false, "3 s iperf3 and 2 s request/response runs")
	cmd.AddCommand(newBenchNetAgentCmd())
	return cmd
}

// newBenchNetAgentCmd is the agent `bench net` starts inside each host's
// namespace; it is not for people.
func newBenchNetAgentCmd() *cobra.Command {
	var spec string
	cmd := &cobra.Command{
		Use:    "agent",
		Short:  "One host of `barge bench net` (started by it)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if spec == "" {
				return errors.New("--spec is required")
			}
			var s bench.NetAgentSpec
			if err := json.Unmarshal([]byte(spec), &s); err != nil {
				return fmt.Errorf("--spec: %w", err)
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			return bench.RunNetAgent(cmd.Context(), s, cmd.InOrStdin(), cmd.OutOrStdout(), log)
		},
	}
	cmd.Flags().StringVar(&spec, "spec", "", "the host's NetAgentSpec as JSON")
	return cmd
}
