package podnet_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/barge-dev/barge/overlay/netnstest"
	"github.com/barge-dev/barge/overlay/podnet"
	"github.com/vishvananda/netlink"
)

func TestMain(m *testing.M) {
	os.Exit(netnstest.Main(m, helperHandlers))
}

type newArg struct {
	StateDir string
	PodCIDR  netip.Prefix
	MTU      int
}

type attachArg struct {
	Pod   podnet.PodRef
	Netns string
}

// helperHandlers is the agent side: one podnet.Network per helper process.
func helperHandlers() map[string]netnstest.Handler {
	var n *podnet.Network
	return map[string]netnstest.Handler{
		"new": func(ctx context.Context, log *slog.Logger, raw json.RawMessage) (any, error) {
			var a newArg
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, err
			}
			var err error
			n, err = podnet.New(ctx, podnet.Config{StateDir: a.StateDir, PodCIDR: a.PodCIDR, MTU: a.MTU, Logger: log})
			return nil, err
		},
		"attach": func(ctx context.Context, _ *slog.Logger, raw json.RawMessage) (any, error) {
			var a attachArg
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, err
			}
			return n.Attach(ctx, a.Pod, a.Netns)
		},
		"detach": func(ctx context.Context, _ *slog.Logger, raw json.RawMessage) (any, error) {
			var id string
			if err := json.Unmarshal(raw, &id); err != nil {
				return nil, err
			}
			return nil, n.Detach(ctx, id)
		},
		"list": func(context.Context, *slog.Logger, json.RawMessage) (any, error) {
			return n.List(), nil
		},
	}
}

func TestNetnsCreateDelete(t *testing.T) {
	netnstest.RequireRoot(t)
	dir := t.TempDir()
	path, err := podnet.CreateNetns(dir, "pod")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := podnet.CreateNetns(dir, "pod"); err == nil {
		t.Fatal("creating the same netns twice succeeded")
	}
	h := netnstest.Handle(t, path)
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Attrs().Name != "lo" {
		t.Fatalf("a fresh namespace has links %v, want only lo", links)
	}
	for _, bad := range []string{"", "a/b", ".."} {
		if _, err := podnet.CreateNetns(dir, bad); err == nil {
			t.Errorf("CreateNetns(%q) succeeded", bad)
		}
	}
	if err := podnet.DeleteNetns(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("netns file still there: %v", err)
	}
	if err := podnet.DeleteNetns(path); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}

func TestAttachDetach(t *testing.T) {
	nt := netnstest.New(t, 1)
	host := nt.Hosts[0]
	state := filepath.Join(t.TempDir(), "state")
	cidr := netip.MustParsePrefix("10.244.7.0/24")
	agent := netnstest.StartHelper(t, "agent", host.Netns)
	agent.MustCall("new", newArg{StateDir: state, PodCIDR: cidr, MTU: 1400}, nil)

	pods := map[string]podnet.PodNetwork{}
	paths := map[string]string{}
	for _, id := range []string{"pod-a", "pod-b"} {
		path, err := podnet.CreateNetns("", nt.Prefix+id)
		if err != nil {
			t.Fatal(err)
		}
		paths[id] = path
		var pn podnet.PodNetwork
		agent.MustCall("attach", attachArg{Pod: podnet.PodRef{ID: id, Namespace: "default", Name: id}, Netns: path}, &pn)
		if pn.Gateway != netip.MustParseAddr("10.244.7.1") || pn.IP.Bits() != 24 || !cidr.Contains(pn.IP.Addr()) || pn.MTU != 1400 || pn.Interface != "eth0" {
			t.Fatalf("attach %s: %+v", id, pn)
		}
		pods[id] = pn
	}
	if pods["pod-a"].IP == pods["pod-b"].IP {
		t.Fatalf("two pods share %v", pods["pod-a"].IP)
	}

	// The node's bridge holds exactly the gateway.
	hh := netnstest.Handle(t, host.Netns)
	br, err := hh.LinkByName(podnet.DefaultBridge)
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := hh.AddrList(br, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.244.7.1/24" {
		t.Fatalf("bridge addresses %v, want 10.244.7.1/24", addrs)
	}
	ph := netnstest.Handle(t, paths["pod-a"])
	eth, err := ph.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if eth.Attrs().MTU != 1400 {
		t.Fatalf("pod eth0 MTU %d, want 1400", eth.Attrs().MTU)
	}

	// Pod to pod on the node, pod to node, node to pod.
	echoB := netnstest.ServeEcho(t, paths["pod-b"], netip.AddrPortFrom(pods["pod-b"].IP.Addr(), 0))
	seen, err := netnstest.TCPExchange(paths["pod-a"], echoB.Addr, []byte("hello"))
	if err != nil {
		t.Fatalf("pod a → pod b: %v", err)
	}
	if want := pods["pod-a"].IP.Addr().String(); netip.MustParseAddrPort(seen).Addr().String() != want {
		t.Fatalf("pod b saw pod a as %s, want %s", seen, want)
	}
	if _, err := netnstest.UDPExchange(paths["pod-a"], echoB.Addr, make([]byte, 1400-28)); err != nil {
		t.Fatalf("pod a → pod b, full-MTU UDP with DF: %v", err)
	}
	if _, err := netnstest.TCPExchange(host.Netns, echoB.Addr, []byte("from the node")); err != nil {
		t.Fatalf("node → pod b: %v", err)
	}
	echoNode := netnstest.ServeEcho(t, host.Netns, netip.AddrPortFrom(netip.MustParseAddr("10.244.7.1"), 0))
	if _, err := netnstest.TCPExchange(paths["pod-a"], echoNode.Addr, []byte("to the node")); err != nil {
		t.Fatalf("pod a → node gateway: %v", err)
	}
	echoUnder := netnstest.ServeEcho(t, host.Netns, netip.AddrPortFrom(host.Addr, 0))
	if _, err := netnstest.TCPExchange(paths["pod-a"], echoUnder.Addr, []byte("to the node")); err != nil {
		t.Fatalf("pod a → node underlay address: %v", err)
	}

	// Re-attaching an intact pod changes nothing.
	hostLink, err := hh.LinkByName(pods["pod-a"].HostInterface)
	if err != nil {
		t.Fatal(err)
	}
	var again podnet.PodNetwork
	agent.MustCall("attach", attachArg{Pod: podnet.PodRef{ID: "pod-a", Namespace: "default", Name: "pod-a"}, Netns: paths["pod-a"]}, &again)
	if again != pods["pod-a"] {
		t.Fatalf("re-attach: %+v, want %+v", again, pods["pod-a"])
	}
	if l, err := hh.LinkByName(pods["pod-a"].HostInterface); err != nil || l.Attrs().Index != hostLink.Attrs().Index {
		t.Fatalf("re-attach replaced the veth: %v", err)
	}

	// A restarted agent knows its pods, and repairs a broken one with
	// the same address.
	agent.Kill()
	agent = netnstest.StartHelper(t, "agent2", host.Netns)
	agent.MustCall("new", newArg{StateDir: state, PodCIDR: cidr, MTU: 1400}, nil)
	var list []podnet.Pod
	agent.MustCall("list", nil, &list)
	if len(list) != 2 {
		t.Fatalf("after restart: %d pods, want 2: %+v", len(list), list)
	}
	for _, p := range list {
		if p.PodNetwork != pods[p.ID] || p.Namespace != "default" || p.Name != p.ID {
			t.Fatalf("after restart: %+v, want %+v", p, pods[p.ID])
		}
	}
	if err := hh.LinkDel(hostLink); err != nil {
		t.Fatal(err)
	}
	if _, err := netnstest.TCPExchange(paths["pod-a"], echoB.Addr, []byte("x")); err == nil {
		t.Fatal("pod a reached pod b with its veth deleted")
	}
	agent.MustCall("attach", attachArg{Pod: podnet.PodRef{ID: "pod-a", Namespace: "default", Name: "pod-a"}, Netns: paths["pod-a"]}, &again)
	if again != pods["pod-a"] {
		t.Fatalf("repair: %+v, want %+v", again, pods["pod-a"])
	}
	if _, err := netnstest.TCPExchange(paths["pod-a"], echoB.Addr, []byte("repaired")); err != nil {
		t.Fatalf("after repair: %v", err)
	}

	// Detach removes the pair and frees the address.
	agent.MustCall("detach", "pod-a", nil)
	if _, err := hh.LinkByName(pods["pod-a"].HostInterface); err == nil {
		t.Fatal("host veth still there after detach")
	}
	if _, err := ph.LinkByName("eth0"); err == nil {
		t.Fatal("pod eth0 still there after detach")
	}
	agent.MustCall("detach", "pod-a", nil) // idempotent
	agent.MustCall("list", nil, &list)
	if len(list) != 1 || list[0].ID != "pod-b" {
		t.Fatalf("after detach: %+v", list)
	}
	if err := agent.Stop(); err != nil {
		t.Fatal(err)
	}
}
