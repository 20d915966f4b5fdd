// Package proxy is the node agent's Service proxy: kube-proxy's own
// nftables proxier (k8s.io/kubernetes/pkg/proxy/nftables), built through
// its NewProxier constructor and fed by pkg/proxy/config handlers over
// the agent's informers, exactly as cmd/kube-proxy/app wires it, minus
// what barge does elsewhere (the agent owns the process, its flags, its
// health endpoint and its metrics server). The ruleset is upstream's,
// in table "ip kube-proxy": the service-ips verdict map, per-service and
// per-endpoint chains, numgen random load balancing, session affinity
// sets, no-endpoint rejects, NodePorts on every local address (or the
// ones configured), and incremental partial syncs.
//
// Embedding it works with three settings upstream's own server makes:
//
//   - Services are watched without headless ones and without those
//     claimed by another proxy (service.kubernetes.io/service-proxy-name),
//     EndpointSlices without headless ones, the Node object for topology;
//   - local traffic is detected by the cluster CIDR, so traffic from
//     outside the pod network to a Service is masqueraded;
//   - bridged traffic goes through the IPv4 hooks
//     (net.bridge.bridge-nf-call-iptables=1 in the node's namespace):
//     without it a pod reaching a Service whose endpoint is on the same
//     bridge gets the reply straight from the endpoint, un-DNATed, and
//     drops it. Kubernetes asks this of every bridge network plugin.
//
// One limit comes with upstream: Proxier.SyncLoop has no stop (it loops
// on wait.NeverStop), so after Run returns the proxier's goroutine keeps
// the rules as they last were and resyncs them until the process exits.
// Run is therefore meant to be called once per process, as the agent does.
//
// proxy imports k8s.io/kubernetes/pkg/proxy/..., client-go and the
// standard library; no barge package.
package proxy
