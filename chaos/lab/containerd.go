package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
)

// ContainerdName is the name `barge lab kill|start` know the lab's
// containerd daemon by: it is no host (it runs in the root namespace),
// but chaos restarts it like one.
const ContainerdName = "containerd"

// containerdTimeout bounds the wait for containerd to answer after a
// start; it answers in well under a second here.
const containerdTimeout = 30 * time.Second

// maxSocketPath keeps the containerd socket inside the kernel's limit of
// 108 bytes for a unix socket path, with room for the ".ttrpc" sibling.
const maxSocketPath = 100

// Containerd is the lab's one containerd daemon, shared by every node
// agent (one containerd namespace per node), as recorded in lab.json.
// Everything it keeps is under Dir, so Down removes it with the lab.
type Containerd struct {
	PID      int    `json:"pid,omitempty"`
	Dir      string `json:"dir"`
	Config   string `json:"config"`
	Socket   string `json:"socket"`
	Root     string `json:"root"`
	State    string `json:"state"`
	HostsDir string `json:"hostsDir"`
	Log      string `json:"log"`
}

func newContainerd(dir string) *Containerd {
	cd := filepath.Join(dir, "containerd")
	return &Containerd{
		Dir:      cd,
		Config:   filepath.Join(cd, "config.toml"),
		Socket:   filepath.Join(cd, "c.sock"),
		Root:     filepath.Join(cd, "root"),
		State:    filepath.Join(cd, "state"),
		HostsDir: filepath.Join(cd, "hosts"),
		Log:      filepath.Join(dir, "logs", "containerd.log"),
	}
}

// containerdNamespace is the containerd namespace of a lab node: named
// from the lab ID, so Down finds a crashed lab's containers (and their
// cgroups, /sys/fs/cgroup/*/barge/NAMESPACE) without lab.json.
func containerdNamespace(id, host string) string { return nsPrefix(id) + host }

// containerdConfig is a containerd 1.6 configuration with CRI and the
// snapshotters and tracing the agents never use disabled, root and state
// under the lab, and config_path naming the hosts directory so the
// registry's hosts.toml applies to any CRI-style pull too.
func (c *Containerd) config() string {
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	return fmt.Sprintf(`# written by barge lab
version = 2
root = %s
state = %s
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

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

[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = %s
`, q(c.Root), q(c.State), q(c.Socket), q(c.Socket+".ttrpc"), q(filepath.Join(c.Dir, "opt")), q(c.HostsDir))
}

// writeFiles creates containerd's directories and configuration.
func (c *Containerd) writeFiles() error {
	if len(c.Socket) > maxSocketPath {
		return fmt.Errorf("lab: containerd socket %s is longer than %d bytes (unix socket limit); use a shorter --dir", c.Socket, maxSocketPath)
	}
	for _, d := range []string{c.Dir, c.Root, c.State, c.HostsDir, filepath.Dir(c.Log)} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("lab: containerd: %w", err)
		}
	}
	if err := os.WriteFile(c.Config, []byte(c.config()), 0o600); err != nil {
		return fmt.Errorf("lab: containerd: %w", err)
	}
	return nil
}

// running reports whether the recorded pid is this lab's containerd.
func (c *Containerd) running() bool { return c.PID > 0 && isOurs(c.PID, c.Dir) }

// start runs containerd detached (own process group, in the root network
// namespace: it does not talk to the network; the agents pull through
// their own clients) and waits until it answers.
func (c *Containerd) start(ctx context.Context, l *Lab) error {
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return errors.New("lab: containerd not found: apt-get install containerd runc")
	}
	for _, b := range []string{"runc", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("lab: %s not found: apt-get install containerd runc", b)
		}
	}
	if err := c.writeFiles(); err != nil {
		return err
	}
	pid, err := startDetached(c.Log, ContainerdName, bin, "--config", c.Config)
	if err != nil {
		return err
	}
	c.PID = pid
	l.log.Info("started containerd", "pid", pid, "socket", c.Socket)
	wctx, cancel := context.WithTimeout(ctx, containerdTimeout)
	defer cancel()
	if err := c.wait(wctx); err != nil {
		return fmt.Errorf("lab: containerd (pid %d) did not answer on %s: %w; end of %s:\n%s", pid, c.Socket, err, c.Log, tailLog(c.Log, 2048))
	}
	return nil
}

// wait polls containerd's version API until it answers, the process
// dies, or ctx ends.
func (c *Containerd) wait(ctx context.Context) error {
	var last error
	for {
		if !alive(c.PID) {
			return fmt.Errorf("containerd exited (last try: %v)", last)
		}
		last = c.ping(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last try: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Containerd) ping(ctx context.Context) error {
	// A plain dial first: the containerd client's gRPC logs every refused
	// connection while the daemon starts.
	conn, err := net.DialTimeout("unix", c.Socket, time.Second)
	if err != nil {
		return err
	}
	conn.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cli, err := containerd.New(c.Socket, containerd.WithTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.Version(pctx)
	return err
}

// Client connects to the lab's containerd with namespace as the default
// (a node's namespace: ContainerdNamespace).
func (l *Lab) Client(namespace string) (*containerd.Client, error) {
	if l.Containerd == nil {
		return nil, errors.New("lab: this lab runs no containerd (up with --nodes or the registry)")
	}
	cli, err := containerd.New(l.Containerd.Socket, containerd.WithDefaultNamespace(namespace), containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("lab: containerd client: %w", err)
	}
	return cli, nil
}

// ContainerdNamespace is the containerd namespace the lab gives node host.
func (l *Lab) ContainerdNamespace(host string) string { return containerdNamespace(l.ID, host) }

// reapContainerd kills every task and deletes every container (with its
// snapshot) and image in the lab's containerd namespaces, through the
// daemon, so containerd itself unmounts root filesystems and removes
// cgroups. It counts what it removed into r.
func reapContainerd(ctx context.Context, socket, id string, r *Removed) error {
	cli, err := containerd.New(socket, containerd.WithTimeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("lab: containerd client: %w", err)
	}
	defer cli.Close()
	nss, err := cli.NamespaceService().List(ctx)
	if err != nil {
		return fmt.Errorf("lab: containerd namespaces: %w", err)
	}
	var errs []error
	for _, ns := range nss {
		if !strings.HasPrefix(ns, nsPrefix(id)) {
			continue
		}
		nctx := namespaces.WithNamespace(ctx, ns)
		ctrs, err := cli.Containers(nctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("lab: containers of %s: %w", ns, err))
			continue
		}
		for _, ctr := range ctrs {
			if task, err := ctr.Task(nctx, nil); err == nil {
				_ = task.Kill(nctx, syscall.SIGKILL, containerd.WithKillAll)
				if ch, err := task.Wait(nctx); err == nil {
					select {
					case <-ch:
					case <-time.After(10 * time.Second):
					}
				}
				if _, err := task.Delete(nctx, containerd.WithProcessKill); err != nil {
					errs = append(errs, fmt.Errorf("lab: delete task %s/%s: %w", ns, ctr.ID(), err))
				} else {
					r.Tasks++
				}
			}
			if err := ctr.Delete(nctx, containerd.WithSnapshotCleanup); err != nil {
				errs = append(errs, fmt.Errorf("lab: delete container %s/%s: %w", ns, ctr.ID(), err))
			} else {
				r.Containers++
			}
		}
		imgs, err := cli.ImageService().List(nctx)
		if err == nil {
			for _, img := range imgs {
				if err := cli.ImageService().Delete(nctx, img.Name); err == nil {
					r.Images++
				}
			}
		}
		// Snapshots not tied to a container (unpacked image layers).
		sn := cli.SnapshotService(containerd.DefaultSnapshotter)
		var keys []string
		_ = sn.Walk(nctx, func(_ context.Context, info snapshots.Info) error {
			keys = append(keys, info.Name)
			return nil
		})
		// Children go before parents: delete in rounds until none is left
		// or a round removes nothing.
		for len(keys) > 0 {
			var left []string
			for _, k := range keys {
				if err := sn.Remove(nctx, k); err != nil {
					left = append(left, k)
				} else {
					r.Snapshots++
				}
			}
			if len(left) == len(keys) {
				break
			}
			keys = left
		}
		r.ContainerdNamespaces = append(r.ContainerdNamespaces, ns)
	}
	return errors.Join(errs...)
}
