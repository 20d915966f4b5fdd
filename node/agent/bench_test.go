package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/barge-dev/barge/node/agent"
	"github.com/barge-dev/barge/node/runtime"
	"github.com/barge-dev/barge/overlay/podnet"
)

// benchAgentEnv names the file of a benchAgent when the test binary is
// re-executed as a node agent (TestMain): the bench's agents are
// processes of their own, so their RSS and CPU time are theirs alone.
const benchAgentEnv = "BARGE_BENCH_AGENT"

func TestMain(m *testing.M) {
	if path := os.Getenv(benchAgentEnv); path != "" {
		os.Exit(runBenchAgent(path))
	}
	os.Exit(m.Run())
}

// benchAgent is what a re-executed agent process runs with.
type benchAgent struct {
	Name, Server, CAFile string
	CertPEM, KeyPEM      []byte
	Containerd, HostsDir string
	StateDir, HostNetns  string
	BackoffBase          time.Duration
}

func runBenchAgent(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var s benchAgent
	if err := json.Unmarshal(b, &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = agent.Run(ctx, agent.Config{
		NodeName: s.Name,
		Client: &rest.Config{Host: s.Server, QPS: 50, Burst: 100,
			TLSClientConfig: rest.TLSClientConfig{CAFile: s.CAFile, CertData: s.CertPEM, KeyData: s.KeyPEM}},
		NodeIP: "127.0.0.1",
		Runtime: runtime.Config{
			Address: s.Containerd, StateDir: s.StateDir, HostsDir: s.HostsDir, HostNetns: s.HostNetns,
		},
		Version:     "v1.37.2-barge-bench",
		BackoffBase: s.BackoffBase,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		return 1
	}
	return 0
}

// benchNode is an agent process of the bench.
type benchNode struct {
	name string
	cmd  *exec.Cmd
}

func (h *harness) startAgentProcess(t *testing.T, name string) *benchNode {
	t.Helper()
	stateDir := filepath.Join(h.dir, "nodes", name)
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	hostNS, err := podnet.CreateNetns(filepath.Join(h.dir, "hostns"), name)
	if err != nil {
		t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = podnet.DeleteNetns(hostNS) })
	cfg := h.api.UserConfig(0, "system:node:"+name, "system:nodes")
	spec := benchAgent{Name: name, Server: cfg.Host, CAFile: cfg.CAFile, CertPEM: cfg.CertData, KeyPEM: cfg.KeyData,
		Containerd: h.ctrd.Address, HostsDir: h.ctrd.HostsDir, StateDir: stateDir, HostNetns: hostNS, BackoffBase: 2 * time.Second}
	b, _ := json.Marshal(spec)
	path := filepath.Join(h.dir, name+".json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(h.dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchAgentEnv+"="+path)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	h.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if h.t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			h.t.Logf("agent %s log:\n%s", name, b)
		}
	})
	return &benchNode{name: name, cmd: cmd}
}

// procUsage is a process's resident memory and CPU time so far.
func procUsage(pid int) (rssKiB int64, cpu time.Duration, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			rssKiB, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which may hold spaces: utime and
	// stime are the 14th and 15th fields, in clock ticks (100 Hz).
	rest := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(rest[11], 10, 64)
	st, _ := strconv.ParseInt(rest[12], 10, 64)
	return rssKiB, time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// cpuByComponent is the CPU time (its own and its reaped children's, so
// runc's lands on its shim) of the processes a pod start involves: the
// test process (API server, store, the bench's client), the agents,
// containerd, and the shims of this harness's containerd.
func (h *harness) cpuByComponent(agents []int) map[string]time.Duration {
	out := map[string]time.Duration{}
	add := func(what string, pid int) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return // gone meanwhile
		}
		rest := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		var ticks int64
		for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			v, _ := strconv.ParseInt(rest[i], 10, 64)
			ticks += v
		}
		out[what] += time.Duration(ticks) * 10 * time.Millisecond
	}
	add("test process (API server, store)", os.Getpid())
	for _, pid := range agents {
		add("agents", pid)
	}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmdline), "\x00")
		switch {
		case len(args) > 0 && filepath.Base(args[0]) == "containerd" && strings.Contains(string(cmdline), h.ctrd.Dir):
			add("containerd", pid)
		case len(args) > 0 && filepath.Base(args[0]) == "containerd-shim-runc-v2" && strings.Contains(string(cmdline), h.ctrd.Address):
			add("shims and runc", pid)
		}
	}
	return out
}

// startupRun is the figures of one burst of pods.
type startupRun struct {
	Case     string  `json:"case"`
	Pods     int     `json:"pods"`
	Nodes    int     `json:"nodes"`
	P50Ms    float64 `json:"p50Ms"`
	P90Ms    float64 `json:"p90Ms"`
	P99Ms    float64 `json:"p99Ms"`
	MaxMs    float64 `json:"maxMs"`
	WallMs   float64 `json:"wallMs"`
	PodsPerS float64 `json:"podsPerSecond"`
}

type idleAgent struct {
	Node   string  `json:"node"`
	Pods   int     `json:"pods"`
	RSSMiB float64 `json:"rssMiB"`
	CPUPct float64 `json:"cpuPercent"` // of one core, over the window
	Window string  `json:"window"`
}

type podBench struct {
	Command string       `json:"command"`
	Started time.Time    `json:"started"`
	Machine string       `json:"machine"`
	Startup []startupRun `json:"startup"`
	Idle    []idleAgent  `json:"idle"`
	// BurstCPU is the CPU milliseconds each component spent on the
	// "image present" burst of 100 pods.
	BurstCPU map[string]float64 `json:"burstCPUMs"`
	Note     string             `json:"note"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// burst creates n busybox pods at once, bound round-robin to nodes, and
// returns each one's time from its create call to the watch showing it
// Running with its container started (what Kubernetes' pod startup SLI
// measures, less scheduling: the pods are bound by the test).
func (h *harness) burst(t *testing.T, ns string, nodes []string, n int) ([]time.Duration, time.Duration) {
	return h.burstFrom(t, ns, nodes, n, 0)
}

// burstFrom is burst naming its pods from first on (names stay unique
// while deleted pods are still going).
func (h *harness) burstFrom(t *testing.T, ns string, nodes []string, n, first int) ([]time.Duration, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pods := h.admin.CoreV1().Pods(ns)
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var mu sync.Mutex
	created := map[string]time.Time{}
	start := time.Now()
	work := make(chan int)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for i := range work {
				p := h.pod(fmt.Sprintf("p%04d", i), nodes[(i-first)%len(nodes)], "exec sleep 3600")
				p.Namespace = ns
				p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
				mu.Lock()
				created[p.Name] = time.Now()
				mu.Unlock()
				if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
					errc <- err
				}
			}
		})
	}
	go func() {
		for i := range n {
			work <- first + i
		}
		close(work)
	}()
	seen := map[string]time.Duration{}
	for len(seen) < n {
		select {
		case err := <-errc:
			t.Fatal(err)
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch ended with %d of %d pods running", len(seen), n)
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod || !running(p) {
				continue
			}
			if _, done := seen[p.Name]; done {
				continue
			}
			at := time.Now()
			mu.Lock()
			c := created[p.Name]
			mu.Unlock()
			seen[p.Name] = at.Sub(c)
		}
	}
	wall := time.Since(start)
	wg.Wait()
	var lat []time.Duration
	for _, d := range seen {
		lat = append(lat, d)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, wall
}

func pct(lat []time.Duration, q float64) time.Duration {
	return lat[int(q*float64(len(lat)-1)+0.5)]
}

// clearPods deletes every pod of ns and waits until the nodes' containerd
// namespaces hold no container, so an image deleted next really goes.
func (h *harness) clearPods(t *testing.T, ns string, nodes []string) {
	t.Helper()
	ctx := context.Background()
	if err := h.admin.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	c := h.ctrd.Client(t, "default")
	h.eventually(t, "pods and their containers gone", func() (bool, string) {
		l, err := h.admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) > 0 {
			return false, fmt.Sprintf("%d pods left, %v", len(l.Items), err)
		}
		for _, n := range nodes {
			cs, err := c.Containers(namespaces.WithNamespace(ctx, n))
			if err != nil || len(cs) > 0 {
				return false, fmt.Sprintf("node %s: %d containers left, %v", n, len(cs), err)
			}
		}
		return true, ""
	})
}

// TestPodStartupBench measures pod startup on 3 agents (processes of
// their own on one containerd): 100 pods created at once with the image
// on the nodes, then 100 with the image removed from them first (each
// node pulls it once, its other pods wait for that pull), then the RSS
// and CPU of an agent running 50 idle pods beside two with none. It
// takes minutes, so it runs only with BARGE_POD_STARTUP_BENCH=1; figures
// go to the log and docs/bench/pods.json (BARGE_POD_STARTUP_BENCH_JSON
// overrides the path), never asserted.
func TestPodStartupBench(t *testing.T) {
	if os.Getenv("BARGE_POD_STARTUP_BENCH") != "1" {
		t.Skip("set BARGE_POD_STARTUP_BENCH=1 to measure pod startup")
	}
	h := newHarness(t)
	nodes := []string{"b1", "b2", "b3"}
	procs := map[string]*benchNode{}
	for _, n := range nodes {
		procs[n] = h.startAgentProcess(t, n)
	}
	h.eventually(t, "bench nodes registered with pod CIDRs", func() (bool, string) {
		for _, n := range nodes {
			node, err := h.admin.CoreV1().Nodes().Get(context.Background(), n, metav1.GetOptions{})
			if err != nil || node.Spec.PodCIDR == "" {
				return false, n + ": " + errString(err)
			}
		}
		return true, ""
	})
	res := podBench{Command: "BARGE_POD_STARTUP_BENCH=1 go test -count=1 -run '^TestPodStartupBench$' -v ./node/agent/", Started: time.Now().UTC(), Machine: machine()}
	ns := h.namespace(t)
	record := func(name string, lat []time.Duration, wall time.Duration) {
		r := startupRun{Case: name, Pods: len(lat), Nodes: len(nodes), P50Ms: ms(pct(lat, 0.5)), P90Ms: ms(pct(lat, 0.9)), P99Ms: ms(pct(lat, 0.99)),
			MaxMs: ms(lat[len(lat)-1]), WallMs: ms(wall), PodsPerS: float64(len(lat)) / wall.Seconds()}
		res.Startup = append(res.Startup, r)
		t.Logf("%-22s pods=%d nodes=%d create→Running p50=%v p90=%v p99=%v max=%v; all running after %v (%.1f pods/s)", name, r.Pods, r.Nodes,
			pct(lat, 0.5).Round(time.Millisecond), pct(lat, 0.9).Round(time.Millisecond), pct(lat, 0.99).Round(time.Millisecond),
			lat[len(lat)-1].Round(time.Millisecond), wall.Round(time.Millisecond), r.PodsPerS)
	}

	// Warm the nodes: one pod each pulls the image.
	lat, wall := h.burst(t, ns, nodes, len(nodes))
	record("image pull, 1 per node", lat, wall)
	h.clearPods(t, ns, nodes)

	// One pod at a time: the latency of a pod alone, without queueing.
	var alone []time.Duration
	start := time.Now()
	for i := range 20 {
		l, _ := h.burstFrom(t, ns, []string{nodes[i%len(nodes)]}, 1, 1000+i)
		alone = append(alone, l...)
		h.clearPods(t, ns, nodes)
	}
	sort.Slice(alone, func(i, j int) bool { return alone[i] < alone[j] })
	record("image present, 1 at a time", alone, time.Since(start))

	var agentPIDs []int
	for _, n := range nodes {
		agentPIDs = append(agentPIDs, procs[n].cmd.Process.Pid)
	}
	cpu0 := h.cpuByComponent(agentPIDs)
	lat, wall = h.burst(t, ns, nodes, 100)
	cpu1 := h.cpuByComponent(agentPIDs)
	record("image present", lat, wall)
	// Shims started during the burst count from zero; the ones of the
	// warm-up are gone.
	res.BurstCPU = map[string]float64{}
	var total time.Duration
	for what, c := range cpu1 {
		d := c - cpu0[what]
		total += d
		res.BurstCPU[what] = ms(d)
		t.Logf("burst of 100: CPU of %-34s %v (%.0f ms a pod)", what, d.Round(time.Millisecond), ms(d)/100)
	}
	t.Logf("burst of 100: CPU %v over %v of wall time on %d CPUs (%.0f%% of the machine)", total.Round(time.Millisecond), wall.Round(time.Millisecond),
		goruntime.NumCPU(), 100*total.Seconds()/wall.Seconds()/float64(goruntime.NumCPU()))
	h.clearPods(t, ns, nodes)

	// Remove the image from every node (content and snapshots go with
	// it: no container uses them any more).
	c, err := containerd.New(h.ctrd.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, n := range nodes {
		ctx := namespaces.WithNamespace(context.Background(), n)
		if err := c.ImageService().Delete(ctx, h.busybox, images.SynchronousDelete()); err != nil {
			t.Fatalf("delete the image on %s: %v", n, err)
		}
	}
	lat, wall = h.burst(t, ns, nodes, 100)
	record("image pulled", lat, wall)
	h.clearPods(t, ns, nodes)

	// 50 idle pods on one agent; the other two run none.
	one := []string{nodes[0]}
	h.burst(t, ns, one, 50)
	const window = 60 * time.Second
	before := map[string]time.Duration{}
	for _, n := range nodes {
		_, cpu, err := procUsage(procs[n].cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		before[n] = cpu
	}
	time.Sleep(window) // the measurement window itself, not a synchronisation
	for i, n := range nodes {
		rss, cpu, err := procUsage(procs[n].cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		pods := 0
		if i == 0 {
			pods = 50
		}
		a := idleAgent{Node: n, Pods: pods, RSSMiB: float64(rss) / 1024, CPUPct: 100 * (cpu - before[n]).Seconds() / window.Seconds(), Window: window.String()}
		res.Idle = append(res.Idle, a)
		t.Logf("agent %s with %d idle pods: RSS %.1f MiB, CPU %.2f%% of a core over %v", n, pods, a.RSSMiB, a.CPUPct, window)
	}
	res.Note = os.Getenv("BARGE_BENCH_NOTE")
	out := os.Getenv("BARGE_POD_STARTUP_BENCH_JSON")
	if out == "" {
		out = filepath.Join("..", "..", "docs", "bench", "pods.json")
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", out)
}

func machine() string {
	var model string
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	var load string
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("%s, %d CPUs, load average at start %s", model, goruntime.NumCPU(), load)
}
