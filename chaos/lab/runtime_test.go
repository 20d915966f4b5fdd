package lab_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/barge-dev/barge/chaos/lab"
	"github.com/barge-dev/barge/chaos/labtest"
	"github.com/barge-dev/barge/node/image"
	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
)

// TestRegistryAndContainerd brings up a lab with its registry and shared
// containerd (no nodes), pulls the pushed busybox through that containerd
// by the registry's lab address, runs a container from it, restarts
// containerd as `lab kill|start containerd` do, and then crashes every
// lab process with SIGKILL: lab down must still leave no namespace, no
// process, no mount under the lab directory and no cgroup.
func TestRegistryAndContainerd(t *testing.T) {
	requireRoot(t)
	// A short directory: containerd's socket path must fit 108 bytes.
	dir, err := os.MkdirTemp("", "lab")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l := labtest.Up(t, lab.Config{Dir: dir, Servers: 1, Registry: true, Barge: bargeBin, Logger: testLogger(t)})

	// lab.json records the registry for later commands.
	b, err := os.ReadFile(filepath.Join(dir, "lab.json"))
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		Registry   string `json:"registry"`
		Containerd struct {
			PID    int    `json:"pid"`
			Socket string `json:"socket"`
		} `json:"containerd"`
	}
	if err := json.Unmarshal(b, &state); err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(l.Subnet, "0/24") + "200:5000"; state.Registry != want {
		t.Fatalf("lab.json registry = %q, want %q", state.Registry, want)
	}
	if state.Containerd.PID == 0 || state.Containerd.Socket == "" {
		t.Fatalf("lab.json containerd = %+v", state.Containerd)
	}
	for _, name := range []string{lab.RegistryHost, lab.ContainerdName} {
		if st := hostStatus(t, l, name); st.State != lab.StateRunning {
			t.Fatalf("%s: state %s, want running", name, st.State)
		}
	}

	ns := l.ContainerdNamespace("t1")
	cli, err := l.Client(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), 60*time.Second)
	defer cancel()
	ref := l.Registry + "/" + lab.BusyboxImage
	img, err := image.Pull(ctx, cli, ref, l.Containerd.HostsDir)
	if err != nil {
		t.Fatalf("pull %s through the lab's containerd: %v", ref, err)
	}
	if img.Name() != ref {
		t.Fatalf("pulled %s, want %s", img.Name(), ref)
	}

	// A running container leaves what a crash must not leak: a shim, a
	// process, a root filesystem mount and cgroups (under barge/NS, as
	// the agent puts them).
	ctr, err := cli.NewContainer(ctx, "sleeper",
		containerd.WithNewSnapshot("sleeper-rootfs", img),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "600"), oci.WithCgroup("/barge/"+ns+"/sleeper")))
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cli.Close()

	// The chaos fault "containerd restart": the task survives it.
	if err := l.Kill(lab.ContainerdName); err != nil {
		t.Fatal(err)
	}
	if st := hostStatus(t, l, lab.ContainerdName); st.State != lab.StateStopped {
		t.Fatalf("containerd after kill: %s", st.State)
	}
	if err := l.Start(lab.ContainerdName); err != nil {
		t.Fatal(err)
	}
	cli2, err := l.Client(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer cli2.Close()
	c2, err := cli2.LoadContainer(ctx, "sleeper")
	if err != nil {
		t.Fatal(err)
	}
	t2, err := c2.Task(ctx, nil)
	if err != nil {
		t.Fatalf("task after containerd restart: %v", err)
	}
	if st, err := t2.Status(ctx); err != nil || st.Status != containerd.Running {
		t.Fatalf("task after containerd restart: %v %v", st, err)
	}
	cli2.Close()
	if len(labCgroups(l.ID)) == 0 {
		t.Fatalf("no cgroup of the lab's container found (looked for /sys/fs/cgroup/*/barge/%s)", ns)
	}

	// The crash: SIGKILL of every lab process, lab.json left behind.
	l2, err := lab.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	pids := []int{l2.Containerd.PID}
	for _, h := range l2.Hosts {
		if h.PID > 0 {
			pids = append(pids, h.PID)
		}
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	r, err := lab.DownReport(dir)
	if err != nil {
		t.Fatalf("lab down after crash: %v\n%s", err, r)
	}
	t.Logf("lab down removed:\n%s", r)
	if r.Containers != 1 || r.Tasks != 1 {
		t.Errorf("down removed %d containers and %d tasks, want 1 and 1", r.Containers, r.Tasks)
	}
	assertGone(t, l.ID)
	assertNothingUnder(t, l, dir)
}

// assertNothingUnder checks that no process, mount or cgroup of the lab
// is left.
func assertNothingUnder(t *testing.T, l *lab.Lab, dir string) {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			t.Errorf("mount left: %s", f[4])
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmd) == 0 {
			continue
		}
		if strings.Contains(string(cmd), dir+"/") {
			stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if !strings.Contains(string(stat), ") Z") {
				t.Errorf("process left: pid %s: %s", e.Name(), strings.ReplaceAll(string(cmd), "\x00", " "))
			}
		}
	}
	if cg := labCgroups(l.ID); len(cg) > 0 {
		t.Errorf("cgroups left: %v", cg)
	}
	if _, err := os.Stat(dir); err == nil {
		left, _ := os.ReadDir(dir)
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		if len(names) > 0 {
			t.Errorf("files left in %s: %v", dir, names)
		}
	}
}

// labCgroups lists cgroup directories named for lab id's containerd
// namespaces in any hierarchy.
func labCgroups(id string) []string {
	var out []string
	for _, pat := range []string{"/sys/fs/cgroup/*/barge/bg" + id + "-*", "/sys/fs/cgroup/*/bg" + id + "-*"} {
		m, _ := filepath.Glob(pat)
		out = append(out, m...)
	}
	return out
}
