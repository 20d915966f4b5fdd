package ipip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/barge-dev/barge/overlay"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Mode selects the data path.
type Mode string

const (
	// ModeAuto uses the kernel device when the kernel has IPIP and the
	// userspace tunnel when it does not.
	ModeAuto Mode = ""
	// ModeKernel insists on the kernel device.
	ModeKernel Mode = "kernel"
	// ModeUserspace always runs the userspace tunnel.
	ModeUserspace Mode = "userspace"
)

// Defaults.
const (
	DefaultDevice = "barge-ipip"
	// Overhead is the outer IPv4 header.
	Overhead     = 20
	DefaultBatch = 64
	// socketBuffer sizes the raw socket's queues: room for bursts of
	// full-size packets while the tunnel goroutines are not scheduled.
	socketBuffer = 4 << 20
)

// ErrNoKernelIPIP is returned (wrapped) by Setup in ModeKernel when the
// kernel cannot make an ipip device.
var ErrNoKernelIPIP = errors.New("the kernel has no IPIP support (CONFIG_NET_IPIP)")

// Config configures the backend; zero values take the defaults.
type Config struct {
	Mode Mode
	// Device names the tunnel device, kernel or TUN.
	Device string
	// MTU of the device; 0 means the underlay link's MTU less Overhead.
	MTU int
	// Batch is how many packets the userspace tunnel moves per system
	// call at most.
	Batch  int
	Logger *slog.Logger
}

// Backend is the IPIP overlay. Its methods are safe for concurrent use.
type Backend struct {
	cfg    Config
	log    *slog.Logger
	mu     sync.Mutex
	local  overlay.LocalNode
	attrs  overlay.Attrs
	kernel bool
	tun    *tunnel
	ready  bool
}

var _ overlay.Backend = (*Backend)(nil)

// New returns a backend; nothing changes on the node until Setup.
func New(cfg Config) *Backend {
	if cfg.Device == "" {
		cfg.Device = DefaultDevice
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Backend{cfg: cfg, log: cfg.Logger.With("backend", "ipip", "device", cfg.Device)}
}

// Setup makes the tunnel device and, for the userspace tunnel, starts
// the data path. Attrs.Mode says which one runs: "ipip" (kernel) or
// "ipip-userspace".
func (b *Backend) Setup(ctx context.Context, local overlay.LocalNode) (overlay.Attrs, error) {
	if err := overlay.ValidateLocal(local); err != nil {
		return overlay.Attrs{}, err
	}
	switch b.cfg.Mode {
	case ModeAuto, ModeKernel, ModeUserspace:
	default:
		return overlay.Attrs{}, fmt.Errorf("ipip: unknown mode %q (want kernel, userspace or empty for auto)", b.cfg.Mode)
	}
	if err := ctx.Err(); err != nil {
		return overlay.Attrs{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ready {
		return overlay.Attrs{}, errors.New("ipip: Setup called twice (Close first)")
	}
	b.local = local
	under, err := underlay(local)
	if err != nil {
		return overlay.Attrs{}, fmt.Errorf("ipip: %w", err)
	}
	mtu := b.cfg.MTU
	if mtu == 0 {
		mtu = under.Attrs().MTU - Overhead
	}
	if mtu < 576 {
		return overlay.Attrs{}, fmt.Errorf("ipip: MTU %d too small (underlay %s has MTU %d)", mtu, under.Attrs().Name, under.Attrs().MTU)
	}
	if b.cfg.Mode != ModeUserspace {
		err := b.ensureKernelDevice(mtu)
		switch {
		case err == nil:
			b.kernel = true
			b.attrs = overlay.Attrs{Mode: "ipip", Device: b.cfg.Device, MTU: mtu}
			b.ready = true
			return b.attrs, nil
		case !errors.Is(err, ErrNoKernelIPIP) || b.cfg.Mode == ModeKernel:
			return overlay.Attrs{}, err
		}
		b.log.Info("the kernel has no IPIP; using the userspace tunnel")
	}
	if err := b.startUserspace(mtu); err != nil {
		return overlay.Attrs{}, err
	}
	b.attrs = overlay.Attrs{Mode: "ipip-userspace", Device: b.cfg.Device, MTU: mtu}
	b.ready = true
	return b.attrs, nil
}

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

// ensureKernelDevice makes the ipip device: a point-to-multipoint tunnel
// (no remote) sourced from the underlay address, whose routes' gateways
// name each packet's outer destination.
func (b *Backend) ensureKernelDevice(mtu int) error {
	want := &netlink.Iptun{
		LinkAttrs: netlink.LinkAttrs{Name: b.cfg.Device, MTU: mtu},
		Local:     b.local.UnderlayIP.AsSlice(),
		PMtuDisc:  1,
		Ttl:       defaultTTL,
	}
	link, err := netlink.LinkByName(b.cfg.Device)
	if err == nil {
		t, ok := link.(*netlink.Iptun)
		why := ""
		switch {
		case !ok:
			why = "it is a " + link.Type()
		case !t.Local.Equal(want.Local):
			why = fmt.Sprintf("local %v, want %v", t.Local, want.Local)
		case t.Remote != nil && !t.Remote.IsUnspecified():
			why = fmt.Sprintf("it has remote %v", t.Remote)
		case t.FlowBased:
			why = "it is flow based"
		}
		if why != "" {
			// A TUN device of an earlier userspace run goes too, but only
			// once the kernel is known to have IPIP.
			if !ok && link.Type() == "tuntap" && !kernelHasIPIP() {
				return ErrNoKernelIPIP
			}
			b.log.Info("recreating device", "reason", why)
			if err := netlink.LinkDel(link); err != nil {
				return fmt.Errorf("ipip: delete %s (%s): %w", b.cfg.Device, why, err)
			}
			link = nil
		}
	} else if !isNotFound(err) {
		return fmt.Errorf("ipip: %s: %w", b.cfg.Device, err)
	} else {
		link = nil
	}
	if link == nil {
		if err := netlink.LinkAdd(want); err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) {
				return fmt.Errorf("ipip: add %s: %w", b.cfg.Device, ErrNoKernelIPIP)
			}
			return fmt.Errorf("ipip: add %s: %w", b.cfg.Device, err)
		}
		if link, err = netlink.LinkByName(b.cfg.Device); err != nil {
			return fmt.Errorf("ipip: %s: %w", b.cfg.Device, err)
		}
		b.log.Info("kernel device created", "mtu", mtu)
	}
	if link.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("ipip: %s: MTU %d: %w", b.cfg.Device, mtu, err)
		}
	}
	return b.finishDevice(link)
}

// kernelHasIPIP probes by making (and at once deleting) a throwaway ipip
// device.
func kernelHasIPIP() bool {
	probe := &netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: "barge-ipprobe"}}
	if err := netlink.LinkAdd(probe); err != nil {
		return errors.Is(err, unix.EEXIST)
	}
	_ = netlink.LinkDel(probe)
	return true
}

// finishDevice gives the device the tunnel address alone and brings it
// up.
func (b *Backend) finishDevice(link netlink.Link) error {
	want := netip.PrefixFrom(overlay.TunnelAddr(b.local.PodCIDR), 32)
	addrs, err := netlink.AddrList(link, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("ipip: %s: list addresses: %w", b.cfg.Device, err)
	}
	have := false
	for _, a := range addrs {
		if overlay.IPNetPrefix(a.IPNet) == want {
			have = true
			continue
		}
		if err := netlink.AddrDel(link, &a); err != nil {
			return fmt.Errorf("ipip: %s: remove address %v: %w", b.cfg.Device, a.IPNet, err)
		}
	}
	if !have {
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: overlay.PrefixIPNet(want)}); err != nil {
			return fmt.Errorf("ipip: %s: add address %v: %w", b.cfg.Device, want, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("ipip: up %s: %w", b.cfg.Device, err)
	}
	return nil
}

func (b *Backend) startUserspace(mtu int) error {
	tun, err := openTUN(b.cfg.Device)
	if err != nil {
		// A link of that name that is not our kind of TUN (an ipip
		// device from a kernel that had IPIP, a TAP) is replaced once.
		if l, lerr := netlink.LinkByName(b.cfg.Device); lerr == nil {
			b.log.Info("replacing link that cannot be attached as a TUN", "type", l.Type(), "err", err)
			if derr := netlink.LinkDel(l); derr != nil {
				return fmt.Errorf("ipip: %w (and deleting it failed: %v)", err, derr)
			}
			tun, err = openTUN(b.cfg.Device)
		}
		if err != nil {
			return fmt.Errorf("ipip: %w", err)
		}
	}
	link, err := netlink.LinkByName(b.cfg.Device)
	if err != nil {
		tun.Close()
		return fmt.Errorf("ipip: %s: %w", b.cfg.Device, err)
	}
	if link.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(link, mtu); err != nil {
			tun.Close()
			return fmt.Errorf("ipip: %s: MTU %d: %w", b.cfg.Device, mtu, err)
		}
	}
	if err := b.finishDevice(link); err != nil {
		tun.Close()
		return err
	}
	sock, err := openRaw(socketBuffer)
	if err != nil {
		tun.Close()
		return fmt.Errorf("ipip: %w", err)
	}
	t, err := startTunnel(b.log, tun, sock, b.local.UnderlayIP, b.local.PodCIDR, mtu, b.cfg.Batch)
	if err != nil {
		tun.Close()
		sock.Close()
		return fmt.Errorf("ipip: %w", err)
	}
	b.tun = t
	b.log.Info("userspace tunnel started", "mtu", mtu, "batch", b.cfg.Batch)
	return nil
}

// SetPeers programs exactly the given peers' routes (and, in userspace,
// the tunnel's peer table, which is what it accepts packets from);
// routes on the device that no peer accounts for are removed. Peers that
// CheckPeers rejects are left out and reported in the error, after the
// others are programmed.
func (b *Backend) SetPeers(ctx context.Context, peers []overlay.Peer) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.ready {
		return errors.New("ipip: SetPeers before Setup")
	}
	kept, perr := overlay.CheckPeers(b.local, peers, false)
	link, err := netlink.LinkByName(b.cfg.Device)
	if err != nil {
		return fmt.Errorf("ipip: %s: %w", b.cfg.Device, err)
	}
	if err := b.finishDevice(link); err != nil {
		return err
	}
	if b.tun != nil {
		// The table is swapped before routes change: a new peer's
		// replies are accepted as soon as its route sends to it, and
		// packets still routed to a removed peer until its route goes
		// are dropped (TxNoPeer).
		table := map[netip.Addr]netip.Prefix{}
		for _, p := range kept {
			table[p.UnderlayIP] = p.PodCIDR
		}
		b.tun.setPeers(table)
	}
	want := map[netip.Prefix]overlay.Peer{}
	for _, p := range kept {
		want[p.PodCIDR] = p
	}
	var errs []error
	routes, err := netlink.RouteList(link, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("ipip: list routes: %w", err)
	}
	for _, r := range routes {
		if r.Protocol == unix.RTPROT_KERNEL {
			continue
		}
		if p, ok := want[overlay.IPNetPrefix(r.Dst)]; ok && b.routeMatches(r, p) {
			continue
		}
		b.log.Info("removing route", "dst", r.Dst, "gw", r.Gw)
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("ipip: remove route %v: %w", r.Dst, err))
		}
	}
	for _, p := range kept {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := netlink.RouteReplace(b.route(link, p)); err != nil {
			errs = append(errs, fmt.Errorf("ipip: peer %s: route %v: %w", p.Name, p.PodCIDR, err))
		}
	}
	if perr != nil {
		errs = append(errs, fmt.Errorf("ipip: peers left out: %w", perr))
	}
	return errors.Join(errs...)
}

func (b *Backend) route(link netlink.Link, p overlay.Peer) *netlink.Route {
	r := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: overlay.PrefixIPNet(p.PodCIDR)}
	if b.kernel {
		// The gateway is the outer destination, onlink since no
		// subnet of the device holds it (Calico's routes).
		r.Gw = p.UnderlayIP.AsSlice()
		r.Flags = int(netlink.FLAG_ONLINK)
	} else {
		r.Scope = netlink.SCOPE_LINK
	}
	return r
}

func (b *Backend) routeMatches(r netlink.Route, p overlay.Peer) bool {
	gw, _ := netip.AddrFromSlice(r.Gw)
	if b.kernel {
		return gw.Unmap() == p.UnderlayIP && r.Flags&int(netlink.FLAG_ONLINK) != 0
	}
	return len(r.Gw) == 0 && r.Scope == netlink.SCOPE_LINK
}

// Mode reports the data path Setup chose: "ipip", "ipip-userspace", or
// "" before Setup.
func (b *Backend) Mode() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.attrs.Mode
}

// Stats returns the userspace tunnel's counters (zero for the kernel
// device).
func (b *Backend) Stats() Stats {
	b.mu.Lock()
	t := b.tun
	b.mu.Unlock()
	if t == nil {
		return Stats{}
	}
	return t.stats.snapshot()
}

// Close stops the userspace tunnel's goroutines and closes its file
// descriptors. The device and its routes stay (the TUN device is
// persistent), so a restarted agent attaches to them again; packets sent
// meanwhile are dropped. For the kernel device Close does nothing.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ready = false
	if b.tun == nil {
		return nil
	}
	err := b.tun.close()
	b.tun = nil
	return err
}

// Teardown stops the tunnel and deletes the device with its routes.
func (b *Backend) Teardown(ctx context.Context) error {
	cerr := b.Close()
	l, err := netlink.LinkByName(b.cfg.Device)
	if err != nil {
		if isNotFound(err) {
			return cerr
		}
		return errors.Join(cerr, fmt.Errorf("ipip: %w", err))
	}
	if err := netlink.LinkDel(l); err != nil {
		return errors.Join(cerr, fmt.Errorf("ipip: delete %s: %w", b.cfg.Device, err))
	}
	return cerr
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}
