package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"

	"github.com/barge-dev/barge/node/runtime"
)

// reportStatus writes the pod's status from what containerd holds now.
func (w *worker) reportStatus(ctx context.Context, pod *corev1.Pod, terminating bool) {
	rs, err := w.listRuns(ctx)
	if err != nil {
		w.a.log.Warn("listing containers", append(w.logf(pod), "err", err)...)
		return
	}
	w.reportStatusFrom(ctx, pod, rs, terminating)
}

func (w *worker) reportStatusFrom(ctx context.Context, pod *corev1.Pod, rs *runs, terminating bool) {
	st := w.buildStatus(pod, rs, terminating)
	if apiequality.Semantic.DeepEqual(st, pod.Status) {
		return
	}
	base := pod.ResourceVersion
	for try := 0; try < 3; try++ {
		p := pod.DeepCopy()
		p.Status = st
		updated, err := w.a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if err == nil {
			w.mu.Lock()
			// The informer brings the same object soon; meanwhile the next
			// sync compares against what was written.
			if w.pod != nil && w.pod.UID == updated.UID && w.pod.ResourceVersion == base {
				w.pod = updated
			}
			w.mu.Unlock()
			return
		}
		if apierrors.IsNotFound(err) {
			return
		}
		if !apierrors.IsConflict(err) {
			w.a.log.Warn("writing pod status", append(w.logf(pod), "err", err)...)
			return
		}
		fresh, err := w.a.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil || fresh.UID != pod.UID {
			return
		}
		pod = fresh
		st = w.buildStatus(pod, rs, terminating)
	}
}

// buildStatus is the pod's status as the kubelet writes it.
func (w *worker) buildStatus(pod *corev1.Pod, rs *runs, terminating bool) corev1.PodStatus {
	old := pod.Status
	st := corev1.PodStatus{
		QOSClass:           old.QOSClass,
		NominatedNodeName:  old.NominatedNodeName,
		StartTime:          old.StartTime,
		HostIP:             w.a.cfg.NodeIP,
		HostIPs:            []corev1.HostIP{{IP: w.a.cfg.NodeIP}},
		ObservedGeneration: pod.Generation,
	}
	if st.StartTime == nil {
		now := metav1.NewTime(time.Now().Truncate(time.Second))
		st.StartTime = &now
	}
	if w.sandbox != nil {
		ip := w.sandbox.IP.String()
		st.PodIP = ip
		st.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := w.containerStatus(pod, c, rs, reasonPodInitializing)
		// The kubelet reports an init container that completed as Ready.
		if t := cs.State.Terminated; t != nil && t.ExitCode == 0 && !isSidecar(c) {
			cs.Ready = true
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	initialized := true
	initFailed := false
	for i, cs := range st.InitContainerStatuses {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			// A sidecar has done its part of initialisation once it has
			// started, or once the pod's containers have run.
			if (cs.Started == nil || !*cs.Started) && !rs.mainStarted() {
				initialized = false
			}
			continue
		}
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			initialized = false
			if t := cs.State.Terminated; t != nil && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
				initFailed = true
			}
		}
	}
	waitReason := reasonPodInitializing
	if initialized {
		waitReason = reasonContainerCreating
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		st.ContainerStatuses = append(st.ContainerStatuses, w.containerStatus(pod, c, rs, waitReason))
	}
	st.Phase = podPhase(pod, st, initialized, initFailed)
	if terminating && !podutil.IsPodPhaseTerminal(st.Phase) {
		running := false
		for _, cs := range st.ContainerStatuses {
			running = running || cs.State.Running != nil
		}
		if !running {
			// Every container stopped for the deletion: the phase is what
			// their exits say, as the kubelet's final status.
			if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways {
				st.Phase = corev1.PodSucceeded
				for _, cs := range st.ContainerStatuses {
					if t := cs.State.Terminated; t == nil || t.ExitCode != 0 {
						st.Phase = corev1.PodFailed
					}
				}
			}
		}
	}

	allReady := len(st.ContainerStatuses) > 0
	for _, cs := range st.ContainerStatuses {
		allReady = allReady && cs.Ready
	}
	gatesOK := true
	for _, g := range pod.Spec.ReadinessGates {
		_, c := podutil.GetPodConditionFromList(old.Conditions, g.ConditionType)
		if c == nil || c.Status != corev1.ConditionTrue {
			gatesOK = false
		}
	}
	// The kubelet's messages name the containers holding a condition back.
	var incomplete, unready []string
	for i, cs := range st.InitContainerStatuses {
		sidecar := isSidecar(&pod.Spec.InitContainers[i])
		if (sidecar && (cs.Started == nil || !*cs.Started)) || (!sidecar && (cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0)) {
			incomplete = append(incomplete, cs.Name)
		}
	}
	for _, cs := range st.ContainerStatuses {
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	listed := func(what string, names []string) string {
		if len(names) == 0 {
			return ""
		}
		return fmt.Sprintf("containers with %s status: [%s]", what, strings.Join(names, " "))
	}
	cond := func(t corev1.PodConditionType, ok bool, reason, message string) corev1.PodCondition {
		s := corev1.ConditionFalse
		if ok {
			s, reason, message = corev1.ConditionTrue, "", ""
		}
		c := corev1.PodCondition{Type: t, Status: s, Reason: reason, Message: message, LastTransitionTime: metav1.NewTime(time.Now().Truncate(time.Second)), ObservedGeneration: pod.Generation}
		if _, prev := podutil.GetPodConditionFromList(old.Conditions, t); prev != nil && prev.Status == s {
			c.LastTransitionTime = prev.LastTransitionTime
		}
		return c
	}
	terminal := podutil.IsPodPhaseTerminal(st.Phase)
	containersReady := allReady && !terminal
	ready := containersReady && gatesOK
	readyReason := "ContainersNotReady"
	if terminal {
		readyReason = "PodCompleted"
	}
	initReason := "ContainersNotInitialized"
	if terminal && initialized {
		initReason = ""
	}
	// Upstream's conditions in the kubelet's order; others (readiness
	// gates, DisruptionTarget, PodScheduled) are kept as they are.
	st.Conditions = append(st.Conditions,
		cond(corev1.PodReadyToStartContainers, w.sandbox != nil && !terminal, "", ""),
		cond(corev1.PodInitialized, initialized || (terminal && !initFailed && initReason == ""), initReason, listed("incomplete", incomplete)),
		cond(corev1.ContainersReady, containersReady, readyReason, listed("unready", unready)),
		cond(corev1.PodReady, ready, readyReason, listed("unready", unready)),
	)
	for _, c := range old.Conditions {
		switch c.Type {
		case corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady:
		default:
			st.Conditions = append(st.Conditions, c)
		}
	}
	if st.Phase == old.Phase {
		st.Reason, st.Message = old.Reason, old.Message
	}
	return st
}

// podPhase is the kubelet's getPhase.
func podPhase(pod *corev1.Pod, st corev1.PodStatus, initialized, initFailed bool) corev1.PodPhase {
	if podutil.IsPodPhaseTerminal(pod.Status.Phase) {
		return pod.Status.Phase // a terminal phase is final
	}
	if initFailed {
		return corev1.PodFailed
	}
	if !initialized {
		return corev1.PodPending
	}
	var running, waiting, stopped, succeeded int
	for _, cs := range st.ContainerStatuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		switch {
		case pod.Spec.RestartPolicy == corev1.RestartPolicyAlways:
			return corev1.PodRunning
		case stopped == succeeded:
			return corev1.PodSucceeded
		case pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			return corev1.PodFailed
		}
		// OnFailure: a failed container restarts.
		for _, cs := range st.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
				return corev1.PodRunning
			}
		}
		return corev1.PodRunning
	}
	return corev1.PodPending
}

func terminatedState(r *runtime.Container) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{
		ExitCode:    r.ExitCode,
		Reason:      r.Reason,
		Message:     r.Message,
		StartedAt:   metav1.NewTime(r.StartedAt),
		FinishedAt:  metav1.NewTime(r.FinishedAt),
		ContainerID: "containerd://" + r.ID,
	}
}

func (w *worker) containerStatus(pod *corev1.Pod, c *corev1.Container, rs *runs, waitReason string) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "", Started: new(bool)}
	l, prev := rs.latest[c.Name], rs.previous[c.Name]
	wait, hasWait := w.waiting[c.Name]
	switch {
	case l == nil:
		if !hasWait {
			wait = waitState{reason: waitReason}
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: wait.reason, Message: wait.message}
	case l.Running:
		cs.ContainerID = "containerd://" + l.ID
		cs.ImageID = l.ImageRef
		cs.RestartCount = int32(l.RestartCount)
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(l.StartedAt)}
		if prev != nil {
			cs.LastTerminationState.Terminated = terminatedState(prev)
		}
		started, ready := true, true
		if p := w.probes[l.ID]; p != nil {
			started, ready = p.status()
		}
		*cs.Started = started
		cs.Ready = started && ready
	default:
		cs.ContainerID = "containerd://" + l.ID
		cs.ImageID = l.ImageRef
		cs.RestartCount = int32(l.RestartCount)
		if hasWait {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: wait.reason, Message: wait.message}
			cs.LastTerminationState.Terminated = terminatedState(l)
		} else {
			cs.State.Terminated = terminatedState(l)
			if prev != nil {
				cs.LastTerminationState.Terminated = terminatedState(prev)
			}
		}
	}
	return cs
}
