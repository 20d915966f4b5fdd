package kubeletapi_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/namespaces"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/barge-dev/barge/control/apitest"
	"github.com/barge-dev/barge/node/containerdtest"
	"github.com/barge-dev/barge/node/kubeletapi"
	"github.com/barge-dev/barge/raftstore/pki"
)

const (
	nodeName = "node-a"
	podNS    = "default"
	podName  = "web"
)

// env is one node with a running pod, its kubelet API, and an API server
// whose pod subresources reach it.
type env struct {
	t          *testing.T
	cluster    *apitest.Cluster
	admin      kubernetes.Interface
	kubeconfig string
	kubectl    string
	kubeletURL string
	ca         *pki.CA
	caPool     *x509.CertPool
	rt         *testRuntime
	app        *testCtr
	prev       *testCtr
	prevExit   time.Time
	pod        *corev1.Pod
}

func setup(t *testing.T) *env {
	containerdtest.RequireRoot(t)
	kubectl := containerdtest.RequireBinary(t, "kubectl", "kubectl")
	d := containerdtest.Start(t)
	cc := d.Client(t, nodeName)
	ctx, cancel := context.WithCancel(namespaces.WithNamespace(context.Background(), nodeName))
	t.Cleanup(cancel)
	img := importBusybox(t, ctx, cc)
	netns := newNetns(t)

	cluster := apitest.New(t, 1, apitest.Options{Plane: apitest.APIOnly()})
	admin := cluster.Client(0)
	e := &env{t: t, cluster: cluster, admin: admin, kubectl: kubectl}
	e.grantRBAC()

	// The pod first: its UID labels the containers.
	e.pod = e.createPod()
	rt := &testRuntime{t: t, client: cc, img: img, logDir: t.TempDir(), ctrs: map[string]*testCtr{}}
	e.rt = rt
	uid := string(e.pod.UID)
	rt.start(ctx, ctrSpec{id: "web-sandbox", podNS: podNS, podName: podName, podUID: uid, kind: kubeletapi.KindSandbox,
		netns: netns, args: []string{"sleep", "3600"}})
	// The previous run of app, which exited.
	e.prev = rt.start(ctx, ctrSpec{id: "web-app-0", podNS: podNS, podName: podName, podUID: uid, name: "app", kind: kubeletapi.KindContainer,
		netns: netns, args: []string{"echo", "previous-run"}})
	select {
	case <-e.prev.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("previous run of app did not exit")
	}
	if _, err := e.prev.task.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	e.prevExit = time.Now()
	e.app = rt.start(ctx, ctrSpec{id: "web-app-1", podNS: podNS, podName: podName, podUID: uid, name: "app", kind: kubeletapi.KindContainer,
		restartCount: 1, netns: netns, args: []string{"sh", "-c",
			`mkdir -p /www && echo hello-pf > /www/index.html && httpd -p 127.0.0.1:8080 -h /www && ` +
				`for i in 1 2 3 4 5; do echo line$i; done; while read l; do echo "got $l"; echo "err $l" >&2; done`}})
	waitFor(t, "app's first lines in its log", func() error {
		if !strings.Contains(e.app.logText(), "line5") || !strings.Contains(e.prev.logText(), "previous-run") {
			return fmt.Errorf("app log %q, previous %q", e.app.logText(), e.prev.logText())
		}
		return nil
	})

	// The kubelet API, with a serving certificate from the cluster CA.
	ca, err := pki.LoadCA(cluster.Store.CertsDir)
	if err != nil {
		t.Fatal(err)
	}
	e.ca = ca
	leaf, err := ca.Issue(pki.Request{CommonName: "system:node:" + nodeName, Organizations: []string{"system:nodes"}, Hosts: []string{"127.0.0.1"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.ServerTLS(leaf)
	if err != nil {
		t.Fatal(err)
	}
	e.caPool = serving.ClientCAs
	// Certificates are verified when given; without one the request
	// reaches authentication, which must refuse it.
	serving.ClientAuth = tls.VerifyClientCertIfGiven
	srv, err := kubeletapi.New(kubeletapi.Config{
		Client: cc, Namespace: nodeName, NodeName: nodeName, TLS: serving, Kube: admin, Attacher: rt,
		Pods: func(ctx context.Context) ([]*corev1.Pod, error) {
			l, err := admin.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + nodeName})
			if err != nil {
				return nil, err
			}
			out := make([]*corev1.Pod, len(l.Items))
			for i := range l.Items {
				out[i] = &l.Items[i]
			}
			return out, nil
		},
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	port := ln.Addr().(*net.TCPAddr).Port
	e.kubeletURL = "https://" + ln.Addr().String()
	e.registerNode(port)

	// kubectl as the admin.
	caPEM, err := os.ReadFile(filepath.Join(cluster.Store.CertsDir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _ := os.ReadFile(filepath.Join(cluster.Store.CertsDir, pki.AdminCertFile))
	keyPEM, _ := os.ReadFile(filepath.Join(cluster.Store.CertsDir, pki.AdminKeyFile))
	e.kubeconfig = filepath.Join(t.TempDir(), "admin.kubeconfig")
	if err := pki.WriteKubeconfig(e.kubeconfig, "https://"+cluster.Addr(0), caPEM, certPEM, keyPEM, "admin"); err != nil {
		t.Fatal(err)
	}
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

func (e *env) createPod() *corev1.Pod {
	t := e.t
	ctx := e.cluster.Ctx()
	no := false
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podName, Namespace: podNS},
		Spec: corev1.PodSpec{
			NodeName:                     nodeName,
			AutomountServiceAccountToken: &no,
			Containers:                   []corev1.Container{{Name: "app", Image: "registry.barge.test/busybox:latest", Stdin: true}},
		},
	}
	var created *corev1.Pod
	// The default service account appears shortly after the API server
	// starts; admission refuses pods until it does.
	waitFor(t, "create pod", func() error {
		var err error
		created, err = e.admin.CoreV1().Pods(podNS).Create(ctx, pod, metav1.CreateOptions{})
		return err
	})
	now := metav1.Now()
	created.Status = corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    "127.0.0.1",
		StartTime: &now,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, RestartCount: 1, Image: "registry.barge.test/busybox:latest",
			ContainerID: "containerd://web-app-1", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}},
	}
	up, err := e.admin.CoreV1().Pods(podNS).UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return up
}

// registerNode makes the Node kube-apiserver dials: InternalIP first in
// its --kubelet-preferred-address-types, and the port from
// status.daemonEndpoints (its --kubelet-port, 10250, otherwise).
func (e *env) registerNode(port int) {
	ctx := e.cluster.Ctx()
	n, err := e.admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: nodeName}}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}
	if _, err := e.admin.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// grantRBAC gives stats-reader nodes/stats and proxy-user nodes/proxy;
// nobody gets nothing.
func (e *env) grantRBAC() {
	ctx := e.cluster.Ctx()
	for user, sub := range map[string]string{"stats-reader": "nodes/stats", "proxy-user": "nodes/proxy"} {
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "kapi-" + user},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{sub}, Verbs: []string{"get", "create"}}}}
		if _, err := e.admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
		b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "kapi-" + user},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
			Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}}}
		if _, err := e.admin.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// run runs kubectl to the end and returns its stdout, stderr and error.
func (e *env) run(stdin string, env []string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.kubectl, append([]string{"--kubeconfig", e.kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (e *env) mustRun(stdin string, env []string, args ...string) string {
	e.t.Helper()
	out, errs, err := e.run(stdin, env, args...)
	if err != nil {
		e.t.Fatalf("kubectl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errs)
	}
	return out
}

// lineReader collects a running command's output and waits for text.
type lineReader struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineReader) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lineReader) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lineReader) waitFor(t *testing.T, what string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("output %q", what), func() error {
		if !strings.Contains(l.String(), what) {
			return fmt.Errorf("have %q", l.String())
		}
		return nil
	})
}

// startKubectl starts a kubectl that runs until killed.
func (e *env) startKubectl(env []string, args ...string) (*exec.Cmd, io.WriteCloser, *lineReader) {
	e.t.Helper()
	cmd := exec.Command(e.kubectl, append([]string{"--kubeconfig", e.kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	out := &lineReader{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, stdin, out
}

var protocols = []struct {
	name string
	env  []string
}{
	{"spdy", []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}},
	{"websocket", []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true", "KUBECTL_PORT_FORWARD_WEBSOCKETS=true"}},
}

// TestKubeletAPI drives the kubelet API with real kubectl and client-go
// through a real kube-apiserver to real containers.
func TestKubeletAPI(t *testing.T) {
	e := setup(t)
	t.Run("logs", e.testLogs)
	t.Run("logs-follow", e.testLogsFollow)
	t.Run("exec", e.testExec)
	t.Run("exec-tty", e.testExecTTY)
	t.Run("exec-client-go", e.testExecClientGo)
	t.Run("attach", e.testAttach)
	t.Run("port-forward", e.testPortForward)
	t.Run("cp", e.testCp)
	t.Run("node-endpoints", e.testNodeEndpoints)
	t.Run("auth", e.testAuth)
}

func (e *env) testLogs(t *testing.T) {
	pod := []string{"logs", "-n", podNS, podName, "-c", "app"}
	if out := e.mustRun("", nil, pod...); !strings.HasPrefix(out, "line1\nline2\nline3\nline4\nline5\n") {
		t.Errorf("logs: %q", out)
	}
	if out := e.mustRun("", nil, append(pod, "--tail=2")...); out != "line4\nline5\n" {
		t.Errorf("logs --tail=2: %q", out)
	}
	out := e.mustRun("", nil, append(pod, "--tail=1", "--timestamps")...)
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line5\n$`).MatchString(out) {
		t.Errorf("logs --timestamps --tail=1: %q", out)
	}
	if out := e.mustRun("", nil, append(pod, "--limit-bytes=3")...); out != "lin" {
		t.Errorf("logs --limit-bytes=3: %q", out)
	}
	if out := e.mustRun("", nil, append(pod, "--previous")...); out != "previous-run\n" {
		t.Errorf("logs --previous: %q", out)
	}
	if out := e.mustRun("", nil, append(pod, "--since=1h", "--tail=1")...); out != "line5\n" {
		t.Errorf("logs --since=1h --tail=1: %q", out)
	}
	// Nothing was logged after a time to come.
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if out := e.mustRun("", nil, append(pod, "--since-time="+future)...); out != "" {
		t.Errorf("logs --since-time=%s: %q", future, out)
	}
	past := e.prevExit.Add(-time.Hour).UTC().Format(time.RFC3339)
	if out := e.mustRun("", nil, append(pod, "--previous", "--since-time="+past)...); out != "previous-run\n" {
		t.Errorf("logs --previous --since-time=%s: %q", past, out)
	}
	// Following an exited container ends at the end of its log.
	if out := e.mustRun("", nil, append(pod, "--previous", "-f")...); out != "previous-run\n" {
		t.Errorf("logs --previous -f: %q", out)
	}
	// A container the pod does not have.
	if _, errs, err := e.run("", nil, "logs", "-n", podNS, podName, "-c", "nope"); err == nil || !strings.Contains(errs, "nope") {
		t.Errorf("logs of a missing container: %v %q", err, errs)
	}
	// client-go, with stream selection refused or honoured as the API
	// server allows.
	rc, err := e.admin.CoreV1().Pods(podNS).GetLogs(podName, &corev1.PodLogOptions{Container: "app", TailLines: ptr(int64(1))}).Stream(e.cluster.Ctx())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "line5\n" {
		t.Errorf("client-go logs tail 1: %q", b)
	}
}

func ptr[T any](v T) *T { return &v }

func (e *env) testLogsFollow(t *testing.T) {
	cmd, _, out := e.startKubectl(nil, "logs", "-f", "-n", podNS, podName, "-c", "app")
	out.waitFor(t, "line5")
	// New output reaches the follower.
	if _, err := e.app.stdin.Write([]byte("follow-me\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "got follow-me")
	out.waitFor(t, "err follow-me")
	_ = cmd.Process.Kill()
}

func (e *env) testExec(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			out, errs, err := e.run("", p.env, "exec", "-n", podNS, podName, "-c", "app", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Errorf("exec exit 3: %v (stderr %q)", err, errs)
			}
			if out != "out\n" || !strings.Contains(errs, "err\n") {
				t.Errorf("exec: stdout %q stderr %q", out, errs)
			}
			// Stdin's end reaches the process.
			if out := e.mustRun("hello stdin\n", p.env, "exec", "-i", "-n", podNS, podName, "-c", "app", "--", "cat"); out != "hello stdin\n" {
				t.Errorf("exec -i cat: %q", out)
			}
			// The container's own environment and filesystem.
			if out := e.mustRun("", p.env, "exec", podName, "-c", "app", "--", "cat", "/www/index.html"); out != "hello-pf\n" {
				t.Errorf("exec cat: %q", out)
			}
			if _, errs, err := e.run("", p.env, "exec", podName, "-c", "app", "--", "/no/such/command"); err == nil {
				t.Errorf("exec of a missing command succeeded: %q", errs)
			}
		})
	}
}

// testExecTTY runs kubectl exec -it under a pseudo-terminal, as a person
// would.
func (e *env) testExecTTY(t *testing.T) {
	script := containerdtest.RequireBinary(t, "script", "bsdutils")
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// The size travels on its own stream and may land after the
			// process starts: the shell waits until it is set.
			line := fmt.Sprintf("stty cols 91 rows 17; %s --kubeconfig %s exec -it -n %s %s -c app -- sh -c 'tty; until stty size | grep -qv \"^0 0\"; do :; done; stty size; exit 4'",
				e.kubectl, e.kubeconfig, podNS, podName)
			cmd := exec.CommandContext(ctx, script, "-qec", line, "/dev/null")
			cmd.Env = append(os.Environ(), p.env...)
			// Stdin stays open until the command exits: its end would
			// hang up the container's terminal, as a closed stdin does
			// under the kubelet.
			if _, err := cmd.StdinPipe(); err != nil {
				t.Fatal(err)
			}
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 4 {
				t.Errorf("exec -it exit 4: %v: %q", err, out)
			}
			if !strings.Contains(string(out), "/dev/pts/") || !strings.Contains(string(out), "17 91") {
				t.Errorf("exec -it: want a pts and size 17 91, got %q", out)
			}
		})
	}
}

// sizeQueue hands out one terminal size.
type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	s, ok := <-q
	if !ok {
		return nil
	}
	return &s
}

func (e *env) execURL(opts *corev1.PodExecOptions, sub string) *url.URL {
	return e.admin.CoreV1().RESTClient().Post().Resource("pods").Namespace(podNS).Name(podName).
		SubResource(sub).VersionedParams(opts, scheme.ParameterCodec).URL()
}

func (e *env) executors(t *testing.T, u *url.URL) map[string]remotecommand.Executor {
	cfg := e.cluster.Config(0)
	sp, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]remotecommand.Executor{"spdy": sp, "websocket": ws}
}

func (e *env) testExecClientGo(t *testing.T) {
	for name, ex := range e.executors(t, e.execURL(&corev1.PodExecOptions{Container: "app", Command: []string{"sh", "-c", "cat; echo bye >&2; exit 7"},
		Stdin: true, Stdout: true, Stderr: true}, "exec")) {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := ex.StreamWithContext(e.cluster.Ctx(), remotecommand.StreamOptions{Stdin: strings.NewReader("from client-go"), Stdout: &out, Stderr: &errb})
			var ce utilexec.CodeExitError
			if !errors.As(err, &ce) || ce.Code != 7 {
				t.Errorf("exit: %v, want code 7", err)
			}
			if out.String() != "from client-go" || errb.String() != "bye\n" {
				t.Errorf("stdout %q stderr %q", out.String(), errb.String())
			}
		})
	}
	// A TTY with a size from the client, resized while it runs.
	for name, ex := range e.executors(t, e.execURL(&corev1.PodExecOptions{Container: "app", Command: []string{"sh", "-c", `tty; while read x; do [ "$x" = q ] && exit 0; stty size; done`},
		Stdin: true, Stdout: true, TTY: true}, "exec")) {
		t.Run(name+"-tty", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			pr, pw := io.Pipe()
			out := &lineReader{}
			sizes := make(sizeQueue, 2)
			sizes <- remotecommand.TerminalSize{Width: 120, Height: 40}
			done := make(chan error, 1)
			go func() {
				done <- ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: pr, Stdout: out, Tty: true, TerminalSizeQueue: sizes})
			}()
			out.waitFor(t, "/dev/pts/")
			// The size arrives on its own stream: ask until it shows.
			waitFor(t, "size 40 120", func() error {
				if _, err := pw.Write([]byte("\n")); err != nil {
					return err
				}
				if !strings.Contains(out.String(), "40 120") {
					return fmt.Errorf("output %q", out.String())
				}
				return nil
			})
			sizes <- remotecommand.TerminalSize{Width: 33, Height: 11}
			waitFor(t, "size 11 33", func() error {
				if _, err := pw.Write([]byte("\n")); err != nil {
					return err
				}
				if !strings.Contains(out.String(), "11 33") {
					return fmt.Errorf("output %q", out.String())
				}
				return nil
			})
			close(sizes)
			if _, err := pw.Write([]byte("q\n")); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("tty exec: %v", err)
				}
			case <-ctx.Done():
				t.Fatal("tty exec did not end after stdin closed")
			}
		})
	}
}

func (e *env) testAttach(t *testing.T) {
	for i, p := range protocols {
		t.Run("kubectl-"+p.name, func(t *testing.T) {
			cmd, stdin, out := e.startKubectl(p.env, "attach", "-i", "-n", podNS, podName, "-c", "app")
			msg := fmt.Sprintf("attach-%d", i)
			// Attach shows output from the moment it is attached: send
			// until the answer comes back.
			waitFor(t, "attach echo", func() error {
				if _, err := fmt.Fprintln(stdin, msg); err != nil {
					return err
				}
				if !strings.Contains(out.String(), "got "+msg) || !strings.Contains(out.String(), "err "+msg) {
					return fmt.Errorf("output %q", out.String())
				}
				return nil
			})
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			// The kubelet API sees the client go and ends the attach.
			waitFor(t, "attach to end", func() error {
				if n := e.app.attachedClients(); n != 0 {
					return fmt.Errorf("%d clients attached", n)
				}
				return nil
			})
		})
	}
	for name, ex := range e.executors(t, e.execURL(&corev1.PodExecOptions{Container: "app", Stdin: true, Stdout: true, Stderr: true}, "attach")) {
		t.Run("client-go-"+name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pr, pw := io.Pipe()
			out, errb := &lineReader{}, &lineReader{}
			done := make(chan error, 1)
			go func() {
				done <- ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: pr, Stdout: out, Stderr: errb})
			}()
			waitFor(t, "attach echo", func() error {
				if _, err := fmt.Fprintln(pw, name); err != nil {
					return err
				}
				if !strings.Contains(out.String(), "got "+name) || !strings.Contains(errb.String(), "err "+name) {
					return fmt.Errorf("stdout %q stderr %q", out.String(), errb.String())
				}
				return nil
			})
			cancel()
			<-done
			waitFor(t, "attach to end", func() error {
				if n := e.app.attachedClients(); n != 0 {
					return fmt.Errorf("%d clients attached", n)
				}
				return nil
			})
		})
	}
}

var forwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)

func httpGet(addr string) (string, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func (e *env) testPortForward(t *testing.T) {
	for _, p := range protocols {
		t.Run("kubectl-"+p.name, func(t *testing.T) {
			_, _, out := e.startKubectl(p.env, "port-forward", "-n", podNS, "pod/"+podName, "--address", "127.0.0.1", ":8080")
			var port string
			waitFor(t, "port-forward to listen", func() error {
				m := forwarding.FindStringSubmatch(out.String())
				if m == nil {
					return fmt.Errorf("output %q", out.String())
				}
				port = m[1]
				return nil
			})
			// Two connections over one session.
			for i := 0; i < 2; i++ {
				body, err := httpGet("127.0.0.1:" + port)
				if err != nil || body != "hello-pf\n" {
					t.Fatalf("GET through port-forward: %q %v\nkubectl: %s", body, err, out.String())
				}
			}
		})
	}
	t.Run("client-go-spdy", func(t *testing.T) {
		cfg := e.cluster.Config(0)
		transport, upgrader, err := spdy.RoundTripperFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		u := e.admin.CoreV1().RESTClient().Post().Resource("pods").Namespace(podNS).Name(podName).SubResource("portforward").URL()
		dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
		stop, ready := make(chan struct{}), make(chan struct{})
		var msgs lineReader
		fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, &msgs, &msgs)
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- fw.ForwardPorts() }()
		select {
		case <-ready:
		case err := <-errc:
			t.Fatalf("port-forward: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatal("port-forward not ready")
		}
		ports, err := fw.GetPorts()
		if err != nil {
			t.Fatal(err)
		}
		body, err := httpGet("127.0.0.1:" + strconv.Itoa(int(ports[0].Local)))
		if err != nil || body != "hello-pf\n" {
			t.Errorf("GET through client-go port-forward: %q %v", body, err)
		}
		close(stop)
		<-errc
	})
	// A port nothing listens on: the connection fails, the session not.
	t.Run("closed-port", func(t *testing.T) {
		_, _, out := e.startKubectl(nil, "port-forward", "-n", podNS, "pod/"+podName, "--address", "127.0.0.1", ":8081")
		re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8081`)
		var port string
		waitFor(t, "port-forward to listen", func() error {
			m := re.FindStringSubmatch(out.String())
			if m == nil {
				return fmt.Errorf("output %q", out.String())
			}
			port = m[1]
			return nil
		})
		if body, err := httpGet("127.0.0.1:" + port); err == nil {
			t.Errorf("GET to a closed port answered %q", body)
		}
		// kubectl reports the kubelet's error for the connection.
		out.waitFor(t, "connection refused")
	})
}

func (e *env) testCp(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.txt")
	data := strings.Repeat("barge kubectl cp\n", 2000)
	if err := os.WriteFile(src, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("", nil, "cp", src, podNS+"/"+podName+":/tmp/copied.txt", "-c", "app")
	if out := e.mustRun("", nil, "exec", podName, "-c", "app", "--", "wc", "-c", "/tmp/copied.txt"); !strings.HasPrefix(strings.TrimSpace(out), strconv.Itoa(len(data))) {
		t.Errorf("size in the container: %q, want %d", out, len(data))
	}
	back := filepath.Join(dir, "back.txt")
	e.mustRun("", nil, "cp", podNS+"/"+podName+":/tmp/copied.txt", back, "-c", "app")
	got, err := os.ReadFile(back)
	if err != nil || string(got) != data {
		t.Errorf("copied back %d bytes (%v), want %d", len(got), err, len(data))
	}
}

// kubeletClient is an HTTPS client of the kubelet API with a certificate
// of the cluster CA for user in groups (none for anonymous).
func (e *env) kubeletClient(t *testing.T, user string, groups ...string) *http.Client {
	roots := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(e.cluster.Store.CertsDir, pki.CACertFile))
	roots.AppendCertsFromPEM(caPEM)
	cfg := &tls.Config{RootCAs: roots}
	if user != "" {
		leaf, err := e.ca.IssueClient(user, groups, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func get(c *http.Client, u string) (int, string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// testNodeEndpoints reads /healthz, /pods, /runningpods and
// /stats/summary as kube-apiserver's kubelet client does.
func (e *env) testNodeEndpoints(t *testing.T) {
	c := e.kubeletClient(t, pki.KubeletClientCommonName, "system:masters")
	for _, tc := range []struct{ path, want string }{
		{"/healthz", "ok"},
		{"/pods", `"name":"web"`},
		{"/runningpods/", `"uid":"` + string(e.pod.UID) + `"`},
		{"/stats/summary", `"nodeName":"node-a"`},
	} {
		code, body, err := get(c, e.kubeletURL+tc.path)
		if err != nil || code != 200 || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d %v %.300s", tc.path, code, err, body)
		}
	}
	sum := e.summary(t, c)
	var found bool
	for _, p := range sum.Pods {
		if p.PodRef.Name != podName {
			continue
		}
		for _, ctr := range p.Containers {
			if ctr.Name == "app" {
				found = ctr.CPU != nil && ctr.CPU.UsageCoreNanoSeconds != nil && *ctr.CPU.UsageCoreNanoSeconds > 0 &&
					ctr.Memory != nil && ctr.Memory.WorkingSetBytes != nil && *ctr.Memory.WorkingSetBytes > 0
			}
		}
	}
	if !found || sum.Node.CPU == nil || sum.Node.Memory == nil || sum.Node.Fs == nil {
		t.Errorf("stats summary lacks figures: %+v", sum)
	}
	// The CPU rate needs two samples: the second summary has it.
	sum = e.summary(t, c)
	if sum.Node.CPU == nil || sum.Node.CPU.UsageNanoCores == nil {
		t.Errorf("second summary has no node usageNanoCores: %+v", sum.Node.CPU)
	}
}

func (e *env) summary(t *testing.T, c *http.Client) *statsapi.Summary {
	code, body, err := get(c, e.kubeletURL+"/stats/summary")
	if err != nil || code != 200 {
		t.Fatalf("stats/summary: %d %v %s", code, err, body)
	}
	var s statsapi.Summary
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func (e *env) testAuth(t *testing.T) {
	logs := e.kubeletURL + "/containerLogs/" + podNS + "/" + podName + "/app"
	// Anonymous: no certificate, no token.
	if code, body, err := get(e.kubeletClient(t, ""), logs); err != nil || code != http.StatusUnauthorized {
		t.Errorf("anonymous: %d %v %q, want 401", code, err, body)
	}
	// A certificate of another CA does not get through the handshake.
	other, err := pki.NewCA("not-the-cluster-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := other.IssueClient("system:masters-impostor", []string{"system:masters"}, time.Hour)
	cert, _ := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	wrong := e.kubeletClient(t, "")
	// Go's client sends a certificate only if the server's acceptable
	// CAs include its issuer; this one insists, as an attacker would.
	wrong.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &cert, nil
	}
	if code, _, err := get(wrong, logs); err == nil {
		t.Errorf("client certificate of another CA: %d, want a TLS failure", code)
	}
	// Sent only where the server's acceptable CAs allow, it is not sent
	// at all, and the request is anonymous.
	polite := e.kubeletClient(t, "")
	polite.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{cert}
	if code, _, err := get(polite, logs); err != nil || code != http.StatusUnauthorized {
		t.Errorf("certificate of another CA, not sent: %d %v, want 401", code, err)
	}
	// A bearer token goes to TokenReview: a made-up one is refused.
	req, _ := http.NewRequest("GET", logs, nil)
	req.Header.Set("Authorization", "Bearer made-up-token")
	if resp, err := e.kubeletClient(t, "").Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("made-up token: %v %v, want 401", resp, err)
	} else {
		resp.Body.Close()
	}
	// Authorization by SubjectAccessReview; RBAC changes reach the
	// authorizer through informers, so the grants are waited for.
	for _, tc := range []struct {
		user string
		path string
		want int
	}{
		{"nobody", "/containerLogs/default/web/app", 403},
		{"nobody", "/pods", 403},
		{"nobody", "/stats/summary", 403},
		{"stats-reader", "/stats/summary", 200},
		{"stats-reader", "/containerLogs/default/web/app", 403},
		{"stats-reader", "/healthz", 403},
		{"proxy-user", "/containerLogs/default/web/app?tailLines=1", 200},
		{"proxy-user", "/pods", 200},
		{"proxy-user", "/healthz", 200},
	} {
		c := e.kubeletClient(t, tc.user)
		waitFor(t, tc.user+" "+tc.path, func() error {
			code, body, err := get(c, e.kubeletURL+tc.path)
			if err != nil {
				return err
			}
			if code != tc.want {
				return fmt.Errorf("status %d, want %d: %.200s", code, tc.want, body)
			}
			if code == 403 && !strings.Contains(body, "user="+tc.user) {
				return fmt.Errorf("403 does not name the user: %q", body)
			}
			return nil
		})
	}
	// exec without nodes/proxy: refused before any stream is set up.
	c := e.kubeletClient(t, "stats-reader")
	resp, err := c.Post(e.kubeletURL+"/exec/default/web/app?command=true&output=1", "", nil)
	if err != nil || resp.StatusCode != 403 {
		t.Errorf("exec as stats-reader: %v %v, want 403", resp, err)
	} else {
		resp.Body.Close()
	}
	// Bad input gets a clear answer.
	pc := e.kubeletClient(t, "proxy-user")
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/containerLogs/default/nosuchpod/app", 404},
		{"/containerLogs/default/web/nosuchctr", 404},
		{"/containerLogs/default/web/app?tailLines=-1", 400},
		{"/containerLogs/default/web/app?limitBytes=x", 400},
		{"/exec/default/web/app", 400},
	} {
		code, body, err := get(pc, e.kubeletURL+tc.path)
		if err != nil || code != tc.want {
			t.Errorf("GET %s: %d %v %q, want %d", tc.path, code, err, body, tc.want)
		}
	}
}
