package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/barge-dev/barge/node/runtime"
)

// reapTimeout bounds the cleanup Down does through containerd.
const reapTimeout = 60 * time.Second

// Removed is what Down (or a failed Up) removed, so it can say so.
type Removed struct {
	Processes            []string `json:"processes,omitempty"`
	ContainerdNamespaces []string `json:"containerdNamespaces,omitempty"`
	Tasks                int      `json:"tasks,omitempty"`
	Containers           int      `json:"containers,omitempty"`
	Images               int      `json:"images,omitempty"`
	Snapshots            int      `json:"snapshots,omitempty"`
	Mounts               []string `json:"mounts,omitempty"`
	Cgroups              int      `json:"cgroups,omitempty"`
	Netns                []string `json:"netns,omitempty"`
	Links                []string `json:"links,omitempty"`
	Files                []string `json:"files,omitempty"`
}

// String is one line per kind of thing removed; "nothing" if none.
func (r Removed) String() string {
	var b strings.Builder
	list := func(what string, items []string) {
		if len(items) > 0 {
			fmt.Fprintf(&b, "%s (%d): %s\n", what, len(items), strings.Join(items, ", "))
		}
	}
	list("processes", r.Processes)
	if r.Tasks+r.Containers+r.Images+r.Snapshots > 0 || len(r.ContainerdNamespaces) > 0 {
		fmt.Fprintf(&b, "containerd: %d tasks, %d containers, %d images, %d snapshots in %s\n",
			r.Tasks, r.Containers, r.Images, r.Snapshots, strings.Join(r.ContainerdNamespaces, ", "))
	}
	list("mounts", r.Mounts)
	if r.Cgroups > 0 {
		fmt.Fprintf(&b, "cgroups: %d\n", r.Cgroups)
	}
	list("network namespaces", r.Netns)
	list("links", r.Links)
	list("files", r.Files)
	if b.Len() == 0 {
		return "nothing to remove\n"
	}
	return b.String()
}

// Down removes the lab of dir and discards the report; see DownReport.
func Down(dir string) error {
	_, err := DownReport(dir)
	return err
}

// DownReport removes the lab of dir: every process it started or that
// runs in one of its namespaces; every task, container, image and
// snapshot in its containerd namespaces, and the containerd daemon;
// containerd shims and container processes left by a crash; every mount
// under dir (pod network namespaces, volumes, root filesystems); the
// cgroups of its containers; the namespaces (and the nftables tables in
// them) and the root veth; and lab.json, data, logs, certs, containerd,
// registry and the kubeconfig (and dir itself if that empties it). It
// finds everything from dir's name alone, so it works after the process
// that ran Up crashed, and does nothing when nothing is left.
func DownReport(dir string) (Removed, error) {
	var r Removed
	ctx := context.Background()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return r, fmt.Errorf("lab: resolve %s: %w", dir, err)
	}
	id, err := labID(abs)
	if err != nil {
		return r, err
	}
	var hosts []Host
	var cd *Containerd
	if l, err := Load(abs); err == nil {
		hosts, cd = l.Hosts, l.Containerd
	}
	if cd == nil {
		if _, err := os.Stat(newContainerd(abs).Config); err == nil {
			cd = newContainerd(abs)
		}
	}
	var errs []error
	if err := teardown(ctx, id, abs, hosts, cd, &r); err != nil {
		errs = append(errs, err)
	}
	for _, name := range []string{stateFile, stateFile + ".tmp", "data", "logs", "certs", "containerd", "registry", "admin.kubeconfig", bootstrapTokenFile} {
		p := filepath.Join(abs, name)
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("lab: %w", err))
		} else {
			r.Files = append(r.Files, p)
		}
	}
	// Only an empty directory goes: Dir may be the user's own, holding
	// other files.
	if ents, err := os.ReadDir(abs); err == nil && len(ents) == 0 {
		_ = os.Remove(abs)
	}
	return r, errors.Join(errs...)
}

// teardown kills the lab's processes, empties and stops its containerd,
// and removes the kernel objects of lab id: mounts under dir, cgroups,
// namespaces, the root veth. It leaves dir's files.
func teardown(ctx context.Context, id, dir string, hosts []Host, cd *Containerd, r *Removed) error {
	var errs []error
	// Agents first, so nothing starts new containers while they go.
	order := slices.Clone(hosts)
	slices.SortStableFunc(order, func(a, b Host) int {
		return boolInt(a.Role != RoleNode) - boolInt(b.Role != RoleNode)
	})
	for _, h := range order {
		if h.PID > 0 && isOurs(h.PID, h.DataDir) {
			if err := killGroup(h.PID); err != nil {
				errs = append(errs, fmt.Errorf("lab: kill %s (pid %d): %w", h.Name, h.PID, err))
			} else {
				r.Processes = append(r.Processes, fmt.Sprintf("%s (pid %d)", h.Name, h.PID))
			}
		}
	}
	nss, err := labNamespaces(ctx, id)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ns := range nss {
		out, err := ip(ctx, "", "netns", "pids", ns)
		if err != nil {
			errs = append(errs, fmt.Errorf("lab: list processes of %s: %w", ns, err))
			continue
		}
		for _, f := range strings.Fields(out) {
			pid, err := strconv.Atoi(f)
			if err != nil || pid <= 1 {
				continue
			}
			if err := killPID(pid); err != nil {
				errs = append(errs, fmt.Errorf("lab: kill pid %d in %s: %w", pid, ns, err))
			} else {
				r.Processes = append(r.Processes, fmt.Sprintf("pid %d in %s", pid, ns))
			}
		}
	}
	if cd != nil {
		if err := stopContainerd(ctx, id, cd, r); err != nil {
			errs = append(errs, err)
		}
	}
	// What a crash of containerd left: shims serving its socket, and
	// container processes, found by their cgroups.
	if cd != nil {
		for _, pid := range findProcs(func(args []string) bool { return slices.Contains(args, cd.Socket) }) {
			if err := killPID(pid); err != nil {
				errs = append(errs, fmt.Errorf("lab: kill shim pid %d: %w", pid, err))
			} else {
				r.Processes = append(r.Processes, fmt.Sprintf("shim pid %d", pid))
			}
		}
	}
	cgs := labCgroups(id)
	for _, pid := range cgroupProcs(cgs) {
		if err := killPID(pid); err != nil {
			errs = append(errs, fmt.Errorf("lab: kill container pid %d: %w", pid, err))
		} else {
			r.Processes = append(r.Processes, fmt.Sprintf("container pid %d", pid))
		}
	}
	if err := unmountUnder(dir, r); err != nil {
		errs = append(errs, err)
	}
	for _, cg := range cgs {
		n, err := removeCgroup(cg)
		r.Cgroups += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range nss {
		if _, err := ip(ctx, "", "netns", "del", ns); err != nil {
			errs = append(errs, fmt.Errorf("lab: %w", err))
		} else {
			r.Netns = append(r.Netns, ns)
		}
	}
	// Deleting the underlay destroyed the root veth's peer and with it the
	// root end; this catches a crash between creating the pair and moving
	// its peer.
	if linkExists(ctx, rootVeth(id)) {
		_, err := ip(ctx, "", "link", "del", rootVeth(id))
		switch {
		case err == nil:
			r.Links = append(r.Links, rootVeth(id))
		case linkExists(ctx, rootVeth(id)):
			errs = append(errs, fmt.Errorf("lab: %w", err))
		}
	}
	return errors.Join(errs...)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// stopContainerd removes everything in the lab's containerd namespaces
// through containerd itself (so it unmounts root filesystems and deletes
// cgroups as it would), starting it again first if a crash killed it,
// then kills it.
func stopContainerd(ctx context.Context, id string, cd *Containerd, r *Removed) error {
	pids := findProcs(func(args []string) bool { return slices.Contains(args, cd.Config) })
	if cd.running() && !slices.Contains(pids, cd.PID) {
		pids = append(pids, cd.PID)
	}
	for _, pid := range pids {
		// A paused containerd would answer nothing.
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	var errs []error
	if _, err := os.Stat(cd.Config); err == nil {
		rctx, cancel := context.WithTimeout(ctx, reapTimeout)
		defer cancel()
		if len(pids) == 0 {
			tmp := *cd
			l := &Lab{log: slog.New(slog.DiscardHandler)}
			if err := tmp.start(rctx, l); err != nil {
				errs = append(errs, fmt.Errorf("lab: start containerd to clean up: %w", err))
			} else {
				pids = append(pids, tmp.PID)
			}
		}
		if len(pids) > 0 {
			if err := reapContainerd(rctx, cd.Socket, id, r); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, pid := range pids {
		if err := killPID(pid); err != nil {
			errs = append(errs, fmt.Errorf("lab: kill containerd pid %d: %w", pid, err))
		} else {
			r.Processes = append(r.Processes, fmt.Sprintf("containerd (pid %d)", pid))
		}
	}
	return errors.Join(errs...)
}

// findProcs returns the pids whose command line satisfies match.
func findProcs(match func(args []string) bool) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || !alive(pid) {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		if match(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cgroupRoot is where cgroup v1 mounts its hierarchies (and v2 its one).
const cgroupRoot = "/sys/fs/cgroup"

// labCgroups lists the cgroup directories of the lab's containers in every
// hierarchy: the agent puts containers under barge/NAMESPACE (NAMESPACE
// its containerd namespace, named from the lab ID); containerd's default
// is NAMESPACE directly.
func labCgroups(id string) []string {
	var out []string
	for _, pat := range []string{
		filepath.Join(cgroupRoot, "*", "barge", nsPrefix(id)+"*"),
		filepath.Join(cgroupRoot, "*", nsPrefix(id)+"*"),
		filepath.Join(cgroupRoot, "barge", nsPrefix(id)+"*"),
		filepath.Join(cgroupRoot, nsPrefix(id)+"*"),
	} {
		m, _ := filepath.Glob(pat)
		for _, p := range m {
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// cgroupProcs lists every process in the cgroups under dirs.
func cgroupProcs(dirs []string) []int {
	seen := map[int]bool{}
	var pids []int
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.IsDir() {
				return nil
			}
			b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if err != nil {
				return nil
			}
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 && !seen[pid] {
					seen[pid] = true
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// removeCgroup removes a cgroup directory and its children, deepest
// first (cgroupfs removes a cgroup with rmdir, its files with it).
func removeCgroup(dir string) (int, error) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	n := 0
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("lab: remove cgroup %s: %w", dirs[i], err))
		} else {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// unmountUnder detaches every mount at or below dir, deepest first, until
// none is left (mounts may be stacked).
func unmountUnder(dir string, r *Removed) error {
	for range 10 {
		mps, err := runtime.MountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		// Longest paths first: children before parents.
		slices.SortFunc(mps, func(a, b string) int { return len(b) - len(a) })
		for _, mp := range mps {
			if err := syscall.Unmount(mp, syscall.MNT_DETACH); err == nil {
				r.Mounts = append(r.Mounts, mp)
			}
		}
	}
	mps, _ := runtime.MountsUnder(dir)
	if len(mps) > 0 {
		return fmt.Errorf("lab: mounts left under %s: %s", dir, strings.Join(mps, ", "))
	}
	return nil
}
