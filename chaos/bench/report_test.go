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
		Machine: Machine{CPUModel: "AMD EPYC", CPUs: 2, Kernel: "6.1.0", Disk: "/dev/vda (ext4, 252G, mounted on /)", GoVersion: "go1.26", EtcdVersion: "3.4.23"},
		Rows: []Row{
			{Workload: "put", Clients: 16, Unit: "puts", Barge: Measure{OpsPerSec: 2000, P50Ms: 7.5, P99Ms: 20.126}, Etcd: Measure{OpsPerSec: 1000, P50Ms: 15, P99Ms: 40}, Ratio: 2},
			{Workload: "txn cas 8 hot keys", Clients: 16, Unit: "attempts", Barge: Measure{OpsPerSec: 500, Successes: 10, Conflicts: 5, Errors: 1}, Etcd: Measure{OpsPerSec: 1000}, Ratio: 0.5},
			{Workload: "watch 1000 watchers", Clients: 1, Unit: "events delivered", Barge: Measure{Writes: 300}},
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
		{rows[0], "put, 16 clients", ""},
		{Row{Workload: "put", Clients: 1}, "put, 1 client", ""},
		{rows[1], "txn cas 8 hot keys, 16 clients", "barge: 10 ok/5 conflicts, 1 errors"},
		{rows[2], "watch 1000 watchers", "barge: 300 puts"},
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
		"barge ops/s", "barge/etcd",
		"put, 16 clients", "2000", "7.50", "20.13", "1000", "15.00", "40.00", "2.00",
		"1100.00", "1000 1100 1200",
		"AMD EPYC × 2", "run took 2m10s",
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
		"| workload | barge ops/s | p50 ms | p99 ms | etcd ops/s | p50 ms | p99 ms | barge/etcd |",
		"| put, 16 clients | 2000 | 7.50 | 20.13 | 1000 | 15.00 | 40.00 | 2.00 |",
		"- txn cas 8 hot keys, 16 clients: barge: 10 ok/5 conflicts, 1 errors",
		"| barge | 3 | 1100.00 | 1200.00 | 0 |",
		"barge/etcd failover p50: 0.50",
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
