package overlay_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/barge-dev/barge/overlay"
	"github.com/barge-dev/barge/overlay/netnstest"
	"github.com/barge-dev/barge/overlay/podnet"
	"github.com/vishvananda/netlink"
)

// testModes are the data paths every cross-node test runs in: VXLAN, the
// userspace IPIP tunnel, and the kernel's ipip device where the kernel
// has one (barge's build machines lack it; TestIPIPDetection covers the
// choice there).
func testModes(t *testing.T) []string {
	t.Helper()
	netnstest.RequireRoot(t)
	kernelIPIP.once.Do(func() {
		path, err := podnet.CreateNetns("", fmt.Sprintf("ovt-probe-%d", os.Getpid()))
		if err != nil {
			kernelIPIP.err = err
			return
		}
		defer podnet.DeleteNetns(path)
		h := netnstest.Handle(t, path)
		kernelIPIP.has = h.LinkAdd(&netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: "probe0"}}) == nil
	})
	if kernelIPIP.err != nil {
		t.Fatal(kernelIPIP.err)
	}
	if kernelIPIP.has {
		return []string{"vxlan", "ipip-userspace", "ipip"}
	}
	return []string{"vxlan", "ipip-userspace"}
}

var kernelIPIP struct {
	once sync.Once
	has  bool
	err  error
}

var clusterCIDR = netip.MustParsePrefix("10.244.0.0/16")

// cluster is a test overlay: n hosts, each a node with an agent helper,
// one pod per node with an echo server, all peers of each other; plus
// "out", a host on the same underlay outside the overlay.
type cluster struct {
	t     *testing.T
	mode  string
	net   *netnstest.Net
	nodes []*node
	out   *netnstest.Host
}

type node struct {
	name    string
	host    *netnstest.Host
	agent   *netnstest.Helper
	local   overlay.LocalNode
	attrs   overlay.Attrs
	state   string
	pod     podnet.PodNetwork
	podNS   string
	podEcho *netnstest.Echo
}

func newCluster(t *testing.T, mode string, n int) *cluster {
	t.Helper()
	nt := netnstest.New(t, n)
	c := &cluster{t: t, mode: mode, net: nt}
	for i, h := range nt.Hosts {
		nd := &node{
			name: h.Name,
			host: h,
			local: overlay.LocalNode{
				Name:       h.Name,
				UnderlayIP: h.Addr,
				PodCIDR:    netip.MustParsePrefix(fmt.Sprintf("10.244.%d.0/24", i+1)),
			},
			state: filepath.Join(t.TempDir(), "state-"+h.Name),
		}
		c.nodes = append(c.nodes, nd)
		c.startAgent(nd)
	}
	c.out = nt.AddHost("out")
	c.syncPeers()
	for _, nd := range c.nodes {
		path, err := podnet.CreateNetns("", nt.Prefix+nd.name+"-pod")
		if err != nil {
			t.Fatal(err)
		}
		nd.podNS = path
		nd.agent.MustCall("attach", attachArg{Pod: podnet.PodRef{ID: "uid-" + nd.name, Namespace: "default", Name: "pod-" + nd.name}, Netns: path}, &nd.pod)
		nd.podEcho = netnstest.ServeEcho(t, path, netip.AddrPortFrom(nd.pod.IP.Addr(), 7000))
	}
	return c
}

// startAgent starts (or restarts) a node's agent helper and sets its
// backend up.
func (c *cluster) startAgent(nd *node) {
	c.t.Helper()
	nd.agent = netnstest.StartHelper(c.t, "agent-"+nd.name, nd.host.Netns)
	nd.agent.MustCall("setup", setupArg{Mode: c.mode, Local: nd.local, ClusterCIDR: clusterCIDR, StateDir: nd.state}, &nd.attrs)
}

// peers is the peer set gossip would give nd: every other node, minus
// those in without.
func (c *cluster) peers(nd *node, without ...string) []overlay.Peer {
	var ps []overlay.Peer
next:
	for _, o := range c.nodes {
		if o == nd {
			continue
		}
		for _, w := range without {
			if o.name == w {
				continue next
			}
		}
		ps = append(ps, overlay.Peer{Name: o.name, UnderlayIP: o.local.UnderlayIP, PodCIDR: o.local.PodCIDR, VTEPMAC: o.attrs.VTEPMAC})
	}
	return ps
}

func (c *cluster) syncPeers(without ...string) {
	c.t.Helper()
	for _, nd := range c.nodes {
		nd.agent.MustCall("peers", c.peers(nd, without...), nil)
	}
}

// mustTCP checks a TCP exchange from the namespace at from to `to`, and
// that the far end saw the connection come from wantSrc.
func (c *cluster) mustTCP(what, from string, to netip.AddrPort, wantSrc netip.Addr) {
	c.t.Helper()
	seen, err := netnstest.TCPExchange(from, to, make([]byte, 256<<10))
	if err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
	if got := netip.MustParseAddrPort(seen).Addr(); got != wantSrc {
		c.t.Fatalf("%s: the far end saw source %v, want %v", what, got, wantSrc)
	}
}
