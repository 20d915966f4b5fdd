package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/probe"
	httpprobe "k8s.io/kubernetes/pkg/probe/http"

	"github.com/barge-dev/barge/node/runtime"
)

// prober runs one container run's startup, liveness and readiness probes
// and holds their results for the pod's worker.
type prober struct {
	cancel context.CancelFunc
	wake   func()

	mu      sync.Mutex
	started bool
	ready   bool
	kill    string // why the container must be restarted, once it must
}

func (p *prober) status() (started, ready bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started, p.ready
}

func (p *prober) killReason() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kill
}

func (p *prober) isStarted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// syncProbes starts the probes of containers that now run and stops
// those of runs that ended.
func (w *worker) syncProbes(ctx context.Context, pod *corev1.Pod, rs *runs) {
	running := map[string]bool{}
	for _, r := range rs.latest {
		if !r.Running {
			continue
		}
		c := findContainer(pod, r.Name)
		if c == nil || (r.Kind != runtime.KindContainer && !isSidecar(c)) {
			continue
		}
		running[r.ID] = true
		if w.probes[r.ID] != nil {
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		p := &prober{cancel: cancel, wake: w.poke, started: c.StartupProbe == nil, ready: c.ReadinessProbe == nil}
		w.probes[r.ID] = p
		id := r.ID
		if c.StartupProbe != nil {
			go w.probeLoop(pctx, p, pod, c, id, "startup", c.StartupProbe)
		}
		if c.LivenessProbe != nil {
			go w.probeLoop(pctx, p, pod, c, id, "liveness", c.LivenessProbe)
		}
		if c.ReadinessProbe != nil {
			go w.probeLoop(pctx, p, pod, c, id, "readiness", c.ReadinessProbe)
		}
	}
	w.stopProbes(running)
}

// stopProbes stops the probes of every run not in keep (nil: all).
func (w *worker) stopProbes(keep map[string]bool) {
	for id, p := range w.probes {
		if !keep[id] {
			p.cancel()
			delete(w.probes, id)
		}
	}
}

func seconds(v, def int32) time.Duration {
	if v <= 0 {
		v = def
	}
	return time.Duration(v) * time.Second
}

func (w *worker) probeLoop(ctx context.Context, p *prober, pod *corev1.Pod, c *corev1.Container, id, kind string, pr *corev1.Probe) {
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	if pr.InitialDelaySeconds > 0 && !wait(time.Duration(pr.InitialDelaySeconds)*time.Second) {
		return
	}
	period := seconds(pr.PeriodSeconds, 10)
	successThreshold := max(pr.SuccessThreshold, 1)
	failureThreshold := max(pr.FailureThreshold, 1)
	var successes, failures int32
	for {
		switch {
		case kind == "startup" && p.isStarted():
			return
		case kind != "startup" && !p.isStarted():
		default:
			ok, msg := w.probeOnce(ctx, pod, c, id, pr)
			if ctx.Err() != nil {
				return
			}
			if ok {
				failures = 0
				successes++
			} else {
				successes = 0
				failures++
				w.a.log.Debug("probe failed", "pod", pod.Namespace+"/"+pod.Name, "container", c.Name, "probe", kind, "output", msg)
			}
			changed := false
			p.mu.Lock()
			switch kind {
			case "startup":
				if successes >= 1 && !p.started {
					p.started, changed = true, true
				} else if failures >= failureThreshold && p.kill == "" {
					p.kill, changed = fmt.Sprintf("startup probe failed: %s", msg), true
				}
			case "liveness":
				if failures >= failureThreshold && p.kill == "" {
					p.kill, changed = fmt.Sprintf("liveness probe failed: %s", msg), true
				}
			case "readiness":
				if successes >= successThreshold && !p.ready {
					p.ready, changed = true, true
				} else if failures >= failureThreshold && p.ready {
					p.ready, changed = false, true
				}
			}
			done := p.kill != ""
			p.mu.Unlock()
			if changed {
				p.wake()
			}
			if done {
				return
			}
		}
		if !wait(period) {
			return
		}
	}
}

func (w *worker) podIPString() string {
	if w.sandbox == nil {
		return ""
	}
	return w.sandbox.IP.String()
}

// probeOnce runs a probe once: exec in the container, or an HTTP GET,
// TCP connect or gRPC health check from the node to the pod.
func (w *worker) probeOnce(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, pr *corev1.Probe) (bool, string) {
	timeout := seconds(pr.TimeoutSeconds, 1)
	h := pr.ProbeHandler
	return w.runHandler(ctx, c, id, &h, timeout)
}

func (w *worker) runHandler(ctx context.Context, c *corev1.Container, id string, h *corev1.ProbeHandler, timeout time.Duration) (bool, string) {
	rt := w.a.rt
	podIP := w.podIPString()
	switch {
	case h.Exec != nil:
		out, code, err := rt.Exec(ctx, id, h.Exec.Command, timeout)
		if err != nil {
			return false, err.Error()
		}
		if code != 0 {
			return false, fmt.Sprintf("command %q exited with %d: %s", h.Exec.Command, code, out)
		}
		return true, string(out)
	case h.HTTPGet != nil:
		req, err := httpprobe.NewRequestForHTTPGetAction(h.HTTPGet, c, podIP, "probe")
		if err != nil {
			return false, err.Error()
		}
		client := &http.Client{
			Timeout: timeout,
			Transport: &http.Transport{
				DialContext:       rt.DialContext,
				TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // as the kubelet: probes do not verify
				DisableKeepAlives: true,
			},
			CheckRedirect: httpprobe.RedirectChecker(false),
		}
		res, out, err := httpprobe.DoHTTPProbe(req, client)
		if err != nil {
			return false, err.Error()
		}
		return res != probe.Failure, out
	case h.TCPSocket != nil:
		port, err := probe.ResolveContainerPort(h.TCPSocket.Port, c)
		if err != nil {
			return false, err.Error()
		}
		host := h.TCPSocket.Host
		if host == "" {
			host = podIP
		}
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		conn, err := rt.DialContext(dctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	case h.GRPC != nil:
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		addr := net.JoinHostPort(podIP, strconv.Itoa(int(h.GRPC.Port)))
		conn, err := grpc.NewClient("passthrough:///"+addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return rt.DialContext(ctx, "tcp", a) }))
		if err != nil {
			return false, err.Error()
		}
		defer conn.Close()
		svc := ""
		if h.GRPC.Service != nil {
			svc = *h.GRPC.Service
		}
		resp, err := healthpb.NewHealthClient(conn).Check(dctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			return false, err.Error()
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return false, "service unhealthy (responded with " + resp.GetStatus().String() + ")"
		}
		return true, ""
	}
	return false, "probe has no handler"
}

// runHook runs a postStart or preStop hook: exec in the container, an
// HTTP GET or a sleep.
func (w *worker) runHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, h *corev1.LifecycleHandler, timeout time.Duration) (string, error) {
	if h.Sleep != nil {
		t := time.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return "", nil
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ph := corev1.ProbeHandler{Exec: h.Exec, HTTPGet: h.HTTPGet, TCPSocket: h.TCPSocket}
	ok, msg := w.runHandler(ctx, c, id, &ph, timeout)
	if !ok {
		return msg, fmt.Errorf("hook failed: %s", msg)
	}
	return msg, nil
}
