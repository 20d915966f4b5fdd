// Package dns is cluster DNS served by every node agent for the pods of
// its node, on github.com/miekg/dns (what CoreDNS is built on), answering
// from Service and EndpointSlice informers by the Kubernetes DNS
// specification (github.com/kubernetes/dns, docs/specification.md):
//
//   - <svc>.<ns>.svc.<zone> A: the ClusterIP; for a headless Service one
//     record per ready endpoint (all endpoints with
//     publishNotReadyAddresses); AAAA answers NODATA (IPv4 cluster);
//   - <hostname>.<svc>.<ns>.svc.<zone> A for headless endpoints with a
//     hostname (a pod's spec.hostname under spec.subdomain = the
//     Service's name, which the EndpointSlice controller publishes);
//   - _<port>._<proto>.<svc>.<ns>.svc.<zone> SRV for named ports, with
//     the Service name as target, or per endpoint for headless Services
//     (its hostname, or its dashed address, which also answers A);
//   - PTR for ClusterIPs and for headless endpoints with a hostname;
//   - ExternalName Services as a CNAME;
//   - <a-b-c-d>.<ns>.pod.<zone> A (CoreDNS' "pods insecure");
//   - names in the zone that do not exist: NXDOMAIN with the zone's SOA;
//   - every other name is forwarded to the node's upstream resolvers, in
//     order, each with a short timeout; with none configured (as in the
//     lab) the answer is SERVFAIL at once, never a hang.
//
// How pods reach it (decided here): each node answers for its own pods.
// The agent picks a listen address on the node (the pod bridge's gateway
// address, which every pod routes to) and Run installs, in table
// "ip barge-dns", a DNAT of the cluster DNS Service address
// (kube-system/kube-dns, 10.96.0.10) port 53, UDP and TCP, to that
// listener, in prerouting (pods) and output (the node itself) at priority
// dstnat-20: before kube-proxy's no-endpoint check (dstnat-10) and its
// Service DNAT (dstnat), so the Service's endpoints never matter and a
// query never leaves the node. NAT happens once per connection, so
// kube-proxy's chains do not see it again.
//
// dns imports miekg/dns, knftables, client-go and the Kubernetes API
// types; no barge package.
package dns
