package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Defaults Kubernetes users expect.
const (
	// DefaultServiceCIDR is smaller than Kubernetes' 10.96.0.0/12 but in
	// the same place, so familiar addresses such as 10.96.0.10 exist.
	DefaultServiceCIDR = "10.96.0.0/16"
	// DefaultNodePortRange is Kubernetes' own.
	DefaultNodePortRange = "30000-32767"
	// DefaultServiceAccountIssuer is the issuer and audience kubeadm uses.
	DefaultServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
	// StoragePrefix is where Kubernetes objects live in the store.
	StoragePrefix = "/registry"

	// DefaultNotReadyToleration and DefaultUnreachableToleration are
	// how long a pod stays on a node tainted not-ready or unreachable
	// (NoExecute) before it is evicted, for pods that do not say
	// themselves: the DefaultTolerationSeconds admission plugin writes
	// them into each pod (Kubernetes: 300 s). barge's gossip marks a dead
	// node within about 4 s and the unreachable taint follows within a
	// second; 5 s more leaves a node that flapped time to come back, and
	// the replacement pods running within 15 s of the failure. Pods with
	// tolerations of their own (DaemonSet pods tolerate both taints for
	// ever) keep them: the plugin only fills in what is missing.
	DefaultNotReadyToleration    = 5 * time.Second
	DefaultUnreachableToleration = 5 * time.Second
)

// Dialer opens a connection to an etcd v3 endpoint; the address is the
// endpoint's host:port and may be ignored by an in-process dialer.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// Config configures one API server.
type Config struct {
	// Addr is the host:port to serve on; port 0 picks a free one.
	Addr string
	// Listener, when set, is served instead of listening on Addr.
	Listener net.Listener
	// AdvertiseAddr is the address published in default/kubernetes and
	// to peer API servers; the listen IP when empty. A loopback address
	// is valid for a single-machine cluster, but then no endpoint is
	// published (Kubernetes forbids loopback endpoints).
	AdvertiseAddr net.IP
	// CertsDir is a directory written by `barge certs init`.
	CertsDir string
	// StateDir is where the server keeps the files kube-apiserver reads
	// its configuration from; barge writes them anew at every start.
	StateDir string
	// Identity names this API server uniquely in the cluster (the store
	// member's name). Kubernetes derives it from the hostname, which the
	// servers of one machine or one lab share.
	Identity string

	// LocalStore dials this server's own store peer in memory. Exactly
	// one of LocalStore and EtcdServers is set.
	LocalStore Dialer
	// EtcdServers are the URLs of an external etcd cluster, reached with
	// the certificate directory's server certificate unless Etcd*File
	// say otherwise.
	EtcdServers                           []string
	EtcdCAFile, EtcdCertFile, EtcdKeyFile string

	// TokenFile is an optional static token file in Kubernetes' CSV form:
	// token,user,uid,"group1,group2".
	TokenFile string
	// ServiceCIDR is where cluster IPs come from (DefaultServiceCIDR).
	ServiceCIDR string
	// NodePortRange is the node port range (DefaultNodePortRange).
	NodePortRange string
	// NotReadyToleration and UnreachableToleration are the default
	// tolerations of the not-ready and unreachable taints
	// (--default-not-ready-toleration-seconds,
	// --default-unreachable-toleration-seconds), in whole seconds; zero
	// takes the defaults above.
	NotReadyToleration    time.Duration
	UnreachableToleration time.Duration
	// BargeVersion goes into /version as build metadata.
	BargeVersion string
	// ExtraArgs are further kube-apiserver flags (--name=value), applied
	// last, so they override barge's choices.
	ExtraArgs []string
	Logger    *slog.Logger
}

func (c *Config) complete() error {
	if c.Addr == "" && c.Listener == nil {
		return errors.New("apiserver: an address to serve on is required")
	}
	if c.CertsDir == "" {
		return errors.New("apiserver: a certificate directory is required")
	}
	if c.StateDir == "" {
		return errors.New("apiserver: a state directory is required")
	}
	if c.Identity == "" {
		return errors.New("apiserver: an identity (the member name) is required")
	}
	switch {
	case c.LocalStore == nil && len(c.EtcdServers) == 0:
		return errors.New("apiserver: a store is required: the local peer or --etcd-servers")
	case c.LocalStore != nil && len(c.EtcdServers) > 0:
		return errors.New("apiserver: the local store peer and --etcd-servers exclude each other")
	}
	if c.ServiceCIDR == "" {
		c.ServiceCIDR = DefaultServiceCIDR
	}
	if c.NodePortRange == "" {
		c.NodePortRange = DefaultNodePortRange
	}
	if c.NotReadyToleration == 0 {
		c.NotReadyToleration = DefaultNotReadyToleration
	}
	if c.UnreachableToleration == 0 {
		c.UnreachableToleration = DefaultUnreachableToleration
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"not-ready", c.NotReadyToleration}, {"unreachable", c.UnreachableToleration}} {
		if t.d < 0 || t.d%time.Second != 0 {
			return fmt.Errorf("apiserver: %s toleration %v: want a whole number of seconds, at least 1s", t.name, t.d)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
