package bench

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	tortureKills = flag.Int("torture-kills", 32, "SIGKILLs in TestCrashTorture (make torture runs hundreds through barge bench torture)")
	bargeBin     string
)

// TestMain builds ./cmd/barge for the tests that run real server
// processes, unless BARGE_TEST_BINARY names one.
func TestMain(m *testing.M) {
	flag.Parse()
	if bargeBin = os.Getenv("BARGE_TEST_BINARY"); bargeBin != "" {
		os.Exit(m.Run())
	}
	tmp, err := os.MkdirTemp("", "barge-bench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bargeBin = filepath.Join(tmp, "barge")
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		build := exec.Command("go", "build", "-o", bargeBin, "./cmd/barge")
		build.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
		var out []byte
		if out, err = build.CombinedOutput(); err != nil {
			err = fmt.Errorf("%w\n%s", err, out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "build barge:", err)
		os.RemoveAll(tmp)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// TestCrashTorture kills members of a 3-peer cluster on the etcd WAL log
// store with SIGKILL under write load, at random and as segments are cut,
// snapshots written and logs compacted, then reads back every
// acknowledged write and compares every member's HashKV.
func TestCrashTorture(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := Torture(ctx, TortureConfig{
		BargeBin: bargeBin, Dir: t.TempDir(), Kills: *tortureKills, Seed: uint64(time.Now().UnixNano()),
		Log: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if rep != nil {
		t.Logf("kills %d %v (targeted kills whose moment did not come: %d), acknowledged writes %d, unknown %d, repaired tails %d, hash %08x at revision %d, %s",
			rep.Kills, rep.ByMoment, rep.Missed, rep.Acked, rep.Unknown, rep.Repaired, rep.Hash, rep.Revision, rep.Elapsed)
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.HashError != "" {
		t.Fatal(rep.HashError)
	}
	if rep.Kills != *tortureKills {
		t.Fatalf("%d kills, want %d", rep.Kills, *tortureKills)
	}
	// Each moment was hit at least once, or the run did not torture
	// what it claims to.
	for _, m := range []string{MomentRandom, MomentCut, MomentSnapshot, MomentCompaction} {
		if rep.ByMoment[m] == 0 && *tortureKills >= 16 {
			t.Errorf("no kill landed during a %s", m)
		}
	}
	if rep.Acked == 0 {
		t.Fatal("no write was acknowledged")
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
