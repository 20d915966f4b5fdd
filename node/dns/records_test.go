package dns

import (
	"net/netip"
	"sort"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// testResolver holds the objects in in-memory stores with the same
// indexers the informers get.
func testResolver(t *testing.T, objs ...any) *resolver {
	t.Helper()
	svcs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, serviceIndexers())
	slices := cache.NewIndexer(cache.MetaNamespaceKeyFunc, sliceIndexers())
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *v1.Service:
			err = svcs.Add(o)
		case *discoveryv1.EndpointSlice:
			err = slices.Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return &resolver{zone: "cluster.local.", ttl: 5, services: svcs, slices: slices,
		reverse: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix("10.244.0.0/16")}}
}

func svc(ns, name, clusterIP string, ports ...v1.ServicePort) *v1.Service {
	s := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.ServiceSpec{ClusterIP: clusterIP, Ports: ports}}
	if clusterIP != "" {
		s.Spec.ClusterIPs = []string{clusterIP}
	}
	return s
}

type ep struct {
	ip, host string
	ready    bool
}

func slice(ns, svcName, name string, port string, portNum int32, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(port), Port: ptr.To(portNum), Protocol: ptr.To(v1.ProtocolTCP)}},
	}
	for _, e := range eps {
		x := discoveryv1.Endpoint{Addresses: []string{e.ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(e.ready)}}
		if e.host != "" {
			x.Hostname = ptr.To(e.host)
		}
		s.Endpoints = append(s.Endpoints, x)
	}
	return s
}

// answers renders the answer section as sorted "type value" strings.
func answers(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		f := strings.Fields(rr.String())
		out = append(out, strings.Join(f[3:], " "))
	}
	sort.Strings(out)
	return out
}

func TestResolve(t *testing.T) {
	http := v1.ServicePort{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}
	r := testResolver(t,
		svc("default", "web", "10.96.0.20", http),
		svc("other", "db", "None", v1.ServicePort{Name: "pg", Port: 5432, Protocol: v1.ProtocolTCP}),
		slice("other", "db", "db-1", "pg", 5433,
			ep{ip: "10.244.1.5", host: "db-0", ready: true},
			ep{ip: "10.244.1.6", ready: true},
			ep{ip: "10.244.1.7", host: "db-2", ready: false}),
		&v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext"}, Spec: v1.ServiceSpec{Type: v1.ServiceTypeExternalName, ExternalName: "Example.COM"}},
	)
	tests := []struct {
		name  string
		qtype uint16
		rcode int
		ours  bool
		want  []string
	}{
		{"web.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, true, []string{"A 10.96.0.20"}},
		{"WEB.Default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, true, []string{"A 10.96.0.20"}},
		{"web.default.svc.cluster.local.", mdns.TypeAAAA, mdns.RcodeSuccess, true, nil},
		{"nope.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, true, nil},
		{"_http._tcp.web.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess, true, []string{"SRV 0 100 80 web.default.svc.cluster.local."}},
		{"_http._udp.web.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeNameError, true, nil},
		{"_tcp.web.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess, true, nil},
		{"db.other.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, true, []string{"A 10.244.1.5", "A 10.244.1.6"}},
		{"db-0.db.other.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, true, []string{"A 10.244.1.5"}},
		{"10-244-1-6.db.other.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, true, []string{"A 10.244.1.6"}},
		{"db-2.db.other.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, true, nil},
		{"_pg._tcp.db.other.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess, true, []string{
			"SRV 0 50 5433 10-244-1-6.db.other.svc.cluster.local.", "SRV 0 50 5433 db-0.db.other.svc.cluster.local."}},
		{"ext.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, true, []string{"CNAME example.com."}},
		{"10-244-3-4.default.pod.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, true, []string{"A 10.244.3.4"}},
		{"20.0.96.10.in-addr.arpa.", mdns.TypePTR, mdns.RcodeSuccess, true, []string{"PTR web.default.svc.cluster.local."}},
		{"5.1.244.10.in-addr.arpa.", mdns.TypePTR, mdns.RcodeSuccess, true, []string{"PTR db-0.db.other.svc.cluster.local."}},
		{"99.0.96.10.in-addr.arpa.", mdns.TypePTR, mdns.RcodeNameError, true, nil},
		{"1.0.0.127.in-addr.arpa.", mdns.TypePTR, 0, false, nil},
		{"example.com.", mdns.TypeA, 0, false, nil},
		{"cluster.local.", mdns.TypeSOA, mdns.RcodeSuccess, true, []string{"SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"}},
		{"default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, true, nil},
		{"a.b.c.d.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+mdns.TypeToString[tt.qtype], func(t *testing.T) {
			res := r.resolve(mdns.Question{Name: tt.name, Qtype: tt.qtype, Qclass: mdns.ClassINET})
			if res.ours != tt.ours {
				t.Fatalf("ours = %v, want %v", res.ours, tt.ours)
			}
			if !tt.ours {
				return
			}
			if res.rcode != tt.rcode {
				t.Errorf("rcode %s, want %s", mdns.RcodeToString[res.rcode], mdns.RcodeToString[tt.rcode])
			}
			got := answers(res.answer)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("answer %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	ok := netip.MustParseAddrPort("10.244.1.1:53")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no client", Config{Listen: ok}, "no API client"},
		{"no listen", Config{}, "listen address"},
		{"bad zone", Config{Listen: ok, Zone: "a..b"}, "zone"},
		{"loop", Config{Listen: ok, Upstreams: []netip.AddrPort{ok}}, "loop"},
		{"loop via service", Config{Listen: ok, ServiceIP: netip.MustParseAddr("10.96.0.10"), Upstreams: []netip.AddrPort{netip.MustParseAddrPort("10.96.0.10:53")}}, "loop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.check()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("check: %v, want an error about %q", err, tt.want)
			}
		})
	}
}
