// Package labtest is the shared harness of tests that need a lab: it
// builds the barge binary the lab's servers run, brings labs up and tears
// them down, and applies the project's rule for root tests (skip when not
// root, unless BARGE_REQUIRE_ROOT=1, which turns the skip into a failure).
//
// labtest imports chaos/lab.
package labtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/barge-dev/barge/chaos/lab"
)

// Main is a TestMain body: it builds ./cmd/barge into a temporary
// directory (or takes BARGE_TEST_BINARY), stores its path in *bin, and
// runs the tests. Without root nothing is built: every lab test skips or
// fails through RequireRoot.
func Main(m *testing.M, bin *string) int {
	if os.Geteuid() != 0 {
		return m.Run()
	}
	if *bin = os.Getenv("BARGE_TEST_BINARY"); *bin != "" {
		return m.Run()
	}
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env GOMOD:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "barge-lab-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	*bin = filepath.Join(tmp, "barge")
	build := exec.Command("go", "build", "-o", *bin, "./cmd/barge")
	build.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/barge: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// RequireRoot skips a test that needs root, or fails it when
// BARGE_REQUIRE_ROOT=1 (as CI sets): a skipped test is not a passing one.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("BARGE_REQUIRE_ROOT") == "1" {
		t.Fatal("this test needs root (network namespaces) and BARGE_REQUIRE_ROOT=1 forbids skipping")
	}
	t.Skip("needs root for network namespaces")
}

// Up brings a lab up for one test and registers its teardown.
func Up(t testing.TB, cfg lab.Config) *lab.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := lab.Up(ctx, cfg)
	if err != nil {
		_ = lab.Down(cfg.Dir)
		t.Fatalf("lab up: %v", err)
	}
	// Down is idempotent, so this is harmless after a test's own Down.
	t.Cleanup(func() {
		if err := lab.Down(cfg.Dir); err != nil {
			t.Errorf("cleanup: lab down: %v", err)
		}
	})
	return l
}
