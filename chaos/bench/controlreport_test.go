package bench

import (
	"strings"
	"testing"
	"time"
)

// controlFixture is a report with every row measured.
func controlFixture() *ControlReport {
	return &ControlReport{
		Command: "barge bench control --json docs/bench/control.json", Started: time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC), Elapsed: "20m0s",
		EtcdSystem: SystemEtcd37, Machine: Machine{EtcdVersion: "3.7.3", CPUs: 2},
		Nodes: 50, MaxPods: 300, Pods: 10000, Replicas: 1000, MutateRate: 100, MutateSeconds: 30, Kills: 20,
		Barge: ControlResult{Setup: SetupBarge,
			Pods:     &PodsResult{PodsPerSec: 300, P50Ms: 100, P99Ms: 400},
			Deploy:   &DeployResult{ReadyMs: 10000, RolloutMs: 20000},
			Mutate:   &MutateResult{P50Ms: 5, P99Ms: 20},
			Failover: &ControlFailover{Kills: 20, SamplesMs: []float64{300, 400}, P50Ms: 300, MaxMs: 400, PhasesP50: FailoverPhases{LeaderMs: 200, BoundMs: 300}},
			RSS:      []ServerRSS{{RSSBytes: 300 << 20}, {RSSBytes: 500 << 20}}},
		Etcd: ControlResult{Setup: SetupEtcd,
			Pods:     &PodsResult{PodsPerSec: 150, P50Ms: 200, P99Ms: 800},
			Deploy:   &DeployResult{ReadyMs: 20000, RolloutMs: 40000},
			Mutate:   &MutateResult{P50Ms: 10, P99Ms: 10},
			Failover: &ControlFailover{Kills: 20, SamplesMs: []float64{16000}, P50Ms: 16000, MaxMs: 17000},
			RSS:      []ServerRSS{{RSSBytes: 300 << 20}, {RSSBytes: 300 << 20}},
			StoreRSS: []ServerRSS{{RSSBytes: 100 << 20}, {RSSBytes: 100 << 20}}},
	}
}

func TestControlRows(t *testing.T) {
	r := controlFixture()
	want := []struct {
		metric       string
		barge, etcd  string
		ratio        string
		better       string
		higherBetter bool
	}{
		{"10,000 pods created → all bound, pods/s", "300", "150", "2.00", "barge", true},
		{"create → bound p50, ms", "100", "200", "0.50", "barge", false},
		{"create → bound p99, ms", "400", "800", "0.50", "barge", false},
		{"1,000-replica Deployment → all Ready, s", "10.0", "20.0", "0.50", "barge", false},
		{"rolling update → done, s", "20.0", "40.0", "0.50", "barge", false},
		{"mutating calls at 100/s, p50 ms", "5.0", "10.0", "0.50", "barge", false},
		{"mutating calls at 100/s, p99 ms", "20.0", "10.0", "2.00", "etcd mode", false},
		{"kill -9 of the active server → first pod bound, p50 ms", "300", "16000", "0.02", "barge", false},
		{"kill -9 of the active server → first pod bound, max ms", "400", "17000", "0.02", "barge", false},
		// barge 400 MiB a server; etcd mode 300 API server + 100 etcd member.
		{"resident memory per server, MiB", "400", "400", "1.00", "even", false},
	}
	rows := r.rows()
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, w := range want {
		row := rows[i]
		b, e, q := row.cells()
		if row.metric != w.metric || b != w.barge || e != w.etcd || q != w.ratio || row.better() != w.better || row.higher != w.higherBetter {
			t.Errorf("row %d = %q %s %s %s %s higher=%v, want %q %s %s %s %s higher=%v", i,
				row.metric, b, e, q, row.better(), row.higher, w.metric, w.barge, w.etcd, w.ratio, w.better, w.higherBetter)
		}
	}
}

func TestControlRowMissing(t *testing.T) {
	for _, tc := range []struct {
		name        string
		barge, etcd float64
		ratio       string
		better      string
	}{
		{"both", 2, 1, "2.00", "barge"},
		{"barge missing", 0, 1, "—", ""},
		{"etcd missing", 1, 0, "—", ""},
		{"neither", 0, 0, "—", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			row := controlRow{barge: tc.barge, etcd: tc.etcd, format: "%.0f", higher: true}
			_, _, q := row.cells()
			if q != tc.ratio || row.better() != tc.better {
				t.Errorf("ratio %s better %q, want %s %q", q, row.better(), tc.ratio, tc.better)
			}
		})
	}
}

func TestControlGoals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tweak func(*ControlReport)
		want  []string
	}{
		{"met", func(*ControlReport) {}, []string{"throughput ≥ 1.5× etcd mode with p99 no worse: met (2.00×, p99 0.50×)", "failover p50 ≤ 500 ms and max ≤ 1 s: met"}},
		{"throughput short", func(r *ControlReport) { r.Barge.Pods.PodsPerSec = 200 }, []string{": missed (1.33×"}},
		{"p99 worse", func(r *ControlReport) { r.Barge.Pods.P99Ms = 900 }, []string{": missed (2.00×, p99 1.12×)"}},
		{"failover max over 1 s", func(r *ControlReport) { r.Barge.Failover.MaxMs = 1200 }, []string{"max ≤ 1 s: missed (p50 300 ms, max 1200 ms"}},
		{"a kill without a bound pod", func(r *ControlReport) { r.Barge.Failover.Failed = 1 }, []string{"max ≤ 1 s: missed", "1 of 20 kills"}},
		{"pods not measured", func(r *ControlReport) { r.Etcd.Pods = nil }, []string{"p99 no worse: not measured"}},
		{"failover not measured", func(r *ControlReport) { r.Barge.Failover = nil }, []string{"max ≤ 1 s: not measured"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := controlFixture()
			tc.tweak(r)
			got := strings.Join(r.goals(), "\n")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("goals\n%s\nlack %q", got, w)
				}
			}
		})
	}
}

func TestWithControlSection(t *testing.T) {
	section := ControlBeginMarker + "\n\n## Control plane\n\nNEW\n\n" + ControlEndMarker + "\n"
	old := ControlBeginMarker + "\n\n## Control plane\n\nOLD\n\n" + ControlEndMarker + "\n"
	for _, tc := range []struct {
		name, page, want string
	}{
		{"empty page", "", HandWrittenMarker + "\n\n" + section},
		{"store page without a marker", "# Benchmarks\n\ntable\n", "# Benchmarks\n\ntable\n\n" + HandWrittenMarker + "\n\n" + section},
		{"appended to the hand-written part", "# B\n\n" + HandWrittenMarker + "\n\n## Analysis\n", "# B\n\n" + HandWrittenMarker + "\n\n## Analysis\n\n" + section},
		{"replaced in place", "# B\n\n" + HandWrittenMarker + "\n\n## A\n\n" + old + "\n## Z\n", "# B\n\n" + HandWrittenMarker + "\n\n## A\n\n" + section + "\n## Z\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := WithControlSection(tc.page, section)
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
			// Rendering again changes nothing, and so does re-rendering
			// the store section above the marker.
			if again := WithControlSection(got, section); again != got {
				t.Errorf("second render differs:\n%s", again)
			}
			if kept := KeepHandWritten("# Benchmarks regenerated\n", got); !strings.Contains(kept, section) {
				t.Errorf("store render dropped the control section:\n%s", kept)
			}
		})
	}
}

func TestControlMarkdown(t *testing.T) {
	md := ControlMarkdown(controlFixture())
	for _, want := range []string{
		ControlBeginMarker, ControlEndMarker, "## Control plane",
		"| 10,000 pods created → all bound, pods/s | 300 | 150 | 2.00 |",
		"| kill -9 of the active server → first pod bound, p50 ms | 300 | 16000 | 0.02 |",
		"etcd mode (etcd 3.7.3)",
		"- throughput ≥ 1.5× etcd mode with p99 no worse: met",
		"| new leader (barge: Raft leader's first commit; etcd mode: Lease won) | 200 | — |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(md), ControlEndMarker) {
		t.Errorf("markdown does not end with the end marker")
	}
}

func TestParseLogLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		ok   bool
		at   string
		msg  string
	}{
		{`time=2026-12-03T15:01:02.345Z level=INFO msg="leader-only work started" component=control term=4`, true, "2026-12-03T15:01:02.345Z", "leader-only work started"},
		{`time=2026-12-03T15:01:02.345+00:00 level=INFO msg=stopping signal=terminated`, true, "2026-12-03T15:01:02.345Z", "stopping"},
		{`I1203 15:01:02.345 klog line`, false, "", ""},
		{`time=garbage level=INFO msg=x`, false, "", ""},
		{`time=2026-12-03T15:01:02.345Z level=INFO msg="unterminated`, false, "", ""},
	} {
		l, ok := parseLogLine(tc.line)
		if ok != tc.ok {
			t.Errorf("%q: ok %v, want %v", tc.line, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		want, _ := time.Parse(time.RFC3339Nano, tc.at)
		if !l.at.Equal(want) || l.msg != tc.msg {
			t.Errorf("%q: %v %q, want %v %q", tc.line, l.at, l.msg, want, tc.msg)
		}
	}
}

func TestMedianPhases(t *testing.T) {
	got := medianPhases([]FailoverPhases{{LeaderMs: 100, BoundMs: 300}, {LeaderMs: 200, BoundMs: 500}, {LeaderMs: 0, BoundMs: 400}})
	// Nearest rank: of 100 and 200 the p50 is 100; a missing phase (0)
	// is left out, not counted as instant.
	if got.LeaderMs != 100 || got.BoundMs != 400 || got.StartedMs != 0 {
		t.Errorf("medians %+v", got)
	}
}
