package apiserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
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
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
