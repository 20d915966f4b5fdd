package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/barge-dev/barge/node/agent"
	"github.com/barge-dev/barge/node/gossip"
)

// agentNet is the network part of the agent's configuration, from its
// flags.
type agentNet struct {
	clusterCIDR netip.Prefix
	gossip      *agent.Gossip
	overlay     *agent.Overlay
	services    *agent.Services
}

// agentNetwork checks and converts the agent's network flags.
func agentNetwork(nodeIP, addr, advertise, keyring, profile string, join []string, mode, clusterCIDR, serviceCIDR string, upstreams []string) (agentNet, error) {
	var out agentNet
	var err error
	if out.clusterCIDR, err = netip.ParsePrefix(clusterCIDR); err != nil || !out.clusterCIDR.Addr().Is4() {
		return out, fmt.Errorf("--cluster-cidr %q: want an IPv4 prefix such as 10.244.0.0/16", clusterCIDR)
	}
	svc, err := netip.ParsePrefix(serviceCIDR)
	if err != nil || !svc.Addr().Is4() {
		return out, fmt.Errorf("--service-cidr %q: want an IPv4 prefix such as 10.96.0.0/16", serviceCIDR)
	}
	out.services = &agent.Services{ServiceCIDR: svc.Masked()}
	for _, u := range upstreams {
		ap, err := netip.ParseAddrPort(u)
		if err != nil {
			a, aerr := netip.ParseAddr(u)
			if aerr != nil {
				return out, fmt.Errorf("--dns-upstream %q: want IP or IP:PORT", u)
			}
			ap = netip.AddrPortFrom(a, 53)
		}
		out.services.DNSUpstreams = append(out.services.DNSUpstreams, ap)
	}

	host, port := nodeIP, gossip.DefaultPort
	if addr != "" {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			h, p = addr, strconv.Itoa(gossip.DefaultPort)
		}
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return out, fmt.Errorf("--gossip-addr %q: port %q: want 1 to 65535", addr, p)
		}
		host = h
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return out, fmt.Errorf("--gossip-addr %q: want IP:PORT: %w", addr, err)
	}
	if _, err := os.Stat(keyring); err != nil {
		return out, fmt.Errorf("--gossip-keyring: %w (barge certs node copies the cluster's %s into the node's directory)", err, gossip.KeyringFile)
	}
	timing, err := gossip.TimingProfile(profile)
	if err != nil {
		return out, fmt.Errorf("--gossip-profile: %w", err)
	}
	out.gossip = &agent.Gossip{BindAddr: host, Port: port, AdvertiseAddr: advertise, Join: join, KeyringFile: keyring, Timing: timing}

	switch m := gossip.OverlayMode(strings.ToLower(mode)); m {
	case gossip.OverlayVXLAN, gossip.OverlayIPIP:
		out.overlay = &agent.Overlay{Mode: m}
	case "none":
	default:
		return out, fmt.Errorf("--overlay %q: want vxlan, ipip or none", mode)
	}
	return out, nil
}
