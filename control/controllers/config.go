package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/rest"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	kubectrlmgrconfig "k8s.io/kubernetes/pkg/controller/apis/config"

	"github.com/barge-dev/barge/raftstore/pki"
)

// Defaults of a barge cluster, shared with the API server's.
const (
	// DefaultClusterCIDR is where node IPAM takes each node's pod CIDR.
	DefaultClusterCIDR = "10.244.0.0/16"
	// DefaultNodeCIDRMaskSize gives each node a /24: 254 pods.
	DefaultNodeCIDRMaskSize = 24
	// DefaultServiceCIDR matches the API server's service range.
	DefaultServiceCIDR = "10.96.0.0/16"

	// DefaultNodeMonitorPeriod is how often the node lifecycle
	// controller looks at every node's Ready condition and taints the
	// node to match (Kubernetes: 5 s). Gossip writes Ready=Unknown about
	// 3 s after a node dies; at 1 s the unreachable taint follows within
	// a second, where 5 s would spend a third of barge's 15 s budget.
	// A pass reads the informer caches only; it writes for changed nodes.
	DefaultNodeMonitorPeriod = time.Second
	// DefaultNodeMonitorGracePeriod is how long a node may go without
	// renewing its Lease before the controller marks it Unknown itself
	// (Kubernetes: 50 s): the fallback for nodes gossip does not cover.
	// 40 s is four of a kubelet's 10 s renewals, so one slow renewal
	// never costs a node its pods.
	DefaultNodeMonitorGracePeriod = 40 * time.Second
	// DefaultNodeEvictionRate is how many nodes a second the node
	// lifecycle controller may taint NoExecute (Kubernetes: 0.1). At 0.1 a
	// second node dying within 10 s of the first waits for its token,
	// which alone breaks the 15 s budget. Mass failures stay guarded by
	// upstream's zone states, which stop tainting when a zone is fully
	// disrupted (or, with more than two nodes down, at least 55 % of it).
	DefaultNodeEvictionRate = 1.0
)

// Config is what the leader-only components of a term need.
type Config struct {
	// Client is how they reach the API server (the local one). Each
	// term's writes are fenced on top of it.
	Client *rest.Config
	// CertsDir is the certificate directory: the CA signs node
	// certificates (CSR signer) and sa.key legacy token secrets.
	CertsDir string
	// ClusterCIDR and NodeCIDRMaskSize drive node IPAM.
	ClusterCIDR      string
	NodeCIDRMaskSize int32
	ServiceCIDR      string
	// Tune adjusts kube-controller-manager's configuration after barge's
	// defaults (tests and benchmarks); Generic.Controllers picks the
	// controllers, as --controllers does.
	Tune func(*kubectrlmgrconfig.KubeControllerManagerConfiguration)
	// NodeMonitorPeriod and NodeMonitorGracePeriod are the node
	// lifecycle controller's (--node-monitor-period,
	// --node-monitor-grace-period); zero takes barge's defaults above.
	NodeMonitorPeriod      time.Duration
	NodeMonitorGracePeriod time.Duration
	// NodeEvictionRate is --node-eviction-rate (nodes per second tainted
	// NoExecute); zero takes DefaultNodeEvictionRate.
	NodeEvictionRate float32
	// NoScheduler leaves the scheduler out (API tests with no nodes).
	NoScheduler bool
	// Extra are barge's own leader-only components (node health from
	// gossip), built every term beside Kubernetes' on the same warm
	// informers and the term's fenced client, and run with them.
	Extra  []BuildFunc
	Logger *slog.Logger
}

// BuildFunc builds one component for a term. informers is the term's
// factory (handlers added through it go when the term ends); client
// carries the term's fence on every request. It may run at warm-up too,
// with an unfenced client, and its result is then discarded unrun: it
// must not act before Run.
type BuildFunc func(ctx context.Context, informers informers.SharedInformerFactory, client *rest.Config) (Component, error)

func (c *Config) complete() {
	if c.ClusterCIDR == "" {
		c.ClusterCIDR = DefaultClusterCIDR
	}
	if c.NodeCIDRMaskSize == 0 {
		c.NodeCIDRMaskSize = DefaultNodeCIDRMaskSize
	}
	if c.ServiceCIDR == "" {
		c.ServiceCIDR = DefaultServiceCIDR
	}
	if c.NodeMonitorPeriod == 0 {
		c.NodeMonitorPeriod = DefaultNodeMonitorPeriod
	}
	if c.NodeMonitorGracePeriod == 0 {
		c.NodeMonitorGracePeriod = DefaultNodeMonitorGracePeriod
	}
	if c.NodeEvictionRate == 0 {
		c.NodeEvictionRate = DefaultNodeEvictionRate
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// componentConfig is kube-controller-manager's own defaults with what a
// barge cluster sets through its flags.
func (c *Config) componentConfig() (kubectrlmgrconfig.KubeControllerManagerConfiguration, error) {
	cc, err := options.NewDefaultComponentConfig()
	if err != nil {
		return cc, fmt.Errorf("controllers: default configuration: %w", err)
	}
	file := func(name string) string { return filepath.Join(c.CertsDir, name) }
	// --allocate-node-cidrs --cluster-cidr --node-cidr-mask-size
	cc.KubeCloudShared.AllocateNodeCIDRs = true
	cc.KubeCloudShared.ClusterCIDR = c.ClusterCIDR
	cc.KubeCloudShared.CIDRAllocatorType = "RangeAllocator"
	cc.NodeIPAMController.ServiceCIDR = c.ServiceCIDR
	cc.NodeIPAMController.NodeCIDRMaskSize = c.NodeCIDRMaskSize
	// --cluster-signing-cert-file --cluster-signing-key-file
	cc.CSRSigningController.ClusterSigningCertFile = file(pki.CACertFile)
	cc.CSRSigningController.ClusterSigningKeyFile = file(pki.CAKeyFile)
	// --service-account-private-key-file --root-ca-file
	cc.SAController.ServiceAccountKeyFile = file(pki.ServiceAccountKeyFile)
	cc.SAController.RootCAFile = file(pki.CACertFile)
	// --node-monitor-period --node-monitor-grace-period
	cc.NodeLifecycleController.NodeMonitorPeriod = metav1.Duration{Duration: c.NodeMonitorPeriod}
	cc.NodeLifecycleController.NodeMonitorGracePeriod = metav1.Duration{Duration: c.NodeMonitorGracePeriod}
	// --node-eviction-rate
	cc.NodeLifecycleController.NodeEvictionRate = c.NodeEvictionRate
	if c.Tune != nil {
		c.Tune(&cc)
	}
	nl := &cc.NodeLifecycleController
	nl.NodeEvictionRate, nl.SecondaryNodeEvictionRate = evictionQPS(nl.NodeEvictionRate), evictionQPS(nl.SecondaryNodeEvictionRate)
	return cc, nil
}

// evictionQPS keeps a node eviction rate off exactly 1 node/s. The node
// lifecycle controller's tainting queue stops (a never-limiter) while no
// node is Ready and swaps back to the rate once one is, but the
// never-limiter reports a QPS of 1 and the swap is skipped when the QPS
// is unchanged (kubernetes#104639, closed unfixed): at 1.0, NoExecute
// tainting stopped for good after a start in which the controller's
// first pass saw no node Ready yet.
func evictionQPS(rate float32) float32 {
	if rate == 1 {
		return math.Nextafter32(1, 0)
	}
	return rate
}
