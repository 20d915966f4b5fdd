// Package agent is barge's node agent, the kubelet of barge: it joins the
// cluster with the node's own credential (system:node:NAME in
// system:nodes, so upstream's Node authorizer and NodeRestriction
// apply), registers its Node (capacity, addresses, nodeInfo, conditions,
// images), heartbeats through its node Lease, and runs the pods bound to
// it on containerd through node/runtime: a worker per pod, fed by an
// informer on spec.nodeName, pulls images as their pull policy says with
// the pod's imagePullSecrets (pullsecrets.go, upstream's docker
// keyring), starts init containers in order and then the containers,
// restarts them with the kubelet's crash-loop back-off, runs probes and
// lifecycle hooks, terminates gracefully, prepares volumes
// (emptyDir, hostPath, configMap, secret, downwardAPI, projected with
// service account tokens) and environment, and writes pod status as the
// kubelet does.
//
// Everything it needs after a restart is in containerd's labels, so a
// restarted agent re-adopts running pods without restarting them.
//
// KubeletServer (kubeletapi.go) serves the node's kubelet API from
// node/kubeletapi on the node's address: what `kubectl logs`, `exec`,
// `attach` and `port-forward` reach through the API server.
//
// The node's network, each optional in Config and all on in `barge
// agent`:
//
//   - Gossip (gossip.go): the node's member of the one gossip pool
//     (node/gossip), role agent, with its underlay IP, pod CIDR, overlay
//     mode and VTEP MAC as metadata. A stopping agent shuts its member
//     down without a goodbye: a restart is not a departure.
//   - Overlay (network.go): overlay/vxlan or overlay/ipip set up in the
//     node's namespace before the pod bridge (whose MTU it sets), egress
//     masquerade (overlay/egress), and the backend's peers programmed
//     from the pool's agent members after every gossip change, so the
//     data plane converges without the API servers.
//   - Services (services.go): node/proxy, node/dns (on the pod bridge's
//     gateway) and node/netpol on the agent's client, once the pod
//     network exists.
//
// It imports node/runtime, node/kubeletapi, node/gossip, node/proxy,
// node/dns, node/netpol, overlay and its backends, k8s.io/kubernetes
// pure helpers, client-go and k8s.io API types; never the control plane.
package agent
