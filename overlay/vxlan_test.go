package overlay_test

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/barge-dev/barge/overlay"
	"github.com/barge-dev/barge/overlay/netnstest"
	"github.com/barge-dev/barge/overlay/vxlan"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestVXLANDevice checks the device flannel's model asks for, read back
// from the kernel: VNI, port, learning off, MTU, the stable VTEP MAC,
// and tx checksum offload as the kernel's version asks (off before 5.7).
func TestVXLANDevice(t *testing.T) {
	c := newCluster(t, "vxlan", 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	h := netnstest.Handle(t, n1.host.Netns)
	l, err := h.LinkByName(vxlan.DefaultDevice)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := l.(*netlink.Vxlan)
	if !ok {
		t.Fatalf("%s is a %s", vxlan.DefaultDevice, l.Type())
	}
	if v.VxlanId != vxlan.DefaultVNI || v.Port != vxlan.DefaultPort || v.Learning || v.Attrs().MTU != 1450 ||
		!v.SrcAddr.Equal(n1.host.Addr.AsSlice()) {
		t.Fatalf("device: VNI %d port %d learning %v MTU %d local %v", v.VxlanId, v.Port, v.Learning, v.Attrs().MTU, v.SrcAddr)
	}
	if v.Attrs().HardwareAddr.String() != vxlan.VTEPMAC("h1").String() || n1.attrs.VTEPMAC.String() != vxlan.VTEPMAC("h1").String() {
		t.Fatalf("VTEP MAC %v, reported %v, want %v", v.Attrs().HardwareAddr, n1.attrs.VTEPMAC, vxlan.VTEPMAC("h1"))
	}
	addrs, _ := h.AddrList(l, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.244.1.0/32" {
		t.Fatalf("device addresses %v, want 10.244.1.0/32", addrs)
	}
	var on bool
	if err := netnstest.Do(n1.host.Netns, func() error {
		var err error
		on, err = vxlan.TxChecksum(vxlan.DefaultDevice)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if want := kernelAtLeast(t, 5, 7); on != want {
		t.Fatalf("tx checksum offload %v on kernel %s, want %v", on, kernelRelease(t), want)
	}

	// A bad peer record is left out and named; the good ones still work.
	bad := []overlay.Peer{
		{Name: "h2", UnderlayIP: n2.host.Addr, PodCIDR: n2.local.PodCIDR, VTEPMAC: n2.attrs.VTEPMAC},
		{Name: "overlapping", UnderlayIP: netip.MustParseAddr("198.18.255.1"), PodCIDR: netip.MustParsePrefix("10.244.2.128/25"), VTEPMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}},
		{Name: "no-mac", UnderlayIP: netip.MustParseAddr("198.18.255.2"), PodCIDR: netip.MustParsePrefix("10.244.9.0/24")},
	}
	err = n1.agent.Call("peers", bad, nil)
	if err == nil || !strings.Contains(err.Error(), "overlapping") || !strings.Contains(err.Error(), "no-mac") {
		t.Fatalf("bad peers: got %v, want an error naming both bad peers", err)
	}
	c.wantEntries(n1, c.peers(n1))
	c.mustTCP("pod on h1 → pod on h2 beside bad peers", n1.podNS, n2.podEcho.Addr, n1.pod.IP.Addr())
}

func TestVTEPMACStable(t *testing.T) {
	a, b := vxlan.VTEPMAC("node-1"), vxlan.VTEPMAC("node-1")
	if a.String() != b.String() {
		t.Fatal("VTEP MAC differs between calls")
	}
	if a[0]&1 != 0 || a[0]&2 == 0 {
		t.Fatalf("VTEP MAC %v is not locally administered unicast", a)
	}
	if vxlan.VTEPMAC("node-2").String() == a.String() {
		t.Fatal("two nodes share a VTEP MAC")
	}
}

// TestVXLANChecksumOffloadOff turns the offload off as flannel does, and
// checks the device says so and still carries full-size packets.
func TestVXLANChecksumOffloadOff(t *testing.T) {
	c := newCluster(t, "vxlan-txcsum-off", 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	var on bool
	if err := netnstest.Do(n1.host.Netns, func() error {
		var err error
		on, err = vxlan.TxChecksum(vxlan.DefaultDevice)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if on {
		t.Fatal("tx checksum offload is on though the configuration turned it off")
	}
	c.mustTCP("pod on h1 → pod on h2, offload off", n1.podNS, n2.podEcho.Addr, n1.pod.IP.Addr())
	if _, err := netnstest.UDPExchange(n1.podNS, n2.podEcho.Addr, make([]byte, n1.attrs.MTU-28)); err != nil {
		t.Fatalf("full-MTU datagram, offload off: %v", err)
	}
}

func kernelRelease(t *testing.T) string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(u.Release[:])
}

func kernelAtLeast(t *testing.T, major, minor int) bool {
	var a, b int
	if _, err := fmt.Sscanf(kernelRelease(t), "%d.%d", &a, &b); err != nil {
		t.Fatalf("kernel release %q: %v", kernelRelease(t), err)
	}
	return a > major || a == major && b >= minor
}
