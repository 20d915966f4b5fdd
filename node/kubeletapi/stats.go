package kubeletapi

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	cgroupsv1 "github.com/containerd/cgroups/stats/v1"
	cgroupsv2 "github.com/containerd/cgroups/v2/stats"
	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// runningCtr is a pod container whose task runs.
type runningCtr struct {
	ctrInfo
	task    containerd.Task
	created time.Time
}

// cpuSample is a container's cumulative CPU time at a moment, kept from
// one summary to the next for the rate (usageNanoCores).
type cpuSample struct {
	at    time.Time
	total uint64
}

// statsSummary serves the kubelet's /stats/summary: node CPU, memory and
// filesystem from the kernel, and per pod and container CPU and memory
// from containerd's task metrics (the cgroup's counters).
func (s *Server) statsSummary(w http.ResponseWriter, r *http.Request) {
	sum, err := s.summary(r.Context())
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	writeJSON(w, sum)
}

func (s *Server) summary(ctx context.Context) (*statsapi.Summary, error) {
	now := time.Now()
	node := statsapi.NodeStats{NodeName: s.cfg.NodeName, StartTime: metav1.NewTime(bootTime())}
	if cpu, err := nodeCPU(now); err == nil {
		node.CPU = s.withRate("node", cpu)
	}
	if mem, err := nodeMemory(now); err == nil {
		node.Memory = mem
	}
	if fs, err := fsStats("/", now); err == nil {
		node.Fs = fs
	}
	running, err := s.runningContainers(ctx)
	if err != nil {
		return nil, err
	}
	type podAcc struct {
		stats statsapi.PodStats
	}
	pods := map[string]*podAcc{}
	var order []string
	seen := map[string]bool{}
	for _, c := range running {
		p := pods[c.podUID]
		if p == nil {
			p = &podAcc{stats: statsapi.PodStats{
				PodRef:     statsapi.PodReference{Name: c.podName, Namespace: c.podNamespace, UID: c.podUID},
				StartTime:  metav1.NewTime(c.created),
				Containers: []statsapi.ContainerStats{},
			}}
			pods[c.podUID] = p
			order = append(order, c.podUID)
		}
		if c.created.Before(p.stats.StartTime.Time) {
			p.stats.StartTime = metav1.NewTime(c.created)
		}
		cpu, mem, err := s.taskStats(ctx, c)
		if err != nil {
			s.log.Debug("container metrics", "container", c.id, "err", err)
		}
		addPod(&p.stats, cpu, mem, now)
		if c.kind == KindSandbox {
			continue
		}
		seen[c.id] = true
		p.stats.Containers = append(p.stats.Containers, statsapi.ContainerStats{
			Name: c.name, StartTime: metav1.NewTime(c.created), CPU: cpu, Memory: mem,
		})
	}
	s.forget(seen)
	sort.Strings(order)
	sum := &statsapi.Summary{Node: node, Pods: []statsapi.PodStats{}}
	for _, uid := range order {
		sum.Pods = append(sum.Pods, pods[uid].stats)
	}
	return sum, nil
}

// addPod adds a container's figures to its pod's.
func addPod(p *statsapi.PodStats, cpu *statsapi.CPUStats, mem *statsapi.MemoryStats, now time.Time) {
	add := func(dst **uint64, v *uint64) {
		if v == nil {
			return
		}
		if *dst == nil {
			*dst = new(uint64)
		}
		**dst += *v
	}
	if cpu != nil {
		if p.CPU == nil {
			p.CPU = &statsapi.CPUStats{Time: metav1.NewTime(now)}
		}
		add(&p.CPU.UsageCoreNanoSeconds, cpu.UsageCoreNanoSeconds)
		add(&p.CPU.UsageNanoCores, cpu.UsageNanoCores)
	}
	if mem != nil {
		if p.Memory == nil {
			p.Memory = &statsapi.MemoryStats{Time: metav1.NewTime(now)}
		}
		add(&p.Memory.UsageBytes, mem.UsageBytes)
		add(&p.Memory.WorkingSetBytes, mem.WorkingSetBytes)
		add(&p.Memory.RSSBytes, mem.RSSBytes)
		add(&p.Memory.PageFaults, mem.PageFaults)
		add(&p.Memory.MajorPageFaults, mem.MajorPageFaults)
	}
}

// taskStats reads a task's cgroup counters through containerd.
func (s *Server) taskStats(ctx context.Context, c runningCtr) (*statsapi.CPUStats, *statsapi.MemoryStats, error) {
	ctx = namespaces.WithNamespace(ctx, s.cfg.Namespace)
	m, err := c.task.Metrics(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics of %s: %w", c.id, err)
	}
	if m.Data == nil {
		return nil, nil, fmt.Errorf("metrics of %s: empty", c.id)
	}
	at := time.Now()
	if m.Timestamp != nil {
		at = m.Timestamp.AsTime()
	}
	ts := metav1.NewTime(at)
	u := func(v uint64) *uint64 { return &v }
	switch url := m.Data.GetTypeUrl(); {
	case strings.HasSuffix(url, "io.containerd.cgroups.v1.Metrics"):
		var v cgroupsv1.Metrics
		if err := v.Unmarshal(m.Data.GetValue()); err != nil {
			return nil, nil, fmt.Errorf("metrics of %s: %w", c.id, err)
		}
		var cpu *statsapi.CPUStats
		if v.CPU != nil && v.CPU.Usage != nil {
			cpu = s.withRate(c.id, &statsapi.CPUStats{Time: ts, UsageCoreNanoSeconds: u(v.CPU.Usage.Total)})
		}
		var mem *statsapi.MemoryStats
		if v.Memory != nil && v.Memory.Usage != nil {
			usage := v.Memory.Usage.Usage
			ws := usage
			if v.Memory.TotalInactiveFile < ws {
				ws -= v.Memory.TotalInactiveFile
			} else {
				ws = 0
			}
			mem = &statsapi.MemoryStats{Time: ts, UsageBytes: u(usage), WorkingSetBytes: u(ws), RSSBytes: u(v.Memory.TotalRSS),
				PageFaults: u(v.Memory.TotalPgFault), MajorPageFaults: u(v.Memory.TotalPgMajFault)}
			if lim := v.Memory.Usage.Limit; lim > 0 && lim < 1<<62 && lim > ws {
				mem.AvailableBytes = u(lim - ws)
			}
		}
		return cpu, mem, nil
	case strings.HasSuffix(url, "io.containerd.cgroups.v2.Metrics"):
		var v cgroupsv2.Metrics
		if err := v.Unmarshal(m.Data.GetValue()); err != nil {
			return nil, nil, fmt.Errorf("metrics of %s: %w", c.id, err)
		}
		var cpu *statsapi.CPUStats
		if v.CPU != nil {
			cpu = s.withRate(c.id, &statsapi.CPUStats{Time: ts, UsageCoreNanoSeconds: u(v.CPU.UsageUsec * 1000)})
		}
		var mem *statsapi.MemoryStats
		if v.Memory != nil {
			ws := v.Memory.Usage
			if v.Memory.InactiveFile < ws {
				ws -= v.Memory.InactiveFile
			} else {
				ws = 0
			}
			mem = &statsapi.MemoryStats{Time: ts, UsageBytes: u(v.Memory.Usage), WorkingSetBytes: u(ws), RSSBytes: u(v.Memory.Anon),
				PageFaults: u(v.Memory.Pgfault), MajorPageFaults: u(v.Memory.Pgmajfault)}
			if lim := v.Memory.UsageLimit; lim > 0 && lim < 1<<62 && lim > ws {
				mem.AvailableBytes = u(lim - ws)
			}
		}
		return cpu, mem, nil
	default:
		return nil, nil, fmt.Errorf("metrics of %s: unknown type %q", c.id, url)
	}
}

// withRate fills usageNanoCores from the previous sample of key.
func (s *Server) withRate(key string, cpu *statsapi.CPUStats) *statsapi.CPUStats {
	if cpu.UsageCoreNanoSeconds == nil {
		return cpu
	}
	s.cpuMu.Lock()
	defer s.cpuMu.Unlock()
	if s.cpuPrev == nil {
		s.cpuPrev = map[string]cpuSample{}
	}
	cur := cpuSample{at: cpu.Time.Time, total: *cpu.UsageCoreNanoSeconds}
	if prev, ok := s.cpuPrev[key]; ok && cur.at.After(prev.at) && cur.total >= prev.total {
		rate := uint64(float64(cur.total-prev.total) / cur.at.Sub(prev.at).Seconds())
		cpu.UsageNanoCores = &rate
	}
	s.cpuPrev[key] = cur
	return cpu
}

// forget drops the samples of containers no longer running.
func (s *Server) forget(running map[string]bool) {
	s.cpuMu.Lock()
	defer s.cpuMu.Unlock()
	for k := range s.cpuPrev {
		if k != "node" && !running[k] {
			delete(s.cpuPrev, k)
		}
	}
}

// clockTicks is USER_HZ, the unit of /proc/stat: 100 on every Linux
// architecture Kubernetes runs on.
const clockTicks = 100

func nodeCPU(now time.Time) (*statsapi.CPUStats, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[0] != "cpu" {
			continue
		}
		var busy uint64
		// user nice system (idle iowait skipped) irq softirq steal
		for _, i := range []int{1, 2, 3, 6, 7, 8} {
			if i >= len(fields) {
				break
			}
			v, err := strconv.ParseUint(fields[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/stat: %w", err)
			}
			busy += v
		}
		ns := busy * (uint64(time.Second) / clockTicks)
		return &statsapi.CPUStats{Time: metav1.NewTime(now), UsageCoreNanoSeconds: &ns}, nil
	}
	return nil, fmt.Errorf("/proc/stat: no cpu line")
}

func nodeMemory(now time.Time) (*statsapi.MemoryStats, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	kv := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		kv[strings.TrimSuffix(f[0], ":")] = v * 1024
	}
	total, avail, free := kv["MemTotal"], kv["MemAvailable"], kv["MemFree"]
	if total == 0 {
		return nil, fmt.Errorf("/proc/meminfo: no MemTotal")
	}
	usage := total - free
	ws := total - avail
	return &statsapi.MemoryStats{Time: metav1.NewTime(now), AvailableBytes: &avail, UsageBytes: &usage, WorkingSetBytes: &ws}, nil
}

func fsStats(path string, now time.Time) (*statsapi.FsStats, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	capacity, avail := st.Blocks*bs, st.Bavail*bs
	used := (st.Blocks - st.Bfree) * bs
	inodes, free := st.Files, st.Ffree
	iused := inodes - free
	return &statsapi.FsStats{Time: metav1.NewTime(now), CapacityBytes: &capacity, AvailableBytes: &avail, UsedBytes: &used,
		Inodes: &inodes, InodesFree: &free, InodesUsed: &iused}, nil
}

// bootTime is when the node started, from /proc/stat's btime.
func bootTime() time.Time {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return time.Unix(n, 0)
			}
		}
	}
	return time.Time{}
}
