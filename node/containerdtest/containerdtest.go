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
	"sync"
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

	bin  string
	conf string

	mu     sync.Mutex // cmd, exited and down change on Down and Up
	cmd    *exec.Cmd
	exited chan struct{}
	down   bool // stopped by Down: its shims may still run containers
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
	}
	for _, p := range []string{d.Root, d.State, d.HostsDir} {
		if err := os.MkdirAll(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	d.conf = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(d.conf, []byte(d.config()), 0o600); err != nil {
		t.Fatal(err)
	}
	d.bin = bin
	if err := d.launch(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.stop(t) })
	if err := d.waitReady(); err != nil {
		t.Fatal(err)
	}
	return d
}

// launch starts the daemon process; exited is closed when it ends.
func (d *Daemon) launch() error {
	// Appended to: a restarted daemon's log follows the first one's.
	logf, err := os.OpenFile(d.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("containerd log: %w", err)
	}
	cmd := exec.Command(d.bin, "--config", d.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a ^C to the test does not reach it first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start containerd: %w", err)
	}
	exited := make(chan struct{})
	d.mu.Lock()
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	return nil
}

func (d *Daemon) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := d.wait(ctx); err != nil {
		return fmt.Errorf("containerd did not start: %w\n%s", err, d.logTail())
	}
	return nil
}

// current is the running (or last) daemon process and its exit channel.
func (d *Daemon) current() (*exec.Cmd, chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd, d.exited
}

// Down stops the daemon as an operator's `systemctl stop containerd`
// does (SIGTERM to containerd alone): the shims, which containerd
// starts in process groups of their own, keep the containers running,
// and their exits are kept for the next daemon. Up starts it again.
func (d *Daemon) Down(t testing.TB) {
	t.Helper()
	cmd, exited := d.current()
	select {
	case <-exited:
		return
	default:
	}
	d.mu.Lock()
	d.down = true
	d.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Up starts a daemon stopped by Down on the same root, state and socket,
// and waits until it answers; it reconnects to the running shims.
func (d *Daemon) Up(t testing.TB) {
	t.Helper()
	_, exited := d.current()
	select {
	case <-exited:
	default:
		t.Fatal("containerdtest: Up while the daemon runs")
	}
	if err := d.launch(); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.down = false
	d.mu.Unlock()
	if err := d.waitReady(); err != nil {
		t.Fatal(err)
	}
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
	_, exited := d.current()
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
	case <-exited:
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
	d.mu.Lock()
	down := d.down
	d.mu.Unlock()
	if down {
		// Left down by the test: start it once more to kill what its
		// shims still run.
		if err := d.launch(); err == nil {
			_ = d.waitReady()
		}
	}
	cmd, exited := d.current()
	select {
	case <-exited:
	default:
		d.reap(t)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
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
