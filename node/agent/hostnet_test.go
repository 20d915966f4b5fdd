package agent_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// testHostNetwork runs a hostNetwork pod (in the node's own namespace,
// with the node's address and name) and, from it, reaches another pod
// through the hostPort it opened on the node's addresses.
func testHostNetwork(t *testing.T, h *harness, n1 *node) {
	ns := h.namespace(t)
	ctx := context.Background()
	web := h.pod("hostport-web", "n1", "echo -n served-by-pod > /index.html; exec httpd -f -p 8080 -h /")
	web.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 30090}}
	web = h.createPod(t, ns, web)
	web = h.waitPod(t, ns, web.Name, "Running", running)

	host := h.pod("hostnet", "n1", "cat /proc/net/dev; hostname; exec sleep 3600")
	host.Spec.HostNetwork = true
	host = h.createPod(t, ns, host)
	host = h.waitPod(t, ns, host.Name, "Running", running)
	if host.Status.PodIP != n1.cfg.NodeIP {
		t.Errorf("hostNetwork pod IP %q, want the node's %s", host.Status.PodIP, n1.cfg.NodeIP)
	}
	if web.Status.PodIP == n1.cfg.NodeIP || web.Status.PodIP == "" {
		t.Errorf("pod IP of a pod-network pod %q", web.Status.PodIP)
	}
	// The node's namespace holds the pod bridge; a pod's holds only lo
	// and eth0.
	h.eventually(t, "hostNetwork pod's output", func() (bool, string) {
		out := logOf(t, n1, host, "main", 0)
		return strings.Contains(out, "barge0:") && strings.Contains(out, "\nn1\n"), out
	})
	// From the node's namespace, the node's loopback address and the
	// hostPort lead to the web pod.
	id := strings.TrimPrefix(host.Status.ContainerStatuses[0].ContainerID, "containerd://")
	out, code, err := n1.agent(t).Runtime().Exec(ctx, id, []string{"wget", "-qO-", "http://127.0.0.1:30090/index.html"}, 30*time.Second)
	if err != nil || code != 0 || string(out) != "served-by-pod" {
		t.Errorf("hostPort 30090 from the hostNetwork pod: exit %d, %v, output %q", code, err, out)
	}
	// /etc/hosts: the node's own for a hostNetwork pod, the kubelet's
	// managed file (conformance knows it by its first line) for others.
	nodeHosts, _ := os.ReadFile("/etc/hosts")
	if out, code, err := n1.agent(t).Runtime().Exec(ctx, id, []string{"cat", "/etc/hosts"}, 30*time.Second); err != nil || code != 0 || string(out) != string(nodeHosts) {
		t.Errorf("hostNetwork pod's /etc/hosts: exit %d, %v, %q; want the node's %q", code, err, out, nodeHosts)
	}
	webID := strings.TrimPrefix(web.Status.ContainerStatuses[0].ContainerID, "containerd://")
	if out, code, err := n1.agent(t).Runtime().Exec(ctx, webID, []string{"cat", "/etc/hosts"}, 30*time.Second); err != nil || code != 0 || !strings.HasPrefix(string(out), "# Kubernetes-managed hosts file.\n") {
		t.Errorf("pod's /etc/hosts: exit %d, %v, %q; want the managed file", code, err, out)
	}
	// The pod gone, its hostPort is closed.
	if err := h.admin.CoreV1().Pods(ns).Delete(ctx, web.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	h.eventually(t, "hostPort closed after its pod went", func() (bool, string) {
		out, code, err := n1.agent(t).Runtime().Exec(ctx, id, []string{"wget", "-T", "2", "-qO-", "http://127.0.0.1:30090/index.html"}, 30*time.Second)
		return err == nil && code != 0, string(out)
	})
}
