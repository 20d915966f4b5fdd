package hostport_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/barge-dev/barge/control/apitest"
	"github.com/barge-dev/barge/node/hostport"
	"github.com/barge-dev/barge/node/svctest"
	"github.com/barge-dev/barge/overlay/netnstest"
)

func TestMain(m *testing.M) {
	os.Exit(netnstest.Main(m, svctest.Handlers(handlers)))
}

type setArg struct {
	Pod      string             `json:"pod"`
	Mappings []hostport.Mapping `json:"mappings"`
}

// handlers give the node's helper one Map, made on first use inside the
// node's namespace, as the agent's runtime holds one.
func handlers() map[string]netnstest.Handler {
	var (
		mu sync.Mutex
		m  *hostport.Map
	)
	return map[string]netnstest.Handler{
		"set": func(ctx context.Context, _ *slog.Logger, raw json.RawMessage) (any, error) {
			var a setArg
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, err
			}
			mu.Lock()
			defer mu.Unlock()
			if m == nil {
				var err error
				if m, err = hostport.New(hostport.Config{Bridge: "barge0"}); err != nil {
					return nil, err
				}
			}
			return nil, m.Set(ctx, a.Pod, a.Mappings)
		},
	}
}

func TestRules(t *testing.T) {
	pod := netip.MustParseAddr("10.244.1.5")
	got := hostport.Rules([]hostport.Mapping{
		{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 54323, Protocol: "tcp", PodIP: pod, PodPort: 8080},
		{HostPort: 80, Protocol: "udp", PodIP: pod, PodPort: 53},
	})
	want := []string{
		"ip daddr 127.0.0.1 tcp dport 54323 dnat ip to 10.244.1.5:8080",
		"fib daddr type local udp dport 80 dnat ip to 10.244.1.5:53",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestHostPorts opens hostPorts of pods on a node and reaches them from
// another host on the underlay and from the node itself.
func TestHostPorts(t *testing.T) {
	netnstest.RequireRoot(t)
	cl := apitest.New(t, 1, apitest.Options{Plane: apitest.APIOnly()})
	nt := netnstest.New(t, 1)
	node := svctest.NewNode(t, nt, nt.Host("h1"), netip.MustParsePrefix("10.244.1.0/24"), cl.Config(0))
	out := nt.AddHost("out")
	const podPort = 8080
	var pods []*svctest.Pod
	for _, name := range []string{"web0", "web1", "web2"} {
		p := node.AddPod(name)
		svctest.ServeWho(t, p.Netns, netip.AddrPortFrom(p.IP, podPort), name)
		pods = append(pods, p)
	}
	nodeIP := node.Host.Addr
	loop := netip.MustParseAddr("127.0.0.1")
	set := func(pod string, ms ...hostport.Mapping) error {
		return node.Agent.Call("set", setArg{Pod: pod, Mappings: ms}, nil)
	}
	tcp := func(host netip.Addr, port uint16, p *svctest.Pod) hostport.Mapping {
		return hostport.Mapping{HostIP: host, HostPort: port, Protocol: "tcp", PodIP: p.IP, PodPort: podPort}
	}
	// web0 on every address, port 30080; on 30081 web1 has loopback and
	// web2 the node's address, as conformance's HostPort spec does.
	if err := set("web0", tcp(netip.Addr{}, 30080, pods[0])); err != nil {
		t.Fatal(err)
	}
	if err := set("web1", tcp(loop, 30081, pods[1])); err != nil {
		t.Fatal(err)
	}
	if err := set("web2", tcp(nodeIP, 30081, pods[2])); err != nil {
		t.Fatal(err)
	}
	reach := []struct {
		name, from string
		to         netip.AddrPort
		want       string
		wantSource netip.Addr // zero: not checked
	}{
		{"every address, from outside", out.Netns, netip.AddrPortFrom(nodeIP, 30080), "web0", out.Addr},
		{"every address, from the node", node.Host.Netns, netip.AddrPortFrom(nodeIP, 30080), "web0", netip.Addr{}},
		{"every address takes loopback too", node.Host.Netns, netip.AddrPortFrom(loop, 30080), "web0", node.Gateway},
		{"loopback hostIP", node.Host.Netns, netip.AddrPortFrom(loop, 30081), "web1", node.Gateway},
		{"node hostIP beside a loopback one", out.Netns, netip.AddrPortFrom(nodeIP, 30081), "web2", out.Addr},
	}
	for _, r := range reach {
		name, seen, err := svctest.Who(r.from, r.to)
		if err != nil {
			t.Errorf("%s: %v: %v", r.name, r.to, err)
			continue
		}
		if name != r.want {
			t.Errorf("%s: %v answered by %s, want %s", r.name, r.to, name, r.want)
		}
		if r.wantSource.IsValid() && seen.Addr() != r.wantSource {
			t.Errorf("%s: %s saw the client as %v, want %v", r.name, name, seen.Addr(), r.wantSource)
		}
	}
	// The scheduler keeps hostPorts apart; a clash that reaches the node
	// anyway is refused and changes nothing.
	if err := set("web2", tcp(netip.Addr{}, 30080, pods[2])); err == nil || !strings.Contains(err.Error(), "taken by pod web0") {
		t.Errorf("a second pod on *:30080/tcp: err %v, want taken by pod web0", err)
	}
	if name, _, err := svctest.Who(out.Netns, netip.AddrPortFrom(nodeIP, 30081)); err != nil || name != "web2" {
		t.Errorf("after the refused clash, %v:30081 answered %q, %v; want web2", nodeIP, name, err)
	}
	// A removed pod's port is closed at once: nothing on the node
	// listens there, so the connection is refused.
	if err := set("web0"); err != nil {
		t.Fatal(err)
	}
	if name, _, err := svctest.Who(out.Netns, netip.AddrPortFrom(nodeIP, 30080)); err == nil {
		t.Errorf("%v:30080 still answered by %s after its pod went", nodeIP, name)
	}
	if name, _, err := svctest.Who(out.Netns, netip.AddrPortFrom(nodeIP, 30081)); err != nil || name != "web2" {
		t.Errorf("another pod's port: %q, %v; want web2", name, err)
	}
}
