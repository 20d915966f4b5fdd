package agent_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// testSidecar runs init containers with restartPolicy Always: the next
// init container starts only once the sidecar's startup probe passed
// (it fetches from the sidecar), the sidecar keeps running beside the
// pod's container, and a pod that restarts nothing completes once its
// container exits, the sidecar stopped for it.
func testSidecar(t *testing.T, h *harness) {
	ns := h.namespace(t)
	sidecar := func() corev1.Container {
		return corev1.Container{
			Name: "side", Image: h.busybox, RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
			Command: []string{"sh", "-c", "echo -n side-up > /index.html; exec httpd -f -p 8081 -h /"},
			StartupProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromInt32(8081)}},
				PeriodSeconds: 1,
			},
		}
	}
	p := h.pod("with-sidecar", "n1", "exec sleep 3600")
	p.Spec.InitContainers = []corev1.Container{
		sidecar(),
		{Name: "after", Image: h.busybox, Command: []string{"sh", "-c", "test \"$(wget -qO- http://127.0.0.1:8081/index.html)\" = side-up"}},
	}
	p = h.createPod(t, ns, p)
	h.waitPod(t, ns, p.Name, "Running with its sidecar", func(p *corev1.Pod) bool {
		if !running(p) || len(p.Status.InitContainerStatuses) != 2 {
			return false
		}
		side, after := p.Status.InitContainerStatuses[0], p.Status.InitContainerStatuses[1]
		return side.State.Running != nil && side.Started != nil && *side.Started &&
			after.State.Terminated != nil && after.State.Terminated.ExitCode == 0
	})

	job := h.pod("job-with-sidecar", "n1", "exit 0")
	job.Spec.RestartPolicy = corev1.RestartPolicyNever
	job.Spec.InitContainers = []corev1.Container{sidecar()}
	job = h.createPod(t, ns, job)
	h.waitPod(t, ns, job.Name, "Succeeded, its sidecar stopped", func(p *corev1.Pod) bool {
		if p.Status.Phase != corev1.PodSucceeded || len(p.Status.InitContainerStatuses) != 1 {
			return false
		}
		return p.Status.InitContainerStatuses[0].State.Terminated != nil
	})
}
