package bench

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	return &Report{
		Command: "barge bench store --quick", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Elapsed: "2m10s", Warmup: "500ms", Duration: "3s",
		Machine: Machine{CPUModel: "AMD EPYC", CPUs: 2, Kernel: "6.1.0", Disk: "/dev/vda (ext4, 252G, mounted on /)", GoVersion: "go1.26", EtcdVersion: "3.4.23",
			FdatasyncP50Ms: 0.5, FdatasyncP99Ms: 1.25},
		Rows: []Row{
			{Workload: "put", Clients: 1, Unit: "puts", Barge: Measure{OpsPerSec: 400, P50Ms: 2, P99Ms: 4}, Etcd: Measure{OpsPerSec: 500, P50Ms: 1.5, P99Ms: 5}, Ratio: 0.8},
			{Workload: "put", Clients: 16, Unit: "puts", Barge: Measure{OpsPerSec: 2000, P50Ms: 7.5, P99Ms: 20.126, CPUPerOpUs: 151.6}, Etcd: Measure{OpsPerSec: 1000, P50Ms: 15, P99Ms: 40, CPUPerOpUs: 300}, Ratio: 2},
			{Workload: "txn cas 8 hot keys", Clients: 16, Unit: "attempts", Barge: Measure{OpsPerSec: 500, Successes: 10, Conflicts: 5, Errors: 1}, Etcd: Measure{OpsPerSec: 1000}, Ratio: 0.5},
			{Workload: "watch 1000 watchers", Clients: 1, Unit: "events delivered", Barge: Measure{Writes: 300}},
			{Workload: "lease keepalive 10000 leases", Clients: 16, Unit: "keep-alives", Barge: Measure{OpsPerSec: 9000, P50Ms: 1, P99Ms: 3}, Etcd: Measure{OpsPerSec: 6000, P50Ms: 2, P99Ms: 6, Errors: 2}, Ratio: 1.5},
		},
		Size: &SizeReport{Keys: 100000, ValueBytes: 256, PutsPerTxn: 100,
			Barge: SizeMeasure{LoadMs: 2500, KeysPerSec: 40000,
				Members:  []MemberSize{{"barge1", 200 << 20, 80 << 20}, {"barge2", 210 << 20, 80 << 20}, {"barge3", 190 << 20, 80 << 20}},
				RSSBytes: 600 << 20, DiskBytes: 240 << 20, SnapshotMember: "barge2", SnapshotMs: 400, SnapshotBytes: 40 << 20, RestartMember: "barge2", RestartMs: 2000},
			Etcd: SizeMeasure{LoadMs: 5000, KeysPerSec: 20000,
				Members:  []MemberSize{{"etcd1", 220 << 20, 170 << 20}, {"etcd2", 220 << 20, 170 << 20}, {"etcd3", 220 << 20, 170 << 20}},
				RSSBytes: 660 << 20, DiskBytes: 510 << 20, SnapshotMember: "etcd3", SnapshotMs: 500, SnapshotBytes: 50 << 20, RestartMember: "etcd3", RestartMs: 800},
		},
		Failover: []FailoverResult{
			{System: SystemBarge, Kills: 3, SamplesMs: []float64{1000, 1100, 1200}, P50Ms: 1100, MaxMs: 1200},
			{System: SystemEtcd, Kills: 3, SamplesMs: []float64{2000, 2200, 2400}, P50Ms: 2200, MaxMs: 2400},
		},
	}
}

func TestRowLabelAndNote(t *testing.T) {
	rows := sampleReport().Rows
	for _, tc := range []struct {
		row         Row
		label, note string
	}{
		{rows[1], "put, 16 clients", ""},
		{rows[0], "put, 1 client", ""},
		{rows[2], "txn cas 8 hot keys, 16 clients", "barge: 10 ok/5 conflicts, 1 errors"},
		{rows[3], "watch 1000 watchers", "barge: 300 puts"},
		{rows[4], "lease keepalive 10000 leases, 16 clients", "etcd: 2 errors"},
	} {
		if got := tc.row.label(); got != tc.label {
			t.Errorf("label = %q, want %q", got, tc.label)
		}
		if got := tc.row.note(); got != tc.note {
			t.Errorf("note of %s = %q, want %q", tc.label, got, tc.note)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"barge ops/s", "barge/3.4", "barge/3.7", "p99 /3.4",
		"put, 16 clients", "2000", "7.50", "20.13", "1000", "15.00", "40.00", "2.00", "0.50",
		"lease keepalive 10000 leases, 16 clients",
		"single-client put p50 is 4.0× the fdatasync floor (barge), 3.0× (etcd 3.4)",
		"100,000 keys of 256 B", "follower restart → linearizable get, ms", "200.0 / 210.0 / 190.0",
		"1100.00", "1000 1100 1200",
		"AMD EPYC × 2", "fdatasync floor (4 KiB write + fdatasync) p50 0.50 ms, p99 1.25 ms", "run took 2m10s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestMarkdown(t *testing.T) {
	md := Markdown(sampleReport())
	for _, want := range []string{
		"# Benchmarks\n",
		"| workload | barge ops/s | p50 ms | p99 ms | etcd 3.4 ops/s | p50 ms | p99 ms | etcd 3.7 ops/s | p50 ms | p99 ms | /3.4 | /3.7 | vs faster | p99 /3.4 | p99 /3.7 | CPU µs/op barge | 3.4 | 3.7 |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
		"| put, 16 clients | 2000 | 7.50 | 20.13 | 1000 | 15.00 | 40.00 | — | — | — | 2.00 | — | 2.00 | 0.50 | — | 152 | 300 | — |\n",
		"| lease keepalive 10000 leases, 16 clients | 9000 | 1.00 | 3.00 | 6000 | 2.00 | 6.00 | — | — | — | 1.50 | — | 1.50 | 0.50 | — | 0 | 0 | — |\n",
		"- txn cas 8 hot keys, 16 clients: barge: 10 ok/5 conflicts, 1 errors",
		"- single-client put p50 is 4.0× the fdatasync floor (barge), 3.0× (etcd 3.4).\n",
		"- **lease keepalive**: 10,000 leases (TTL 3600 s)",
		"**p99 /3.4** and **/3.7** are barge's p99 over",
		"- **fdatasync floor**:",
		"data on /dev/vda (ext4, 252G, mounted on /); go1.26; fdatasync floor (4 KiB write + fdatasync) p50 0.50 ms, p99 1.25 ms.\n",
		"After the rows, 100,000 keys of 256 random bytes are loaded into each system,\n100 puts per txn",
		"- **restart**:",
		"| 100,000 keys of 256 B | barge | etcd 3.4 | etcd 3.7 | /3.4 | /3.7 |\n|---|--:|--:|--:|--:|--:|\n| load, s | 2.50 | 5.00 | — | 0.50 | — |\n| load, keys/s | 40000 | 20000 | — | 2.00 | — |\n",
		"| resident memory, 3 members, MiB | 600.0 | 660.0 | — | 0.91 | — |\n| resident memory per member, MiB | 200.0 / 210.0 / 190.0 | 220.0 / 220.0 / 220.0 | — |  |  |\n",
		"| on disk, 3 members, MiB | 240.0 | 510.0 | — | 0.47 | — |\n",
		"| snapshot of a follower, ms | 400 | 500 | — | 0.80 | — |\n| snapshot size, MiB | 40.0 | 50.0 | — | 0.80 | — |\n| follower restart → linearizable get, ms | 2000 | 800 | — | 2.50 | — |\n",
		"| barge | 3 | 1100.00 | 1200.00 | 0 |",
		"barge/etcd 3.4 failover p50: 0.50",
		"AMD EPYC × 2 CPUs, Linux 6.1.0",
		"make bench   # barge bench store --quick",
		"Run 2026-01-02, took 2m10s",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	want := sampleReport()
	if err := WriteJSON(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseMachine(t *testing.T) {
	cpu := "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: x\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
	if m, n := parseCPUInfo(cpu); m != "AMD EPYC 7B13" || n != 2 {
		t.Errorf("parseCPUInfo = %q, %d", m, n)
	}
	for _, tc := range []struct{ in, want string }{
		{"Filesystem Type Size Used Avail Use% Mounted on\n/dev/vda ext4 252G 25G 67G 27% /\n", "/dev/vda (ext4, 252G, mounted on /)"},
		{"", ""},
	} {
		if got := parseDF(tc.in); got != tc.want {
			t.Errorf("parseDF(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRowNoteReportsElections(t *testing.T) {
	r := Row{Workload: "put", Clients: 256, Barge: Measure{Elections: 2}, Etcd: Measure{}}
	if got, want := r.note(), "barge: 2 leader elections during the row"; got != want {
		t.Fatalf("note %q, want %q", got, want)
	}
	if got := (Row{Workload: "put", Clients: 16}).note(); got != "" {
		t.Fatalf("quiet row has note %q", got)
	}
}

// TestMarkdownOptionalSections: a report without the size section or the
// fdatasync floor (one from before they existed) renders without them,
// and a system that failed the size section shows dashes and its error.
func TestMarkdownOptionalSections(t *testing.T) {
	old := sampleReport()
	old.Size, old.Machine.FdatasyncP50Ms, old.Machine.FdatasyncP99Ms = nil, 0, 0
	failed := sampleReport()
	failed.Size.Barge = SizeMeasure{LoadMs: 2500, KeysPerSec: 40000, Error: "barge2 exited after its restart; see barge2.log"}
	for _, tc := range []struct {
		name          string
		r             *Report
		want, notWant []string
	}{
		{"old report", old,
			[]string{"| put, 1 client | 400 | 2.00 | 4.00 | 500 | 1.50 | 5.00 | — | — | — | 0.80 | — | 0.80 | 0.80 | — |", "go1.26.\n"},
			[]string{"fdatasync floor (", "single-client put p50", "random bytes are loaded", "| load, s |"}},
		{"failed size section", failed,
			[]string{"| load, s | 2.50 | 5.00 | — | 0.50 | — |", "| resident memory, 3 members, MiB | — | 660.0 | — | — | — |",
				"| resident memory per member, MiB | — | 220.0 / 220.0 / 220.0 | — |  |  |", "| follower restart → linearizable get, ms | — | 800 | — | — | — |",
				"- barge size section failed: barge2 exited after its restart; see barge2.log\n"},
			[]string{"etcd size section failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := Markdown(tc.r)
			for _, w := range tc.want {
				if !strings.Contains(md, w) {
					t.Errorf("markdown lacks %q:\n%s", w, md)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(md, w) {
					t.Errorf("markdown has %q:\n%s", w, md)
				}
			}
		})
	}
}

func TestFsyncLine(t *testing.T) {
	noPut := sampleReport()
	noPut.Rows = noPut.Rows[1:]
	noFloor := sampleReport()
	noFloor.Machine.FdatasyncP50Ms = 0
	for _, tc := range []struct {
		name string
		r    *Report
		want string
	}{
		{"put p50 over the floor", sampleReport(), "single-client put p50 is 4.0× the fdatasync floor (barge), 3.0× (etcd 3.4)"},
		{"no single-client put row", noPut, ""},
		{"floor not measured", noFloor, ""},
	} {
		if got := tc.r.fsyncLine(); got != tc.want {
			t.Errorf("%s: fsyncLine = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestP99Ratio(t *testing.T) {
	for _, tc := range []struct {
		barge, etcd, want float64
	}{
		{20, 40, 0.5},
		{6, 3, 2},
		{5, 0, 0}, // no etcd figure: no ratio rather than an infinite one
	} {
		r := Row{Barge: Measure{P99Ms: tc.barge}, Etcd: Measure{P99Ms: tc.etcd}}
		if got := r.p99Ratio(); got != tc.want {
			t.Errorf("p99Ratio(%v, %v) = %v, want %v", tc.barge, tc.etcd, got, tc.want)
		}
	}
}

func TestGrouped(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "0"}, {999, "999"}, {1000, "1,000"}, {10000, "10,000"}, {100000, "100,000"}, {1000000, "1,000,000"}, {-1234, "-1,234"},
	} {
		if got := grouped(tc.n); got != tc.want {
			t.Errorf("grouped(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		err        bool
	}{
		// utime 250 + stime 50 ticks = 3 s
		{"plain", "1234 (barge) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 0 0", 3 * time.Second, false},
		{"name with spaces and parens", "99 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 7 3 0 0", 100 * time.Millisecond, false},
		{"no name", "1234 barge S 1", 0, true},
		{"truncated", "1234 (barge) S 1 2 3", 0, true},
		{"not a number", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 3 0", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU(tc.stat)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestKeepHandWritten(t *testing.T) {
	for _, tc := range []struct {
		name, generated, previous, want string
	}{
		{"no previous page", "# New\n", "", "# New\n"},
		{"previous page without analysis", "# New\n", "# Old\n", "# New\n"},
		{"analysis kept, old table dropped", "# New\n\n",
			"# Old\n" + HandWrittenMarker + "\n## Why\nfsync.\n",
			"# New\n\n" + HandWrittenMarker + "\n## Why\nfsync.\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := KeepHandWritten(tc.generated, tc.previous); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHealthChecks(t *testing.T) {
	members := []*Member{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	whole := []memberStatus{{id: 1, leader: 2, applied: 10}, {id: 2, leader: 2, applied: 12}, {id: 3, leader: 2, applied: 11}}
	for _, tc := range []struct {
		name    string
		sts     []memberStatus
		target  uint64
		lead    int
		leadErr bool
		lagErr  bool
	}{
		{"whole and caught up", whole, 10, 1, false, false},
		{"one member behind", whole, 11, 1, false, true},
		{"no leader yet", []memberStatus{{id: 1}, {id: 2, leader: 2}, {id: 3, leader: 2}}, 0, -1, true, false},
		{"split view", []memberStatus{{id: 1, leader: 1}, {id: 2, leader: 2}, {id: 3, leader: 2}}, 0, -1, true, false},
		{"alarm", []memberStatus{{id: 1, leader: 2}, {id: 2, leader: 2, errs: []string{"NOSPACE"}}, {id: 3, leader: 2}}, 0, -1, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lead, err := agreedLeader(members, tc.sts)
			if (err != nil) != tc.leadErr || lead != tc.lead {
				t.Fatalf("agreedLeader = %d, %v; want %d, error %v", lead, err, tc.lead, tc.leadErr)
			}
			if err := caughtUp(members, tc.sts, tc.target); (err != nil) != tc.lagErr {
				t.Fatalf("caughtUp = %v, want error %v", err, tc.lagErr)
			}
		})
	}
}

// With etcd 3.7 in the run, every row and line carries it, its ratio, and
// the goals' yardstick is the faster etcd of each row.
func TestReportWithEtcd37(t *testing.T) {
	r := sampleReport()
	r.Machine.Etcd37Version = "3.7.3"
	r.Rows[0].Etcd37 = &Measure{OpsPerSec: 800, P50Ms: 1, P99Ms: 2, CPUPerOpUs: 90}
	r.Rows[0].Ratio37 = 0.5
	e7 := r.Size.Etcd
	e7.LoadMs = 4000
	r.Size.Etcd37 = &e7
	r.Failover = append(r.Failover, FailoverResult{System: SystemEtcd37, Kills: 3, P50Ms: 1100, MaxMs: 1300})
	md := Markdown(r)
	for _, want := range []string{
		"against etcd 3.4.23 and 3.7.3",
		"| put, 1 client | 400 | 2.00 | 4.00 | 500 | 1.50 | 5.00 | 800 | 1.00 | 2.00 | 0.80 | 0.50 | 0.50 | 0.80 | 2.00 | 0 | 0 | 90 |\n",
		"single-client put p50 is 4.0× the fdatasync floor (barge), 3.0× (etcd 3.4) and 2.0× (etcd 3.7)",
		"| load, s | 2.50 | 5.00 | 4.00 | 0.50 | 0.62 |\n",
		"barge/etcd 3.4 failover p50: 0.50; barge/etcd 3.7: 1.00",
		"| etcd37 | 3 | 1100.00 | 1300.00 | 0 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, r); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "etcd 3.4.23 and 3.7.3") || !strings.Contains(out, "800") {
		t.Errorf("table lacks etcd 3.7:\n%s", out)
	}
}
