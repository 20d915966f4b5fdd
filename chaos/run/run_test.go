package run_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/barge-dev/barge/chaos/lab"
	"github.com/barge-dev/barge/chaos/labtest"
	"github.com/barge-dev/barge/chaos/run"
)

var bargeBin string

func TestMain(m *testing.M) { os.Exit(labtest.Main(m, &bargeBin)) }

func requireRoot(t *testing.T) { labtest.RequireRoot(t) }

// labFor brings up a lab with history kept (no automatic compaction), so
// the run can read the whole committed history back.
func labFor(t *testing.T, servers int) run.Lab {
	t.Helper()
	return labtest.Up(t, lab.Config{Dir: t.TempDir(), Servers: servers, Barge: bargeBin, ServerArgs: []string{"--auto-compaction-mode", "off"}})
}

// TestShortChaosRun is the chaos run `make test` includes: three servers,
// kills and partitions, and nothing may be found wrong.
func TestShortChaosRun(t *testing.T) {
	requireRoot(t)
	l := labFor(t, 3)
	rep, err := run.Run(context.Background(), run.Config{
		Lab: l, Duration: 30 * time.Second, Faults: []string{run.FaultKill, run.FaultPartition, run.FaultLeaderPartition},
		Seed: 7, ReportDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	rep.Summary(&sb)
	t.Log(sb.String())
	if !rep.OK() {
		t.Fatalf("violations: %v", rep.Violations)
	}
	if len(rep.FaultLog) == 0 || rep.Operations.OK < 100 || rep.WatchEvents == 0 || rep.Linearizability.Operations == 0 {
		t.Fatalf("the run did not exercise enough: %+v", rep)
	}
}

// TestSerializableReadsAreCaught proves the checker can fail: with reads
// served by any peer, a partitioned peer answers stale values and the
// history is not linearizable.
func TestSerializableReadsAreCaught(t *testing.T) {
	requireRoot(t)
	l := labFor(t, 3)
	rep, err := run.Run(context.Background(), run.Config{
		Lab: l, Duration: 25 * time.Second, Faults: []string{run.FaultPartition},
		Seed: 3, Keys: 3, ReadConsistency: "serializable", ReportDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	rep.Summary(&sb)
	t.Log(sb.String())
	if rep.Linearizability.Linearizable || rep.OK() {
		t.Fatal("stale serializable reads under partitions went unnoticed")
	}
	if rep.Visualization == "" {
		t.Fatal("no porcupine visualisation written for the violation")
	}
}
