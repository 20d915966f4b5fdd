package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/barge-dev/barge/overlay"
	"github.com/barge-dev/barge/overlay/podnet"
	"github.com/barge-dev/barge/overlay/vxlan"
)

// NetModes are the overlays `barge bench net` measures by default.
var NetModes = []string{"vxlan", "ipip-userspace"}

// NetConfig configures a network benchmark run.
type NetConfig struct {
	// Barge is the barge binary, re-executed inside each host's
	// namespace as that host's agent (`barge bench net agent`).
	Barge string
	Modes []string
	// Duration of each iperf3 run (after one omitted warm-up second).
	Duration time.Duration
	// RRDuration of each request/response run.
	RRDuration time.Duration
	// RRSize is the request and response size in bytes.
	RRSize int
	// Rounds is how many times each path is measured, paths taking
	// turns; rows report medians.
	Rounds int
	// Dir receives the agents' logs.
	Dir string
	// ProfileDir, when set, receives a CPU profile of each agent.
	ProfileDir string
	// PerPacketRow adds a host-to-host row with the underlay's offloads
	// off: the ceiling of a tunnel whose packets cannot be segmented by
	// the kernel (the userspace IPIP tunnel's).
	PerPacketRow bool
	Logger       *slog.Logger
}

// NetReport is the result of `barge bench net`.
type NetReport struct {
	Machine        Machine            `json:"machine"`
	IPerf3         string             `json:"iperf3"`
	Started        time.Time          `json:"started"`
	DurationS      float64            `json:"durationSeconds"`
	RRDurationS    float64            `json:"rrDurationSeconds"`
	RRSize         int                `json:"rrSize"`
	Rounds         int                `json:"rounds"`
	UnderlayMTU    int                `json:"underlayMTU"`
	Rows           []NetRow           `json:"rows"`
	CPUNote        string             `json:"cpuNote"`
	TopologyNote   string             `json:"topologyNote"`
	ThroughputGoal map[string]float64 `json:"throughputGoal"`
	// LoadStart and LoadEnd are /proc/loadavg when the run began and
	// ended: figures from a machine busy with other work are not
	// comparable with those of an idle one.
	LoadStart   string  `json:"loadStart"`
	LoadEnd     string  `json:"loadEnd"`
	LatencyGoal float64 `json:"latencyGoal"`
}

// NetRow is one path measured: host to host over the underlay, or pod to
// pod over an overlay, in the topology of one mode.
type NetRow struct {
	Mode        string  `json:"mode"` // the overlay of the topology
	Path        string  `json:"path"` // "host-to-host" (underlay) or "pod-to-pod"
	MTU         int     `json:"mtu"`
	Gbps        float64 `json:"gbps"`
	Retransmits int     `json:"retransmits"`
	// Rounds holds each round's throughput; Gbps is their median.
	Rounds []float64 `json:"roundsGbps"`
	// CPUCores is the CPU the run's processes used (iperf3 client and
	// server, both agents) over the run, in cores; CPUPerGbps is the
	// same in core-seconds per gigabit moved.
	CPUCores   float64 `json:"cpuCores"`
	CPUPerGbps float64 `json:"cpuPerGbps"`
	// Request/response: one RRSize-byte request, one RRSize-byte answer,
	// one connection, back to back.
	RRPerSec float64 `json:"rrPerSec"`
	RRP50Us  float64 `json:"rrP50Us"`
	RRP99Us  float64 `json:"rrP99Us"`
	// Ratios against the host-to-host row of the same topology.
	ThroughputRatio float64 `json:"throughputRatio,omitempty"`
	LatencyP50Ratio float64 `json:"latencyP50Ratio,omitempty"`
	LatencyP99Ratio float64 `json:"latencyP99Ratio,omitempty"`
	// ThroughputRatioPerPacket compares a pod-to-pod row with the
	// host-to-host row without offloads of the same topology.
	ThroughputRatioPerPacket float64 `json:"throughputRatioPerPacket,omitempty"`
}

// RunNet measures each mode: it builds two hosts on an underlay bridge
// (network namespaces), starts an agent in each with one pod, and runs
// iperf3 and the request/response test host to host and then pod to pod,
// so every ratio compares paths measured minutes apart on the same
// machine. Everything is removed at the end, on error too.
func RunNet(ctx context.Context, cfg NetConfig) (*NetReport, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("bench net: needs root (network namespaces)")
	}
	iperf, err := exec.LookPath("iperf3")
	if err != nil {
		return nil, errors.New("bench net: iperf3 not found (apt-get install -y iperf3)")
	}
	if len(cfg.Modes) == 0 {
		cfg.Modes = NetModes
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.RRDuration <= 0 {
		cfg.RRDuration = 5 * time.Second
	}
	if cfg.RRSize <= 0 {
		cfg.RRSize = 64
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ver, _ := exec.CommandContext(ctx, iperf, "--version").Output()
	rep := &NetReport{
		Machine:     netMachine(),
		IPerf3:      firstLine(string(ver)),
		Started:     time.Now().UTC(),
		DurationS:   cfg.Duration.Seconds(),
		RRDurationS: cfg.RRDuration.Seconds(),
		RRSize:      cfg.RRSize,
		UnderlayMTU: 1500,
		Rounds:      cfg.Rounds,
		CPUNote: "CPU is what the run's processes used (iperf3 client and server, both agents; user and system time, " +
			"which holds most of the kernel's forwarding work, though not what ksoftirqd does), in cores; " +
			"per Gbit it is core-seconds per gigabit moved. Each row is the median of its rounds, host and pod runs taking turns.",
		TopologyNote: "two hosts (network namespaces) on one Linux bridge, joined by veth pairs with MTU 1500; " +
			"pods on a node bridge behind a veth pair each; each mode builds its own topology and measures " +
			"host-to-host there first",
		LoadStart:      loadavg(),
		ThroughputGoal: map[string]float64{"vxlan": 0.9, "vxlan-txcsum-off": 0.9, "ipip-userspace": 0.5, "ipip": 0.5},
		LatencyGoal:    1.2,
	}
	for _, mode := range cfg.Modes {
		rows, err := runNetMode(ctx, cfg, iperf, mode)
		if err != nil {
			return rep, fmt.Errorf("bench net: %s: %w", mode, err)
		}
		rep.Rows = append(rep.Rows, rows...)
	}
	rep.LoadEnd = loadavg()
	return rep, nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

type netAgent struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	ready NetAgentReady
	done  chan error
}

func runNetMode(ctx context.Context, cfg NetConfig, iperf, mode string) (_ []NetRow, err error) {
	log := cfg.Logger.With("mode", mode)
	topo, err := newNetTopo(2)
	if err != nil {
		return nil, err
	}
	var agents []*netAgent
	defer func() {
		for _, a := range agents {
			a.stop()
		}
		if rerr := topo.remove(); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	dir := cfg.Dir
	if dir == "" {
		dir = os.TempDir()
	}
	var peers []overlay.Peer
	locals := make([]overlay.LocalNode, len(topo.hosts))
	for i, h := range topo.hosts {
		locals[i] = overlay.LocalNode{Name: h.name, UnderlayIP: h.addr, PodCIDR: netip.MustParsePrefix(fmt.Sprintf("10.244.%d.0/24", i+1))}
		peers = append(peers, overlay.Peer{Name: h.name, UnderlayIP: h.addr, PodCIDR: locals[i].PodCIDR, VTEPMAC: vxlan.VTEPMAC(h.name)})
	}
	for i, h := range topo.hosts {
		podNS, err := podnet.CreateNetns("", topo.prefix+h.name+"-pod")
		if err != nil {
			return nil, err
		}
		var others []overlay.Peer
		for j, p := range peers {
			if j != i {
				others = append(others, p)
			}
		}
		spec := NetAgentSpec{
			Mode: mode, Local: locals[i], Peers: others, ClusterCIDR: overlay.DefaultClusterCIDR,
			StateDir: filepath.Join(dir, topo.prefix+h.name+"-state"), PodID: "bench-" + h.name, PodNetns: podNS,
		}
		if cfg.ProfileDir != "" {
			spec.CPUProfile = filepath.Join(cfg.ProfileDir, mode+"-"+h.name+".pprof")
		}
		defer os.RemoveAll(spec.StateDir)
		a, err := startNetAgent(ctx, cfg.Barge, h, spec, filepath.Join(dir, topo.prefix+h.name+".log"))
		if err != nil {
			return nil, err
		}
		agents = append(agents, a)
	}
	log.Info("topology up", "hosts", len(topo.hosts), "mtu", agents[0].ready.Attrs.MTU)

	h1, h2 := topo.hosts[0], topo.hosts[1]
	p1, p2 := agents[0].ready.Pod, agents[1].ready.Pod
	hostPath := netPath{from: h1.netns, to: h2.netns, addr: h2.addr}
	podPath := netPath{from: p1.Netns, to: p2.Netns, addr: p2.IP.Addr()}
	var pids []int
	for _, a := range agents {
		pids = append(pids, a.cmd.Process.Pid)
	}
	// Host and pod runs alternate, round after round, so that load from
	// elsewhere on the machine falls on both alike; each row is the
	// median of its rounds.
	rows, err := measurePaths(ctx, cfg, iperf, pids, hostPath, podPath)
	if err != nil {
		return nil, err
	}
	under, pod := rows[0], rows[1]
	under.Mode, under.Path, under.MTU = mode, "host-to-host", 1500
	pod.Mode, pod.Path, pod.MTU = mode, "pod-to-pod", agents[0].ready.Attrs.MTU
	ratios(&pod, under)
	log.Info("host to host", "gbps", under.Gbps, "rrP50us", under.RRP50Us)
	log.Info("pod to pod", "gbps", pod.Gbps, "rrP50us", pod.RRP50Us)
	out := []NetRow{under, pod}
	if cfg.PerPacketRow {
		// The userspace tunnel's outer packets cannot use segmentation
		// offload, so its ceiling is the underlay moving one MTU-sized
		// packet at a time: measured by turning the offloads off.
		if err := underlayOffloads(ctx, topo, false); err != nil {
			return nil, err
		}
		pp, err := measurePaths(ctx, cfg, iperf, pids, hostPath)
		if err != nil {
			return nil, fmt.Errorf("host to host without offloads: %w", err)
		}
		row := pp[0]
		row.Mode, row.Path, row.MTU = mode, "host-to-host-no-offloads", 1500
		ratios(&row, under)
		out[1].ThroughputRatioPerPacket = Ratio(pod.Gbps, row.Gbps)
		out = append(out, row)
	}
	return out, nil
}

func ratios(row *NetRow, base NetRow) {
	row.ThroughputRatio = Ratio(row.Gbps, base.Gbps)
	row.LatencyP50Ratio = Ratio(row.RRP50Us, base.RRP50Us)
	row.LatencyP99Ratio = Ratio(row.RRP99Us, base.RRP99Us)
}

type netPath struct {
	from, to string // namespaces
	addr     netip.Addr
}

// measurePaths measures each path cfg.Rounds times, the paths taking
// turns, and returns one row per path: median throughput and CPU, and
// request/response latency over all rounds' samples.
func measurePaths(ctx context.Context, cfg NetConfig, iperf string, pids []int, paths ...netPath) ([]NetRow, error) {
	rows := make([]NetRow, len(paths))
	gbps := make([][]float64, len(paths))
	cpu := make([][]float64, len(paths))
	retrans := make([]int, len(paths))
	rr := make([][]time.Duration, len(paths))
	rrCount := make([]int, len(paths))
	for range cfg.Rounds {
		for i, p := range paths {
			res, err := runIperf(ctx, iperf, p.from, p.to, p.addr, cfg.Duration, pids)
			if err != nil {
				return nil, err
			}
			gbps[i] = append(gbps[i], res.gbps)
			cpu[i] = append(cpu[i], res.cpuSeconds)
			retrans[i] += res.retransmits
		}
		for i, p := range paths {
			samples, err := runRR(ctx, p.from, p.to, p.addr, cfg.RRDuration/time.Duration(cfg.Rounds), cfg.RRSize)
			if err != nil {
				return nil, err
			}
			rr[i] = append(rr[i], samples...)
			rrCount[i] += len(samples)
		}
	}
	for i := range paths {
		r := &rows[i]
		r.Gbps = median(gbps[i])
		r.Rounds = gbps[i]
		r.Retransmits = retrans[i]
		secs := median(cpu[i])
		r.CPUCores = secs / cfg.Duration.Seconds()
		if r.Gbps > 0 {
			r.CPUPerGbps = secs / (r.Gbps * cfg.Duration.Seconds())
		}
		l := Summarize(rr[i])
		r.RRPerSec = float64(rrCount[i]) / cfg.RRDuration.Seconds()
		r.RRP50Us = float64(l.P50) / float64(time.Microsecond)
		r.RRP99Us = float64(l.P99) / float64(time.Microsecond)
	}
	return rows, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// underlayOffloads turns segmentation and receive offloads of every
// underlay veth (both ends) on or off, with the ethtool command.
func underlayOffloads(ctx context.Context, topo *netTopo, on bool) error {
	ethtool, err := exec.LookPath("ethtool")
	if err != nil {
		return errors.New("the no-offload row needs ethtool (apt-get install -y ethtool)")
	}
	state := map[bool]string{true: "on", false: "off"}[on]
	run := func(ns, dev string) error {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, ethtool, "-K", dev, "tso", state, "gso", state, "gro", state)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := startInNetns(ns, cmd); err != nil {
			return err
		}
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("ethtool -K %s: %w: %s", dev, err, out.String())
		}
		return nil
	}
	for _, h := range topo.hosts {
		if err := run(h.netns, "eth0"); err != nil {
			return err
		}
		if err := run(topo.underlay, h.name); err != nil {
			return err
		}
	}
	return nil
}

func startNetAgent(ctx context.Context, barge string, h netHost, spec NetAgentSpec, logPath string) (*netAgent, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(barge, "bench", "net", "agent", "--spec", string(b))
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := startInNetns(h.netns, cmd); err != nil {
		return nil, fmt.Errorf("start agent on %s: %w", h.name, err)
	}
	a := &netAgent{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	line := make(chan []byte, 1)
	go func() {
		r := bufio.NewReader(stdout)
		l, _ := r.ReadBytes('\n')
		line <- l
		_, _ = io.Copy(io.Discard, r)
		a.done <- cmd.Wait()
	}()
	select {
	case l := <-line:
		if err := json.Unmarshal(l, &a.ready); err != nil {
			a.stop()
			return nil, fmt.Errorf("agent on %s did not come up (log %s): %s", h.name, logPath, tail(logPath))
		}
	case <-ctx.Done():
		a.stop()
		return nil, ctx.Err()
	}
	return a, nil
}

func (a *netAgent) stop() {
	a.stdin.Close()
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(b)
}

type iperfResult struct {
	gbps        float64
	retransmits int
	// cpuSeconds is the CPU the run's processes used: the iperf3 client
	// and server and both agents, user and system time (the kernel's
	// forwarding work mostly runs in their system calls).
	cpuSeconds float64
}

const iperfPort = 5201

func runIperf(ctx context.Context, iperf, from, to string, addr netip.Addr, d time.Duration, agents []int) (res iperfResult, err error) {
	srv := exec.CommandContext(ctx, iperf, "-s", "-1", "--forceflush", "-B", addr.String(), "-p", strconv.Itoa(iperfPort))
	out, err := srv.StdoutPipe()
	if err != nil {
		return iperfResult{}, err
	}
	srv.Stderr = os.Stderr
	if err := startInNetns(to, srv); err != nil {
		return iperfResult{}, fmt.Errorf("iperf3 server: %w", err)
	}
	srvDone := false
	defer func() {
		if !srvDone {
			_ = srv.Process.Kill()
			_ = srv.Wait()
		}
	}()
	// The server says when it listens; the client starts then, not after
	// a guessed delay.
	r := bufio.NewReader(out)
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return iperfResult{}, fmt.Errorf("iperf3 server exited before listening: %w", err)
		}
		if strings.Contains(l, "Server listening") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, r) }()
	var stdout, stderr bytes.Buffer
	cli := exec.CommandContext(ctx, iperf, "-c", addr.String(), "-p", strconv.Itoa(iperfPort),
		"-t", strconv.Itoa(int(d.Seconds())), "-O", "1", "-J")
	cli.Stdout, cli.Stderr = &stdout, &stderr
	before, err := pidsCPU(agents)
	if err != nil {
		return iperfResult{}, err
	}
	if err := startInNetns(from, cli); err != nil {
		return iperfResult{}, fmt.Errorf("iperf3 client: %w", err)
	}
	werr := cli.Wait()
	after, err := pidsCPU(agents)
	if err != nil {
		return iperfResult{}, err
	}
	if werr != nil {
		return iperfResult{}, fmt.Errorf("iperf3 client: %w: %s%s", werr, stderr.String(), firstLine(stdout.String()))
	}
	// The one-off server exits after its client; its CPU is known then.
	serr := srv.Wait()
	srvDone = true
	if serr != nil {
		return iperfResult{}, fmt.Errorf("iperf3 server: %w", serr)
	}
	res, err = parseIperf(stdout.Bytes())
	if err != nil {
		return iperfResult{}, err
	}
	used := after - before + cli.ProcessState.UserTime() + cli.ProcessState.SystemTime() +
		srv.ProcessState.UserTime() + srv.ProcessState.SystemTime()
	res.cpuSeconds = used.Seconds()
	return res, nil
}

// parseIperf reads the throughput the receiver saw and the sender's
// retransmits from iperf3's JSON.
func parseIperf(b []byte) (iperfResult, error) {
	var doc struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
		} `json:"end"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return iperfResult{}, fmt.Errorf("iperf3 JSON: %w", err)
	}
	if doc.Error != "" {
		return iperfResult{}, fmt.Errorf("iperf3: %s", doc.Error)
	}
	if doc.End.SumReceived.BitsPerSecond <= 0 {
		return iperfResult{}, errors.New("iperf3 JSON: no received throughput")
	}
	return iperfResult{gbps: doc.End.SumReceived.BitsPerSecond / 1e9, retransmits: doc.End.SumSent.Retransmits}, nil
}

// pidsCPU is the CPU time the processes have used so far.
func pidsCPU(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
		}
		d, err := parseStatCPU(string(stat))
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total, nil
}

// runRR is a netperf TCP_RR: one connection, size bytes each way, back
// to back, for d.
func runRR(ctx context.Context, from, to string, addr netip.Addr, d time.Duration, size int) ([]time.Duration, error) {
	var ln net.Listener
	err := inNetns(to, func() error {
		var err error
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(addr, 0).String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rr server: %w", err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	var c net.Conn
	err = inNetns(from, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", ln.Addr().String(), 10*time.Second)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rr client: %w", err)
	}
	defer c.Close()
	req := bytes.Repeat([]byte{'r'}, size)
	resp := make([]byte, size)
	samples := make([]time.Duration, 0, 1<<16)
	end := time.Now().Add(d)
	_ = c.SetDeadline(end.Add(10 * time.Second))
	for time.Now().Before(end) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if _, err := c.Write(req); err != nil {
			return nil, fmt.Errorf("rr: %w", err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			return nil, fmt.Errorf("rr: %w", err)
		}
		samples = append(samples, time.Since(t0))
	}
	return samples, nil
}

// Markdown renders the report as the table docs/benchmarks.md carries.
func (r *NetReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Pod network, `barge bench net` (%s, %d CPUs, kernel %s, %s; iperf3 %gs × %d rounds per row, request/response %d bytes for %gs per row):\n\n",
		r.Machine.CPUModel, r.Machine.CPUs, r.Machine.Kernel, r.IPerf3, r.DurationS, r.Rounds, r.RRSize, r.RRDurationS)
	b.WriteString("| topology | path | MTU | Gbit/s | × host | goal | CPU cores | CPU s/Gbit | RR/s | RR p50 µs | RR p99 µs | p50 × host | p99 × host |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range r.Rows {
		ratio, goal, p50r, p99r := "", "", "", ""
		if row.Path != "host-to-host" {
			ratio = fmt.Sprintf("%.2f", row.ThroughputRatio)
			p50r = fmt.Sprintf("%.2f", row.LatencyP50Ratio)
			p99r = fmt.Sprintf("%.2f", row.LatencyP99Ratio)
		}
		if row.Path == "pod-to-pod" {
			goal = fmt.Sprintf("≥ %.1f, p50 ≤ %.1f", r.ThroughputGoal[row.Mode], r.LatencyGoal)
			if row.ThroughputRatioPerPacket > 0 {
				ratio += fmt.Sprintf(" (%.2f × no-offload host)", row.ThroughputRatioPerPacket)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.2f | %s | %s | %.2f | %.3f | %.0f | %.0f | %.0f | %s | %s |\n",
			row.Mode, row.Path, row.MTU, row.Gbps, ratio, goal, row.CPUCores, row.CPUPerGbps, row.RRPerSec, row.RRP50Us, row.RRP99Us, p50r, p99r)
	}
	fmt.Fprintf(&b, "\n%s Topology: %s. Load average at start %s, at end %s (%d CPUs).\n", r.CPUNote, r.TopologyNote, r.LoadStart, r.LoadEnd, r.Machine.CPUs)
	return b.String()
}

// netMachine is the part of Machine a network run needs: no disk, no
// etcd.
func netMachine() Machine {
	m := Machine{GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel, m.CPUs = parseCPUInfo(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}
