package kubeletapi

// The labels the node runtime puts on every containerd container it
// makes; this package finds containers, their logs and their network
// namespace through them and nothing else.
const (
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name" // absent on a sandbox
	// LabelRestartCount is decimal; the container of the previous run
	// (restartCount-1) is kept for `kubectl logs --previous`.
	LabelRestartCount = "io.kubernetes.container.restartCount"
	// LabelKind is one of KindSandbox, KindContainer, KindInit.
	LabelKind = "barge.dev/kind"
	// LabelLogPath is the CRI-format log file of the container.
	LabelLogPath = "barge.dev/log-path"
	// LabelNetns is the path of the pod's network namespace.
	LabelNetns = "barge.dev/netns"

	KindSandbox   = "sandbox"
	KindContainer = "container"
	KindInit      = "init"
)
