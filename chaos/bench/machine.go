package bench

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Machine describes where a run happened: figures from a noisy 2-core VM
// and from a workstation are not comparable, so every report says which.
type Machine struct {
	CPUModel    string `json:"cpuModel"`
	CPUs        int    `json:"cpus"`
	Kernel      string `json:"kernel"`
	Disk        string `json:"disk"` // `df` of the data dirs: device, type, size
	GoVersion   string `json:"goVersion"`
	EtcdVersion string `json:"etcdVersion"`
}

// DescribeMachine reads /proc and asks df and etcd; a missing piece is
// left empty rather than failing the run it only annotates.
func DescribeMachine(ctx context.Context, dataDir, etcdBin string) Machine {
	m := Machine{GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel, m.CPUs = parseCPUInfo(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.CommandContext(ctx, "df", "-hT", dataDir).Output(); err == nil {
		m.Disk = parseDF(string(out))
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
