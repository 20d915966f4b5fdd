package agent_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
)

// testKubeletAPI: what `kubectl logs` and `kubectl exec` do, through the
// API server to the agent's kubelet API and back: the API server finds
// the node's port in its status and verifies the node's certificate.
func testKubeletAPI(t *testing.T, h *harness) {
	ns := h.namespace(t)
	p := h.pod("api", "n1", "echo hello from the pod; exec sleep 3600")
	h.createPod(t, ns, p)
	h.waitPod(t, ns, "api", "running", running)

	h.eventually(t, "the pod's log through the API server", func() (bool, string) {
		b, err := h.admin.CoreV1().Pods(ns).GetLogs("api", &corev1.PodLogOptions{Container: "main"}).DoRaw(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return string(b) == "hello from the pod\n", string(b)
	})

	req := h.admin.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name("api").SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: "main", Command: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	exec, err := remotecommand.NewSPDYExecutor(h.api.Config(0), http.MethodPost, req.URL())
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err = exec.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	if err == nil || !strings.Contains(err.Error(), "exit code 3") {
		t.Errorf("exec: %v, want the command's exit code 3", err)
	}
	if stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("exec: stdout %q stderr %q, want \"out\\n\" and \"err\\n\"", stdout.String(), stderr.String())
	}
}
