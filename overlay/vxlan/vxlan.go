package vxlan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/barge-dev/barge/overlay"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Defaults.
const (
	DefaultDevice = "barge-vxlan"
	DefaultVNI    = 1
	// DefaultPort is IANA's VXLAN port (the kernel's own default, 8472,
	// predates it).
	DefaultPort = 4789
	// Overhead is what VXLAN adds to every packet on an IPv4 underlay:
	// outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14).
	Overhead = 50
)

// Config configures the backend; zero values take the defaults.
type Config struct {
	Device string
	VNI    int
	Port   int
	// MTU of the device; 0 means the underlay link's MTU less Overhead.
	MTU int
	// TxChecksumOffload decides the device's tx checksum offload.
	// Kernels before 5.7 compute wrong checksums for VXLAN packets whose
	// inner packet was NATed with random-fully (Services, egress
	// masquerade), and peers drop them: flannel turns the offload off
	// (ethtool -K dev tx-checksum-ip-generic off) and Calico does on
	// those kernels. Turning it off also turns off segmentation offload on
	// the device, so on fixed kernels it costs throughput for nothing.
	// OffloadAuto (the default) is Calico's rule: off before 5.7, on from
	// 5.7.
	TxChecksumOffload Offload
	Logger            *slog.Logger
}

// Offload is a tx checksum offload setting.
type Offload string

const (
	OffloadAuto Offload = ""
	OffloadOn   Offload = "on"
	OffloadOff  Offload = "off"
)

// The first kernel version whose VXLAN tx checksum offload survives
// NAT.
const (
	fixedMajor = 5
	fixedMinor = 7
)

// txChecksumWanted resolves an Offload against the running kernel.
func txChecksumWanted(o Offload, release string) (bool, error) {
	switch o {
	case OffloadOn:
		return true, nil
	case OffloadOff:
		return false, nil
	case OffloadAuto:
		var major, minor int
		if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err != nil {
			// An unreadable version gets the safe setting.
			return false, nil
		}
		return major > fixedMajor || major == fixedMajor && minor >= fixedMinor, nil
	}
	return false, fmt.Errorf("vxlan: tx checksum offload %q: want on, off or empty for auto", o)
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// Backend is the VXLAN overlay. Its methods are safe for concurrent use.
type Backend struct {
	cfg   Config
	log   *slog.Logger
	mu    sync.Mutex
	local overlay.LocalNode
	attrs overlay.Attrs
	ready bool
}

var _ overlay.Backend = (*Backend)(nil)

// New returns a backend; nothing changes on the node until Setup.
func New(cfg Config) *Backend {
	if cfg.Device == "" {
		cfg.Device = DefaultDevice
	}
	if cfg.VNI == 0 {
		cfg.VNI = DefaultVNI
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Backend{cfg: cfg, log: cfg.Logger.With("backend", "vxlan", "device", cfg.Device)}
}

// VTEPMAC is the VTEP MAC of the named node: a locally administered
// unicast address from a hash of the name, so it survives restarts
// without being stored anywhere.
func VTEPMAC(node string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("barge vxlan vtep\x00" + node))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}

// Setup makes the node's VXLAN device what the configuration says,
// replacing an existing device whose attributes differ (a changed VNI,
// port, underlay, MTU, MAC, or learning turned on by hand).
func (b *Backend) Setup(ctx context.Context, local overlay.LocalNode) (overlay.Attrs, error) {
	if err := overlay.ValidateLocal(local); err != nil {
		return overlay.Attrs{}, err
	}
	if b.cfg.VNI < 1 || b.cfg.VNI > 1<<24-1 {
		return overlay.Attrs{}, fmt.Errorf("vxlan: VNI %d out of range 1-16777215", b.cfg.VNI)
	}
	if b.cfg.Port < 1 || b.cfg.Port > 65535 {
		return overlay.Attrs{}, fmt.Errorf("vxlan: port %d out of range", b.cfg.Port)
	}
	if _, err := txChecksumWanted(b.cfg.TxChecksumOffload, ""); err != nil {
		return overlay.Attrs{}, err
	}
	if err := ctx.Err(); err != nil {
		return overlay.Attrs{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.local = local
	if _, err := b.ensureDevice(); err != nil {
		return overlay.Attrs{}, err
	}
	b.ready = true
	return b.attrs, nil
}

// underlay finds the link that carries the node's underlay address.
func underlay(local overlay.LocalNode) (netlink.Link, error) {
	if local.UnderlayInterface != "" {
		l, err := netlink.LinkByName(local.UnderlayInterface)
		if err != nil {
			return nil, fmt.Errorf("underlay interface %s: %w", local.UnderlayInterface, err)
		}
		return l, nil
	}
	addrs, err := netlink.AddrList(nil, unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if overlay.IPNetPrefix(a.IPNet).Addr() == local.UnderlayIP {
			return netlink.LinkByIndex(a.LinkIndex)
		}
	}
	return nil, fmt.Errorf("no interface has the underlay address %v", local.UnderlayIP)
}

// ensureDevice makes the device right and returns it; b.mu is held.
func (b *Backend) ensureDevice() (netlink.Link, error) {
	under, err := underlay(b.local)
	if err != nil {
		return nil, fmt.Errorf("vxlan: %w", err)
	}
	mtu := b.cfg.MTU
	if mtu == 0 {
		mtu = under.Attrs().MTU - Overhead
	}
	if mtu < 576 {
		return nil, fmt.Errorf("vxlan: MTU %d too small (underlay %s has MTU %d)", mtu, under.Attrs().Name, under.Attrs().MTU)
	}
	mac := VTEPMAC(b.local.Name)
	want := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: b.cfg.Device, MTU: mtu, HardwareAddr: mac},
		VxlanId:      b.cfg.VNI,
		VtepDevIndex: under.Attrs().Index,
		SrcAddr:      b.local.UnderlayIP.AsSlice(),
		Port:         b.cfg.Port,
		Learning:     false,
	}
	link, err := netlink.LinkByName(b.cfg.Device)
	if err == nil {
		if why := mismatch(link, want); why != "" {
			b.log.Info("recreating device", "reason", why)
			if err := netlink.LinkDel(link); err != nil {
				return nil, fmt.Errorf("vxlan: delete %s (%s): %w", b.cfg.Device, why, err)
			}
			link = nil
		}
	} else {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return nil, fmt.Errorf("vxlan: %s: %w", b.cfg.Device, err)
		}
		link = nil
	}
	if link == nil {
		if err := netlink.LinkAdd(want); err != nil {
			return nil, fmt.Errorf("vxlan: add %s (VNI %d, port %d, via %s): %w", b.cfg.Device, b.cfg.VNI, b.cfg.Port, under.Attrs().Name, err)
		}
		if link, err = netlink.LinkByName(b.cfg.Device); err != nil {
			return nil, fmt.Errorf("vxlan: %s: %w", b.cfg.Device, err)
		}
		b.log.Info("device created", "vni", b.cfg.VNI, "port", b.cfg.Port, "mtu", mtu, "mac", mac, "underlay", under.Attrs().Name)
	}
	if err := setOnlyAddr(link, netip.PrefixFrom(overlay.TunnelAddr(b.local.PodCIDR), 32)); err != nil {
		return nil, fmt.Errorf("vxlan: %w", err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("vxlan: up %s: %w", b.cfg.Device, err)
	}
	wantCsum, err := txChecksumWanted(b.cfg.TxChecksumOffload, kernelRelease())
	if err != nil {
		return nil, err
	}
	on, err := TxChecksum(b.cfg.Device)
	if err != nil {
		return nil, fmt.Errorf("vxlan: %w", err)
	}
	if on != wantCsum {
		if err := SetTxChecksum(b.cfg.Device, wantCsum); err != nil {
			return nil, fmt.Errorf("vxlan: %w", err)
		}
	}
	b.attrs = overlay.Attrs{Mode: "vxlan", Device: b.cfg.Device, MTU: mtu, VTEPMAC: mac}
	return link, nil
}

// mismatch says how an existing link differs from the wanted device, or
// "" when it does not.
func mismatch(link netlink.Link, want *netlink.Vxlan) string {
	v, ok := link.(*netlink.Vxlan)
	switch {
	case !ok:
		return fmt.Sprintf("it is a %s, not a vxlan device", link.Type())
	case v.VxlanId != want.VxlanId:
		return fmt.Sprintf("VNI %d, want %d", v.VxlanId, want.VxlanId)
	case v.Port != want.Port:
		return fmt.Sprintf("port %d, want %d", v.Port, want.Port)
	case v.VtepDevIndex != want.VtepDevIndex:
		return fmt.Sprintf("underlay link %d, want %d", v.VtepDevIndex, want.VtepDevIndex)
	case !v.SrcAddr.Equal(want.SrcAddr):
		return fmt.Sprintf("local address %v, want %v", v.SrcAddr, want.SrcAddr)
	case v.Learning:
		return "learning is on"
	case v.FlowBased:
		return "it is flow based"
	case len(v.Group) > 0 && !v.Group.IsUnspecified():
		return fmt.Sprintf("it has group %v", v.Group)
	case v.Attrs().MTU != want.MTU:
		return fmt.Sprintf("MTU %d, want %d", v.Attrs().MTU, want.MTU)
	case !bytes.Equal(v.Attrs().HardwareAddr, want.HardwareAddr):
		return fmt.Sprintf("MAC %v, want %v", v.Attrs().HardwareAddr, want.HardwareAddr)
	}
	return ""
}

func setOnlyAddr(link netlink.Link, want netip.Prefix) error {
	addrs, err := netlink.AddrList(link, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("%s: list addresses: %w", link.Attrs().Name, err)
	}
	have := false
	for _, a := range addrs {
		if overlay.IPNetPrefix(a.IPNet) == want {
			have = true
			continue
		}
		if err := netlink.AddrDel(link, &a); err != nil {
			return fmt.Errorf("%s: remove address %v: %w", link.Attrs().Name, a.IPNet, err)
		}
	}
	if !have {
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: overlay.PrefixIPNet(want)}); err != nil {
			return fmt.Errorf("%s: add address %v: %w", link.Attrs().Name, want, err)
		}
	}
	return nil
}

// SetPeers programs exactly the given peers: entries for new or changed
// peers are added or replaced, and every route, neighbour and FDB entry
// on the device that no peer accounts for is removed, whoever made it.
// Peers that CheckPeers rejects are left out and reported in the error,
// after the others are programmed.
func (b *Backend) SetPeers(ctx context.Context, peers []overlay.Peer) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.ready {
		return errors.New("vxlan: SetPeers before Setup")
	}
	kept, perr := overlay.CheckPeers(b.local, peers, true)
	// The device is checked every time: one deleted or changed by hand
	// is put back on the next peer update.
	link, err := b.ensureDevice()
	if err != nil {
		return err
	}
	idx := link.Attrs().Index

	wantRoutes := map[netip.Prefix]netip.Addr{}
	wantNeigh := map[netip.Addr]string{}
	wantFDB := map[string]bool{} // mac|dst
	for _, p := range kept {
		gw := overlay.TunnelAddr(p.PodCIDR)
		wantRoutes[p.PodCIDR] = gw
		wantNeigh[gw] = p.VTEPMAC.String()
		wantFDB[p.VTEPMAC.String()+"|"+p.UnderlayIP.String()] = true
	}

	var errs []error
	// Removal first, routes before the entries they use.
	routes, err := netlink.RouteList(link, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("vxlan: list routes: %w", err)
	}
	for _, r := range routes {
		if r.Protocol == unix.RTPROT_KERNEL {
			continue
		}
		dst := overlay.IPNetPrefix(r.Dst)
		gw, _ := netip.AddrFromSlice(r.Gw)
		if want, ok := wantRoutes[dst]; ok && gw.Unmap() == want && r.Flags&int(netlink.FLAG_ONLINK) != 0 {
			continue
		}
		b.log.Info("removing route", "dst", r.Dst, "gw", r.Gw)
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("vxlan: remove route %v: %w", r.Dst, err))
		}
	}
	neighs, err := netlink.NeighList(idx, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("vxlan: list neighbours: %w", err)
	}
	for _, n := range neighs {
		ip, _ := netip.AddrFromSlice(n.IP)
		if wantNeigh[ip.Unmap()] == n.HardwareAddr.String() && n.State&netlink.NUD_PERMANENT != 0 {
			continue
		}
		b.log.Info("removing neighbour", "ip", n.IP, "mac", n.HardwareAddr)
		if err := netlink.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("vxlan: remove neighbour %v: %w", n.IP, err))
		}
	}
	fdb, err := netlink.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("vxlan: list FDB: %w", err)
	}
	for _, n := range fdb {
		if wantFDB[n.HardwareAddr.String()+"|"+ipString(n.IP)] {
			continue
		}
		b.log.Info("removing FDB entry", "mac", n.HardwareAddr, "dst", n.IP)
		n.Family = unix.AF_BRIDGE
		n.Flags |= netlink.NTF_SELF
		if err := netlink.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("vxlan: remove FDB entry %v → %v: %w", n.HardwareAddr, n.IP, err))
		}
	}

	for _, p := range kept {
		if err := ctx.Err(); err != nil {
			return err
		}
		gw := overlay.TunnelAddr(p.PodCIDR)
		if err := netlink.NeighSet(&netlink.Neigh{
			LinkIndex: idx, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
			Type: unix.RTN_UNICAST, IP: gw.AsSlice(), HardwareAddr: p.VTEPMAC,
		}); err != nil {
			errs = append(errs, fmt.Errorf("vxlan: peer %s: neighbour %v → %v: %w", p.Name, gw, p.VTEPMAC, err))
			continue
		}
		if err := netlink.NeighSet(&netlink.Neigh{
			LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
			Flags: netlink.NTF_SELF, IP: p.UnderlayIP.AsSlice(), HardwareAddr: p.VTEPMAC,
		}); err != nil {
			errs = append(errs, fmt.Errorf("vxlan: peer %s: FDB %v → %v: %w", p.Name, p.VTEPMAC, p.UnderlayIP, err))
			continue
		}
		if err := netlink.RouteReplace(&netlink.Route{
			LinkIndex: idx, Dst: overlay.PrefixIPNet(p.PodCIDR), Gw: gw.AsSlice(),
			Flags: int(netlink.FLAG_ONLINK), Scope: netlink.SCOPE_UNIVERSE,
		}); err != nil {
			errs = append(errs, fmt.Errorf("vxlan: peer %s: route %v via %v: %w", p.Name, p.PodCIDR, gw, err))
		}
	}
	if perr != nil {
		errs = append(errs, fmt.Errorf("vxlan: peers left out: %w", perr))
	}
	return errors.Join(errs...)
}

func ipString(ip net.IP) string {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return ""
	}
	return a.Unmap().String()
}

// Close does nothing: the kernel device carries traffic without the
// agent, and a restarted agent's Setup and SetPeers repair it.
func (b *Backend) Close() error { return nil }

// Teardown deletes the device, and with it every route and entry on it.
func (b *Backend) Teardown(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ready = false
	l, err := netlink.LinkByName(b.cfg.Device)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("vxlan: %w", err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("vxlan: delete %s: %w", b.cfg.Device, err)
	}
	return nil
}
