package agent

import (
	"net"
	"net/netip"
	"reflect"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/overlay"
)

func TestOverlayPeers(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	agentMember := func(name, ip, cidr string, mode gossip.OverlayMode, st gossip.State) gossip.Member {
		m := gossip.Member{Name: name, State: st, Meta: gossip.Meta{Role: gossip.RoleAgent, UnderlayIP: netip.MustParseAddr(ip), Overlay: mode}}
		if cidr != "" {
			m.Meta.PodCIDR = netip.MustParsePrefix(cidr)
		}
		if mode == gossip.OverlayVXLAN {
			m.Meta.VTEPMAC = mac
		}
		return m
	}
	peer := func(name, ip, cidr string, withMAC bool) overlay.Peer {
		p := overlay.Peer{Name: name, UnderlayIP: netip.MustParseAddr(ip), PodCIDR: netip.MustParsePrefix(cidr)}
		if withMAC {
			p.VTEPMAC = mac
		}
		return p
	}
	server := gossip.Member{Name: "s1", State: gossip.StateAlive, Meta: gossip.Meta{Role: gossip.RoleServer, UnderlayIP: netip.MustParseAddr("10.0.0.1")}}
	tests := []struct {
		name        string
		mode        gossip.OverlayMode
		members     []gossip.Member
		want        []overlay.Peer
		wantSkipped int
	}{
		{
			name: "other agents of the mode, servers and self left out",
			mode: gossip.OverlayVXLAN,
			members: []gossip.Member{
				server,
				agentMember("n1", "10.0.0.11", "10.244.1.0/24", gossip.OverlayVXLAN, gossip.StateAlive),
				agentMember("n2", "10.0.0.12", "10.244.2.0/24", gossip.OverlayVXLAN, gossip.StateAlive),
			},
			want: []overlay.Peer{peer("n2", "10.0.0.12", "10.244.2.0/24", true)},
		},
		{
			name: "suspect and dead kept (a restarting agent), left dropped",
			mode: gossip.OverlayIPIP,
			members: []gossip.Member{
				agentMember("n2", "10.0.0.12", "10.244.2.0/24", gossip.OverlayIPIP, gossip.StateSuspect),
				agentMember("n3", "10.0.0.13", "10.244.3.0/24", gossip.OverlayIPIP, gossip.StateDead),
				agentMember("n4", "10.0.0.14", "10.244.4.0/24", gossip.OverlayIPIP, gossip.StateLeft),
			},
			want: []overlay.Peer{peer("n2", "10.0.0.12", "10.244.2.0/24", false), peer("n3", "10.0.0.13", "10.244.3.0/24", false)},
		},
		{
			name: "another mode is skipped and said; no overlay yet is not",
			mode: gossip.OverlayVXLAN,
			members: []gossip.Member{
				agentMember("n2", "10.0.0.12", "10.244.2.0/24", gossip.OverlayIPIP, gossip.StateAlive),
				agentMember("n3", "10.0.0.13", "", gossip.OverlayNone, gossip.StateAlive),
			},
			wantSkipped: 1,
		},
		{
			name:        "unreadable metadata is skipped and said",
			mode:        gossip.OverlayVXLAN,
			members:     []gossip.Member{{Name: "n2", State: gossip.StateAlive, MetaErr: "gossip metadata is empty"}},
			wantSkipped: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, skipped := overlayPeers("n1", tc.mode, tc.members)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("peers = %+v, want %+v", got, tc.want)
			}
			if len(skipped) != tc.wantSkipped {
				t.Errorf("skipped = %q, want %d", skipped, tc.wantSkipped)
			}
		})
	}
}

func TestNetworkConfig(t *testing.T) {
	base := func() Config {
		return Config{NodeName: "n1", NodeIP: "10.0.0.11"}
	}
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"gossip with keyring", func(c *Config) { c.Gossip = &Gossip{KeyringFile: "k.json"} }, true},
		{"gossip without keyring", func(c *Config) { c.Gossip = &Gossip{} }, false},
		{"overlay without gossip", func(c *Config) { c.Overlay = &Overlay{Mode: gossip.OverlayVXLAN} }, false},
		{"overlay of unknown mode", func(c *Config) {
			c.Gossip = &Gossip{KeyringFile: "k.json"}
			c.Overlay = &Overlay{Mode: "geneve"}
		}, false},
		{"services in a host netns", func(c *Config) {
			c.Services = &Services{}
			c.Runtime.HostNetns = "/run/netns/x"
		}, false},
		{"everything", func(c *Config) {
			c.Gossip = &Gossip{KeyringFile: "k.json"}
			c.Overlay = &Overlay{Mode: gossip.OverlayIPIP}
			c.Services = &Services{}
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			c.Client = &rest.Config{Host: "https://127.0.0.1:6443"}
			err := c.complete()
			if (err == nil) != tc.ok {
				t.Fatalf("complete() = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && c.Gossip != nil && (c.Gossip.BindAddr != "10.0.0.11" || c.Gossip.Port != gossip.DefaultPort) {
				t.Errorf("gossip defaults: %+v", c.Gossip)
			}
		})
	}
}
