package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/barge-dev/barge/node/dns"
	"github.com/barge-dev/barge/node/netpol"
	"github.com/barge-dev/barge/node/proxy"
	"github.com/barge-dev/barge/overlay"
)

// DefaultServiceCIDR is the API server's Service range (the cluster DNS
// Service's address is in it).
var DefaultServiceCIDR = netip.MustParsePrefix("10.96.0.0/16")

// Services runs the node's Service proxy (node/proxy, kube-proxy's
// nftables proxier), cluster DNS for its pods (node/dns, on the pod
// bridge's gateway, with the cluster DNS Service address DNATed to it)
// and NetworkPolicy enforcement (node/netpol), all on the agent's own
// client, once the pod network exists.
//
// They drive nftables and listen in the agent's own network namespace,
// so Runtime.HostNetns must be empty; and the proxier cannot stop (see
// node/proxy), so Run with Services is once per process.
type Services struct {
	// ServiceCIDR is the Service range, whose reverse names DNS answers
	// itself; zero is DefaultServiceCIDR.
	ServiceCIDR netip.Prefix
	// DNSUpstreams answer names outside the cluster, in order; none
	// answers them SERVFAIL at once.
	DNSUpstreams []netip.AddrPort
}

func (s *Services) complete(cfg *Config) error {
	if cfg.Runtime.HostNetns != "" {
		return errors.New("agent: Services run in the agent's own network namespace; Runtime.HostNetns must be empty")
	}
	if !s.ServiceCIDR.IsValid() {
		s.ServiceCIDR = DefaultServiceCIDR
	}
	if ip, err := netip.ParseAddr(cfg.ClusterDNS); err != nil || !ip.Is4() {
		return fmt.Errorf("agent: cluster DNS address %q: want an IPv4 address", cfg.ClusterDNS)
	}
	return nil
}

// startServices starts the three in a.wg; each runs until ctx ends, and
// one that fails is logged without taking the pods down with it.
func (a *Agent) startServices(ctx context.Context, podCIDR netip.Prefix) {
	s := a.cfg.Services
	nodeIP := netip.MustParseAddr(a.cfg.NodeIP)
	run := func(what string, fn func() error) {
		a.wg.Go(func() {
			if err := fn(); err != nil && ctx.Err() == nil {
				a.log.Error(what+" stopped", "err", err)
			}
		})
	}
	run("service proxy", func() error {
		return proxy.Run(ctx, proxy.Config{
			Client: a.client, NodeName: a.cfg.NodeName, NodeIP: nodeIP,
			ClusterCIDR: a.cfg.ClusterCIDR, Logger: a.log.With("component", "proxy"),
		})
	})
	listen := netip.AddrPortFrom(overlay.Gateway(podCIDR), 53)
	run("cluster DNS", func() error {
		return dns.Run(ctx, dns.Config{
			Client: a.client, Listen: listen, ServiceIP: netip.MustParseAddr(a.cfg.ClusterDNS),
			Zone: a.cfg.ClusterDomain, Upstreams: s.DNSUpstreams,
			ReverseCIDRs: []netip.Prefix{s.ServiceCIDR, a.cfg.ClusterCIDR},
			Logger:       a.log.With("component", "dns"),
		})
	})
	run("network policy", func() error {
		return netpol.Run(ctx, netpol.Config{Client: a.client, NodeName: a.cfg.NodeName, Logger: a.log.With("component", "netpol")})
	})
}
