package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/barge-dev/barge/chaos/conformance"
)

func newConformanceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "conformance",
		Short: "Run Kubernetes' conformance suite against a cluster and count the outcomes",
	}
	cmd.AddCommand(newConformanceRunCmd(), newConformanceReportCmd())
	return cmd
}

func newConformanceRunCmd() *cobra.Command {
	var (
		cfg             conformance.Config
		markdown, setup string
		jsonOut         bool
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the [Conformance] specs of a built e2e.test with ginkgo",
		Long: `Run the conformance specs of the Kubernetes e2e suite (built from the
pinned k8s.io/kubernetes with go test -c) through the ginkgo CLI, in
parallel, against --kubeconfig. Failing specs do not fail the command: the
counts, per SIG, and every failure's first line go to stdout and, with
--markdown, into the results section of that file.`,
		Example: `  barge conformance run --ginkgo bin/ginkgo --e2e bin/e2e.test \
    --kubeconfig lab/admin.kubeconfig --procs 4 --markdown docs/conformance.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			cfg.Output = cmd.ErrOrStderr()
			start := time.Now()
			rep, err := conformance.Run(ctx, cfg)
			if err != nil {
				return err
			}
			if setup == "" {
				setup = "a barge cluster"
			}
			setup = fmt.Sprintf("%s; focus %q; %d ginkgo processes; %s", setup, focusOf(cfg), max(cfg.Procs, 1), time.Since(start).Round(time.Second))
			return emitConformance(cmd, rep, markdown, setup, jsonOut)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Ginkgo, "ginkgo", "bin/ginkgo", "the ginkgo CLI")
	f.StringVar(&cfg.E2E, "e2e", "bin/e2e.test", "the e2e.test binary")
	f.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "admin kubeconfig of the cluster under test")
	f.StringVar(&cfg.Focus, "focus", conformance.DefaultFocus, "regexp of spec names to run")
	f.StringVar(&cfg.Skip, "skip", "", "regexp of spec names to leave out")
	f.IntVar(&cfg.Procs, "procs", 4, "parallel ginkgo processes ([Serial] specs run last, alone)")
	f.StringVar(&cfg.ReportDir, "report-dir", "conformance-report", "where ginkgo's JUnit report and the suite's reports go")
	f.DurationVar(&cfg.Timeout, "timeout", 3*time.Hour, "bound on the whole suite")
	f.BoolVar(&cfg.DryRun, "dry-run", false, "list the selected specs without running them")
	f.StringVar(&markdown, "markdown", "", "file whose results section receives the counts (docs/conformance.md)")
	f.StringVar(&setup, "setup", "", "what the suite ran against, for the report")
	f.BoolVar(&jsonOut, "json", false, "print the report as JSON instead of a table")
	_ = cmd.MarkFlagRequired("kubeconfig")
	return cmd
}

func newConformanceReportCmd() *cobra.Command {
	var (
		markdown, setup string
		jsonOut         bool
	)
	cmd := &cobra.Command{
		Use:   "report JUNIT.xml",
		Short: "Count the outcomes of a ginkgo JUnit report",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			rep, err := conformance.ParseJUnit(f)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if setup == "" {
				setup = filepath.Base(args[0])
			}
			return emitConformance(cmd, rep, markdown, setup, jsonOut)
		},
	}
	cmd.Flags().StringVar(&markdown, "markdown", "", "file whose results section receives the counts")
	cmd.Flags().StringVar(&setup, "setup", "", "what the suite ran against, for the report")
	cmd.Flags().BoolVarP(&jsonOut, "json", "", false, "print the report as JSON")
	return cmd
}

func focusOf(cfg conformance.Config) string {
	if cfg.Focus == "" {
		return conformance.DefaultFocus
	}
	return cfg.Focus
}

func emitConformance(cmd *cobra.Command, rep *conformance.Report, markdown, setup string, jsonOut bool) error {
	out := cmd.OutOrStdout()
	if jsonOut {
		total, bySIG := rep.Counts()
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"setup": setup, "total": total, "bySIG": bySIG, "specs": rep.Specs}); err != nil {
			return err
		}
	} else {
		fmt.Fprint(out, rep.Markdown(setup))
	}
	if markdown == "" {
		return nil
	}
	return replaceSection(markdown, rep.Markdown(setup))
}

// The generated part of docs/conformance.md sits between these markers;
// the rest of the file (why each failure fails) is written by hand.
const (
	resultsBegin = "<!-- results: written by barge conformance; edit outside -->"
	resultsEnd   = "<!-- /results -->"
)

func replaceSection(path, body string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	section := resultsBegin + "\n" + body + resultsEnd
	text := string(old)
	i, j := strings.Index(text, resultsBegin), strings.Index(text, resultsEnd)
	switch {
	case i >= 0 && j > i:
		text = text[:i] + section + text[j+len(resultsEnd):]
	case len(text) == 0:
		text = "# Conformance\n\n" + section + "\n"
	default:
		text = strings.TrimRight(text, "\n") + "\n\n" + section + "\n"
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
