package agent_test

import (
	"context"
	"testing"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// testAgentRestart stops a node's agent and starts a new one on the same
// state: the running container is adopted, not restarted (same
// container, same process), and the new agent still runs the pod (it
// stops it on deletion).
func testAgentRestart(t *testing.T, h *harness) {
	n2 := h.startNode(t, "n2")
	ns := h.namespace(t)
	h.createPod(t, ns, h.pod("survivor", "n2", "echo hello; exec sleep 1000"))
	p := h.waitPod(t, ns, "survivor", "running", running)
	before := p.Status.ContainerStatuses[0]
	pid := taskPID(t, h, "n2", before.ContainerID)

	n2.stop()
	n2.start(t)
	// The new agent writes status again (a fresh lease renewal shows it
	// is up); the container is the same run with the same process.
	h.eventually(t, "new agent registered", func() (bool, string) {
		n, err := h.admin.CoreV1().Nodes().Get(context.Background(), "n2", metav1.GetOptions{})
		return err == nil && n.Spec.PodCIDR != "", ""
	})
	h.createPod(t, ns, h.pod("after", "n2", "exec sleep 1000"))
	h.waitPod(t, ns, "after", "running (the new agent runs pods)", running)
	p = h.waitPod(t, ns, "survivor", "still running", running)
	after := p.Status.ContainerStatuses[0]
	if after.ContainerID != before.ContainerID || after.RestartCount != 0 || !after.State.Running.StartedAt.Equal(&before.State.Running.StartedAt) {
		t.Errorf("container after the agent restart %+v, before %+v", after, before)
	}
	if got := taskPID(t, h, "n2", after.ContainerID); got != pid {
		t.Errorf("container process %d after the agent restart, %d before", got, pid)
	}
	if out := logOf(t, n2, p, "main", 0); out != "hello\n" {
		t.Errorf("log %q", out)
	}
	if err := h.admin.CoreV1().Pods(ns).Delete(context.Background(), "survivor", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually(t, "adopted pod deleted", func() (bool, string) {
		_, err := h.admin.CoreV1().Pods(ns).Get(context.Background(), "survivor", metav1.GetOptions{})
		return apierrors.IsNotFound(err), ""
	})
}

func taskPID(t *testing.T, h *harness, nodeName, containerID string) uint32 {
	t.Helper()
	c, err := containerd.New(h.ctrd.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := namespaces.WithNamespace(context.Background(), nodeName)
	id := containerID[len("containerd://"):]
	ctr, err := c.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return task.Pid()
}

// testNodeRestriction: a node's credential reads the secrets of its own
// pods and not another node's (upstream's Node authorizer).
func testNodeRestriction(t *testing.T, h *harness) {
	ns := h.namespace(t)
	ctx := context.Background()
	for _, name := range []string{"mine", "theirs"} {
		if _, err := h.admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string][]byte{"k": []byte("v")}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(name, node, secret string) {
		p := h.pod(name, node, "exec sleep 1000")
		p.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "s", MountPath: "/s"}}
		h.createPod(t, ns, p)
	}
	mk("mine", "n1", "mine")
	mk("theirs", "elsewhere", "theirs")
	node, err := kubernetes.NewForConfig(h.api.UserConfig(0, "system:node:n1", "system:nodes"))
	if err != nil {
		t.Fatal(err)
	}
	h.eventually(t, "node n1 reads its own pod's secret", func() (bool, string) {
		_, err := node.CoreV1().Secrets(ns).Get(ctx, "mine", metav1.GetOptions{})
		return err == nil, errString(err)
	})
	if _, err := node.CoreV1().Secrets(ns).Get(ctx, "theirs", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node n1 reading another node's pod's secret: %v, want Forbidden", err)
	}
	// Nor write another node's pod status.
	other, err := h.admin.CoreV1().Pods(ns).Get(ctx, "theirs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other.Status.Phase = corev1.PodFailed
	if _, err := node.CoreV1().Pods(ns).UpdateStatus(ctx, other, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node n1 writing another node's pod status: %v, want Forbidden", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
