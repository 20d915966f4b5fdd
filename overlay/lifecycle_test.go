package overlay_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/barge-dev/barge/overlay"
	"github.com/barge-dev/barge/overlay/ipip"
	"github.com/barge-dev/barge/overlay/netnstest"
	"github.com/barge-dev/barge/overlay/podnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// entries is what a node's overlay device holds, read independently of
// the code under test.
type entries struct {
	ifindex int
	routes  map[netip.Prefix]netip.Addr // dst → gateway (invalid if none)
	neighs  map[netip.Addr]string       // IP → MAC
	fdb     map[string]netip.Addr       // MAC → underlay IP
}

func readEntries(t *testing.T, nd *node) entries {
	t.Helper()
	h := netnstest.Handle(t, nd.host.Netns)
	l, err := h.LinkByName(nd.attrs.Device)
	if err != nil {
		t.Fatalf("%s: %v", nd.name, err)
	}
	e := entries{ifindex: l.Attrs().Index, routes: map[netip.Prefix]netip.Addr{}, neighs: map[netip.Addr]string{}, fdb: map[string]netip.Addr{}}
	routes, err := h.RouteList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		gw, _ := netip.AddrFromSlice(r.Gw)
		e.routes[overlay.IPNetPrefix(r.Dst)] = gw.Unmap()
	}
	if nd.attrs.Mode != "vxlan" {
		return e
	}
	neighs, err := h.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighs {
		ip, _ := netip.AddrFromSlice(n.IP)
		e.neighs[ip.Unmap()] = n.HardwareAddr.String()
	}
	fdb, err := h.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range fdb {
		ip, _ := netip.AddrFromSlice(n.IP)
		e.fdb[n.HardwareAddr.String()] = ip.Unmap()
	}
	return e
}

// wantEntries checks that nd's device holds exactly the entries for
// peers.
func (c *cluster) wantEntries(nd *node, peers []overlay.Peer) entries {
	c.t.Helper()
	e := readEntries(c.t, nd)
	if len(e.routes) != len(peers) {
		c.t.Fatalf("%s: routes %v, want one per peer of %d", nd.name, e.routes, len(peers))
	}
	for _, p := range peers {
		gw, ok := e.routes[p.PodCIDR]
		if !ok {
			c.t.Fatalf("%s: no route to %s's %v: %v", nd.name, p.Name, p.PodCIDR, e.routes)
		}
		switch nd.attrs.Mode {
		case "vxlan":
			tun := overlay.TunnelAddr(p.PodCIDR)
			if gw != tun || e.neighs[tun] != p.VTEPMAC.String() || e.fdb[p.VTEPMAC.String()] != p.UnderlayIP {
				c.t.Fatalf("%s: entries for %s wrong: route via %v, neighbours %v, fdb %v", nd.name, p.Name, gw, e.neighs, e.fdb)
			}
		case "ipip-userspace":
			if gw.IsValid() {
				c.t.Fatalf("%s: TUN route to %v has gateway %v", nd.name, p.PodCIDR, gw)
			}
		case "ipip":
			if gw != p.UnderlayIP {
				c.t.Fatalf("%s: ipip route to %v via %v, want %s's underlay address %v", nd.name, p.PodCIDR, gw, p.Name, p.UnderlayIP)
			}
		}
	}
	if nd.attrs.Mode == "vxlan" && (len(e.neighs) != len(peers) || len(e.fdb) != len(peers)) {
		c.t.Fatalf("%s: stray entries: neighbours %v, fdb %v", nd.name, e.neighs, e.fdb)
	}
	return e
}

func TestPeerRemoved(t *testing.T) {
	for _, mode := range testModes(t) {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, mode, 3)
			n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
			c.wantEntries(n1, c.peers(n1))
			c.mustTCP("before: pod on h1 → pod on h3", n1.podNS, n3.podEcho.Addr, n1.pod.IP.Addr())

			// h3 leaves: gossip drops it from everyone's peer set.
			n1.agent.MustCall("peers", c.peers(n1, "h3"), nil)
			n2.agent.MustCall("peers", c.peers(n2, "h3"), nil)
			c.wantEntries(n1, c.peers(n1, "h3"))
			c.wantEntries(n2, c.peers(n2, "h3"))
			_, err := netnstest.TCPExchange(n1.podNS, n3.podEcho.Addr, []byte("x"))
			if !netnstest.IsUnreachable(err) {
				t.Fatalf("pod on h1 → pod on departed h3: got %v, want unreachable", err)
			}
			c.mustTCP("pod on h1 → pod on h2 while h3 is gone", n1.podNS, n2.podEcho.Addr, n1.pod.IP.Addr())
			if mode == "ipip-userspace" {
				// h3 still routes to h1, but h1 no longer accepts it.
				var before ipip.Stats
				n1.agent.MustCall("stats", nil, &before)
				if err := netnstest.UDPSend(n3.podNS, n1.podEcho.Addr, []byte("x")); err != nil {
					t.Fatal(err)
				}
				waitStats(t, n1, "a drop of h3's packet", func(s ipip.Stats) bool { return s.RxUnknownPeer > before.RxUnknownPeer })
			}

			// h3 comes back.
			c.syncPeers()
			c.wantEntries(n1, c.peers(n1))
			c.mustTCP("after return: pod on h1 → pod on h3", n1.podNS, n3.podEcho.Addr, n1.pod.IP.Addr())
		})
	}
}

func TestRestartRepairs(t *testing.T) {
	for _, mode := range testModes(t) {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, mode, 3)
			n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
			before := c.wantEntries(n1, c.peers(n1))
			attrs := n1.attrs

			n1.agent.Kill()
			if mode != "ipip-userspace" {
				// The kernel data plane carries on without its agent.
				c.mustTCP("pod on h1 → pod on h2, agent down", n1.podNS, n2.podEcho.Addr, n1.pod.IP.Addr())
			}
			// What a crash, or an operator, may leave behind: a stray
			// route (and for VXLAN a stray neighbour and FDB entry), and a
			// peer's route missing.
			h := netnstest.Handle(t, n1.host.Netns)
			dev, err := h.LinkByName(attrs.Device)
			if err != nil {
				t.Fatal(err)
			}
			stray := netip.MustParsePrefix("10.244.99.0/24")
			strayMAC, _ := net.ParseMAC("02:00:00:00:99:99")
			r := &netlink.Route{LinkIndex: dev.Attrs().Index, Dst: overlay.PrefixIPNet(stray), Scope: netlink.SCOPE_LINK}
			if mode == "vxlan" {
				r = &netlink.Route{LinkIndex: dev.Attrs().Index, Dst: overlay.PrefixIPNet(stray), Gw: net.ParseIP("10.244.99.0"), Flags: int(netlink.FLAG_ONLINK)}
				if err := h.NeighSet(&netlink.Neigh{LinkIndex: dev.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT, IP: net.ParseIP("10.244.99.0"), HardwareAddr: strayMAC}); err != nil {
					t.Fatal(err)
				}
				if err := h.NeighSet(&netlink.Neigh{LinkIndex: dev.Attrs().Index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT, IP: net.ParseIP("198.18.255.250"), HardwareAddr: strayMAC}); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.RouteAdd(r); err != nil {
				t.Fatal(err)
			}
			routes, err := h.RouteList(dev, netlink.FAMILY_V4)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range routes {
				if overlay.IPNetPrefix(r.Dst) == n2.local.PodCIDR {
					if err := h.RouteDel(&r); err != nil {
						t.Fatal(err)
					}
				}
			}

			c.startAgent(n1)
			n1.agent.MustCall("peers", c.peers(n1), nil)
			after := c.wantEntries(n1, c.peers(n1))
			if after.ifindex != before.ifindex {
				t.Fatalf("the device was recreated (ifindex %d → %d) though its attributes were right", before.ifindex, after.ifindex)
			}
			if n1.attrs.MTU != attrs.MTU || n1.attrs.VTEPMAC.String() != attrs.VTEPMAC.String() {
				t.Fatalf("restart changed the attributes gossip carries: %+v → %+v", attrs, n1.attrs)
			}
			// The restarted agent knows its pod, and re-attaching it is a
			// no-op.
			var again podnet.PodNetwork
			n1.agent.MustCall("attach", attachArg{Pod: podnet.PodRef{ID: "uid-h1", Namespace: "default", Name: "pod-h1"}, Netns: n1.podNS}, &again)
			if again != n1.pod {
				t.Fatalf("re-attach after restart: %+v, want %+v", again, n1.pod)
			}
			for _, o := range []*node{n2, n3} {
				c.mustTCP("after restart: pod on h1 → pod on "+o.name, n1.podNS, o.podEcho.Addr, n1.pod.IP.Addr())
				c.mustTCP("after restart: pod on "+o.name+" → pod on h1", o.podNS, n1.podEcho.Addr, o.pod.IP.Addr())
			}
			// Egress rules were rewritten, not added to.
			if rules := nftRules(t, n1.host.Netns); strings.Count(rules, "masquerade fully-random") != 2 {
				t.Fatalf("after restart the egress table holds:\n%s", rules)
			}

			// A device whose attributes are wrong is replaced.
			n1.agent.Kill()
			if err := h.LinkSetMTU(dev, 1300); err != nil {
				t.Fatal(err)
			}
			c.startAgent(n1)
			n1.agent.MustCall("peers", c.peers(n1), nil)
			if mode == "vxlan" {
				if e := c.wantEntries(n1, c.peers(n1)); e.ifindex == before.ifindex {
					t.Fatal("a VXLAN device with the wrong MTU was kept")
				}
			}
			l, err := h.LinkByName(attrs.Device)
			if err != nil {
				t.Fatal(err)
			}
			if l.Attrs().MTU != attrs.MTU {
				t.Fatalf("device MTU %d after repair, want %d", l.Attrs().MTU, attrs.MTU)
			}
			c.mustTCP("after repair: pod on h1 → pod on h2", n1.podNS, n2.podEcho.Addr, n1.pod.IP.Addr())
			if _, err := netnstest.UDPExchange(n2.podNS, n1.podEcho.Addr, bytes.Repeat([]byte{1}, attrs.MTU-28)); err != nil {
				t.Fatalf("after repair: full-MTU datagram pod on h2 → pod on h1: %v", err)
			}
		})
	}
}

// nftRules lists the egress table inside a namespace with the nft
// command.
func nftRules(t *testing.T, ns string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.CommandContext(context.Background(), "nft", "list", "table", "ip", "barge-overlay")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := netnstest.StartIn(ns, cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("nft list table: %v: %s", err, out.String())
	}
	return out.String()
}

// waitStats waits until nd's tunnel counters satisfy ok. Counters have no
// event to wait on, so they are polled; the bound is a guard against a
// hang, not a measurement.
func waitStats(t *testing.T, nd *node, what string, ok func(ipip.Stats) bool) ipip.Stats {
	t.Helper()
	deadline := time.Now().Add(netnstest.IOTimeout)
	for {
		var s ipip.Stats
		nd.agent.MustCall("stats", nil, &s)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: waited %v for %s; counters %+v", nd.name, netnstest.IOTimeout, what, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
