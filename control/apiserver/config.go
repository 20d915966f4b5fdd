package apiserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
)

// Defaults Kubernetes users expect.
const (
	// DefaultServiceCIDR is smaller than Kubernetes' 10.96.0.0/12 but in
	// the same place, so familiar addresses such as 10.96.0.10 exist.
	DefaultServiceCIDR = "10.96.0.0/16"
	// DefaultServiceAccountIssuer is the issuer and audience kubeadm uses.
	DefaultServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
	// KubernetesVersion is the Kubernetes release whose API barge serves
	// and reports at /version; it sits in the middle of the kubectl
	// versions barge is tested with so none of them warns about skew.
	KubernetesVersion = "v1.32.0"
	// MaxRequestBytes is the largest request body accepted: etcd's and the
	// store's 1.5 MiB request limit.
	MaxRequestBytes = 3 * 1024 * 1024 / 2
)

// Config configures one API server.
type Config struct {
	// Addr is the host:port to serve on; port 0 picks a free one.
	Addr string
	// Listener, when set, is served instead of listening on Addr.
	Listener net.Listener
	// CertsDir is a directory written by `barge certs init`: ca.crt
	// verifies clients, server.crt/server.key serve the API and
	// authenticate to the store, sa.key signs service account tokens.
	CertsDir string
	// StoreEndpoints are the etcd v3 URLs (https://host:port) of the store.
	StoreEndpoints []string
	// TokenFile is an optional static token file in Kubernetes' CSV form:
	// token,user,uid,"group1,group2".
	TokenFile string
	// ServiceCIDR is where cluster IPs come from (DefaultServiceCIDR when
	// invalid/zero).
	ServiceCIDR netip.Prefix
	// NodePortRange is the inclusive node port range (30000-32767 when
	// zero).
	NodePortRange [2]int
	// BargeVersion goes into /version next to the Kubernetes version.
	BargeVersion string
	Logger       *slog.Logger
}

func (c *Config) complete() error {
	if c.Addr == "" && c.Listener == nil {
		return errors.New("apiserver: an address to serve on is required")
	}
	if c.CertsDir == "" {
		return errors.New("apiserver: a certificate directory is required")
	}
	if len(c.StoreEndpoints) == 0 {
		return errors.New("apiserver: at least one store endpoint is required")
	}
	if !c.ServiceCIDR.IsValid() {
		p, err := netip.ParsePrefix(DefaultServiceCIDR)
		if err != nil {
			return fmt.Errorf("apiserver: %w", err)
		}
		c.ServiceCIDR = p
	}
	if c.NodePortRange == [2]int{} {
		c.NodePortRange = [2]int{30000, 32767}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
