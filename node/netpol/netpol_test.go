package netpol_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/barge-dev/barge/control/apitest"
	"github.com/barge-dev/barge/node/netpol"
	"github.com/barge-dev/barge/node/svctest"
	"github.com/barge-dev/barge/overlay/netnstest"
	"github.com/vishvananda/netlink"
	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func TestMain(m *testing.M) {
	os.Exit(netnstest.Main(m, svctest.Handlers(netpolHandlers)))
}

type startArg struct {
	API      svctest.API `json:"api"`
	NodeName string      `json:"nodeName"`
}

func netpolHandlers() map[string]netnstest.Handler {
	return map[string]netnstest.Handler{
		"netpol": func(ctx context.Context, log *slog.Logger, raw json.RawMessage) (any, error) {
			var a startArg
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, err
			}
			c, err := a.API.Client()
			if err != nil {
				return nil, err
			}
			synced := make(chan struct{})
			first := true
			errc := make(chan error, 1)
			go func() {
				errc <- netpol.Run(ctx, netpol.Config{Client: c, NodeName: a.NodeName, Logger: log, Synced: func(_ time.Time, err error) {
					if first && err == nil {
						first = false
						close(synced)
					}
				}})
			}()
			select {
			case <-synced:
				return nil, nil
			case err := <-errc:
				return nil, err
			}
		},
	}
}

const port = 8080

type env struct {
	t    *testing.T
	c    kubernetes.Interface
	node *svctest.Node
	out  *netnstest.Host
	web  *svctest.Pod // default, app=web, serves on 8080 ("http") and 9090
	cli  *svctest.Pod // default, role=client
	far  *svctest.Pod // namespace other (team=b), role=client
}

func TestNetworkPolicy(t *testing.T) {
	netnstest.RequireRoot(t)
	cl := apitest.New(t, 1, apitest.Options{Plane: apitest.APIOnly()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	nt := netnstest.New(t, 1)
	e := &env{t: t, c: cl.Client(0)}
	e.node = svctest.NewNode(t, nt, nt.Host("h1"), netip.MustParsePrefix("10.244.1.0/24"), cl.Config(0))
	e.out = nt.AddHost("out")
	// out reaches the pods through h1, as a host outside the cluster
	// routing to a node would.
	oh := netnstest.Handle(t, e.out.Netns)
	if err := oh.RouteAdd(&netlink.Route{Dst: &net.IPNet{IP: net.IP{10, 244, 1, 0}, Mask: net.CIDRMask(24, 32)}, Gw: e.node.Host.Addr.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: map[string]string{"team": "b"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.web = e.pod(ctx, "default", "web", map[string]string{"app": "web"}, v1.ContainerPort{Name: "http", ContainerPort: port})
	e.cli = e.pod(ctx, "default", "cli", map[string]string{"role": "client"})
	e.far = e.pod(ctx, "other", "far", map[string]string{"role": "client"})
	svctest.ServeWho(t, e.web.Netns, netip.AddrPortFrom(e.web.IP, port), "web")
	svctest.ServeWho(t, e.web.Netns, netip.AddrPortFrom(e.web.IP, 9090), "web9090")
	svctest.ServeWho(t, e.far.Netns, netip.AddrPortFrom(e.far.IP, port), "far")
	e.node.Agent.MustCall("netpol", startArg{API: e.node.API, NodeName: "h1"}, nil)

	web := netip.AddrPortFrom(e.web.IP, port)
	web9090 := netip.AddrPortFrom(e.web.IP, 9090)
	far := netip.AddrPortFrom(e.far.IP, port)

	t.Run("NoPolicyAllowsAll", func(t *testing.T) {
		e.allowed(e.cli.Netns, web)
		e.allowed(e.far.Netns, web)
		e.allowed(e.out.Netns, web)
	})

	t.Run("DefaultDenyIngress", func(t *testing.T) {
		e.apply(ctx, policy("default", "deny", nil, networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}))
		e.eventuallyDenied(e.cli.Netns, web)
		e.denied(e.far.Netns, web)
		e.denied(e.out.Netns, web)
		// The node itself still reaches its pods (probes).
		e.allowed(e.node.Host.Netns, web)
		// Pods in other namespaces are not isolated.
		e.allowed(e.cli.Netns, far)
	})

	t.Run("AllowByLabel", func(t *testing.T) {
		e.apply(ctx, policy("default", "allow-clients", map[string]string{"app": "web"}, networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromString("http"))}},
			}},
		}))
		e.eventuallyAllowed(e.cli.Netns, web)
		// The named port is 8080 only; same-labelled pods of another
		// namespace are not selected by a bare podSelector.
		e.denied(e.cli.Netns, web9090)
		e.denied(e.far.Netns, web)
	})

	t.Run("AllowByNamespace", func(t *testing.T) {
		e.apply(ctx, policy("default", "allow-team-b", map[string]string{"app": "web"}, networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(9000)), EndPort: ptr.To(int32(9100))}},
			}},
		}))
		e.eventuallyAllowed(e.far.Netns, web9090)
		e.denied(e.far.Netns, web)
	})

	t.Run("AllowByIPBlock", func(t *testing.T) {
		e.apply(ctx, policy("default", "allow-out", map[string]string{"app": "web"}, networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{
					CIDR: netip.PrefixFrom(e.out.Addr, 24).Masked().String(), Except: []string{netip.PrefixFrom(e.node.Host.Addr, 32).String()},
				}}},
			}},
		}))
		e.eventuallyAllowed(e.out.Netns, web)
		// An address in the except range stays out.
		e.apply(ctx, policy("default", "allow-out", map[string]string{"app": "web"}, networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{
					CIDR: netip.PrefixFrom(e.out.Addr, 24).Masked().String(), Except: []string{netip.PrefixFrom(e.out.Addr, 32).String()},
				}}},
			}},
		}))
		e.eventuallyDenied(e.out.Netns, web)
	})

	t.Run("EgressDeny", func(t *testing.T) {
		e.allowed(e.cli.Netns, far)
		e.apply(ctx, policy("default", "no-egress", map[string]string{"role": "client"}, networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
		}))
		e.eventuallyDenied(e.cli.Netns, far)
		// The node's own address stays reachable from the pod (the
		// input hook is not judged: node-local DNS lives there).
		e.allowed(e.cli.Netns, e.nodeWho(t))
	})

	t.Run("ChangeAppliesToNextConnection", func(t *testing.T) {
		// Allow the client's egress to far, then take it away again:
		// each change shows on the very next connection attempt once in
		// place, and the enforcer's own sync report is what the test
		// waits on.
		e.apply(ctx, policy("default", "no-egress", map[string]string{"role": "client"}, networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress:      []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}}},
		}))
		e.eventuallyAllowed(e.cli.Netns, far)
		if err := e.c.NetworkingV1().NetworkPolicies("default").Delete(ctx, "no-egress", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.apply(ctx, policy("default", "no-egress", map[string]string{"role": "client"}, networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
		}))
		e.eventuallyDenied(e.cli.Netns, far)
	})
}

// nodeWho serves on the node's bridge address and returns it.
func (e *env) nodeWho(t *testing.T) netip.AddrPort {
	a := netip.AddrPortFrom(e.node.Gateway, 7070)
	svctest.ServeWho(t, e.node.Host.Netns, a, "node")
	return a
}

func (e *env) pod(ctx context.Context, ns, name string, lbls map[string]string, ports ...v1.ContainerPort) *svctest.Pod {
	e.t.Helper()
	p := e.node.AddPod(name)
	_, err := svctest.RunningPod(ctx, e.c, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "busybox", Ports: ports}}},
	}, "h1", p.IP)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func policy(ns, name string, sel map[string]string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	spec.PodSelector = metav1.LabelSelector{MatchLabels: sel}
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func (e *env) apply(ctx context.Context, p *networkingv1.NetworkPolicy) {
	e.t.Helper()
	api := e.c.NetworkingV1().NetworkPolicies(p.Namespace)
	old, err := api.Get(ctx, p.Name, metav1.GetOptions{})
	if err == nil {
		p.ResourceVersion = old.ResourceVersion
		_, err = api.Update(ctx, p, metav1.UpdateOptions{})
	} else {
		_, err = api.Create(ctx, p, metav1.CreateOptions{})
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

// try connects; nil means the server answered, errDenied that the
// policy rejected it.
var errDenied = errors.New("denied")

func try(nsPath string, to netip.AddrPort) error {
	_, _, err := svctest.Who(nsPath, to)
	if netnstest.IsUnreachable(err) {
		return errDenied
	}
	return err
}

func (e *env) allowed(nsPath string, to netip.AddrPort) {
	e.t.Helper()
	if err := try(nsPath, to); err != nil {
		e.t.Fatalf("%s → %v: %v, want allowed", nsPath, to, err)
	}
}

func (e *env) denied(nsPath string, to netip.AddrPort) {
	e.t.Helper()
	if err := try(nsPath, to); !errors.Is(err, errDenied) {
		e.t.Fatalf("%s → %v: %v, want denied", nsPath, to, err)
	}
}

func (e *env) eventuallyAllowed(nsPath string, to netip.AddrPort) {
	e.t.Helper()
	svctest.Eventually(e.t, fmt.Sprintf("%v allowed", to), func() error { return try(nsPath, to) })
}

func (e *env) eventuallyDenied(nsPath string, to netip.AddrPort) {
	e.t.Helper()
	svctest.Eventually(e.t, fmt.Sprintf("%v denied", to), func() error {
		if err := try(nsPath, to); !errors.Is(err, errDenied) {
			return fmt.Errorf("connection: %v", err)
		}
		return nil
	})
}
