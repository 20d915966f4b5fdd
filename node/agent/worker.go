package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	podutil "k8s.io/kubernetes/pkg/api/v1/pod"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"
	"k8s.io/utils/ptr"

	"github.com/barge-dev/barge/node/runtime"
)

// Waiting reasons, as the kubelet reports them.
const (
	reasonContainerCreating  = "ContainerCreating"
	reasonPodInitializing    = "PodInitializing"
	reasonCrashLoopBackOff   = "CrashLoopBackOff"
	reasonErrImagePull       = "ErrImagePull"
	reasonImagePullBackOff   = "ImagePullBackOff"
	reasonErrImageNeverPull  = "ErrImageNeverPull"
	reasonCreateConfigError  = "CreateContainerConfigError"
	reasonInvalidImageName   = "InvalidImageName"
	defaultGracePeriod       = 30 * time.Second
	defaultTerminationLogDir = "/dev/termination-log"
)

type waitState struct {
	reason, message string
}

type pullState struct {
	failures int
	retryAt  time.Time
}

// worker owns one pod: it alone starts and stops the pod's containers,
// one sync at a time, as the kubelet's pod workers do.
type worker struct {
	a    *Agent
	uid  types.UID
	wake chan struct{}

	mu   sync.Mutex
	pod  *corev1.Pod
	gone bool

	// Only the worker's goroutine touches what follows.
	sandbox *runtime.Sandbox
	waiting map[string]waitState
	pulls   map[string]*pullState
	probes  map[string]*prober // container ID → its probes
	hooked  map[string]bool    // container IDs whose postStart ran
}

func (a *Agent) podChanged(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName != a.cfg.NodeName {
		return
	}
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return
	}
	w := a.workers[pod.UID]
	if w == nil {
		w = &worker{a: a, uid: pod.UID, pod: pod, wake: make(chan struct{}, 1),
			waiting: map[string]waitState{}, pulls: map[string]*pullState{}, probes: map[string]*prober{}, hooked: map[string]bool{}}
		a.workers[pod.UID] = w
		a.wg.Go(func() { w.run(a.ctx) })
	}
	a.mu.Unlock()
	w.mu.Lock()
	w.pod = pod
	w.mu.Unlock()
	w.poke()
}

func (a *Agent) podDeleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	a.mu.Lock()
	w := a.workers[pod.UID]
	a.mu.Unlock()
	if w == nil {
		return
	}
	w.mu.Lock()
	w.pod, w.gone = pod, true
	w.mu.Unlock()
	w.poke()
}

func (a *Agent) wakeUID(uid string) {
	a.mu.Lock()
	w := a.workers[types.UID(uid)]
	a.mu.Unlock()
	if w != nil {
		w.poke()
	}
}

func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	first := true
	for {
		if !first {
			select {
			case <-ctx.Done():
				w.stopProbes(nil)
				return
			case <-w.wake:
			case <-timer.C:
			}
		}
		first = false
		w.mu.Lock()
		pod, gone := w.pod, w.gone
		w.mu.Unlock()
		if pod == nil {
			continue
		}
		next, done := w.sync(ctx, pod, gone)
		if done {
			w.a.mu.Lock()
			if w.a.workers[w.uid] == w {
				delete(w.a.workers, w.uid)
			}
			w.a.mu.Unlock()
			return
		}
		timer.Reset(next)
	}
}

func (w *worker) logf(pod *corev1.Pod) []any {
	return []any{"pod", pod.Namespace + "/" + pod.Name}
}

// sync brings the pod one step toward what its spec and phase ask.
func (w *worker) sync(ctx context.Context, pod *corev1.Pod, gone bool) (time.Duration, bool) {
	if ctx.Err() != nil {
		return 0, true
	}
	if gone {
		w.stopProbes(nil)
		if err := w.a.teardown(ctx, pod, 0); err != nil {
			w.a.log.Warn("tearing down a deleted pod", append(w.logf(pod), "err", err)...)
			return 5 * time.Second, false
		}
		return 0, true
	}
	if pod.DeletionTimestamp != nil {
		grace := defaultGracePeriod
		if pod.DeletionGracePeriodSeconds != nil {
			grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
		}
		w.stopProbes(nil)
		w.killPod(ctx, pod, grace)
		w.reportStatus(ctx, pod, true)
		// The API server removes the pod once its node confirms it
		// stopped, as a kubelet's status manager does.
		err := w.a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To[int64](0),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			w.a.log.Warn("confirming pod deletion", append(w.logf(pod), "err", err)...)
		}
		return 2 * time.Second, false
	}
	if left, ok := deadlineLeft(pod); ok && left <= 0 {
		// activeDeadlineSeconds passed: the kubelet kills the pod and
		// fails it with DeadlineExceeded.
		w.stopProbes(nil)
		w.killPod(ctx, pod, gracePeriod(pod))
		w.reportDeadlineExceeded(ctx, pod)
		return resyncInterval, false
	}
	if podutil.IsPodPhaseTerminal(pod.Status.Phase) {
		w.stopProbes(nil)
		w.killPod(ctx, pod, gracePeriod(pod))
		// What was still running (a sidecar) shows as stopped in the
		// final status; the phase stays as it was.
		w.reportStatus(ctx, pod, false)
		return resyncInterval, false
	}
	next := w.syncPod(ctx, pod)
	if left, ok := deadlineLeft(pod); ok && left < next {
		next = max(left, 10*time.Millisecond)
	}
	return next, false
}

// deadlineLeft is the time until the pod's activeDeadlineSeconds passes,
// counted from its start on this node, if it has one.
func deadlineLeft(pod *corev1.Pod) (time.Duration, bool) {
	d := pod.Spec.ActiveDeadlineSeconds
	if d == nil || pod.Status.StartTime == nil || podutil.IsPodPhaseTerminal(pod.Status.Phase) {
		return 0, false
	}
	return time.Until(pod.Status.StartTime.Add(time.Duration(*d) * time.Second)), true
}

// reportDeadlineExceeded writes the failed pod's status, as the kubelet's
// active deadline handler does.
func (w *worker) reportDeadlineExceeded(ctx context.Context, pod *corev1.Pod) {
	rs, err := w.listRuns(ctx)
	if err != nil {
		w.a.log.Warn("listing containers", append(w.logf(pod), "err", err)...)
		return
	}
	p := pod.DeepCopy()
	p.Status = w.buildStatus(pod, rs, true)
	p.Status.Phase = corev1.PodFailed
	p.Status.Reason = "DeadlineExceeded"
	p.Status.Message = "Pod was active on the node longer than the specified deadline"
	if _, err := w.a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		w.a.log.Warn("writing pod status", append(w.logf(pod), "err", err)...)
	}
}

func gracePeriod(pod *corev1.Pod) time.Duration {
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return defaultGracePeriod
}

// runs groups a pod's container runs by name: the latest and the one
// before it.
type runs struct {
	latest, previous map[string]*runtime.Container
	all              []runtime.Container
}

func (w *worker) listRuns(ctx context.Context) (*runs, error) {
	cs, err := w.a.rt.PodContainers(ctx, string(w.uid))
	if err != nil {
		return nil, err
	}
	r := &runs{latest: map[string]*runtime.Container{}, previous: map[string]*runtime.Container{}, all: cs}
	for i := range cs {
		c := &cs[i]
		if l := r.latest[c.Name]; l == nil || c.RestartCount > l.RestartCount {
			if l != nil {
				r.previous[c.Name] = l
			}
			r.latest[c.Name] = c
		} else if p := r.previous[c.Name]; p == nil || c.RestartCount > p.RestartCount {
			r.previous[c.Name] = c
		}
	}
	return r, nil
}

// syncPod runs the pod: sandbox, volumes, init containers in order, then
// containers, restarts with back-off, probes; then writes its status.
func (w *worker) syncPod(ctx context.Context, pod *corev1.Pod) time.Duration {
	next := resyncInterval
	sooner := func(d time.Duration) {
		if d > 0 && d < next {
			next = d
		}
	}
	if w.sandbox == nil {
		sb, err := w.a.rt.EnsureSandbox(ctx, pod)
		if err != nil {
			w.a.log.Warn("pod sandbox", append(w.logf(pod), "err", err)...)
			w.reportStatus(ctx, pod, false)
			return 2 * time.Second
		}
		w.sandbox = sb
		if err := w.a.writePodFiles(pod, sb); err != nil {
			w.a.log.Warn("pod files", append(w.logf(pod), "err", err)...)
			return 2 * time.Second
		}
	}
	if err := w.a.prepareVolumes(ctx, pod); err != nil {
		w.a.log.Warn("pod volumes", append(w.logf(pod), "err", err)...)
		for _, c := range allContainers(pod) {
			w.waiting[c.Name] = waitState{reason: reasonContainerCreating, message: err.Error()}
		}
		w.reportStatus(ctx, pod, false)
		return 2 * time.Second
	}
	rs, err := w.listRuns(ctx)
	if err != nil {
		w.a.log.Warn("listing containers", append(w.logf(pod), "err", err)...)
		return 2 * time.Second
	}

	initDone := true
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		l := rs.latest[c.Name]
		if isSidecar(c) {
			// A sidecar (restartPolicy Always) starts in its turn, lets
			// the next start once it has started (its startup probe
			// passed), and is restarted whenever it exits, holding
			// nothing up once the pod's containers have run.
			switch {
			case l == nil:
				sooner(w.start(ctx, pod, c, runtime.KindInit, 0))
				initDone = false
			case l.Running:
				if p := w.probes[l.ID]; p == nil || !p.isStarted() {
					initDone = false
				}
			case pod.Spec.RestartPolicy != corev1.RestartPolicyAlways && mainDone(pod, rs):
				// Stopped because the pod's work is done: it stays so.
			default:
				sooner(w.restart(ctx, pod, c, runtime.KindInit, l))
				initDone = initDone && rs.mainStarted()
			}
			if !initDone {
				break
			}
			continue
		}
		if l != nil && !l.Running && l.Exited() && l.ExitCode == 0 {
			continue
		}
		initDone = false
		switch {
		case l == nil:
			sooner(w.start(ctx, pod, c, runtime.KindInit, 0))
		case l.Running:
		case pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			// A failed init container fails the pod.
		default:
			sooner(w.restart(ctx, pod, c, runtime.KindInit, l))
		}
		break
	}
	if initDone {
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			l := rs.latest[c.Name]
			switch {
			case l == nil:
				sooner(w.start(ctx, pod, c, runtime.KindContainer, 0))
			case l.Running:
				if p := w.probes[l.ID]; p != nil {
					if why := p.killReason(); why != "" {
						w.a.log.Info("restarting container: "+why, append(w.logf(pod), "container", c.Name)...)
						w.stopContainer(ctx, pod, c, l.ID, gracePeriod(pod))
						sooner(time.Millisecond)
					}
				}
			case podutil.ContainerShouldRestart(*c, pod.Spec, l.ExitCode):
				sooner(w.restart(ctx, pod, c, runtime.KindContainer, l))
			}
		}
	}
	if initDone && pod.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		w.stopSidecarsWhenDone(ctx, pod, rs)
	}
	if rs, err = w.listRuns(ctx); err == nil {
		w.syncProbes(ctx, pod, rs)
		w.pruneRuns(ctx, rs)
		w.reportStatusFrom(ctx, pod, rs, false)
	}
	return next
}

// restart starts the next run of an exited container unless it is in
// crash-loop back-off, which it reports as CrashLoopBackOff.
func (w *worker) restart(ctx context.Context, pod *corev1.Pod, c *corev1.Container, kind string, l *runtime.Container) time.Duration {
	key := string(pod.UID) + "/" + c.Name
	b := w.a.crashBackoff
	if b.IsInBackOffSince(key, l.FinishedAt) {
		wait := b.Get(key) - time.Since(l.FinishedAt)
		w.waiting[c.Name] = waitState{reason: reasonCrashLoopBackOff,
			message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", b.Get(key), c.Name, pod.Name, pod.Namespace, pod.UID)}
		return max(wait, 10*time.Millisecond)
	}
	b.Next(key, l.FinishedAt)
	return w.start(ctx, pod, c, kind, l.RestartCount+1)
}

// start pulls the image, resolves the container's environment and mounts
// and starts one run. A failure it can report is recorded in w.waiting;
// the result is when to look again (0: the next regular sync).
func (w *worker) start(ctx context.Context, pod *corev1.Pod, c *corev1.Container, kind string, restartCount int) time.Duration {
	img, retry := w.pull(ctx, pod, c)
	if img == nil {
		return retry
	}
	env, err := w.a.containerEnv(ctx, pod, c)
	if err != nil {
		w.waiting[c.Name] = waitState{reason: reasonCreateConfigError, message: err.Error()}
		return 2 * time.Second
	}
	vars := map[string]string{}
	for _, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok {
			vars[k] = v
		}
	}
	mounts, termPath, err := w.a.containerMounts(pod, c, restartCount, vars)
	if err != nil {
		w.waiting[c.Name] = waitState{reason: reasonCreateConfigError, message: err.Error()}
		return 2 * time.Second
	}
	mapping := expansion.MappingFuncFor(vars)
	expand := func(in []string) []string {
		var out []string
		for _, s := range in {
			out = append(out, expansion.Expand(s, mapping))
		}
		return out
	}
	delete(w.waiting, c.Name)
	id, err := w.a.rt.StartContainer(ctx, runtime.ContainerConfig{
		Pod: pod, Container: c, Kind: kind, RestartCount: restartCount, Sandbox: w.sandbox, Image: img,
		Command: expand(c.Command), Args: expand(c.Args), Env: env, Mounts: mounts,
		Hostname: w.hostname(pod), TerminationMessage: termPath,
	})
	if err != nil {
		w.a.log.Info("container failed to start", append(w.logf(pod), "container", c.Name, "err", err)...)
		return 10 * time.Millisecond
	}
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		if msg, err := w.runHook(ctx, pod, c, id, c.Lifecycle.PostStart, gracePeriod(pod)); err != nil {
			// The kubelet kills a container whose postStart hook failed.
			w.a.log.Info("postStart hook failed; killing the container", append(w.logf(pod), "container", c.Name, "err", err, "output", msg)...)
			_ = w.a.rt.StopContainer(ctx, id, 0)
		}
	}
	return 0
}

// pull returns the container's image, or nil and when to retry, with
// ErrImagePull / ImagePullBackOff recorded as the kubelet reports them.
func (w *worker) pull(ctx context.Context, pod *corev1.Pod, c *corev1.Container) (img containerd.Image, retry time.Duration) {
	ps := w.pulls[c.Image]
	if ps != nil && time.Now().Before(ps.retryAt) {
		w.waiting[c.Name] = waitState{reason: reasonImagePullBackOff, message: fmt.Sprintf("Back-off pulling image %q", c.Image)}
		return nil, time.Until(ps.retryAt)
	}
	if _, err := runtime.NormalizeImage(c.Image); err != nil {
		w.waiting[c.Name] = waitState{reason: reasonInvalidImageName, message: err.Error()}
		return nil, resyncInterval
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	i, err := w.a.rt.EnsureImageWithAuth(pctx, c.Image, c.ImagePullPolicy, w.a.pullCredentials(pctx, pod, c.Image))
	if err != nil {
		if errors.Is(err, runtime.ErrImageNeverPull) {
			w.waiting[c.Name] = waitState{reason: reasonErrImageNeverPull, message: fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)}
			return nil, resyncInterval
		}
		if ps == nil {
			ps = &pullState{}
			w.pulls[c.Image] = ps
		}
		ps.failures++
		delay := w.a.cfg.BackoffBase << min(ps.failures-1, 10)
		delay = min(delay, w.a.cfg.BackoffMax)
		ps.retryAt = time.Now().Add(delay)
		w.waiting[c.Name] = waitState{reason: reasonErrImagePull, message: err.Error()}
		w.a.log.Info("image pull failed", append(w.logf(pod), "image", c.Image, "err", err)...)
		return nil, delay
	}
	delete(w.pulls, c.Image)
	return i, 0
}

// pruneRuns keeps the latest run of each container and the one before it
// (for `logs --previous`), as the kubelet does, and removes older ones.
func (w *worker) pruneRuns(ctx context.Context, rs *runs) {
	for _, c := range rs.all {
		if c.Running {
			continue
		}
		if l := rs.latest[c.Name]; l != nil && l.ID == c.ID {
			continue
		}
		if p := rs.previous[c.Name]; p != nil && p.ID == c.ID {
			continue
		}
		if err := w.a.rt.RemoveContainer(ctx, c.ID); err != nil {
			w.a.log.Warn("removing an old container run", "container", c.ID, "err", err)
		}
	}
}

func (w *worker) stopContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, grace time.Duration) {
	start := time.Now()
	if c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if msg, err := w.runHook(ctx, pod, c, id, c.Lifecycle.PreStop, grace); err != nil {
			w.a.log.Info("preStop hook failed", append(w.logf(pod), "container", c.Name, "err", err, "output", msg)...)
		}
	}
	// The hook's time counts against the grace period, as in the kubelet.
	remaining := max(grace-time.Since(start), 0)
	if grace > 0 && remaining < 2*time.Second {
		remaining = 2 * time.Second
	}
	if err := w.a.rt.StopContainer(ctx, id, remaining); err != nil {
		w.a.log.Warn("stopping container", append(w.logf(pod), "container", id, "err", err)...)
	}
}

// killPod stops every running container of the pod, in parallel, each
// with its preStop hook and the grace period.
func (w *worker) killPod(ctx context.Context, pod *corev1.Pod, grace time.Duration) {
	rs, err := w.listRuns(ctx)
	if err != nil {
		w.a.log.Warn("listing containers", append(w.logf(pod), "err", err)...)
		return
	}
	var wg sync.WaitGroup
	for _, r := range rs.all {
		if !r.Running {
			continue
		}
		c := findContainer(pod, r.Name)
		id := r.ID
		wg.Go(func() { w.stopContainer(ctx, pod, c, id, grace) })
	}
	wg.Wait()
}

// teardown stops and removes everything the pod has on the node.
func (a *Agent) teardown(ctx context.Context, pod *corev1.Pod, grace time.Duration) error {
	cs, err := a.rt.PodContainers(ctx, string(pod.UID))
	if err != nil {
		return err
	}
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, c := range cs {
		wg.Go(func() {
			if c.Running {
				if err := a.rt.StopContainer(ctx, c.ID, grace); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
			if err := a.rt.RemoveContainer(ctx, c.ID); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.tokens.forget(pod.UID)
	if err := a.rt.RemoveSandbox(ctx, pod); err != nil {
		return err
	}
	return a.rt.RemovePodLogs(pod.Namespace, pod.Name, string(pod.UID))
}

// isSidecar reports whether an init container is a sidecar: one with
// restartPolicy Always, which runs beside the pod's containers.
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// stopSidecarsWhenDone stops a pod's sidecars once every one of its
// containers has exited for good, as the kubelet does, so a Job's pod
// with a sidecar completes.
func (w *worker) stopSidecarsWhenDone(ctx context.Context, pod *corev1.Pod, rs *runs) {
	if !mainDone(pod, rs) {
		return
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if l := rs.latest[c.Name]; isSidecar(c) && l != nil && l.Running {
			w.stopContainer(ctx, pod, c, l.ID, gracePeriod(pod))
		}
	}
}

// mainDone reports whether every one of the pod's containers has exited
// and will not be restarted.
func mainDone(pod *corev1.Pod, rs *runs) bool {
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		l := rs.latest[c.Name]
		if l == nil || l.Running || podutil.ContainerShouldRestart(*c, pod.Spec, l.ExitCode) {
			return false
		}
	}
	return true
}

// mainStarted reports whether any of the pod's containers has run.
func (r *runs) mainStarted() bool {
	for _, l := range r.latest {
		if l.Kind == runtime.KindContainer {
			return true
		}
	}
	return false
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, c := range allContainers(pod) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func allContainers(pod *corev1.Pod) []*corev1.Container {
	var out []*corev1.Container
	for i := range pod.Spec.InitContainers {
		out = append(out, &pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

// hostname is the container's host name: a hostNetwork pod shares the
// node's, as under the kubelet.
func (w *worker) hostname(pod *corev1.Pod) string {
	if pod.Spec.HostNetwork {
		return w.a.cfg.NodeName
	}
	return podHostname(pod)
}

func podHostname(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	return truncateHostname(pod.Name)
}

func truncateHostname(s string) string {
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-.")
	}
	return s
}
