package controllers

import (
	"fmt"
	"log/slog"
	"path/filepath"

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
	// NoScheduler leaves the scheduler out (API tests with no nodes).
	NoScheduler bool
	Logger      *slog.Logger
}

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
	if c.Tune != nil {
		c.Tune(&cc)
	}
	return cc, nil
}
