package overlay_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/barge-dev/barge/overlay/ipip"
	"github.com/barge-dev/barge/overlay/netnstest"
	"github.com/barge-dev/barge/overlay/podnet"
)

// TestOversizedGetsFragNeeded misconfigures a pod with an MTU larger than
// the tunnel's (as a pod that raised its own MTU would be): its full-size
// datagrams with DF set must come back as ICMP fragmentation-needed, so
// the sender learns the path MTU and the next datagram of the tunnel's
// size goes through, never a silent loss. For the userspace tunnel it
// also raises the TUN device's MTU, so the tunnel itself meets the
// oversized packet and must answer with the ICMP error.
func TestOversizedGetsFragNeeded(t *testing.T) {
	for _, tc := range []struct{ mode, name string }{
		{"vxlan", "vxlan"},
		{"ipip-userspace", "ipip-userspace/kernel-answers"},
		{"ipip-userspace", "ipip-userspace/tunnel-answers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, tc.mode, 2)
			n1, n2 := c.nodes[0], c.nodes[1]
			tunnelMTU := n1.attrs.MTU
			setMTU := func(ns, link string, mtu int) {
				t.Helper()
				h := netnstest.Handle(t, ns)
				l, err := h.LinkByName(link)
				if err != nil {
					t.Fatal(err)
				}
				if err := h.LinkSetMTU(l, mtu); err != nil {
					t.Fatal(err)
				}
			}
			setMTU(n1.podNS, "eth0", 1500)
			setMTU(n1.host.Netns, n1.pod.HostInterface, 1500)
			setMTU(n1.host.Netns, podnet.DefaultBridge, 1500)
			if tc.name == "ipip-userspace/tunnel-answers" {
				setMTU(n1.host.Netns, n1.attrs.Device, 1500)
			}
			_, err := netnstest.UDPExchange(n1.podNS, n2.podEcho.Addr, make([]byte, 1500-28))
			if !errors.Is(err, syscall.EMSGSIZE) {
				t.Fatalf("1500-byte DF datagram into a %d-byte tunnel: got %v, want EMSGSIZE from an ICMP fragmentation-needed", tunnelMTU, err)
			}
			if _, err := netnstest.UDPExchange(n1.podNS, n2.podEcho.Addr, make([]byte, tunnelMTU-28)); err != nil {
				t.Fatalf("a datagram of the tunnel's MTU after the error: %v", err)
			}
			if tc.name == "ipip-userspace/tunnel-answers" {
				var st ipip.Stats
				n1.agent.MustCall("stats", nil, &st)
				if st.TxTooBig == 0 {
					t.Fatalf("the tunnel saw no oversized packet: %+v", st)
				}
			}
		})
	}
}
