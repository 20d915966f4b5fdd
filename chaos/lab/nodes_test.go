package lab_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/barge-dev/barge/chaos/lab"
	"github.com/barge-dev/barge/chaos/labtest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNodes brings up one server and two nodes: up returns with both
// Ready; a killed agent shows as stopped; start brings it back to Ready;
// the pod network works across nodes (podNetwork); a pod of the
// registry's busybox runs on a node, its logs reach the API server through
// the kubelet API; the nodes joined with a bootstrap token; after a crash
// of every lab process lab down leaves nothing.
func TestNodes(t *testing.T) {
	requireRoot(t)
	if err := exec.Command(bargeBin, "agent", "--help").Run(); err != nil {
		t.Fatalf("%s has no agent command: %v", bargeBin, err)
	}
	dir, err := os.MkdirTemp("", "lab")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The nodes join with a bootstrap token: their credentials come by
	// CSR, and the kubelet API serves a certificate issued that way.
	l := labtest.Up(t, lab.Config{Dir: dir, Servers: 1, Nodes: 2, Barge: bargeBin, TokenBootstrap: true, Logger: testLogger(t)})
	cs, err := l.Kube()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2"} {
		st := hostStatus(t, l, n)
		if st.State != lab.StateRunning || st.Ready != "True" {
			t.Fatalf("%s: %+v, want running and Ready", n, st)
		}
		node, err := cs.CoreV1().Nodes().Get(context.Background(), n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := node.Status.Capacity.Cpu(); got.IsZero() {
			t.Errorf("%s: no cpu capacity", n)
		}
		if addr := node.Status.Addresses; len(addr) == 0 || addr[0].Type != corev1.NodeInternalIP {
			t.Errorf("%s: addresses %v", n, addr)
		}
	}
	if err := l.Kill("n1"); err != nil {
		t.Fatal(err)
	}
	if st := hostStatus(t, l, "n1"); st.State != lab.StateStopped {
		t.Fatalf("n1 after kill: %s", st.State)
	}
	if err := l.Start("n1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lab.NodeReadyTimeout)
	defer cancel()
	if err := l.WaitNodesReady(ctx); err != nil {
		t.Fatal(err)
	}
	// A Node is Ready from its first status, before the agent joins
	// gossip (after its pod CIDR and overlay).
	for _, n := range []string{"n1", "n2"} {
		waitFor(t, n+" alive in gossip as the server sees it", 30*time.Second, func() (bool, string) {
			st := hostStatus(t, l, n)
			return st.Gossip == "alive", "gossip " + st.Gossip
		})
	}
	podNetwork(t, l)

	// A pod from the lab registry, scheduled onto a node: it leaves a pod
	// network namespace, a container with its mounts and cgroups, which a
	// crash of every lab process must not leak past lab down.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sleeper", Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: l.Registry + "/" + lab.BusyboxImage, Command: []string{"sleep", "600"}}},
		},
	}
	waitFor(t, "pod created", 60*time.Second, func() (bool, string) {
		// The default ServiceAccount appears shortly after the controllers start.
		_, err := cs.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{})
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	var node string
	waitFor(t, "pod Running", 90*time.Second, func() (bool, string) {
		p, err := cs.CoreV1().Pods("default").Get(context.Background(), "sleeper", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		node = p.Spec.NodeName
		return p.Status.Phase == corev1.PodRunning, fmt.Sprintf("%s on %q: %+v", p.Status.Phase, p.Spec.NodeName, p.Status.ContainerStatuses)
	})
	// Logs go API server → kubelet API, which serves the certificate the
	// node asked for by CSR and the API server verifies against the CA.
	waitFor(t, "pod logs through the kubelet API", 30*time.Second, func() (bool, string) {
		_, err := cs.CoreV1().Pods("default").GetLogs("sleeper", &corev1.PodLogOptions{}).DoRaw(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	csrs, err := cs.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A restart before its serving CSR was issued asks again: at least
	// one serving certificate per node.
	clients, serving := 0, map[string]int{}
	for _, r := range csrs.Items {
		if len(r.Status.Certificate) == 0 {
			continue
		}
		switch r.Spec.SignerName {
		case "kubernetes.io/kube-apiserver-client-kubelet":
			clients++
		case "kubernetes.io/kubelet-serving":
			serving[r.Spec.Username]++
		}
	}
	if clients != 2 || serving["system:node:n1"] < 1 || serving["system:node:n2"] < 1 {
		t.Errorf("issued %d client CSRs and serving CSRs %v, want 2 and one per node", clients, serving)
	}
	if st := hostStatus(t, l, node); st.Pods == nil || *st.Pods != 1 {
		t.Errorf("status of %s: pods %v, want 1", node, st.Pods)
	}

	// The crash: SIGKILL of every lab process, lab.json left behind.
	l2, err := lab.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range l2.Hosts {
		if h.PID > 0 {
			_ = syscall.Kill(h.PID, syscall.SIGKILL)
		}
	}
	_ = syscall.Kill(l2.Containerd.PID, syscall.SIGKILL)
	r, err := lab.DownReport(dir)
	if err != nil {
		t.Fatalf("lab down: %v\n%s", err, r)
	}
	t.Logf("lab down removed:\n%s", r)
	if r.Tasks < 1 || r.Containers < 1 {
		t.Errorf("down removed %d tasks and %d containers, want the pod's", r.Tasks, r.Containers)
	}
	assertGone(t, l.ID)
	assertNothingUnder(t, l, dir)
}
