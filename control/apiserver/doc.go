// Package apiserver assembles barge's Kubernetes API server from
// k8s.io/apiserver: TLS serving, authentication (client certificates,
// static tokens, service account tokens), RBAC authorisation, admission,
// discovery and OpenAPI, and the storage of control/registry on top of any
// etcd v3 endpoint — on a barge server, its own store peer.
//
// It may import k8s.io/*, raftstore/pki and the other control packages
// (scheme, registry, auth, openapi); it does not import raftstore itself.
package apiserver
