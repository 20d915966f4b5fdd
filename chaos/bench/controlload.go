package bench

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// Namespaces of the control bench's rows.
const (
	nsPods     = "bench-pods"
	nsDeploy   = "bench-deploy"
	nsMutate   = "bench-mutate"
	nsFailover = "bench-failover"
)

const (
	podCreators    = 16               // concurrent pod creates
	rowTimeout     = 20 * time.Minute // for a row to finish
	pollInterval   = 100 * time.Millisecond
	progressEvery  = 5 * time.Second
	mutateKeys     = 100
	callTimeout    = 10 * time.Second
	failoverWait   = 90 * time.Second // kill → probe bound, at most
	probeAttemptTO = time.Second
)

// benchPod is a pod with one container; hollow nodes run nothing.
func benchPod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{{Name: "c", Image: "busybox:1"}},
			TerminationGracePeriodSeconds: ptr.To[int64](0),
		},
	}
}

func (s *setup) createNamespace(ctx context.Context, name string) error {
	_, err := s.clients[0].CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("%s: namespace %s: %w", s.name, name, err)
	}
	// The service account controller gives it its default account;
	// admission refuses pods until then.
	return s.poll(ctx, time.Minute, func(ctx context.Context) (bool, error) {
		_, err := s.clients[0].CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// poll calls cond every pollInterval until it is true, fails or timeout.
func (s *setup) poll(ctx context.Context, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, callTimeout)
		ok, err := cond(cctx)
		ccancel()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: condition not met within %s: %w", s.name, timeout, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// boundWatch records when each pod of a namespace is first seen bound,
// through an informer on one API server.
type boundWatch struct {
	mu    sync.Mutex
	bound map[string]time.Time
	n     atomic.Int64
	stop  context.CancelFunc
}

func (s *setup) watchBound(ctx context.Context, ns string, server int) (*boundWatch, error) {
	w := &boundWatch{bound: map[string]time.Time{}}
	ctx, w.stop = context.WithCancel(ctx)
	inf := informers.NewSharedInformerFactoryWithOptions(s.clients[server], 0, informers.WithNamespace(ns))
	pods := inf.Core().V1().Pods().Informer()
	seen := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Spec.NodeName == "" {
			return
		}
		now := time.Now()
		w.mu.Lock()
		if _, ok := w.bound[p.Name]; !ok {
			w.bound[p.Name] = now
			w.n.Add(1)
		}
		w.mu.Unlock()
	}
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: seen, UpdateFunc: func(_, o any) { seen(o) }}); err != nil {
		w.stop()
		return nil, err
	}
	inf.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced) {
		w.stop()
		return nil, fmt.Errorf("%s: pod watch of %s did not sync", s.name, ns)
	}
	return w, nil
}

func (w *boundWatch) at(name string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.bound[name]
	return t, ok
}

// PodsResult is the pods row of one setup.
type PodsResult struct {
	Pods       int     `json:"pods"`
	PodsPerSec float64 `json:"podsPerSec"` // pods over first create sent → last bound
	P50Ms      float64 `json:"p50Ms"`      // create sent → bound seen
	P99Ms      float64 `json:"p99Ms"`
	MaxMs      float64 `json:"maxMs"`
	CreateErrs int     `json:"createErrors"` // creates retried after an error
	ElapsedMs  float64 `json:"elapsedMs"`
}

// runPods creates n pods from podCreators clients spread over the API
// servers and waits until all are bound.
func (s *setup) runPods(ctx context.Context, n int) (PodsResult, error) {
	res := PodsResult{Pods: n}
	if err := s.createNamespace(ctx, nsPods); err != nil {
		return res, err
	}
	w, err := s.watchBound(ctx, nsPods, 0)
	if err != nil {
		return res, err
	}
	defer w.stop()
	sent := make([]time.Time, n)
	var next atomic.Int64
	var errs atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	for c := range podCreators {
		client := s.clients[c%len(s.clients)]
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				pod := benchPod(fmt.Sprintf("p-%05d", i), map[string]string{"bench": "pods"})
				sent[i] = time.Now()
				for ctx.Err() == nil {
					cctx, cancel := context.WithTimeout(ctx, callTimeout)
					_, err := client.CoreV1().Pods(nsPods).Create(cctx, pod, metav1.CreateOptions{})
					cancel()
					if err == nil || isAlreadyExists(err) {
						break
					}
					errs.Add(1)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	last := time.Now()
	deadline := time.After(rowTimeout)
	for w.n.Load() < int64(n) {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-deadline:
			return res, fmt.Errorf("%s: %d of %d pods bound after %s", s.name, w.n.Load(), n, rowTimeout)
		case <-time.After(pollInterval):
		}
		if time.Since(last) > progressEvery {
			s.log.Info("pods", "bound", w.n.Load(), "of", n, "created", min(next.Load(), int64(n)))
			last = time.Now()
		}
	}
	<-done
	var lat []time.Duration
	var lastBound time.Time
	for i := range n {
		t, _ := w.at(fmt.Sprintf("p-%05d", i))
		lat = append(lat, max(0, t.Sub(sent[i])))
		if t.After(lastBound) {
			lastBound = t
		}
	}
	l := Summarize(lat)
	res.P50Ms, res.P99Ms, res.MaxMs = ms(l.P50), ms(l.P99), ms(l.Max)
	res.ElapsedMs = ms(lastBound.Sub(begin))
	res.PodsPerSec = float64(n) / lastBound.Sub(begin).Seconds()
	res.CreateErrs = int(errs.Load())
	s.log.Info("pods row", "pods", n, "podsPerSec", int(res.PodsPerSec), "p50Ms", res.P50Ms, "p99Ms", res.P99Ms, "createErrors", res.CreateErrs)
	return res, nil
}

func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }

// DeployResult is the Deployment rows of one setup.
type DeployResult struct {
	Replicas  int     `json:"replicas"`
	ReadyMs   float64 `json:"readyMs"`   // create → all replicas Ready
	RolloutMs float64 `json:"rolloutMs"` // template change → rollout complete
}

// runDeployment creates a Deployment of replicas, waits until all are
// Ready, changes its pod template and waits for the rollout to finish,
// as `kubectl rollout status` judges it.
func (s *setup) runDeployment(ctx context.Context, replicas int) (DeployResult, error) {
	res := DeployResult{Replicas: replicas}
	if err := s.createNamespace(ctx, nsDeploy); err != nil {
		return res, err
	}
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: benchPod("", nil).Spec},
		},
	}
	deployments := s.clients[0].AppsV1().Deployments(nsDeploy)
	begin := time.Now()
	created, err := deployments.Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		return res, fmt.Errorf("%s: create deployment: %w", s.name, err)
	}
	if err := s.waitRollout(ctx, created.Generation, replicas, "deployment ready"); err != nil {
		return res, err
	}
	res.ReadyMs = ms(time.Since(begin))
	s.log.Info("deployment ready", "replicas", replicas, "ms", res.ReadyMs)
	begin = time.Now()
	patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"busybox:2"}]}}}}`)
	updated, err := deployments.Patch(ctx, "web", types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return res, fmt.Errorf("%s: update deployment: %w", s.name, err)
	}
	if err := s.waitRollout(ctx, updated.Generation, replicas, "rolling update"); err != nil {
		return res, err
	}
	res.RolloutMs = ms(time.Since(begin))
	s.log.Info("rolling update done", "replicas", replicas, "ms", res.RolloutMs)
	return res, nil
}

// waitRollout waits until the Deployment has observed generation and
// every replica is updated, Ready and available, with no old one left.
func (s *setup) waitRollout(ctx context.Context, generation int64, replicas int, what string) error {
	last := time.Now()
	r := int32(replicas)
	return s.poll(ctx, rowTimeout, func(ctx context.Context) (bool, error) {
		d, err := s.clients[0].AppsV1().Deployments(nsDeploy).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		st := d.Status
		if time.Since(last) > progressEvery {
			s.log.Info(what, "updated", st.UpdatedReplicas, "ready", st.ReadyReplicas, "available", st.AvailableReplicas, "total", st.Replicas, "of", replicas)
			last = time.Now()
		}
		return st.ObservedGeneration >= generation && st.UpdatedReplicas == r && st.ReadyReplicas == r &&
			st.AvailableReplicas == r && st.Replicas == r, nil
	})
}

// MutateResult is the mutating-calls row of one setup.
type MutateResult struct {
	Rate   int     `json:"rate"` // calls per second offered
	Calls  int     `json:"calls"`
	Errors int     `json:"errors"`
	P50Ms  float64 `json:"p50Ms"`
	P99Ms  float64 `json:"p99Ms"`
	MaxMs  float64 `json:"maxMs"`
}

// runMutate sends rate mutating calls a second for d, on a clock (open
// loop: a slow call does not hold back the next), spread over the API
// servers: every other call creates a ConfigMap, the others merge-patch
// one of mutateKeys ConfigMaps made before the window.
func (s *setup) runMutate(ctx context.Context, rate int, d time.Duration) (MutateResult, error) {
	res := MutateResult{Rate: rate}
	if err := s.createNamespace(ctx, nsMutate); err != nil {
		return res, err
	}
	for k := range mutateKeys {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("hot-%d", k)}, Data: map[string]string{"n": "0"}}
		if _, err := s.clients[0].CoreV1().ConfigMaps(nsMutate).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return res, fmt.Errorf("%s: configmap: %w", s.name, err)
		}
	}
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs int
		wg   sync.WaitGroup
	)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
		client := s.clients[i%len(s.clients)].CoreV1().ConfigMaps(nsMutate)
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			start := time.Now()
			var err error
			if i%2 == 0 {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}, Data: map[string]string{"n": "0"}}
				_, err = client.Create(cctx, cm, metav1.CreateOptions{})
			} else {
				_, err = client.Patch(cctx, fmt.Sprintf("hot-%d", (i/2)%mutateKeys), types.MergePatchType, fmt.Appendf(nil, `{"data":{"n":"%d"}}`, i), metav1.PatchOptions{})
			}
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
				return
			}
			lat = append(lat, took)
		})
	}
	wg.Wait()
	l := Summarize(lat)
	res.Calls, res.Errors = len(lat)+errs, errs
	res.P50Ms, res.P99Ms, res.MaxMs = ms(l.P50), ms(l.P99), ms(l.Max)
	s.log.Info("mutating calls", "rate", rate, "calls", res.Calls, "errors", errs, "p50Ms", res.P50Ms, "p99Ms", res.P99Ms)
	return res, nil
}

// ServerRSS is one server's resident memory.
type ServerRSS struct {
	Name     string `json:"name"`
	RSSBytes int64  `json:"rssBytes"`
}

// rss reads VmRSS of every member of c.
func rss(c *Cluster) ([]ServerRSS, error) {
	var out []ServerRSS
	for _, m := range c.Members {
		if !m.running() {
			return out, fmt.Errorf("%s is not running; see %s", m.Name, m.logPath)
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
		if err != nil {
			return out, fmt.Errorf("memory of %s: %w", m.Name, err)
		}
		n, err := parseVmRSS(string(status))
		if err != nil {
			return out, fmt.Errorf("memory of %s: %w", m.Name, err)
		}
		out = append(out, ServerRSS{Name: m.Name, RSSBytes: n})
	}
	return out, nil
}
