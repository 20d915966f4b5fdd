package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Reasons of a terminated container, as the kubelet reports them.
const (
	ReasonCompleted  = "Completed"
	ReasonError      = "Error"
	ReasonOOMKilled  = "OOMKilled"
	ReasonStartError = "StartError"
	ReasonUnknown    = "ContainerStatusUnknown"
)

// ContainerConfig is one run of a container, everything resolved: the
// agent expands env and arguments and prepares the volumes.
type ContainerConfig struct {
	Pod          *corev1.Pod
	Container    *corev1.Container
	Kind         string // KindContainer or KindInit
	RestartCount int
	Sandbox      *Sandbox
	Image        containerd.Image
	// Command and Args as the pod spec gives them, $(VAR) expanded; both
	// empty runs the image's entrypoint and cmd.
	Command, Args []string
	Env           []string // NAME=value, over the image's
	Mounts        []specs.Mount
	Hostname      string
	// TerminationMessage is the host file mounted at the container's
	// terminationMessagePath; read when it exits.
	TerminationMessage string
}

// Container is what containerd knows of one run of a container.
type Container struct {
	ID           string
	Name         string
	Kind         string
	RestartCount int
	Running      bool
	PID          uint32
	CreatedAt    time.Time
	StartedAt    time.Time
	FinishedAt   time.Time
	ExitCode     int32
	Reason       string
	Message      string
	ImageRef     string
	LogPath      string
}

// Exited reports whether the container ran and stopped (or never
// started).
func (c *Container) Exited() bool { return !c.Running && (c.Reason != "" || !c.FinishedAt.IsZero()) }

func (r *Runtime) cgroupPath(id string) string {
	return "/barge/" + r.cfg.Namespace + "/" + id
}

// StartContainer creates and starts one run of a container. A container
// that cannot start (its command does not exist, say) is recorded as
// terminated with reason StartError and the runtime's message, and the
// error is returned too.
func (r *Runtime) StartContainer(ctx context.Context, cc ContainerConfig) (string, error) {
	ctx = r.ctx(ctx)
	pod, ctr := cc.Pod, cc.Container
	id := ContainerID(pod, ctr.Name, cc.RestartCount)
	logPath := r.LogPath(pod.Namespace, pod.Name, string(pod.UID), ctr.Name, cc.RestartCount)
	labels := podLabels(pod)
	labels[LabelContainerName] = ctr.Name
	labels[LabelRestartCount] = strconv.Itoa(cc.RestartCount)
	labels[LabelKind] = cc.Kind
	labels[LabelLogPath] = logPath
	labels[LabelNetns] = cc.Sandbox.Netns
	labels[labelImageRef] = imageRef(cc.Image)
	if ctr.Stdin {
		labels[labelStdin] = "true"
	}
	if ctr.TTY {
		labels[labelTTY] = "true"
	}
	if cc.TerminationMessage != "" {
		labels["barge.dev/termination-message-path"] = cc.TerminationMessage
	}
	if ctr.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		labels[labelMessageFromLog] = "true"
	}

	// A leftover of an earlier attempt with the same restart count (the
	// agent died between create and start) is replaced.
	if old, err := r.client.LoadContainer(ctx, id); err == nil {
		if t, err := old.Task(ctx, nil); err == nil {
			_, _ = t.Delete(ctx, containerd.WithProcessKill)
		}
		_ = old.Delete(ctx, containerd.WithSnapshotCleanup)
	}
	opts, err := r.specOpts(cc, id)
	if err != nil {
		return "", err
	}
	c, err := r.client.NewContainer(ctx, id,
		containerd.WithImage(cc.Image),
		containerd.WithImageStopSignal(cc.Image, "SIGTERM"),
		containerd.WithNewSnapshot(id, cc.Image),
		containerd.WithNewSpec(opts...),
		containerd.WithContainerLabels(labels))
	if err != nil {
		return "", fmt.Errorf("runtime: create container %s of %s/%s: %w", ctr.Name, pod.Namespace, pod.Name, err)
	}
	s, err := newStreams(logPath, ctr.Stdin)
	if err != nil {
		return id, r.startFailed(ctx, c, fmt.Errorf("runtime: %w", err))
	}
	copts := []cio.Opt{cio.WithFIFODir(filepath.Join(r.cfg.StateDir, "fifo"))}
	if ctr.TTY {
		copts = append(copts, cio.WithStreams(s.stdin(), s.writer("stdout"), nil), cio.WithTerminal)
	} else {
		copts = append(copts, cio.WithStreams(s.stdin(), s.writer("stdout"), s.writer("stderr")))
	}
	task, err := c.NewTask(ctx, cio.NewCreator(copts...))
	if err != nil {
		s.close()
		return id, r.startFailed(ctx, c, err)
	}
	wctx := r.ctx(context.Background())
	exitCh, err := task.Wait(wctx)
	if err != nil {
		_, _ = task.Delete(ctx, containerd.WithProcessKill)
		s.close()
		return id, r.startFailed(ctx, c, err)
	}
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(ctx, containerd.WithProcessKill)
		s.close()
		return id, r.startFailed(ctx, c, err)
	}
	if _, err := c.SetLabels(ctx, map[string]string{labelStartedAt: time.Now().UTC().Format(time.RFC3339Nano)}); err != nil {
		r.log.Warn("record start", "container", id, "err", err)
	}
	r.watch(id, c, task, exitCh, s)
	return id, nil
}

// startFailed records a container that never ran as terminated, as the
// kubelet reports a failed start (exit code 128, StartError).
func (r *Runtime) startFailed(ctx context.Context, c containerd.Container, cause error) error {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	_, err := c.SetLabels(ctx, map[string]string{
		labelExitCode: "128", labelReason: ReasonStartError, labelMessage: labelValue(runcMessage(cause)),
		labelFinishedAt: now, labelStartedAt: now,
	})
	if err != nil {
		r.log.Warn("record failed start", "container", c.ID(), "err", err)
	}
	return fmt.Errorf("runtime: start container %s: %w", c.ID(), cause)
}

// runcMessage keeps the part of a runc error a person reads: the OCI
// runtime's complaint, not the gRPC wrapping around it.
func runcMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "OCI runtime"); i >= 0 {
		msg = msg[i:]
	}
	return strings.TrimSpace(msg)
}

// labelValue fits a value into a containerd label (key and value at most
// 4096 bytes together).
func labelValue(s string) string {
	const max = 3000
	if len(s) > max {
		return s[:max]
	}
	return s
}

func imageRef(img containerd.Image) string {
	if img == nil {
		return ""
	}
	name := img.Name()
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	if i := strings.Index(name, "@"); i >= 0 {
		name = name[:i]
	}
	return name + "@" + img.Target().Digest.String()
}

// watch waits for a container's exit, records it and deletes the task.
// A lost connection to containerd (a containerd restart) is retried: the
// shim keeps the container running meanwhile.
func (r *Runtime) watch(id string, c containerd.Container, task containerd.Task, exitCh <-chan containerd.ExitStatus, s *streams) {
	r.mu.Lock()
	if r.waiting[id] {
		r.mu.Unlock()
		return
	}
	r.waiting[id] = true
	r.streams[id] = s
	r.mu.Unlock()
	go func() {
		ctx := r.ctx(context.Background())
		st := <-exitCh
		for st.Error() != nil {
			select {
			case <-r.closed:
				// The agent is stopping: the container runs on, and the
				// next agent adopts it.
				return
			default:
			}
			r.log.Warn("waiting for container exit: reconnecting to containerd", "container", id, "err", st.Error())
			var ok bool
			if st, ok = r.rewait(ctx, c); !ok {
				return
			}
		}
		r.recordExit(ctx, c, task, st, s.close)
		s.close()
		r.mu.Lock()
		delete(r.waiting, id)
		delete(r.streams, id)
		r.mu.Unlock()
		labels, _ := c.Labels(ctx)
		r.cfg.OnExit(labels[LabelPodUID])
	}()
}

// rewait waits for the exit again after containerd came back; a task that
// is gone (containerd lost it) counts as exited with status unknown.
func (r *Runtime) rewait(ctx context.Context, c containerd.Container) (containerd.ExitStatus, bool) {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		t := time.NewTimer(delay)
		select {
		case <-r.closed:
			t.Stop()
			return containerd.ExitStatus{}, false
		case <-t.C:
		}
		task, err := c.Task(ctx, nil)
		if errdefs.IsNotFound(err) {
			return *containerd.NewExitStatus(137, time.Now(), nil), true
		}
		if err != nil {
			continue
		}
		ch, err := task.Wait(ctx)
		if err != nil {
			continue
		}
		return <-ch, true
	}
}

// drain, if not nil, finishes copying the container's output into its
// log; it is called before a termination message is taken from the log.
func (r *Runtime) recordExit(ctx context.Context, c containerd.Container, task containerd.Task, st containerd.ExitStatus, drain func()) {
	code := int32(st.ExitCode())
	reason := r.exitReason(c.ID(), code)
	at := st.ExitTime()
	if at.IsZero() {
		at = time.Now()
	}
	labels := map[string]string{
		labelExitCode:   strconv.Itoa(int(code)),
		labelReason:     reason,
		labelFinishedAt: at.UTC().Format(time.RFC3339Nano),
	}
	if all, err := c.Labels(ctx); err == nil {
		if p := all["barge.dev/termination-message-path"]; p != "" {
			if b, err := readLimited(p, 2048); err == nil && len(b) > 0 {
				labels[labelMessage] = labelValue(string(b))
			}
		}
		// FallbackToLogsOnError: a failed container that wrote no
		// message gets the end of its log, as under the kubelet.
		if labels[labelMessage] == "" && code != 0 && all[labelMessageFromLog] == "true" {
			if drain != nil {
				drain()
			}
			if msg := logTail(all[LabelLogPath], 80, 2048); msg != "" {
				labels[labelMessage] = labelValue(msg)
			}
		}
	}
	if _, err := c.SetLabels(ctx, labels); err != nil {
		r.log.Warn("record exit", "container", c.ID(), "err", err)
	}
	if task != nil {
		if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			r.log.Warn("delete task", "container", c.ID(), "err", err)
		}
	} else if t, err := c.Task(ctx, nil); err == nil {
		_, _ = t.Delete(ctx, containerd.WithProcessKill)
	}
}

func readLimited(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	m, err := f.Read(b)
	if m == 0 && err != nil {
		return nil, err
	}
	return b[:m], nil
}

// PodContainers lists the runs of a pod's containers (not the sandbox)
// that containerd still holds, oldest first per container.
func (r *Runtime) PodContainers(ctx context.Context, uid string) ([]Container, error) {
	ctx = r.ctx(ctx)
	cs, err := r.client.Containers(ctx, fmt.Sprintf("labels.%q==%q", LabelPodUID, uid))
	if err != nil {
		return nil, fmt.Errorf("runtime: list containers of pod %s: %w", uid, err)
	}
	var out []Container
	for _, c := range cs {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			continue
		}
		if info.Labels[LabelKind] == KindSandbox {
			continue
		}
		out = append(out, r.describe(ctx, c, info.Labels, info.CreatedAt))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].RestartCount < out[j].RestartCount
	})
	return out, nil
}

func (r *Runtime) describe(ctx context.Context, c containerd.Container, labels map[string]string, created time.Time) Container {
	out := Container{
		ID:        c.ID(),
		Name:      labels[LabelContainerName],
		Kind:      labels[LabelKind],
		CreatedAt: created,
		ImageRef:  labels[labelImageRef],
		LogPath:   labels[LabelLogPath],
		Reason:    labels[labelReason],
		Message:   labels[labelMessage],
	}
	out.RestartCount, _ = strconv.Atoi(labels[LabelRestartCount])
	out.StartedAt, _ = time.Parse(time.RFC3339Nano, labels[labelStartedAt])
	if v, ok := labels[labelExitCode]; ok {
		code, _ := strconv.Atoi(v)
		out.ExitCode = int32(code)
		out.FinishedAt, _ = time.Parse(time.RFC3339Nano, labels[labelFinishedAt])
		return out
	}
	t, err := c.Task(ctx, nil)
	if err != nil {
		if errdefs.IsNotFound(err) {
			// Neither running nor recorded: containerd lost the task (a
			// reboot) and nobody saw it exit.
			out.ExitCode, out.Reason, out.FinishedAt = 137, ReasonUnknown, time.Now()
			out.Message = "The container could not be located when the pod was terminated"
		} else {
			out.Running = true // cannot tell; do not restart what may run
		}
		return out
	}
	st, err := t.Status(ctx)
	if err != nil {
		out.Running = true
		return out
	}
	switch st.Status {
	case containerd.Running, containerd.Paused, containerd.Pausing:
		out.Running, out.PID = true, t.Pid()
	case containerd.Created:
		out.Running = true // being started
	default:
		// Stopped, and the waiter has not recorded the exit yet: the same
		// reason it will record, so a status read in between does not
		// report an OOM kill as a plain error.
		out.ExitCode = int32(st.ExitStatus)
		out.FinishedAt = st.ExitTime
		out.Reason = r.exitReason(c.ID(), out.ExitCode)
	}
	return out
}

// exitReason is the kubelet's reason for an exit: OOMKilled when the
// kernel's OOM killer struck in the container's cgroup (read while the
// task, and so the cgroup, still exists), else Completed or Error.
func (r *Runtime) exitReason(id string, code int32) string {
	switch {
	case oomKilled(r.cgroupPath(id)):
		return ReasonOOMKilled
	case code == 0:
		return ReasonCompleted
	default:
		return ReasonError
	}
}

// StopContainer stops a running container as the kubelet does: signal
// (the image's stop signal or SIGTERM), up to grace for it to exit, then
// SIGKILL. It returns once the exit is recorded.
func (r *Runtime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.ctx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("runtime: stop %s: %w", id, err)
	}
	t, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("runtime: stop %s: %w", id, err)
	}
	r.mu.Lock()
	s := r.streams[id]
	r.mu.Unlock()
	var done <-chan struct{}
	if s != nil {
		done = s.done
	} else {
		// No waiter (not adopted): wait here.
		ch, err := t.Wait(ctx)
		if err != nil {
			return fmt.Errorf("runtime: stop %s: %w", id, err)
		}
		d := make(chan struct{})
		go func() {
			st := <-ch
			r.recordExit(ctx, c, t, st, nil)
			close(d)
		}()
		done = d
	}
	sig, err := containerd.GetStopSignal(ctx, c, syscall.SIGTERM)
	if err != nil {
		sig = syscall.SIGTERM
	}
	if grace > 0 {
		if err := t.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
			r.log.Warn("stop signal", "container", id, "err", err)
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-done:
			return nil
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := t.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		r.log.Warn("kill", "container", id, "err", err)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RemoveContainer deletes an exited container, its snapshot and its log.
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	ctx = r.ctx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("runtime: remove %s: %w", id, err)
	}
	labels, _ := c.Labels(ctx)
	if t, err := c.Task(ctx, nil); err == nil {
		_, _ = t.Delete(ctx, containerd.WithProcessKill)
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("runtime: remove %s: %w", id, err)
	}
	if p := labels[LabelLogPath]; p != "" {
		_ = os.Remove(p)
	}
	return nil
}

// RemovePodLogs removes a pod's log directory once the pod is gone.
func (r *Runtime) RemovePodLogs(namespace, name, uid string) error {
	return os.RemoveAll(r.PodDir(namespace, name, uid))
}

// Sandboxes lists every pod sandbox recorded in the node's namespace, as
// pod UID → namespace/name, so the agent can remove those of pods that no
// longer exist.
func (r *Runtime) Sandboxes(ctx context.Context) (map[string]*corev1.Pod, error) {
	ctx = r.ctx(ctx)
	cs, err := r.client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("runtime: list containers: %w", err)
	}
	out := map[string]*corev1.Pod{}
	for _, c := range cs {
		labels, err := c.Labels(ctx)
		if err != nil {
			continue
		}
		uid := labels[LabelPodUID]
		if uid == "" {
			continue
		}
		p := &corev1.Pod{}
		p.Namespace, p.Name, p.UID = labels[LabelPodNamespace], labels[LabelPodName], types.UID(uid)
		out[uid] = p
	}
	return out, nil
}

// Adopt attaches to every container a previous agent left running: its
// output goes to its log file again, and its exit is recorded. Containers
// that exited meanwhile are recorded now.
func (r *Runtime) Adopt(ctx context.Context) error {
	ctx = r.ctx(ctx)
	cs, err := r.client.Containers(ctx)
	if err != nil {
		return fmt.Errorf("runtime: adopt: %w", err)
	}
	var errs []error
	for _, c := range cs {
		labels, err := c.Labels(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		kind := labels[LabelKind]
		if kind != KindContainer && kind != KindInit {
			continue
		}
		if _, done := labels[labelExitCode]; done {
			continue
		}
		if err := r.adopt(ctx, c, labels); err != nil {
			errs = append(errs, fmt.Errorf("adopt %s: %w", c.ID(), err))
		}
	}
	return errors.Join(errs...)
}

func (r *Runtime) adopt(ctx context.Context, c containerd.Container, labels map[string]string) error {
	r.mu.Lock()
	known := r.waiting[c.ID()]
	r.mu.Unlock()
	if known {
		return nil
	}
	s, err := newStreams(labels[LabelLogPath], labels[labelStdin] == "true")
	if err != nil {
		return err
	}
	var attach cio.Attach
	if labels[labelTTY] == "true" {
		attach = cio.NewAttach(cio.WithStreams(s.stdin(), s.writer("stdout"), nil), cio.WithTerminal)
	} else {
		attach = cio.NewAttach(cio.WithStreams(s.stdin(), s.writer("stdout"), s.writer("stderr")))
	}
	t, err := c.Task(ctx, attach)
	if errdefs.IsNotFound(err) {
		s.close()
		// Created but never started, or lost: recorded as unknown.
		r.recordExit(ctx, c, nil, *containerd.NewExitStatus(137, time.Now(), nil), nil)
		_, _ = c.SetLabels(ctx, map[string]string{labelReason: ReasonUnknown})
		return nil
	}
	if err != nil {
		s.close()
		return err
	}
	ch, err := t.Wait(r.ctx(context.Background()))
	if err != nil {
		s.close()
		return err
	}
	r.log.Info("adopted container", "container", c.ID(), "pod", labels[LabelPodNamespace]+"/"+labels[LabelPodName])
	r.watch(c.ID(), c, t, ch, s)
	return nil
}

// specOpts builds the OCI spec of a container run.
func (r *Runtime) specOpts(cc ContainerConfig, id string) ([]oci.SpecOpts, error) {
	ctr := cc.Container
	opts := []oci.SpecOpts{
		oci.WithDefaultSpec(),
		oci.WithDefaultUnixDevices,
		oci.WithImageConfig(cc.Image),
	}
	switch {
	case len(cc.Command) > 0:
		opts = append(opts, oci.WithProcessArgs(append(append([]string{}, cc.Command...), cc.Args...)...))
	case len(cc.Args) > 0:
		opts = append(opts, oci.WithImageConfigArgs(cc.Image, cc.Args))
	}
	if len(cc.Env) > 0 {
		opts = append(opts, oci.WithEnv(cc.Env))
	}
	if ctr.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(ctr.WorkingDir))
	}
	if ctr.TTY {
		opts = append(opts, oci.WithTTY)
	}
	if cc.Hostname != "" {
		opts = append(opts, oci.WithHostname(cc.Hostname))
	}
	opts = append(opts,
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: cc.Sandbox.Netns}),
		oci.WithCgroup(r.cgroupPath(id)),
		oci.WithMounts(cc.Mounts),
	)
	res, err := resourceOpts(ctr)
	if err != nil {
		return nil, err
	}
	opts = append(opts, res...)
	sec, err := securityOpts(cc.Pod, ctr)
	if err != nil {
		return nil, err
	}
	return append(opts, sec...), nil
}

// labelMessageFromLog marks a container whose termination message falls
// back to its log (terminationMessagePolicy FallbackToLogsOnError).
const labelMessageFromLog = "barge.dev/termination-message-from-log"

// logTail is the text of the last lines of a CRI log file, at most
// maxBytes of it, byte for byte as the container wrote it: what
// FallbackToLogsOnError reports.
func logTail(path string, lines, maxBytes int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var text strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		// "TIMESTAMP STREAM TAG CONTENT"; tag P is a partial line, F
		// ends one.
		f := strings.SplitN(l, " ", 4)
		if len(f) < 4 {
			continue
		}
		text.WriteString(f[3])
		if f[2] != "P" {
			text.WriteByte('\n')
		}
	}
	out := text.String()
	// The last lines: cut after the newline that precedes them.
	if n := strings.Count(out, "\n"); n > lines {
		i := 0
		for skip := n - lines; skip > 0; skip-- {
			i += strings.IndexByte(out[i:], '\n') + 1
		}
		out = out[i:]
	}
	if len(out) > maxBytes {
		out = out[len(out)-maxBytes:]
	}
	return out
}
