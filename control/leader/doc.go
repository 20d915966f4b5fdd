// Package leader runs work only while this server leads: it starts the
// work within a moment of winning and cancels it the moment leadership is
// lost. The leadership signal comes through a two-method interface that
// raftstore.Server satisfies, and so does LeaseElection, Kubernetes' Lease
// election, for clusters on external etcd.
//
// It imports k8s.io/* only.
package leader
