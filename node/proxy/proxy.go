package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/proxy/apis"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyconfig "k8s.io/kubernetes/pkg/proxy/config"
	"k8s.io/kubernetes/pkg/proxy/healthcheck"
	"k8s.io/kubernetes/pkg/proxy/nftables"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
)

// Table is the nftables table (family ip) the proxier owns; upstream
// names it and this package cannot change it.
const Table = "kube-proxy"

// Config is what the agent hands the proxy.
type Config struct {
	// Client talks to the API server.
	Client kubernetes.Interface
	// NodeName is this node's Node object name.
	NodeName string
	// NodeIP is the node's primary (underlay) IPv4 address.
	NodeIP netip.Addr
	// ClusterCIDR is the whole pod network (10.244.0.0/16): traffic from
	// inside it to a Service keeps its source, traffic from outside is
	// masqueraded.
	ClusterCIDR netip.Prefix
	// NodePortAddresses limits the addresses NodePorts answer on; empty
	// means every local address of the node.
	NodePortAddresses []netip.Prefix
	// MinSyncPeriod is the shortest time between two syncs: changes
	// arriving faster are batched. 0 syncs on every change.
	MinSyncPeriod time.Duration
	// SyncPeriod is the full resync interval; 0 is 30 s.
	SyncPeriod time.Duration
	// ResyncPeriod is the informers' resync; 0 is none.
	ResyncPeriod time.Duration
	Logger       *slog.Logger
}

func (c *Config) check() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("no API client"))
	}
	if c.NodeName == "" {
		errs = append(errs, errors.New("no node name"))
	}
	if !c.NodeIP.Is4() {
		errs = append(errs, fmt.Errorf("node IP %v is not an IPv4 address", c.NodeIP))
	}
	if !c.ClusterCIDR.IsValid() || !c.ClusterCIDR.Addr().Is4() {
		errs = append(errs, fmt.Errorf("cluster CIDR %v is not an IPv4 prefix", c.ClusterCIDR))
	}
	for _, p := range c.NodePortAddresses {
		if !p.IsValid() || !p.Addr().Is4() {
			errs = append(errs, fmt.Errorf("NodePort address %v is not an IPv4 prefix", p))
		}
	}
	if c.MinSyncPeriod < 0 || c.SyncPeriod < 0 || c.ResyncPeriod < 0 {
		errs = append(errs, errors.New("negative period"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("proxy: config: %w", err)
	}
	return nil
}

// kubeProxyConfig is the part of kube-proxy's configuration the nftables
// proxier reads.
func (c *Config) kubeProxyConfig() *kubeproxyconfig.KubeProxyConfiguration {
	// Bit 14 is kube-proxy's default masquerade mark; nothing else in
	// barge marks packets.
	bit := int32(14)
	kc := &kubeproxyconfig.KubeProxyConfiguration{
		Mode:            kubeproxyconfig.ProxyModeNFTables,
		DetectLocalMode: kubeproxyconfig.LocalModeClusterCIDR,
		SyncPeriod:      metav1.Duration{Duration: c.SyncPeriod},
		MinSyncPeriod:   metav1.Duration{Duration: c.MinSyncPeriod},
		NFTables:        kubeproxyconfig.KubeProxyNFTablesConfiguration{MasqueradeBit: &bit},
	}
	if kc.SyncPeriod.Duration == 0 {
		kc.SyncPeriod.Duration = 30 * time.Second
	}
	for _, p := range c.NodePortAddresses {
		kc.NodePortAddresses = append(kc.NodePortAddresses, p.Masked().String())
	}
	return kc
}

// Run programs the node's Services into nftables until ctx ends. It
// returns an error if the proxier cannot start (no nft binary, a bad
// config); once running it keeps retrying failed syncs, as kube-proxy
// does, and returns nil when ctx is done.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.check(); err != nil {
		return err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := cfg.Logger
	// Upstream logs through klog's contextual logger.
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(log.Handler()))

	if err := enableBridgeNetfilter(); err != nil {
		return err
	}

	kc := cfg.kubeProxyConfig()
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: cfg.Client.EventsV1()})
	recorder := broadcaster.NewRecorder(scheme.Scheme, "barge-proxy")
	// The health server is never served (the agent has its own health
	// endpoint); the service health server asks it whether the proxier
	// is healthy when it answers a healthCheckNodePort.
	health := healthcheck.NewProxyHealthServer("", 2*kc.SyncPeriod.Duration, nil)
	proxier, err := nftables.NewProxier(ctx, kc, v1.IPv4Protocol,
		proxyutil.NewDetectLocalByCIDR(cfg.ClusterCIDR.Masked().String()),
		cfg.NodeName, cfg.NodeIP.AsSlice(), recorder, health, false)
	if err != nil {
		return fmt.Errorf("proxy: start nftables proxier: %w", err)
	}
	if err := broadcaster.StartRecordingToSinkWithContext(ctx); err != nil {
		return fmt.Errorf("proxy: events: %w", err)
	}
	defer broadcaster.Shutdown()

	trim := informers.WithTransform(func(obj any) (any, error) {
		if a, err := meta.Accessor(obj); err == nil {
			a.SetManagedFields(nil)
		}
		return obj, nil
	})
	// Headless Services are DNS's, not the proxy's; Services another
	// proxy claims are not ours either.
	noProxyName, err := labels.NewRequirement(apis.LabelServiceProxyName, selection.DoesNotExist, nil)
	if err != nil {
		return fmt.Errorf("proxy: selector: %w", err)
	}
	noHeadless, err := labels.NewRequirement(v1.IsHeadlessService, selection.DoesNotExist, nil)
	if err != nil {
		return fmt.Errorf("proxy: selector: %w", err)
	}
	svcFactory := informers.NewSharedInformerFactoryWithOptions(cfg.Client, cfg.ResyncPeriod, trim,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.NewSelector().Add(*noProxyName).String()
			o.FieldSelector = fields.OneTermNotEqualSelector("spec.clusterIP", v1.ClusterIPNone).String()
		}))
	sliceFactory := informers.NewSharedInformerFactoryWithOptions(cfg.Client, cfg.ResyncPeriod, trim,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.NewSelector().Add(*noHeadless).String()
		}))
	nodeFactory := informers.NewSharedInformerFactoryWithOptions(cfg.Client, cfg.ResyncPeriod, trim,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", cfg.NodeName).String()
		}))

	cidrFactory := informers.NewSharedInformerFactoryWithOptions(cfg.Client, cfg.ResyncPeriod, trim)

	svcConfig := proxyconfig.NewServiceConfig(ctx, svcFactory.Core().V1().Services(), cfg.ResyncPeriod)
	svcConfig.RegisterEventHandler(proxier)
	sliceConfig := proxyconfig.NewEndpointSliceConfig(ctx, sliceFactory.Discovery().V1().EndpointSlices(), cfg.ResyncPeriod)
	sliceConfig.RegisterEventHandler(proxier)
	topology := proxyconfig.NewNodeTopologyConfig(ctx, nodeFactory.Core().V1().Nodes(), cfg.ResyncPeriod)
	topology.RegisterEventHandler(proxier)
	var cidrConfig *proxyconfig.ServiceCIDRConfig
	if servesServiceCIDRs(cfg.Client) {
		// A factory of its own: the others' selectors would be applied
		// to ServiceCIDRs too (the API server refuses spec.clusterIP).
		cidrConfig = proxyconfig.NewServiceCIDRConfig(ctx, cidrFactory.Networking().V1().ServiceCIDRs(), cfg.ResyncPeriod)
		cidrConfig.RegisterEventHandler(proxier)
	}

	// The handlers were registered before the informers start, so the
	// initial list reaches the proxier.
	svcFactory.Start(ctx.Done())
	sliceFactory.Start(ctx.Done())
	nodeFactory.Start(ctx.Done())
	cidrFactory.Start(ctx.Done())
	go svcConfig.Run(ctx.Done())
	go sliceConfig.Run(ctx.Done())
	if cidrConfig != nil {
		go cidrConfig.Run(ctx.Done())
	}
	go proxier.SyncLoop()
	log.Info("service proxy started", "node", cfg.NodeName, "nodeIP", cfg.NodeIP, "clusterCIDR", cfg.ClusterCIDR)

	<-ctx.Done()
	svcFactory.Shutdown()
	sliceFactory.Shutdown()
	nodeFactory.Shutdown()
	cidrFactory.Shutdown()
	return nil
}

// servesServiceCIDRs reports whether the API server has
// networking.k8s.io/v1 ServiceCIDRs, which the proxier uses to reject
// traffic to unallocated Service addresses.
func servesServiceCIDRs(c kubernetes.Interface) bool {
	res, err := c.Discovery().ServerResourcesForGroupVersion("networking.k8s.io/v1")
	if err != nil {
		return false
	}
	for _, r := range res.APIResources {
		if r.Name == "servicecidrs" {
			return true
		}
	}
	return false
}

// bridgeNetfilter is the sysctl that sends bridged IPv4 traffic through
// the IPv4 netfilter hooks, per network namespace.
const bridgeNetfilter = "/proc/sys/net/bridge/bridge-nf-call-iptables"

func enableBridgeNetfilter() error {
	b, err := os.ReadFile(bridgeNetfilter)
	if err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	if err := os.WriteFile(bridgeNetfilter, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("proxy: enable bridged traffic filtering (%s): %w", bridgeNetfilter, err)
	}
	return nil
}

// The proxier handles what these types say; the assertions keep the
// wiring honest if upstream renames a handler.
var (
	_ proxyconfig.ServiceHandler       = (*nftables.Proxier)(nil)
	_ proxyconfig.EndpointSliceHandler = (*nftables.Proxier)(nil)
)
