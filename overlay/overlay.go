package overlay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// DefaultClusterCIDR is the pod network of the whole cluster when the
// agent is given none; every node's pod CIDR lies inside it.
var DefaultClusterCIDR = netip.MustParsePrefix("10.244.0.0/16")

// LocalNode is the node the agent runs on, as the backends need it.
type LocalNode struct {
	// Name is the node's name; the VXLAN backend derives its VTEP MAC
	// from it, so it must be stable across restarts.
	Name string
	// UnderlayIP is the node's address on the network between nodes:
	// tunnels are sourced from it and peers send to it.
	UnderlayIP netip.Addr
	// UnderlayInterface names the link holding UnderlayIP; when empty
	// the backend finds the link that has UnderlayIP assigned.
	UnderlayInterface string
	// PodCIDR is this node's share of the cluster pod network.
	PodCIDR netip.Prefix
}

// Peer is another node of the overlay as gossip describes it.
type Peer struct {
	Name       string
	UnderlayIP netip.Addr
	PodCIDR    netip.Prefix
	// VTEPMAC is the peer's VXLAN device address (VXLAN only; the IPIP
	// backend ignores it).
	VTEPMAC net.HardwareAddr
}

// Attrs is what a backend reports after Setup: the MTU pods on this node
// must use, and what the agent publishes by gossip for its peers.
type Attrs struct {
	// Mode names the data path: "vxlan", "ipip" (kernel device) or
	// "ipip-userspace".
	Mode string
	// Device is the tunnel device routes to peers' pod CIDRs use.
	Device string
	// MTU is the tunnel's MTU, and so the MTU of every pod interface.
	MTU int
	// VTEPMAC is the local VXLAN device's MAC (VXLAN only), stable across
	// restarts.
	VTEPMAC net.HardwareAddr
}

// Backend is one overlay data path. The agent calls Setup once, then
// SetPeers with the full desired peer set every time gossip changes it;
// the backend adds, updates and removes whatever differs, including
// entries left by an earlier process. Close stops the backend's own work
// (goroutines, file descriptors) but leaves kernel state in place so a
// restarted agent finds the data plane still carrying traffic; Teardown
// removes everything the backend made.
type Backend interface {
	Setup(ctx context.Context, local LocalNode) (Attrs, error)
	SetPeers(ctx context.Context, peers []Peer) error
	Close() error
	Teardown(ctx context.Context) error
}

// Gateway is the pod CIDR's first address: the node bridge holds it and
// pods route through it.
func Gateway(podCIDR netip.Prefix) netip.Addr {
	return podCIDR.Masked().Addr().Next()
}

// TunnelAddr is the pod CIDR's network address, held as a /32 by the
// node's tunnel device (as flannel does with flannel.1): traffic the node
// itself sends to a remote pod leaves with this source, which every peer
// routes back through the overlay. Peers' routes use it as the next hop.
func TunnelAddr(podCIDR netip.Prefix) netip.Addr {
	return podCIDR.Masked().Addr()
}

// ValidateLocal checks a LocalNode before a backend uses it.
func ValidateLocal(l LocalNode) error {
	switch {
	case l.Name == "":
		return errors.New("overlay: local node has no name")
	case !l.UnderlayIP.Is4():
		return fmt.Errorf("overlay: local node %s: underlay IP %v is not an IPv4 address", l.Name, l.UnderlayIP)
	case !l.PodCIDR.IsValid() || !l.PodCIDR.Addr().Is4():
		return fmt.Errorf("overlay: local node %s: pod CIDR %v is not an IPv4 prefix", l.Name, l.PodCIDR)
	case l.PodCIDR.Bits() > 30:
		return fmt.Errorf("overlay: local node %s: pod CIDR %v is too small (want /30 or larger)", l.Name, l.PodCIDR)
	}
	return nil
}

// CheckPeers sorts a peer set by name and splits it into the peers a
// backend can program and an error naming each one it cannot: a peer
// needs a name, an IPv4 underlay address and a pod CIDR of /30 or larger,
// and (when needMAC) a unicast VTEP MAC; it must not reuse the local
// node's name, underlay IP or overlap its pod CIDR; and of peers that
// clash with each other (same name, underlay IP, MAC, or overlapping pod
// CIDRs) the first by name is kept. One bad gossip record so never takes
// the rest of the overlay down with it.
func CheckPeers(local LocalNode, peers []Peer, needMAC bool) ([]Peer, error) {
	sorted := slices.Clone(peers)
	slices.SortStableFunc(sorted, func(a, b Peer) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	var (
		kept []Peer
		errs []error
	)
	names := map[string]bool{}
	ips := map[netip.Addr]string{}
	macs := map[string]string{}
	for _, p := range sorted {
		if err := checkPeer(local, p, needMAC); err != nil {
			errs = append(errs, err)
			continue
		}
		if names[p.Name] {
			errs = append(errs, fmt.Errorf("overlay: peer %s appears twice; the first is kept", p.Name))
			continue
		}
		if other, ok := ips[p.UnderlayIP]; ok {
			errs = append(errs, fmt.Errorf("overlay: peer %s: underlay IP %v is peer %s's already", p.Name, p.UnderlayIP, other))
			continue
		}
		if needMAC {
			if other, ok := macs[p.VTEPMAC.String()]; ok {
				errs = append(errs, fmt.Errorf("overlay: peer %s: VTEP MAC %v is peer %s's already", p.Name, p.VTEPMAC, other))
				continue
			}
		}
		clash := ""
		for _, q := range kept {
			if p.PodCIDR.Overlaps(q.PodCIDR) {
				clash = q.Name
				break
			}
		}
		if clash != "" {
			errs = append(errs, fmt.Errorf("overlay: peer %s: pod CIDR %v overlaps peer %s's", p.Name, p.PodCIDR, clash))
			continue
		}
		names[p.Name] = true
		ips[p.UnderlayIP] = p.Name
		if needMAC {
			macs[p.VTEPMAC.String()] = p.Name
		}
		p.PodCIDR = p.PodCIDR.Masked()
		kept = append(kept, p)
	}
	return kept, errors.Join(errs...)
}

func checkPeer(local LocalNode, p Peer, needMAC bool) error {
	id := p.Name
	switch {
	case id == "":
		return errors.New("overlay: peer has no name")
	case id == local.Name:
		return fmt.Errorf("overlay: peer %s has the local node's name", id)
	case !p.UnderlayIP.Is4():
		return fmt.Errorf("overlay: peer %s: underlay IP %v is not an IPv4 address", id, p.UnderlayIP)
	case p.UnderlayIP == local.UnderlayIP:
		return fmt.Errorf("overlay: peer %s: underlay IP %v is the local node's", id, p.UnderlayIP)
	case !p.PodCIDR.IsValid() || !p.PodCIDR.Addr().Is4() || p.PodCIDR.Bits() > 30:
		return fmt.Errorf("overlay: peer %s: pod CIDR %v is not an IPv4 prefix of /30 or larger", id, p.PodCIDR)
	case p.PodCIDR.Masked().Overlaps(local.PodCIDR.Masked()):
		return fmt.Errorf("overlay: peer %s: pod CIDR %v overlaps the local pod CIDR %v", id, p.PodCIDR, local.PodCIDR)
	}
	if needMAC && (len(p.VTEPMAC) != 6 || p.VTEPMAC[0]&1 != 0 || slices.Equal(p.VTEPMAC, make(net.HardwareAddr, 6))) {
		return fmt.Errorf("overlay: peer %s: VTEP MAC %q is not a unicast Ethernet address", id, p.VTEPMAC.String())
	}
	return nil
}

// IPNetPrefix converts a netlink-style *net.IPNet to a netip.Prefix (the
// zero Prefix for nil or malformed input).
func IPNetPrefix(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(a.Unmap(), ones)
}

// PrefixIPNet converts a netip.Prefix to the *net.IPNet netlink takes.
func PrefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
