package agent_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// testActiveDeadline: a pod that outlives its activeDeadlineSeconds is
// killed and fails with DeadlineExceeded, as under the kubelet.
func testActiveDeadline(t *testing.T, h *harness) {
	ns := h.namespace(t)
	p := h.pod("deadline", "n1", "exec sleep 3600")
	p.Spec.ActiveDeadlineSeconds = ptr.To[int64](2)
	p = h.createPod(t, ns, p)
	h.waitPod(t, ns, p.Name, "Failed with DeadlineExceeded, its container stopped", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodFailed && p.Status.Reason == "DeadlineExceeded" &&
			len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running == nil
	})
}

// testTerminationMessageFromLog: with FallbackToLogsOnError a failed
// container that wrote no message reports the end of its log.
func testTerminationMessageFromLog(t *testing.T, h *harness) {
	ns := h.namespace(t)
	p := h.pod("fallback", "n1", "echo -n DONE; exit 3")
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.Spec.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	p = h.createPod(t, ns, p)
	h.waitPod(t, ns, p.Name, "Failed with its log as the termination message", func(p *corev1.Pod) bool {
		if len(p.Status.ContainerStatuses) != 1 {
			return false
		}
		st := p.Status.ContainerStatuses[0].State.Terminated
		return st != nil && st.ExitCode == 3 && st.Message == "DONE"
	})
}
