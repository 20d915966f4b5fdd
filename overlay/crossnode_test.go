package overlay_test

import (
	"bytes"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/barge-dev/barge/overlay"
	"github.com/barge-dev/barge/overlay/ipip"
	"github.com/barge-dev/barge/overlay/netnstest"
)

func TestPodToPodAcrossNodes(t *testing.T) {
	for _, mode := range testModes(t) {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, mode, 3)
			wantMTU := 1500 - map[string]int{"vxlan": 50, "ipip-userspace": 20, "ipip": 20}[mode]
			for _, nd := range c.nodes {
				if nd.attrs.MTU != wantMTU || nd.pod.MTU != wantMTU {
					t.Fatalf("%s: tunnel MTU %d, pod MTU %d, want %d", nd.name, nd.attrs.MTU, nd.pod.MTU, wantMTU)
				}
				if nd.attrs.Mode != mode {
					t.Fatalf("%s: mode %q, want %q", nd.name, nd.attrs.Mode, mode)
				}
			}
			for _, a := range c.nodes {
				for _, b := range c.nodes {
					if a == b {
						continue
					}
					what := "pod on " + a.name + " → pod on " + b.name
					c.mustTCP(what+" (TCP)", a.podNS, b.podEcho.Addr, a.pod.IP.Addr())
					reply, err := netnstest.UDPExchange(a.podNS, b.podEcho.Addr, []byte("whoami"))
					if err != nil {
						t.Fatalf("%s (UDP): %v", what, err)
					}
					if got := netip.MustParseAddrPort(string(reply)).Addr(); got != a.pod.IP.Addr() {
						t.Fatalf("%s (UDP): seen from %v, want %v", what, got, a.pod.IP.Addr())
					}
					// A datagram filling the pod MTU exactly, DF set, both
					// ways (the echo comes back just as large).
					full := bytes.Repeat([]byte{0xa5}, wantMTU-28)
					reply, err = netnstest.UDPExchange(a.podNS, b.podEcho.Addr, full)
					if err != nil {
						t.Fatalf("%s: %d-byte packet with DF: %v", what, wantMTU, err)
					}
					if !bytes.Equal(reply, full) {
						t.Fatalf("%s: full-MTU echo differs (%d bytes back)", what, len(reply))
					}
				}
			}
			if mode == "ipip-userspace" {
				// The traffic went through the userspace tunnel, not
				// around it.
				for _, nd := range c.nodes {
					var st ipip.Stats
					nd.agent.MustCall("stats", nil, &st)
					if st.TxPackets == 0 || st.RxPackets == 0 || st.RxUnknownPeer+st.RxSpoofed+st.RxMalformed != 0 {
						t.Fatalf("%s: tunnel stats %+v", nd.name, st)
					}
				}
			}
			// One byte more than the MTU with DF is refused at the pod,
			// not lost silently on the way.
			_, err := netnstest.UDPExchange(c.nodes[0].podNS, c.nodes[1].podEcho.Addr, make([]byte, wantMTU-27))
			if !errors.Is(err, syscall.EMSGSIZE) {
				t.Fatalf("oversized DF datagram: got %v, want EMSGSIZE", err)
			}
		})
	}
}

func TestNodesAndRemotePods(t *testing.T) {
	for _, mode := range testModes(t) {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, mode, 3)
			n1, n2 := c.nodes[0], c.nodes[1]
			// The node reaches a remote pod from its tunnel address, which
			// the remote routes back through the overlay.
			c.mustTCP("node h1 → pod on h2", n1.host.Netns, n2.podEcho.Addr, overlay.TunnelAddr(n1.local.PodCIDR))
			// A pod reaches the remote node's pod-network address across
			// the overlay...
			gwEcho := netnstest.ServeEcho(t, n2.host.Netns, netip.AddrPortFrom(overlay.Gateway(n2.local.PodCIDR), 7001))
			c.mustTCP("pod on h1 → node h2's gateway", n1.podNS, gwEcho.Addr, n1.pod.IP.Addr())
			if _, err := netnstest.UDPExchange(n1.podNS, gwEcho.Addr, make([]byte, n1.attrs.MTU-28)); err != nil {
				t.Fatalf("pod on h1 → node h2's gateway, full MTU: %v", err)
			}
			// ...and its underlay address directly, masqueraded since the
			// underlay is outside the pod network.
			underEcho := netnstest.ServeEcho(t, n2.host.Netns, netip.AddrPortFrom(n2.host.Addr, 7002))
			c.mustTCP("pod on h1 → node h2's underlay address", n1.podNS, underEcho.Addr, n1.host.Addr)
		})
	}
}

func TestEgressMasquerade(t *testing.T) {
	for _, mode := range testModes(t) {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, mode, 2)
			n1, n2 := c.nodes[0], c.nodes[1]
			outEcho := netnstest.ServeEcho(t, c.out.Netns, netip.AddrPortFrom(c.out.Addr, 7003))
			c.mustTCP("pod on h1 → outside host", n1.podNS, outEcho.Addr, n1.host.Addr)
			reply, err := netnstest.UDPExchange(n1.podNS, outEcho.Addr, []byte("whoami"))
			if err != nil {
				t.Fatalf("pod on h1 → outside host (UDP): %v", err)
			}
			if got := netip.MustParseAddrPort(string(reply)).Addr(); got != n1.host.Addr {
				t.Fatalf("outside host saw UDP from %v, want the node's %v", got, n1.host.Addr)
			}
			// Pod to pod across nodes is not masqueraded.
			c.mustTCP("pod on h1 → pod on h2", n1.podNS, n2.podEcho.Addr, n1.pod.IP.Addr())
		})
	}
}
