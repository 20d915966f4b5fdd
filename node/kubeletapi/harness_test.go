package kubeletapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/barge-dev/barge/node/containerdtest"
	"github.com/barge-dev/barge/node/image"
	"github.com/barge-dev/barge/node/kubeletapi"
)

// This file is the test's stand-in for the node runtime: it makes
// containerd containers labelled as the runtime labels them, writes their
// output to CRI-format log files and owns their IO for attach.

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// importBusybox builds busybox from Debian's busybox-static and imports
// it into the client's namespace.
func importBusybox(t *testing.T, ctx context.Context, c *containerd.Client) containerd.Image {
	t.Helper()
	for _, tool := range []string{"apt-get", "dpkg-deb", "ldd"} {
		containerdtest.RequireBinary(t, tool, "dpkg")
	}
	spec, _ := image.Recipe("busybox")
	img, err := image.Build(ctx, spec, image.BuildOptions{CacheDir: image.DefaultCacheDir()})
	if err != nil {
		t.Fatalf("build busybox: %v", err)
	}
	p := filepath.Join(t.TempDir(), "busybox.tar")
	if err := image.WriteArchive(p, img, "registry.barge.test/busybox:latest", image.FormatOCI); err != nil {
		t.Fatal(err)
	}
	imgs, err := image.ImportFile(ctx, c, p)
	if err != nil {
		t.Fatal(err)
	}
	return containerd.NewImage(c, imgs[0])
}

// newNetns makes a network namespace with loopback up, as a pod's.
func newNetns(t *testing.T) string {
	t.Helper()
	containerdtest.RequireBinary(t, "ip", "iproute2")
	name := "barge-kapi-" + randHex(4)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	return "/var/run/netns/" + name
}

// criLog writes lines in the CRI log format, as the runtime does.
type criLog struct {
	mu sync.Mutex
	f  *os.File
}

func (l *criLog) line(stream string, b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.f, "%s %s F %s\n", time.Now().UTC().Format(time.RFC3339Nano), stream, b)
}

// fanout is one output stream of a container: complete lines go to the
// log, every byte to the attached clients.
type fanout struct {
	stream string
	log    *criLog
	mu     sync.Mutex
	part   []byte
	outs   map[int]io.Writer
	next   int
}

func (f *fanout) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.part = append(f.part, p...)
	for {
		i := bytes.IndexByte(f.part, '\n')
		if i < 0 {
			break
		}
		f.log.line(f.stream, f.part[:i])
		f.part = f.part[i+1:]
	}
	for k, w := range f.outs {
		if _, err := w.Write(p); err != nil {
			delete(f.outs, k)
		}
	}
	return len(p), nil
}

func (f *fanout) add(w io.Writer) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.outs == nil {
		f.outs = map[int]io.Writer{}
	}
	f.next++
	f.outs[f.next] = w
	return f.next
}

func (f *fanout) remove(k int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.outs, k)
}

// testCtr is a running container of the test runtime.
type testCtr struct {
	c       containerd.Container
	task    containerd.Task
	stdin   *io.PipeWriter
	stdout  *fanout
	stderr  *fanout
	exited  chan struct{}
	logPath string
	mu      sync.Mutex
	nattach int
}

// testRuntime is the test's runtime: it implements kubeletapi.Attacher.
type testRuntime struct {
	t      *testing.T
	client *containerd.Client
	img    containerd.Image
	logDir string
	mu     sync.Mutex
	ctrs   map[string]*testCtr
}

type ctrSpec struct {
	id, podNS, podName, podUID, name, kind string
	restartCount                           int
	netns                                  string
	args                                   []string
}

// start creates and starts a container labelled as the runtime labels
// its containers.
func (r *testRuntime) start(ctx context.Context, s ctrSpec) *testCtr {
	r.t.Helper()
	logPath := filepath.Join(r.logDir, s.id+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { f.Close() })
	labels := map[string]string{
		kubeletapi.LabelPodNamespace: s.podNS,
		kubeletapi.LabelPodName:      s.podName,
		kubeletapi.LabelPodUID:       s.podUID,
		kubeletapi.LabelRestartCount: strconv.Itoa(s.restartCount),
		kubeletapi.LabelKind:         s.kind,
		kubeletapi.LabelLogPath:      logPath,
		kubeletapi.LabelNetns:        s.netns,
	}
	if s.kind != kubeletapi.KindSandbox {
		labels[kubeletapi.LabelContainerName] = s.name
	}
	c, err := r.client.NewContainer(ctx, s.id,
		containerd.WithNewSnapshot(s.id, r.img),
		containerd.WithNewSpec(oci.WithImageConfig(r.img), oci.WithProcessArgs(s.args...),
			oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: s.netns})),
		containerd.WithContainerLabels(labels))
	if err != nil {
		r.t.Fatalf("container %s: %v", s.id, err)
	}
	log := &criLog{f: f}
	pr, pw := io.Pipe()
	tc := &testCtr{c: c, stdin: pw, stdout: &fanout{stream: "stdout", log: log}, stderr: &fanout{stream: "stderr", log: log},
		exited: make(chan struct{}), logPath: logPath}
	task, err := c.NewTask(ctx, cio.NewCreator(cio.WithStreams(pr, tc.stdout, tc.stderr)))
	if err != nil {
		r.t.Fatalf("task %s: %v", s.id, err)
	}
	tc.task = task
	exitc, err := task.Wait(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		r.t.Fatalf("start %s: %v", s.id, err)
	}
	go func() {
		select {
		case <-exitc:
		case <-ctx.Done():
		}
		close(tc.exited)
	}()
	r.mu.Lock()
	r.ctrs[s.id] = tc
	r.mu.Unlock()
	return tc
}

// Attach connects a client to a container's main process, as the node
// runtime does: output from now on, input into its stdin (which stays
// open for other clients when this one's ends).
func (r *testRuntime) Attach(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan remotecommand.TerminalSize) error {
	r.mu.Lock()
	tc := r.ctrs[id]
	r.mu.Unlock()
	if tc == nil {
		return fmt.Errorf("container %s: not run by this runtime", id)
	}
	if tty {
		return fmt.Errorf("container %s has no TTY", id)
	}
	tc.mu.Lock()
	tc.nattach++
	tc.mu.Unlock()
	defer func() {
		tc.mu.Lock()
		tc.nattach--
		tc.mu.Unlock()
	}()
	if stdout != nil {
		k := tc.stdout.add(stdout)
		defer tc.stdout.remove(k)
	}
	if stderr != nil {
		k := tc.stderr.add(stderr)
		defer tc.stderr.remove(k)
	}
	if stdin != nil {
		go func() { _, _ = io.Copy(tc.stdin, stdin) }()
	}
	select {
	case <-ctx.Done():
	case <-tc.exited:
	}
	return nil
}

func (tc *testCtr) attachedClients() int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.nattach
}

// logText is the container's log file as written so far.
func (tc *testCtr) logText() string {
	b, _ := os.ReadFile(tc.logPath)
	return string(b)
}
