package agent_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/barge-dev/barge/control/apitest"
	"github.com/barge-dev/barge/node/agent"
	"github.com/barge-dev/barge/node/containerdtest"
	"github.com/barge-dev/barge/node/image"
	"github.com/barge-dev/barge/node/runtime"
	"github.com/barge-dev/barge/overlay/netnstest"
	"github.com/barge-dev/barge/overlay/podnet"
	"github.com/barge-dev/barge/raftstore/loopport"
	"github.com/barge-dev/barge/raftstore/pki"
)

// harness is one control plane, one private containerd, one registry
// with busybox, and node agents, shared by every subtest of TestAgent.
type harness struct {
	t        *testing.T
	api      *apitest.Cluster
	admin    kubernetes.Interface
	ctrd     *containerdtest.Daemon
	registry string
	busybox  string // REGISTRY/busybox:latest
	dir      string
}

// node is one running agent.
type node struct {
	api      *captureAPI
	name     string
	cfg      agent.Config
	cancel   context.CancelFunc
	done     chan error
	stateDir string
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newHarness(t *testing.T) *harness {
	containerdtest.RequireRoot(t)
	containerdtest.RequireBinary(t, image.RegistryBinary, "docker-registry")
	containerdtest.RequireBinary(t, "busybox", "busybox-static")
	h := &harness{t: t, dir: t.TempDir()}
	// Last of all (cleanups run in reverse): the tmpfs volumes and pinned
	// network namespaces of pods left running, so the directory goes.
	t.Cleanup(func() {
		if err := runtime.UnmountUnder(h.dir); err != nil {
			t.Logf("unmount: %v", err)
		}
	})
	ctx := context.Background()
	h.api = apitest.New(t, 1)
	h.admin = h.api.Client(0)
	h.ctrd = containerdtest.Start(t)

	certs := h.api.Store.CertsDir
	ca := filepath.Join(certs, pki.CACertFile)
	reg, err := image.StartRegistry(ctx, image.RegistryConfig{Dir: filepath.Join(h.dir, "registry"), Addr: loopport.Addr(t), CertsDir: certs,
		Output: io.Discard, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Stop() })
	h.registry = reg.Addr()
	if err := image.WriteHostsConfig(h.ctrd.HostsDir, reg.Addr(), ca); err != nil {
		t.Fatal(err)
	}
	spec, _ := image.Recipe("busybox")
	img, err := image.Build(ctx, spec, image.BuildOptions{CacheDir: image.DefaultCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	h.busybox = reg.Addr() + "/busybox:latest"
	if _, err := image.Push(ctx, img, h.busybox, ca); err != nil {
		t.Fatal(err)
	}
	return h
}

// startNode starts an agent for a node whose "host" network is a network
// namespace of the test's own (the bridge and veths live there). opts
// change its configuration before it starts.
func (h *harness) startNode(t *testing.T, name string, opts ...func(*agent.Config)) *node {
	t.Helper()
	stateDir := filepath.Join(h.dir, "nodes", name)
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	hostNS, err := podnet.CreateNetns(filepath.Join(h.dir, "hostns"), name)
	if err != nil {
		t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = podnet.DeleteNetns(hostNS) })
	// A real node's loopback is up; hostNetwork pods and hostPorts on
	// 127.0.0.1 use it.
	nh := netnstest.Handle(t, hostNS)
	if lo, err := nh.LinkByName("lo"); err != nil || nh.LinkSetUp(lo) != nil {
		t.Fatalf("loopback up in %s: %v", hostNS, err)
	}
	// The node's real kubelet API (node/kubeletapi) on a port of its own:
	// the agents of this test share the loopback address.
	ca, err := pki.LoadCA(h.api.Store.CertsDir)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(pki.Request{CommonName: "system:node:" + name, Organizations: []string{"system:nodes"}, Hosts: []string{"127.0.0.1"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.ServerTLS(leaf)
	if err != nil {
		t.Fatal(err)
	}
	serving.ClientAuth = tls.VerifyClientCertIfGiven
	_, port, _ := net.SplitHostPort(loopport.Addr(t))
	kubeletPort, _ := strconv.Atoi(port)
	capture := &captureAPI{agents: make(chan *agent.Agent, 4), next: agent.KubeletServer{TLS: serving}}
	n := &node{api: capture, name: name, stateDir: stateDir, cfg: agent.Config{
		KubeletAPI:  capture,
		KubeletPort: int32(kubeletPort),
		NodeName:    name,
		Client:      h.api.UserConfig(0, "system:node:"+name, "system:nodes"),
		NodeIP:      "127.0.0.1",
		Runtime: runtime.Config{
			Address:   h.ctrd.Address,
			StateDir:  stateDir,
			HostsDir:  h.ctrd.HostsDir,
			HostNetns: hostNS,
		},
		Version:     "v1.37.2-barge-test",
		BackoffBase: 2 * time.Second,
		Logger:      slog.New(slog.NewTextHandler(&testWriter{t: h.t, prefix: name}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}}
	for _, o := range opts {
		o(&n.cfg)
	}
	n.start(h.t)
	return n
}

func (n *node) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan error, 1)
	go func() {
		err := agent.Run(ctx, n.cfg)
		if err != nil && ctx.Err() == nil {
			n.cfg.Logger.Error("agent stopped", "err", err)
		}
		n.done <- err
	}()
	t.Cleanup(n.stop)
}

// captureAPI hands the test the running agent, as the kubelet API
// server gets it, and runs the real one.
type captureAPI struct {
	agents chan *agent.Agent
	next   agent.KubeletAPI
}

func (c *captureAPI) Serve(ctx context.Context, a *agent.Agent) error {
	select {
	case c.agents <- a:
	default:
	}
	return c.next.Serve(ctx, a)
}

// agent is the node's running agent.
func (n *node) agent(t *testing.T) *agent.Agent {
	t.Helper()
	select {
	case a := <-n.api.agents:
		n.api.agents <- a
		return a
	case <-time.After(60 * time.Second):
		t.Fatal("the agent did not start its kubelet API")
		return nil
	}
}

func (n *node) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	<-n.done
	n.cancel = nil
}

// testWriter sends agent logs to the test log only when it fails
// (kept in memory until then).
type testWriter struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
	buf    strings.Builder
	once   sync.Once
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.once.Do(func() {
		w.t.Cleanup(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.t.Failed() || os.Getenv("BARGE_TEST_AGENT_LOG") != "" {
				s := w.buf.String()
				if len(s) > 20000 {
					s = s[len(s)-20000:]
				}
				w.t.Logf("agent %s log:\n%s", w.prefix, s)
			}
		})
	})
	w.buf.Write(p)
	return len(p), nil
}

// namespace makes a namespace for one subtest and waits for its default
// service account.
func (h *harness) namespace(t *testing.T) string {
	t.Helper()
	ns := "t-" + randHex(4)
	ctx := h.api.Ctx()
	if _, err := h.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually(t, "default service account", func() (bool, string) {
		_, err := h.admin.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	return ns
}

// eventually polls cond until it holds, failing after a minute with the
// last thing cond said.
func (h *harness) eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not reached in time; last: %s", what, last)
}

// waitPod follows a pod until cond holds for it. It watches, so cond
// sees every status the pod passes through (a poll can miss one that
// lasts less than its period, as ErrImagePull before ImagePullBackOff).
func (h *harness) waitPod(t *testing.T, ns, name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pods := h.admin.CoreV1().Pods(ns)
	last := "never seen"
	for ctx.Err() == nil {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			time.Sleep(100 * time.Millisecond) // not created yet: nothing to watch
			continue
		}
		if last = describe(p); cond(p) {
			return p
		}
		w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: p.ResourceVersion})
		if err != nil {
			last = err.Error()
			continue
		}
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				break // an error event (the version expired, say): get again
			}
			if last = describe(p); cond(p) {
				w.Stop()
				return p
			}
		}
		w.Stop()
	}
	t.Fatalf("pod %s/%s: %s: not reached in time; last: %s", ns, name, what, last)
	return nil
}

func describe(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s ip=%s", p.Status.Phase, p.Status.PodIP)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s", c.Type, c.Status)
	}
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		fmt.Fprintf(&b, " [%s restarts=%d ready=%v", cs.Name, cs.RestartCount, cs.Ready)
		switch s := cs.State; {
		case s.Waiting != nil:
			fmt.Fprintf(&b, " waiting %s: %s", s.Waiting.Reason, s.Waiting.Message)
		case s.Running != nil:
			fmt.Fprintf(&b, " running")
		case s.Terminated != nil:
			fmt.Fprintf(&b, " terminated %d %s: %s", s.Terminated.ExitCode, s.Terminated.Reason, s.Terminated.Message)
		}
		if lt := cs.LastTerminationState.Terminated; lt != nil {
			fmt.Fprintf(&b, " last=%d %s", lt.ExitCode, lt.Reason)
		}
		b.WriteString("]")
	}
	return b.String()
}

func (h *harness) createPod(t *testing.T, ns string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	pod.Namespace = ns
	p, err := h.admin.CoreV1().Pods(ns).Create(h.api.Ctx(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pod is a busybox pod bound to node running sh -c script.
func (h *harness) pod(name, node, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: ptr.To[int64](2),
			Containers: []corev1.Container{{
				Name: "main", Image: h.busybox, Command: []string{"sh", "-c", script},
			}},
		},
	}
}

// logOf reads the CRI log of a container's run and returns its lines'
// contents.
func logOf(t *testing.T, n *node, p *corev1.Pod, container string, restart int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.stateDir, "pods", p.Namespace+"_"+p.Name+"_"+string(p.UID), container, fmt.Sprintf("%d.log", restart)))
	if err != nil {
		return ""
	}
	var out strings.Builder
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) == 4 {
			out.WriteString(f[3])
			if f[2] == "F" {
				out.WriteString("\n")
			}
		}
	}
	return out.String()
}

func running(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
