package hostgw_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/barge-dev/barge/overlay"
	"github.com/barge-dev/barge/overlay/hostgw"
	"github.com/barge-dev/barge/overlay/netnstest"
)

// TestRoutes: a host outside the pod network (s1) reaches addresses in
// two nodes' pod CIDRs through routes to their underlay addresses, and a
// sync with one node fewer takes only that node's route away.
func TestRoutes(t *testing.T) {
	netnstest.RequireRoot(t)
	nt := netnstest.New(t, 3)
	s1, n2, n3 := nt.Host("h1"), nt.Host("h2"), nt.Host("h3")
	podAddr := map[string]netip.Addr{"h2": netip.MustParseAddr("10.244.2.1"), "h3": netip.MustParseAddr("10.244.3.1")}
	for _, h := range []*netnstest.Host{n2, n3} {
		// A pod address stands in for the pod: local to the node, so the
		// node answers for it as it would forward to the pod.
		nh := netnstest.Handle(t, h.Netns)
		lo, err := nh.LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		a := podAddr[h.Name]
		if err := nh.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
			t.Fatal(err)
		}
		if err := nh.LinkSetUp(lo); err != nil {
			t.Fatal(err)
		}
		netnstest.ServeEcho(t, h.Netns, netip.AddrPortFrom(a, 7000))
	}
	// Someone else's route, which a sync must leave alone.
	sh := netnstest.Handle(t, s1.Netns)
	eth, err := sh.LinkByName(s1.Link)
	if err != nil {
		t.Fatal(err)
	}
	foreign := &netlink.Route{LinkIndex: eth.Attrs().Index, Dst: overlay.PrefixIPNet(netip.MustParsePrefix("10.99.0.0/24")), Gw: n2.Addr.AsSlice()}
	if err := sh.RouteAdd(foreign); err != nil {
		t.Fatal(err)
	}
	peer := func(h *netnstest.Host, cidr string) overlay.Peer {
		return overlay.Peer{Name: h.Name, UnderlayIP: h.Addr, PodCIDR: netip.MustParsePrefix(cidr)}
	}
	set := func(peers ...overlay.Peer) {
		t.Helper()
		if err := netnstest.Do(s1.Netns, func() error { return hostgw.Set(peers, nil) }); err != nil {
			t.Fatal(err)
		}
	}
	reach := func(h string) error {
		_, err := netnstest.TCPExchange(s1.Netns, netip.AddrPortFrom(podAddr[h], 7000), []byte("ping\n"))
		return err
	}

	set(peer(n2, "10.244.2.0/24"), peer(n3, "10.244.3.0/24"))
	for _, h := range []string{"h2", "h3"} {
		if err := reach(h); err != nil {
			t.Errorf("pod address on %s: %v", h, err)
		}
	}
	// Twice is the same as once.
	set(peer(n2, "10.244.2.0/24"), peer(n3, "10.244.3.0/24"))
	if err := reach("h2"); err != nil {
		t.Errorf("after a second sync: %v", err)
	}
	// n2 leaves: its route goes, n3's and the foreign one stay.
	set(peer(n3, "10.244.3.0/24"))
	if err := reach("h2"); !netnstest.IsUnreachable(err) {
		t.Errorf("pod address on a node that left: err %v, want unreachable", err)
	}
	if err := reach("h3"); err != nil {
		t.Errorf("pod address on h3 after h2 left: %v", err)
	}
	rs, err := sh.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: foreign.Dst}, netlink.RT_FILTER_DST)
	if err != nil || len(rs) != 1 {
		t.Errorf("the foreign route after syncs: %v, %v", rs, err)
	}
	// A CIDR that moved to another node follows it.
	set(peer(n3, "10.244.2.0/24"))
	rs, err = sh.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: hostgw.Protocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil || len(rs) != 1 || !rs[0].Gw.Equal(n3.Addr.AsSlice()) {
		t.Errorf("routes after the CIDR moved: %v, %v; want one via %v", rs, err, n3.Addr)
	}
}
