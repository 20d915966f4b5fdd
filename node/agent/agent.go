package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/barge-dev/barge/node/runtime"
	"github.com/barge-dev/barge/overlay"
)

// Kubelet defaults the agent follows.
const (
	DefaultKubeletPort    = 10250
	DefaultClusterDNS     = "10.96.0.10"
	DefaultClusterDomain  = "cluster.local"
	DefaultLeaseDuration  = 40 * time.Second
	DefaultRenewInterval  = 10 * time.Second
	DefaultStatusInterval = time.Minute
	// Crash-loop back-off: 10 s doubling to 5 min, as the kubelet.
	DefaultBackoffBase = 10 * time.Second
	DefaultBackoffMax  = 5 * time.Minute
	// resyncInterval bounds how long a pod goes unsynced (configMap and
	// secret volumes refresh, tokens rotate).
	resyncInterval = 10 * time.Second
)

// KubeletAPI is the node's kubelet API server (port 10250: logs, exec,
// attach, port-forward, stats), built in node/kubeletapi. The agent starts
// it once the node is registered and the runtime is up, and stops it by
// cancelling ctx.
type KubeletAPI interface {
	Serve(ctx context.Context, a *Agent) error
}

// Config configures a node agent.
type Config struct {
	// NodeName is the node's name; its credential is system:node:NodeName.
	NodeName string
	// Client reaches the API servers with the node's credential.
	Client *rest.Config
	// NodeIP is the node's InternalIP.
	NodeIP string
	// Runtime configures containerd (its OnExit is the agent's).
	Runtime runtime.Config
	// Capacity overrides the machine's (the lab's nodes share one
	// machine). Allocatable equals capacity.
	Capacity corev1.ResourceList
	// Labels go on the Node beside the well-known ones.
	Labels map[string]string
	// Version is barge's version, the Node's kubeletVersion.
	Version string
	// KubeletPort is reported in status.daemonEndpoints.
	KubeletPort int32
	// KubeletAPI, when set, is started on the node (see KubeletAPI).
	KubeletAPI KubeletAPI

	ClusterDNS     string
	ClusterDomain  string
	LeaseDuration  time.Duration
	RenewInterval  time.Duration
	StatusInterval time.Duration
	BackoffBase    time.Duration
	BackoffMax     time.Duration
	// MTU of the pod network (0: 1500; with Overlay, the tunnel's when
	// that is lower).
	MTU int
	// ClusterCIDR is the whole pod network; zero is
	// overlay.DefaultClusterCIDR.
	ClusterCIDR netip.Prefix
	// PodCIDR, when set, is the node's pod range (the kubelet's
	// --pod-cidr): the Node registers with it, so node IPAM keeps it, and
	// the network comes up before any API server answers — a node can
	// join while the servers have no quorum. Zero: node IPAM's.
	PodCIDR netip.Prefix
	// Gossip, when set, makes the node a member of the gossip pool
	// (gossip.go).
	Gossip *Gossip
	// Overlay, when set, carries pod traffic to the other nodes
	// (network.go); it needs Gossip, where its peers come from.
	Overlay *Overlay
	// Services, when set, runs the Service proxy, cluster DNS and
	// NetworkPolicy on the node (services.go).
	Services *Services
	Logger   *slog.Logger
}

func (c *Config) complete() error {
	if c.NodeName == "" {
		return errors.New("agent: a node name is required")
	}
	if c.Client == nil {
		return errors.New("agent: a client configuration is required")
	}
	if c.NodeIP == "" {
		return errors.New("agent: the node IP is required")
	}
	if _, err := netip.ParseAddr(c.NodeIP); err != nil {
		return fmt.Errorf("agent: node IP %q: %w", c.NodeIP, err)
	}
	if c.Runtime.Namespace == "" {
		c.Runtime.Namespace = c.NodeName
	}
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&c.LeaseDuration, DefaultLeaseDuration)
	set(&c.RenewInterval, DefaultRenewInterval)
	set(&c.StatusInterval, DefaultStatusInterval)
	set(&c.BackoffBase, DefaultBackoffBase)
	set(&c.BackoffMax, DefaultBackoffMax)
	if c.KubeletPort == 0 {
		c.KubeletPort = DefaultKubeletPort
	}
	if c.ClusterDNS == "" {
		c.ClusterDNS = DefaultClusterDNS
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = DefaultClusterDomain
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if !c.ClusterCIDR.IsValid() {
		c.ClusterCIDR = overlay.DefaultClusterCIDR
	}
	if p := c.PodCIDR; p.IsValid() && (p != p.Masked() || !c.ClusterCIDR.Contains(p.Addr()) || p.Bits() < c.ClusterCIDR.Bits()) {
		return fmt.Errorf("agent: pod CIDR %s: want a network address inside the cluster's %s", p, c.ClusterCIDR)
	}
	if c.Gossip != nil {
		if err := c.Gossip.complete(c.NodeIP); err != nil {
			return err
		}
	}
	if c.Overlay != nil {
		if err := c.Overlay.check(); err != nil {
			return err
		}
		if c.Gossip == nil {
			return errors.New("agent: the overlay needs gossip: its peers come from the pool")
		}
	}
	if c.Services != nil {
		if err := c.Services.complete(c); err != nil {
			return err
		}
	}
	return nil
}

// Agent is a running node agent.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	client   kubernetes.Interface
	rt       *runtime.Runtime
	pods     corelisters.PodLister
	services corelisters.ServiceLister

	crashBackoff *flowcontrol.Backoff
	pullBackoff  *flowcontrol.Backoff
	tokens       *tokenCache

	mu          sync.Mutex
	workers     map[types.UID]*worker
	allocatable corev1.ResourceList
	podCIDR     netip.Prefix
	stopped     bool // no new workers once Run is returning
	ctx         context.Context
	wg          sync.WaitGroup
}

// Runtime is the node's container runtime (for the kubelet API server).
func (a *Agent) Runtime() *runtime.Runtime { return a.rt }

// Client is the node's API client.
func (a *Agent) Client() kubernetes.Interface { return a.client }

// startNetwork sets the node's pod network up for cidr in the overlay's
// order (overlay/doc.go): the backend first, for the MTU pods get; the
// bridge; then egress masquerade, gossip and peers. The caller closes
// what it returns.
func (a *Agent) startNetwork(ctx context.Context, cidr netip.Prefix) (*network, error) {
	nw, mtu, err := a.setupOverlay(ctx, cidr)
	if err != nil {
		return nil, err
	}
	if err := a.rt.SetupNetwork(ctx, cidr, mtu); err != nil {
		nw.close()
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := nw.start(ctx); err != nil {
		nw.close()
		return nil, err
	}
	return nw, nil
}

// NodeName is the node's name.
func (a *Agent) NodeName() string { return a.cfg.NodeName }

// Pods lists the pods bound to this node, from the agent's cache.
func (a *Agent) Pods() ([]*corev1.Pod, error) { return a.pods.List(everything()) }

// Run registers the node, re-adopts what containerd runs, and runs the
// node's pods until ctx ends. Containers keep running when it returns: a
// restarted agent adopts them.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.complete(); err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg.Client)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	// An error return ends the agent's goroutines (peers, heartbeat)
	// before the network they use is closed.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	a := &Agent{
		cfg:          cfg,
		log:          cfg.Logger.With("node", cfg.NodeName),
		client:       client,
		crashBackoff: flowcontrol.NewBackOff(cfg.BackoffBase, cfg.BackoffMax),
		pullBackoff:  flowcontrol.NewBackOff(cfg.BackoffBase, cfg.BackoffMax),
		workers:      map[types.UID]*worker{},
		ctx:          ctx,
	}
	a.tokens = newTokenCache(client)
	rcfg := cfg.Runtime
	rcfg.Logger = a.log
	rcfg.OnExit = a.wakeUID
	if rcfg.NodeIP, err = netip.ParseAddr(cfg.NodeIP); err != nil {
		return fmt.Errorf("agent: node IP %q: %w", cfg.NodeIP, err)
	}
	rt, err := runtime.New(ctx, rcfg)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer rt.Close()
	a.rt = rt

	// With a pod CIDR known before registering (podcidr.go), the data
	// plane comes up first: the overlay and gossip need no API server.
	early, from, err := a.knownPodCIDR()
	if err != nil {
		return err
	}
	var nw *network
	defer func() {
		stop()
		a.wg.Wait()
		if nw != nil {
			nw.close()
		}
	}()
	if early.IsValid() {
		a.log.Info("setting the pod network up before registering", "podCIDR", early, "from", string(from))
		if nw, err = a.startNetwork(ctx, early); err != nil {
			return err
		}
	}
	if err := a.register(ctx); err != nil {
		return err
	}
	cidr, err := a.waitPodCIDR(ctx)
	if err != nil {
		return err
	}
	if early.IsValid() {
		if err := a.checkPodCIDR(cidr, early, from); err != nil {
			return err
		}
	}
	if err := a.rememberPodCIDR(cidr); err != nil {
		a.log.Warn("the next start waits for an API server before its network", "err", err)
	}
	a.podCIDR = cidr
	if nw == nil {
		if nw, err = a.startNetwork(ctx, cidr); err != nil {
			return err
		}
	}
	if err := rt.Adopt(ctx); err != nil {
		a.log.Warn("adopting containers", "err", err)
	}

	inf := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName).String()
		}))
	podInf := inf.Core().V1().Pods()
	a.pods = podInf.Lister()
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.podChanged(obj) },
		UpdateFunc: func(_, obj any) { a.podChanged(obj) },
		DeleteFunc: func(obj any) { a.podDeleted(obj) },
	}); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	svcInf := informers.NewSharedInformerFactory(client, 0)
	a.services = svcInf.Core().V1().Services().Lister()
	svcInf.Core().V1().Services().Informer()
	svcInf.Start(ctx.Done())
	defer svcInf.Shutdown()
	inf.Start(ctx.Done())
	defer inf.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), podInf.Informer().HasSynced, svcInf.Core().V1().Services().Informer().HasSynced) {
		return ctx.Err()
	}
	// Pods the API no longer has (deleted while the agent was down) are
	// stopped and removed.
	if err := a.removeOrphans(ctx); err != nil {
		a.log.Warn("removing orphaned pods", "err", err)
	}

	notReady, err := a.watchOwnNode(ctx)
	if err != nil {
		return err
	}
	a.wg.Go(func() { a.heartbeat(ctx, notReady) })
	if cfg.Services != nil {
		a.startServices(ctx, cidr)
	}
	if cfg.KubeletAPI != nil {
		// The kubelet API server (node/kubeletapi) runs beside the pod
		// workers, for as long as the agent does.
		a.wg.Go(func() {
			if err := cfg.KubeletAPI.Serve(ctx, a); err != nil && ctx.Err() == nil {
				a.log.Error("kubelet API server", "err", err)
			}
		})
	}
	a.log.Info("node agent running", "podCIDR", cidr, "containerd", cfg.Runtime.Address, "namespace", cfg.Runtime.Namespace)
	<-ctx.Done()
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	a.wg.Wait()
	return nil
}

// removeOrphans stops and removes the sandboxes of pods that are no
// longer bound to this node.
func (a *Agent) removeOrphans(ctx context.Context) error {
	sbs, err := a.rt.Sandboxes(ctx)
	if err != nil {
		return err
	}
	pods, err := a.pods.List(everything())
	if err != nil {
		return err
	}
	known := map[types.UID]bool{}
	for _, p := range pods {
		known[p.UID] = true
	}
	var errs []error
	for uid, p := range sbs {
		if known[types.UID(uid)] {
			continue
		}
		a.log.Info("removing pod no longer bound here", "pod", p.Namespace+"/"+p.Name, "uid", uid)
		errs = append(errs, a.teardown(ctx, p, 0))
	}
	return errors.Join(errs...)
}
