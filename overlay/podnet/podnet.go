package podnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/barge-dev/barge/overlay"
	"github.com/barge-dev/barge/overlay/ipam"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultBridge is the node bridge's name.
const DefaultBridge = "barge0"

// PodInterface is the pod's end of its veth pair.
const PodInterface = "eth0"

// Config configures a node's pod network.
type Config struct {
	// StateDir keeps the address allocations (overlay/ipam).
	StateDir string
	// PodCIDR is the node's pod CIDR; the bridge holds its gateway.
	PodCIDR netip.Prefix
	// Bridge names the node bridge; "" is DefaultBridge.
	Bridge string
	// MTU of the bridge and of every pod interface: the overlay
	// backend's Attrs.MTU. 0 means 1500.
	MTU    int
	Logger *slog.Logger
}

// PodRef names a pod. ID is the key of everything podnet keeps (the
// pod's UID or its sandbox ID); Namespace and Name are recorded for
// people.
type PodRef struct {
	ID        string `json:"id"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
}

// PodNetwork is a pod's network as Attach made it.
type PodNetwork struct {
	IP            netip.Prefix `json:"ip"` // the pod's address with the pod CIDR's length
	Gateway       netip.Addr   `json:"gateway"`
	Interface     string       `json:"interface"`     // inside the pod: eth0
	HostInterface string       `json:"hostInterface"` // the host end, a bridge port
	MTU           int          `json:"mtu"`
	Netns         string       `json:"netns"`
}

// Pod is one attached pod, as List reports it.
type Pod struct {
	PodRef
	PodNetwork
}

// Network is a node's pod network. Its methods are safe for concurrent
// use.
type Network struct {
	cfg     Config
	log     *slog.Logger
	ipam    *ipam.Allocator
	gateway netip.Addr
	mu      sync.Mutex
}

// New opens the node's address allocations and makes sure the bridge
// exists with the gateway address, the MTU and nothing else, up, and that
// the node forwards IPv4.
func New(ctx context.Context, cfg Config) (*Network, error) {
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.MTU < 576 || cfg.MTU > 65535 {
		return nil, fmt.Errorf("podnet: MTU %d out of range", cfg.MTU)
	}
	if cfg.StateDir == "" {
		return nil, errors.New("podnet: no state directory given")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	alloc, err := ipam.Open(cfg.StateDir, cfg.PodCIDR)
	if err != nil {
		return nil, err
	}
	n := &Network{cfg: cfg, log: cfg.Logger, ipam: alloc, gateway: overlay.Gateway(cfg.PodCIDR)}
	n.cfg.PodCIDR = alloc.CIDR()
	if err := n.ensureBridge(); err != nil {
		alloc.Close()
		return nil, err
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
		alloc.Close()
		return nil, fmt.Errorf("podnet: enable IPv4 forwarding: %w", err)
	}
	return n, nil
}

func (n *Network) ensureBridge() error {
	name := n.cfg.Bridge
	l, err := netlink.LinkByName(name)
	if err == nil {
		if _, ok := l.(*netlink.Bridge); !ok {
			n.log.Warn("replacing a link that is not a bridge", "link", name, "type", l.Type())
			if err := netlink.LinkDel(l); err != nil {
				return fmt.Errorf("podnet: delete %s (a %s, want a bridge): %w", name, l.Type(), err)
			}
			l = nil
		}
	} else if !isNotFound(err) {
		return fmt.Errorf("podnet: bridge %s: %w", name, err)
	} else {
		l = nil
	}
	if l == nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: n.cfg.MTU}}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("podnet: add bridge %s: %w", name, err)
		}
		if l, err = netlink.LinkByName(name); err != nil {
			return fmt.Errorf("podnet: bridge %s: %w", name, err)
		}
	}
	if l.Attrs().MTU != n.cfg.MTU {
		if err := netlink.LinkSetMTU(l, n.cfg.MTU); err != nil {
			return fmt.Errorf("podnet: bridge %s: set MTU %d: %w", name, n.cfg.MTU, err)
		}
	}
	want := netip.PrefixFrom(n.gateway, n.cfg.PodCIDR.Bits())
	addrs, err := netlink.AddrList(l, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("podnet: bridge %s: list addresses: %w", name, err)
	}
	have := false
	for _, a := range addrs {
		p := overlay.IPNetPrefix(a.IPNet)
		if p == want {
			have = true
			continue
		}
		// A stale gateway (the node's pod CIDR changed) would keep
		// routing the old range to this bridge.
		n.log.Info("removing stale bridge address", "bridge", name, "addr", p)
		if err := netlink.AddrDel(l, &a); err != nil {
			return fmt.Errorf("podnet: bridge %s: remove %v: %w", name, p, err)
		}
	}
	if !have {
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: overlay.PrefixIPNet(want)}); err != nil {
			return fmt.Errorf("podnet: bridge %s: add %v: %w", name, want, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("podnet: bridge %s: up: %w", name, err)
	}
	return nil
}

// HostInterface is the name of a pod's host-side veth: derived from its
// ID, so a restarted agent finds it without any other record.
func HostInterface(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "bv" + hex.EncodeToString(sum[:])[:12]
}

// Attach wires the pod into the network namespace at netnsPath and
// returns its network. Attaching a pod that is already attached and
// intact changes nothing and returns the same answer; a pod whose wiring
// is incomplete or wrong (a crash in the middle, a deleted veth) is wired
// again with the same address.
func (n *Network) Attach(ctx context.Context, pod PodRef, netnsPath string) (PodNetwork, error) {
	if pod.ID == "" {
		return PodNetwork{}, errors.New("podnet: attach: pod has no ID")
	}
	if err := ctx.Err(); err != nil {
		return PodNetwork{}, err
	}
	target, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return PodNetwork{}, fmt.Errorf("podnet: attach %s: netns %s: %w", pod.ID, netnsPath, err)
	}
	defer target.Close()
	nh, err := netlink.NewHandleAt(target)
	if err != nil {
		return PodNetwork{}, fmt.Errorf("podnet: attach %s: netlink in %s: %w", pod.ID, netnsPath, err)
	}
	defer nh.Close()

	n.mu.Lock()
	defer n.mu.Unlock()
	_, existed := n.ipam.Get(pod.ID)
	al, err := n.ipam.Allocate(pod.ID, map[string]string{"namespace": pod.Namespace, "name": pod.Name, "netns": netnsPath})
	if err != nil {
		return PodNetwork{}, fmt.Errorf("podnet: attach %s: %w", pod.ID, err)
	}
	pn := n.podNetwork(al)
	if err := n.check(nh, pn); err == nil {
		return pn, nil
	} else if existed {
		n.log.Info("rewiring pod", "pod", pod.ID, "reason", err)
	}
	if err := n.wire(target, nh, pn); err != nil {
		n.unwire(nh, pn)
		if !existed {
			if rerr := n.ipam.Release(pod.ID); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return PodNetwork{}, fmt.Errorf("podnet: attach %s: %w", pod.ID, err)
	}
	n.log.Info("pod attached", "pod", pod.ID, "namespace", pod.Namespace, "name", pod.Name, "ip", pn.IP, "host", pn.HostInterface)
	return pn, nil
}

func (n *Network) podNetwork(al ipam.Allocation) PodNetwork {
	return PodNetwork{
		IP:            netip.PrefixFrom(al.IP, n.cfg.PodCIDR.Bits()),
		Gateway:       n.gateway,
		Interface:     PodInterface,
		HostInterface: HostInterface(al.ID),
		MTU:           n.cfg.MTU,
		Netns:         al.Meta["netns"],
	}
}

// check reports what, if anything, is wrong with a pod's wiring.
func (n *Network) check(nh *netlink.Handle, pn PodNetwork) error {
	host, err := netlink.LinkByName(pn.HostInterface)
	if err != nil {
		return fmt.Errorf("host veth %s: %w", pn.HostInterface, err)
	}
	br, err := netlink.LinkByName(n.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	ha := host.Attrs()
	switch {
	case host.Type() != "veth":
		return fmt.Errorf("%s is a %s", pn.HostInterface, host.Type())
	case ha.MasterIndex != br.Attrs().Index:
		return fmt.Errorf("%s is not a port of %s", pn.HostInterface, n.cfg.Bridge)
	case ha.Flags&net.FlagUp == 0:
		return fmt.Errorf("%s is down", pn.HostInterface)
	case ha.MTU != pn.MTU:
		return fmt.Errorf("%s has MTU %d, want %d", pn.HostInterface, ha.MTU, pn.MTU)
	}
	eth, err := nh.LinkByName(pn.Interface)
	if err != nil {
		return fmt.Errorf("pod %s: %w", pn.Interface, err)
	}
	ea := eth.Attrs()
	switch {
	case ea.ParentIndex != ha.Index:
		return fmt.Errorf("pod %s is not %s's peer", pn.Interface, pn.HostInterface)
	case ea.Flags&net.FlagUp == 0:
		return fmt.Errorf("pod %s is down", pn.Interface)
	case ea.MTU != pn.MTU:
		return fmt.Errorf("pod %s has MTU %d, want %d", pn.Interface, ea.MTU, pn.MTU)
	}
	addrs, err := nh.AddrList(eth, unix.AF_INET)
	if err != nil {
		return err
	}
	if len(addrs) != 1 || overlay.IPNetPrefix(addrs[0].IPNet) != pn.IP {
		return fmt.Errorf("pod %s addresses %v, want only %v", pn.Interface, addrs, pn.IP)
	}
	routes, err := nh.RouteList(eth, unix.AF_INET)
	if err != nil {
		return err
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask) {
			if gw, ok := netip.AddrFromSlice(r.Gw); ok && gw.Unmap() == pn.Gateway {
				return nil
			}
		}
	}
	return fmt.Errorf("pod has no default route via %v", pn.Gateway)
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

// wire makes the veth pair from scratch: the pod end is created directly
// inside the pod's namespace as eth0, so no eth0 ever appears (or clashes)
// in the node's namespace.
func (n *Network) wire(target netns.NsHandle, nh *netlink.Handle, pn PodNetwork) error {
	n.unwire(nh, pn)
	br, err := netlink.LinkByName(n.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.cfg.Bridge, err)
	}
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: pn.HostInterface, MTU: pn.MTU, MasterIndex: br.Attrs().Index},
		PeerName:      pn.Interface,
		PeerNamespace: netlink.NsFd(target),
	}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("add veth %s: %w", pn.HostInterface, err)
	}
	host, err := netlink.LinkByName(pn.HostInterface)
	if err != nil {
		return err
	}
	// Hairpin lets a pod reach itself through a Service address that
	// the node translates back to the pod.
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("hairpin on %s: %w", pn.HostInterface, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("up %s: %w", pn.HostInterface, err)
	}
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("pod lo: %w", err)
	}
	if err := nh.LinkSetUp(lo); err != nil {
		return fmt.Errorf("pod lo up: %w", err)
	}
	eth, err := nh.LinkByName(pn.Interface)
	if err != nil {
		return fmt.Errorf("pod %s: %w", pn.Interface, err)
	}
	if eth.Attrs().MTU != pn.MTU {
		if err := nh.LinkSetMTU(eth, pn.MTU); err != nil {
			return fmt.Errorf("pod %s MTU: %w", pn.Interface, err)
		}
	}
	if err := nh.AddrAdd(eth, &netlink.Addr{IPNet: overlay.PrefixIPNet(pn.IP)}); err != nil {
		return fmt.Errorf("pod %s address %v: %w", pn.Interface, pn.IP, err)
	}
	if err := nh.LinkSetUp(eth); err != nil {
		return fmt.Errorf("pod %s up: %w", pn.Interface, err)
	}
	def := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: pn.Gateway.AsSlice(), Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}}
	if err := nh.RouteReplace(def); err != nil {
		return fmt.Errorf("pod default route via %v: %w", pn.Gateway, err)
	}
	return nil
}

// unwire removes both ends of a pod's veth pair, whichever exist.
func (n *Network) unwire(nh *netlink.Handle, pn PodNetwork) {
	if l, err := netlink.LinkByName(pn.HostInterface); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			n.log.Warn("delete host veth", "link", pn.HostInterface, "err", err)
		}
	}
	if nh == nil {
		return
	}
	if l, err := nh.LinkByName(pn.Interface); err == nil {
		if err := nh.LinkDel(l); err != nil {
			n.log.Warn("delete pod interface", "link", pn.Interface, "err", err)
		}
	}
}

// Detach removes a pod's veth pair and frees its address. Detaching an
// unknown pod does nothing; the pod's network namespace is the caller's
// to delete.
func (n *Network) Detach(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	host := HostInterface(id)
	if l, err := netlink.LinkByName(host); err == nil {
		// Deleting one end deletes its peer, inside the pod too.
		if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
			return fmt.Errorf("podnet: detach %s: delete %s: %w", id, host, err)
		}
	} else if !isNotFound(err) {
		return fmt.Errorf("podnet: detach %s: %w", id, err)
	}
	if err := n.ipam.Release(id); err != nil {
		return fmt.Errorf("podnet: detach %s: %w", id, err)
	}
	n.log.Info("pod detached", "pod", id)
	return nil
}

// List returns the attached pods, ordered by address.
func (n *Network) List() []Pod {
	var out []Pod
	for _, al := range n.ipam.List() {
		out = append(out, Pod{
			PodRef:     PodRef{ID: al.ID, Namespace: al.Meta["namespace"], Name: al.Meta["name"]},
			PodNetwork: n.podNetwork(al),
		})
	}
	return out
}

// Gateway is the bridge's address, the pods' default gateway.
func (n *Network) Gateway() netip.Addr { return n.gateway }

// Close releases the allocation state. Pods stay wired.
func (n *Network) Close() error { return n.ipam.Close() }

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}
