// Package controllers builds Kubernetes' own controllers
// (k8s.io/kubernetes/pkg/controller/...) for one term of Raft leadership,
// through their New... constructors, and runs them until the term ends.
// kube-controller-manager's command layer is not used: it runs once per
// process and exits when its Lease is lost, where barge starts and stops
// the same controllers many times in one process.
//
// It may import k8s.io/* only.
package controllers
