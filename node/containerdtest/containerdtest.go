package containerdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
)

// RequireRoot skips a test that needs root, or fails it when
// BARGE_REQUIRE_ROOT=1 (CI) forbids skipping. The same rule as
// chaos/labtest.RequireRoot, which node may not import.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("BARGE_REQUIRE_ROOT") == "1" {
		t.Fatal("this test needs root (containerd, runc) and BARGE_REQUIRE_ROOT=1 forbids skipping")
	}
	t.Skip("needs root for containerd and runc")
}

// RequireBinary finds a program the test drives, or skips (fails under
// BARGE_REQUIRE_ROOT=1: `make deps` installs it).
func RequireBinary(t testing.TB, name, debPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("BARGE_REQUIRE_ROOT") == "1" {
		t.Fatalf("%s not found: apt-get install %s (make deps does)", name, debPackage)
	}
	t.Skipf("%s not found: apt-get install %s", name, debPackage)
	return ""
}

// Daemon is a private containerd for one test: its own root, state,
// socket and registry hosts directory under a temporary directory, so
// tests neither see nor disturb a system containerd or each other.
type Daemon struct {
	Dir      string
	Root     string
	State    string
	Address  string // the gRPC socket
	HostsDir string // config_path: registry host configuration
	LogFile  string

	cmd    *exec.Cmd
	exited chan struct{}
}

// disabledPlugins are plugins the tests do not use; leaving them out
// makes startup faster and quieter (CRI above all).
func disabledPlugins() []string {
	return []string{
		"io.containerd.grpc.v1.cri",
		"io.containerd.snapshotter.v1.aufs",
		"io.containerd.snapshotter.v1.btrfs",
		"io.containerd.snapshotter.v1.zfs",
		"io.containerd.snapshotter.v1.devmapper",
		"io.containerd.tracing.processor.v1.otlp",
		"io.containerd.internal.v1.tracing",
	}
}

// Start runs containerd (root required) and waits until it answers. It
// is stopped, with every task it still runs, when the test ends.
func Start(t testing.TB) *Daemon {
	t.Helper()
	RequireRoot(t)
	bin := RequireBinary(t, "containerd", "containerd")
	RequireBinary(t, "runc", "runc")
	RequireBinary(t, "containerd-shim-runc-v2", "containerd")
	// Unix socket paths are limited to 108 bytes: t.TempDir's can be
	// longer.
	dir, err := os.MkdirTemp("", "ctrd")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{
		Dir:      dir,
		Root:     filepath.Join(dir, "root"),
		State:    filepath.Join(dir, "state"),
		Address:  filepath.Join(dir, "c.sock"),
		HostsDir: filepath.Join(dir, "hosts"),
		LogFile:  filepath.Join(dir, "containerd.log"),
		exited:   make(chan struct{}),
	}
	for _, p := range []string{d.Root, d.State, d.HostsDir} {
		if err := os.MkdirAll(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(conf, []byte(d.config()), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(d.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(bin, "--config", conf)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Its own process group: a ^C to the test does not reach it first.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start containerd: %v", err)
	}
	go func() {
		_ = d.cmd.Wait()
		logf.Close()
		close(d.exited)
	}()
	t.Cleanup(func() { d.stop(t) })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := d.wait(ctx); err != nil {
		t.Fatalf("containerd did not start: %v\n%s", err, d.logTail())
	}
	return d
}

func (d *Daemon) config() string {
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	var dis []string
	for _, p := range disabledPlugins() {
		dis = append(dis, q(p))
	}
	return fmt.Sprintf(`version = 2
root = %s
state = %s
disabled_plugins = [%s]

[grpc]
  address = %s

[ttrpc]
  address = %s

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %s

# For containerd's CRI, were it enabled; barge's agent pulls through its
# own client with image.Resolver over the same directory.
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = %s
`, q(d.Root), q(d.State), strings.Join(dis, ", "), q(d.Address), q(d.Address+".ttrpc"),
		q(filepath.Join(d.Dir, "opt")), q(d.HostsDir))
}

// wait dials until containerd serves its version API, or it exits.
func (d *Daemon) wait(ctx context.Context) error {
	type result struct {
		err error
	}
	done := make(chan result, 1)
	go func() {
		// WithTimeout makes New block until the socket accepts.
		c, err := containerd.New(d.Address, containerd.WithTimeout(55*time.Second))
		if err == nil {
			_, err = c.Version(ctx)
			c.Close()
		}
		done <- result{err}
	}()
	select {
	case r := <-done:
		return r.err
	case <-d.exited:
		return errors.New("containerd exited")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *Daemon) logTail() string {
	b, _ := os.ReadFile(d.LogFile)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Client connects to the daemon with namespace as the default; it is
// closed when the test ends.
func (d *Daemon) Client(t testing.TB, namespace string) *containerd.Client {
	t.Helper()
	c, err := containerd.New(d.Address, containerd.WithDefaultNamespace(namespace), containerd.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatalf("containerd client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// stop removes what tests left running (tasks, containers), stops the
// daemon and removes its directory.
func (d *Daemon) stop(t testing.TB) {
	select {
	case <-d.exited:
	default:
		d.reap(t)
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.exited
		}
	}
	if t.Failed() {
		t.Logf("containerd log (%s):\n%s", d.LogFile, d.logTail())
	}
	// Snapshots of a task that is gone are unmounted by containerd; a
	// mount left over would make RemoveAll fail, which is worth a note.
	if err := os.RemoveAll(d.Dir); err != nil {
		t.Logf("remove %s: %v", d.Dir, err)
	}
}

func (d *Daemon) reap(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := containerd.New(d.Address, containerd.WithTimeout(5*time.Second))
	if err != nil {
		return
	}
	defer c.Close()
	nss, err := c.NamespaceService().List(ctx)
	if err != nil {
		return
	}
	var left bytes.Buffer
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		cs, err := c.Containers(nctx)
		if err != nil {
			continue
		}
		for _, ctr := range cs {
			if task, err := ctr.Task(nctx, nil); err == nil {
				fmt.Fprintf(&left, " %s/%s", ns, ctr.ID())
				_ = task.Kill(nctx, syscall.SIGKILL)
				if ch, err := task.Wait(nctx); err == nil {
					select {
					case <-ch:
					case <-nctx.Done():
					}
				}
				_, _ = task.Delete(nctx, containerd.WithProcessKill)
			}
			_ = ctr.Delete(nctx, containerd.WithSnapshotCleanup)
		}
	}
	if left.Len() > 0 {
		t.Logf("containerdtest: killed tasks the test left running:%s", left.String())
	}
}
