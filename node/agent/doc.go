// Package agent is barge's node agent, the kubelet of barge: it joins the
// cluster with the node's own credential (system:node:NAME in
// system:nodes, so upstream's Node authorizer and NodeRestriction
// apply), registers its Node (capacity, addresses, nodeInfo, conditions,
// images), heartbeats through its node Lease, and runs the pods bound to
// it on containerd through node/runtime: a worker per pod, fed by an
// informer on spec.nodeName, starts init containers in order and then the
// containers, restarts them with the kubelet's crash-loop back-off, runs
// probes and lifecycle hooks, terminates gracefully, prepares volumes
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
// It imports node/runtime, node/kubeletapi, k8s.io/kubernetes pure
// helpers, client-go and k8s.io API types; never the control plane.
package agent
