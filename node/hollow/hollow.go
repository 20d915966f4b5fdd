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
	// Gossip, when set, runs a gossip member per node, so that node
	// health follows gossip as for real agents (see Nodes.Kill and
	// Nodes.Pause).
	Gossip *Gossip
	Logger *slog.Logger
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
	if c.Gossip != nil && c.Gossip.KeyringFile == "" {
		return errors.New("hollow: gossip needs the pool's keyring file")
	}
	return nil
}

// Run registers the nodes and keeps them alive until ctx ends. Nodes are
// left registered on return, as a stopped kubelet leaves its Node: the
// node lifecycle controller then marks them unreachable.
func Run(ctx context.Context, cfg Config) error {
	n, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	return n.Wait()
}

// Nodes are running hollow nodes.
type Nodes struct {
	h    *hollow
	done chan struct{}
}

// Start registers the nodes, starts their gossip members if configured,
// and keeps the nodes alive in the background until ctx ends.
func Start(ctx context.Context, cfg Config) (*Nodes, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	rc := rest.CopyConfig(cfg.Client)
	if rc.QPS < 200 {
		rc.QPS, rc.Burst = 200, 400
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("hollow: %w", err)
	}
	h := &hollow{cfg: cfg, client: client, names: map[string]*nodeState{}, nextIP: map[string]netip.Addr{}}
	for i := range cfg.Count {
		name := fmt.Sprintf("%s-%d", cfg.Prefix, i)
		h.names[name] = &nodeState{name: name}
	}
	if err := h.register(ctx); err != nil {
		return nil, err
	}
	if cfg.Gossip != nil {
		for _, st := range h.names {
			m, err := startMember(cfg.Gossip, st.name, 0, cfg.Logger)
			if err != nil {
				h.stopMembers()
				return nil, err
			}
			st.member = m
		}
	}
	cfg.Logger.Info("hollow nodes registered", "count", cfg.Count, "prefix", cfg.Prefix, "gossip", cfg.Gossip != nil)

	// Only pods bound to a node concern a kubelet.
	inf := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermNotEqualSelector("spec.nodeName", "").String()
		}))
	pods := inf.Core().V1().Pods()
	h.pods = pods.Lister()
	h.queue = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	h.nodeQueue = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok && h.names[p.Spec.NodeName] != nil {
			if key, err := cache.MetaNamespaceKeyFunc(p); err == nil {
				h.queue.Add(key)
			}
		}
	}
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		h.stopMembers()
		return nil, fmt.Errorf("hollow: %w", err)
	}
	nodeInf := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = HollowLabel + "=true" }))
	nodes := nodeInf.Core().V1().Nodes()
	h.nodes = nodes.Lister()
	// A kubelet posts its status when what the API server holds differs
	// from what it would report: a Ready another writer set to Unknown
	// (node lifecycle, gossip) is set back while the node is up.
	checkNode := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok && h.names[n.Name] != nil && !nodeIsReady(n) {
			h.nodeQueue.Add(n.Name)
		}
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    checkNode,
		UpdateFunc: func(_, obj any) { checkNode(obj) },
	}); err != nil {
		h.stopMembers()
		return nil, fmt.Errorf("hollow: %w", err)
	}
	nodeInf.Start(ctx.Done())
	inf.Start(ctx.Done())

	n := &Nodes{h: h, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		var wg sync.WaitGroup
		wg.Go(func() { h.renewLeases(ctx) })
		for range cfg.Workers {
			wg.Go(func() {
				for h.work(ctx) {
				}
			})
		}
		wg.Go(func() {
			for h.workNode(ctx) {
			}
		})
		<-ctx.Done()
		h.queue.ShutDown()
		h.nodeQueue.ShutDown()
		wg.Wait()
		nodeInf.Shutdown()
		inf.Shutdown()
		h.stopMembers()
	}()
	return n, nil
}

// Wait returns once the nodes stopped (their context ended).
func (n *Nodes) Wait() error {
	<-n.done
	return nil
}

type hollow struct {
	cfg       Config
	client    kubernetes.Interface
	names     map[string]*nodeState // fixed after Start
	pods      corelisters.PodLister
	nodes     corelisters.NodeLister
	queue     workqueue.TypedRateLimitingInterface[string] // pods
	nodeQueue workqueue.TypedRateLimitingInterface[string] // node status

	mu     sync.Mutex
	nextIP map[string]netip.Addr // per node, in its pod CIDR
}
