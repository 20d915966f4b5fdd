package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/barge-dev/barge/node/containerdtest"
	"github.com/barge-dev/barge/raftstore/loopport"
	"github.com/barge-dev/barge/raftstore/pki"
	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func initCerts(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	if err := pki.InitDir(dir, pki.InitOptions{Hosts: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startRegistry runs Debian's docker-registry with a certificate from
// the CA in certs.
func startRegistry(t *testing.T, certs string) *Registry {
	t.Helper()
	containerdtest.RequireBinary(t, RegistryBinary, "docker-registry")
	var log syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := StartRegistry(ctx, RegistryConfig{Dir: t.TempDir(), Addr: loopport.Addr(t), CertsDir: certs, Output: &log, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("%v\nregistry log:\n%s", err, log.String())
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("registry log:\n%s", log.String())
		}
	})
	return r
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run starts a container from img and waits for it to exit, returning
// its output and exit status.
func run(t *testing.T, ctx context.Context, c *containerd.Client, img containerd.Image, opts ...oci.SpecOpts) (string, uint32) {
	t.Helper()
	id := "t-" + randHex(4)
	ctr, err := c.NewContainer(ctx, id, containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(append([]oci.SpecOpts{oci.WithImageConfig(img)}, opts...)...))
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Delete(ctx, containerd.WithSnapshotCleanup)
	var out syncBuffer
	task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &out, &out)))
	if err != nil {
		t.Fatal(err)
	}
	defer task.Delete(ctx, containerd.WithProcessKill)
	exit, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st := <-exit
	code, _, err := st.Result()
	if err != nil {
		t.Fatal(err)
	}
	// The output pipes drain after the exit; deleting the task closes them.
	if _, err := task.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newNetns makes a network namespace with loopback up, for a container
// to listen in without touching the host's network.
func newNetns(t *testing.T) string {
	t.Helper()
	containerdtest.RequireBinary(t, "ip", "iproute2")
	name := "barge-img-" + randHex(4)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	return "/var/run/netns/" + name
}

// dialIn connects to addr from inside the network namespace at path: the
// socket belongs to the namespace it was made in, whatever thread later
// uses it.
func dialIn(nsPath, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is left locked, so Go discards it on return rather
		// than reuse it in the other namespace.
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer self.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if serr := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); serr == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// TestImageRegistryToContainer is the whole path: build busybox and nginx
// from Debian packages, push them to a real registry with a certificate
// from the cluster CA, pull them into a private containerd that trusts
// the registry through hosts.toml, and run them with runc.
func TestImageRegistryToContainer(t *testing.T) {
	containerdtest.RequireRoot(t)
	requireDebTools(t)
	ctx := context.Background()
	certs := initCerts(t)
	ca := filepath.Join(certs, pki.CACertFile)
	reg := startRegistry(t, certs)
	d := containerdtest.Start(t)
	if err := WriteHostsConfig(d.HostsDir, reg.Addr(), ca); err != nil {
		t.Fatal(err)
	}

	refs := map[string]string{}
	for _, recipe := range []string{"busybox", "nginx"} {
		spec, _ := Recipe(recipe)
		img, err := Build(ctx, spec, buildOpts(t))
		if err != nil {
			t.Fatal(err)
		}
		ref := reg.Addr() + "/" + recipe + ":latest"
		digest, err := Push(ctx, img, ref, ca)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := img.Digest()
		if digest != want {
			t.Fatalf("pushed %s, image is %s", digest, want)
		}
		refs[recipe] = ref
	}
	repos, err := Catalog(ctx, reg.Addr(), ca)
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != 2 || repos[0].Name != "busybox" || repos[1].Name != "nginx" || repos[0].Tags[0] != "latest" {
		t.Fatalf("catalog %+v", repos)
	}

	c := d.Client(t, "node1")
	nctx := namespaces.WithNamespace(ctx, "node1")
	busybox, err := Pull(nctx, c, refs["busybox"], d.HostsDir)
	if err != nil {
		t.Fatal(err)
	}
	out, code := run(t, nctx, c, busybox, oci.WithProcessArgs("echo", "hello"))
	if code != 0 || out != "hello\n" {
		t.Fatalf("echo hello: exit %d, output %q", code, out)
	}
	// /bin/sh and the applets work, as do users.
	out, code = run(t, nctx, c, busybox, oci.WithProcessArgs("sh", "-c", "id -un; ls /bin | wc -l"))
	if code != 0 || !strings.HasPrefix(out, "root\n") {
		t.Fatalf("sh: exit %d, output %q", code, out)
	}

	// nginx serves its page inside a namespace of its own.
	nginx, err := Pull(nctx, c, refs["nginx"], d.HostsDir)
	if err != nil {
		t.Fatal(err)
	}
	ns := newNetns(t)
	id := "nginx-" + randHex(4)
	ctr, err := c.NewContainer(nctx, id, containerd.WithNewSnapshot(id, nginx),
		containerd.WithNewSpec(oci.WithImageConfig(nginx),
			oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: ns})))
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Delete(nctx, containerd.WithSnapshotCleanup)
	var logs syncBuffer
	task, err := ctr.NewTask(nctx, cio.NewCreator(cio.WithStreams(nil, &logs, &logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer task.Delete(nctx, containerd.WithProcessKill)
	exited, err := task.Wait(nctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(nctx); err != nil {
		t.Fatal(err)
	}
	conn := waitListening(t, ns, "127.0.0.1:80", exited, &logs)
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%v\nnginx log:\n%s", err, logs.String())
	}
	body, _ := io.ReadAll(resp.Body)
	conn.Close()
	if resp.StatusCode != 200 || string(body) != NginxPage {
		t.Fatalf("GET /: %s %q\nnginx log:\n%s", resp.Status, body, logs.String())
	}
	if err := task.Kill(nctx, syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	st := <-exited
	if code, _, _ := st.Result(); code != 0 {
		t.Errorf("nginx exited %d on SIGQUIT\n%s", code, logs.String())
	}
	task.Delete(nctx)
	if !strings.Contains(logs.String(), `"GET / HTTP/1.1" 200`) {
		t.Errorf("the access log did not reach stdout:\n%s", logs.String())
	}

	// Mirrored under its usual name: docker.io/library/busybox comes from
	// our registry and never from docker.io.
	if err := WriteMirrorConfig(d.HostsDir, "docker.io", reg.Addr(), ca); err != nil {
		t.Fatal(err)
	}
	bb, err := Fetch(ctx, refs["busybox"], ca)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Push(ctx, bb, reg.Addr()+"/library/busybox:1.35", ca); err != nil {
		t.Fatal(err)
	}
	mirrored, err := Pull(nctx, c, "docker.io/library/busybox:1.35", d.HostsDir)
	if err != nil {
		t.Fatal(err)
	}
	if mirrored.Target().Digest != busybox.Target().Digest {
		t.Fatalf("mirrored busybox %s, pushed %s", mirrored.Target().Digest, busybox.Target().Digest)
	}

	// Bad inputs: an image the registry lacks, and a registry whose
	// certificate another CA signed.
	if _, err := Pull(nctx, c, reg.Addr()+"/nothing:latest", d.HostsDir); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("pull of an unknown image: %v", err)
	}
	other := startRegistry(t, initCerts(t))
	if err := WriteHostsConfig(d.HostsDir, other.Addr(), ca); err != nil {
		t.Fatal(err)
	}
	_, err = Pull(nctx, c, other.Addr()+"/busybox:latest", d.HostsDir)
	if err == nil || !strings.Contains(err.Error(), "not signed by the CA") {
		t.Fatalf("pull from an untrusted registry: %v", err)
	}
	if _, err := Push(ctx, tinyImage(t), other.Addr()+"/tiny:v1", ca); err == nil || !strings.Contains(err.Error(), "did not sign") {
		t.Fatalf("push to an untrusted registry: %v", err)
	}
	if _, err := Fetch(ctx, reg.Addr()+"/busybox:nope", ca); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("fetch of an unknown tag: %v", err)
	}

	local, err := List(nctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(local) != 3 || local[0].Name != refs["busybox"] || local[1].Name != refs["nginx"] || local[2].Name != "docker.io/library/busybox:1.35" || local[0].Size == 0 {
		t.Fatalf("images in node1: %+v", local)
	}
}

func waitListening(t *testing.T, ns, addr string, exited <-chan containerd.ExitStatus, logs *syncBuffer) net.Conn {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := dialIn(ns, addr)
		if err == nil {
			return conn
		}
		select {
		case st := <-exited:
			t.Fatalf("nginx exited (%d) before it listened\n%s", st.ExitCode(), logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx never listened on %s: %v\n%s", addr, err, logs.String())
		}
	}
}

// TestImageImportArchive loads docker and OCI archives into a namespace,
// as an air-gapped node would, and runs what it imported.
func TestImageImportArchive(t *testing.T) {
	containerdtest.RequireRoot(t)
	requireDebTools(t)
	ctx := context.Background()
	d := containerdtest.Start(t)
	c := d.Client(t, "node2")
	nctx := namespaces.WithNamespace(ctx, "node2")
	spec, _ := Recipe("busybox")
	img, err := Build(ctx, spec, buildOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		format Format
		ref    string
	}{
		{FormatDocker, "registry.barge.test/busybox:docker"},
		{FormatOCI, "registry.barge.test/busybox:oci"},
	} {
		p := filepath.Join(dir, string(tc.format)+".tar")
		if err := WriteArchive(p, img, tc.ref, tc.format); err != nil {
			t.Fatal(err)
		}
		imported, err := ImportFile(nctx, c, p)
		if err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		if len(imported) != 1 || imported[0].Name != tc.ref {
			t.Fatalf("%s: imported %+v, want %s", tc.format, imported, tc.ref)
		}
		out, code := run(t, nctx, c, containerd.NewImage(c, imported[0]), oci.WithProcessArgs("echo", "imported", string(tc.format)))
		if code != 0 || out != "imported "+string(tc.format)+"\n" {
			t.Fatalf("%s: exit %d, output %q", tc.format, code, out)
		}
	}
	local, err := List(nctx, c)
	if err != nil || len(local) != 2 {
		t.Fatalf("images in node2: %+v %v", local, err)
	}
	// Another namespace (another node) sees none of them.
	other, err := List(namespaces.WithNamespace(ctx, "node3"), c)
	if err != nil || len(other) != 0 {
		t.Fatalf("images in node3: %+v %v", other, err)
	}
	junk := filepath.Join(dir, "junk.tar")
	os.WriteFile(junk, []byte("junk"), 0o644)
	if _, err := ImportFile(nctx, c, junk); err == nil || !strings.Contains(err.Error(), "junk.tar") {
		t.Fatalf("import of junk: %v", err)
	}
}
