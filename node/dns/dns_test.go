package dns_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/barge-dev/barge/control/apitest"
	"github.com/barge-dev/barge/node/dns"
	"github.com/barge-dev/barge/node/svctest"
	"github.com/barge-dev/barge/overlay/netnstest"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestMain(m *testing.M) {
	os.Exit(netnstest.Main(m, svctest.Handlers(dnsHandlers)))
}

type startArg struct {
	API    svctest.API    `json:"api"`
	Listen netip.AddrPort `json:"listen"`
}

var clusterDNS = netip.MustParseAddr("10.96.0.10")

func dnsHandlers() map[string]netnstest.Handler {
	return map[string]netnstest.Handler{
		"static-dns": staticHandler,
		"dns": func(ctx context.Context, log *slog.Logger, raw json.RawMessage) (any, error) {
			var a startArg
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, err
			}
			c, err := a.API.Client()
			if err != nil {
				return nil, err
			}
			started := make(chan struct{})
			errc := make(chan error, 1)
			go func() {
				errc <- dns.Run(ctx, dns.Config{
					Client: c, Listen: a.Listen, ServiceIP: clusterDNS,
					ReverseCIDRs: []netip.Prefix{svctest.ServiceCIDR, svctest.ClusterCIDR},
					Logger:       log, Started: func() { close(started) },
				})
			}()
			select {
			case <-started:
				return nil, nil
			case err := <-errc:
				return nil, err
			}
		},
	}
}

// query asks the cluster DNS Service address from inside the namespace
// at nsPath, over net ("udp" or "tcp").
func query(t *testing.T, nsPath, network, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	var conn *mdns.Conn
	err := netnstest.Do(nsPath, func() error {
		var err error
		conn, err = mdns.DialTimeout(network, netip.AddrPortFrom(clusterDNS, 53).String(), netnstest.IOTimeout)
		return err
	})
	if err != nil {
		t.Fatalf("dial cluster DNS: %v", err)
	}
	defer conn.Close()
	m := new(mdns.Msg).SetQuestion(mdns.Fqdn(name), qtype)
	c := &mdns.Client{Net: network, Timeout: netnstest.IOTimeout}
	r, _, err := c.ExchangeWithConn(m, conn)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, mdns.TypeToString[qtype], network, err)
	}
	return r
}

func rrs(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		f := strings.Fields(rr.String())
		out = append(out, strings.Join(f[3:], " "))
	}
	sort.Strings(out)
	return out
}

func TestClusterDNS(t *testing.T) {
	netnstest.RequireRoot(t)
	cl := apitest.New(t, 1, apitest.Options{Plane: apitest.APIOnly()})
	c := cl.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	nt := netnstest.New(t, 1)
	node := svctest.NewNode(t, nt, nt.Host("h1"), netip.MustParsePrefix("10.244.1.0/24"), cl.Config(0))
	pod := node.AddPod("client")

	if _, err := c.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	http := v1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: v1.ProtocolTCP}
	mk := func(ns string, s *v1.Service) *v1.Service {
		t.Helper()
		s.Namespace = ns
		got, err := c.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	web := mk("default", &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: v1.ServiceSpec{Ports: []v1.ServicePort{http}}})
	webOther := mk("other", &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: v1.ServiceSpec{Ports: []v1.ServicePort{http}}})
	mk("default", &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: v1.ServiceSpec{ClusterIP: v1.ClusterIPNone, Ports: []v1.ServicePort{http}}})
	mk("default", &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext"}, Spec: v1.ServiceSpec{Type: v1.ServiceTypeExternalName, ExternalName: "db.default.svc.cluster.local"}})
	// The headless Service's endpoints: a pod with hostname db-0 under
	// subdomain db (as the EndpointSlice controller publishes it), one
	// without a hostname, and one not ready.
	if err := svctest.Apply(ctx, c, svctest.EndpointSlice("default", "db", "db-1", http,
		svctest.Endpoint{IP: netip.MustParseAddr("10.244.1.20"), Hostname: "db-0"},
		svctest.Endpoint{IP: netip.MustParseAddr("10.244.1.21")},
		svctest.Endpoint{IP: netip.MustParseAddr("10.244.1.22"), Hostname: "db-2", NotReady: true},
	)); err != nil {
		t.Fatal(err)
	}

	node.Agent.MustCall("dns", startArg{API: node.API, Listen: netip.AddrPortFrom(node.Gateway, 53)}, nil)

	tests := []struct {
		name  string
		qtype uint16
		rcode int
		want  []string
	}{
		{"web.default.svc.cluster.local", mdns.TypeA, mdns.RcodeSuccess, []string{"A " + web.Spec.ClusterIP}},
		{"web.other.svc.cluster.local", mdns.TypeA, mdns.RcodeSuccess, []string{"A " + webOther.Spec.ClusterIP}},
		{"web.default.svc.cluster.local", mdns.TypeAAAA, mdns.RcodeSuccess, nil},
		{"_http._tcp.web.default.svc.cluster.local", mdns.TypeSRV, mdns.RcodeSuccess, []string{"SRV 0 100 80 web.default.svc.cluster.local."}},
		{"db.default.svc.cluster.local", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.244.1.20", "A 10.244.1.21"}},
		{"db-0.db.default.svc.cluster.local", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.244.1.20"}},
		{"db-2.db.default.svc.cluster.local", mdns.TypeA, mdns.RcodeNameError, nil},
		{"_http._tcp.db.default.svc.cluster.local", mdns.TypeSRV, mdns.RcodeSuccess, []string{
			"SRV 0 50 8080 10-244-1-21.db.default.svc.cluster.local.", "SRV 0 50 8080 db-0.db.default.svc.cluster.local."}},
		{"ext.default.svc.cluster.local", mdns.TypeCNAME, mdns.RcodeSuccess, []string{"CNAME db.default.svc.cluster.local."}},
		{reverse(web.Spec.ClusterIP), mdns.TypePTR, mdns.RcodeSuccess, []string{"PTR web.default.svc.cluster.local."}},
		{"20.1.244.10.in-addr.arpa", mdns.TypePTR, mdns.RcodeSuccess, []string{"PTR db-0.db.default.svc.cluster.local."}},
		{"missing.default.svc.cluster.local", mdns.TypeA, mdns.RcodeNameError, nil},
		// Not the cluster's, and no upstream: SERVFAIL at once.
		{"example.com", mdns.TypeA, mdns.RcodeServerFailure, nil},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%s/%s", network, tt.name, mdns.TypeToString[tt.qtype]), func(t *testing.T) {
				r := query(t, pod.Netns, network, tt.name, tt.qtype)
				if r.Rcode != tt.rcode {
					t.Errorf("rcode %s, want %s", mdns.RcodeToString[r.Rcode], mdns.RcodeToString[tt.rcode])
				}
				if got := rrs(r); strings.Join(got, "|") != strings.Join(tt.want, "|") {
					t.Errorf("answer %q, want %q", got, tt.want)
				}
			})
		}
	}

	// A new endpoint shows up in the headless answer without a restart.
	if err := svctest.Apply(ctx, c, svctest.EndpointSlice("default", "db", "db-1", http,
		svctest.Endpoint{IP: netip.MustParseAddr("10.244.1.20"), Hostname: "db-0"},
	)); err != nil {
		t.Fatal(err)
	}
	svctest.Eventually(t, "headless answer follows the EndpointSlice", func() error {
		got := rrs(query(t, pod.Netns, "udp", "db.default.svc.cluster.local", mdns.TypeA))
		if strings.Join(got, "|") != "A 10.244.1.20" {
			return fmt.Errorf("answer %q", got)
		}
		return nil
	})
	// The node itself reaches the cluster DNS address too.
	if r := query(t, node.Host.Netns, "udp", "web.default.svc.cluster.local", mdns.TypeA); len(r.Answer) != 1 {
		t.Errorf("from the node: %v", r)
	}
}

func reverse(ip string) string {
	a, _ := mdns.ReverseAddr(ip)
	return a
}
