// Package apiserver runs Kubernetes' own kube-apiserver (k8s.io/kubernetes,
// the version pinned in go.mod) inside a barge server: the aggregator,
// the built-in APIs and apiextensions, configured from barge's certificate
// directory, with barge's store peer as its etcd over an in-memory
// connection, or an external etcd cluster.
//
// This is the one place barge touches kube-apiserver. It speaks the
// upstream options (the same flags kube-apiserver documents), so what a
// Kubernetes operator knows applies, and ExtraArgs passes any other flag
// through, as k3s's --kube-apiserver-arg does.
//
// It may import k8s.io/* and raftstore/pki; it does not import raftstore:
// the store is reached through a dialer or etcd URLs.
package apiserver
