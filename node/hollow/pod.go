package hollow

import (
	"context"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func (h *hollow) work(ctx context.Context) bool {
	key, quit := h.queue.Get()
	if quit {
		return false
	}
	defer h.queue.Done(key)
	requeue, err := h.sync(ctx, key)
	switch {
	case err != nil && ctx.Err() == nil:
		h.cfg.Logger.Debug("pod sync", "pod", key, "err", err)
		h.queue.AddRateLimited(key)
	case requeue > 0:
		h.queue.Forget(key)
		h.queue.AddAfter(key, requeue)
	default:
		h.queue.Forget(key)
	}
	return true
}

// sync does what a kubelet would for one pod: confirm a deletion, start
// a new pod, finish a Job's pod once it has run its course. It returns
// when to look again, if ever.
func (h *hollow) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	pod, err := h.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if !h.up(pod.Spec.NodeName) {
		return 0, nil // a dead or stopped kubelet does nothing; resume looks again
	}
	pods := h.client.CoreV1().Pods(ns)
	if pod.DeletionTimestamp != nil {
		err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0), Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return 0, nil
		}
		return 0, err
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		return 0, nil
	case corev1.PodRunning:
		if p := readyAgain(pod); p != nil {
			// The node lifecycle controller marks a pod not ready while
			// its node is Unknown; a kubelet that is back writes its own
			// status again, and so does a hollow one.
			_, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return 0, ignoreGone(err)
		}
		if !runsToCompletion(pod) {
			return 0, nil
		}
		started := pod.Status.StartTime.Time
		if left := time.Until(started.Add(h.cfg.JobRuntime)); left > 0 {
			return left, nil
		}
		_, err := pods.UpdateStatus(ctx, succeeded(pod), metav1.UpdateOptions{})
		return 0, ignoreGone(err)
	}
	_, err = pods.UpdateStatus(ctx, h.running(pod), metav1.UpdateOptions{})
	if err != nil {
		return 0, ignoreGone(err)
	}
	if runsToCompletion(pod) {
		return h.cfg.JobRuntime, nil
	}
	return 0, nil
}

func ignoreGone(err error) error {
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // a newer version will come through the informer
	}
	return err
}

// runsToCompletion: a Job's pods, which a hollow node lets succeed.
func runsToCompletion(pod *corev1.Pod) bool {
	if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways {
		return false
	}
	for _, o := range pod.OwnerReferences {
		if o.Kind == "Job" {
			return true
		}
	}
	return false
}

// running is pod as a kubelet reports it once every container started.
func (h *hollow) running(pod *corev1.Pod) *corev1.Pod {
	p := pod.DeepCopy()
	now := metav1.Now()
	ip := h.podIP(pod.Spec.NodeName)
	p.Status.Phase = corev1.PodRunning
	p.Status.HostIP = "127.0.0.1"
	p.Status.HostIPs = []corev1.HostIP{{IP: "127.0.0.1"}}
	p.Status.PodIP = ip
	p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	p.Status.StartTime = &now
	p.Status.Conditions = nil
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	p.Status.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: now, FinishedAt: now}},
		})
	}
	p.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return p
}

// readyAgain is pod with its Ready and ContainersReady conditions True,
// or nil if they are.
func readyAgain(pod *corev1.Pod) *corev1.Pod {
	var p *corev1.Pod
	for i, c := range pod.Status.Conditions {
		if (c.Type != corev1.PodReady && c.Type != corev1.ContainersReady) || c.Status == corev1.ConditionTrue {
			continue
		}
		if p == nil {
			p = pod.DeepCopy()
		}
		p.Status.Conditions[i].Status = corev1.ConditionTrue
		p.Status.Conditions[i].Reason, p.Status.Conditions[i].Message = "", ""
		p.Status.Conditions[i].LastTransitionTime = metav1.Now()
	}
	return p
}

// succeeded is a running pod whose containers all exited 0.
func succeeded(pod *corev1.Pod) *corev1.Pod {
	p := pod.DeepCopy()
	now := metav1.Now()
	p.Status.Phase = corev1.PodSucceeded
	for i := range p.Status.Conditions {
		switch p.Status.Conditions[i].Type {
		case corev1.PodReady, corev1.ContainersReady:
			p.Status.Conditions[i].Status = corev1.ConditionFalse
			p.Status.Conditions[i].Reason = "PodCompleted"
			p.Status.Conditions[i].LastTransitionTime = now
		}
	}
	for i := range p.Status.ContainerStatuses {
		cs := &p.Status.ContainerStatuses[i]
		started := now
		if cs.State.Running != nil {
			started = cs.State.Running.StartedAt
		}
		cs.Ready, cs.Started = false, ptr.To(false)
		cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: started, FinishedAt: now}}
	}
	return p
}

// podIP hands out addresses of the node's pod CIDR in turn (wrapping
// round), or of 10.255.0.0/16 before node IPAM has given it one.
func (h *hollow) podIP(nodeName string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	prefix := netip.MustParsePrefix("10.255.0.0/16")
	if n, err := h.nodes.Get(nodeName); err == nil && n.Spec.PodCIDR != "" {
		if p, err := netip.ParsePrefix(n.Spec.PodCIDR); err == nil {
			prefix = p
		}
	}
	next, ok := h.nextIP[nodeName]
	if !ok || !prefix.Contains(next) {
		next = prefix.Masked().Addr().Next().Next() // .1 is the node's gateway
	}
	h.nextIP[nodeName] = next.Next()
	return next.String()
}
