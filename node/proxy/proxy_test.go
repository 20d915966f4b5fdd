package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/barge-dev/barge/control/apitest"
	"github.com/barge-dev/barge/node/proxy"
	"github.com/barge-dev/barge/node/svctest"
	"github.com/barge-dev/barge/overlay/netnstest"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func TestMain(m *testing.M) {
	os.Exit(netnstest.Main(m, svctest.Handlers(proxyHandlers)))
}

type startArg struct {
	API      svctest.API `json:"api"`
	NodeName string      `json:"nodeName"`
	NodeIP   netip.Addr  `json:"nodeIP"`
}

// proxyHandlers start the proxy inside the node's namespace, as the
// agent does.
func proxyHandlers() map[string]netnstest.Handler {
	hs := map[string]netnstest.Handler{
		"wait-endpoint": waitHandler,
		"proxy": func(ctx context.Context, log *slog.Logger, raw json.RawMessage) (any, error) {
			var a startArg
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, err
			}
			c, err := a.API.Client()
			if err != nil {
				return nil, err
			}
			go func() {
				err := proxy.Run(ctx, proxy.Config{Client: c, NodeName: a.NodeName, NodeIP: a.NodeIP, ClusterCIDR: svctest.ClusterCIDR, Logger: log})
				if err != nil {
					log.Error("proxy stopped", "err", err)
				}
			}()
			return nil, nil
		},
	}
	for k, v := range monitorHandlers() {
		hs[k] = v
	}
	return hs
}

// env is one node (h1) running the proxy, three pods on it, a client
// pod, and a host outside the node (out) on the same underlay.
type env struct {
	t      *testing.T
	c      kubernetes.Interface
	node   *svctest.Node
	out    *netnstest.Host
	client *svctest.Pod
	pods   []*svctest.Pod
}

const podPort = 8080

func newEnv(t *testing.T) *env {
	netnstest.RequireRoot(t)
	cl := apitest.New(t, 1, apitest.Options{Plane: apitest.APIOnly()})
	nt := netnstest.New(t, 1)
	e := &env{t: t, c: cl.Client(0)}
	e.node = svctest.NewNode(t, nt, nt.Host("h1"), netip.MustParsePrefix("10.244.1.0/24"), cl.Config(0))
	e.out = nt.AddHost("out")
	for i := range 3 {
		p := e.node.AddPod(fmt.Sprintf("web%d", i))
		svctest.ServeWho(t, p.Netns, netip.AddrPortFrom(p.IP, podPort), p.Name)
		e.pods = append(e.pods, p)
	}
	e.client = e.node.AddPod("client")
	svctest.ServeWho(t, e.client.Netns, netip.AddrPortFrom(e.client.IP, podPort), e.client.Name)
	e.node.Agent.MustCall("proxy", startArg{API: e.node.API, NodeName: "h1", NodeIP: e.node.Host.Addr}, nil)
	svctest.Eventually(t, "kube-proxy table", func() error {
		_, err := svctest.NFT(e.node.Host.Netns, "list", "table", "ip", proxy.Table)
		return err
	})
	return e
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// service creates a Service with one TCP port 80 → podPort and the
// slice of eps, and returns the Service as created.
func (e *env) service(name string, mod func(*v1.Service), eps ...svctest.Endpoint) *v1.Service {
	e.t.Helper()
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1.ServiceSpec{
			Ports: []v1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(podPort), Protocol: v1.ProtocolTCP}},
		},
	}
	if mod != nil {
		mod(s)
	}
	s, err := e.c.CoreV1().Services("default").Create(ctx(e.t), s, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.slice(s, eps...)
	return s
}

func (e *env) slice(s *v1.Service, eps ...svctest.Endpoint) {
	e.t.Helper()
	if err := svctest.Apply(ctx(e.t), e.c, svctest.EndpointSlice("default", s.Name, s.Name+"-1", s.Spec.Ports[0], eps...)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) ep(i int) svctest.Endpoint {
	return svctest.Endpoint{IP: e.pods[i].IP, Node: "h1"}
}

func clusterIP(s *v1.Service) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(s.Spec.ClusterIP), uint16(s.Spec.Ports[0].Port))
}

// waitReach waits until addr answers from nsPath (the first sync after
// a Service appears), then returns.
func (e *env) waitReach(nsPath string, addr netip.AddrPort) {
	e.t.Helper()
	svctest.Eventually(e.t, fmt.Sprintf("%v reachable", addr), func() error {
		_, _, err := svctest.Who(nsPath, addr)
		return err
	})
}

func TestProxy(t *testing.T) {
	e := newEnv(t)

	t.Run("ClusterIPSpreadsOverEndpoints", func(t *testing.T) {
		s := e.service("spread", nil, e.ep(0), e.ep(1), e.ep(2))
		vip := clusterIP(s)
		e.waitReach(e.client.Netns, vip)
		counts, err := svctest.WhoCounts(e.client.Netns, vip, 60)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range e.pods {
			if counts[p.Name] == 0 {
				t.Errorf("endpoint %s got none of 60 connections: %v", p.Name, counts)
			}
		}
		// The client's own address reaches the endpoint: pod traffic to
		// a Service is not masqueraded.
		_, seen, err := svctest.Who(e.client.Netns, vip)
		if err != nil {
			t.Fatal(err)
		}
		if seen.Addr() != e.client.IP {
			t.Errorf("endpoint saw %v, want the client pod %v", seen.Addr(), e.client.IP)
		}
		// And from the node itself.
		if _, _, err := svctest.Who(e.node.Host.Netns, vip); err != nil {
			t.Errorf("node → ClusterIP: %v", err)
		}
	})

	t.Run("NotReadyLeavesRotation", func(t *testing.T) {
		s := e.service("unready", nil, e.ep(0), e.ep(1), e.ep(2))
		vip := clusterIP(s)
		e.waitReach(e.client.Netns, vip)
		gone := e.ep(2)
		gone.NotReady = true
		e.slice(s, e.ep(0), e.ep(1), gone)
		// Other Services keep pod 2 in the table; this one's endpoint
		// chains are named for the Service.
		svctest.Eventually(t, "unready endpoint out of the service chain", func() error {
			out, err := svctest.NFT(e.node.Host.Netns, "list", "table", "ip", proxy.Table)
			if err != nil {
				return err
			}
			// The Service's own chain is what picks an endpoint; the
			// endpoint's chain itself is removed later, lazily, upstream.
			chain := serviceChain(out, "default/unready/tcp/http")
			if chain == "" {
				return errors.New("no service chain")
			}
			if mentionsEndpoint(chain, e.pods[2].IP.String()) {
				return errors.New("still there")
			}
			return nil
		})
		counts, err := svctest.WhoCounts(e.client.Netns, vip, 30)
		if err != nil {
			t.Fatal(err)
		}
		if counts[e.pods[2].Name] != 0 || counts[e.pods[0].Name] == 0 || counts[e.pods[1].Name] == 0 {
			t.Errorf("after %s went unready: %v", e.pods[2].Name, counts)
		}
	})

	t.Run("TerminatingDrained", func(t *testing.T) {
		term := e.ep(1)
		term.Terminating = true
		s := e.service("term", nil, e.ep(0), term)
		vip := clusterIP(s)
		e.waitReach(e.client.Netns, vip)
		counts, err := svctest.WhoCounts(e.client.Netns, vip, 30)
		if err != nil {
			t.Fatal(err)
		}
		if counts[e.pods[1].Name] != 0 {
			t.Errorf("a terminating endpoint got new connections while a ready one exists: %v", counts)
		}
		// With no ready endpoint left, serving terminating ones take the
		// traffic (upstream's graceful fallback) rather than a reject.
		e.slice(s, term)
		svctest.Eventually(t, "fallback to the serving terminating endpoint", func() error {
			name, _, err := svctest.Who(e.client.Netns, vip)
			if err != nil {
				return err
			}
			if name != e.pods[1].Name {
				return fmt.Errorf("answered by %s", name)
			}
			return nil
		})
	})

	t.Run("NoEndpointsRejects", func(t *testing.T) {
		s := e.service("empty", nil)
		vip := clusterIP(s)
		svctest.Eventually(t, "no-endpoint reject", func() error {
			_, _, err := svctest.Who(e.client.Netns, vip)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("dial: %v, want connection refused", err)
			}
			return nil
		})
	})

	t.Run("SessionAffinity", func(t *testing.T) {
		s := e.service("sticky", func(s *v1.Service) {
			s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		}, e.ep(0), e.ep(1), e.ep(2))
		vip := clusterIP(s)
		e.waitReach(e.client.Netns, vip)
		counts, err := svctest.WhoCounts(e.client.Netns, vip, 20)
		if err != nil {
			t.Fatal(err)
		}
		if len(counts) != 1 {
			t.Errorf("session affinity ClientIP: one client reached %v", counts)
		}
	})

	t.Run("Hairpin", func(t *testing.T) {
		s := e.service("hairpin", nil, svctest.Endpoint{IP: e.client.IP, Node: "h1"})
		vip := clusterIP(s)
		e.waitReach(e.client.Netns, vip)
		name, _, err := svctest.Who(e.client.Netns, vip)
		if err != nil || name != e.client.Name {
			t.Fatalf("pod → its own Service: %s, %v", name, err)
		}
	})

	t.Run("NodePort", func(t *testing.T) {
		s := e.service("np", func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort }, e.ep(0), e.ep(1), e.ep(2))
		np := netip.AddrPortFrom(e.node.Host.Addr, uint16(s.Spec.Ports[0].NodePort))
		e.waitReach(e.out.Netns, np)
		counts, err := svctest.WhoCounts(e.out.Netns, np, 60)
		if err != nil {
			t.Fatal(err)
		}
		if len(counts) != 3 {
			t.Errorf("NodePort from outside the node spread over %v, want all 3", counts)
		}
		// From the node itself too.
		if _, _, err := svctest.Who(e.node.Host.Netns, np); err != nil {
			t.Errorf("node → its own NodePort: %v", err)
		}
	})

	// Endpoints on another node (h2 is only a name here: its address is
	// never reached when the policy is Local).
	remote := svctest.Endpoint{IP: netip.MustParseAddr("10.244.2.9"), Node: "h2"}

	t.Run("ExternalTrafficPolicyLocal", func(t *testing.T) {
		s := e.service("etp", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		}, e.ep(0), remote)
		np := netip.AddrPortFrom(e.node.Host.Addr, uint16(s.Spec.Ports[0].NodePort))
		e.waitReach(e.out.Netns, np)
		for range 20 {
			name, seen, err := svctest.Who(e.out.Netns, np)
			if err != nil {
				t.Fatal(err)
			}
			if name != e.pods[0].Name {
				t.Fatalf("externalTrafficPolicy Local sent a NodePort connection to %s", name)
			}
			if seen.Addr() != e.out.Addr {
				t.Fatalf("externalTrafficPolicy Local: endpoint saw %v, want the client %v", seen.Addr(), e.out.Addr)
			}
		}
	})

	t.Run("InternalTrafficPolicyLocal", func(t *testing.T) {
		s := e.service("itp", func(s *v1.Service) {
			s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
		}, e.ep(1), remote)
		vip := clusterIP(s)
		e.waitReach(e.client.Netns, vip)
		counts, err := svctest.WhoCounts(e.client.Netns, vip, 20)
		if err != nil {
			t.Fatal(err)
		}
		if counts[e.pods[1].Name] != 20 {
			t.Errorf("internalTrafficPolicy Local: %v, want all to the local endpoint", counts)
		}
	})

	t.Run("HeadlessIgnored", func(t *testing.T) {
		s := e.service("headless", func(s *v1.Service) { s.Spec.ClusterIP = v1.ClusterIPNone }, e.ep(0))
		if s.Spec.ClusterIP != v1.ClusterIPNone {
			t.Fatalf("clusterIP %q", s.Spec.ClusterIP)
		}
		// A later Service proves the proxier synced after the headless
		// one arrived; the headless one must have left no chain.
		later := e.service("after-headless", nil, e.ep(0))
		e.waitReach(e.client.Netns, clusterIP(later))
		out, err := svctest.NFT(e.node.Host.Netns, "list", "table", "ip", proxy.Table)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "default/headless/") {
			t.Errorf("headless Service has rules")
		}
	})
}

// serviceChain returns the text of the Service port's chain in an
// "nft list table" output.
func serviceChain(table, suffix string) string {
	var b strings.Builder
	in := false
	for _, l := range strings.Split(table, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "chain service-") && strings.HasSuffix(t, "-"+suffix+" {") {
			in = true
			continue
		}
		if in {
			if t == "}" {
				return b.String()
			}
			b.WriteString(t + "\n")
		}
	}
	return ""
}

// mentionsEndpoint reports whether a Service chain's text sends traffic
// to ip: through a per-endpoint chain ("…__IP/port"), or, when nothing
// needs one, by a DNAT straight to it ("IP . port" in a map, or "IP:port"
// for a single endpoint).
func mentionsEndpoint(chain, ip string) bool {
	return strings.Contains(chain, "__"+ip+"/") || strings.Contains(chain, " "+ip+" . ") || strings.Contains(chain, " "+ip+":")
}
