// Package runtime is the node agent's container runtime: barge's own glue
// on containerd's Go client (1.7, which speaks to containerd 1.6 and
// later), one containerd namespace per node.
//
// A pod sandbox is a network namespace pinned under the state directory
// and wired by overlay/podnet (a veth on the node bridge, an address from
// the node's pod CIDR), recorded as a task-less containerd container
// labelled barge.dev/kind=sandbox. Each container of the pod is a
// containerd container whose task joins that namespace. Everything the
// agent needs to know after a restart is in containerd: the labels below
// name the pod, the container, its restart count, its log file and its
// network namespace, and the outcome of an exited container (exit code,
// reason, times) is written back into its labels before its task is
// deleted. So a new agent re-adopts running containers (Adopt) without
// restarting them, and the kubelet API server (node/kubeletapi) finds
// containers by the same labels.
//
// Container output goes through FIFOs the runtime reads and writes, in
// the CRI log format, to <state-dir>/pods/<ns>_<pod>_<uid>/<container>/
// <restartCount>.log, and to whoever is attached (Attach).
//
// It imports overlay/podnet, node/image, node/hostport, containerd's client and k8s.io
// API types; nothing of the control plane.
package runtime
