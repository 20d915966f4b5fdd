package overlay_test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/barge-dev/barge/overlay"
	"github.com/barge-dev/barge/overlay/ipip"
	"github.com/barge-dev/barge/overlay/netnstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestIPIPUnknownPeerDropped sends hand-made IPIP packets to h1 from a
// host on the underlay that is no peer, and from that host pretending to
// be peer h2 but carrying an inner source of h3's pod CIDR: the userspace
// tunnel drops both, and the pod never sees them.
func TestIPIPUnknownPeerDropped(t *testing.T) {
	c := newCluster(t, "ipip-userspace", 3)
	n1, n2 := c.nodes[0], c.nodes[1]
	rogue := c.net.AddHost("rogue")

	var sink net.PacketConn
	err := netnstest.Do(n1.podNS, func() error {
		var err error
		sink, err = net.ListenPacket("udp4", netip.AddrPortFrom(n1.pod.IP.Addr(), 7100).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	dst := netip.AddrPortFrom(n1.pod.IP.Addr(), 7100)

	var before ipip.Stats
	n1.agent.MustCall("stats", nil, &before)
	// From an address that is no peer's, inner source in h2's range.
	sendIPIP(t, rogue.Netns, rogue.Addr, n1.host.Addr, netip.MustParseAddr("10.244.2.77"), dst, []byte("rogue"))
	// Claiming to be h2, with an inner source that is h3's.
	sendIPIP(t, rogue.Netns, n2.host.Addr, n1.host.Addr, netip.MustParseAddr("10.244.3.77"), dst, []byte("spoofed"))
	waitStats(t, n1, "both drops", func(s ipip.Stats) bool {
		return s.RxUnknownPeer > before.RxUnknownPeer && s.RxSpoofed > before.RxSpoofed
	})
	// Both were dropped before this legitimate datagram left h2, so it
	// is the first the pod reads.
	if err := netnstest.UDPSend(n2.podNS, dst, []byte("legit")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	_ = sink.SetReadDeadline(time.Now().Add(netnstest.IOTimeout))
	n, from, err := sink.ReadFrom(buf)
	if err != nil {
		t.Fatalf("pod on h1 got nothing from pod on h2: %v", err)
	}
	if string(buf[:n]) != "legit" || from.(*net.UDPAddr).IP.String() != n2.pod.IP.Addr().String() {
		t.Fatalf("pod on h1 first read %q from %v, want \"legit\" from %v", buf[:n], from, n2.pod.IP)
	}
}

// sendIPIP writes one RFC 2003 packet by hand, outer and inner headers
// both, from the namespace at ns: the test is its own judge of the wire
// format rather than reusing the tunnel's encoder.
func sendIPIP(t *testing.T, ns string, outerSrc, outerDst, innerSrc netip.Addr, to netip.AddrPort, payload []byte) {
	t.Helper()
	udp := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:2], 5555)
	binary.BigEndian.PutUint16(udp[2:4], to.Port())
	binary.BigEndian.PutUint16(udp[4:6], uint16(len(udp)))
	copy(udp[8:], payload) // checksum 0: none, allowed over IPv4
	inner := ipv4Header(innerSrc, to.Addr(), 17, len(udp))
	inner = append(inner, udp...)
	outer := ipv4Header(outerSrc, outerDst, 4, len(inner))
	pkt := append(outer, inner...)
	err := netnstest.Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, pkt, 0, &unix.SockaddrInet4{Addr: outerDst.As4()})
	})
	if err != nil {
		t.Fatalf("send hand-made IPIP packet: %v", err)
	}
}

func ipv4Header(src, dst netip.Addr, proto byte, payloadLen int) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:4], uint16(20+payloadLen))
	h[8] = 64
	h[9] = proto
	s, d := src.As4(), dst.As4()
	copy(h[12:16], s[:])
	copy(h[16:20], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i : i+2]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(h[10:12], ^uint16(sum))
	return h
}

// TestIPIPDetection checks the choice between the kernel device and the
// userspace tunnel against what this kernel can do, found out
// independently by trying to make an ipip link.
func TestIPIPDetection(t *testing.T) {
	nt := netnstest.New(t, 1)
	host := nt.Hosts[0]
	h := netnstest.Handle(t, host.Netns)
	probe := &netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: "probe0"}}
	kernelHas := h.LinkAdd(probe) == nil
	if kernelHas {
		_ = h.LinkDel(probe)
	}
	t.Logf("kernel has IPIP: %v", kernelHas)
	local := overlay.LocalNode{Name: "h1", UnderlayIP: host.Addr, PodCIDR: netip.MustParsePrefix("10.244.1.0/24")}
	agent := netnstest.StartHelper(t, "agent", host.Netns)
	state := t.TempDir()

	var attrs overlay.Attrs
	err := agent.Call("setup", setupArg{Mode: "ipip-kernel", Local: local, ClusterCIDR: clusterCIDR, StateDir: state}, &attrs)
	if kernelHas {
		if err != nil || attrs.Mode != "ipip" {
			t.Fatalf("kernel mode on a kernel with IPIP: %+v, %v", attrs, err)
		}
		agent.MustCall("teardown", nil, nil)
	} else if err == nil || !strings.Contains(err.Error(), ipip.ErrNoKernelIPIP.Error()) {
		t.Fatalf("kernel mode on a kernel without IPIP: got %+v, %v; want %q", attrs, err, ipip.ErrNoKernelIPIP)
	}
	agent.Kill()

	agent = netnstest.StartHelper(t, "agent-auto", host.Netns)
	agent.MustCall("setup", setupArg{Mode: "ipip", Local: local, ClusterCIDR: clusterCIDR, StateDir: state}, &attrs)
	want := map[bool]string{true: "ipip", false: "ipip-userspace"}[kernelHas]
	if attrs.Mode != want || attrs.MTU != 1480 || attrs.Device != ipip.DefaultDevice {
		t.Fatalf("auto mode: %+v, want mode %s, MTU 1480", attrs, want)
	}
	l, err := h.LinkByName(ipip.DefaultDevice)
	if err != nil {
		t.Fatal(err)
	}
	if wantType := map[bool]string{true: "ipip", false: "tuntap"}[kernelHas]; l.Type() != wantType || l.Attrs().MTU != 1480 {
		t.Fatalf("device is a %s with MTU %d, want a %s with 1480", l.Type(), l.Attrs().MTU, wantType)
	}
}
