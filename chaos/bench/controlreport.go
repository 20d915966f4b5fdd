package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// ControlReport is everything a `barge bench control` run measured; the
// JSON document, rendered as a terminal table and as the "Control plane"
// section of docs/benchmarks.md.
type ControlReport struct {
	Command    string    `json:"command"`
	Started    time.Time `json:"started"`
	Elapsed    string    `json:"elapsed"`
	Machine    Machine   `json:"machine"`
	EtcdSystem string    `json:"etcdSystem"` // which etcd the etcd-mode setup ran
	Nodes      int       `json:"nodes"`
	MaxPods    int       `json:"maxPods"`
	Pods       int       `json:"pods"`
	Replicas   int       `json:"replicas"`
	MutateRate int       `json:"mutateRate"`
	// MutateSeconds is how long the mutating calls went on.
	MutateSeconds float64       `json:"mutateSeconds"`
	Kills         int           `json:"kills"`
	Barge         ControlResult `json:"barge"`
	Etcd          ControlResult `json:"etcd"`
	// Note is free text the run's operator adds (other load on the
	// machine, say); rendered under the table.
	Note string `json:"note,omitempty"`
}

// ControlResult is one setup's figures; a nil row did not complete.
type ControlResult struct {
	Setup    string           `json:"setup"`
	StartMs  float64          `json:"startMs"` // processes started → every API server ready, caches warm, nodes Ready
	Pods     *PodsResult      `json:"pods,omitempty"`
	Deploy   *DeployResult    `json:"deployment,omitempty"`
	Mutate   *MutateResult    `json:"mutate,omitempty"`
	Failover *ControlFailover `json:"failover,omitempty"`
	RSS      []ServerRSS      `json:"rss"`                // the three servers
	StoreRSS []ServerRSS      `json:"storeRss,omitempty"` // etcd mode: the three etcd members
	Errors   []string         `json:"errors,omitempty"`
}

// meanRSS is the mean resident memory of a server: for etcd mode its API
// server and controllers plus its etcd member, the same machine's share
// as one barge server's.
func (r ControlResult) meanRSS() float64 {
	mean := func(rs []ServerRSS) float64 {
		if len(rs) == 0 {
			return 0
		}
		var sum int64
		for _, x := range rs {
			sum += x.RSSBytes
		}
		return float64(sum) / float64(len(rs))
	}
	if len(r.RSS) == 0 {
		return 0
	}
	return mib(int64(mean(r.RSS) + mean(r.StoreRSS)))
}

// controlRow is one line of the control table: a figure of both setups
// and their ratio, barge over etcd mode.
type controlRow struct {
	metric      string
	barge, etcd float64 // 0: not measured
	format      string
	// higher: a larger figure is better (throughput); else smaller is.
	higher bool
}

func (r controlRow) ratio() float64 {
	if r.barge == 0 || r.etcd == 0 {
		return 0
	}
	return r.barge / r.etcd
}

// better says whether barge's figure beats etcd mode's, "" when either
// is missing.
func (r controlRow) better() string {
	q := r.ratio()
	switch {
	case q == 0:
		return ""
	case q == 1:
		return "even"
	case (q > 1) == r.higher:
		return "barge"
	}
	return "etcd mode"
}

func (r controlRow) cells() (string, string, string) {
	return figure(r.barge, r.format), figure(r.etcd, r.format), ratioCell(r.ratio())
}

// rows are the table's lines, in the order of the list.
func (r *ControlReport) rows() []controlRow {
	b, e := r.Barge, r.Etcd
	pods := func(c ControlResult, f func(PodsResult) float64) float64 {
		if c.Pods == nil {
			return 0
		}
		return f(*c.Pods)
	}
	dep := func(c ControlResult, f func(DeployResult) float64) float64 {
		if c.Deploy == nil {
			return 0
		}
		return f(*c.Deploy)
	}
	mut := func(c ControlResult, f func(MutateResult) float64) float64 {
		if c.Mutate == nil {
			return 0
		}
		return f(*c.Mutate)
	}
	fo := func(c ControlResult, f func(ControlFailover) float64) float64 {
		if c.Failover == nil || len(c.Failover.SamplesMs) == 0 {
			return 0
		}
		return f(*c.Failover)
	}
	return []controlRow{
		{fmt.Sprintf("%s pods created → all bound, pods/s", grouped(r.Pods)),
			pods(b, func(p PodsResult) float64 { return p.PodsPerSec }), pods(e, func(p PodsResult) float64 { return p.PodsPerSec }), "%.0f", true},
		{"create → bound p50, ms", pods(b, func(p PodsResult) float64 { return p.P50Ms }), pods(e, func(p PodsResult) float64 { return p.P50Ms }), "%.0f", false},
		{"create → bound p99, ms", pods(b, func(p PodsResult) float64 { return p.P99Ms }), pods(e, func(p PodsResult) float64 { return p.P99Ms }), "%.0f", false},
		{fmt.Sprintf("%s-replica Deployment → all Ready, s", grouped(r.Replicas)),
			dep(b, func(d DeployResult) float64 { return d.ReadyMs / 1000 }), dep(e, func(d DeployResult) float64 { return d.ReadyMs / 1000 }), "%.1f", false},
		{"rolling update → done, s", dep(b, func(d DeployResult) float64 { return d.RolloutMs / 1000 }), dep(e, func(d DeployResult) float64 { return d.RolloutMs / 1000 }), "%.1f", false},
		{fmt.Sprintf("mutating calls at %d/s, p50 ms", r.MutateRate), mut(b, func(m MutateResult) float64 { return m.P50Ms }), mut(e, func(m MutateResult) float64 { return m.P50Ms }), "%.1f", false},
		{fmt.Sprintf("mutating calls at %d/s, p99 ms", r.MutateRate), mut(b, func(m MutateResult) float64 { return m.P99Ms }), mut(e, func(m MutateResult) float64 { return m.P99Ms }), "%.1f", false},
		{"kill -9 of the active server → first pod bound, p50 ms", fo(b, func(f ControlFailover) float64 { return f.P50Ms }), fo(e, func(f ControlFailover) float64 { return f.P50Ms }), "%.0f", false},
		{"kill -9 of the active server → first pod bound, max ms", fo(b, func(f ControlFailover) float64 { return f.MaxMs }), fo(e, func(f ControlFailover) float64 { return f.MaxMs }), "%.0f", false},
		{"resident memory per server, MiB", b.meanRSS(), e.meanRSS(), "%.0f", false},
	}
}

// Goals of the issue, judged on a report.
const (
	goalThroughput = 1.5  // barge pods/s over etcd mode's, at least
	goalFailP50Ms  = 500  // barge failover p50, at most
	goalFailMaxMs  = 1000 // barge failover max, at most
)

// goals says, line by line, whether the run met each goal; a goal whose
// figures are missing is "not measured".
func (r *ControlReport) goals() []string {
	rows := r.rows()
	tput, p99 := rows[0], rows[2]
	var out []string
	switch {
	case tput.ratio() == 0 || p99.ratio() == 0:
		out = append(out, "throughput ≥ 1.5× etcd mode with p99 no worse: not measured")
	default:
		verdict := "met"
		if tput.ratio() < goalThroughput || p99.ratio() > 1 {
			verdict = "missed"
		}
		out = append(out, fmt.Sprintf("throughput ≥ 1.5× etcd mode with p99 no worse: %s (%.2f×, p99 %.2f×)", verdict, tput.ratio(), p99.ratio()))
	}
	f := r.Barge.Failover
	switch {
	case f == nil || len(f.SamplesMs) == 0:
		out = append(out, "failover p50 ≤ 500 ms and max ≤ 1 s: not measured")
	default:
		verdict := "met"
		if f.P50Ms > goalFailP50Ms || f.MaxMs > goalFailMaxMs || f.Failed > 0 {
			verdict = "missed"
		}
		out = append(out, fmt.Sprintf("failover p50 ≤ 500 ms and max ≤ 1 s: %s (p50 %.0f ms, max %.0f ms, %d of %d kills without a bound pod)", verdict, f.P50Ms, f.MaxMs, f.Failed, f.Kills))
	}
	return out
}

// phaseLines are the failover phases' medians of both setups.
func (r *ControlReport) phaseLines() []controlRow {
	p := func(c ControlResult, f func(FailoverPhases) float64) float64 {
		if c.Failover == nil {
			return 0
		}
		return f(c.Failover.PhasesP50)
	}
	line := func(metric string, f func(FailoverPhases) float64) controlRow {
		return controlRow{metric: metric, barge: p(r.Barge, f), etcd: p(r.Etcd, f), format: "%.0f"}
	}
	return []controlRow{
		line("new leader (barge: Raft leader's first commit; etcd mode: Lease won)", func(p FailoverPhases) float64 { return p.LeaderMs }),
		line("leader-only work started", func(p FailoverPhases) float64 { return p.StartedMs }),
		line("controllers built (beside the scheduler's start)", func(p FailoverPhases) float64 { return p.BuiltMs }),
		line("scheduler synced and running", func(p FailoverPhases) float64 { return p.SchedulerMs }),
		line("probe pod's create acknowledged", func(p FailoverPhases) float64 { return p.CreatedMs }),
		line("probe pod seen bound", func(p FailoverPhases) float64 { return p.BoundMs }),
	}
}

func (r *ControlReport) etcdName() string {
	v := r.Machine.EtcdVersion
	if v == "" {
		v = r.EtcdSystem
	}
	return "etcd " + v
}

// errorsLines lists what failed, per setup.
func (r *ControlReport) errorLines() []string {
	var out []string
	for _, c := range []ControlResult{r.Barge, r.Etcd} {
		for _, e := range c.Errors {
			out = append(out, c.Setup+": "+e)
		}
	}
	return out
}

// WriteControlTable prints the terminal table, the goals, the failover
// phases and the machine.
func WriteControlTable(w io.Writer, r *ControlReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "row\tbarge\tetcd mode (%s)\tbarge/etcd\t\n", r.etcdName())
	for _, row := range r.rows() {
		bv, ev, q := row.cells()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", row.metric, bv, ev, q)
	}
	fmt.Fprintln(tw, "failover phases, ms from the kill (medians)\t\t\t\t")
	for _, row := range r.phaseLines() {
		bv, ev, _ := row.cells()
		fmt.Fprintf(tw, "  %s\t%s\t%s\t\t\n", row.metric, bv, ev)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	for _, g := range r.goals() {
		fmt.Fprintln(w, "goal: "+g)
	}
	for _, e := range r.errorLines() {
		fmt.Fprintln(w, "error: "+e)
	}
	m := r.Machine
	_, err := fmt.Fprintf(w, "%d hollow nodes (%d pods each) per setup; machine: %s × %d, kernel %s, %s; run took %s\n",
		r.Nodes, r.MaxPods, m.CPUModel, m.CPUs, m.Kernel, m.GoVersion, r.Elapsed)
	return err
}

// Markers around the generated control plane section of
// docs/benchmarks.md. The section lives in the page's hand-written part,
// which the store section's rendering keeps (KeepHandWritten), and its
// own rendering replaces only what lies between these.
const (
	ControlBeginMarker = "<!-- Control plane: generated by `barge bench report --control` from docs/bench/control.json; edit outside these markers. -->"
	ControlEndMarker   = "<!-- End of the generated control plane section. -->"
)

// ControlMarkdown renders the "Control plane" section, markers included.
func ControlMarkdown(r *ControlReport) string {
	var b strings.Builder
	m := r.Machine
	b.WriteString(ControlBeginMarker + "\n\n## Control plane\n\n")
	fmt.Fprintf(&b, `The same upstream control plane (kube-apiserver, kube-scheduler and
kube-controller-manager's controllers from k8s.io/kubernetes, as `+"`barge server`"+`
runs them) in two setups, side by side in one run on one machine, each
three servers as real processes on loopback with %d hollow nodes (`+"`barge hollow`"+`,
one process per API server, %d pods a node):

- **barge**: three `+"`barge server`"+` peers, each its own store peer (Raft) and
  API server; the scheduler and controllers run on the Raft leader, fenced
  by term, started from caches kept warm on every server.
- **etcd mode**: three %s members and three `+"`barge server --etcd-servers`"+`
  processes (an API server on each), the scheduler and controllers under
  Kubernetes' Lease election (15 s / 10 s / 2 s, kube-controller-manager's
  defaults), warm on every server too.

Rows, in order (the setup that goes first alternates per row):

- **pods**: %s bare pods created by %d clients spread over the three API
  servers, no client-side rate limit; pods/s is pods over the first create
  sent → the last pod seen bound (an informer of the bench's), latency per
  pod from its create sent to it seen bound.
- **Deployment**: %s replicas created → every replica Ready and available;
  then a pod template change → the rollout complete (every replica
  updated, Ready and available, no old one left), polled every 100 ms.
- **mutating calls**: %d calls a second for %.0f s on a clock (open loop),
  spread over the API servers: ConfigMap creates and merge patches, half
  each; latency per call.
- **failover**: %d times, SIGKILL of the server whose scheduler and
  controllers are active (barge: the Raft leader; etcd mode: the Lease
  holder); right after it a probe pod is created through a survivor
  (retried, 1 s a try, until a survivor takes it) and the figure is the
  kill → the probe seen bound, the first pod the new leader binds. Before
  each kill a pod is bound (the active scheduler works), the killed server
  has restarted on its data dir, and every server's caches are warm again.
- **resident memory**: VmRSS of each server after the rows (before the
  kills), mean per server; for etcd mode a server is its API server plus
  its etcd member.

barge/etcd is barge's figure over etcd mode's: above 1 is better for barge
on pods/s, below 1 on every other line. The machine is shared: clients,
hollow nodes and both setups run on it%s.

Machine: %s × %d CPUs, Linux %s; %s.

| row | barge | etcd mode (%s) | barge/etcd |
|---|--:|--:|--:|
`, r.Nodes, r.MaxPods, r.etcdName(), grouped(r.Pods), podCreators, grouped(r.Replicas), r.MutateRate, r.MutateSeconds, r.Kills,
		noteSuffix(r.Note), m.CPUModel, m.CPUs, m.Kernel, m.GoVersion, r.etcdName())
	for _, row := range r.rows() {
		bv, ev, q := row.cells()
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", row.metric, bv, ev, q)
	}
	b.WriteString("\nGoals:\n\n")
	for _, g := range r.goals() {
		b.WriteString("- " + g + "\n")
	}
	b.WriteString("\nWhere the failover time goes: medians over the kills, ms from the kill, from the new leader's log (ms resolution) and the bench's clock.\n\n| phase | barge | etcd mode |\n|---|--:|--:|\n")
	for _, row := range r.phaseLines() {
		bv, ev, _ := row.cells()
		fmt.Fprintf(&b, "| %s | %s | %s |\n", row.metric, bv, ev)
	}
	if errs := r.errorLines(); len(errs) > 0 {
		b.WriteString("\nFailures in the run:\n\n")
		for _, e := range errs {
			b.WriteString("- " + e + "\n")
		}
	}
	fmt.Fprintf(&b, "\nRun %s, took %s. Every sample is in docs/bench/control.json. To reproduce:\n\n```sh\nbin/%s\nbin/barge bench report --control docs/bench/control.json --markdown docs/benchmarks.md\n```\n\n%s\n",
		r.Started.UTC().Format("2006-01-02"), r.Elapsed, strings.TrimPrefix(r.Command, "bin/"), ControlEndMarker)
	return b.String()
}

func noteSuffix(note string) string {
	if note == "" {
		return ""
	}
	return "; " + note
}

// WithControlSection returns page with its control plane section
// replaced by section, or, when it has none, with section appended to
// its hand-written part (which gains the hand-written marker if it had
// none, so that rendering the store section keeps it).
func WithControlSection(page, section string) string {
	section = strings.TrimRight(section, "\n") + "\n"
	begin := strings.Index(page, ControlBeginMarker)
	if begin >= 0 {
		if end := strings.Index(page[begin:], ControlEndMarker); end >= 0 {
			rest := page[begin+end+len(ControlEndMarker):]
			rest = strings.TrimPrefix(rest, "\n")
			return page[:begin] + section + rest
		}
	}
	page = strings.TrimRight(page, "\n")
	if !strings.Contains(page, HandWrittenMarker) {
		if page != "" {
			page += "\n\n"
		}
		page += HandWrittenMarker
	}
	return page + "\n\n" + section
}

// ReadControlReport loads a JSON report written by WriteControlJSON.
func ReadControlReport(path string) (*ControlReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read control report: %w", err)
	}
	var r ControlReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parse control report %s: %w", path, err)
	}
	return &r, nil
}

// WriteControlJSON writes the report, indented for diffs.
func WriteControlJSON(path string, r *ControlReport) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode control report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write control report: %w", err)
	}
	return nil
}
