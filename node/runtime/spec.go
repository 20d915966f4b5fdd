package runtime

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/oci"
	corev1 "k8s.io/api/core/v1"
)

// CPU shares and CFS period as the kubelet computes them.
const (
	minShares     = 2
	sharesPerCPU  = 1024
	cfsPeriod     = 100000 // µs
	minCFSQuota   = 1000
	millisPerCore = 1000
)

// resourceOpts turns requests and limits into cgroup settings: CPU
// request → shares, CPU limit → CFS quota, memory limit → memory limit.
func resourceOpts(c *corev1.Container) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	shares := uint64(minShares)
	if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		shares = max(uint64(q.MilliValue())*sharesPerCPU/millisPerCore, minShares)
	} else if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		// The API server defaults a missing request to the limit; do it
		// here too for a pod made without defaulting.
		shares = max(uint64(q.MilliValue())*sharesPerCPU/millisPerCore, minShares)
	}
	opts = append(opts, oci.WithCPUShares(shares))
	if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok && !q.IsZero() {
		quota := max(q.MilliValue()*cfsPeriod/millisPerCore, minCFSQuota)
		opts = append(opts, oci.WithCPUCFS(quota, cfsPeriod))
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && !q.IsZero() {
		v := q.Value()
		if v <= 0 {
			return nil, fmt.Errorf("container %s: memory limit %s is not positive", c.Name, q.String())
		}
		opts = append(opts, oci.WithMemoryLimit(uint64(v)))
	}
	return opts, nil
}

// securityOpts applies the container's securityContext over the pod's.
func securityOpts(pod *corev1.Pod, c *corev1.Container) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	psc := pod.Spec.SecurityContext
	sc := c.SecurityContext
	var uid, gid *int64
	if psc != nil {
		uid, gid = psc.RunAsUser, psc.RunAsGroup
	}
	if sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
	}
	switch {
	case uid != nil && gid != nil:
		opts = append(opts, oci.WithUIDGID(uint32(*uid), uint32(*gid)))
	case uid != nil:
		opts = append(opts, oci.WithUserID(uint32(*uid)))
	case gid != nil:
		g := uint32(*gid)
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			s.Process.User.GID = g
			return nil
		})
	}
	if psc != nil && (len(psc.SupplementalGroups) > 0 || psc.FSGroup != nil) {
		var groups []uint32
		for _, g := range psc.SupplementalGroups {
			groups = append(groups, uint32(g))
		}
		if psc.FSGroup != nil {
			groups = append(groups, uint32(*psc.FSGroup))
		}
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, groups...)
			return nil
		})
	}
	if sc == nil {
		return opts, nil
	}
	if sc.Privileged != nil && *sc.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices, oci.WithWriteableSysfs, oci.WithWriteableCgroupfs)
	}
	if sc.Capabilities != nil {
		if add := capNames(sc.Capabilities.Add); len(add) > 0 {
			opts = append(opts, oci.WithAddedCapabilities(add))
		}
		if drop := capNames(sc.Capabilities.Drop); len(drop) > 0 {
			if len(drop) == 1 && drop[0] == "CAP_ALL" {
				opts = append(opts, oci.WithCapabilities(capNames(sc.Capabilities.Add)))
			} else {
				opts = append(opts, oci.WithDroppedCapabilities(drop))
			}
		}
	}
	if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	return opts, nil
}

func capNames(caps []corev1.Capability) []string {
	var out []string
	for _, c := range caps {
		n := strings.ToUpper(string(c))
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		out = append(out, n)
	}
	return out
}

// oomKilled reads whether the kernel's OOM killer killed a process in the
// container's cgroup (cgroup v1 memory.oom_control, or v2 memory.events),
// before the task's deletion removes the cgroup.
func oomKilled(cgroupPath string) bool {
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup/memory", cgroupPath, "memory.oom_control"),
		filepath.Join("/sys/fs/cgroup", cgroupPath, "memory.events"),
	} {
		if n, ok := readKey(f, "oom_kill"); ok {
			return n > 0
		}
	}
	return false
}

func readKey(path, key string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
