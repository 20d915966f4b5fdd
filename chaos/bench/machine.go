package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// The fdatasync floor: what one small durable append costs on the disk
// under the data dirs, whatever the store above it does.
const (
	fsyncRounds = 1000
	fsyncBlock  = 4 << 10
)

// Machine describes where a run happened: figures from a noisy 2-core VM
// and from a workstation are not comparable, so every report says which.
type Machine struct {
	CPUModel      string `json:"cpuModel"`
	CPUs          int    `json:"cpus"`
	Kernel        string `json:"kernel"`
	Disk          string `json:"disk"` // `df` of the data dirs: device, type, size
	GoVersion     string `json:"goVersion"`
	EtcdVersion   string `json:"etcdVersion"`
	Etcd37Version string `json:"etcd37Version,omitempty"`
	// FdatasyncP50Ms and FdatasyncP99Ms time a 4 KiB write and
	// fdatasync in the run's directory: no store commits a write faster.
	FdatasyncP50Ms float64 `json:"fdatasyncP50Ms"`
	FdatasyncP99Ms float64 `json:"fdatasyncP99Ms"`
}

// DescribeMachine reads /proc, asks df and etcd and times fdatasync in
// dataDir; a missing piece is left empty rather than failing the run it
// only annotates.
func DescribeMachine(ctx context.Context, dataDir, etcdBin, etcd37Bin string) Machine {
	m := Machine{GoVersion: runtime.Version()}
	if l, err := FdatasyncFloor(ctx, dataDir); err == nil {
		m.FdatasyncP50Ms, m.FdatasyncP99Ms = ms(l.P50), ms(l.P99)
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel, m.CPUs = parseCPUInfo(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.CommandContext(ctx, "df", "-hT", dataDir).Output(); err == nil {
		m.Disk = parseDF(string(out))
	}
	if etcd37Bin != "" {
		if out, err := exec.CommandContext(ctx, etcd37Bin, "--version").Output(); err == nil {
			m.Etcd37Version = strings.TrimSpace(strings.TrimPrefix(firstLine(string(out)), "etcd Version:"))
		}
	}
	if out, err := exec.CommandContext(ctx, etcdBin, "--version").Output(); err == nil {
		m.EtcdVersion = strings.TrimSpace(strings.TrimPrefix(firstLine(string(out)), "etcd Version:"))
	}
	return m
}

// parseCPUInfo returns the first "model name" and the number of
// "processor" entries of /proc/cpuinfo.
func parseCPUInfo(s string) (model string, n int) {
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			n++
		case "model name":
			if model == "" {
				model = strings.TrimSpace(v)
			}
		}
	}
	return model, n
}

// parseDF turns the data line of `df -hT DIR` into "device (type, size,
// mounted on M)".
func parseDF(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) < 2 {
		return ""
	}
	f := strings.Fields(lines[len(lines)-1])
	if len(f) < 7 {
		return strings.Join(f, " ")
	}
	return f[0] + " (" + f[1] + ", " + f[2] + ", mounted on " + f[6] + ")"
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// FdatasyncFloor writes 4 KiB then calls fdatasync, fsyncRounds times, in
// a scratch file in dir, and summarizes the time of each pair. The file is
// written to its full size and synced first, so each round overwrites
// allocated blocks at a new offset, as a WAL appends into a preallocated
// segment: fdatasync then flushes data alone, with no size or extent
// metadata, which is the cheapest durable write the disk offers.
func FdatasyncFloor(ctx context.Context, dir string) (Latency, error) {
	f, err := os.CreateTemp(dir, "fdatasync-*")
	if err != nil {
		return Latency{}, fmt.Errorf("fdatasync floor: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(make([]byte, fsyncRounds*fsyncBlock)); err != nil {
		return Latency{}, fmt.Errorf("fdatasync floor: preallocate: %w", err)
	}
	if err := f.Sync(); err != nil {
		return Latency{}, fmt.Errorf("fdatasync floor: preallocate: %w", err)
	}
	block := make([]byte, fsyncBlock)
	samples := make([]time.Duration, 0, fsyncRounds)
	for i := range fsyncRounds {
		if err := ctx.Err(); err != nil {
			return Latency{}, err
		}
		t0 := time.Now()
		if _, err := f.WriteAt(block, int64(i*fsyncBlock)); err != nil {
			return Latency{}, fmt.Errorf("fdatasync floor: write: %w", err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return Latency{}, fmt.Errorf("fdatasync floor: %w", err)
		}
		samples = append(samples, time.Since(t0))
	}
	return Summarize(samples), nil
}
