package overlay_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/barge-dev/barge/overlay"
)

func TestAddressing(t *testing.T) {
	tests := []struct{ cidr, gw, tun string }{
		{"10.244.1.0/24", "10.244.1.1", "10.244.1.0"},
		{"10.244.1.77/24", "10.244.1.1", "10.244.1.0"},
		{"10.244.8.0/22", "10.244.8.1", "10.244.8.0"},
	}
	for _, tt := range tests {
		p := netip.MustParsePrefix(tt.cidr)
		if g := overlay.Gateway(p).String(); g != tt.gw {
			t.Errorf("Gateway(%s) = %s, want %s", tt.cidr, g, tt.gw)
		}
		if a := overlay.TunnelAddr(p).String(); a != tt.tun {
			t.Errorf("TunnelAddr(%s) = %s, want %s", tt.cidr, a, tt.tun)
		}
	}
}

func TestCheckPeers(t *testing.T) {
	local := overlay.LocalNode{Name: "n1", UnderlayIP: netip.MustParseAddr("198.18.0.1"), PodCIDR: netip.MustParsePrefix("10.244.1.0/24")}
	mac := func(b byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, b} }
	good := func(name string, i byte) overlay.Peer {
		return overlay.Peer{Name: name, UnderlayIP: netip.AddrFrom4([4]byte{198, 18, 0, i}), PodCIDR: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, i, 0}), 24), VTEPMAC: mac(i)}
	}
	tests := []struct {
		name    string
		peers   []overlay.Peer
		needMAC bool
		kept    []string
		errs    []string
	}{
		{"all good, sorted", []overlay.Peer{good("n3", 3), good("n2", 2)}, true, []string{"n2", "n3"}, nil},
		{"no name", []overlay.Peer{{UnderlayIP: netip.MustParseAddr("198.18.0.2"), PodCIDR: netip.MustParsePrefix("10.244.2.0/24")}}, false, nil, []string{"no name"}},
		{"local name", []overlay.Peer{func() overlay.Peer { p := good("n1", 2); return p }()}, false, nil, []string{"local node's name"}},
		{"local underlay", []overlay.Peer{func() overlay.Peer { p := good("n2", 2); p.UnderlayIP = local.UnderlayIP; return p }()}, false, nil, []string{"is the local node's"}},
		{"overlaps local", []overlay.Peer{func() overlay.Peer { p := good("n2", 2); p.PodCIDR = netip.MustParsePrefix("10.244.0.0/16"); return p }()}, false, nil, []string{"overlaps the local pod CIDR"}},
		{"IPv6 underlay", []overlay.Peer{func() overlay.Peer { p := good("n2", 2); p.UnderlayIP = netip.MustParseAddr("fd00::1"); return p }()}, false, nil, []string{"not an IPv4 address"}},
		{"tiny CIDR", []overlay.Peer{func() overlay.Peer { p := good("n2", 2); p.PodCIDR = netip.MustParsePrefix("10.244.2.0/31"); return p }()}, false, nil, []string{"/30 or larger"}},
		{"duplicate name keeps first", []overlay.Peer{good("n2", 2), func() overlay.Peer { p := good("n2", 3); return p }()}, false, []string{"n2"}, []string{"appears twice"}},
		{"shared underlay", []overlay.Peer{good("n2", 2), func() overlay.Peer { p := good("n3", 3); p.UnderlayIP = netip.MustParseAddr("198.18.0.2"); return p }()}, false, []string{"n2"}, []string{"is peer n2's already"}},
		{"overlapping peers", []overlay.Peer{good("n2", 2), func() overlay.Peer {
			p := good("n3", 3)
			p.PodCIDR = netip.MustParsePrefix("10.244.2.128/25")
			return p
		}()}, false, []string{"n2"}, []string{"overlaps peer n2's"}},
		{"missing MAC matters only for VXLAN", []overlay.Peer{func() overlay.Peer { p := good("n2", 2); p.VTEPMAC = nil; return p }()}, false, []string{"n2"}, nil},
		{"missing MAC", []overlay.Peer{func() overlay.Peer { p := good("n2", 2); p.VTEPMAC = nil; return p }()}, true, nil, []string{"not a unicast Ethernet address"}},
		{"multicast MAC", []overlay.Peer{func() overlay.Peer { p := good("n2", 2); p.VTEPMAC = net.HardwareAddr{1, 0, 0x5e, 0, 0, 1}; return p }()}, true, nil, []string{"not a unicast"}},
		{"shared MAC", []overlay.Peer{good("n2", 2), func() overlay.Peer { p := good("n3", 3); p.VTEPMAC = mac(2); return p }()}, true, []string{"n2"}, []string{"VTEP MAC"}},
		{"unmasked CIDR is masked", []overlay.Peer{func() overlay.Peer { p := good("n2", 2); p.PodCIDR = netip.MustParsePrefix("10.244.2.9/24"); return p }()}, false, []string{"n2"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept, err := overlay.CheckPeers(local, tt.peers, tt.needMAC)
			var names []string
			for _, p := range kept {
				names = append(names, p.Name)
				if p.PodCIDR != p.PodCIDR.Masked() {
					t.Errorf("kept %s with unmasked %v", p.Name, p.PodCIDR)
				}
			}
			if strings.Join(names, ",") != strings.Join(tt.kept, ",") {
				t.Errorf("kept %v, want %v", names, tt.kept)
			}
			if len(tt.errs) == 0 && err != nil {
				t.Errorf("unexpected error %v", err)
			}
			for _, e := range tt.errs {
				if err == nil || !strings.Contains(err.Error(), e) {
					t.Errorf("error %v, want it to say %q", err, e)
				}
			}
		})
	}
}

func TestValidateLocal(t *testing.T) {
	ok := overlay.LocalNode{Name: "n1", UnderlayIP: netip.MustParseAddr("198.18.0.1"), PodCIDR: netip.MustParsePrefix("10.244.1.0/24")}
	if err := overlay.ValidateLocal(ok); err != nil {
		t.Fatal(err)
	}
	bad := []overlay.LocalNode{
		{UnderlayIP: ok.UnderlayIP, PodCIDR: ok.PodCIDR},
		{Name: "n1", PodCIDR: ok.PodCIDR},
		{Name: "n1", UnderlayIP: ok.UnderlayIP},
		{Name: "n1", UnderlayIP: ok.UnderlayIP, PodCIDR: netip.MustParsePrefix("10.244.1.0/31")},
	}
	for _, l := range bad {
		if err := overlay.ValidateLocal(l); err == nil {
			t.Errorf("ValidateLocal(%+v) accepted", l)
		}
	}
}
