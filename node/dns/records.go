package dns

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	mdns "github.com/miekg/dns"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// Indexer names on the informers' stores.
const (
	byClusterIP = "clusterIP"       // Services by each ClusterIP
	byService   = "service"         // EndpointSlices by "ns/service"
	byAddress   = "endpointAddress" // EndpointSlices by each endpoint address
)

func serviceIndexers() cache.Indexers {
	return cache.Indexers{byClusterIP: func(obj any) ([]string, error) {
		s, ok := obj.(*v1.Service)
		if !ok {
			return nil, nil
		}
		var ips []string
		for _, ip := range s.Spec.ClusterIPs {
			if ip != "" && ip != v1.ClusterIPNone {
				ips = append(ips, ip)
			}
		}
		return ips, nil
	}}
}

func sliceIndexers() cache.Indexers {
	return cache.Indexers{
		byService: func(obj any) ([]string, error) {
			s, ok := obj.(*discoveryv1.EndpointSlice)
			if !ok || s.Labels[discoveryv1.LabelServiceName] == "" {
				return nil, nil
			}
			return []string{s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName]}, nil
		},
		byAddress: func(obj any) ([]string, error) {
			s, ok := obj.(*discoveryv1.EndpointSlice)
			if !ok {
				return nil, nil
			}
			var as []string
			for _, e := range s.Endpoints {
				as = append(as, e.Addresses...)
			}
			return as, nil
		},
	}
}

// resolver answers questions about the cluster zone from the informers'
// stores. It holds no state of its own, so it is safe for concurrent use.
type resolver struct {
	zone     string // lower case, fully qualified: "cluster.local."
	ttl      uint32
	services cache.Indexer
	slices   cache.Indexer
	// reverse are the ranges whose PTR names this server is the
	// authority for (Services, pods); other PTR queries are forwarded.
	reverse []netip.Prefix
}

// result is an answer before it becomes a message.
type result struct {
	answer []mdns.RR
	extra  []mdns.RR
	rcode  int
	// ours says the name is the cluster's: the answer is authoritative
	// and a missing name gets the zone's SOA, not a forward.
	ours bool
}

func (r *resolver) soa() mdns.RR {
	return &mdns.SOA{
		Hdr:     mdns.RR_Header{Name: r.zone, Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: r.ttl},
		Ns:      "ns.dns." + r.zone,
		Mbox:    "hostmaster." + r.zone,
		Serial:  1,
		Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: r.ttl,
	}
}

func (r *resolver) hdr(name string, t uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: t, Class: mdns.ClassINET, Ttl: r.ttl}
}

func (r *resolver) a(name string, ip netip.Addr) mdns.RR {
	return &mdns.A{Hdr: r.hdr(name, mdns.TypeA), A: ip.AsSlice()}
}

func nxdomainResult() result { return result{rcode: mdns.RcodeNameError, ours: true} }
func nodataResult() result   { return result{rcode: mdns.RcodeSuccess, ours: true} }

// resolve answers q; a result with ours false means the name is not the
// cluster's and should be forwarded.
func (r *resolver) resolve(q mdns.Question) result {
	name := strings.ToLower(q.Name)
	if q.Qclass != mdns.ClassINET && q.Qclass != mdns.ClassANY {
		return result{rcode: mdns.RcodeNotImplemented, ours: true}
	}
	if q.Qtype == mdns.TypePTR && strings.HasSuffix(name, ".in-addr.arpa.") {
		return r.ptr(name)
	}
	if name == r.zone {
		if q.Qtype == mdns.TypeSOA {
			return result{answer: []mdns.RR{r.soa()}, ours: true}
		}
		return nodataResult()
	}
	if !strings.HasSuffix(name, "."+r.zone) {
		return result{}
	}
	l := mdns.SplitDomainName(strings.TrimSuffix(name, "."+r.zone))
	n := len(l)
	switch {
	case n >= 1 && l[n-1] == "svc":
		return r.svc(q, name, l[:n-1])
	case n == 3 && l[2] == "pod":
		ip, ok := dashedAddr(l[0])
		if !ok {
			return nxdomainResult()
		}
		if q.Qtype != mdns.TypeA && q.Qtype != mdns.TypeANY {
			return nodataResult()
		}
		return result{answer: []mdns.RR{r.a(q.Name, ip)}, ours: true}
	case n <= 2 && (l[n-1] == "pod"):
		return nodataResult()
	}
	return nxdomainResult()
}

// svc answers names under svc.<zone>; l are the labels before "svc".
func (r *resolver) svc(q mdns.Question, name string, l []string) result {
	switch len(l) {
	case 0, 1:
		// svc.<zone> and <ns>.svc.<zone> are empty non-terminals.
		return nodataResult()
	case 2:
		s := r.service(l[1], l[0])
		if s == nil {
			return nxdomainResult()
		}
		return r.serviceRecords(q, s)
	case 3:
		s := r.service(l[2], l[1])
		if s == nil {
			return nxdomainResult()
		}
		if strings.HasPrefix(l[0], "_") {
			return nodataResult() // _proto.<svc>: an empty non-terminal
		}
		return r.endpointRecords(q, s, l[0])
	case 4:
		s := r.service(l[3], l[2])
		if s == nil || !strings.HasPrefix(l[0], "_") || !strings.HasPrefix(l[1], "_") {
			return nxdomainResult()
		}
		res := r.srv(s, l[0][1:], l[1][1:])
		if len(res.answer) == 0 {
			return nxdomainResult()
		}
		if q.Qtype != mdns.TypeSRV && q.Qtype != mdns.TypeANY {
			return nodataResult()
		}
		return res
	}
	return nxdomainResult()
}

func (r *resolver) service(ns, name string) *v1.Service {
	obj, ok, err := r.services.GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil
	}
	s, _ := obj.(*v1.Service)
	return s
}

func svcName(s *v1.Service, zone string) string {
	return s.Name + "." + s.Namespace + ".svc." + zone
}

func headless(s *v1.Service) bool { return s.Spec.ClusterIP == v1.ClusterIPNone }

func (r *resolver) serviceRecords(q mdns.Question, s *v1.Service) result {
	res := result{ours: true}
	if s.Spec.Type == v1.ServiceTypeExternalName {
		target := mdns.Fqdn(strings.ToLower(s.Spec.ExternalName))
		res.answer = append(res.answer, &mdns.CNAME{Hdr: r.hdr(q.Name, mdns.TypeCNAME), Target: target})
		return res
	}
	switch q.Qtype {
	case mdns.TypeA, mdns.TypeANY:
		if headless(s) {
			for _, ep := range r.endpoints(s) {
				res.answer = append(res.answer, r.a(q.Name, ep.addr))
			}
		} else {
			for _, ip := range s.Spec.ClusterIPs {
				if a, err := netip.ParseAddr(ip); err == nil && a.Is4() {
					res.answer = append(res.answer, r.a(q.Name, a))
				}
			}
		}
	case mdns.TypeSRV:
		// Every named port, as CoreDNS answers a Service's own name.
		for _, p := range s.Spec.Ports {
			if p.Name == "" {
				continue
			}
			pr := r.srv(s, strings.ToLower(p.Name), strings.ToLower(string(p.Protocol)))
			for _, rr := range pr.answer {
				rr.Header().Name = q.Name
			}
			res.answer = append(res.answer, pr.answer...)
			res.extra = append(res.extra, pr.extra...)
		}
	}
	return res
}

// endpoint is one address of a Service's endpoints, with the name it
// has under the Service.
type endpoint struct {
	addr  netip.Addr
	label string // hostname, or the dashed address
	named bool   // label is the endpoint's hostname
	ports []discoveryv1.EndpointPort
}

// endpoints lists the Service's endpoint addresses that DNS publishes:
// the ready ones, or all with publishNotReadyAddresses. A nil Ready
// condition means unknown, which consumers take as ready.
func (r *resolver) endpoints(s *v1.Service) []endpoint {
	objs, err := r.slices.ByIndex(byService, s.Namespace+"/"+s.Name)
	if err != nil {
		return nil
	}
	seen := map[netip.Addr]bool{}
	var eps []endpoint
	for _, o := range objs {
		sl, ok := o.(*discoveryv1.EndpointSlice)
		if !ok || sl.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		for _, e := range sl.Endpoints {
			ready := e.Conditions.Ready == nil || *e.Conditions.Ready
			if !ready && !s.Spec.PublishNotReadyAddresses {
				continue
			}
			for _, a := range e.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil || seen[ip] {
					continue
				}
				seen[ip] = true
				ep := endpoint{addr: ip, label: dashed(ip), ports: sl.Ports}
				if e.Hostname != nil && *e.Hostname != "" {
					ep.label, ep.named = strings.ToLower(*e.Hostname), true
				}
				eps = append(eps, ep)
			}
		}
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].addr.Less(eps[j].addr) })
	return eps
}

func (r *resolver) endpointRecords(q mdns.Question, s *v1.Service, label string) result {
	if !headless(s) {
		return nxdomainResult()
	}
	res := result{ours: true}
	found := false
	for _, ep := range r.endpoints(s) {
		if ep.label != label && dashed(ep.addr) != label {
			continue
		}
		found = true
		if q.Qtype == mdns.TypeA || q.Qtype == mdns.TypeANY {
			res.answer = append(res.answer, r.a(q.Name, ep.addr))
		}
	}
	if !found {
		return nxdomainResult()
	}
	return res
}

// srv answers _port._proto.<svc>: the Service's port with the Service as
// target, or for a headless Service one record per endpoint, with the
// endpoint's A records as additional data.
func (r *resolver) srv(s *v1.Service, port, proto string) result {
	res := result{ours: true}
	var sp *v1.ServicePort
	for i, p := range s.Spec.Ports {
		if strings.EqualFold(p.Name, port) && strings.EqualFold(string(p.Protocol), proto) {
			sp = &s.Spec.Ports[i]
		}
	}
	if sp == nil || sp.Name == "" {
		return res
	}
	name := "_" + port + "._" + proto + "." + svcName(s, r.zone)
	if !headless(s) {
		target := svcName(s, r.zone)
		res.answer = append(res.answer, &mdns.SRV{Hdr: r.hdr(name, mdns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(sp.Port), Target: target})
		for _, ip := range s.Spec.ClusterIPs {
			if a, err := netip.ParseAddr(ip); err == nil && a.Is4() {
				res.extra = append(res.extra, r.a(target, a))
			}
		}
		return res
	}
	eps := r.endpoints(s)
	for _, ep := range eps {
		for _, p := range ep.ports {
			if p.Name == nil || !strings.EqualFold(*p.Name, sp.Name) || p.Port == nil {
				continue
			}
			if p.Protocol != nil && !strings.EqualFold(string(*p.Protocol), proto) {
				continue
			}
			target := ep.label + "." + svcName(s, r.zone)
			w := uint16(100 / len(eps))
			if w == 0 {
				w = 1
			}
			res.answer = append(res.answer, &mdns.SRV{Hdr: r.hdr(name, mdns.TypeSRV), Priority: 0, Weight: w, Port: uint16(*p.Port), Target: target})
			res.extra = append(res.extra, r.a(target, ep.addr))
		}
	}
	return res
}

// ptr answers reverse lookups of ClusterIPs and of headless Services'
// endpoints.
func (r *resolver) ptr(name string) result {
	ip, ok := reverseAddr(name)
	if !ok {
		return result{}
	}
	res := result{ours: true}
	objs, _ := r.services.ByIndex(byClusterIP, ip.String())
	for _, o := range objs {
		if s, ok := o.(*v1.Service); ok {
			res.answer = append(res.answer, &mdns.PTR{Hdr: r.hdr(name, mdns.TypePTR), Ptr: svcName(s, r.zone)})
		}
	}
	slices, _ := r.slices.ByIndex(byAddress, ip.String())
	seen := map[string]bool{}
	for _, o := range slices {
		sl, ok := o.(*discoveryv1.EndpointSlice)
		if !ok {
			continue
		}
		s := r.service(sl.Namespace, sl.Labels[discoveryv1.LabelServiceName])
		if s == nil || !headless(s) {
			continue
		}
		for _, ep := range r.endpoints(s) {
			if ep.addr != ip {
				continue
			}
			target := ep.label + "." + svcName(s, r.zone)
			if !seen[target] {
				seen[target] = true
				res.answer = append(res.answer, &mdns.PTR{Hdr: r.hdr(name, mdns.TypePTR), Ptr: target})
			}
		}
	}
	if len(res.answer) > 0 {
		return res
	}
	for _, p := range r.reverse {
		if p.Contains(ip) {
			return nxdomainResult()
		}
	}
	return result{}
}

func dashed(ip netip.Addr) string {
	return strings.ReplaceAll(ip.String(), ".", "-")
}

func dashedAddr(label string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(strings.ReplaceAll(label, "-", "."))
	if err != nil || !ip.Is4() {
		return netip.Addr{}, false
	}
	return ip, true
}

// reverseAddr parses d.c.b.a.in-addr.arpa.
func reverseAddr(name string) (netip.Addr, bool) {
	l := mdns.SplitDomainName(strings.TrimSuffix(name, ".in-addr.arpa."))
	if len(l) != 4 {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(fmt.Sprintf("%s.%s.%s.%s", l[3], l[2], l[1], l[0]))
	if err != nil {
		return netip.Addr{}, false
	}
	return ip, true
}
