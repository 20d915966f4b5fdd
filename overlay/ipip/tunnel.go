package ipip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Stats counts what the userspace tunnel did since it started.
type Stats struct {
	TxPackets uint64 `json:"txPackets"` // TUN → peers
	RxPackets uint64 `json:"rxPackets"` // peers → TUN
	// RxUnknownPeer counts IPIP packets from an underlay address that is
	// no peer's: dropped.
	RxUnknownPeer uint64 `json:"rxUnknownPeer"`
	// RxSpoofed counts packets from a peer whose inner source is outside
	// that peer's pod CIDR, or whose inner destination is not this
	// node's: dropped.
	RxSpoofed uint64 `json:"rxSpoofed"`
	// RxMalformed counts packets that are not well-formed IPIP.
	RxMalformed uint64 `json:"rxMalformed"`
	// TxNoPeer counts packets the kernel routed into the TUN device for
	// an address no peer's pod CIDR holds: dropped.
	TxNoPeer uint64 `json:"txNoPeer"`
	// TxTooBig counts packets too large for the underlay; each with DF
	// set got an ICMP fragmentation-needed back.
	TxTooBig uint64 `json:"txTooBig"`
	TxErrors uint64 `json:"txErrors"`
	RxErrors uint64 `json:"rxErrors"`
}

type counters struct {
	tx, rx, rxUnknown, rxSpoofed, rxMalformed, txNoPeer, txTooBig, txErr, rxErr atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		TxPackets: c.tx.Load(), RxPackets: c.rx.Load(), RxUnknownPeer: c.rxUnknown.Load(),
		RxSpoofed: c.rxSpoofed.Load(), RxMalformed: c.rxMalformed.Load(), TxNoPeer: c.txNoPeer.Load(),
		TxTooBig: c.txTooBig.Load(), TxErrors: c.txErr.Load(), RxErrors: c.rxErr.Load(),
	}
}

// peerTable is an immutable view of the peers, swapped whole on every
// SetPeers so the data path reads it without locks.
type peerTable struct {
	byUnderlay map[netip.Addr]netip.Prefix // underlay IP → that peer's pod CIDR
	byCIDR     map[netip.Prefix]netip.Addr // pod CIDR → underlay IP
	bits       []int                       // distinct pod CIDR lengths, longest first
}

func newPeerTable(peers map[netip.Addr]netip.Prefix) *peerTable {
	t := &peerTable{byUnderlay: map[netip.Addr]netip.Prefix{}, byCIDR: map[netip.Prefix]netip.Addr{}}
	for u, c := range peers {
		t.byUnderlay[u] = c
		t.byCIDR[c] = u
		if !slices.Contains(t.bits, c.Bits()) {
			t.bits = append(t.bits, c.Bits())
		}
	}
	slices.Sort(t.bits)
	slices.Reverse(t.bits)
	return t
}

func (t *peerTable) lookup(dst netip.Addr) (netip.Addr, bool) {
	for _, b := range t.bits {
		p, _ := dst.Prefix(b)
		if u, ok := t.byCIDR[p]; ok {
			return u, true
		}
	}
	return netip.Addr{}, false
}

// tunnel is the userspace IPIP data path: packets the kernel routes into
// the TUN device are wrapped in an outer IPv4 header (RFC 2003) and sent
// to the peer owning their destination through a raw IPPROTO_IPIP
// socket; IPIP packets arriving on that socket from known peers are
// unwrapped and written to the TUN device, where the kernel routes them
// on to the pod.
type tunnel struct {
	log      *slog.Logger
	local    netip.Addr   // underlay source
	podCIDR  netip.Prefix // inner destinations accepted
	mtu      int          // TUN MTU: largest inner packet
	batch    int
	tun      wgtun.Device
	sock     *net.IPConn
	pc       *ipv4.PacketConn
	peers    atomic.Pointer[peerTable]
	stats    counters
	wg       sync.WaitGroup
	closed   atomic.Bool
	closeErr error
	once     sync.Once
}

// openTUN attaches to the persistent TUN device name, creating it if
// missing. Persistence keeps the device, its address and its routes
// when the agent exits, so a restarted agent picks up where the last
// left off. IFF_VNET_HDR with TCP segmentation offload lets the kernel
// hand over (and take back) 64 KiB TCP super-packets in one system call;
// wireguard-go's TUN device splits them into MTU-sized packets on the way
// out and coalesces received segments on the way in.
func openTUN(name string) (wgtun.Device, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUN name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("TUN %s is attached to another process (is another agent running?): %w", name, err)
		}
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETPERSIST %s: %w", name, err)
	}
	// The device makes the fd non-blocking, so os.File uses the runtime
	// poller: reads park the goroutine, and Close wakes it.
	dev, _, err := wgtun.CreateUnmonitoredTUNFromFD(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUN %s: %w", name, err)
	}
	return dev, nil
}

// openRaw opens the raw IPIP socket. IP_HDRINCL: the tunnel writes the
// outer header itself, to copy TOS and DF from the inner one.
func openRaw(bufBytes int) (*net.IPConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_IPIP)
	if err != nil {
		return nil, fmt.Errorf("raw IPIP socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "raw-ipip")
	defer f.Close()
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
		return nil, fmt.Errorf("IP_HDRINCL: %w", err)
	}
	for _, opt := range []int{unix.SO_RCVBUFFORCE, unix.SO_SNDBUFFORCE} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, bufBytes); err != nil {
			return nil, fmt.Errorf("socket buffer: %w", err)
		}
	}
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("raw IPIP socket: %w", err)
	}
	ic, ok := c.(*net.IPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("raw IPIP socket is a %T", c)
	}
	return ic, nil
}

func startTunnel(log *slog.Logger, tun wgtun.Device, sock *net.IPConn, local netip.Addr, podCIDR netip.Prefix, mtu, batch int) (*tunnel, error) {
	t := &tunnel{
		log: log, local: local, podCIDR: podCIDR, mtu: mtu, batch: batch,
		tun: tun, sock: sock, pc: ipv4.NewPacketConn(sock),
	}
	t.peers.Store(newPeerTable(nil))
	t.wg.Add(2)
	go t.txLoop()
	go t.rxLoop()
	return t, nil
}

func (t *tunnel) setPeers(peers map[netip.Addr]netip.Prefix) {
	t.peers.Store(newPeerTable(peers))
}

// writeTUN writes packets that start at offset in their buffers (with
// room for the virtio header before them), coalescing TCP segments of one
// flow into one write.
func (t *tunnel) writeTUN(pkts [][]byte, offset int) error {
	if _, err := t.tun.Write(pkts, offset); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return err
		}
		// One bad packet must not stop the rest.
		t.stats.rxErr.Add(1)
		t.log.Debug("write to TUN", "err", err)
	}
	return nil
}

func (t *tunnel) txLoop() {
	defer t.wg.Done()
	// Each buffer leaves room for the outer header before the packet.
	const off = ipv4HeaderLen
	// One read yields up to one super-packet's worth of segments.
	n := max(t.batch, 128)
	bufs := make([][]byte, n)
	sizes := make([]int, n)
	for i := range bufs {
		bufs[i] = make([]byte, off+65535)
	}
	msgs := make([]ipv4.Message, n)
	addrs := make([]net.IPAddr, n)
	for i := range addrs {
		addrs[i].IP = make(net.IP, 4)
	}
	var icmps [][]byte
	for {
		k, err := t.tun.Read(bufs, sizes, off)
		if err != nil {
			if t.closed.Load() || errors.Is(err, os.ErrClosed) {
				return
			}
			// A malformed super-packet is the kernel's oddity, not a
			// reason to stop.
			t.stats.txErr.Add(1)
			t.log.Debug("TUN read", "err", err)
			continue
		}
		peers := t.peers.Load()
		m := 0
		icmps = icmps[:0]
		for i := range k {
			pkt := bufs[i][off : off+sizes[i]]
			h, err := parseIPv4(pkt)
			if err != nil {
				continue // IPv6 or garbage from the kernel's side: not ours
			}
			under, ok := peers.lookup(h.dst)
			if !ok {
				t.stats.txNoPeer.Add(1)
				continue
			}
			if len(pkt) > t.mtu {
				// The error comes "from" the packet's destination: a
				// source that is one of this node's own addresses would be
				// dropped as martian when it re-enters through the TUN.
				t.stats.txTooBig.Add(1)
				if h.df {
					if e := fragNeeded(pkt, h.dst, t.mtu); e != nil {
						icmps = append(icmps, append(make([]byte, icmpHeadroom, icmpHeadroom+len(e)), e...))
					}
				}
				continue
			}
			putOuter(bufs[i][:off], pkt, t.local, under)
			copy(addrs[m].IP, under.AsSlice())
			msgs[m] = ipv4.Message{Buffers: [][]byte{bufs[i][:off+len(pkt)]}, Addr: &addrs[m]}
			m++
		}
		t.send(msgs[:m])
		if len(icmps) > 0 {
			_ = t.writeTUN(icmps, icmpHeadroom)
		}
	}
}

// icmpHeadroom is the room before an ICMP error the tunnel writes to the
// TUN device, for the virtio header.
const icmpHeadroom = 16

// send writes a batch to the raw socket, skipping over a message the
// kernel refuses so the rest still go.
func (t *tunnel) send(msgs []ipv4.Message) {
	for len(msgs) > 0 {
		k, err := t.pc.WriteBatch(msgs, 0)
		if k > 0 {
			t.stats.tx.Add(uint64(k))
			msgs = msgs[k:]
			continue
		}
		if err == nil {
			return
		}
		if t.closed.Load() {
			return
		}
		t.stats.txErr.Add(1)
		if errors.Is(err, unix.EMSGSIZE) {
			t.stats.txTooBig.Add(1)
		}
		t.log.Debug("send to peer", "peer", msgs[0].Addr, "err", err)
		msgs = msgs[1:]
	}
}

func (t *tunnel) rxLoop() {
	defer t.wg.Done()
	msgs := make([]ipv4.Message, t.batch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 65536)}
	}
	out := make([][]byte, 0, t.batch)
	for {
		n, err := t.pc.ReadBatch(msgs, 0)
		if err != nil {
			if t.closed.Load() {
				return
			}
			t.stats.rxErr.Add(1)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn("raw socket read", "err", err)
			continue
		}
		peers := t.peers.Load()
		out = out[:0]
		for i := range n {
			b := msgs[i].Buffers[0][:msgs[i].N]
			outer, inner, payload, err := decap(b)
			if err != nil {
				t.stats.rxMalformed.Add(1)
				continue
			}
			cidr, ok := peers.byUnderlay[outer.src]
			if !ok {
				t.stats.rxUnknown.Add(1)
				continue
			}
			if !cidr.Contains(inner.src) || !t.podCIDR.Contains(inner.dst) {
				t.stats.rxSpoofed.Add(1)
				continue
			}
			// Every packet handed to the device starts at the same
			// offset: the inner packet moves up behind a standard-size
			// outer header when options made it longer.
			buf := msgs[i].Buffers[0]
			if outer.hdrLen != ipv4HeaderLen {
				copy(buf[ipv4HeaderLen:], payload)
			}
			out = append(out, buf[:ipv4HeaderLen+len(payload)])
		}
		if len(out) > 0 {
			if err := t.writeTUN(out, ipv4HeaderLen); err != nil {
				if t.closed.Load() {
					return
				}
				t.log.Error("TUN write failed; tunnel stops receiving", "err", err)
				return
			}
			t.stats.rx.Add(uint64(len(out)))
		}
	}
}

// close stops both loops and closes the TUN fd and the socket; the
// persistent device stays.
func (t *tunnel) close() error {
	t.once.Do(func() {
		t.closed.Store(true)
		t.closeErr = errors.Join(t.tun.Close(), t.sock.Close())
		t.wg.Wait()
	})
	return t.closeErr
}
