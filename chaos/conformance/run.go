package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// DefaultFocus selects the conformance specs, as sonobuoy's certified-
// conformance mode does.
const DefaultFocus = `\[Conformance\]`

// Config is one run of the suite.
type Config struct {
	Ginkgo     string // the ginkgo CLI
	E2E        string // the e2e.test binary
	Kubeconfig string
	Focus      string // regexp over spec names; DefaultFocus when empty
	Skip       string // regexp over spec names
	Procs      int    // parallel ginkgo processes; 1 runs serially
	// ReportDir receives junit.xml and the suite's own reports.
	ReportDir string
	// Timeout bounds the whole suite (ginkgo's --timeout).
	Timeout time.Duration
	// DryRun lists the selected specs without running them.
	DryRun bool
	// Output receives ginkgo's progress output.
	Output io.Writer
}

// JUnitFile is the report Run leaves in ReportDir.
const JUnitFile = "junit.xml"

// Run runs the suite and returns the parsed JUnit report. A failing spec
// is not an error: the report says which failed. An error means the suite
// could not run or its report could not be read.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Ginkgo == "" || cfg.E2E == "" || cfg.Kubeconfig == "" || cfg.ReportDir == "" {
		return nil, errors.New("conformance: ginkgo, e2e binary, kubeconfig and report dir are required")
	}
	for _, f := range []string{cfg.Ginkgo, cfg.E2E, cfg.Kubeconfig} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("conformance: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.ReportDir, 0o755); err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	reportDir, err := filepath.Abs(cfg.ReportDir)
	if err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	cmd := exec.CommandContext(ctx, cfg.Ginkgo, ginkgoArgs(cfg, reportDir)...)
	out := cfg.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	runErr := cmd.Run()
	var exitErr *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exitErr) {
		return nil, fmt.Errorf("conformance: ginkgo: %w", runErr)
	}
	f, err := os.Open(filepath.Join(reportDir, JUnitFile))
	if err != nil {
		// ginkgo exits non-zero on failed specs and still writes the
		// report; no report means the suite itself did not run.
		return nil, fmt.Errorf("conformance: no report after ginkgo (%v): %w", runErr, err)
	}
	defer f.Close()
	return ParseJUnit(f)
}

// ginkgoArgs is the ginkgo command line: ginkgo's own flags, the binary,
// then the e2e framework's flags after "--".
func ginkgoArgs(cfg Config, reportDir string) []string {
	focus := cfg.Focus
	if focus == "" {
		focus = DefaultFocus
	}
	procs := max(cfg.Procs, 1)
	args := []string{
		"--focus=" + focus,
		"--procs=" + strconv.Itoa(procs),
		"--output-dir=" + reportDir,
		"--junit-report=" + JUnitFile,
		"--no-color",
		"--poll-progress-after=5m", // a stuck spec says where it hangs
		"--silence-skips",
	}
	if cfg.Skip != "" {
		args = append(args, "--skip="+cfg.Skip)
	}
	if cfg.Timeout > 0 {
		args = append(args, "--timeout="+cfg.Timeout.String())
	}
	if cfg.DryRun {
		args = append(args, "--dry-run", "-v")
	}
	return append(args, cfg.E2E, "--",
		"--kubeconfig="+cfg.Kubeconfig,
		"--provider=local",
		"--report-dir="+reportDir,
		// barge's nodes are the lab's agents (or hollow nodes); the suite
		// must not wait for kube-system pods barge does not run.
		"--minStartupPods=0",
		"--disable-log-dump",
	)
}
