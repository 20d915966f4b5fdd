package controllers

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/discovery"
	cacheddiscovery "k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/keyutil"
	controllersmetrics "k8s.io/component-base/metrics/prometheus/controllers"
	"k8s.io/controller-manager/pkg/clientbuilder"
	"k8s.io/controller-manager/pkg/informerfactory"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
	"k8s.io/kubernetes/cmd/kube-controller-manager/names"
	kubectrlmgrconfig "k8s.io/kubernetes/pkg/controller/apis/config"
	"k8s.io/kubernetes/pkg/controller/garbagecollector"
	namespacecontroller "k8s.io/kubernetes/pkg/controller/namespace"
	serviceaccountcontroller "k8s.io/kubernetes/pkg/controller/serviceaccount"
	"k8s.io/kubernetes/pkg/scheduler"
	"k8s.io/kubernetes/pkg/serviceaccount"
)

// FenceHeader is the request header the API server turns into the
// store's fence (control/apiserver.FenceHeader).
const FenceHeader = "X-Barge-Fence-Term"

// Component is one leader-only loop of a term.
type Component interface {
	Name() string
	Run(ctx context.Context)
}

// Built is one term's components: the scheduler ready to run, and the
// controllers, built when the term runs.
type Built struct {
	// term holds the controllers' handlers, schedTerm the scheduler's,
	// active before the controllers' (see Run; a standby's are active
	// all along).
	term        *Term
	schedTerm   *Term
	in          *Informers
	cfg         Config
	cc          kubectrlmgrconfig.KubeControllerManagerConfiguration
	cctx        app.ControllerContext
	controllers []app.Controller
	extra       []Component
	scheduler   *scheduler.Scheduler
	standby     *Standby
	broadcast   events.EventBroadcaster
	fence       uint64
}

// Build readies Kubernetes' scheduler and controllers for one term on the
// warm informers: the scheduler with its default profile, standby's armed
// with this term's fence or a new one if standby is nil, now; and
// kube-controller-manager's own controller set, through the same
// per-controller constructors its command uses, as Run begins. Every
// write they make carries fence (0: unfenced, on external etcd).
func Build(ctx context.Context, in *Informers, cfg Config, fence uint64, standby *Standby) (*Built, error) {
	cfg.complete()
	cc, err := cfg.componentConfig()
	if err != nil {
		standby.Close()
		return nil, err
	}
	b := &Built{term: in.NewTerm(), in: in, cfg: cfg, cc: cc, fence: fence, standby: standby}
	if cfg.NoScheduler {
		return b, nil
	}
	if b.standby == nil {
		// No standby ready (the first term, or one right after the
		// last): built now, its handlers replaying every pod at once.
		if b.standby, err = NewStandby(ctx, in, cfg); err != nil {
			b.end()
			return nil, err
		}
	}
	b.standby.fence.arm(fence)
	b.scheduler, b.broadcast, b.schedTerm = b.standby.sched, b.standby.broadcast, b.standby.term
	return b, nil
}

// buildControllers constructs the term's controllers, their handlers
// held by b.term until it is activated.
func (b *Built) buildControllers(ctx context.Context) error {
	cfg, cc, term := b.cfg, b.cc, b.term
	clientCfg := FencedConfig(cfg.Client, b.fence)
	builder := clientbuilder.SimpleControllerClientBuilder{ClientConfig: clientCfg}
	disco, err := builder.DiscoveryClient("controller-discovery")
	if err != nil {
		return fmt.Errorf("controllers: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cacheddiscovery.NewMemCacheClient(disco))
	go wait.Until(mapper.Reset, 30*time.Second, ctx.Done())
	controllersmetrics.Register()
	b.cctx = app.ControllerContext{
		ClientBuilder:                   builder,
		InformerFactory:                 term.Typed(),
		ObjectOrMetadataInformerFactory: informerfactory.NewInformerFactory(term.Typed(), term.Metadata()),
		ComponentConfig:                 cc,
		RESTMapper:                      mapper,
		InformersStarted:                make(chan struct{}),
		// kube-controller-manager's: the minimum resync, up to twice it.
		ResyncPeriod:             func() time.Duration { return wait.Jitter(cc.Generic.MinResyncPeriod.Duration, 1) },
		ControllerManagerMetrics: controllersmetrics.NewControllerManagerMetrics("barge"),
	}
	if cc.GarbageCollectorController.EnableGarbageCollector {
		mc, err := metadata.NewForConfig(builder.ConfigOrDie("generic-garbage-collector"))
		if err != nil {
			return fmt.Errorf("controllers: %w", err)
		}
		ignored := map[schema.GroupResource]struct{}{}
		for _, r := range cc.GarbageCollectorController.GCIgnoredResources {
			ignored[schema.GroupResource{Group: r.Group, Resource: r.Resource}] = struct{}{}
		}
		b.cctx.GraphBuilder = garbagecollector.NewDependencyGraphBuilder(ctx, mc, mapper, ignored,
			b.cctx.ObjectOrMetadataInformerFactory, b.cctx.InformersStarted)
	}

	descriptors := app.NewControllerDescriptors()
	// kube-controller-manager gives this one its root client by hand;
	// built below on ours.
	delete(descriptors, names.ServiceAccountTokenController)
	nsEnabled := b.cctx.IsControllerEnabled(descriptors[names.NamespaceController])
	delete(descriptors, names.NamespaceController)
	b.controllers, err = app.BuildControllers(ctx, b.cctx, descriptors, nil, noHealthChecks{})
	if err != nil {
		return fmt.Errorf("controllers: %w", err)
	}
	if nsEnabled {
		ns, err := namespaceController(ctx, b.cctx, disco)
		if err != nil {
			return err
		}
		b.controllers = append(b.controllers, ns)
	}
	tokens, err := tokensController(ctx, b.cctx, builder)
	if err != nil {
		return err
	}
	b.controllers = append(b.controllers, tokens)
	for _, build := range cfg.Extra {
		c, err := build(ctx, term.Typed(), clientCfg)
		if err != nil {
			return fmt.Errorf("controllers: %w", err)
		}
		b.extra = append(b.extra, c)
	}
	return nil
}

// Run runs the term's components until ctx ends, then waits for them to
// return and lets go of their informer handlers.
func (b *Built) Run(ctx context.Context) {
	defer b.end()
	b.in.Start()
	if b.broadcast != nil {
		b.broadcast.StartRecordingToSink(ctx.Done())
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	synced := make(chan struct{})
	if b.scheduler == nil {
		close(synced)
	} else {
		// The scheduler's handlers go first, and the controllers' wait
		// until those have synced: registered at once, every handler
		// replays every object of its informer at the same moment, and
		// the scheduler's replay, which a failover waits for before the
		// first bind, would share the cores with a hundred others.
		if err := b.schedTerm.Activate(); err != nil {
			klog.FromContext(ctx).Error(err, "activating the scheduler's informer handlers")
			return
		}
		wg.Go(func() {
			// Warm caches make this return at once; a first term after a
			// restart waits for the lists like kube-scheduler does.
			b.schedTerm.Typed().WaitForCacheSync(ctx.Done())
			err := b.scheduler.WaitForHandlersSync(ctx)
			close(synced)
			if err != nil {
				return
			}
			// The moment a new leader can bind pods: failover is timed
			// against it (barge bench control).
			b.cfg.Logger.Info("scheduler started", "term", b.fence)
			b.scheduler.Run(ctx)
		})
	}
	// Built while the scheduler starts: a failover's first bind does not
	// wait for the controllers' construction (300 ms at 1,000 nodes,
	// barge bench control). A term whose controllers fail to build keeps
	// its scheduler.
	start := time.Now()
	if err := b.buildControllers(ctx); err != nil {
		b.cfg.Logger.Error("controllers of this term", "term", b.fence, "err", err)
		return
	}
	b.cfg.Logger.Info("controllers built", "term", b.fence, "in", time.Since(start))
	select {
	case <-synced:
	case <-ctx.Done():
		return
	}
	if err := b.term.Activate(); err != nil {
		klog.FromContext(ctx).Error(err, "activating the term's informer handlers")
		return
	}
	close(b.cctx.InformersStarted)
	wg.Go(func() { app.RunControllers(ctx, b.cctx, b.controllers, 0, 0) })
	for _, c := range b.extra {
		wg.Go(func() { c.Run(ctx) })
	}
}

func (b *Built) end() {
	b.term.End()
	b.standby.Close()
}

// Warm builds a term's controllers and discards them, so the informers
// they ask for start and sync before this server ever leads.
func Warm(ctx context.Context, in *Informers, cfg Config) error {
	// The scheduler's informers start with the standby built next
	// (NewStandby); one built here would be thrown away.
	cfg.NoScheduler = true
	b, err := Build(ctx, in, cfg, 0, nil)
	if err != nil {
		return err
	}
	defer b.end()
	if err := b.buildControllers(ctx); err != nil {
		return err
	}
	in.Start()
	return nil
}

// tokensController is kube-controller-manager's legacy service account
// token controller (it fills in secrets of type service-account-token),
// which its command builds by hand with a root client.
func tokensController(ctx context.Context, cctx app.ControllerContext, builder clientbuilder.ControllerClientBuilder) (app.Controller, error) {
	sa := cctx.ComponentConfig.SAController
	key, err := keyutil.PrivateKeyFromFile(sa.ServiceAccountKeyFile)
	if err != nil {
		return nil, fmt.Errorf("service account token controller: %w", err)
	}
	ca, err := os.ReadFile(sa.RootCAFile)
	if err != nil {
		return nil, fmt.Errorf("service account token controller: %w", err)
	}
	gen, err := serviceaccount.JWTTokenGenerator(serviceaccount.LegacyIssuer, key)
	if err != nil {
		return nil, fmt.Errorf("service account token controller: %w", err)
	}
	client, err := builder.Client("tokens-controller")
	if err != nil {
		return nil, fmt.Errorf("service account token controller: %w", err)
	}
	c, err := serviceaccountcontroller.NewTokensController(klog.FromContext(ctx), cctx.InformerFactory.Core().V1().ServiceAccounts(),
		cctx.InformerFactory.Core().V1().Secrets(), client, serviceaccountcontroller.TokensControllerOptions{TokenGenerator: gen, RootCA: ca})
	if err != nil {
		return nil, fmt.Errorf("service account token controller: %w", err)
	}
	workers := int(sa.ConcurrentSATokenSyncs)
	return namedLoop{name: names.ServiceAccountTokenController, run: func(ctx context.Context) { c.Run(ctx, workers) }}, nil
}

// namespaceController is kube-controller-manager's namespace controller,
// built as its command builds it but for the first discovery. Upstream's
// constructor asks discovery once and, given nothing back, exits the
// process (klog.FlushAndExit): an API server that stops just as this
// server's term starts would take the store peer down with it. Here that
// first answer is waited for (until the term ends) and handed over; every
// later one is live.
func namespaceController(ctx context.Context, cctx app.ControllerContext, disco discovery.DiscoveryInterface) (app.Controller, error) {
	var first []*metav1.APIResourceList
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		// A partial answer (some group failing) is what upstream works
		// with too; only an empty one is fatal there.
		first, _ = disco.ServerPreferredNamespacedResources()
		return len(first) > 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("namespace controller: no resources from discovery: %w", err)
	}
	// kube-controller-manager's: namespace deletion is a burst of
	// discovery and delete calls.
	cfg, err := cctx.NewClientConfig("namespace-controller")
	if err != nil {
		return nil, fmt.Errorf("namespace controller: %w", err)
	}
	cfg.QPS *= 20
	cfg.Burst *= 100
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("namespace controller: %w", err)
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("namespace controller: %w", err)
	}
	var answered atomic.Bool
	discover := func() ([]*metav1.APIResourceList, error) {
		if !answered.Swap(true) {
			return first, nil
		}
		return client.Discovery().ServerPreferredNamespacedResources()
	}
	nc := namespacecontroller.NewNamespaceController(ctx, client, meta, discover,
		cctx.InformerFactory.Core().V1().Namespaces(), cctx.ComponentConfig.NamespaceController.NamespaceSyncPeriod.Duration, corev1.FinalizerKubernetes)
	workers := int(cctx.ComponentConfig.NamespaceController.ConcurrentNamespaceSyncs)
	return namedLoop{name: names.NamespaceController, run: func(ctx context.Context) { nc.Run(ctx, workers) }}, nil
}

type namedLoop struct {
	name string
	run  func(context.Context)
}

func (l namedLoop) Name() string            { return l.name }
func (l namedLoop) Run(ctx context.Context) { l.run(ctx) }

type noHealthChecks struct{}

func (noHealthChecks) AddHealthChecker(...healthz.HealthChecker) {}

// FencedConfig is cfg with every request carrying the fence header (no
// header for fence 0).
func FencedConfig(cfg *rest.Config, fence uint64) *rest.Config {
	out := rest.CopyConfig(cfg)
	if fence == 0 {
		return out
	}
	value := strconv.FormatUint(fence, 10)
	out.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return fenceTransport{rt: rt, term: value}
	})
	return out
}

type fenceTransport struct {
	rt   http.RoundTripper
	term string
}

func (t fenceTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(FenceHeader, t.term)
	return t.rt.RoundTrip(r)
}
