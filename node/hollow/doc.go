// Package hollow runs simulated nodes for tests and benchmarks, as
// Kubernetes' kubemark and kwok do: each hollow node registers a Node,
// renews its Lease as a kubelet does, and reports every pod bound to it
// Running and Ready (a Job's pods Succeeded) without running anything.
// Deleted pods are confirmed at once, as a kubelet confirms a stopped pod.
//
// It may import k8s.io/* only.
package hollow
