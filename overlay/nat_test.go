package overlay_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"testing"

	"github.com/barge-dev/barge/overlay"
	"github.com/barge-dev/barge/overlay/netnstest"
	"github.com/vishvananda/netlink"
)

// TestNATedTrafficAcrossNodes sends traffic that is NATed before it
// enters the overlay, as Service traffic is: a virtual IP on h1 is
// DNATed to the pod on h2 and masqueraded with random-fully. That is the
// combination that broke VXLAN tx checksum offload on old kernels (and
// for the userspace tunnel it exercises checksums of NATed super-packets
// split in userspace): a wrong checksum would stall TCP and drop the
// datagrams.
func TestNATedTrafficAcrossNodes(t *testing.T) {
	for _, mode := range testModes(t) {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, mode, 2)
			n1, n2 := c.nodes[0], c.nodes[1]
			vip := netip.MustParseAddrPort("10.96.0.10:80")
			rules := fmt.Sprintf(`add table ip barge-test-nat
add chain ip barge-test-nat pre { type nat hook prerouting priority -100; }
add chain ip barge-test-nat out { type nat hook output priority -100; }
add chain ip barge-test-nat post { type nat hook postrouting priority 100; }
add rule ip barge-test-nat pre ip daddr %[1]s meta l4proto { tcp, udp } th dport %[2]d dnat to %[3]s
add rule ip barge-test-nat out ip daddr %[1]s meta l4proto { tcp, udp } th dport %[2]d dnat to %[3]s
add rule ip barge-test-nat post ip daddr %[4]s masquerade fully-random
`, vip.Addr(), vip.Port(), n2.podEcho.Addr, n2.podEcho.Addr.Addr())
			nft(t, n1.host.Netns, rules)
			// The node's own connections look a route up before NAT
			// (nodes have a default route; test hosts do not), so the VIP
			// gets one; forwarded pod traffic is DNATed before routing.
			h := netnstest.Handle(t, n1.host.Netns)
			if err := addVIPRoute(h, vip.Addr()); err != nil {
				t.Fatal(err)
			}
			masq := overlay.TunnelAddr(n1.local.PodCIDR)
			c.mustTCP("pod on h1 → VIP → pod on h2", n1.podNS, vip, masq)
			c.mustTCP("node h1 → VIP → pod on h2", n1.host.Netns, vip, masq)
			full := bytes.Repeat([]byte{0x5a}, n1.attrs.MTU-28)
			reply, err := netnstest.UDPExchange(n1.podNS, vip, full)
			if err != nil || !bytes.Equal(reply, full) {
				t.Fatalf("full-MTU datagram pod on h1 → VIP → pod on h2: %d bytes back, %v", len(reply), err)
			}
		})
	}
}

func nft(t *testing.T, ns, script string) {
	t.Helper()
	if script == "" {
		return
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(context.Background(), "nft", "-f", "-")
	cmd.Stdin = bytes.NewBufferString(script)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := netnstest.StartIn(ns, cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("nft: %v: %s", err, out.String())
	}
}

// addVIPRoute routes the virtual IP out of the underlay interface, as a
// node's default route would.
func addVIPRoute(h *netlink.Handle, vip netip.Addr) error {
	eth, err := h.LinkByName("eth0")
	if err != nil {
		return err
	}
	return h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: overlay.PrefixIPNet(netip.PrefixFrom(vip, 32)), Scope: netlink.SCOPE_LINK})
}

// TestNodePortToRemotePod DNATs a port of h1's underlay address to the
// pod on h2, as a NodePort does, and connects from a host outside the
// overlay: the egress table must give the forwarded connection h1's
// tunnel address (the client's own address would be routed back outside
// the overlay, and the IPIP tunnel drops sources outside h1's pod CIDR).
func TestNodePortToRemotePod(t *testing.T) {
	for _, mode := range testModes(t) {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, mode, 2)
			n1, n2 := c.nodes[0], c.nodes[1]
			nodePort := netip.AddrPortFrom(n1.host.Addr, 30080)
			nft(t, n1.host.Netns, fmt.Sprintf(`add table ip barge-test-nodeport
add chain ip barge-test-nodeport pre { type nat hook prerouting priority -100; }
add rule ip barge-test-nodeport pre ip daddr %s meta l4proto { tcp, udp } th dport %d dnat to %s
`, nodePort.Addr(), nodePort.Port(), n2.podEcho.Addr))
			c.mustTCP("outside host → NodePort on h1 → pod on h2", c.out.Netns, nodePort, overlay.TunnelAddr(n1.local.PodCIDR))
			reply, err := netnstest.UDPExchange(c.out.Netns, nodePort, []byte("whoami"))
			if err != nil {
				t.Fatalf("outside host → NodePort on h1 → pod on h2 (UDP): %v", err)
			}
			if got := netip.MustParseAddrPort(string(reply)).Addr(); got != overlay.TunnelAddr(n1.local.PodCIDR) {
				t.Fatalf("pod on h2 saw UDP from %v, want h1's tunnel address", got)
			}
		})
	}
}
