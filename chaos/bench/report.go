package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything a run measured; it is the JSON document, and the
// table and the markdown are renderings of it.
type Report struct {
	Command  string           `json:"command"`
	Started  time.Time        `json:"started"`
	Elapsed  string           `json:"elapsed"`
	Warmup   string           `json:"warmup"`
	Duration string           `json:"duration"` // of each row
	Machine  Machine          `json:"machine"`
	Rows     []Row            `json:"rows"`
	Size     *SizeReport      `json:"size,omitempty"`
	Failover []FailoverResult `json:"failover"`
}

// Row is one workload against both systems.
type Row struct {
	Workload string  `json:"workload"`
	Clients  int     `json:"clients"`
	Unit     string  `json:"unit"`
	Barge    Measure `json:"barge"`
	Etcd     Measure `json:"etcd"` // Debian's etcd 3.4
	// Etcd37 is etcd 3.7, when the run had it.
	Etcd37 *Measure `json:"etcd37,omitempty"`
	// Ratio is barge ops/s over etcd 3.4's: above 1 barge is faster;
	// Ratio37 the same over etcd 3.7's.
	Ratio   float64 `json:"ratio"`
	Ratio37 float64 `json:"ratio37,omitempty"`
}

// measure is where system's figures of the row go.
func (r *Row) measure(system string) *Measure {
	switch system {
	case SystemBarge:
		return &r.Barge
	case SystemEtcd37:
		if r.Etcd37 == nil {
			r.Etcd37 = &Measure{}
		}
		return r.Etcd37
	}
	return &r.Etcd
}

// fasterEtcd is the etcd with more ops/s in the row, the yardstick of
// the goals.
func (r Row) fasterEtcd() Measure {
	if r.Etcd37 != nil && r.Etcd37.OpsPerSec > r.Etcd.OpsPerSec {
		return *r.Etcd37
	}
	return r.Etcd
}

// bestRatio is barge's ops/s over the faster etcd's.
func (r Row) bestRatio() float64 { return Ratio(r.Barge.OpsPerSec, r.fasterEtcd().OpsPerSec) }

// p99Ratio37 is barge's p99 over etcd 3.7's, 0 without it.
func (r Row) p99Ratio37() float64 {
	if r.Etcd37 == nil {
		return 0
	}
	return Ratio(r.Barge.P99Ms, r.Etcd37.P99Ms)
}

// label names a row in tables.
func (r Row) label() string {
	if strings.HasPrefix(r.Workload, "watch") {
		return r.Workload
	}
	if r.Clients == 1 {
		return r.Workload + ", 1 client"
	}
	return fmt.Sprintf("%s, %d clients", r.Workload, r.Clients)
}

// p99Ratio is barge's p99 over etcd's: below 1 barge's tail is shorter.
func (r Row) p99Ratio() float64 {
	return Ratio(r.Barge.P99Ms, r.Etcd.P99Ms)
}

// note adds what the three columns do not show: errors, and the split of
// compare-and-swap attempts.
func (r Row) note() string {
	var parts []string
	for _, s := range []struct {
		name string
		m    Measure
	}{{SystemBarge, r.Barge}, {SystemEtcd, r.Etcd}, {SystemEtcd37, deref(r.Etcd37)}} {
		var p []string
		if s.m.Successes+s.m.Conflicts > 0 {
			p = append(p, fmt.Sprintf("%d ok/%d conflicts", s.m.Successes, s.m.Conflicts))
		}
		if s.m.Writes > 0 {
			p = append(p, fmt.Sprintf("%d puts", s.m.Writes))
		}
		if s.m.Errors > 0 {
			p = append(p, fmt.Sprintf("%d errors", s.m.Errors))
		}
		if s.m.Elections > 0 {
			p = append(p, fmt.Sprintf("%d leader elections during the row", s.m.Elections))
		}
		if len(p) > 0 {
			parts = append(parts, s.name+": "+strings.Join(p, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

func deref(m *Measure) Measure {
	if m == nil {
		return Measure{}
	}
	return *m
}

// f37 formats an etcd 3.7 figure, a dash when the run had none.
func f37(m *Measure, v func(Measure) float64, format string) string {
	if m == nil {
		return "—"
	}
	return fmt.Sprintf(format, v(*m))
}

func ratioCell(v float64) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", v)
}

// failover returns the result of system, if it ran.
func (r *Report) failover(system string) (FailoverResult, bool) {
	for _, f := range r.Failover {
		if f.System == system {
			return f, true
		}
	}
	return FailoverResult{}, false
}

// fsyncLine relates the single-client put, one durable write at a time,
// to the disk's fdatasync floor; "" when the report lacks either.
func (r *Report) fsyncLine() string {
	floor := r.Machine.FdatasyncP50Ms
	if floor <= 0 {
		return ""
	}
	for _, row := range r.Rows {
		if row.Workload == "put" && row.Clients == 1 {
			l := fmt.Sprintf("single-client put p50 is %.1f× the fdatasync floor (barge), %.1f× (etcd 3.4)",
				row.Barge.P50Ms/floor, row.Etcd.P50Ms/floor)
			if row.Etcd37 != nil {
				l += fmt.Sprintf(" and %.1f× (etcd 3.7)", row.Etcd37.P50Ms/floor)
			}
			return l
		}
	}
	return ""
}

// WriteTable prints the terminal table: one row per workload, then the
// size section, failover, and the machine.
func WriteTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tbarge ops/s\tp50 ms\tp99 ms\tetcd3.4 ops/s\tp50 ms\tp99 ms\tetcd3.7 ops/s\tp50 ms\tp99 ms\tbarge/3.4\tbarge/3.7\tp99 /3.4\tp99 /3.7\tCPU µs/op barge\t3.4\t3.7\t")
	for _, row := range r.Rows {
		e := row.Etcd37
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%.0f\t%.2f\t%.2f\t%s\t%s\t%s\t%.2f\t%s\t%.2f\t%s\t%.0f\t%.0f\t%s\t\n", row.label(),
			row.Barge.OpsPerSec, row.Barge.P50Ms, row.Barge.P99Ms,
			row.Etcd.OpsPerSec, row.Etcd.P50Ms, row.Etcd.P99Ms,
			f37(e, func(m Measure) float64 { return m.OpsPerSec }, "%.0f"), f37(e, func(m Measure) float64 { return m.P50Ms }, "%.2f"), f37(e, func(m Measure) float64 { return m.P99Ms }, "%.2f"),
			row.Ratio, ratioCell(row.Ratio37), row.p99Ratio(), ratioCell(row.p99Ratio37()),
			row.Barge.CPUPerOpUs, row.Etcd.CPUPerOpUs, f37(e, func(m Measure) float64 { return m.CPUPerOpUs }, "%.0f"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	for _, row := range r.Rows {
		if n := row.note(); n != "" {
			fmt.Fprintf(w, "  %s: %s\n", row.label(), n)
		}
	}
	if l := r.fsyncLine(); l != "" {
		fmt.Fprintln(w, "  "+l)
	}
	if r.Size != nil {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "%s\tbarge\tetcd 3.4\tetcd 3.7\tbarge/3.4\tbarge/3.7\t\n", r.Size.title())
		for _, l := range r.Size.lines() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", l.metric, l.barge, l.etcd, l.etcd37, l.ratio, l.ratio37)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write table: %w", err)
		}
		for _, e := range r.Size.errors() {
			fmt.Fprintln(w, "  "+e)
		}
	}
	if len(r.Failover) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "leader kill → first ack\tkills\tp50 ms\tmax ms\tno ack\tsamples ms\t")
		for _, f := range r.Failover {
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%d\t%s\t\n", f.System, f.Kills, f.P50Ms, f.MaxMs, f.Failed, samples(f.SamplesMs))
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write table: %w", err)
		}
	}
	m := r.Machine
	_, err := fmt.Fprintf(w, "\nmachine: %s × %d, kernel %s, disk %s, %s, etcd %s%s%s\nrows of %s after %s warm-up; run took %s\n",
		m.CPUModel, m.CPUs, m.Kernel, m.Disk, m.GoVersion, m.EtcdVersion, m.etcd37(" and "), m.fsync(", "), r.Duration, r.Warmup, r.Elapsed)
	return err
}

func samples(ms []float64) string {
	s := make([]string, len(ms))
	for i, v := range ms {
		s[i] = fmt.Sprintf("%.0f", v)
	}
	return strings.Join(s, " ")
}

// Markdown renders docs/benchmarks.md: what is measured and how, the
// machine, the tables, and the command that reproduces them.
func Markdown(r *Report) string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, `# Benchmarks

<!-- Generated by `+"`make bench`"+` from docs/bench/store.json; do not edit above the hand-written marker near the end. -->

The barge store against etcd %s%s, side by side in one run on one machine.
Each system is a 3-member cluster on loopback (127.0.0.1) with mutual TLS
on the client and peer ports, the same certificates (`+"`barge certs init`"+`),
fsync on, and its own data directory per member. One load generator, written
on `+"`go.etcd.io/etcd/client/v3`"+`, drives every system identically: client goroutines
share a few connections, as etcd's `+"`benchmark`"+` tool does. Each row runs
for %s after a %s warm-up; latencies are per operation, nearest-rank
percentiles of every sample. Clients and every server share the machine,
so read the ratios, not the absolute numbers.

- **put**: 256-byte values over 10,000 keys.
- **range**: single-key gets over the same (preloaded) keys, linearizable
  (through the leader's read index) and serializable (local read).
- **txn cas**: compare-and-swap of the mod revision on 8 hot keys; a failed
  compare reads the key in the same transaction. ops/s counts attempts.
- **watch**: one writer at %d puts/s stamping its send time in the value,
  %d watchers on the prefix; ops/s is events delivered, latency is from
  the writer's send to delivery.
- **lease keepalive**: %s leases (TTL %d s) are granted before the row
  and revoked after it, outside the measured window. Each client holds one
  `+"`LeaseKeepAlive`"+` stream, as etcd's `+"`benchmark lease-keepalive`"+` does, and
  renews the next lease of its share of them, waiting for the answer; ops/s
  counts renewals, and an answer with TTL 0 (lease gone) counts as an error.
- **lease grant**: grants per second.
- **etcd 3.4** is Debian's etcd-server; **etcd 3.7** is the upstream
  etcd server's own main (`+"`go.etcd.io/etcd/server/v3/etcdmain`"+`, on
  `+"`embed`"+`) built from the module version barge pins, as
  `+"`chaos/bench/etcd37`"+`, with the same flags.
- **/3.4** and **/3.7** are barge's ops/s over that etcd's (above 1 barge
  is faster); **vs faster** is over the faster of the two in the row, the
  yardstick of the goals; **p99 /3.4** and **/3.7** are barge's p99 over
  that etcd's (below 1 barge's tail is shorter). The goal is ops/s at
  least 1.5× the faster etcd's with a p99 no worse than either's.
- **CPU µs/op** is the CPU time the three members of a system used during
  the row (from `+"`/proc/<pid>/stat`"+`) over the operations they served: what
  one operation costs the cluster, the bound of every row where the
  machine's cores, not the disk, are the busy part.
- Every row also reads each member's Raft term before and after: a rise
  means the load provoked a leader election, which the notes under the
  table report (none listed: none happened).
- **fdatasync floor**: before the clusters start, a 4 KiB write then
  `+"`fdatasync`"+`, %d times, in the directory that holds the data dirs. No
  store acknowledges a durable write faster; the line under the table
  says how far the single-client put is from it.
- **failover**: SIGKILL of the leader while a write goes out every 5 ms
  (each its own request, 2 s timeout), timed from the kill to the first
  acknowledged write sent after it; the member restarts on its data dir and
  the next kill waits until all three members agree on a leader and have
  applied what it had committed (a member still replaying its log after
  its restart cannot vote promptly, and a kill then would be a double
  fault).

Machine: %s × %d CPUs, Linux %s, data on %s; %s%s.

| workload | barge ops/s | p50 ms | p99 ms | etcd 3.4 ops/s | p50 ms | p99 ms | etcd 3.7 ops/s | p50 ms | p99 ms | /3.4 | /3.7 | vs faster | p99 /3.4 | p99 /3.7 | CPU µs/op barge | 3.4 | 3.7 |
|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|
`, m.EtcdVersion, m.etcd37(" and "), r.Duration, r.Warmup, watchRate, watchers, grouped(keepAliveLeases), leaseTTL, fsyncRounds,
		m.CPUModel, m.CPUs, m.Kernel, m.Disk, m.GoVersion, m.fsync("; "))
	var notes []string
	for _, row := range r.Rows {
		e := row.Etcd37
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.2f | %.0f | %.2f | %.2f | %s | %s | %s | %.2f | %s | %.2f | %.2f | %s | %.0f | %.0f | %s |\n", row.label(),
			row.Barge.OpsPerSec, row.Barge.P50Ms, row.Barge.P99Ms,
			row.Etcd.OpsPerSec, row.Etcd.P50Ms, row.Etcd.P99Ms,
			f37(e, func(m Measure) float64 { return m.OpsPerSec }, "%.0f"), f37(e, func(m Measure) float64 { return m.P50Ms }, "%.2f"), f37(e, func(m Measure) float64 { return m.P99Ms }, "%.2f"),
			row.Ratio, ratioCell(row.Ratio37), row.bestRatio(), row.p99Ratio(), ratioCell(row.p99Ratio37()),
			row.Barge.CPUPerOpUs, row.Etcd.CPUPerOpUs, f37(e, func(m Measure) float64 { return m.CPUPerOpUs }, "%.0f"))
		if n := row.note(); n != "" {
			notes = append(notes, "- "+row.label()+": "+n)
		}
	}
	if l := r.fsyncLine(); l != "" {
		notes = append(notes, "- "+l+".")
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	if r.Size != nil {
		writeSizeMarkdown(&b, r.Size)
	}
	if len(r.Failover) > 0 {
		b.WriteString("\n| leader kill → first acknowledged write | kills | p50 ms | max ms | no ack in 30 s |\n|---|--:|--:|--:|--:|\n")
		for _, f := range r.Failover {
			fmt.Fprintf(&b, "| %s | %d | %.2f | %.2f | %d |\n", f.System, f.Kills, f.P50Ms, f.MaxMs, f.Failed)
		}
		bf, okb := r.failover(SystemBarge)
		ef, oke := r.failover(SystemEtcd)
		e7, ok7 := r.failover(SystemEtcd37)
		if okb && oke {
			fmt.Fprintf(&b, "\nbarge/etcd 3.4 failover p50: %.2f", Ratio(bf.P50Ms, ef.P50Ms))
			if ok7 {
				fmt.Fprintf(&b, "; barge/etcd 3.7: %.2f", Ratio(bf.P50Ms, e7.P50Ms))
			}
			b.WriteString(" (below 1 barge recovers faster). Every sample is in the JSON.\n")
		}
	}
	fmt.Fprintf(&b, "\nRun %s, took %s. To reproduce:\n\n```sh\nmake bench   # %s, then this file from the JSON\n```\n",
		r.Started.UTC().Format("2006-01-02"), r.Elapsed, r.Command)
	return b.String()
}

// writeSizeMarkdown renders the size section: what each metric is, then
// the metrics × systems table.
func writeSizeMarkdown(b *strings.Builder, s *SizeReport) {
	fmt.Fprintf(b, `
After the rows, %s keys of %d random bytes are loaded into each system,
%d puts per txn with %d txns in flight, and then:

- **load**: the wall time of that load, and keys written per second.
- **resident memory**: each member's VmRSS (from `+"`/proc/<pid>/status`"+`)
  %s after the load, summed over the three members, then per member;
  etcd's includes the resident pages of its memory-mapped bbolt file.
- **on disk**: the sizes of the files in each member's data dir, summed;
  preallocated space counts (etcd preallocates 64 MB WAL segments).
- **snapshot**: the time to read a snapshot of a follower through
  `+"`Maintenance.Snapshot`"+` to its end with a client of that member alone,
  as `+"`etcdctl snapshot save`"+` does, and the snapshot's size.
- **restart**: the same follower stopped with SIGTERM and started again on
  its data dir, timed from the process start until a linearizable get
  through that member alone succeeds.

/3.4 and /3.7 are barge's figure over that etcd's: below 1 is better for
barge on every line but keys/s. The keys stay: the failover series below
runs on the loaded stores.

| %s | barge | etcd 3.4 | etcd 3.7 | /3.4 | /3.7 |
|---|--:|--:|--:|--:|--:|
`, grouped(s.Keys), s.ValueBytes, s.PutsPerTxn, loadWorkers, settleTime, s.title())
	for _, l := range s.lines() {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", l.metric, l.barge, l.etcd, l.etcd37, l.ratio, l.ratio37)
	}
	if errs := s.errors(); len(errs) > 0 {
		b.WriteString("\n- " + strings.Join(errs, "\n- ") + "\n")
	}
}

// etcd37 names etcd 3.7's version after sep, "" when the run had none.
func (m Machine) etcd37(sep string) string {
	if m.Etcd37Version == "" {
		return ""
	}
	return sep + m.Etcd37Version
}

// fsync describes the fdatasync floor after sep, or is "" when it was not
// measured (a report from before it was).
func (m Machine) fsync(sep string) string {
	if m.FdatasyncP50Ms <= 0 {
		return ""
	}
	return fmt.Sprintf("%sfdatasync floor (4 KiB write + fdatasync) p50 %.2f ms, p99 %.2f ms", sep, m.FdatasyncP50Ms, m.FdatasyncP99Ms)
}

// metricLine is one line of the size table.
type metricLine struct{ metric, barge, etcd, etcd37, ratio, ratio37 string }

func (s *SizeReport) title() string {
	return fmt.Sprintf("%s keys of %d B", grouped(s.Keys), s.ValueBytes)
}

// lines are the size table's lines. A figure a failed system did not
// reach is a dash, and so is its ratio.
func (s *SizeReport) lines() []metricLine {
	b, e := s.Barge, s.Etcd
	var e7 SizeMeasure
	if s.Etcd37 != nil {
		e7 = *s.Etcd37
	}
	ratio := func(x, y float64) string {
		if x > 0 && y > 0 {
			return fmt.Sprintf("%.2f", x/y)
		}
		return "—"
	}
	line := func(metric string, f func(SizeMeasure) float64, format string) metricLine {
		return metricLine{metric: metric, barge: figure(f(b), format), etcd: figure(f(e), format), etcd37: figure(f(e7), format),
			ratio: ratio(f(b), f(e)), ratio37: ratio(f(b), f(e7))}
	}
	perMember := func(metric string, f func(MemberSize) int64) metricLine {
		return metricLine{metric: metric, barge: members(b.Members, f), etcd: members(e.Members, f), etcd37: members(e7.Members, f)}
	}
	return []metricLine{
		line("load, s", func(m SizeMeasure) float64 { return m.LoadMs / 1000 }, "%.2f"),
		line("load, keys/s", func(m SizeMeasure) float64 { return m.KeysPerSec }, "%.0f"),
		line("resident memory, 3 members, MiB", func(m SizeMeasure) float64 { return mib(m.RSSBytes) }, "%.1f"),
		perMember("resident memory per member, MiB", func(m MemberSize) int64 { return m.RSSBytes }),
		line("on disk, 3 members, MiB", func(m SizeMeasure) float64 { return mib(m.DiskBytes) }, "%.1f"),
		perMember("on disk per member, MiB", func(m MemberSize) int64 { return m.DiskBytes }),
		line("snapshot of a follower, ms", func(m SizeMeasure) float64 { return m.SnapshotMs }, "%.0f"),
		line("snapshot size, MiB", func(m SizeMeasure) float64 { return mib(m.SnapshotBytes) }, "%.1f"),
		line("follower restart → linearizable get, ms", func(m SizeMeasure) float64 { return m.RestartMs }, "%.0f"),
	}
}

// errors says which system stopped short of the section, and why.
func (s *SizeReport) errors() []string {
	var out []string
	for _, m := range []struct {
		system string
		err    string
	}{{SystemBarge, s.Barge.Error}, {SystemEtcd, s.Etcd.Error}, {SystemEtcd37, func() string {
		if s.Etcd37 == nil {
			return ""
		}
		return s.Etcd37.Error
	}()}} {
		if m.err != "" {
			out = append(out, m.system+" size section failed: "+m.err)
		}
	}
	return out
}

func figure(v float64, format string) string {
	if v <= 0 {
		return "—"
	}
	return fmt.Sprintf(format, v)
}

// members lists a per-member figure in MiB, in member order.
func members(ms []MemberSize, f func(MemberSize) int64) string {
	if len(ms) == 0 {
		return "—"
	}
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = fmt.Sprintf("%.1f", mib(f(m)))
	}
	return strings.Join(s, " / ")
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// grouped writes n with thousands separators, as the page text does.
func grouped(n int) string {
	if n < 0 {
		return "-" + grouped(-n)
	}
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// ReadReport loads a JSON report written by WriteJSON.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parse report %s: %w", path, err)
	}
	return &r, nil
}

// WriteJSON writes the report, indented for diffs.
func WriteJSON(path string, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// HandWrittenMarker starts the part of docs/benchmarks.md that people
// write (what bounds each row, what to try next): the analysis outlives
// any one run, so regenerating the table keeps it.
const HandWrittenMarker = "<!-- Hand-written from here on; `make bench` keeps it. -->"

// KeepHandWritten returns the generated page followed by the hand-written
// part of the page it replaces, if that page had one.
func KeepHandWritten(generated, previous string) string {
	_, tail, ok := strings.Cut(previous, HandWrittenMarker)
	if !ok {
		return generated
	}
	return strings.TrimRight(generated, "\n") + "\n\n" + HandWrittenMarker + tail
}
