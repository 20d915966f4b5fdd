package hollow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Config describes a set of hollow nodes.
type Config struct {
	// Client reaches the API server, with rights over nodes, leases and
	// pod status (the admin, or a node-agent role).
	Client *rest.Config
	// Prefix names the nodes Prefix-0, Prefix-1, ...
	Prefix string
	Count  int
	// Capacity is each node's capacity and allocatable (default 32 CPUs,
	// 256 GiB, MaxPods pods).
	Capacity corev1.ResourceList
	// MaxPods is the default capacity's pod count, as a kubelet's
	// --max-pods (default 110).
	MaxPods int
	// Labels go on every node, beside kubernetes.io/hostname.
	Labels map[string]string
	// JobRuntime is how long a Job's pod runs before it succeeds.
	JobRuntime time.Duration
	// Workers bound the concurrent status writes (default 16).
	Workers int
	Logger  *slog.Logger
}

// LeaseDuration and RenewInterval are a kubelet's defaults.
const (
	LeaseDuration = 40 * time.Second
	RenewInterval = 10 * time.Second
)

// HollowLabel marks hollow nodes, so tests and benchmarks can find them.
const HollowLabel = "barge.dev/hollow"

func (c *Config) complete() error {
	if c.Client == nil {
		return errors.New("hollow: a client configuration is required")
	}
	if c.Count <= 0 {
		return fmt.Errorf("hollow: node count %d: want at least 1", c.Count)
	}
	if c.Prefix == "" {
		c.Prefix = "hollow"
	}
	if c.MaxPods < 0 {
		return fmt.Errorf("hollow: max pods %d: want at least 1", c.MaxPods)
	}
	if c.MaxPods == 0 {
		c.MaxPods = 110
	}
	if c.Capacity == nil {
		c.Capacity = corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("32"),
			corev1.ResourceMemory: resource.MustParse("256Gi"),
			corev1.ResourcePods:   *resource.NewQuantity(int64(c.MaxPods), resource.DecimalSI),
		}
	}
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Run registers the nodes and keeps them alive until ctx ends. Nodes are
// left registered on return, as a stopped kubelet leaves its Node: the
// node lifecycle controller then marks them unreachable.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.complete(); err != nil {
		return err
	}
	rc := rest.CopyConfig(cfg.Client)
	if rc.QPS < 200 {
		rc.QPS, rc.Burst = 200, 400
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("hollow: %w", err)
	}
	h := &hollow{cfg: cfg, client: client, names: map[string]bool{}, nextIP: map[string]netip.Addr{}}
	for i := range cfg.Count {
		h.names[fmt.Sprintf("%s-%d", cfg.Prefix, i)] = true
	}
	if err := h.register(ctx); err != nil {
		return err
	}
	cfg.Logger.Info("hollow nodes registered", "count", cfg.Count, "prefix", cfg.Prefix)

	// Only pods bound to a node concern a kubelet.
	inf := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermNotEqualSelector("spec.nodeName", "").String()
		}))
	pods := inf.Core().V1().Pods()
	h.pods = pods.Lister()
	h.queue = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok && h.names[p.Spec.NodeName] {
			if key, err := cache.MetaNamespaceKeyFunc(p); err == nil {
				h.queue.Add(key)
			}
		}
	}
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return fmt.Errorf("hollow: %w", err)
	}
	nodeInf := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = HollowLabel + "=true" }))
	h.nodes = nodeInf.Core().V1().Nodes().Lister()
	nodeInf.Start(ctx.Done())
	defer nodeInf.Shutdown()
	inf.Start(ctx.Done())
	defer inf.Shutdown()
	defer h.queue.ShutDown()

	var wg sync.WaitGroup
	wg.Go(func() { h.renewLeases(ctx) })
	for range cfg.Workers {
		wg.Go(func() {
			for h.work(ctx) {
			}
		})
	}
	<-ctx.Done()
	h.queue.ShutDown()
	wg.Wait()
	return nil
}

type hollow struct {
	cfg    Config
	client kubernetes.Interface
	names  map[string]bool
	pods   corelisters.PodLister
	nodes  corelisters.NodeLister
	queue  workqueue.TypedRateLimitingInterface[string]

	mu     sync.Mutex
	nextIP map[string]netip.Addr // per node, in its pod CIDR
}
