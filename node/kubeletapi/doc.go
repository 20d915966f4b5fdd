// Package kubeletapi is the node's kubelet API: the HTTPS server (port
// 10250 by default) that kube-apiserver's node and pod proxies call for
// `kubectl logs`, `exec`, `attach`, `port-forward` and `cp`, and that
// monitoring reads for /pods, /healthz and /stats/summary.
//
// It serves kubelet paths and semantics over containerd containers that
// the node runtime labels (see labels.go for the contract):
//
//   - /containerLogs/{ns}/{pod}/{container}: CRI-format log files read by
//     upstream's k8s.io/cri-client/pkg/logs.ReadLogs (follow, tailLines,
//     timestamps, previous, sinceSeconds/sinceTime, limitBytes, stream);
//   - /exec and /attach/{ns}/{pod}[/{uid}]/{container}: the SPDY and
//     WebSocket remote-command protocols of k8s.io/cri-streaming's
//     remotecommand.ServeExec/ServeAttach; exec runs a new process in the
//     container's task through containerd (task.Exec with the container's
//     own process spec), attach is delegated to the runtime, which owns
//     container IO (Config.Attacher);
//   - /portForward/{ns}/{pod}[/{uid}]: cri-streaming's
//     portforward.ServePortForward, dialing 127.0.0.1:port inside the
//     pod's network namespace;
//   - /pods, /runningpods/, /healthz, /stats/summary.
//
// kube-apiserver finds a node's kubelet API at the first of the Node's
// addresses in --kubelet-preferred-address-types (barge passes
// InternalIP,Hostname,ExternalIP), on status.daemonEndpoints.
// kubeletEndpoint.port, or --kubelet-port (10250) when that is 0, and
// verifies the serving certificate against --kubelet-certificate-
// authority (the cluster CA): the agent must publish its port in the
// Node's status and serve a certificate with its address as a SAN.
// Pod logs, exec, attach and port-forward go there whatever the address;
// the nodes/proxy subresource of the API refuses loopback and link-local
// addresses.
//
// Authentication is upstream's: client certificates from the cluster CA
// (k8s.io/apiserver x509 authenticator; kube-apiserver presents
// apiserver-kubelet-client.crt) or bearer tokens checked by TokenReview;
// anonymous requests are refused. Authorization is a SubjectAccessReview
// to the API server with the kubelet's attributes (verb from the method,
// resource nodes, name the node, subresource proxy, log, stats, metrics,
// pods or healthz), through k8s.io/apiserver's delegating authorizer.
//
// Why not k8s.io/kubernetes/pkg/kubelet/server: its HostInterface
// (stats.Provider and friends, about 40 methods) is shaped around
// cAdvisor, the kubelet's container manager, volume manager and a CRI
// runtime service; implementing it means stubbing most of it and linking
// cAdvisor and the kubelet's cgroup manager into every agent, and its
// exec/attach/port-forward go through a redirect to a separate CRI
// streaming server. The streaming protocols — the hard part — are
// exactly k8s.io/cri-streaming, which this package calls directly;
// the handlers around it are thin.
//
// It imports containerd's client, vishvananda/netns, the Kubernetes
// libraries named above and the standard library; no other package of
// barge. Its root test (e2e_test.go, with harness_test.go standing in
// for the node runtime) drives it through a real kube-apiserver from
// control/apitest, with kubectl and client-go; only that test imports
// control.
package kubeletapi
